#include "common/time_util.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <ctime>
#include <random>

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

// The arithmetic formatter against gmtime_r over instants from 0001 to
// 9999, the leap days and the ends of centuries, and negative times.
TEST(FormatRfc3339, AgreesWithGmtime) {
  auto reference = [](Micros t) {
    int64_t secs = t >= 0 ? t / 1000000 : (t - 999999) / 1000000;
    std::time_t tt = static_cast<std::time_t>(secs);
    std::tm tm;
    gmtime_r(&tt, &tm);
    char buf[64];
    std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                  static_cast<int>(t - secs * 1000000));
    return std::string(buf);
  };
  const Micros lo = *ParseRfc3339("0001-01-01T00:00:00Z");
  const Micros hi = *ParseRfc3339("9999-12-31T23:59:59.999999Z");
  std::vector<Micros> times = {0, -1, 1, lo, hi, -1000000, 999999, 86400000000 - 1};
  for (const char* s : {"2000-02-29T23:59:59.999999Z", "1900-02-28T00:00:00Z", "2100-03-01T00:00:00Z",
                        "1969-12-31T23:59:59.5Z", "2024-12-31T12:00:00Z", "1600-02-29T01:02:03Z"})
    times.push_back(*ParseRfc3339(s));
  std::mt19937_64 rng(17);
  std::uniform_int_distribution<Micros> any(lo, hi);
  for (int i = 0; i < 200000; ++i) times.push_back(any(rng));
  for (Micros t : times) ASSERT_EQ(FormatRfc3339(t), reference(t)) << t;
  // And back again.
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(ParseRfc3339(FormatRfc3339(times[i])), times[i]);
}

}  // namespace
}  // namespace annals
