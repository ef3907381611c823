// SseParser: splits a text/event-stream body (Server-Sent Events, as the
// WHATWG HTML standard parses it) into events: lines end with CRLF, LF or
// CR; "field: value" lines; lines starting with ':' are comments
// (heartbeats); a blank line dispatches the event. Fed in arbitrary pieces.
// Used by `annals watch`, the tests and the benchmark.
//
// Thread-compatible. Pure: no I/O; depends only on the standard library.
#ifndef ANNALS_CLIENT_SSE_H_
#define ANNALS_CLIENT_SSE_H_

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace annals::client {

struct SseEvent {
  std::string id;     // the last id: seen (carried over, as in a browser)
  std::string event;  // "" means "message"
  std::string data;   // data: lines joined with '\n'
};

class SseParser {
 public:
  // Lines longer than this are an error (a stream that never ends a line).
  static constexpr size_t kMaxLine = 64u << 20;

  // Parses bytes, calling on_event for each complete event. Returns false
  // if on_event returned false (stop) or a line exceeded kMaxLine
  // (error() is then set).
  bool Feed(std::string_view bytes, const std::function<bool(const SseEvent&)>& on_event);
  // The last event id seen (what to send as Last-Event-ID).
  const std::string& last_event_id() const { return last_id_; }
  uint64_t comments() const { return comments_; }
  bool error() const { return error_; }

 private:
  bool Line(std::string_view line, const std::function<bool(const SseEvent&)>& on_event);

  std::string line_;
  bool after_cr_ = false;  // the previous byte ended a line with CR
  SseEvent cur_;
  bool has_data_ = false;
  std::string last_id_;
  uint64_t comments_ = 0;
  bool error_ = false;
};

}  // namespace annals::client

#endif  // ANNALS_CLIENT_SSE_H_
