// ForwardCursor: a forwarder's durable position — the next ledger index to
// send — in DATA/forward/<name>.pos (docs/format/forward.md). Saved with
// WriteFileAtomic (tmp, fdatasync, rename, fsync of the directory), so after
// a crash it names an index at or before the first one not yet delivered.
//
// Thread-compatible.
#ifndef ANNALS_FORWARD_FORWARD_CURSOR_H_
#define ANNALS_FORWARD_FORWARD_CURSOR_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace annals::forward {

// "v1 next=<N> target=<target>\n"
std::string EncodeCursor(uint64_t next, std::string_view target);
// The next index, or InvalidArgument if `text` is not a cursor.
StatusOr<uint64_t> ParseCursor(std::string_view text);

class ForwardCursor {
 public:
  ForwardCursor(std::string path, std::string target) : path_(std::move(path)), target_(std::move(target)) {}
  // The saved position; 0 if there is no file. A file that does not parse
  // is an error (forwarding from 0 again would repeat everything).
  StatusOr<uint64_t> Load() const;
  Status Save(uint64_t next);
  const std::string& path() const { return path_; }

 private:
  std::string path_, target_;
};

}  // namespace annals::forward

#endif  // ANNALS_FORWARD_FORWARD_CURSOR_H_
