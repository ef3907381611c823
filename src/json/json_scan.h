// Locating values in JSON text that a parser has already found valid:
// the exact extent of a member's value or of an array's elements, so that
// what was received can be kept or passed on byte for byte (the audit
// webhook's items, a watch frame's object). Pure functions, thread-safe.
#ifndef ANNALS_JSON_JSON_SCAN_H_
#define ANNALS_JSON_JSON_SCAN_H_

#include <simdjson.h>

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace annals::json_util {

// The raw text of the value of the top-level member `key` of the JSON
// object text `json` (valid JSON), or "" if there is none. Member names are
// compared decoded, as simdjson's DOM compares them; of a repeated name the
// first counts.
std::string_view RawMemberValue(std::string_view json, std::string_view key);

// The value of the top-level member `key` of the JSON object text `json`,
// found as RawMemberValue finds it, to be read On-Demand in the same pass
// (in a copy of json, with this thread's parser: valid until the thread's
// next call here). NO_SUCH_FIELD if there is none.
simdjson::simdjson_result<simdjson::ondemand::value> MemberValue(std::string_view json, std::string_view key);
// The JSON text `json` (an object or array), to be read On-Demand (in a
// copy, with this thread's parser: valid until the thread's next call here).
simdjson::simdjson_result<simdjson::ondemand::value> Value(std::string_view json);

// An On-Demand parser with its own padded copy of the text (On-Demand reads
// past the end of its input). The functions above share one per thread; a
// reader whose string views must outlive those calls keeps its own.
struct PaddedParser {
  simdjson::ondemand::parser parser;
  std::string buf;
  // json copied into buf, padded.
  simdjson::padded_string_view Copy(std::string_view json);
  // The JSON text json (a copy) to be read On-Demand through *doc: valid
  // until the next call on this parser.
  simdjson::simdjson_result<simdjson::ondemand::value> Value(std::string_view json,
                                                             simdjson::ondemand::document* doc);
};

// Extents of the elements of the top-level member `key` (an array) of the
// JSON object text `json`, which must already be valid JSON.
// `readable`: how many bytes from json.data() may be read; with
// json_util::kJsonPadding of them past the end the text is not copied.
StatusOr<std::vector<std::string_view>> RawArrayMember(std::string_view json, std::string_view key,
                                                       size_t readable = 0);
// The same for the elements of the JSON array text `json` itself.
StatusOr<std::vector<std::string_view>> RawArrayElements(std::string_view json, size_t readable = 0);

}  // namespace annals::json_util

#endif  // ANNALS_JSON_JSON_SCAN_H_
