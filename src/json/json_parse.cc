#include "json/json_parse.h"

#include <simdjson.h>

#include <algorithm>
#include <vector>

namespace annals::json_util {

static_assert(kJsonPadding >= simdjson::SIMDJSON_PADDING, "kJsonPadding must cover simdjson's padding");

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

namespace {

// The first key that `object` has more than once; false if none. keys is
// scratch space.
bool RepeatedKey(simdjson::dom::object object, std::vector<std::string_view>* keys, std::string_view* dup) {
  keys->clear();
  for (auto field : object) keys->push_back(field.key);
  if (keys->size() < 2) return false;
  if (keys->size() <= 16) {
    for (size_t i = 1; i < keys->size(); ++i)
      for (size_t j = 0; j < i; ++j)
        if ((*keys)[i] == (*keys)[j]) {
          *dup = (*keys)[i];
          return true;
        }
    return false;
  }
  std::sort(keys->begin(), keys->end());
  auto it = std::adjacent_find(keys->begin(), keys->end());
  if (it == keys->end()) return false;
  *dup = *it;
  return true;
}

Status Repeated(std::string_view what, std::string_view dup) {
  return InvalidArgumentError(std::string(what) + ": an object has the key \"" + std::string(dup) +
                              "\" more than once (JSON parsers disagree on which value counts)");
}

}  // namespace

Status CheckUniqueKeys(const simdjson::dom::element& root, std::string_view what) {
  return CheckUniqueKeys(root, what, nullptr, nullptr);
}

Status CheckUniqueKeys(const simdjson::dom::element& root, std::string_view what,
                       const std::function<bool(std::string_view)>& look, bool* looked) {
  bool looking = look != nullptr;
  if (looked) *looked = false;
  auto see = [&](std::string_view s) {
    if (looking && look(s)) {
      looking = false;
      *looked = true;
    }
  };
  using T = simdjson::dom::element_type;
  if (root.type() == T::STRING) see(std::string_view(root));
  std::vector<simdjson::dom::element> stack{root};
  std::vector<std::string_view> keys;
  std::string_view dup;
  while (!stack.empty()) {
    simdjson::dom::element e = stack.back();
    stack.pop_back();
    if (e.type() == T::OBJECT) {
      simdjson::dom::object o(e);
      if (RepeatedKey(o, &keys, &dup)) return Repeated(what, dup);
      if (looking)
        for (std::string_view k : keys) see(k);
      for (auto field : o) {
        const auto t = field.value.type();
        if (t == T::OBJECT || t == T::ARRAY) stack.push_back(field.value);
        else if (looking && t == T::STRING) see(std::string_view(field.value));
      }
    } else if (e.type() == T::ARRAY) {
      for (auto v : simdjson::dom::array(e)) {
        const auto t = v.type();
        if (t == T::OBJECT || t == T::ARRAY) stack.push_back(v);
        else if (looking && t == T::STRING) see(std::string_view(v));
      }
    }
  }
  return OkStatus();
}

Status CheckUniqueMembers(const simdjson::dom::element& object, std::string_view what) {
  if (object.type() != simdjson::dom::element_type::OBJECT) return OkStatus();
  thread_local std::vector<std::string_view> keys;
  std::string_view dup;
  if (RepeatedKey(simdjson::dom::object(object), &keys, &dup)) return Repeated(what, dup);
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
