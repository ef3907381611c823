#include "common/bytes.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace annals {
namespace {

TEST(BigEndianTest, RoundTripsAndIsMostSignificantByteFirst) {
  std::string s;
  PutBigEndian16(&s, 0x0102);
  PutBigEndian32(&s, 0x03040506);
  PutBigEndian64(&s, 0x0708090a0b0c0d0eull);
  EXPECT_EQ(s, std::string("\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e", 14));
  EXPECT_EQ(GetBigEndian16(s.data()), 0x0102);
  EXPECT_EQ(GetBigEndian32(s.data() + 2), 0x03040506u);
  EXPECT_EQ(GetBigEndian64(s.data() + 6), 0x0708090a0b0c0d0eull);

  std::string hi;
  PutBigEndian64(&hi, UINT64_MAX);
  PutBigEndian32(&hi, 0x80000001u);
  EXPECT_EQ(GetBigEndian64(hi.data()), UINT64_MAX);
  EXPECT_EQ(GetBigEndian32(hi.data() + 8), 0x80000001u);
}

// RFC 4648 section 10.
TEST(Base64Test, Rfc4648Vectors) {
  const std::vector<std::pair<std::string, std::string>> vectors = {
      {"", ""},         {"f", "Zg=="},        {"fo", "Zm8="},       {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"},
  };
  for (const auto& [plain, encoded] : vectors) {
    EXPECT_EQ(Base64Encode(plain), encoded);
    std::optional<std::string> d = Base64Decode(encoded);
    ASSERT_TRUE(d.has_value()) << encoded;
    EXPECT_EQ(*d, plain);
  }
}

TEST(Base64Test, RoundTripsAllByteValuesAndLengths) {
  std::mt19937 rng(7);
  for (size_t n = 0; n < 100; ++n) {
    std::string in(n, '\0');
    for (auto& c : in) c = static_cast<char>(rng());
    std::string enc = Base64Encode(in);
    EXPECT_EQ(enc.size() % 4, 0u);
    auto dec = Base64Decode(enc);
    ASSERT_TRUE(dec.has_value()) << enc;
    EXPECT_EQ(*dec, in);
  }
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
  EXPECT_EQ(Base64Decode(Base64Encode(all)), all);
}

TEST(Base64Test, StrictDecodeRejectsMalformedInput) {
  const std::vector<std::string> bad = {
      "Zg",          // missing padding
      "Zg=",         // short padding
      "Zm9",         // not a multiple of 4
      "Zm9vY",       // not a multiple of 4
      "Zg==Zg==",    // padding before the last quantum
      "Z===",        // three padding characters
      "====",        // only padding
      "=Zm9",        // padding first
      "Zm=v",        // data after padding
      "Zg=a",        // data after padding
      "Zm9v\n",      // trailing newline
      "Zm 9v",       // whitespace inside
      " Zm9v",       // leading space
      "Zm9v ",       // trailing space
      "Zm-v",        // URL-safe alphabet
      "Zm_v",        // URL-safe alphabet
      "Zm9v!A==",    // character outside the alphabet
      std::string("Zm\0v", 4),  // NUL
      "Zh==",        // non-canonical: stray low bits with "=="
      "Zm9=",        // non-canonical: stray low bits with "="
      "QR==",        // non-canonical
  };
  for (const auto& s : bad) EXPECT_FALSE(Base64Decode(s).has_value()) << "accepted: " << s;
  // The canonical forms of the last three decode.
  EXPECT_EQ(Base64Decode("Zg=="), "f");
  EXPECT_EQ(Base64Decode("Zm8="), "fo");
  EXPECT_EQ(Base64Decode("QQ=="), "A");
}

TEST(HexTest, EncodesLowercaseAndDecodesEitherCase) {
  EXPECT_EQ(HexEncode(""), "");
  EXPECT_EQ(HexEncode(std::string("\x00\x01\xab\xff", 4)), "0001abff");
  EXPECT_EQ(HexDecode("0001abff"), std::string("\x00\x01\xab\xff", 4));
  EXPECT_EQ(HexDecode("0001ABFF"), std::string("\x00\x01\xab\xff", 4));
  EXPECT_EQ(HexDecode(""), std::string());
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
  EXPECT_EQ(HexDecode(HexEncode(all)), all);
}

TEST(HexTest, DecodeRejectsOddLengthAndNonHexDigits) {
  for (const char* s : {"0", "abc", "0g", "g0", "0x00", " 00", "00 ", "-1", "zz"})
    EXPECT_FALSE(HexDecode(s).has_value()) << "accepted: " << s;
}

TEST(ParseDecimalTest, AcceptsCanonicalDecimals) {
  EXPECT_EQ(ParseDecimal("0"), 0u);
  EXPECT_EQ(ParseDecimal("7"), 7u);
  EXPECT_EQ(ParseDecimal("10"), 10u);
  EXPECT_EQ(ParseDecimal("1234567890"), 1234567890u);
  EXPECT_EQ(ParseDecimal("18446744073709551615"), UINT64_MAX);
  EXPECT_EQ(ParseDecimal("18446744073709551614"), UINT64_MAX - 1);
  EXPECT_EQ(ParseDecimal("9999999999999999999"), 9999999999999999999ull);
}

TEST(ParseDecimalTest, RejectsNonCanonicalAndOverflowingInput) {
  const std::vector<std::string> bad = {
      "",
      "00",
      "01",
      "007",
      "-1",
      "+1",
      " 1",
      "1 ",
      "1a",
      "a1",
      "1.0",
      "1e3",
      "0x10",
      "18446744073709551616",   // UINT64_MAX + 1
      "18446744073709551620",   // overflow in the last digit
      "19000000000000000000",   // overflow in an earlier digit
      "99999999999999999999",   // 20 digits, too large
      "100000000000000000000",  // 21 digits
      std::string("1\0", 2),
  };
  for (const auto& s : bad) EXPECT_FALSE(ParseDecimal(s).has_value()) << "accepted: " << s;
}

TEST(ParseByteSize, UnitsAndRejects) {
  EXPECT_EQ(ParseByteSize("4096"), 4096u);
  EXPECT_EQ(ParseByteSize("500MB"), 500'000'000u);
  EXPECT_EQ(ParseByteSize("10GiB"), 10ull << 30);
  EXPECT_EQ(ParseByteSize("2T"), 2'000'000'000'000u);
  EXPECT_EQ(ParseByteSize("1KiB"), 1024u);
  for (const char* bad : {"", "GB", "10X", "10GiBs", "-1", "1.5G", "99999999999999999999", "20000000TiB"})
    EXPECT_FALSE(ParseByteSize(bad).has_value()) << bad;
}

TEST(AsciiLower, LowersAsciiLettersOnly) {
  EXPECT_EQ(AsciiLower("ABCxyz019-_"), "abcxyz019-_");
  EXPECT_EQ(AsciiLower("9F86D081884C7D659A2FEAA0C55AD015"), "9f86d081884c7d659a2feaa0c55ad015");
  EXPECT_EQ(AsciiLower("\xC3\x89T\xC3\x89"), "\xC3\x89t\xC3\x89");  // UTF-8 bytes untouched
  EXPECT_EQ(AsciiLower(""), "");
}

TEST(TrimJsonSpace, TrimsJsonWhiteSpaceOnly) {
  EXPECT_EQ(TrimJsonSpace(" \t\r\n{\"a\":1}\n\r\t "), "{\"a\":1}");
  EXPECT_EQ(TrimJsonSpace("\v{}\f"), "\v{}\f");  // not JSON white space
  EXPECT_EQ(TrimJsonSpace(" \n "), "");
  EXPECT_EQ(TrimJsonSpace(""), "");
  EXPECT_EQ(TrimJsonSpace("x"), "x");
}

TEST(Bytes, SplitFieldsOnSpacesAndTabs) {
  EXPECT_EQ(SplitFields("  log\tkey  url "), (std::vector<std::string_view>{"log", "key", "url"}));
  EXPECT_TRUE(SplitFields(" \t ").empty());
  EXPECT_EQ(SplitFields("one"), (std::vector<std::string_view>{"one"}));
}

}  // namespace
}  // namespace annals
