#include "json/json_write.h"

#include <cstdint>
#include <cstring>

namespace annals::json_util {

namespace {

// True if any of the 8 bytes of w is below 0x20, '"' or '\\' (the bytes
// a JSON string must escape), by the usual SWAR bit tricks: a byte b has
// (b - n) & ~b & 0x80 set when b < n (for n <= 0x80), and x ^ c is zero
// exactly where x holds c.
inline bool NeedsEscape8(uint64_t w) {
  constexpr uint64_t kOnes = 0x0101010101010101ull;
  constexpr uint64_t kHigh = 0x8080808080808080ull;
  const uint64_t below = (w - kOnes * 0x20) & ~w;
  const uint64_t q = w ^ (kOnes * '"');
  const uint64_t bs = w ^ (kOnes * '\\');
  const uint64_t zero_q = (q - kOnes) & ~q;
  const uint64_t zero_bs = (bs - kOnes) & ~bs;
  return ((below | zero_q | zero_bs) & kHigh) != 0;
}

}  // namespace

void AppendJsonString(std::string* out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->reserve(out->size() + s.size() + 2);
  out->push_back('"');
  size_t run = 0;  // start of the pending run of bytes that need no escape
  size_t i = 0;
  while (i < s.size()) {
    // Eight bytes at a time while none needs escaping (the usual case:
    // names, verbs, timestamps).
    while (i + 8 <= s.size()) {
      uint64_t w;
      std::memcpy(&w, s.data() + i, 8);
      if (NeedsEscape8(w)) break;
      i += 8;
    }
    if (i >= s.size()) break;
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') {
      ++i;
      continue;
    }
    out->append(s.data() + run, i - run);
    run = ++i;
    switch (c) {
      case '"': *out += "\\\""; break;
      case '\\': *out += "\\\\"; break;
      case '\n': *out += "\\n"; break;
      case '\r': *out += "\\r"; break;
      case '\t': *out += "\\t"; break;
      default:
        *out += "\\u00";
        out->push_back(kHex[c >> 4]);
        out->push_back(kHex[c & 15]);
    }
  }
  out->append(s.data() + run, s.size() - run);
  out->push_back('"');
}

void AppendJsonMember(std::string* out, std::string_view name, std::string_view value, bool optional) {
  if (optional && value.empty()) return;
  if (!out->empty() && out->back() != '{') *out += ',';
  AppendJsonString(out, name);
  *out += ':';
  AppendJsonString(out, value);
}

}  // namespace annals::json_util
