// C2SP tlog-checkpoint bodies. Pure, thread-safe.
#ifndef ANNALS_CHECKPOINT_CHECKPOINT_H_
#define ANNALS_CHECKPOINT_CHECKPOINT_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/sha256.h"
#include "common/status.h"

namespace annals::checkpoint {

struct Checkpoint {
  std::string origin;
  uint64_t size = 0;
  Hash root{};
  std::vector<std::string> extensions;  // extra lines, without '\n'

  // "<origin>\n<size>\n<base64 root>\n[ext\n...]".
  std::string Marshal() const;
};

// Parses a checkpoint body (the signed note's text). Strict: decimal size
// without leading zeros, 32-byte base64 root, non-empty origin, no empty
// extension lines, text ends with '\n'.
StatusOr<Checkpoint> Parse(std::string_view text);

}  // namespace annals::checkpoint

#endif  // ANNALS_CHECKPOINT_CHECKPOINT_H_
