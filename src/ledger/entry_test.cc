#include "ledger/entry.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/bytes.h"
#include "ledger/entry_format.h"

namespace annals::ledger {
namespace {

constexpr std::string_view kMeta = R"({"v":1,"src":"test","rt":"2026-01-01T00:00:00.000000Z"})";
constexpr size_t kMaxMeta = kMaxEntrySize - kEntryHeaderSize - kExternalBodySize;

TEST(EntryTest, InlinePayloadLayout) {
  bool needs_blob = true;
  auto e = EncodeEntry(kMeta, R"({"kind":"Event"})", &needs_blob);
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_FALSE(needs_blob);
  std::string want("\x01\x00", 2);
  PutBigEndian16(&want, static_cast<uint16_t>(kMeta.size()));
  want += kMeta;
  want += R"({"kind":"Event"})";
  EXPECT_EQ(*e, want);

  auto d = DecodeEntry(*e);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->meta, kMeta);
  EXPECT_FALSE(d->external);
  EXPECT_EQ(d->payload, R"({"kind":"Event"})");
  EXPECT_EQ(d->payload_size, 16u);
}

TEST(EntryTest, EmptyMetaAndPayloadRoundTrip) {
  auto e = EncodeEntry("", "", nullptr);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(*e, std::string("\x01\x00\x00\x00", 4));
  auto d = DecodeEntry(*e);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->meta, "");
  EXPECT_EQ(d->payload, "");
  EXPECT_FALSE(d->external);
}

TEST(EntryTest, PayloadThatFitsExactlyStaysInline) {
  std::string payload(kMaxEntrySize - kEntryHeaderSize - kMeta.size(), 'p');
  bool needs_blob = true;
  auto e = EncodeEntry(kMeta, payload, &needs_blob);
  ASSERT_TRUE(e.ok());
  EXPECT_FALSE(needs_blob);
  EXPECT_EQ(e->size(), kMaxEntrySize);
  auto d = DecodeEntry(*e);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->payload, payload);
}

TEST(EntryTest, EncodingHandsBackTheDigestAnExternalEntryCarries) {
  const std::string big(kMaxEntrySize, 'b');
  bool needs_blob = false;
  Hash digest{};
  auto e = EncodeEntry(kMeta, big, &needs_blob, &digest);
  ASSERT_TRUE(e.ok());
  ASSERT_TRUE(needs_blob);
  EXPECT_EQ(digest, Sha256(big));
  auto d = DecodeEntry(*e);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->payload_digest, digest);
}

TEST(EntryTest, OneByteMoreGoesExternalWithDigestAndSize) {
  std::string payload(kMaxEntrySize - kEntryHeaderSize - kMeta.size() + 1, 'p');
  payload.back() = 'q';
  bool needs_blob = false;
  auto e = EncodeEntry(kMeta, payload, &needs_blob);
  ASSERT_TRUE(e.ok());
  EXPECT_TRUE(needs_blob);
  EXPECT_EQ(e->size(), kEntryHeaderSize + kMeta.size() + kExternalBodySize);
  EXPECT_EQ(static_cast<uint8_t>((*e)[1]), kFlagExternalPayload);
  auto d = DecodeEntry(*e);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_TRUE(d->external);
  EXPECT_EQ(d->meta, kMeta);
  EXPECT_EQ(d->payload, "");
  EXPECT_EQ(d->payload_digest, Sha256(payload));
  EXPECT_EQ(d->payload_size, payload.size());
}

TEST(EntryTest, HugePayloadIsExternal) {
  std::string payload(3 << 20, 'x');
  bool needs_blob = false;
  auto e = EncodeEntry(kMeta, payload, &needs_blob);
  ASSERT_TRUE(e.ok());
  EXPECT_TRUE(needs_blob);
  auto d = DecodeEntry(*e);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->payload_size, payload.size());
  EXPECT_EQ(d->payload_digest, Sha256(payload));
}

TEST(EntryTest, MetaLimit) {
  std::string meta(kMaxMeta, 'm');
  bool needs_blob = false;
  // The largest meta still leaves room for an external reference.
  auto e = EncodeEntry(meta, std::string(100, 'p'), &needs_blob);
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_TRUE(needs_blob);
  EXPECT_EQ(e->size(), kMaxEntrySize);
  ASSERT_TRUE(DecodeEntry(*e).ok());

  meta.push_back('m');
  auto bad = EncodeEntry(meta, "", &needs_blob);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
}

TEST(EntryTest, DecodeRejectsMalformedEntries) {
  auto good = EncodeEntry(kMeta, "payload", nullptr);
  ASSERT_TRUE(good.ok());
  auto ext = EncodeEntry(kMeta, std::string(70000, 'x'), nullptr);
  ASSERT_TRUE(ext.ok());

  std::vector<std::pair<std::string, std::string>> bad = {
      {"", "empty"},
      {std::string("\x01\x00\x00", 3), "shorter than header"},
      {std::string("\x00\x00\x00\x00", 4), "version 0"},
      {std::string("\x02\x00\x00\x00", 4), "version 2"},
      {std::string("\x01\x02\x00\x00", 4), "unknown flag 0x02"},
      {std::string("\x01\x80\x00\x00", 4), "unknown flag 0x80"},
      {std::string("\x01\x00\x00\x05{}", 6), "meta longer than entry"},
      {std::string("\x01\x00\xff\xff", 4), "meta length 65535 in a 4-byte entry"},
      {std::string("\x01\x01\x00\x00", 4), "external without reference"},
      {ext->substr(0, ext->size() - 1), "external reference one byte short"},
      {*ext + "x", "external reference one byte long"},
  };
  std::string flipped_version = *good;
  flipped_version[0] = '\x11';
  bad.push_back({flipped_version, "version 0x11"});
  std::string meta_overrun = *good;
  meta_overrun[2] = '\x7f';
  bad.push_back({meta_overrun, "meta length past the end"});

  for (const auto& [entry, what] : bad) {
    auto d = DecodeEntry(entry);
    EXPECT_FALSE(d.ok()) << what;
    if (!d.ok()) {
      EXPECT_EQ(d.status().code(), StatusCode::kDataLoss) << what;
    }
  }
}

TEST(EntryTest, InlineEntriesReEncodeToTheSameBytes) {
  for (size_t meta_len : {0, 1, 50, 300}) {
    for (size_t payload_len : {0, 1, 255, 256, 1000, 60000}) {
      std::string meta(meta_len, 'm');
      std::string payload(payload_len, 'p');
      auto e = EncodeEntry(meta, payload, nullptr);
      ASSERT_TRUE(e.ok());
      auto d = DecodeEntry(*e);
      ASSERT_TRUE(d.ok());
      auto again = EncodeEntry(d->meta, d->payload, nullptr);
      ASSERT_TRUE(again.ok());
      EXPECT_EQ(*again, *e) << meta_len << "/" << payload_len;
    }
  }
}

}  // namespace
}  // namespace annals::ledger
