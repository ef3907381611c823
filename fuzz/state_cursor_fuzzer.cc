// Feeds arbitrary bytes to DecodeStateCursor, the reader of the cursor a
// client sends back to continue a paged /v1/state answer
// (docs/format/http-api.md): anything that is not a cursor the server made
// is refused, never read out of bounds. What it accepts must survive a
// round trip through EncodeStateCursor, and any five NUL-free strings cut
// from the input must come back from their own cursor.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "state/questions.h"

using annals::state::DecodeStateCursor;
using annals::state::EncodeStateCursor;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  if (auto c = DecodeStateCursor(in)) {
    const auto& [r, n, m, u, cl] = *c;
    std::string again = EncodeStateCursor(r, n, m, u, cl);
    CHECK(again.find_first_of("+/=") == std::string::npos);
    auto back = DecodeStateCursor(again);
    CHECK(back.has_value());
    CHECK(*back == *c);
  }
  // Five parts cut at 0x01 bytes, NULs dropped (a part never holds one).
  std::string parts[5];
  size_t k = 0;
  for (char ch : in) {
    if (ch == '\x01' && k < 4) {
      ++k;
    } else if (ch != '\0') {
      parts[k] += ch;
    }
  }
  std::string cursor = EncodeStateCursor(parts[0], parts[1], parts[2], parts[3], parts[4]);
  auto back = DecodeStateCursor(cursor);
  CHECK(back.has_value());
  CHECK(std::get<0>(*back) == parts[0] && std::get<1>(*back) == parts[1] && std::get<2>(*back) == parts[2] &&
        std::get<3>(*back) == parts[3] && std::get<4>(*back) == parts[4]);
  return 0;
}
