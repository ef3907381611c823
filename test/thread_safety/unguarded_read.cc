// Must NOT compile under clang -Wthread-safety -Werror=thread-safety: it
// reads a GUARDED_BY member without its lock. The ctest
// thread_safety_analysis_is_on (clang builds) expects exactly that error,
// so the annotations in src/ are known to be checked, not decoration.
#include "common/mutex.h"

namespace annals {

class Counter {
 public:
  void Add() {
    MutexLock lock(&mu_);
    ++n_;
  }
  int Peek() const { return n_; }  // the violation

 private:
  mutable Mutex mu_;
  int n_ GUARDED_BY(mu_) = 0;
};

int Use() {
  Counter c;
  c.Add();
  return c.Peek();
}

}  // namespace annals
