#include "merkle/tile.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace annals::merkle {
namespace {

namespace fs = std::filesystem;

TilePath Hashes(uint64_t level, uint64_t index, uint64_t width = kTileWidth) {
  return TilePath{
      .entries = false, .level = level, .index = index, .width = width};
}

TilePath Entries(uint64_t index, uint64_t width = kTileWidth) {
  return TilePath{.entries = true, .level = 0, .index = index, .width = width};
}

TEST(TileTest, FormatTileIndexGroupsThreeDigits) {
  EXPECT_EQ(FormatTileIndex(0), "000");
  EXPECT_EQ(FormatTileIndex(5), "005");
  EXPECT_EQ(FormatTileIndex(67), "067");
  EXPECT_EQ(FormatTileIndex(999), "999");
  EXPECT_EQ(FormatTileIndex(1000), "x001/000");
  EXPECT_EQ(FormatTileIndex(1234), "x001/234");
  EXPECT_EQ(FormatTileIndex(1234067), "x001/x234/067");
  EXPECT_EQ(FormatTileIndex(UINT64_MAX), "x018/x446/x744/x073/x709/x551/615");
}

TEST(TileTest, FormatTilePathSpecExamples) {
  EXPECT_EQ(FormatTilePath(Hashes(0, 1234)), "tile/0/x001/234");
  EXPECT_EQ(FormatTilePath(Hashes(2, 0, 5)), "tile/2/000.p/5");
  EXPECT_EQ(FormatTilePath(Entries(1234, 7)), "tile/entries/x001/234.p/7");
  EXPECT_EQ(FormatTilePath(Hashes(1, 1234067)), "tile/1/x001/x234/067");
  EXPECT_EQ(FormatTilePath(Hashes(0, 1234067, 8)), "tile/0/x001/x234/067.p/8");
  EXPECT_EQ(FormatTilePath(Entries(1234067)), "tile/entries/x001/x234/067");
  EXPECT_EQ(FormatTilePath(Hashes(63, 0, 255)), "tile/63/000.p/255");
  EXPECT_EQ(FormatTilePath(Entries(0, 1)), "tile/entries/000.p/1");
}

TEST(TileTest, ParseTilePathAcceptsCanonicalPaths) {
  struct Case {
    std::string path;
    TilePath want;
  };
  const std::vector<Case> cases = {
      {"tile/0/000", Hashes(0, 0)},
      {"tile/0/x001/234", Hashes(0, 1234)},
      {"/tile/0/x001/234", Hashes(0, 1234)},
      {"tile/2/000.p/5", Hashes(2, 0, 5)},
      {"tile/1/x001/x234/067", Hashes(1, 1234067)},
      {"tile/0/x001/x234/067.p/8", Hashes(0, 1234067, 8)},
      {"tile/entries/x001/234.p/7", Entries(1234, 7)},
      {"/tile/entries/x001/x234/067", Entries(1234067)},
      {"tile/63/999.p/255", Hashes(63, 999, 255)},
      {"tile/entries/000.p/1", Entries(0, 1)},
      {"tile/0/x018/x446/x744/x073/x709/x551/615", Hashes(0, UINT64_MAX)},
  };
  for (const Case& c : cases) {
    StatusOr<TilePath> got = ParseTilePath(c.path);
    ASSERT_TRUE(got.ok()) << c.path << ": " << got.status().ToString();
    EXPECT_EQ(*got, c.want) << c.path;
  }
}

TEST(TileTest, RoundTripsAcrossIndexesLevelsAndWidths) {
  std::vector<uint64_t> indexes = {0,
                                   1,
                                   9,
                                   10,
                                   99,
                                   100,
                                   999,
                                   1000,
                                   1001,
                                   999999,
                                   1000000,
                                   1234067,
                                   (1ull << 32) + 7,
                                   UINT64_MAX - 1,
                                   UINT64_MAX};
  for (uint64_t i = 0; i < 5000; i += 37) indexes.push_back(i);
  for (uint64_t index : indexes) {
    for (uint64_t width :
         {uint64_t{1}, uint64_t{2}, uint64_t{100}, uint64_t{255}, kTileWidth}) {
      for (const TilePath& tile :
           {Entries(index, width), Hashes(0, index, width),
            Hashes(7, index, width), Hashes(63, index, width)}) {
        const std::string path = FormatTilePath(tile);
        StatusOr<TilePath> parsed = ParseTilePath(path);
        ASSERT_TRUE(parsed.ok()) << path << ": " << parsed.status().ToString();
        EXPECT_EQ(*parsed, tile) << path;
        StatusOr<TilePath> rooted = ParseTilePath("/" + path);
        ASSERT_TRUE(rooted.ok()) << path;
        EXPECT_EQ(*rooted, tile) << path;
      }
    }
  }
}

TEST(TileTest, ParseTilePathRejectsNonCanonicalForms) {
  const std::vector<std::string> rejects = {
      "",
      "/",
      "tile",
      "tile/",
      "tile/0",
      "tile/0/",
      "tile//000",
      "//tile/0/000",
      "tiles/0/000",
      "Tile/0/000",
      "tile/0/000/",
      "/tile/0/000/",
      "tile/0/00",
      "tile/0/0",
      "tile/0/0000",
      "tile/0/1",
      "tile/0/x000",
      "tile/0/x001",
      "tile/0/001/234",
      "tile/0/x001/x234",
      "tile/0/x000/001",
      "tile/0/x000/x001/234",
      "tile/0/x1/234",
      "tile/0/x0001/234",
      "tile/0/X001/234",
      "tile/0/x001//234",
      "tile/0/x001/234x",
      "tile/0/x00a/234",
      "tile/0/0a0",
      "tile/0/+12",
      "tile/0/-12",
      "tile/0/ 12",
      "tile/0/12 ",
      "tile/0/x-01/234",
      "tile/0/x019/x446/x744/x073/x709/x551/615",
      "tile/0/x018/x446/x744/x073/x709/x551/616",
      "tile/0/x001/x000/x000/x000/x000/x000/x000/000",
      "tile/00/000",
      "tile/01/000",
      "tile/64/000",
      "tile/+1/000",
      "tile/-1/000",
      "tile/1a/000",
      "tile/18446744073709551616/000",
      "tile/entry/000",
      "tile/Entries/000",
      "tile/entries/",
      "tile/entries",
      "tile/0/000.p/0",
      "tile/0/000.p/256",
      "tile/0/000.p/300",
      "tile/0/000.p/05",
      "tile/0/000.p/",
      "tile/0/000.p",
      "tile/0/000.p/5/",
      "tile/0/000.p/5/6",
      "tile/0/000.p/5.p/6",
      "tile/0/000.p/+5",
      "tile/0/000.p/ 5",
      "tile/0/000.P/5",
      "tile/0/000.q/5",
      "tile/0/000p/5",
      "tile/0/000.p5",
      "tile/0/.p/5",
      "tile/0/x001.p/5/234",
      "tile/0/x001/.p/5",
      "tile/../000",
      "tile/0/../000",
      "tile/0/./000",
      "tile/0/000/..",
      "tile/0/x001/../234",
      "tile/0/000?x=1",
      "tile/0/000#a",
      "tile/0/000\n",
      std::string("tile/0/000\0", 11),
      std::string("tile/0/0\0"
                  "0",
                  10),
      "tile\\0\\000",
      "https://example.com/tile/0/000",
      "checkpoint",
      // The legacy serverless layout.
      "tile/00/0000/00/00",
      "tile/00/0000/00/00.01",
  };
  for (const std::string& path : rejects) {
    StatusOr<TilePath> got = ParseTilePath(path);
    EXPECT_FALSE(got.ok()) << "accepted \"" << path << "\"";
    if (!got.ok()) {
      EXPECT_EQ(got.status().code(), StatusCode::kInvalidArgument) << path;
    }
  }
}

// Real tiles written by tessera parse and format back to the same path; the
// legacy serverless layout must not be mistaken for tiles.
TEST(TileTest, CorpusTileStores) {
  const fs::path base = fs::path(ANNALS_CORPUS_DIR) / "notes-checkpoints";
  int tessera = 0;
  for (const auto& entry : fs::recursive_directory_iterator(
           base / "tessera-testdata-log" / "tile")) {
    if (!entry.is_regular_file()) continue;
    const std::string rel =
        entry.path().lexically_relative(base / "tessera-testdata-log").string();
    StatusOr<TilePath> tile = ParseTilePath(rel);
    ASSERT_TRUE(tile.ok()) << rel << ": " << tile.status().ToString();
    EXPECT_EQ(FormatTilePath(*tile), rel);
    ++tessera;
  }
  EXPECT_GT(tessera, 0);

  int serverless = 0;
  for (const auto& entry : fs::recursive_directory_iterator(
           base / "serverless-log-testdata-log" / "tile")) {
    if (!entry.is_regular_file()) continue;
    const std::string rel =
        entry.path()
            .lexically_relative(base / "serverless-log-testdata-log")
            .string();
    EXPECT_FALSE(ParseTilePath(rel).ok()) << rel;
    ++serverless;
  }
  EXPECT_GT(serverless, 0);
}

}  // namespace
}  // namespace annals::merkle
