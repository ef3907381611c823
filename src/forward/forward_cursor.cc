#include "forward/forward_cursor.h"

#include "common/bytes.h"
#include "common/file_util.h"
#include "forward/forward_format.h"

namespace annals::forward {

std::string EncodeCursor(uint64_t next, std::string_view target) {
  std::string t(target);
  for (char& c : t)
    if (c == '\n' || c == '\r' || c == ' ') c = '_';
  return kCursorPrefix + std::to_string(next) + kCursorTarget + t + "\n";
}

StatusOr<uint64_t> ParseCursor(std::string_view text) {
  constexpr std::string_view kPrefix = kCursorPrefix;
  if (!text.starts_with(kPrefix) || !text.ends_with("\n"))
    return InvalidArgumentError("not a forward cursor (want \"v1 next=N target=...\")");
  text.remove_prefix(kPrefix.size());
  size_t sp = text.find(' ');
  if (sp == std::string_view::npos || !text.substr(sp).starts_with(kCursorTarget))
    return InvalidArgumentError("forward cursor without target");
  auto n = ParseDecimal(text.substr(0, sp));
  if (!n) return InvalidArgumentError("forward cursor: next is not a decimal integer");
  return *n;
}

StatusOr<uint64_t> ForwardCursor::Load() const {
  if (!FileExists(path_)) return uint64_t{0};
  ASSIGN_OR_RETURN(std::string text, ReadFileToString(path_));
  auto n = ParseCursor(text);
  if (!n.ok()) return DataLossError(path_ + ": " + n.status().message());
  return *n;
}

Status ForwardCursor::Save(uint64_t next) {
  RETURN_IF_ERROR(MakeDirs(DirName(path_)));
  return WriteFileAtomic(path_, EncodeCursor(next, target_), 0644);
}

}  // namespace annals::forward
