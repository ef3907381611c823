// Kubernetes watch streams as the API server sends them, and the ledger
// entries the watch collector makes of them (docs/format/entry.md,
// "Kubernetes watch event"). Pure parsing and formatting of untrusted
// bytes; thread-safe (per-thread parser).
//
// A watch response (`GET ...?watch=1`) is a chunked HTTP body of JSON
// frames, one per line: {"type":"ADDED|MODIFIED|DELETED|BOOKMARK|ERROR",
// "object":{...}}. ERROR carries a metav1.Status (code 410 "too old
// resource version" means: relist).
#ifndef ANNALS_INGEST_K8S_WATCH_H_
#define ANNALS_INGEST_K8S_WATCH_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "ingest/ingestor.h"

namespace annals::ingest {

enum class WatchEventType { kAdded, kModified, kDeleted, kBookmark, kError };
std::string_view WatchEventTypeName(WatchEventType t);

// What an object's metadata says about it (all may be empty for ERROR).
struct ObjectHead {
  std::string kind, api_version, uid, name, namespace_, resource_version;
};

struct WatchFrame {
  WatchEventType type = WatchEventType::kError;
  std::string_view object;  // the raw "object" member, exactly as sent
  ObjectHead head;          // ADDED/MODIFIED/DELETED: uid and resourceVersion set
  // ERROR: the Status.
  int error_code = 0;
  std::string error_reason, error_message;
};

// Parses one frame (one line of a watch stream, without its newline).
// ADDED/MODIFIED/DELETED need object.metadata.uid and resourceVersion;
// BOOKMARK needs metadata.resourceVersion; anything else is InvalidArgument
// naming what was wrong. The frame's views point into `line`. padded: the
// simdjson::SIMDJSON_PADDING bytes after `line` are readable, and the line
// is parsed where it lies instead of being copied first.
StatusOr<WatchFrame> ParseWatchFrame(std::string_view line, bool padded = false);

// Reads kind, apiVersion and metadata (uid, name, namespace,
// resourceVersion) of one object's JSON. InvalidArgument if it is not a
// JSON object with a metadata object.
StatusOr<ObjectHead> ReadObjectHead(std::string_view object);

// Splits a byte stream into lines. Bytes are fed as they arrive; complete
// lines come out (without \n or \r\n); an unfinished line waits. A line
// longer than max_line is an error (a stream that never ends a frame).
// Thread-compatible.
class LineSplitter {
 public:
  explicit LineSplitter(size_t max_line) : max_line_(max_line) {}
  // Appends bytes; false if the unfinished line grew past max_line.
  bool Feed(std::string_view bytes);
  // The complete lines so far, as views into an internal buffer valid until
  // the next Feed/Consume/Reset; blank lines skipped.
  std::vector<std::string_view> Lines() const;
  // Drops the complete lines (keeps the unfinished one).
  void Consume();
  // Hands the complete lines over instead of dropping them: returns the
  // buffer that holds them (the bytes Lines() viewed, at the same offsets
  // from its data()) and goes on in `spare` (cleared, its capacity kept)
  // with the unfinished line. No copy of the lines is made.
  std::string TakeLines(std::string spare);
  // The buffer's bytes (what Lines() views point into).
  const char* data() const { return buf_.data(); }
  void Reset() { buf_.clear(); }
  size_t pending_bytes() const { return buf_.size(); }

 private:
  size_t max_line_;
  std::string buf_;
};

// One ledger entry the watch collector makes: a watch event, a change a
// relist found (observed = "relist"), or a relist marker (type kRelist).
struct WatchRecord {
  enum Type { kAdded, kModified, kDeleted, kRelist };
  Type type = kAdded;
  std::string group, version, resource;  // e.g. "apps", "v1", "deployments"
  std::string kind;                      // e.g. "Deployment"
  std::string observed;                  // "" (a watch event) or "relist"
  ObjectHead head;                       // of the object (kRelist: rv = list rv)
  std::string_view object;               // payload bytes
};
std::string_view WatchRecordTypeName(WatchRecord::Type t);

// The dedup key: "watch:<group>/<resource>:<uid>:<rv>" for events,
// "...:<uid>:<rv>:gone" for deletions found by a relist, and
// "watch-relist:<group>/<resource>:<rv>" for relist markers.
std::string WatchKey(const WatchRecord& r);
// Entry metadata (type "k8s.watch" or "k8s.watch.relist").
std::string WatchMeta(const WatchRecord& r, std::string_view source, std::string_view receive_time);
// The ingest item for a record (meta, payload = r.object, key).
IngestItem WatchItem(const WatchRecord& r, std::string_view source, std::string_view receive_time);

// The line form a remote collector posts to /v1/ingest/k8s-watch:
// {"group":..,"version":..,"resource":..,"kind":..,"type":..,
//  "observed":..,"object":<the object's bytes>} (kRelist: "object" is the
// marker's JSON).
std::string WatchRecordLine(const WatchRecord& r);
// Parses such a line; views point into `line`. InvalidArgument naming
// `what` on any violation (the object is checked as ParseWatchFrame does).
StatusOr<WatchRecord> ParseWatchRecordLine(std::string_view line, std::string_view what);

}  // namespace annals::ingest

#endif  // ANNALS_INGEST_K8S_WATCH_H_
