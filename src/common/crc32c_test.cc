#include "common/crc32c.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>

namespace annals::crc32c {
namespace {

// Bit-at-a-time CRC-32C (reflected polynomial 0x82F63B78): the definition,
// against which both the table and the SSE4.2 paths of Extend() must agree.
uint32_t Reference(uint32_t init, const std::string& s) {
  uint32_t crc = ~init;
  for (unsigned char c : s) {
    crc ^= c;
    for (int k = 0; k < 8; ++k) crc = (crc & 1) ? (crc >> 1) ^ 0x82f63b78u : crc >> 1;
  }
  return ~crc;
}

uint32_t Crc(const std::string& s) { return Value(s.data(), s.size()); }

TEST(Crc32cTest, CheckValue) {
  // The standard check value of CRC-32C.
  EXPECT_EQ(Crc("123456789"), 0xE3069283u);
  EXPECT_EQ(Crc(""), 0u);
  EXPECT_EQ(Crc("a"), 0xC1D04330u);
}

// RFC 3720 appendix B.4 (iSCSI).
TEST(Crc32cTest, Rfc3720Vectors) {
  std::string zeros(32, '\0');
  std::string ones(32, '\xff');
  std::string up, down;
  for (int i = 0; i < 32; ++i) {
    up.push_back(static_cast<char>(i));
    down.push_back(static_cast<char>(31 - i));
  }
  EXPECT_EQ(Crc(zeros), 0x8A9136AAu);
  EXPECT_EQ(Crc(ones), 0x62A8AB43u);
  EXPECT_EQ(Crc(up), 0x46DD794Eu);
  EXPECT_EQ(Crc(down), 0x113FDB5Cu);
}

// Exercises every length and alignment around the 8-byte hardware stride,
// so a bug in either the SSE4.2 loop or its byte tail shows up.
TEST(Crc32cTest, MatchesBitwiseReferenceForAllLengthsAndAlignments) {
  std::mt19937 rng(42);
  std::string buf(1200, '\0');
  for (auto& c : buf) c = static_cast<char>(rng());
  for (size_t off = 0; off < 8; ++off) {
    for (size_t n = 0; n < 80; ++n) {
      std::string s = buf.substr(off, n);
      ASSERT_EQ(Value(buf.data() + off, n), Reference(0, s)) << "off " << off << " n " << n;
    }
  }
  EXPECT_EQ(Value(buf.data() + 3, 1100), Reference(0, buf.substr(3, 1100)));
}

// Long inputs go through three lanes joined by a shift: every length and
// alignment around one and two stripes (3 x 256 bytes), and extends that
// start mid-stripe.
TEST(Crc32cTest, LongInputsMatchTheReferenceAcrossStripes) {
  std::mt19937 rng(7);
  std::string buf(5000, '\0');
  for (auto& c : buf) c = static_cast<char>(rng());
  for (size_t off = 0; off < 8; off += 3)
    for (size_t n : {767u, 768u, 769u, 775u, 1535u, 1536u, 1537u, 1543u, 3071u, 3072u, 4700u, 4991u})
      ASSERT_EQ(Value(buf.data() + off, n), Reference(0, buf.substr(off, n))) << "off " << off << " n " << n;
  const uint32_t head = Value(buf.data(), 700);
  EXPECT_EQ(Extend(head, buf.data() + 700, 4000), Reference(0, buf.substr(0, 4700)));
}

TEST(Crc32cTest, ExtendEqualsCrcOfConcatenation) {
  std::string a = "hello, ", b = "tamper-evident world";
  EXPECT_EQ(Extend(Crc(a), b.data(), b.size()), Crc(a + b));
  uint32_t c = 0;
  std::string all;
  for (int i = 0; i < 50; ++i) {
    std::string piece(static_cast<size_t>(i), static_cast<char>('a' + i % 26));
    c = Extend(c, piece.data(), piece.size());
    all += piece;
  }
  EXPECT_EQ(c, Crc(all));
  EXPECT_EQ(c, Reference(0, all));
}

TEST(Crc32cTest, MaskRoundTripsAndChangesTheValue) {
  for (uint32_t v : {0u, 1u, 0xE3069283u, 0xffffffffu, 0xa282ead8u, 0x12345678u}) {
    EXPECT_EQ(Unmask(Mask(v)), v);
    EXPECT_NE(Mask(v), v);
    EXPECT_NE(Mask(Mask(v)), Mask(v));
  }
}

}  // namespace
}  // namespace annals::crc32c
