#include "merkle/tile.h"

#include <optional>
#include <string>

#include "common/bytes.h"

namespace annals::merkle {

namespace {

constexpr std::string_view kTilePrefix = "tile/";
constexpr std::string_view kEntriesDir = "entries";
constexpr std::string_view kPartialMarker = ".p/";
constexpr uint64_t kMaxTileLevel = 63;

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Parses exactly three decimal digits.
bool ParseGroup(std::string_view s, uint64_t* out) {
  if (s.size() != 3 || !IsDigit(s[0]) || !IsDigit(s[1]) || !IsDigit(s[2])) {
    return false;
  }
  *out = static_cast<uint64_t>((s[0] - '0') * 100 + (s[1] - '0') * 10 +
                               (s[2] - '0'));
  return true;
}

// Strict inverse of FormatTileIndex.
bool ParseTileIndex(std::string_view s, uint64_t* out) {
  uint64_t n = 0;
  bool first = true;
  while (true) {
    const size_t slash = s.find('/');
    const bool last = slash == std::string_view::npos;
    std::string_view group = last ? s : s.substr(0, slash);
    if (!last) {
      if (group.empty() || group[0] != 'x') return false;
      group.remove_prefix(1);
    }
    uint64_t g;
    if (!ParseGroup(group, &g)) return false;
    // A leading all-zero group is padding FormatTileIndex never emits.
    if (first && !last && g == 0) return false;
    if (n > (UINT64_MAX - g) / 1000) return false;
    n = n * 1000 + g;
    first = false;
    if (last) break;
    s.remove_prefix(slash + 1);
  }
  *out = n;
  return true;
}

}  // namespace

std::string FormatTileIndex(uint64_t n) {
  std::string digits = std::to_string(n);
  digits.insert(0, (3 - digits.size() % 3) % 3, '0');
  std::string out;
  for (size_t i = 0; i < digits.size(); i += 3) {
    if (i + 3 < digits.size()) out.push_back('x');
    out.append(digits, i, 3);
    if (i + 3 < digits.size()) out.push_back('/');
  }
  return out;
}

std::string FormatTilePath(const TilePath& path) {
  std::string out(kTilePrefix);
  if (path.entries) {
    out.append(kEntriesDir);
  } else {
    out.append(std::to_string(path.level));
  }
  out.push_back('/');
  out.append(FormatTileIndex(path.index));
  if (path.width < kTileWidth) {
    out.append(kPartialMarker);
    out.append(std::to_string(path.width));
  }
  return out;
}

StatusOr<TilePath> ParseTilePath(std::string_view path) {
  const std::string original(path);
  auto reject = [&original](std::string_view why) {
    return InvalidArgumentError("bad tile path \"" + original +
                                "\": " + std::string(why));
  };
  if (!path.empty() && path[0] == '/') path.remove_prefix(1);
  if (!path.starts_with(kTilePrefix)) return reject("want tile/ prefix");
  path.remove_prefix(kTilePrefix.size());

  TilePath tile;
  const size_t slash = path.find('/');
  if (slash == std::string_view::npos) return reject("missing tile index");
  const std::string_view kind = path.substr(0, slash);
  path.remove_prefix(slash + 1);
  if (kind == kEntriesDir) {
    tile.entries = true;
  } else {
    std::optional<uint64_t> level = ParseDecimal(kind);
    if (!level || *level > kMaxTileLevel) return reject("bad level");
    tile.level = *level;
  }

  const size_t partial = path.find(kPartialMarker);
  if (partial != std::string_view::npos) {
    std::optional<uint64_t> width =
        ParseDecimal(path.substr(partial + kPartialMarker.size()));
    if (!width || *width == 0 || *width >= kTileWidth) {
      return reject("bad partial width");
    }
    tile.width = *width;
    path = path.substr(0, partial);
  }
  if (!ParseTileIndex(path, &tile.index)) return reject("bad tile index");
  return tile;
}

}  // namespace annals::merkle
