// C2SP tlog-tiles geometry and paths. Pure functions, thread-safe.
//
// A hash tile at tile level L, index N, holds the Merkle nodes at tree level
// 8*L with indexes [N*256, N*256+W), W = 256 for a full tile. Entry bundle N
// holds entries [N*256, N*256+W).
#ifndef ANNALS_MERKLE_TILE_H_
#define ANNALS_MERKLE_TILE_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace annals::merkle {

inline constexpr int kTileHeight = 8;
inline constexpr uint64_t kTileWidth = 256;

struct TilePath {
  bool entries = false;  // tile/entries/... (then level is 0)
  uint64_t level = 0;    // tile level L (tree level 8*L)
  uint64_t index = 0;    // N
  uint64_t width = kTileWidth;  // 1..256; < 256 means a ".p/W" partial tile

  bool operator==(const TilePath&) const = default;
};

// N in the x001/x234/067 form: groups of three digits, all but the last
// prefixed with 'x'. 0 -> "000", 1234067 -> "x001/x234/067".
std::string FormatTileIndex(uint64_t n);
// "tile/0/x001/234", "tile/2/000.p/5", "tile/entries/x001/234.p/7".
std::string FormatTilePath(const TilePath& path);
// Strict inverse of FormatTilePath; accepts the path with or without a
// leading '/'. Rejects non-canonical forms (".p/256", ".p/0", leading zeros
// other than the 3-digit groups, levels > 63, anything extra).
StatusOr<TilePath> ParseTilePath(std::string_view path);

}  // namespace annals::merkle

#endif  // ANNALS_MERKLE_TILE_H_
