// TileStore: the Merkle tree's nodes at tree levels 0, 8, 16, ... kept as
// C2SP hash tiles. The full tiles of level L are written once, in order, into
// one file <dir>/tiles/<L>.tiles, tile N at byte N * 8,192 (docs/format/
// tiles.md); the rightmost, still-growing tile of each level lives in memory
// (it is rebuilt from segments and lower tiles on start). Every other node is
// computed from these on demand.
//
// Threads: Integrate() from one writer thread; Sync() from the checkpoint
// publisher; readers (ReadNode, ReadTile, Snapshot) from any thread.
// Internally synchronized. File I/O goes through an env::Env, which must
// outlive the store.
#ifndef ANNALS_LEDGER_TILE_STORE_H_
#define ANNALS_LEDGER_TILE_STORE_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <vector>

#include "common/sha256.h"
#include "common/status.h"
#include "env/env.h"
#include "merkle/merkle.h"
#include "merkle/tile.h"

namespace annals::ledger {

class TileStore {
 public:
  explicit TileStore(std::string dir, env::Env* env = env::Env::Default());

  // Loads full tiles for a tree of at least `size` leaves and prepares to
  // integrate from the largest size the stored tiles cover, which it
  // returns (<= size). The caller re-integrates the leaves after it.
  StatusOr<uint64_t> Load(uint64_t size);
  // Adds leaf hashes at the end of the tree. The tree grows even when
  // writing a completed tile fails: the tile stays in memory (readable),
  // and the next Integrate or Sync writes it again. ResourceExhausted for
  // a full disk.
  Status Integrate(const std::vector<Hash>& leaf_hashes);
  // Full tiles not yet written to disk.
  size_t PendingTiles() const;

  // Makes every full tile of the tree as large as size() was when called
  // durable (fdatasync), so that tiles below a signed checkpoint survive a
  // crash whole; writes the pending tiles first (ResourceExhausted if the
  // disk is still full; a failed fdatasync is Internal: never retried).
  Status Sync();

  uint64_t size() const;
  Hash Root() const;
  // Size and root read together.
  void Snapshot(uint64_t* size, Hash* root) const;

  // Node at any level/index inside the current tree (merkle::NodeReader).
  StatusOr<Hash> ReadNode(uint64_t level, uint64_t index) const;
  merkle::NodeReader Reader() const;
  // A hash tile's bytes (width * 32), full or partial, within the current tree.
  StatusOr<std::string> ReadTile(uint64_t level, uint64_t index, uint64_t width) const;

  // Full tiles stored at `level` (the scrub checks these).
  uint64_t FullTiles(uint64_t level) const;
  // The stored hashes of full tile (level, index).
  StatusOr<std::vector<Hash>> StoredTile(uint64_t level, uint64_t index) const {
    return LoadTileHashes(level, index, merkle::kTileWidth);
  }
  // Rewrites stored full tile (level, index) with hashes and makes it
  // durable: the scrub's repair of a damaged tile.
  Status RewriteFullTile(uint64_t level, uint64_t index, const std::vector<Hash>& hashes);
  // The root of a tile's hashes (a node kTileHeight levels above them).
  static Hash TileRoot(const std::vector<Hash>& hashes);

  // The file that holds the full tiles of `level` under the log directory.
  static std::string LevelFile(const std::string& log_dir, uint64_t level);
  static constexpr uint64_t kTileBytes = merkle::kTileWidth * 32;

  ~TileStore();

 private:
  Status WriteFullTile(uint64_t level, uint64_t index, const std::vector<Hash>& hashes);
  // Writes the full tiles not yet on disk, in order, up to the first that
  // fails. Under io_mu_.
  Status WritePending();
  StatusOr<std::vector<Hash>> LoadTileHashes(uint64_t level, uint64_t index, uint64_t width) const;
  // The level's file, opened (created) on first use.
  StatusOr<env::File*> OpenLevel(uint64_t level);

  const std::string dir_;
  env::Env* const env_;
  // Held by Integrate() from the tree's growth until its tiles are written,
  // and by Sync(): a Sync() that follows a Snapshot() sees those tiles.
  std::mutex io_mu_;
  mutable std::shared_mutex mu_;
  // Per level (at most 64: merkle::ParseTilePath), null until opened;
  // opened under open_mu_ into files_ (which owns them until the store
  // goes), read through files_by_level_ without a lock.
  std::mutex open_mu_;
  std::array<std::unique_ptr<env::File>, 64> files_;
  std::array<std::atomic<env::File*>, 64> files_by_level_;
  // Per tile level: number of full tiles on disk, and the partial tile.
  std::vector<uint64_t> full_;  // guarded by mu_, as are partial_ and range_
  std::vector<std::vector<Hash>> partial_;
  merkle::CompactRange range_;
  struct PendingTile {
    uint64_t level, index;
    std::vector<Hash> hashes;
  };
  // Full tiles being written to disk, or not written yet because a write
  // failed (a full disk): Integrate and Sync write them first.
  std::vector<PendingTile> pending_;
};

}  // namespace annals::ledger

#endif  // ANNALS_LEDGER_TILE_STORE_H_
