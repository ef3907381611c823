#include "common/find_bytes.h"

#include <gtest/gtest.h>
#include <string.h>

#include <random>
#include <string>

namespace annals {
namespace {

size_t Memmem(const std::string& s, const std::string& part) {
  const void* at = ::memmem(s.data(), s.size(), part.data(), part.size());
  return at ? static_cast<size_t>(static_cast<const char*>(at) - s.data()) : std::string::npos;
}

TEST(FindBytes, FindsTheFirstOccurrenceAnywhere) {
  const std::string key = "\"impersonatedUser\"";
  for (size_t len : {0, 1, 17, 18, 31, 32, 33, 48, 49, 50, 63, 64, 65, 100, 1000}) {
    for (size_t at = 0; at + key.size() <= len; ++at) {
      std::string s(len, 'x');
      s.replace(at, key.size(), key);
      EXPECT_EQ(FindBytes(s, key), at) << len << " " << at;
      s.replace(at, 1, "'");
      EXPECT_EQ(FindBytes(s, key), std::string::npos) << len << " " << at;
    }
  }
  EXPECT_EQ(FindBytes("abc", ""), 0u);
  EXPECT_EQ(FindBytes("", "a"), std::string::npos);
  EXPECT_EQ(FindBytes("ab", "abc"), std::string::npos);
  EXPECT_EQ(FindBytes("aaab", "ab"), 2u);
  EXPECT_EQ(FindBytes(std::string("a\0b\0c", 5), std::string("b\0c", 3)), 2u);
}

// Random text over a small alphabet (many partial matches, overlaps,
// matches across 32-byte strides and in the tail) against memmem.
TEST(FindBytes, AgreesWithMemmemOnRandomText) {
  std::mt19937 rng(7);
  const std::string alphabet = "ab\"c";
  for (int round = 0; round < 20000; ++round) {
    std::string s(rng() % 200, ' '), part(1 + rng() % 8, ' ');
    for (char& c : s) c = alphabet[rng() % alphabet.size()];
    for (char& c : part) c = alphabet[rng() % alphabet.size()];
    ASSERT_EQ(FindBytes(s, part), Memmem(s, part)) << s << " / " << part;
    ASSERT_EQ(ContainsBytes(s, part), Memmem(s, part) != std::string::npos);
  }
}

}  // namespace
}  // namespace annals
