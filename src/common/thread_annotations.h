// Clang's thread-safety annotations (as abseil's and leveldb's
// thread_annotations.h): `int n_ GUARDED_BY(mu_);`, `void F() REQUIRES(mu_);`.
// Checked by `-Wthread-safety` in the clang builds; nothing under gcc.
// The lockable types are in common/mutex.h.
#ifndef ANNALS_COMMON_THREAD_ANNOTATIONS_H_
#define ANNALS_COMMON_THREAD_ANNOTATIONS_H_

#if defined(__clang__)
#define ANNALS_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define ANNALS_THREAD_ANNOTATION(x)
#endif

#define CAPABILITY(x) ANNALS_THREAD_ANNOTATION(capability(x))
#define SCOPED_CAPABILITY ANNALS_THREAD_ANNOTATION(scoped_lockable)
#define GUARDED_BY(x) ANNALS_THREAD_ANNOTATION(guarded_by(x))
#define PT_GUARDED_BY(x) ANNALS_THREAD_ANNOTATION(pt_guarded_by(x))
#define ACQUIRED_BEFORE(...) ANNALS_THREAD_ANNOTATION(acquired_before(__VA_ARGS__))
#define ACQUIRED_AFTER(...) ANNALS_THREAD_ANNOTATION(acquired_after(__VA_ARGS__))
#define REQUIRES(...) ANNALS_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define REQUIRES_SHARED(...) ANNALS_THREAD_ANNOTATION(requires_shared_capability(__VA_ARGS__))
#define ACQUIRE(...) ANNALS_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define ACQUIRE_SHARED(...) ANNALS_THREAD_ANNOTATION(acquire_shared_capability(__VA_ARGS__))
#define RELEASE(...) ANNALS_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#define RELEASE_SHARED(...) ANNALS_THREAD_ANNOTATION(release_shared_capability(__VA_ARGS__))
#define TRY_ACQUIRE(...) ANNALS_THREAD_ANNOTATION(try_acquire_capability(__VA_ARGS__))
#define EXCLUDES(...) ANNALS_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
#define ASSERT_CAPABILITY(x) ANNALS_THREAD_ANNOTATION(assert_capability(x))
#define RETURN_CAPABILITY(x) ANNALS_THREAD_ANNOTATION(lock_returned(x))
#define NO_THREAD_SAFETY_ANALYSIS ANNALS_THREAD_ANNOTATION(no_thread_safety_analysis)

#endif  // ANNALS_COMMON_THREAD_ANNOTATIONS_H_
