// Body image files: what is encoded reads back record for record, a change
// of any one byte (header, block, block index, trailer) is DataLoss before
// any body is handed out, and a truncated or foreign file is refused.
#include "state/body_images.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

namespace annals::state {
namespace {

#define ASSERT_OK(expr)                                   \
  do {                                                    \
    const Status ok_status_ = (expr);                     \
    ASSERT_TRUE(ok_status_.ok()) << ok_status_.ToString(); \
  } while (0)

using Records = std::vector<std::pair<uint64_t, std::string>>;

Status ReadAll(std::string_view file, BodyImages::Image* image, Records* records, Hash* last) {
  ASSIGN_OR_RETURN(*image, ParseBodyImage(
                               file.size(),
                               [&](uint64_t off, size_t n, std::string* out) -> Status {
                                 if (off + n > file.size()) return OutOfRangeError("beyond the file");
                                 out->assign(file.substr(off, n));
                                 return OkStatus();
                               },
                               last));
  for (const auto& b : image->blocks)
    RETURN_IF_ERROR(ReadBodyImageBlock(file.substr(b.zoffset, b.zlength), b,
                                       [&](uint64_t i, std::string_view body) { records->emplace_back(i, body); }));
  return OkStatus();
}

// 300 bodies of 1-2 KB: several 64 KiB blocks.
Records Bodies() {
  Records r;
  for (uint64_t k = 0; k < 300; ++k) {
    std::string body = R"({"kind":"Pod","metadata":{"name":"web-)" + std::to_string(k) + R"("}})";
    body.append(1000 + (k * 37) % 1000, static_cast<char>('a' + k % 26));
    r.emplace_back(10 + k * 7, body);
  }
  r.emplace_back(10 + 300 * 7, "");  // a version without a body
  return r;
}

TEST(BodyImageFile, ReadsBackRecordForRecord) {
  Hash last{};
  last[0] = 0xab;
  const Records want = Bodies();
  auto file_or = EncodeBodyImage(5000, 1700000000123456, last, want);
  ASSERT_TRUE(file_or.ok()) << file_or.status().ToString();
  const std::string& file = *file_or;
  BodyImages::Image image;
  Records got;
  Hash read_last{};
  ASSERT_OK(ReadAll(file, &image, &got, &read_last));
  EXPECT_EQ(got, want);
  EXPECT_EQ(read_last, last);
  EXPECT_EQ(image.applied, 5000u);
  EXPECT_EQ(image.time, 1700000000123456);
  EXPECT_EQ(image.records, want.size());
  EXPECT_GE(image.blocks.size(), 4u);
}

TEST(BodyImageFile, EveryChangedByteIsDataLoss) {
  auto file_or = EncodeBodyImage(5000, 1700000000123456, Hash{}, Bodies());
  ASSERT_TRUE(file_or.ok()) << file_or.status().ToString();
  const std::string& file = *file_or;
  // Every byte of the header, index and trailer; every 97th of the blocks.
  const size_t index_at = file.size() - 24 - 32 * 8;  // somewhere before the index
  for (size_t at = 0; at < file.size(); ++at) {
    if (at >= 80 && at < index_at && at % 97 != 0) continue;
    std::string bad = file;
    bad[at] ^= 0x04;
    BodyImages::Image image;
    Records got;
    Hash last{};
    Status s = ReadAll(bad, &image, &got, &last);
    ASSERT_EQ(s.code(), StatusCode::kDataLoss) << "byte " << at << " of " << file.size() << ": " << s.ToString();
  }
}

TEST(BodyImageFile, TruncatedOrForeignFilesAreRefused) {
  auto file_or = EncodeBodyImage(5000, 0, Hash{}, Bodies());
  ASSERT_TRUE(file_or.ok()) << file_or.status().ToString();
  const std::string& file = *file_or;
  for (size_t n : {size_t{0}, size_t{79}, size_t{80}, file.size() / 2, file.size() - 1}) {
    BodyImages::Image image;
    Records got;
    Hash last{};
    EXPECT_EQ(ReadAll(file.substr(0, n), &image, &got, &last).code(), StatusCode::kDataLoss) << n;
  }
  BodyImages::Image image;
  Records got;
  Hash last{};
  Status s = ReadAll(std::string(200, 'x'), &image, &got, &last);
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_NE(s.message().find("not a body image"), std::string::npos) << s.ToString();
}

TEST(BodyImageFile, IndexesMustAscendBelowApplied) {
  EXPECT_EQ(EncodeBodyImage(100, 0, Hash{}, {{5, "a"}, {5, "b"}}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(EncodeBodyImage(100, 0, Hash{}, {{7, "a"}, {6, "b"}}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(EncodeBodyImage(100, 0, Hash{}, {{100, "a"}}).status().code(), StatusCode::kInvalidArgument);
  auto empty_or = EncodeBodyImage(100, 0, Hash{}, {});
  ASSERT_TRUE(empty_or.ok()) << empty_or.status().ToString();
  const std::string& empty = *empty_or;
  BodyImages::Image image;
  Records got;
  Hash last{};
  ASSERT_OK(ReadAll(empty, &image, &got, &last));
  EXPECT_TRUE(got.empty());
}

// The fuzz target's mode-0 seed (a mode byte, then an image) is an image
// of this format: ANNALS_WRITE_FUZZ_SEEDS=1 writes it anew.
TEST(BodyImageFile, TheFuzzerSeedIsOfTheCurrentFormat) {
  const std::string path = std::string(ANNALS_SOURCE_DIR) + "/fuzz/corpus/body_image/image-of-three";
  auto image_or = EncodeBodyImage(20, 1700000000000000, Hash{},
                                  {{3, R"({"kind":"Pod","metadata":{"name":"web-0"}})"},
                                   {9, ""},
                                   {12, R"({"kind":"Service","metadata":{"name":"web"}})"}});
  ASSERT_TRUE(image_or.ok());
  const std::string want = std::string(1, '\0') + *image_or;
  if (std::getenv("ANNALS_WRITE_FUZZ_SEEDS")) std::ofstream(path, std::ios::binary) << want;
  std::ifstream in(path, std::ios::binary);
  const std::string seed((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(seed, want) << path << " is not this format's encoding: run with ANNALS_WRITE_FUZZ_SEEDS=1";
  BodyImages::Image image;
  Records got;
  Hash last{};
  ASSERT_OK(ReadAll(std::string_view(seed).substr(1), &image, &got, &last));
  EXPECT_EQ(got.size(), 3u);
}

}  // namespace
}  // namespace annals::state
