// Ledger::Scrub: the background check of the whole log against its tiles
// and its signed checkpoint (docs/faults.md "The scrub").
#include <chrono>
#include <thread>

#include "checkpoint/checkpoint.h"
#include "common/log.h"
#include "ledger/ledger.h"
#include "merkle/merkle.h"
#include "merkle/tile.h"

namespace annals::ledger {

using merkle::kTileHeight;
using merkle::kTileWidth;

namespace {

// A reader of the tree in which full tile (tile_level, tile_index) holds
// `hashes` instead of what is stored: every node over that tile is computed
// from them, every other node read from the store. The root it gives says
// whether those hashes belong to the signed tree.
merkle::NodeReader ReaderWithTile(const TileStore& tiles, uint64_t tile_level, uint64_t tile_index,
                                  const std::vector<Hash>& hashes) {
  const uint64_t base = tile_level * kTileHeight;  // the tree level of the tile's hashes
  const uint64_t first = tile_index * kTileWidth;  // its first node there
  return [&tiles, base, first, tile_index, &hashes](uint64_t level, uint64_t index) -> StatusOr<Hash> {
    std::function<StatusOr<Hash>(uint64_t, uint64_t)> node = [&](uint64_t l, uint64_t i) -> StatusOr<Hash> {
      if (l < base) return tiles.ReadNode(l, i);
      const uint64_t up = l - base;
      if (up <= kTileHeight) {
        const uint64_t span = uint64_t{1} << up;  // tile-level nodes under (l, i)
        const uint64_t lo = i * span;
        if (lo + span <= first || lo >= first + kTileWidth) return tiles.ReadNode(l, i);
        std::vector<Hash> slice(hashes.begin() + static_cast<ptrdiff_t>(lo - first),
                                hashes.begin() + static_cast<ptrdiff_t>(lo - first + span));
        return slice.size() == 1 ? slice[0] : TileStore::TileRoot(slice);
      }
      if (i != tile_index >> (up - kTileHeight)) return tiles.ReadNode(l, i);
      ASSIGN_OR_RETURN(Hash left, node(l - 1, 2 * i));
      ASSIGN_OR_RETURN(Hash right, node(l - 1, 2 * i + 1));
      return merkle::HashChildren(left, right);
    };
    return node(level, index);
  };
}

std::string TileName(uint64_t level, uint64_t index) {
  return "tile " + std::to_string(level) + "/" + std::to_string(index);
}

}  // namespace

Status Ledger::PublishedTree(uint64_t* size, Hash* root) const {
  std::string text;
  {
    MutexLock lock(&pub_mu_);
    text = published_;
  }
  ASSIGN_OR_RETURN(auto verifier, note::Verifier::FromVerifierKey(signer_->VerifierKey()));
  ASSIGN_OR_RETURN(auto opened, note::OpenNote(text, *verifier));
  ASSIGN_OR_RETURN(auto cp, checkpoint::Parse(opened.text));
  *size = cp.size;
  *root = cp.root;
  return OkStatus();
}

ScrubReport Ledger::scrub_report() const {
  MutexLock lock(&scrub_mu_);
  return scrub_;
}

Status Ledger::Scrub(uint64_t bytes_per_second, const std::atomic<bool>* stop, ScrubReport* report) {
  uint64_t size = 0;
  Hash root{};
  RETURN_IF_ERROR(PublishedTree(&size, &root));
  report->entries = 0;
  report->tiles = 0;
  const auto t0 = std::chrono::steady_clock::now();
  uint64_t bytes = 0;
  auto pace = [&]() -> Status {
    if (stop && stop->load()) return UnavailableError("scrub stopped");
    if (bytes_per_second == 0) return OkStatus();
    const auto due = t0 + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                              std::chrono::duration<double>(static_cast<double>(bytes) /
                                                            static_cast<double>(bytes_per_second)));
    // Sleep in slices, so that a stop is seen within a tenth of a second.
    while (std::chrono::steady_clock::now() < due) {
      if (stop && stop->load()) return UnavailableError("scrub stopped");
      std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(
          due - std::chrono::steady_clock::now(), std::chrono::milliseconds(100)));
    }
    return OkStatus();
  };
  auto damaged = [&](int64_t entry, const std::string& what) {
    log::Error("log scrub: %s", what.c_str());
    if (report->bad_entry < 0 || entry < report->bad_entry) {
      report->bad_entry = entry;
      report->damage = what;
    }
  };
  // A stored tile that differs from what is below it: which one the signed
  // root agrees with decides what is damaged.
  auto settle = [&](uint64_t level, uint64_t index, const std::vector<Hash>& stored,
                    const std::vector<Hash>& computed) -> Status {
    ASSIGN_OR_RETURN(Hash with_computed, merkle::RootHash(size, ReaderWithTile(tiles_, level, index, computed)));
    if (with_computed == root) {
      RETURN_IF_ERROR(tiles_.RewriteFullTile(level, index, computed));
      ++report->tiles_repaired;
      log::Warning("log scrub: %s was damaged; rewritten from the %s below it", TileName(level, index).c_str(),
                   level == 0 ? "entries" : "tiles");
      return OkStatus();
    }
    size_t k = 0;
    while (k < kTileWidth && stored[k] == computed[k]) ++k;
    const uint64_t first_leaf = (index * kTileWidth + k) << (level * kTileHeight);
    ASSIGN_OR_RETURN(Hash with_stored, merkle::RootHash(size, ReaderWithTile(tiles_, level, index, stored)));
    if (with_stored == root) {
      damaged(static_cast<int64_t>(first_leaf),
              level == 0 ? "entry " + std::to_string(first_leaf) +
                               " does not hash to its leaf in the signed tree (changed after it was signed)"
                         : "the tiles under " + TileName(level, index) + " slot " + std::to_string(k) +
                               " do not hash to the signed tree");
    } else {
      damaged(static_cast<int64_t>(first_leaf),
              TileName(level, index) + " and what lies below it both disagree with the signed root at size " +
                  std::to_string(size));
    }
    return OkStatus();
  };

  // Level 0: the entries, tile by tile.
  const uint64_t tiles0 = std::min(size / kTileWidth, tiles_.FullTiles(0));
  std::vector<Hash> computed;
  // Entries kept in the archive only are not fetched back: the archive's
  // copy is checked against its digest whenever it is read.
  for (uint64_t t = log_->LocalBegin() / kTileWidth; t < tiles0; ++t) {
    RETURN_IF_ERROR(pace());
    computed.clear();
    const uint64_t begin = t * kTileWidth, end = begin + kTileWidth;
    Status read = log_->ReadRange(begin, end, [&](uint64_t, std::string_view e) {
      bytes += e.size();
      computed.push_back(merkle::HashLeaf(e));
      return OkStatus();
    });
    report->entries = end;
    if (!read.ok()) {
      if (read.code() != StatusCode::kDataLoss) return read;
      damaged(static_cast<int64_t>(begin + computed.size()), read.message());
      continue;
    }
    ASSIGN_OR_RETURN(std::vector<Hash> stored, tiles_.StoredTile(0, t));
    ++report->tiles;
    if (stored != computed) RETURN_IF_ERROR(settle(0, t, stored, computed));
  }
  // Upper levels: each full tile against the roots of the 256 below it.
  for (uint64_t level = 1;; ++level) {
    const uint64_t n = std::min(size >> (kTileHeight * (level + 1)), tiles_.FullTiles(level));
    if (n == 0) break;
    for (uint64_t t = 0; t < n; ++t) {
      RETURN_IF_ERROR(pace());
      computed.clear();
      for (uint64_t k = 0; k < kTileWidth; ++k) {
        ASSIGN_OR_RETURN(std::vector<Hash> below, tiles_.StoredTile(level - 1, t * kTileWidth + k));
        bytes += below.size() * sizeof(Hash);
        computed.push_back(TileStore::TileRoot(below));
      }
      ASSIGN_OR_RETURN(std::vector<Hash> stored, tiles_.StoredTile(level, t));
      ++report->tiles;
      if (stored != computed) RETURN_IF_ERROR(settle(level, t, stored, computed));
    }
  }
  ++report->passes;
  return OkStatus();
}

void Ledger::StartScrub() {
  {
    MutexLock lock(&scrub_mu_);
    scrub_started_ = true;
  }
  scrub_cv_.NotifyAll();
}

void Ledger::ScrubLoop() {
  // A pass after each start, then one a day: a start reads no sealed
  // record, so this is where bit rot in old segments and tiles shows.
  constexpr auto kEvery = std::chrono::hours(24);
  if (options_.scrub_waits_for_start) {
    constexpr auto kAtMost = std::chrono::minutes(10);
    MutexLock lock(&scrub_mu_);
    const auto until = std::chrono::steady_clock::now() + kAtMost;
    while (!scrub_started_ && !scrub_stop_.load() && std::chrono::steady_clock::now() < until)
      scrub_cv_.WaitFor(&lock, std::chrono::seconds(60));
  }
  while (!scrub_stop_.load()) {
    ScrubReport r;
    {
      MutexLock lock(&scrub_mu_);
      r = scrub_;
    }
    Status s = Scrub(options_.scrub_bytes_per_second, &scrub_stop_, &r);
    {
      MutexLock lock(&scrub_mu_);
      scrub_ = r;
    }
    if (!s.ok() && !scrub_stop_.load()) log::Warning("log scrub: %s", s.message().c_str());
    MutexLock lock(&scrub_mu_);
    const auto until = std::chrono::steady_clock::now() + kEvery;
    while (!scrub_stop_.load() && std::chrono::steady_clock::now() < until)
      scrub_cv_.WaitFor(&lock, std::chrono::seconds(60));
  }
}

}  // namespace annals::ledger
