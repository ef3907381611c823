// Parsing untrusted JSON with simdjson under one nesting limit: the
// per-thread parser every reader shares, the one way its errors are worded,
// and a depth check for text that is not parsed here. Thread-safe (the
// parser is per thread).
#ifndef ANNALS_JSON_JSON_PARSE_H_
#define ANNALS_JSON_JSON_PARSE_H_

#include <cstddef>
#include <string>
#include <string_view>

#include "common/status.h"

namespace simdjson::dom {
class parser;
}

namespace annals::json_util {

inline constexpr size_t kMaxJsonDepth = 64;

// This thread's simdjson parser, limited to kMaxJsonDepth levels of nesting
// (simdjson parses iteratively: hostile nesting cannot blow the stack).
simdjson::dom::parser& JsonParser();
// A one-line reason for a simdjson error code.
std::string JsonErrorMessage(int simdjson_error);

// Depth check alone (iterative; hostile nesting cannot blow the stack).
Status CheckJsonDepth(std::string_view s, std::string_view what);

}  // namespace annals::json_util

#endif  // ANNALS_JSON_JSON_PARSE_H_
