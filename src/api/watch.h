// WatchSession: one /v1/watch subscriber. Sends the ChangeFeed's changes
// that match its filter, from its start index on, as Server-Sent Events
// over a ResponseStream (docs/format/watch.md): from the log while it is
// behind the feed's buffer, then from the buffer, then live. One write at a
// time; the next batch is gathered when the previous one is written, so a
// slow client holds at most one batch and its place in the shared buffer.
// A subscriber that falls behind the buffer once live is sent an `error`
// event naming the id to resume from, and disconnected.
//
// Thread-safe; owned by shared_ptr (the stream's callbacks and the feed's
// wake-up hold it until the connection ends).
#ifndef ANNALS_API_WATCH_H_
#define ANNALS_API_WATCH_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "api/http.h"
#include "common/metrics.h"
#include "stream/change_feed.h"

namespace annals::api {

struct WatchOptions {
  stream::ChangeFilter filter;
  uint64_t from = 0;  // first index to consider
  std::chrono::milliseconds heartbeat{15000};
  std::string remote;
};

// Parses /v1/watch's query and Last-Event-ID into options; InvalidArgument
// names the bad parameter. Without from= or Last-Event-ID, starts at
// `head` (only new changes). A position past both `head` and `log_end` (the
// log's durable size) is InvalidArgument: this log never served it.
StatusOr<WatchOptions> ParseWatchRequest(const Target& t, const HttpRequest& req, uint64_t head,
                                         uint64_t log_end);

class WatchSession : public std::enable_shared_from_this<WatchSession> {
 public:
  WatchSession(stream::ChangeFeed* feed, Metrics* metrics, WatchOptions options);
  // Starts sending on the stream.
  void Start(std::shared_ptr<ResponseStream> stream);

 private:
  void Pump();
  void Wake(bool tick);
  void Finish();
  void CutOff(uint64_t behind);

  stream::ChangeFeed* feed_;
  Metrics& metrics_;
  const WatchOptions options_;
  std::shared_ptr<ResponseStream> stream_;
  std::shared_ptr<stream::ChangeFeed::Consumer> consumer_;
  uint64_t pos_;             // next index to look at; on the connection's thread
  std::atomic<bool> live_{false};  // reached the buffer: falling out of it now is slowness
  std::atomic<bool> waiting_{false};  // caught up; the next wake-up pumps
  std::atomic<bool> done_{false};
  std::atomic<int64_t> last_write_ms_{0};
  std::atomic<int64_t> stuck_since_ms_{0};  // behind the buffer with a write pending
};

}  // namespace annals::api

#endif  // ANNALS_API_WATCH_H_
