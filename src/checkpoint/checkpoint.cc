#include "checkpoint/checkpoint.h"

#include <cstring>
#include <optional>

#include "checkpoint/note.h"
#include "common/bytes.h"

namespace annals::checkpoint {

std::string Checkpoint::Marshal() const {
  std::string out = origin;
  out += "\n";
  out += std::to_string(size);
  out += "\n";
  out += Base64Encode(HashBytes(root));
  out += "\n";
  for (const std::string& ext : extensions) {
    out += ext;
    out += "\n";
  }
  return out;
}

StatusOr<Checkpoint> Parse(std::string_view text) {
  if (text.size() > note::kMaxNoteSize) return InvalidArgumentError("checkpoint: too large");
  if (text.empty() || text.back() != '\n') {
    return InvalidArgumentError("checkpoint: does not end in newline");
  }
  if (!note::ValidNoteText(text)) {
    return InvalidArgumentError("checkpoint: invalid UTF-8 or control character");
  }
  std::vector<std::string_view> lines;
  while (!text.empty()) {
    size_t nl = text.find('\n');  // always found: text ends in '\n'
    lines.push_back(text.substr(0, nl));
    text.remove_prefix(nl + 1);
  }
  if (lines.size() < 3) return InvalidArgumentError("checkpoint: fewer than 3 lines");
  Checkpoint c;
  if (lines[0].empty()) return InvalidArgumentError("checkpoint: empty origin");
  c.origin = std::string(lines[0]);
  std::optional<uint64_t> size = ParseDecimal(lines[1]);
  if (!size) return InvalidArgumentError("checkpoint: bad tree size");
  c.size = *size;
  std::optional<std::string> root = Base64Decode(lines[2]);
  if (!root) return InvalidArgumentError("checkpoint: bad root hash base64");
  if (root->size() != c.root.size()) {
    return InvalidArgumentError("checkpoint: root hash is not 32 bytes");
  }
  std::memcpy(c.root.data(), root->data(), c.root.size());
  for (size_t i = 3; i < lines.size(); ++i) {
    if (lines[i].empty()) return InvalidArgumentError("checkpoint: empty extension line");
    c.extensions.emplace_back(lines[i]);
  }
  return c;
}

}  // namespace annals::checkpoint
