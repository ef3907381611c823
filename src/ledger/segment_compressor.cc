// Ledger::CompressLoop: the background thread that compresses sealed
// segments (log::SegmentLog::CompressOne, docs/format/segment.md).
#include <pthread.h>
#include <sched.h>

#include <chrono>

#include "common/log.h"
#include "ledger/ledger.h"

namespace annals::ledger {

void Ledger::CompressLoop() {
  // Idle priority: the thread runs only on CPU that ingest and the
  // questions leave unused, so compression never slows an append. Under
  // saturation sealed segments wait, plain, until there is room.
  sched_param idle{};
  if (pthread_setschedparam(pthread_self(), SCHED_IDLE, &idle) != 0)
    log::Warning("segment compression: could not lower the thread's priority");
  auto pause = [this](std::chrono::seconds d) {
    MutexLock lock(&scrub_mu_);
    const auto until = std::chrono::steady_clock::now() + d;
    while (!scrub_stop_.load() && std::chrono::steady_clock::now() < until)
      scrub_cv_.WaitFor(&lock, d);
  };
  while (!scrub_stop_.load()) {
    auto done = log_->CompressOne(options_.segment_compression_level);
    if (!done.ok()) {
      // The segment stays plain and readable; the scrub and `annals
      // verify` report damage. Try again later (after space is freed, say).
      log::Warning("segment compression: %s", done.status().message().c_str());
      pause(std::chrono::seconds(600));
    } else if (!*done) {
      pause(std::chrono::seconds(5));
    }
  }
}

}  // namespace annals::ledger
