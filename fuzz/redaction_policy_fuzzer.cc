// Feeds arbitrary bytes to the redaction policy parser: it may refuse them
// (with a message naming the policy) but never crash, and a policy it
// accepts has no empty names and only well-formed paths, and builds a
// redactor with a stable version.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz_check.h"
#include "redact/policy.h"
#include "redact/redactor.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace annals::redact;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  auto p = ParsePolicy(input);
  if (!p.ok()) {
    CHECK(p.status().message().starts_with("redaction policy: "));
    return 0;
  }
  CHECK(!p->name.empty());
  for (const auto& k : p->kinds) {
    CHECK(!k.kind.empty() || !k.resource.empty());
    CHECK(!k.paths.empty());
    for (const auto& path : k.paths) CHECK(!path.empty() && path.front() != '/' && path.back() != '/');
  }
  for (const auto& k : p->keys) CHECK(!k.empty());
  Redactor r(*p);
  CHECK(r.version() == p->Version());
  CHECK(r.version().starts_with(p->name + "@"));
  return 0;
}
