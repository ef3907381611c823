#include "common/time_util.h"

#include <gtest/gtest.h>

namespace annals {
namespace {

TEST(ParseDurationSeconds, UnitsAndRejects) {
  EXPECT_EQ(ParseDurationSeconds("0"), 0);
  EXPECT_EQ(ParseDurationSeconds("45s"), 45);
  EXPECT_EQ(ParseDurationSeconds("30m"), 1800);
  EXPECT_EQ(ParseDurationSeconds("12h"), 43200);
  EXPECT_EQ(ParseDurationSeconds("90d"), 90 * 86400);
  EXPECT_EQ(ParseDurationSeconds("7y"), 7 * 365 * 86400);
  for (const char* bad : {"", "s", "7", "-1d", "1.5d", "7w", "d7", "99999999999999999y", "1 d"})
    EXPECT_FALSE(ParseDurationSeconds(bad).has_value()) << bad;
}

TEST(FormatRfc3339, RoundTrips) {
  auto t = ParseRfc3339("2024-05-01T12:00:00Z");
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(FormatRfc3339(*t), "2024-05-01T12:00:00.000000Z");
}

}  // namespace
}  // namespace annals
