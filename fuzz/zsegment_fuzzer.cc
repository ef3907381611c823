// Compressed segments (log/compressed_segment.h), both ways.
//
// The first input byte is a mode, the rest the data:
//   bit 0 clear: the data is a compressed segment file from anywhere.
//     ExpandCompressedSegment must not crash; what it accepts is a segment
//     whose header names the compressed segment's first entry, and, if its
//     records scan clean, compressing it again expands to the same bytes.
//   bit 0 set: the data is cut into records (each byte b < 0x10 ends one),
//     made into a segment and compressed with 1 + (mode >> 1 & 7) entries
//     per frame; it must expand back byte for byte, and with any one byte
//     changed (the position from the data's first two bytes) must fail
//     with DataLoss.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/bytes.h"
#include "common/crc32c.h"
#include "common/status.h"
#include "fuzz_check.h"
#include "log/compressed_segment.h"
#include "log/segment_format.h"
#include "log/segment_log.h"

namespace {

using annals::OkStatus;
using annals::Status;
using annals::StatusCode;
namespace alog = annals::log;

std::string Header(uint64_t first_index) {
  std::string h(alog::kSegmentMagic, sizeof(alog::kSegmentMagic));
  annals::PutBigEndian32(&h, alog::kSegmentVersion);
  annals::PutBigEndian64(&h, first_index);
  annals::PutBigEndian32(&h, annals::crc32c::Mask(annals::crc32c::Value(h.data(), h.size())));
  return h;
}

void AppendRecord(std::string* dst, std::string_view data) {
  std::string len;
  annals::PutBigEndian32(&len, static_cast<uint32_t>(data.size()));
  const uint32_t crc = annals::crc32c::Extend(annals::crc32c::Value(len.data(), 4), data.data(), data.size());
  dst->append(len);
  annals::PutBigEndian32(dst, annals::crc32c::Mask(crc));
  dst->append(data);
}

// The offsets of a segment's records, if it scans clean.
bool Offsets(std::string_view image, std::vector<uint32_t>* offsets, uint64_t* first) {
  return alog::ScanSegment(
             image,
             [&](uint64_t, std::string_view d) {
               offsets->push_back(
                   static_cast<uint32_t>(d.data() - alog::kRecordHeaderSize - image.data()));
               return OkStatus();
             },
             first)
      .ok();
}

std::string Compress(std::string_view image, uint64_t first, const std::vector<uint32_t>& offsets,
                     uint32_t frame_entries) {
  std::string z;
  CHECK(alog::CompressSegment(image, first, offsets, frame_entries, 1, [&](std::string_view b) {
          z.append(b);
          return OkStatus();
        }).ok());
  return z;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t mode = data[0];
  const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);

  if ((mode & 1) == 0) {
    auto image = alog::ExpandCompressedSegment(rest);
    if (!image.ok()) {
      CHECK(image.status().code() == StatusCode::kDataLoss);
      return 0;
    }
    CHECK(image->size() > alog::kSegmentHeaderSize);
    const uint64_t named = annals::GetBigEndian64(rest.data() + 12);
    CHECK(image->compare(0, alog::kSegmentHeaderSize, Header(named)) == 0);
    std::vector<uint32_t> offsets;
    uint64_t first = 0;
    if (Offsets(*image, &offsets, &first)) {
      CHECK(first == named);
      CHECK(offsets.size() == annals::GetBigEndian32(rest.data() + 20));
      const uint32_t frame_entries = annals::GetBigEndian32(rest.data() + 24);
      auto again = alog::ExpandCompressedSegment(Compress(*image, first, offsets, frame_entries));
      CHECK(again.ok() && *again == *image);
    }
    return 0;
  }

  // Build a segment from the data's records.
  const uint64_t first = rest.size() > 2 ? static_cast<uint8_t>(rest[2]) * 256ull : 0;
  std::string image = Header(first);
  std::string record;
  for (char c : rest) {
    if (static_cast<uint8_t>(c) < 0x10 && !record.empty()) {
      AppendRecord(&image, record);
      record.clear();
    } else {
      record.push_back(c);
    }
  }
  if (!record.empty()) AppendRecord(&image, record);
  std::vector<uint32_t> offsets;
  uint64_t named = 0;
  CHECK(Offsets(image, &offsets, &named) && named == first);
  if (offsets.empty()) return 0;
  const std::string z = Compress(image, first, offsets, 1 + ((mode >> 1) & 7));
  auto back = alog::ExpandCompressedSegment(z);
  CHECK(back.ok() && *back == image);
  const size_t at = rest.size() >= 2
                        ? (static_cast<uint8_t>(rest[0]) * 256u + static_cast<uint8_t>(rest[1])) % z.size()
                        : 0;
  std::string bad = z;
  bad[at] = static_cast<char>(bad[at] ^ (1 + (mode >> 4)));
  auto broken = alog::ExpandCompressedSegment(bad);
  CHECK(!broken.ok() && broken.status().code() == StatusCode::kDataLoss);
  return 0;
}
