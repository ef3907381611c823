#include "ledger/entry.h"

#include <cstring>

#include "common/bytes.h"
#include "ledger/entry_format.h"

namespace annals::ledger {

StatusOr<std::string> EncodeEntry(std::string_view meta, std::string_view payload,
                                  bool* needs_blob, Hash* payload_digest) {
  if (meta.size() > kMaxEntrySize - kEntryHeaderSize - kExternalBodySize)
    return InvalidArgumentError("entry metadata too large: " + std::to_string(meta.size()) + " bytes");
  std::string out;
  const bool external = kEntryHeaderSize + meta.size() + payload.size() > kMaxEntrySize;
  out.reserve(kEntryHeaderSize + meta.size() + (external ? kExternalBodySize : payload.size()));
  out.push_back(static_cast<char>(kEntryVersion));
  out.push_back(static_cast<char>(external ? kFlagExternalPayload : 0));
  PutBigEndian16(&out, static_cast<uint16_t>(meta.size()));
  out.append(meta);
  if (external) {
    Hash h = Sha256(payload);
    out.append(HashBytes(h));
    if (payload_digest) *payload_digest = h;
    PutBigEndian64(&out, payload.size());
  } else {
    out.append(payload);
  }
  if (needs_blob) *needs_blob = external;
  return out;
}

StatusOr<DecodedEntry> DecodeEntry(std::string_view e) {
  if (e.size() < kEntryHeaderSize) return DataLossError("entry shorter than its header");
  if (static_cast<uint8_t>(e[0]) != kEntryVersion)
    return DataLossError("unknown entry version " + std::to_string(static_cast<uint8_t>(e[0])));
  uint8_t flags = static_cast<uint8_t>(e[1]);
  if (flags & ~kKnownFlags) return DataLossError("unknown entry flags");
  size_t meta_len = GetBigEndian16(e.data() + 2);
  if (e.size() - kEntryHeaderSize < meta_len) return DataLossError("entry metadata truncated");
  DecodedEntry d;
  d.meta = e.substr(kEntryHeaderSize, meta_len);
  std::string_view body = e.substr(kEntryHeaderSize + meta_len);
  if (flags & kFlagExternalPayload) {
    if (body.size() != kExternalBodySize) return DataLossError("external payload reference malformed");
    d.external = true;
    std::memcpy(d.payload_digest.data(), body.data(), 32);
    d.payload_size = GetBigEndian64(body.data() + 32);
  } else {
    d.payload = body;
    d.payload_size = body.size();
  }
  return d;
}

}  // namespace annals::ledger
