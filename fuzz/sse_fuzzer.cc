// Feeds arbitrary bytes to the Server-Sent Events parser (what `annals
// watch` reads from a server): no crash, and the events do not depend on
// how the bytes are split into pieces.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "client/sse.h"

namespace {

std::vector<std::string> Parse(const std::vector<std::string_view>& pieces) {
  annals::client::SseParser p;
  std::vector<std::string> out;
  for (auto piece : pieces)
    if (!p.Feed(piece, [&](const annals::client::SseEvent& e) {
          out.push_back(e.id + "\x01" + e.event + "\x01" + e.data);
          return true;
        }))
      break;
  out.push_back(p.last_event_id());
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  auto whole = Parse({in});
  size_t cut = size ? data[0] % (size + 1) : 0;
  auto split = Parse({in.substr(0, cut), in.substr(cut)});
  if (whole != split) {
    std::fprintf(stderr, "events depend on the split at %zu\n", cut);
    std::abort();
  }
  return 0;
}
