// Projector: keeps a StateStore caught up with the ledger. A thread polls
// the durable size and applies new entries in index order (within ~20 ms
// of their acknowledgement). The store is in memory and rebuilt from the
// log on every start, so it can never disagree with the log for long.
//
// Thread-safe. Owns its thread; does not own the ledger or the store.
#ifndef ANNALS_STATE_PROJECTOR_H_
#define ANNALS_STATE_PROJECTOR_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>

#include "common/status.h"
#include "ledger/ledger.h"
#include "state/state_store.h"

namespace annals::state {

class Projector {
 public:
  Projector(ledger::Ledger* ledger, StateStore* store) : ledger_(ledger), store_(store) {}
  ~Projector() { Stop(); }

  // Applies everything durable now, in the calling thread.
  Status CatchUp();
  void Start();
  void Stop();
  // Blocks until entries [0, n) are applied or the timeout passes.
  bool WaitForApplied(uint64_t n, std::chrono::milliseconds timeout);

 private:
  void Run();

  ledger::Ledger* ledger_;
  StateStore* store_;
  std::mutex mu_;  // guards catch-up (one at a time) and the cv
  std::condition_variable cv_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace annals::state

#endif  // ANNALS_STATE_PROJECTOR_H_
