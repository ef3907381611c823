#include "ledger/tile_store.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <string>
#include <vector>

#include "merkle/merkle.h"

namespace annals::ledger {
namespace {

namespace fs = std::filesystem;

std::vector<Hash> Leaves(uint64_t n) {
  std::vector<Hash> out;
  for (uint64_t i = 0; i < n; ++i) out.push_back(merkle::HashLeaf("leaf " + std::to_string(i)));
  return out;
}

Hash Root(const std::vector<Hash>& leaves, uint64_t size) {
  merkle::CompactRange r;
  for (uint64_t i = 0; i < size; ++i) r.Append(leaves[i], nullptr);
  return r.Root();
}

class TileStoreTest : public testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "annals-tiles-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string dir_;
};

TEST_F(TileStoreTest, IntegrateWritesFullTilesAndReadsEveryNode) {
  constexpr uint64_t kN = 3 * 256 + 17;
  const auto leaves = Leaves(kN);
  TileStore tiles(dir_);
  ASSERT_EQ(*tiles.Load(0), 0u);
  // Uneven batches.
  for (uint64_t i = 0; i < kN; i += 100) {
    std::vector<Hash> batch(leaves.begin() + i, leaves.begin() + std::min(kN, i + 100));
    ASSERT_TRUE(tiles.Integrate(batch).ok());
  }
  EXPECT_EQ(tiles.size(), kN);
  EXPECT_EQ(tiles.Root(), Root(leaves, kN));
  // Three full level-0 tiles, back to back in the level's file; none above.
  EXPECT_EQ(fs::file_size(TileStore::LevelFile(dir_, 0)), 3u * 256 * 32);
  EXPECT_FALSE(fs::exists(TileStore::LevelFile(dir_, 1)));
  ASSERT_TRUE(tiles.Sync().ok());
  for (uint64_t i = 0; i < kN; i += 13) {
    auto h = tiles.ReadNode(0, i);
    ASSERT_TRUE(h.ok()) << i << ": " << h.status().ToString();
    EXPECT_EQ(*h, leaves[i]) << i;
  }
  // Every stored size's root from the tiles.
  for (uint64_t size : {1u, 255u, 256u, 257u, 600u, 768u, 785u}) {
    auto r = merkle::RootHash(size, tiles.Reader());
    ASSERT_TRUE(r.ok()) << size << ": " << r.status().ToString();
    EXPECT_EQ(*r, Root(leaves, size)) << size;
  }
  EXPECT_EQ(tiles.ReadTile(0, 3, 18).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(tiles.ReadTile(0, 4, 1).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(tiles.ReadTile(0, 0, 0).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(tiles.ReadTile(0, 0, 257).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(TileStoreTest, LoadResumesFromStoredTiles) {
  constexpr uint64_t kN = 1000;
  const auto leaves = Leaves(kN);
  {
    TileStore tiles(dir_);
    ASSERT_TRUE(tiles.Load(0).ok());
    ASSERT_TRUE(tiles.Integrate(leaves).ok());
  }
  TileStore tiles(dir_);
  auto covered = tiles.Load(kN);
  ASSERT_TRUE(covered.ok()) << covered.status().ToString();
  EXPECT_EQ(*covered, 768u);
  EXPECT_EQ(tiles.size(), 768u);
  EXPECT_EQ(tiles.Root(), Root(leaves, 768));
  ASSERT_TRUE(tiles.Integrate(std::vector<Hash>(leaves.begin() + 768, leaves.end())).ok());
  EXPECT_EQ(tiles.Root(), Root(leaves, kN));
}

TEST_F(TileStoreTest, LoadTrustsOnlyWholeTilesBelowTheGivenSize) {
  constexpr uint64_t kN = 5 * 256;
  const auto leaves = Leaves(kN);
  {
    TileStore tiles(dir_);
    ASSERT_TRUE(tiles.Load(0).ok());
    ASSERT_TRUE(tiles.Integrate(leaves).ok());
  }
  // A torn write: the file ends in the middle of tile 4.
  fs::resize_file(TileStore::LevelFile(dir_, 0), 4 * 256 * 32 + 100);
  // A tile directory of an earlier version is derived data and goes away.
  fs::create_directories(dir_ + "/tile/0");
  {
    TileStore tiles(dir_);
    auto covered = tiles.Load(kN);
    ASSERT_TRUE(covered.ok()) << covered.status().ToString();
    EXPECT_EQ(*covered, 4u * 256);
    EXPECT_FALSE(fs::exists(dir_ + "/tile"));
    // Re-integrating rewrites tile 4 whole.
    ASSERT_TRUE(tiles.Integrate(std::vector<Hash>(leaves.begin() + 4 * 256, leaves.end())).ok());
    EXPECT_EQ(tiles.Root(), Root(leaves, kN));
    EXPECT_EQ(fs::file_size(TileStore::LevelFile(dir_, 0)), 5u * 256 * 32);
  }
  // Tiles beyond the size Load() is given (say, past the last checkpoint)
  // are not trusted: the caller re-hashes from there.
  TileStore tiles(dir_);
  auto covered = tiles.Load(2 * 256 + 10);
  ASSERT_TRUE(covered.ok());
  EXPECT_EQ(*covered, 2u * 256);
  EXPECT_EQ(tiles.Root(), Root(leaves, 2 * 256));
}

}  // namespace
}  // namespace annals::ledger
