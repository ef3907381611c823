// The bytes of one log entry (the Merkle leaf data). See docs/format/entry.md.
//
//   entry := version u8 (=0x01) | flags u8 | meta_len u16 BE | meta | body
//   meta  := a JSON object (UTF-8): what the ledger adds (source, receive time,
//            content type, dedup key, ...)
//   body  := the payload bytes exactly as received          (flags bit0 = 0)
//          | SHA-256(payload) (32) | payload_len u64 BE     (flags bit0 = 1)
//
// An entry is at most 65,535 bytes (C2SP entry bundles use uint16 lengths).
// A payload that does not fit is stored content-addressed in the blob store
// and the entry carries its digest (flags bit0 = 1).
#ifndef ANNALS_LEDGER_ENTRY_FORMAT_H_
#define ANNALS_LEDGER_ENTRY_FORMAT_H_

#include <cstddef>
#include <cstdint>

namespace annals::ledger {

inline constexpr uint8_t kEntryVersion = 0x01;
inline constexpr uint8_t kFlagExternalPayload = 0x01;
inline constexpr uint8_t kKnownFlags = kFlagExternalPayload;
inline constexpr size_t kEntryHeaderSize = 4;
inline constexpr size_t kMaxEntrySize = 65535;
inline constexpr size_t kExternalBodySize = 32 + 8;

}  // namespace annals::ledger

#endif  // ANNALS_LEDGER_ENTRY_FORMAT_H_
