// Feeds arbitrary bytes to ledger::DecodeEntry. It must never crash; what it
// accepts must be exactly the envelope of entry_format.h, and an inline entry
// must re-encode (EncodeEntry) to the same bytes.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "common/bytes.h"
#include "ledger/entry.h"
#include "ledger/entry_format.h"
#include "fuzz_check.h"


extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace annals::ledger;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  auto d = DecodeEntry(input);
  if (!d.ok()) {
    CHECK(d.status().code() == annals::StatusCode::kDataLoss);
    return 0;
  }
  CHECK(size >= kEntryHeaderSize);
  CHECK(static_cast<uint8_t>(input[0]) == kEntryVersion);
  const uint8_t flags = static_cast<uint8_t>(input[1]);
  CHECK((flags & ~kKnownFlags) == 0);
  const size_t meta_len = annals::GetBigEndian16(input.data() + 2);
  CHECK(d->meta.data() == input.data() + kEntryHeaderSize && d->meta.size() == meta_len);
  CHECK(d->external == ((flags & kFlagExternalPayload) != 0));
  if (d->external) {
    CHECK(size == kEntryHeaderSize + meta_len + kExternalBodySize);
    CHECK(d->payload.empty());
    std::string body(reinterpret_cast<const char*>(d->payload_digest.data()), 32);
    annals::PutBigEndian64(&body, d->payload_size);
    CHECK(input.substr(kEntryHeaderSize + meta_len) == body);
    return 0;
  }
  CHECK(kEntryHeaderSize + meta_len + d->payload.size() == size);
  CHECK(d->payload_size == d->payload.size());
  CHECK(d->payload.data() == input.data() + kEntryHeaderSize + meta_len);
  // Round trip: everything a log can hold (<= kMaxEntrySize) re-encodes
  // inline to the same bytes, unless its meta is too large to be encoded.
  const size_t max_meta = kMaxEntrySize - kEntryHeaderSize - kExternalBodySize;
  bool needs_blob = true;
  auto e = EncodeEntry(d->meta, d->payload, &needs_blob);
  if (meta_len > max_meta) {
    CHECK(!e.ok());
  } else if (size <= kMaxEntrySize) {
    CHECK(e.ok() && !needs_blob && *e == input);
  } else {
    CHECK(e.ok() && needs_blob);
  }
  return 0;
}
