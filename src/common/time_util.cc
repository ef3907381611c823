#include "common/time_util.h"

#include <chrono>
#include <cstdio>

namespace annals {

namespace {

bool Digits(std::string_view s, size_t pos, size_t n, int* out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return true;
}

// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

// The civil date of a day since 1970-01-01 (the inverse of DaysFromCivil).
void CivilFromDays(int64_t z, int64_t* y, unsigned* m, unsigned* d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = static_cast<int64_t>(yoe) + era * 400 + (*m <= 2);
}

// Writes v as exactly n decimal digits ending just before end.
void PutDigits(char* end, unsigned v, int n) {
  for (int i = 0; i < n; ++i) {
    *--end = static_cast<char>('0' + v % 10);
    v /= 10;
  }
}

}  // namespace

std::optional<Micros> ParseRfc3339(std::string_view s) {
  int y, mo, d, h, mi, se;
  if (!Digits(s, 0, 4, &y) || s.size() < 20 || s[4] != '-' || !Digits(s, 5, 2, &mo) ||
      s[7] != '-' || !Digits(s, 8, 2, &d) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
      !Digits(s, 11, 2, &h) || s[13] != ':' || !Digits(s, 14, 2, &mi) || s[16] != ':' ||
      !Digits(s, 17, 2, &se))
    return std::nullopt;
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60) return std::nullopt;
  size_t i = 19;
  int64_t frac_us = 0;
  if (i < s.size() && s[i] == '.') {
    ++i;
    int digits = 0;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
      if (digits < 6) frac_us = frac_us * 10 + (s[i] - '0');
      ++digits;
      ++i;
    }
    if (digits == 0) return std::nullopt;
    for (int k = digits; k < 6; ++k) frac_us *= 10;
  }
  int64_t offset_s = 0;
  if (i < s.size() && (s[i] == 'Z' || s[i] == 'z')) {
    ++i;
  } else if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
    int oh, om;
    if (!Digits(s, i + 1, 2, &oh) || i + 3 >= s.size() || s[i + 3] != ':' ||
        !Digits(s, i + 4, 2, &om))
      return std::nullopt;
    offset_s = (oh * 3600 + om * 60) * (s[i] == '+' ? 1 : -1);
    i += 6;
  } else {
    return std::nullopt;
  }
  if (i != s.size()) return std::nullopt;
  int64_t days = DaysFromCivil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d));
  int64_t secs = days * 86400 + h * 3600 + mi * 60 + se - offset_s;
  return secs * 1000000 + frac_us;
}

std::optional<Micros> ParseQueryTime(std::string_view s, Micros now) {
  if (s == "now") return now;
  if (!s.empty() && s[0] == '-') {
    if (s.size() < 3) return std::nullopt;
    char unit = s.back();
    int64_t n = 0;
    for (size_t i = 1; i + 1 < s.size(); ++i) {
      if (s[i] < '0' || s[i] > '9' || n > 1000000000) return std::nullopt;
      n = n * 10 + (s[i] - '0');
    }
    int64_t mult;
    switch (unit) {
      case 's': mult = 1; break;
      case 'm': mult = 60; break;
      case 'h': mult = 3600; break;
      case 'd': mult = 86400; break;
      default: return std::nullopt;
    }
    return now - n * mult * 1000000;
  }
  return ParseRfc3339(s);
}

Micros NowMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// By arithmetic rather than gmtime_r and snprintf: a time is formatted per
// change frame, per answered row and per event a bench client stamps, and
// gmtime_r takes glibc's time zone lock each call.
std::string FormatRfc3339(Micros t) {
  if (t == kNever) return "";
  const int64_t secs = t >= 0 ? t / 1000000 : (t - 999999) / 1000000;
  const int64_t days = secs >= 0 ? secs / 86400 : (secs - 86399) / 86400;
  const unsigned sod = static_cast<unsigned>(secs - days * 86400);
  int64_t y;
  unsigned m, d;
  CivilFromDays(days, &y, &m, &d);
  if (y < 0 || y > 9999) {  // not RFC 3339; printed as before
    char buf[64];
    std::snprintf(buf, sizeof(buf), "%04lld-%02u-%02uT%02u:%02u:%02u.%06dZ", static_cast<long long>(y),
                  m, d, sod / 3600, sod / 60 % 60, sod % 60, static_cast<int>(t - secs * 1000000));
    return buf;
  }
  std::string out(27, '\0');  // YYYY-MM-DDTHH:MM:SS.ffffffZ
  char* p = out.data();
  PutDigits(p + 4, static_cast<unsigned>(y), 4);
  p[4] = '-';
  PutDigits(p + 7, m, 2);
  p[7] = '-';
  PutDigits(p + 10, d, 2);
  p[10] = 'T';
  PutDigits(p + 13, sod / 3600, 2);
  p[13] = ':';
  PutDigits(p + 16, sod / 60 % 60, 2);
  p[16] = ':';
  PutDigits(p + 19, sod % 60, 2);
  p[19] = '.';
  PutDigits(p + 26, static_cast<unsigned>(t - secs * 1000000), 6);
  p[26] = 'Z';
  return out;
}

std::optional<int64_t> ParseDurationSeconds(std::string_view s) {
  if (s == "0") return 0;
  if (s.size() < 2) return std::nullopt;
  int64_t unit = 0;
  switch (s.back()) {
    case 's': unit = 1; break;
    case 'm': unit = 60; break;
    case 'h': unit = 3600; break;
    case 'd': unit = 86400; break;
    case 'y': unit = 365 * int64_t{86400}; break;
    default: return std::nullopt;
  }
  s.remove_suffix(1);
  int64_t n = 0;
  for (char c : s) {
    if (c < '0' || c > '9' || n > int64_t{1} << 40) return std::nullopt;
    n = n * 10 + (c - '0');
  }
  if (n > (int64_t{1} << 43) / unit) return std::nullopt;
  return n * unit;
}

}  // namespace annals
