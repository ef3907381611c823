// CHECK(cond) for libFuzzer targets: a failed property aborts with the
// condition and where it failed, so libFuzzer keeps the input as a crash.
#ifndef ANNALS_FUZZ_FUZZ_CHECK_H_
#define ANNALS_FUZZ_FUZZ_CHECK_H_

#include <cstdio>
#include <cstdlib>

#define CHECK(cond)                                                                 \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                 \
    }                                                                               \
  } while (0)

#endif  // ANNALS_FUZZ_FUZZ_CHECK_H_
