#include "json/json_scan.h"

#include "json/json_parse.h"

#include <simdjson.h>

#include <cstring>
#include <string>

namespace annals::json_util {

// simdjson's On-Demand parser finds the extents: its first stage indexes
// every structural character with SIMD instructions, and raw_json() then
// steps over a value by that index, not byte by byte (five times faster
// than the byte scanner this replaced on 1.3 KB audit events). It reads
// past the end of its input, so the text is copied into a padded buffer
// first (a memcpy) and the extents are mapped back into the caller's text.

namespace {

std::string_view TrimRight(std::string_view s) {
  size_t n = s.size();
  while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == '\t')) --n;
  return s.substr(0, n);
}

using Padded = PaddedParser;

Padded& ThreadPadded() {
  thread_local Padded p;
  return p;
}

// The raw text of an On-Demand value (it is consumed).
simdjson::simdjson_result<std::string_view> RawOf(simdjson::ondemand::value v) {
  simdjson::ondemand::json_type t;
  if (auto e = v.type().get(t)) return e;
  std::string_view r;
  if (t == simdjson::ondemand::json_type::object) {
    simdjson::ondemand::object o;
    if (auto e = v.get_object().get(o)) return e;
    if (auto e = o.raw_json().get(r)) return e;
  } else if (t == simdjson::ondemand::json_type::array) {
    simdjson::ondemand::array a;
    if (auto e = v.get_array().get(a)) return e;
    if (auto e = a.raw_json().get(r)) return e;
  } else {
    r = v.raw_json_token();
  }
  return TrimRight(r);
}

// `raw`, a view into p's buffer, as the same bytes of `s`.
std::string_view Back(const Padded& p, std::string_view s, std::string_view raw) {
  return s.substr(static_cast<size_t>(raw.data() - p.buf.data()), raw.size());
}

// Finds the top-level member `key` of the object text in p (compared
// decoded, as the DOM compares names; the first one if repeated).
simdjson::simdjson_result<simdjson::ondemand::value> FindMember(simdjson::ondemand::document& doc,
                                                                std::string_view key) {
  simdjson::ondemand::object obj;
  if (auto e = doc.get_object().get(obj)) return e;
  for (auto field : obj) {
    std::string_view k;
    if (auto e = field.unescaped_key().get(k)) return e;
    if (k == key) return field.value();
  }
  return simdjson::NO_SUCH_FIELD;
}

}  // namespace

simdjson::simdjson_result<simdjson::ondemand::value> MemberValue(std::string_view json, std::string_view key) {
  Padded& p = ThreadPadded();
  thread_local simdjson::ondemand::document doc;
  if (auto e = p.parser.iterate(p.Copy(json)).get(doc)) return e;
  return FindMember(doc, key);
}

simdjson::simdjson_result<simdjson::ondemand::value> Value(std::string_view json) {
  thread_local simdjson::ondemand::document doc;
  return ThreadPadded().Value(json, &doc);
}

simdjson::padded_string_view PaddedParser::Copy(std::string_view s) {
  if (buf.size() < s.size() + simdjson::SIMDJSON_PADDING) buf.resize(s.size() + simdjson::SIMDJSON_PADDING);
  std::memcpy(buf.data(), s.data(), s.size());
  std::memset(buf.data() + s.size(), 0, simdjson::SIMDJSON_PADDING);
  return simdjson::padded_string_view(buf.data(), s.size(), buf.size());
}

simdjson::simdjson_result<simdjson::ondemand::value> PaddedParser::Value(std::string_view json,
                                                                          simdjson::ondemand::document* doc) {
  if (auto e = parser.iterate(Copy(json)).get(*doc)) return e;
  return doc->get_value();
}

std::string_view RawMemberValue(std::string_view s, std::string_view key) {
  simdjson::ondemand::value v;
  if (MemberValue(s, key).get(v) != simdjson::SUCCESS) return {};
  std::string_view raw;
  if (RawOf(v).get(raw) != simdjson::SUCCESS) return {};
  return Back(ThreadPadded(), s, raw);
}

namespace {

// Starts On-Demand over s: where it is when in_place, else over p's copy.
Status Iterate(Padded& p, std::string_view s, size_t readable, bool in_place, simdjson::ondemand::document* doc) {
  if (p.parser.iterate(in_place ? simdjson::padded_string_view(s.data(), s.size(), readable) : p.Copy(s)).get(*doc) !=
      simdjson::SUCCESS)
    return InvalidArgumentError("not JSON text");
  return OkStatus();
}

// The extents of an array's elements, mapped back into `s` unless parsed in place.
StatusOr<std::vector<std::string_view>> ElementsOf(simdjson::ondemand::array arr, const Padded& p,
                                                   std::string_view s, bool in_place, std::string_view what) {
  std::vector<std::string_view> out;
  for (auto item : arr) {
    simdjson::ondemand::value x;
    std::string_view raw;
    if (item.get(x) != simdjson::SUCCESS || RawOf(x).get(raw) != simdjson::SUCCESS)
      return InvalidArgumentError("the elements of " + std::string(what) + " could not be located");
    out.push_back(in_place ? raw : Back(p, s, raw));
  }
  return out;
}

}  // namespace

StatusOr<std::vector<std::string_view>> RawArrayMember(std::string_view s, std::string_view key,
                                                       size_t readable) {
  Padded& p = ThreadPadded();
  const bool in_place = JsonPadded(s, readable);
  simdjson::ondemand::document doc;
  RETURN_IF_ERROR(Iterate(p, s, readable, in_place, &doc));
  simdjson::ondemand::value v;
  if (FindMember(doc, key).get(v) != simdjson::SUCCESS) return NotFoundError("no " + std::string(key));
  simdjson::ondemand::array arr;
  if (v.get_array().get(arr) != simdjson::SUCCESS)
    return InvalidArgumentError(std::string(key) + " is not an array");
  return ElementsOf(arr, p, s, in_place, key);
}

StatusOr<std::vector<std::string_view>> RawArrayElements(std::string_view s, size_t readable) {
  Padded& p = ThreadPadded();
  const bool in_place = JsonPadded(s, readable);
  simdjson::ondemand::document doc;
  RETURN_IF_ERROR(Iterate(p, s, readable, in_place, &doc));
  simdjson::ondemand::array arr;
  if (doc.get_array().get(arr) != simdjson::SUCCESS) return InvalidArgumentError("not a JSON array");
  return ElementsOf(arr, p, s, in_place, "the array");
}

}  // namespace annals::json_util
