// Mutex, SharedMutex and their scoped locks and condition variable, with
// clang's thread-safety annotations (common/thread_annotations.h), so that
// `-Wthread-safety` (the clang builds of `make test`) checks every
// GUARDED_BY member is touched only under its lock. libstdc++'s std::mutex
// carries no annotations, hence these thin wrappers; they cost nothing over
// std::mutex / std::shared_mutex / std::condition_variable.
//
// Waits are written as loops in the caller (`while (!ready_) cv_.Wait(&l);`)
// rather than with a predicate lambda: clang analyses a lambda's body as a
// function of its own that does not hold the lock.
#ifndef ANNALS_COMMON_MUTEX_H_
#define ANNALS_COMMON_MUTEX_H_

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <shared_mutex>

#include "common/thread_annotations.h"

namespace annals {

class CAPABILITY("mutex") Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void Lock() ACQUIRE() { mu_.lock(); }
  void Unlock() RELEASE() { mu_.unlock(); }
  bool TryLock() TRY_ACQUIRE(true) { return mu_.try_lock(); }
  // Tells the analysis the caller holds it (for code it cannot follow).
  void AssertHeld() const ASSERT_CAPABILITY(this) {}

 private:
  friend class CondVar;
  std::mutex mu_;
};

// Holds a Mutex for its scope; Unlock/Lock to let go of it in between.
class SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex* mu) ACQUIRE(mu) : mu_(mu) { mu_->Lock(); }
  ~MutexLock() RELEASE() {
    if (held_) mu_->Unlock();
  }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

  void Unlock() RELEASE() {
    mu_->Unlock();
    held_ = false;
  }
  void Lock() ACQUIRE() {
    mu_->Lock();
    held_ = true;
  }

 private:
  friend class CondVar;
  Mutex* const mu_;
  bool held_ = true;
};

// A condition variable over a Mutex held through a MutexLock.
class CondVar {
 public:
  void Wait(MutexLock* lock) {
    std::unique_lock<std::mutex> l(lock->mu_->mu_, std::adopt_lock);
    cv_.wait(l);
    l.release();
  }
  // False when the timeout passed without a notification.
  template <class Rep, class Period>
  bool WaitFor(MutexLock* lock, std::chrono::duration<Rep, Period> timeout) {
    std::unique_lock<std::mutex> l(lock->mu_->mu_, std::adopt_lock);
    const bool notified = cv_.wait_for(l, timeout) == std::cv_status::no_timeout;
    l.release();
    return notified;
  }
  template <class Clock, class Duration>
  bool WaitUntil(MutexLock* lock, std::chrono::time_point<Clock, Duration> deadline) {
    std::unique_lock<std::mutex> l(lock->mu_->mu_, std::adopt_lock);
    const bool notified = cv_.wait_until(l, deadline) == std::cv_status::no_timeout;
    l.release();
    return notified;
  }
  void NotifyOne() { cv_.notify_one(); }
  void NotifyAll() { cv_.notify_all(); }

 private:
  std::condition_variable cv_;
};

// A reader-writer lock.
class CAPABILITY("shared_mutex") SharedMutex {
 public:
  SharedMutex() = default;
  SharedMutex(const SharedMutex&) = delete;
  SharedMutex& operator=(const SharedMutex&) = delete;

  void Lock() ACQUIRE() { mu_.lock(); }
  void Unlock() RELEASE() { mu_.unlock(); }
  void LockShared() ACQUIRE_SHARED() { mu_.lock_shared(); }
  void UnlockShared() RELEASE_SHARED() { mu_.unlock_shared(); }

 private:
  std::shared_mutex mu_;
};

class SCOPED_CAPABILITY WriterLock {
 public:
  explicit WriterLock(SharedMutex* mu) ACQUIRE(mu) : mu_(mu) { mu_->Lock(); }
  ~WriterLock() RELEASE() { mu_->Unlock(); }
  WriterLock(const WriterLock&) = delete;
  WriterLock& operator=(const WriterLock&) = delete;

 private:
  SharedMutex* const mu_;
};

class SCOPED_CAPABILITY ReaderLock {
 public:
  explicit ReaderLock(SharedMutex* mu) ACQUIRE_SHARED(mu) : mu_(mu) { mu_->LockShared(); }
  ~ReaderLock() RELEASE() { mu_->UnlockShared(); }
  ReaderLock(const ReaderLock&) = delete;
  ReaderLock& operator=(const ReaderLock&) = delete;

 private:
  SharedMutex* const mu_;
};

}  // namespace annals

#endif  // ANNALS_COMMON_MUTEX_H_
