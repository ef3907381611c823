#include "json/json_scan.h"

#include <array>
#include <cstring>
#include <string>

namespace annals::json_util {

namespace {

size_t SkipWs(std::string_view s, size_t i) {
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) ++i;
  return i;
}

// End of the string starting at s[i] == '"'. Strings are most of an
// event's bytes: memchr finds each candidate quote, and a quote preceded by
// an odd run of backslashes is escaped.
size_t SkipString(std::string_view s, size_t i) {
  const char* base = s.data();
  size_t j = i + 1;
  while (j < s.size()) {
    const void* q = std::memchr(base + j, '"', s.size() - j);
    if (q == nullptr) return s.size();
    const size_t k = static_cast<size_t>(static_cast<const char*>(q) - base);
    size_t backslashes = 0;  // stops at s[i], the opening quote
    while (base[k - 1 - backslashes] == '\\') ++backslashes;
    if (backslashes % 2 == 0) return k + 1;
    j = k + 1;
  }
  return s.size();
}

// The bytes SkipValue stops at inside an object or array.
constexpr std::array<bool, 256> kStructural = [] {
  std::array<bool, 256> t{};
  for (unsigned char c : std::string_view("\"{}[]")) t[c] = true;
  return t;
}();

// End of the JSON value starting at s[i] (s is valid JSON).
size_t SkipValue(std::string_view s, size_t i) {
  if (i >= s.size()) return i;
  if (s[i] == '"') return SkipString(s, i);
  if (s[i] == '{' || s[i] == '[') {
    int depth = 0;
    for (; i < s.size(); ++i) {
      const char c = s[i];
      if (!kStructural[static_cast<unsigned char>(c)]) continue;
      if (c == '"') {
        i = SkipString(s, i) - 1;
      } else if (c == '{' || c == '[') {
        ++depth;
      } else if (c == '}' || c == ']') {
        if (--depth == 0) return i + 1;
      }
    }
    return s.size();
  }
  while (i < s.size() && s[i] != ',' && s[i] != '}' && s[i] != ']' && s[i] != ' ' &&
         s[i] != '\n' && s[i] != '\r' && s[i] != '\t')
    ++i;
  return i;
}

// Does the member name `raw` (as written, escapes and all) name `key`?
// simdjson looks members up by their decoded names, so the raw scan below
// must too, or "it\u0065ms" would be taken for another member than the
// parser's "items". `key` is ASCII: an escape for anything else cannot match.
bool KeyEquals(std::string_view raw, std::string_view key) {
  if (raw.find('\\') == std::string_view::npos) return raw == key;
  std::string dec;
  for (size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] != '\\') {
      dec.push_back(raw[i]);
      continue;
    }
    if (++i >= raw.size()) return false;
    switch (raw[i]) {
      case 'b': dec.push_back('\b'); break;
      case 'f': dec.push_back('\f'); break;
      case 'n': dec.push_back('\n'); break;
      case 'r': dec.push_back('\r'); break;
      case 't': dec.push_back('\t'); break;
      case 'u': {
        if (i + 4 >= raw.size()) return false;
        unsigned v = 0;
        for (size_t k = i + 1; k <= i + 4; ++k) {
          const char h = raw[k];
          const int d = h >= '0' && h <= '9'   ? h - '0'
                        : h >= 'a' && h <= 'f' ? h - 'a' + 10
                        : h >= 'A' && h <= 'F' ? h - 'A' + 10
                                               : -1;
          if (d < 0) return false;
          v = v * 16 + static_cast<unsigned>(d);
        }
        if (v >= 0x80) return false;
        dec.push_back(static_cast<char>(v));
        i += 4;
        break;
      }
      default: dec.push_back(raw[i]);  // '"', '\\', '/'
    }
  }
  return dec == key;
}

}  // namespace

std::string_view RawMemberValue(std::string_view s, std::string_view key, size_t members) {
  size_t i = SkipWs(s, 0);
  if (i >= s.size() || s[i] != '{') return {};
  i = SkipWs(s, i + 1);
  for (size_t member = 1; i < s.size() && s[i] == '"'; ++member) {
    size_t kend = SkipString(s, i);
    std::string_view k = s.substr(i + 1, kend - i - 2);
    i = SkipWs(s, kend);
    if (i >= s.size() || s[i] != ':') return {};
    i = SkipWs(s, i + 1);
    if (member == members && KeyEquals(k, key)) {
      // The last member: its value ends where the object does.
      const size_t close = s.find_last_of('}');
      if (close == std::string_view::npos || close < i) return {};
      const size_t vend = s.find_last_not_of(" \t\r\n", close - 1) + 1;
      return s.substr(i, vend - i);
    }
    size_t vend = SkipValue(s, i);
    if (KeyEquals(k, key)) return s.substr(i, vend - i);
    i = SkipWs(s, vend);
    if (i < s.size() && s[i] == ',') i = SkipWs(s, i + 1);
  }
  return {};
}

StatusOr<std::vector<std::string_view>> RawArrayMember(std::string_view s, std::string_view key) {
  std::string_view v = RawMemberValue(s, key);
  if (v.empty()) return NotFoundError("no " + std::string(key));
  if (v[0] != '[') return InvalidArgumentError(std::string(key) + " is not an array");
  std::vector<std::string_view> out;
  size_t j = SkipWs(v, 1);
  while (j < v.size() && v[j] != ']') {
    size_t e = SkipValue(v, j);
    out.push_back(v.substr(j, e - j));
    j = SkipWs(v, e);
    if (j < v.size() && v[j] == ',') j = SkipWs(v, j + 1);
  }
  return out;
}

}  // namespace annals::json_util
