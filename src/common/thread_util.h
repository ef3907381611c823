// Names the calling thread (at most 15 characters), so `top -H`, `perf`
// and debuggers tell annals' threads apart.
#ifndef ANNALS_COMMON_THREAD_UTIL_H_
#define ANNALS_COMMON_THREAD_UTIL_H_

#include <pthread.h>

namespace annals {

inline void SetThreadName(const char* name) { pthread_setname_np(pthread_self(), name); }

}  // namespace annals

#endif  // ANNALS_COMMON_THREAD_UTIL_H_
