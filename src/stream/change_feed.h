// ChangeFeed: the one fan-out of durable ledger entries to subscribers
// (/v1/watch) and forwarders (NATS, syslog). A thread wakes when the ledger
// makes entries durable, has the projector apply them, builds each entry's
// Change once and appends it to a bounded in-memory buffer of the newest
// changes. Consumers keep their own position: they read from the buffer,
// or from the log (encoding again) when they are further back, so a
// consumer can start at any index and never misses or repeats one.
//
// Memory is bounded by the buffer (entries and bytes), whatever the number
// or speed of consumers; a consumer that falls behind the buffer while
// live is the consumer's problem (SSE cuts it off with a reason).
//
// Thread-safe. Owns its thread; does not own the ledger, store, projector
// or questions.
#ifndef ANNALS_STREAM_CHANGE_FEED_H_
#define ANNALS_STREAM_CHANGE_FEED_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/mutex.h"
#include "common/status.h"
#include "state/projector.h"
#include "stream/change.h"

namespace annals::stream {

struct ChangeFeedOptions {
  size_t buffer_entries = 65536;
  size_t buffer_bytes = 256u << 20;
  std::chrono::milliseconds tick{1000};  // how often consumers get a tick (heartbeats)
};

class ChangeFeed {
 public:
  // A registered reader, for wake-ups and for /metrics (lag). The consumer
  // updates `pos` (the next index it will look at) as it goes.
  struct Consumer {
    std::string kind;  // "watch", "syslog", "nats"
    std::string name;  // e.g. the subscriber's remote address
    std::atomic<uint64_t> pos{0};
    // Called on the feed thread: tick=false when new changes arrived,
    // tick=true every options.tick. Must be quick.
    std::function<void(bool tick)> wake;
    uint64_t id = 0;
  };

  ChangeFeed(ChangeSources sources, state::Projector* projector, ChangeFeedOptions options);
  ~ChangeFeed();

  // Starts after everything the store has applied now.
  void Start();
  void Stop();

  // Changes [0, next()) are available.
  uint64_t next() const;
  // The oldest index still in the buffer (== next() when it is empty).
  uint64_t buffer_begin() const;
  // Appends changes from index pos on (at most max_entries, and stops once
  // max_bytes of frames are collected) to *out: from the buffer, or else
  // from the log. *from_buffer says which. Nothing when pos >= next().
  Status Read(uint64_t pos, size_t max_entries, size_t max_bytes,
              std::vector<std::shared_ptr<const Change>>* out, bool* from_buffer) const;
  // Blocks until next() > pos, Stop(), or timeout; returns next().
  uint64_t WaitFor(uint64_t pos, std::chrono::milliseconds timeout);

  std::shared_ptr<Consumer> Register(std::string kind, std::string name, uint64_t pos,
                                     std::function<void(bool tick)> wake);
  void Unregister(const std::shared_ptr<Consumer>& c);

  // Prometheus lines: consumers by kind, lag of each consumer.
  std::string RenderMetrics() const;
  const ChangeSources& sources() const { return sources_; }

 private:
  void Run();
  Status Advance(uint64_t durable);
  void WakeAll(bool tick);

  const ChangeSources sources_;
  state::Projector* projector_;
  const ChangeFeedOptions options_;

  mutable SharedMutex buf_mu_;
  std::deque<std::shared_ptr<const Change>> buf_ GUARDED_BY(buf_mu_);
  size_t buf_bytes_ GUARDED_BY(buf_mu_) = 0;
  uint64_t next_ GUARDED_BY(buf_mu_) = 0;
  // Waiters on next_ (WaitFor); notified after next_ moves or on Stop.
  Mutex wait_mu_;
  CondVar wait_cv_;

  mutable Mutex consumers_mu_;
  std::vector<std::shared_ptr<Consumer>> consumers_ GUARDED_BY(consumers_mu_);
  uint64_t next_consumer_id_ GUARDED_BY(consumers_mu_) = 1;

  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace annals::stream

#endif  // ANNALS_STREAM_CHANGE_FEED_H_
