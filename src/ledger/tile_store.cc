#include "ledger/tile_store.h"

#include <cstring>

namespace annals::ledger {

using merkle::kTileHeight;
using merkle::kTileWidth;

Hash TileStore::TileRoot(const std::vector<Hash>& hashes) {
  std::vector<Hash> level = hashes;
  while (level.size() > 1) {
    std::vector<Hash> up;
    up.reserve(level.size() / 2);
    for (size_t i = 0; i + 1 < level.size(); i += 2)
      up.push_back(merkle::HashChildren(level[i], level[i + 1]));
    level.swap(up);
  }
  return level[0];
}

uint64_t TileStore::FullTiles(uint64_t level) const {
  std::shared_lock lock(mu_);
  return level < full_.size() ? full_[level] : 0;
}

Status TileStore::RewriteFullTile(uint64_t level, uint64_t index, const std::vector<Hash>& hashes) {
  if (hashes.size() != kTileWidth) return InvalidArgumentError("a full tile has 256 hashes");
  std::lock_guard io(io_mu_);
  {
    std::shared_lock lock(mu_);
    if (level >= full_.size() || index >= full_[level])
      return FailedPreconditionError("tile " + std::to_string(level) + "/" + std::to_string(index) +
                                     " is not a stored full tile");
  }
  RETURN_IF_ERROR(WriteFullTile(level, index, hashes));
  ASSIGN_OR_RETURN(env::File * f, OpenLevel(level));
  return f->Sync();
}

TileStore::TileStore(std::string dir, env::Env* env) : dir_(std::move(dir)), env_(env) {
  for (auto& f : files_by_level_) f.store(nullptr);
}

TileStore::~TileStore() = default;

std::string TileStore::LevelFile(const std::string& log_dir, uint64_t level) {
  return log_dir + "/tiles/" + std::to_string(level) + ".tiles";
}

StatusOr<env::File*> TileStore::OpenLevel(uint64_t level) {
  if (level >= files_.size()) return OutOfRangeError("tile level " + std::to_string(level));
  std::lock_guard lock(open_mu_);
  if (files_[level] == nullptr) {
    ASSIGN_OR_RETURN(std::unique_ptr<env::File> f,
                     env_->OpenFile(LevelFile(dir_, level), env::OpenMode::kCreate));
    // The file's name must survive a crash too (once per level and process).
    RETURN_IF_ERROR(env_->SyncDir(dir_ + "/tiles"));
    files_[level] = std::move(f);
    files_by_level_[level].store(files_[level].get());
  }
  return files_[level].get();
}

StatusOr<std::vector<Hash>> TileStore::LoadTileHashes(uint64_t level, uint64_t index,
                                                      uint64_t width) const {
  const env::File* f = level < files_by_level_.size() ? files_by_level_[level].load() : nullptr;
  if (f == nullptr) return NotFoundError("no tile file for level " + std::to_string(level));
  std::vector<Hash> out(width);
  RETURN_IF_ERROR(f->Read(index * kTileBytes, width * 32, reinterpret_cast<char*>(out.data())));
  return out;
}

Status TileStore::WriteFullTile(uint64_t level, uint64_t index,
                                const std::vector<Hash>& hashes) {
  ASSIGN_OR_RETURN(env::File * f, OpenLevel(level));
  // Tiles are derived from the segments and rebuilt on start if damaged;
  // Sync() makes them durable before a checkpoint covers them
  // (docs/format/tiles.md).
  const char* p = reinterpret_cast<const char*>(hashes.data());
  return f->Write(index * kTileBytes, std::string_view(p, hashes.size() * 32));
}

Status TileStore::Sync() {
  std::lock_guard io(io_mu_);
  RETURN_IF_ERROR(WritePending());
  for (auto& f : files_by_level_) {
    env::File* file = f.load();
    if (file == nullptr) continue;
    // A failed fdatasync is never retried (the kernel may have dropped the
    // pages): not ResourceExhausted even when it was ENOSPC.
    if (Status s = file->Sync(); !s.ok()) return InternalError(s.message());
  }
  return OkStatus();
}

StatusOr<uint64_t> TileStore::Load(uint64_t size) {
  std::lock_guard io(io_mu_);
  std::unique_lock lock(mu_);
  full_.clear();
  partial_.clear();
  pending_.clear();
  // Earlier versions kept one file per tile under tile/; they are derived
  // data, rebuilt below from the segments.
  // (Best effort, as before: a leftover old directory harms nothing.)
  (void)env_->RemoveTree(dir_ + "/tile");
  RETURN_IF_ERROR(env_->CreateDirs(dir_ + "/tiles"));
  // Count the full tiles present at each level: as many as the level's file
  // holds whole, up to what `size` leaves make.
  for (uint64_t level = 0;; ++level) {
    uint64_t want = size >> (kTileHeight * (level + 1));
    uint64_t have = 0;
    if (want > 0) {
      ASSIGN_OR_RETURN(env::File * f, OpenLevel(level));
      ASSIGN_OR_RETURN(uint64_t bytes, f->Size());
      have = std::min(want, bytes / kTileBytes);
    }
    full_.push_back(have);
    partial_.emplace_back();
    if (want == 0) break;
  }
  // A level's full tiles cannot outrun the level below's.
  for (size_t l = 1; l < full_.size(); ++l)
    full_[l] = std::min(full_[l], full_[l - 1] / kTileWidth);
  // Nor may it outrun what one partial tile above can hold (when an upper
  // full tile is missing, the leaves under it are integrated again).
  for (size_t l = full_.size() - 1; l >= 1; --l)
    full_[l - 1] = std::min(full_[l - 1], full_[l] * kTileWidth + kTileWidth - 1);
  // Rebuild each partial tile above level 0 from the roots of the level
  // below's full tiles that are not yet in a full tile here.
  for (size_t l = 1; l < full_.size(); ++l) {
    for (uint64_t k = full_[l] * kTileWidth; k < full_[l - 1]; ++k) {
      ASSIGN_OR_RETURN(auto hashes, LoadTileHashes(l - 1, k, kTileWidth));
      partial_[l].push_back(TileRoot(hashes));
    }
  }
  uint64_t covered = full_[0] * kTileWidth;
  lock.unlock();
  ASSIGN_OR_RETURN(range_, merkle::CompactRange::FromNodes(covered, Reader()));
  // Upper partial tiles may hold more than `covered` implies (never: they
  // are derived from level-0 full tiles only), so the state is consistent.
  return covered;
}

Status TileStore::Integrate(const std::vector<Hash>& leaf_hashes) {
  std::lock_guard io(io_mu_);
  {
    std::unique_lock lock(mu_);
    for (const Hash& leaf : leaf_hashes) {
      range_.Append(leaf, [&](uint64_t level, uint64_t index, const Hash& h) {
        if (level % kTileHeight != 0) return;
        uint64_t tl = level / kTileHeight;
        if (tl >= partial_.size()) {
          partial_.resize(tl + 1);
          full_.resize(tl + 1, 0);
        }
        partial_[tl].push_back(h);
        if (partial_[tl].size() == kTileWidth) {
          // Readers find this tile on disk only after it is written below;
          // until then they read it from `pending_`.
          pending_.push_back({tl, index / kTileWidth, std::move(partial_[tl])});
          partial_[tl].clear();
        }
      });
    }
  }
  return WritePending();
}

Status TileStore::WritePending() {
  // pending_ changes only under io_mu_ (held), so it is read here without mu_.
  size_t written = 0;
  Status s;
  for (; written < pending_.size(); ++written) {
    const PendingTile& t = pending_[written];
    s = WriteFullTile(t.level, t.index, t.hashes);
    if (!s.ok()) break;
  }
  if (written > 0) {
    std::unique_lock lock(mu_);
    for (size_t i = 0; i < written; ++i)
      full_[pending_[i].level] = std::max(full_[pending_[i].level], pending_[i].index + 1);
    pending_.erase(pending_.begin(), pending_.begin() + static_cast<ptrdiff_t>(written));
  }
  return s;
}

size_t TileStore::PendingTiles() const {
  std::shared_lock lock(mu_);
  return pending_.size();
}

uint64_t TileStore::size() const {
  std::shared_lock lock(mu_);
  return range_.size();
}

Hash TileStore::Root() const {
  std::shared_lock lock(mu_);
  return range_.Root();
}

void TileStore::Snapshot(uint64_t* size, Hash* root) const {
  std::shared_lock lock(mu_);
  *size = range_.size();
  *root = range_.Root();
}

StatusOr<std::string> TileStore::ReadTile(uint64_t level, uint64_t index,
                                          uint64_t width) const {
  if (width == 0 || width > kTileWidth) return InvalidArgumentError("bad tile width");
  std::vector<Hash> hashes;
  bool from_file = false;
  {
    std::shared_lock lock(mu_);
    if (level >= full_.size()) return NotFoundError("no such tile");
    for (const auto& p : pending_) {
      if (p.level == level && p.index == index) {
        hashes.assign(p.hashes.begin(), p.hashes.begin() + width);
        return std::string(reinterpret_cast<const char*>(hashes.data()), width * 32);
      }
    }
    // Full tiles not yet written (a full disk) lie between the stored ones
    // and the partial one.
    size_t unwritten = 0;
    for (const auto& p : pending_) unwritten += p.level == level;
    if (index < full_[level]) {
      from_file = true;
    } else if (index == full_[level] + unwritten && width <= partial_[level].size()) {
      return std::string(reinterpret_cast<const char*>(partial_[level].data()), width * 32);
    } else {
      return NotFoundError("tile beyond the tree");
    }
  }
  if (from_file) {
    ASSIGN_OR_RETURN(hashes, LoadTileHashes(level, index, width));
  }
  return std::string(reinterpret_cast<const char*>(hashes.data()), width * 32);
}

StatusOr<Hash> TileStore::ReadNode(uint64_t level, uint64_t index) const {
  const uint64_t tl = level / kTileHeight;
  const uint64_t sub = level % kTileHeight;
  const uint64_t first = index << sub;   // first node at level tl*8
  const uint64_t count = uint64_t{1} << sub;
  const uint64_t tile = first / kTileWidth;
  const uint64_t offset = first % kTileWidth;
  ASSIGN_OR_RETURN(std::string bytes, ReadTile(tl, tile, offset + count));
  std::vector<Hash> hashes(count);
  std::memcpy(hashes.data(), bytes.data() + offset * 32, count * 32);
  if (count == 1) return hashes[0];
  return TileRoot(hashes);
}

merkle::NodeReader TileStore::Reader() const {
  return [this](uint64_t level, uint64_t index) { return ReadNode(level, index); };
}

}  // namespace annals::ledger
