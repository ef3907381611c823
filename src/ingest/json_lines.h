// Turns untrusted request bodies into ledger entries. A body is all or
// nothing: the first bad line fails the whole body with a Status naming its
// line number, and nothing is built. Thread-safe (per-call parser state).
#ifndef ANNALS_INGEST_JSON_LINES_H_
#define ANNALS_INGEST_JSON_LINES_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace annals::ingest {

struct Payload {
  std::string meta;          // entry metadata JSON (what the ledger adds)
  std::string_view payload;  // the original bytes, exactly as received
};

// Checks that `line` is one JSON object: valid UTF-8, well-formed, nesting
// at most json_util::kMaxJsonDepth. `what` names it in errors ("line 3").
Status ValidateJsonObject(std::string_view line, std::string_view what);

// Splits a JSON-lines body (LF or CRLF; blank lines skipped) and validates
// each line. Returns views into `body`.
StatusOr<std::vector<std::string_view>> SplitJsonLines(std::string_view body);
// Same split without validation; line numbers (1-based) of each line.
std::vector<std::pair<std::string_view, size_t>> SplitLines(std::string_view body);

// The same split, one line at a time: a reader that works on each line as
// it is found reads it while the search for its end has just brought it
// into the cache.
class LineCursor {
 public:
  explicit LineCursor(std::string_view body) : rest_(body) {}
  // The next non-blank line (trimmed of spaces, tabs and CR) and its
  // 1-based number; false at the end of the body.
  bool Next(std::string_view* line, size_t* line_no);

 private:
  std::string_view rest_;
  size_t line_no_ = 0;
};

// RFC 3339 UTC with microseconds, e.g. "2026-11-25T15:08:21.123456Z".
std::string NowRfc3339();

// Entry metadata for one payload: {"src":..., "rt":..., "ct":"application/json"}
// and, when not empty, "key" (its dedup key).
std::string MakeMeta(std::string_view source, std::string_view receive_time,
                     std::string_view key = {});

}  // namespace annals::ingest

#endif  // ANNALS_INGEST_JSON_LINES_H_
