// One pass over a JSON object's members picking out the ones a reader
// wants, for the per-event parsers (the audit Event, the audit entry's
// metadata): looking each wanted member up by name scanned the object once
// per member.
#ifndef ANNALS_JSON_JSON_MEMBERS_H_
#define ANNALS_JSON_JSON_MEMBERS_H_

#include <simdjson.h>

#include <initializer_list>
#include <string>
#include <string_view>

namespace annals::json_util {

// The string member `key` of `e`, copied; "" when `e` is not an object,
// has no such member, or its value is not a string.
inline std::string StringMember(simdjson::dom::element e, const char* key) {
  std::string_view v;
  if (e[key].get_string().get(v) == simdjson::SUCCESS) return std::string(v);
  return "";
}

// A wanted string member: `*out` gets the value of the first member named
// `key` ("" when that value is not a string); `*is_string`, if given,
// whether it was one.
struct StringSlot {
  std::string_view key;
  std::string_view* out;
  bool* is_string = nullptr;
};

// Fills the slots (each from the first member of its name) and hands every
// other member to other(key, value). The slots' outputs start out "".
template <class Other>
void ScanMembers(simdjson::dom::object obj, std::initializer_list<StringSlot> slots, Other&& other) {
  uint64_t seen = 0;  // bit i: slot i filled
  for (const StringSlot& s : slots) {
    *s.out = {};
    if (s.is_string) *s.is_string = false;
  }
  for (auto field : obj) {
    const std::string_view k = field.key;
    uint64_t bit = 1;
    const StringSlot* hit = nullptr;
    for (const StringSlot& s : slots) {
      // Length and first byte first: most members differ there, and a
      // memcmp call per pair cost more than the rest of the scan.
      if (s.key.size() == k.size() && !k.empty() && s.key[0] == k[0] && s.key == k) {
        hit = &s;
        break;
      }
      bit <<= 1;
    }
    if (!hit) {
      other(k, field.value);
      continue;
    }
    if (seen & bit) continue;
    seen |= bit;
    const bool str = field.value.get_string().get(*hit->out) == simdjson::SUCCESS;
    if (!str) *hit->out = {};
    if (hit->is_string) *hit->is_string = str;
  }
}

}  // namespace annals::json_util

#endif  // ANNALS_JSON_JSON_MEMBERS_H_
