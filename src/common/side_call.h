// SideCall: one function run on a thread of its own, on request, while the
// caller does something else: Start() wakes the thread to run it, Wait()
// returns its status. One Start/Wait pair at a time (one caller). The ledger's
// writer uses it to sync the sealed store while it writes and syncs the log.
//
// Thread-compatible between Start and Wait; the thread itself is internal.
#ifndef ANNALS_COMMON_SIDE_CALL_H_
#define ANNALS_COMMON_SIDE_CALL_H_

#include <functional>
#include <thread>

#include "common/mutex.h"
#include "common/status.h"
#include "common/thread_util.h"

namespace annals {

class SideCall {
 public:
  SideCall(std::string thread_name, std::function<Status()> fn) : fn_(std::move(fn)) {
    thread_ = std::thread([this, name = std::move(thread_name)] {
      SetThreadName(name.c_str());
      Loop();
    });
  }
  ~SideCall() {
    {
      MutexLock l(&mu_);
      stop_ = true;
      cv_.NotifyAll();
    }
    thread_.join();
  }
  SideCall(const SideCall&) = delete;
  SideCall& operator=(const SideCall&) = delete;

  void Start() {
    MutexLock l(&mu_);
    requested_ = true;
    done_ = false;
    cv_.NotifyAll();
  }
  Status Wait() {
    MutexLock l(&mu_);
    while (!done_) cv_.Wait(&l);
    return status_;
  }

 private:
  void Loop() {
    MutexLock l(&mu_);
    for (;;) {
      while (!requested_ && !stop_) cv_.Wait(&l);
      if (stop_) return;
      requested_ = false;
      l.Unlock();
      Status s = fn_();
      l.Lock();
      status_ = s;
      done_ = true;
      cv_.NotifyAll();
    }
  }

  std::function<Status()> fn_;
  Mutex mu_;
  CondVar cv_;
  bool requested_ GUARDED_BY(mu_) = false;
  bool done_ GUARDED_BY(mu_) = true;
  bool stop_ GUARDED_BY(mu_) = false;
  Status status_ GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace annals

#endif  // ANNALS_COMMON_SIDE_CALL_H_
