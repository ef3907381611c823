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
  auto pause = [this](std::chrono::milliseconds d) {
    MutexLock lock(&scrub_mu_);
    const auto until = std::chrono::steady_clock::now() + d;
    while (!scrub_stop_.load() && std::chrono::steady_clock::now() < until)
      scrub_cv_.WaitFor(&lock, d);
  };
  using std::chrono::seconds;
  while (!scrub_stop_.load()) {
    const auto t0 = std::chrono::steady_clock::now();
    const uint64_t before = log_->footprint().compressed_image_bytes;
    auto done = log_->CompressOne(options_.segment_compression_level);
    if (!done.ok()) {
      // The segment stays plain and readable; the scrub and `annals
      // verify` report damage. Try again later (after space is freed, say).
      log::Warning("segment compression: %s", done.status().message().c_str());
      pause(seconds(600));
    } else if (!*done) {
      // Nothing sealed: look again in 5 s. Woken by the writer at each seal
      // instead, ingest_bench's 5-second real-mix runs fell in three pairs
      // out of three (median 144k -> 116k events/s); 30-second runs with
      // this look, compressing during ingest, showed no cost against no
      // compression (docs/performance.md, "Segment compression").
      pause(seconds(5));
    } else if (options_.compression_bytes_per_second > 0) {
      // Segments one after another (a backlog after a burst) are spaced
      // out: each one's reads, fdatasync and the removal of the segment it
      // replaces would otherwise crowd the writer's fdatasync.
      const double want = static_cast<double>(log_->footprint().compressed_image_bytes - before) /
                          static_cast<double>(options_.compression_bytes_per_second);
      const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (want > took) pause(std::chrono::milliseconds(static_cast<int64_t>((want - took) * 1000)));
    }
  }
}

}  // namespace annals::ledger
