// Writing JSON text by hand, for the encoders on hot paths (entry
// metadata, watch records, enrichment fragments) that build their output
// member by member instead of through a DOM. Pure functions, thread-safe.
#ifndef ANNALS_JSON_JSON_WRITE_H_
#define ANNALS_JSON_JSON_WRITE_H_

#include <string>
#include <string_view>

namespace annals::json_util {

// Appends s to out as a JSON string literal (quotes included).
void AppendJsonString(std::string* out, std::string_view s);
// Appends `"name":"value"` to an object being built in *out, with a comma
// unless it is the first member; an optional empty value is left out.
void AppendJsonMember(std::string* out, std::string_view name, std::string_view value,
                      bool optional = false);

}  // namespace annals::json_util

#endif  // ANNALS_JSON_JSON_WRITE_H_
