#include "json/json_write.h"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <random>
#include <string>

namespace annals::json_util {
namespace {

// What a JSON parser reads back from AppendJsonString's output.
std::string RoundTrip(const std::string& s) {
  std::string json;
  AppendJsonString(&json, s);
  simdjson::dom::parser parser;
  simdjson::dom::element e;
  EXPECT_EQ(parser.parse(json).get(e), simdjson::SUCCESS) << json;
  std::string_view back;
  EXPECT_EQ(e.get_string().get(back), simdjson::SUCCESS) << json;
  return std::string(back);
}

TEST(AppendJsonStringTest, EscapesWhatJsonRequires) {
  std::string out;
  AppendJsonString(&out, std::string("a\"b\\c\nd\re\tf\x01g\x1fh/\xc3\xa9", 18));
  EXPECT_EQ(out, "\"a\\\"b\\\\c\\nd\\re\\tf\\u0001g\\u001fh/\xc3\xa9\"");
  out.clear();
  AppendJsonString(&out, "");
  EXPECT_EQ(out, "\"\"");
}

TEST(AppendJsonStringTest, RandomStringsRoundTripAtEveryLengthAndOffset) {
  // Valid UTF-8 built from ASCII (with every control and special byte) and
  // two-byte sequences, so that the eight-bytes-at-a-time path meets an
  // escape at every position of a word.
  std::mt19937 rng(7);
  const std::string specials = std::string("\"\\\n\r\t\x01\x1f\x7f", 8);
  for (int n = 0; n < 3000; ++n) {
    std::string s;
    const int len = static_cast<int>(rng() % 40);
    for (int k = 0; k < len; ++k) {
      const unsigned r = rng() % 16;
      if (r == 0) s += specials[rng() % specials.size()];
      else if (r == 1) s += "\xc3\xa9";
      else s += static_cast<char>('a' + rng() % 26);
    }
    ASSERT_EQ(RoundTrip(s), s) << n;
  }
  for (int c = 0; c < 0x80; ++c) {
    for (size_t at = 0; at < 17; ++at) {
      std::string s(17, 'x');
      s[at] = static_cast<char>(c);
      ASSERT_EQ(RoundTrip(s), s) << c << " at " << at;
    }
  }
}

}  // namespace
}  // namespace annals::json_util
