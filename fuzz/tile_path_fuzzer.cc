// Fuzzes ParseTilePath: it must never crash, and whatever it accepts must be
// canonical, i.e. FormatTilePath gives back the input (minus a leading '/')
// and parsing that again gives the same TilePath.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "merkle/tile.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using annals::StatusOr;
  using annals::merkle::TilePath;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  StatusOr<TilePath> tile = annals::merkle::ParseTilePath(input);
  if (!tile.ok()) return 0;
  std::string_view canonical = input;
  if (!canonical.empty() && canonical[0] == '/') canonical.remove_prefix(1);
  const std::string formatted = annals::merkle::FormatTilePath(*tile);
  if (formatted != canonical) std::abort();
  StatusOr<TilePath> again = annals::merkle::ParseTilePath(formatted);
  if (!again.ok() || !(*again == *tile)) std::abort();
  return 0;
}
