// Parsing untrusted JSON with simdjson under one nesting limit: the
// per-thread parser every reader shares, the one way its errors are worded,
// and a depth check for text that is not parsed here. Thread-safe (the
// parser is per thread).
#ifndef ANNALS_JSON_JSON_PARSE_H_
#define ANNALS_JSON_JSON_PARSE_H_

#include <cstddef>
#include <string>
#include <functional>
#include <string_view>

#include "common/status.h"

namespace simdjson::dom {
class parser;
class element;
}

namespace annals::json_util {

inline constexpr size_t kMaxJsonDepth = 64;

// Bytes a buffer of JSON text should have readable past its end so that
// simdjson parses it where it is (its SIMD stages read past the end; with
// less it copies the text into a padded buffer first). The HTTP server
// reserves them behind every request body.
inline constexpr size_t kJsonPadding = 64;

// Whether `text`, whose buffer has `readable` bytes from text.data(), has
// kJsonPadding bytes after it.
inline bool JsonPadded(std::string_view text, size_t readable) {
  return readable >= text.size() + kJsonPadding;
}

// This thread's simdjson parser, limited to kMaxJsonDepth levels of nesting
// (simdjson parses iteratively: hostile nesting cannot blow the stack).
simdjson::dom::parser& JsonParser();
// A one-line reason for a simdjson error code.
std::string JsonErrorMessage(int simdjson_error);

// Refuses a document with an object that has the same key twice, at any
// depth: parsers disagree on which value counts (simdjson's lookups take
// the first, most others the last), so what annals indexes and what a
// reader of the stored bytes sees could differ. InvalidArgument naming the
// key. Iterative.
Status CheckUniqueKeys(const simdjson::dom::element& root, std::string_view what);
// The same walk, also handing each member name and string value (decoded)
// to `look` until it returns true; *looked says whether one did.
Status CheckUniqueKeys(const simdjson::dom::element& root, std::string_view what,
                       const std::function<bool(std::string_view)>& look, bool* looked);
// The same for one object's own keys only (not those of its members): for
// readers that look at a few objects of a large document on a hot path.
// OK for an element that is not an object.
Status CheckUniqueMembers(const simdjson::dom::element& object, std::string_view what);

// Depth check alone (iterative; hostile nesting cannot blow the stack).
Status CheckJsonDepth(std::string_view s, std::string_view what);

}  // namespace annals::json_util

#endif  // ANNALS_JSON_JSON_PARSE_H_
