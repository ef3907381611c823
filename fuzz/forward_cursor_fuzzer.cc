// Feeds arbitrary bytes to the forwarder position-file parser (a file on
// disk, DATA/forward/*.pos): no crash, and what parses re-encodes to a
// cursor that parses to the same index.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "forward/forward_cursor.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  auto n = annals::forward::ParseCursor(in);
  if (!n.ok()) return 0;
  auto again = annals::forward::ParseCursor(annals::forward::EncodeCursor(*n, "t"));
  if (!again.ok() || *again != *n) {
    std::fprintf(stderr, "cursor %llu does not round-trip\n", static_cast<unsigned long long>(*n));
    std::abort();
  }
  return 0;
}
