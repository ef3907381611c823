// Feeds arbitrary bytes to the YAML reader behind kubeconfigs and the
// client config file. It may not crash, hang or blow up on aliases; what
// it reads holds only objects, arrays, strings and nulls, no deeper than
// its limit, and no larger than its value budget.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz_check.h"
#include "kube/yaml.h"

namespace {

size_t Walk(const nlohmann::json& j, int depth) {
  CHECK(depth <= 33);
  CHECK(j.is_object() || j.is_array() || j.is_string() || j.is_null());
  size_t n = 1;
  if (j.is_structured())
    for (const auto& v : j) n += Walk(v, depth + 1);
  return n;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  auto y = annals::kube::YamlToJson(input, "fuzz");
  if (!y.ok()) {
    CHECK(y.status().message().rfind("fuzz: ", 0) == 0);
    return 0;
  }
  CHECK(Walk(*y, 0) <= (size_t{1} << 21));
  return 0;
}
