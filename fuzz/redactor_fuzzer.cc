// Feeds arbitrary bytes to the redactor with the default policy. It may
// refuse them (malformed JSON, nesting past 64 levels) but never crash; what
// it redacts must hold up: every sealed value opens its commitment, and
// putting each value back in place of its commitment gives the input byte
// for byte (nothing else was touched). The cheap look (MayApply) must not
// say "nothing here" for an input the redactor does redact, and its look
// at the parsed document agrees with its look at the bytes.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <simdjson.h>

#include "fuzz_check.h"
#include "json/json_parse.h"
#include "redact/policy.h"
#include "redact/redactor.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace annals::redact;
  static const Redactor* redactor = new Redactor(DefaultPolicy());
  std::string_view input(reinterpret_cast<const char*>(data), size);
  // Half the inputs as a watched list's items: the kind from outside.
  const std::string_view kind = size % 2 ? "Secret" : "";
  const bool may = redactor->MayApply(input, kind);
  // Parsed, the look at the document says the same.
  {
    static simdjson::dom::parser parser;
    simdjson::dom::element doc;
    if (parser.parse(input.data(), input.size()).get(doc) == simdjson::SUCCESS &&
        annals::json_util::CheckUniqueKeys(doc, "input").ok())
      CHECK(redactor->MayApply(doc, kind) == may);
  }
  uint8_t n = 0;
  auto r = redactor->Apply(
      input,
      [&n] {
        Salt s{};
        s.fill(++n);
        return s;
      },
      kind);
  if (!r.ok()) return 0;
  CHECK(r->values.empty() == r->payload.empty());
  if (r->values.empty()) return 0;
  CHECK(may);
  // The payload is the input with each value, where it was, replaced by
  // its commitment: nothing else touched.
  std::string want;
  size_t from = 0;
  for (const auto& v : r->values) {
    CHECK(Verify(v.commitment(), v.value, v.salt));
    CHECK(v.offset >= from && v.offset + v.value.size() <= input.size());
    CHECK(input.substr(v.offset, v.value.size()) == v.value);
    want.append(input.substr(from, v.offset - from));
    want.append("\"" + v.commitment() + "\"");
    from = v.offset + v.value.size();
  }
  want.append(input.substr(from));
  CHECK(want == r->payload);
  return 0;
}
