// Body images (state/body_images.h), both ways.
//
// The first input byte is a mode, the rest the data:
//   bit 0 clear: the data is an image file from anywhere. Parsing it and
//     reading its blocks must not crash and fails only with DataLoss; an
//     image read whole, encoded again from its records, reads back to the
//     same records.
//   bit 0 set: the data is cut into bodies (each byte b < 0x10 ends one),
//     stored under indexes 1 + (mode >> 1) apart; the image must read back
//     body for body, and with any one byte changed (the position from the
//     data's first two bytes) must fail with DataLoss.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"
#include "fuzz_check.h"
#include "state/body_images.h"

namespace {

using annals::OkStatus;
using annals::Status;
using annals::StatusCode;
namespace st = annals::state;
using Records = std::vector<std::pair<uint64_t, std::string>>;

// Every record of an image held in `file`, or the first error.
Status ReadAll(std::string_view file, st::BodyImages::Image* image, Records* records) {
  annals::Hash last{};
  auto parsed = st::ParseBodyImage(
      file.size(),
      [&](uint64_t off, size_t n, std::string* out) -> Status {
        CHECK(off + n <= file.size());
        out->assign(file.substr(off, n));
        return OkStatus();
      },
      &last);
  if (!parsed.ok()) return parsed.status();
  *image = *parsed;
  for (const auto& b : image->blocks) {
    CHECK(b.zoffset + b.zlength <= file.size());
    Status s = st::ReadBodyImageBlock(file.substr(b.zoffset, b.zlength), b,
                                      [&](uint64_t i, std::string_view body) { records->emplace_back(i, body); });
    if (!s.ok()) return s;
  }
  CHECK(records->size() == image->records);
  return OkStatus();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t mode = data[0];
  const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  const annals::Hash last{};

  if ((mode & 1) == 0) {
    st::BodyImages::Image image;
    Records records;
    Status s = ReadAll(rest, &image, &records);
    if (!s.ok()) {
      CHECK(s.code() == StatusCode::kDataLoss);
      return 0;
    }
    for (size_t k = 1; k < records.size(); ++k) CHECK(records[k - 1].first < records[k].first);
    auto again = st::EncodeBodyImage(image.applied, image.time, last, records);
    CHECK(again.ok());
    st::BodyImages::Image image2;
    Records records2;
    CHECK(ReadAll(*again, &image2, &records2).ok());
    CHECK(records2 == records && image2.applied == image.applied && image2.time == image.time);
    return 0;
  }

  Records records;
  const uint64_t step = 1 + (mode >> 1);
  std::string body;
  for (char c : rest) {
    if (static_cast<uint8_t>(c) < 0x10) {
      records.emplace_back(records.size() * step, body);
      body.clear();
    } else {
      body.push_back(c);
    }
  }
  if (!body.empty()) records.emplace_back(records.size() * step, body);
  const uint64_t applied = records.size() * step + 1;
  auto z = st::EncodeBodyImage(applied, 1700000000000000, last, records);
  CHECK(z.ok());
  st::BodyImages::Image image;
  Records back;
  CHECK(ReadAll(*z, &image, &back).ok());
  CHECK(back == records && image.applied == applied);
  const size_t at = rest.size() >= 2
                        ? (static_cast<uint8_t>(rest[0]) * 256u + static_cast<uint8_t>(rest[1])) % z->size()
                        : 0;
  std::string bad = *z;
  bad[at] = static_cast<char>(bad[at] ^ (1 + (mode >> 4)));
  Records ignored;
  Status broken = ReadAll(bad, &image, &ignored);
  CHECK(!broken.ok() && broken.code() == StatusCode::kDataLoss);
  return 0;
}
