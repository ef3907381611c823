// Names the calling thread (at most 15 characters), so `top -H`, `perf`
// and debuggers tell annals' threads apart.
#ifndef ANNALS_COMMON_THREAD_UTIL_H_
#define ANNALS_COMMON_THREAD_UTIL_H_

#include <pthread.h>
#include <time.h>

#include <cstdint>

namespace annals {

inline void SetThreadName(const char* name) { pthread_setname_np(pthread_self(), name); }

// CPU time the calling thread has used, in nanoseconds (a system call, a
// few hundred ns: time whole requests or batches with it, not single
// events).
inline int64_t ThreadCpuNanos() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

}  // namespace annals

#endif  // ANNALS_COMMON_THREAD_UTIL_H_
