#include "json/json_parse.h"

#include <simdjson.h>

namespace annals::json_util {

Status CheckJsonDepth(std::string_view s, std::string_view what) {
  size_t depth = 0;
  bool in_str = false, esc = false;
  for (char c : s) {
    if (in_str) {
      if (esc) esc = false;
      else if (c == '\\') esc = true;
      else if (c == '"') in_str = false;
      continue;
    }
    if (c == '"') in_str = true;
    else if (c == '{' || c == '[') {
      if (++depth > kMaxJsonDepth)
        return InvalidArgumentError(std::string(what) + ": JSON nested deeper than " +
                                    std::to_string(kMaxJsonDepth) + " levels");
    } else if (c == '}' || c == ']') {
      if (depth) --depth;
    }
  }
  return OkStatus();
}

simdjson::dom::parser& JsonParser() {
  thread_local simdjson::dom::parser parser;
  thread_local bool ready = false;
  if (!ready) {
    // On failure (out of memory) parse() reports it for every document.
    ready = parser.allocate(64 << 10, kMaxJsonDepth) == simdjson::SUCCESS;
  }
  return parser;
}

std::string JsonErrorMessage(int e) {
  auto err = static_cast<simdjson::error_code>(e);
  if (err == simdjson::DEPTH_ERROR)
    return "JSON nested deeper than " + std::to_string(kMaxJsonDepth) + " levels";
  return std::string("invalid JSON (") + simdjson::error_message(err) + ")";
}

}  // namespace annals::json_util
