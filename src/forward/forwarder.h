// Forwarder: sends every change of the ledger, in index order, to one
// outside system (a Sink: syslog, NATS JetStream) and keeps its position
// durably (ForwardCursor), so that after a restart or an outage of either
// side it resumes where the last acknowledged batch ended. Delivery is at
// least once: a batch that failed, or was sent but not yet recorded when
// annals died, is sent again (receivers deduplicate by the ledger index).
//
// Thread-safe. Owns its thread; does not own the feed or the ledger.
#ifndef ANNALS_FORWARD_FORWARDER_H_
#define ANNALS_FORWARD_FORWARDER_H_

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/metrics.h"
#include "common/status.h"
#include "forward/forward_cursor.h"
#include "stream/change_feed.h"

namespace annals::forward {

// Where changes go. Called from the forwarder's thread only.
class Sink {
 public:
  virtual ~Sink() = default;
  // "syslog", "nats": the kind in metrics and in the cursor file name.
  virtual std::string kind() const = 0;
  // The destination, for messages and the cursor file.
  virtual std::string target() const = 0;
  // Sends the changes, in order; OK only when the destination has them (as
  // far as the protocol can tell). Connects first if needed; on failure the
  // next call starts over with a new connection.
  virtual Status Send(const std::vector<std::shared_ptr<const stream::Change>>& changes,
                      uint64_t checkpoint_size) = 0;
};

struct ForwarderOptions {
  // Send only entries covered by a published checkpoint (syslog: so the
  // receiver can check inclusion against the size it is told).
  bool wait_for_checkpoint = false;
  std::chrono::milliseconds save_interval{200};
  size_t max_batch = 1024;
};

class Forwarder {
 public:
  Forwarder(stream::ChangeFeed* feed, std::unique_ptr<Sink> sink, std::string cursor_path,
            Metrics* metrics, ForwarderOptions options);
  ~Forwarder();
  // Loads the cursor and starts the thread.
  Status Start();
  // Stops after the batch in flight and saves the cursor.
  void Stop();

 private:
  void Run();

  stream::ChangeFeed* feed_;
  std::unique_ptr<Sink> sink_;
  ForwardCursor cursor_;
  Metrics& metrics_;
  const ForwarderOptions options_;
  std::shared_ptr<stream::ChangeFeed::Consumer> consumer_;
  uint64_t pos_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace annals::forward

#endif  // ANNALS_FORWARD_FORWARDER_H_
