// Entry: encode and decode the envelope of one log entry (entry_format.h).
// Pure functions, thread-safe.
#ifndef ANNALS_LEDGER_ENTRY_H_
#define ANNALS_LEDGER_ENTRY_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/sha256.h"
#include "common/status.h"

namespace annals::ledger {

struct DecodedEntry {
  std::string_view meta;     // JSON object text
  bool external = false;
  std::string_view payload;  // inline payload (empty when external)
  Hash payload_digest{};     // when external
  uint64_t payload_size = 0; // when external
};

// Builds an entry with the payload inline if it fits, else with its digest;
// *needs_blob tells the caller to store the payload in the blob store first,
// under *payload_digest (if given; set only then). Fails if meta alone does
// not fit.
StatusOr<std::string> EncodeEntry(std::string_view meta, std::string_view payload,
                                  bool* needs_blob, Hash* payload_digest = nullptr);
// Strict: version, known flags, lengths exact.
StatusOr<DecodedEntry> DecodeEntry(std::string_view entry);

}  // namespace annals::ledger

#endif  // ANNALS_LEDGER_ENTRY_H_
