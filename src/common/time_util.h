// Times as int64 microseconds since the Unix epoch (UTC), parsed from and
// formatted as RFC 3339. Pure, thread-safe.
#ifndef ANNALS_COMMON_TIME_UTIL_H_
#define ANNALS_COMMON_TIME_UTIL_H_

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

namespace annals {

using Micros = int64_t;
inline constexpr Micros kNever = std::numeric_limits<int64_t>::max();

// "2024-05-01T12:00:00Z", "2024-05-01T12:00:00.123456789+02:00", ...
std::optional<Micros> ParseRfc3339(std::string_view s);
// A query time: RFC 3339, "now", or relative to now ("-15m", "-2h", "-30s",
// "-7d").
std::optional<Micros> ParseQueryTime(std::string_view s, Micros now);
Micros NowMicros();
// A span of time: "0", or a decimal count with a unit s, m, h, d or y (365
// days): "90d", "7y". nullopt for anything else or beyond ~290,000 years.
std::optional<int64_t> ParseDurationSeconds(std::string_view s);
// "2024-05-01T12:00:00.123456Z" (microseconds always shown).
std::string FormatRfc3339(Micros t);

}  // namespace annals

#endif  // ANNALS_COMMON_TIME_UTIL_H_
