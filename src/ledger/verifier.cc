#include "ledger/verifier.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <future>
#include <vector>

#include "checkpoint/checkpoint.h"
#include "checkpoint/note.h"
#include "common/bytes.h"
#include "common/file_util.h"
#include "ledger/blob_store.h"
#include "ledger/checkpoint_log.h"
#include "ledger/entry.h"
#include "ledger/tile_store.h"
#include "log/compressed_segment.h"
#include "log/segment_format.h"
#include "log/segment_log.h"
#include "merkle/merkle.h"
#include "merkle/tile.h"

namespace annals::ledger {

namespace {

using merkle::kTileHeight;
using merkle::kTileWidth;

struct CheckpointRef {
  uint64_t record;
  checkpoint::Checkpoint cp;
};

class Mapped {
 public:
  ~Mapped() {
    if (data_) ::munmap(data_, size_);
  }
  Status Open(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ErrnoError("open " + path, errno);
    struct stat st;
    ::fstat(fd, &st);
    size_ = static_cast<size_t>(st.st_size);
    if (size_ > 0) {
      data_ = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
      if (data_ == MAP_FAILED) {
        data_ = nullptr;
        ::close(fd);
        return ErrnoError("mmap " + path, errno);
      }
      ::madvise(data_, size_, MADV_SEQUENTIAL);
    }
    ::close(fd);
    return OkStatus();
  }
  std::string_view view() const { return {static_cast<const char*>(data_), size_}; }

 private:
  void* data_ = nullptr;
  size_t size_ = 0;
};

class TreeChecker {
 public:
  TreeChecker(std::string log_dir, std::vector<CheckpointRef> cps, VerifyReport* report,
              uint64_t covered)
      : log_dir_(std::move(log_dir)), cps_(std::move(cps)), report_(report), covered_(covered) {
    // Size-0 checkpoints are checked in Finish(); Add() starts at size 1.
    while (next_cp_ < cps_.size() && cps_[next_cp_].cp.size == 0) ++next_cp_;
  }
  ~TreeChecker() {
    for (int fd : tile_fds_)
      if (fd >= 0) ::close(fd);
  }
  TreeChecker(const TreeChecker&) = delete;
  TreeChecker& operator=(const TreeChecker&) = delete;

  Status Add(const std::vector<Hash>& leaves) {
    for (const Hash& h : leaves) {
      Status s;
      range_.Append(h, [&](uint64_t level, uint64_t index, const Hash& node) {
        if (!s.ok() || level % kTileHeight) return;
        uint64_t tl = level / kTileHeight;
        if (tl >= tiles_.size()) tiles_.resize(tl + 1);
        tiles_[tl].push_back(node);
        if (tiles_[tl].size() == kTileWidth) {
          s = CheckTile(tl, index / kTileWidth, tiles_[tl]);
          tiles_[tl].clear();
        }
      });
      RETURN_IF_ERROR(s);
      while (next_cp_ < cps_.size() && cps_[next_cp_].cp.size == range_.size()) {
        RETURN_IF_ERROR(CheckRoot(cps_[next_cp_]));
        ++next_cp_;
      }
    }
    return OkStatus();
  }

  Status Finish() {
    // Checkpoints of size 0, and any beyond the log.
    for (const auto& c : cps_) {
      if (c.cp.size == 0 && c.cp.root != merkle::EmptyRoot())
        return DataLossError("checkpoint record " + std::to_string(c.record) + " (size 0): wrong empty root");
      if (c.cp.size > range_.size())
        return DataLossError("checkpoint record " + std::to_string(c.record) + " claims size " +
                             std::to_string(c.cp.size) + " but the log holds " +
                             std::to_string(range_.size()) + " entries: entries are missing");
    }
    return OkStatus();
  }

 private:
  Status CheckTile(uint64_t level, uint64_t index, const std::vector<Hash>& want) {
    std::string rel = merkle::FormatTilePath({false, level, index, kTileWidth});
    const std::string file = TileStore::LevelFile(log_dir_, level);
    const uint64_t offset = index * TileStore::kTileBytes;
    const uint64_t span = uint64_t{1} << (kTileHeight * level);  // leaves per tile hash
    const uint64_t first_entry = index * kTileWidth * span;
    rel += " (" + file + " at byte " + std::to_string(offset) + ")";
    std::string have(TileStore::kTileBytes, '\0');
    Status read = OkStatus();
    if (level >= tile_fds_.size()) tile_fds_.resize(level + 1, -1);
    if (tile_fds_[level] < 0) tile_fds_[level] = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (tile_fds_[level] < 0) {
      read = ErrnoError("open " + file, errno);
    } else {
      read = PreadAll(tile_fds_[level], have.data(), have.size(), offset, file);
    }
    if (!read.ok() && first_entry + kTileWidth * span > covered_) {
      // Beyond the last checkpoint: a running server may not have written
      // it yet (tiles follow their entries).
      return OkStatus();
    }
    if (!read.ok()) {
      report_->bad_index = static_cast<int64_t>(first_entry);
      return DataLossError(rel + " (entries from " + std::to_string(first_entry) + "): missing: " +
                           read.message());
    }
    for (uint64_t k = 0; k < kTileWidth; ++k) {
      if (std::memcmp(have.data() + k * 32, want[k].data(), 32) != 0) {
        uint64_t bad = first_entry + k * span;
        report_->bad_index = static_cast<int64_t>(bad);
        return DataLossError(rel + ": hash " + std::to_string(k) + " does not match entr" +
                             (span == 1 ? "y " + std::to_string(bad)
                                        : "ies " + std::to_string(bad) + ".." + std::to_string(bad + span - 1)));
      }
    }
    ++report_->tiles;
    return OkStatus();
  }

  Status CheckRoot(const CheckpointRef& c) {
    if (range_.Root() != c.cp.root)
      return DataLossError("checkpoint record " + std::to_string(c.record) + " (size " +
                           std::to_string(c.cp.size) +
                           "): root hash does not match the entries below it");
    return OkStatus();
  }

  std::string log_dir_;
  std::vector<CheckpointRef> cps_;
  size_t next_cp_ = 0;
  VerifyReport* report_;
  uint64_t covered_;
  merkle::CompactRange range_;
  std::vector<std::vector<Hash>> tiles_;
  std::vector<int> tile_fds_;  // per level, -1 until opened
};

void HashAll(const std::vector<std::string_view>& in, std::vector<Hash>* out) {
  out->resize(in.size());
  auto work = [&](size_t b, size_t e) {
    for (size_t i = b; i < e; ++i) (*out)[i] = merkle::HashLeaf(in[i]);
  };
  if (in.size() < 1024) return work(0, in.size());
  size_t mid = in.size() / 2;
  auto f = std::async(std::launch::async, work, mid, in.size());
  work(0, mid);
  f.get();
}

}  // namespace

Status VerifyDataDir(const std::string& data_dir, const std::string& verifier_key,
                     const std::function<void(uint64_t, uint64_t)>& progress,
                     VerifyReport* report) {
  const std::string log_dir = data_dir + "/log";
  const std::string seg_dir = data_dir + "/segments";
  ASSIGN_OR_RETURN(auto verifier, note::Verifier::FromVerifierKey(verifier_key));

  // 1. Every stored checkpoint: signature, body, sizes never shrinking.
  std::vector<CheckpointRef> cps;
  std::string cut;
  RETURN_IF_ERROR(CheckpointLog::Scan(
      log_dir,
      [&](uint64_t n, std::string_view text) -> Status {
        auto opened = note::OpenNote(text, *verifier);
        if (!opened.ok())
          return DataLossError("checkpoint record " + std::to_string(n) + ": " + opened.status().message());
        auto cp = checkpoint::Parse(opened->text);
        if (!cp.ok())
          return DataLossError("checkpoint record " + std::to_string(n) + ": " + cp.status().message());
        if (cp->origin != verifier->name())
          return DataLossError("checkpoint record " + std::to_string(n) + ": origin " + cp->origin);
        if (!cps.empty() && cp->size < cps.back().cp.size)
          return DataLossError("checkpoint record " + std::to_string(n) + ": size " +
                               std::to_string(cp->size) + " is smaller than the one before");
        cps.push_back({n, std::move(*cp)});
        return OkStatus();
      },
      &cut));
  if (!cut.empty()) return DataLossError(cut);
  report->checkpoints = cps.size();

  // 2. Every segment, in order.
  std::vector<std::string> names;
  if (DIR* d = ::opendir(seg_dir.c_str())) {
    while (dirent* e = ::readdir(d)) {
      std::string n = e->d_name;
      if (n.ends_with(log::kSegmentSuffix) || n.ends_with(log::kZsegSuffix)) names.push_back(n);
    }
    ::closedir(d);
  } else {
    return NotFoundError("no segments directory in " + data_dir);
  }
  std::sort(names.begin(), names.end());
  // A segment beside its compressed form (a compression cut short by a
  // crash after the rename): the server reads the compressed form.
  std::erase_if(names, [&](const std::string& n) {
    return n.ends_with(log::kSegmentSuffix) &&
           std::binary_search(names.begin(), names.end(),
                              n.substr(0, n.size() - std::strlen(log::kSegmentSuffix)) +
                                  log::kZsegSuffix);
  });
  uint64_t total = 0, done = 0;
  for (const auto& n : names) {
    struct stat st;
    if (::stat((seg_dir + "/" + n).c_str(), &st) == 0) total += static_cast<uint64_t>(st.st_size);
  }
  BlobStore blobs(data_dir + "/blobs");
  const uint64_t covered = cps.empty() ? 0 : cps.back().cp.size;
  TreeChecker tree(log_dir, cps, report, covered);
  uint64_t next = 0;
  // Segments kept in the archive only: their entries' leaf hashes from the
  // level-0 tiles (a damaged tile then fails a signed root like a damaged
  // entry would), and their local leftovers (a drop cut short) skipped.
  if (const std::string list_path = seg_dir + "/" + log::kArchivedListName; FileExists(list_path)) {
    ASSIGN_OR_RETURN(std::string text, ReadFileToString(list_path));
    ASSIGN_OR_RETURN(std::vector<log::ArchivedSegment> archived, log::ParseArchivedList(text));
    if (!archived.empty()) {
      if (archived.front().first_index != 0)
        return DataLossError(std::string(log::kArchivedListName) + ": does not start at entry 0");
      const uint64_t end = archived.back().first_index + archived.back().entries;
      const std::string level0 = TileStore::LevelFile(log_dir, 0);
      const int fd = ::open(level0.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) return DataLossError("entries below " + std::to_string(end) + " are in the archive only and " + level0 + " cannot be read");
      std::string tile(TileStore::kTileBytes, '\0');
      Status st;
      for (uint64_t t = 0; st.ok() && t < end / kTileWidth; ++t) {
        st = PreadAll(fd, tile.data(), tile.size(), t * TileStore::kTileBytes, level0);
        if (!st.ok()) {
          report->bad_index = static_cast<int64_t>(t * kTileWidth);
          st = DataLossError("tile 0/" + std::to_string(t) + " of archived-only entries: " + st.message());
          break;
        }
        std::vector<Hash> leaves(kTileWidth);
        for (uint64_t k = 0; k < kTileWidth; ++k) std::memcpy(leaves[k].data(), tile.data() + k * 32, 32);
        st = tree.Add(leaves);
      }
      ::close(fd);
      RETURN_IF_ERROR(st);
      next = end;
      report->archived_only = end;
      report->entries = end;
      std::erase_if(names, [&](const std::string& n) {
        return std::strtoull(n.substr(0, 20).c_str(), nullptr, 10) < end;
      });
    }
  }
  for (size_t ni = 0; ni < names.size(); ++ni) {
    std::string n = names[ni];
    Mapped m;
    if (Status o = m.Open(seg_dir + "/" + n); !o.ok()) {
      // A server running on the directory compressed the segment since it
      // was listed: read the compressed form.
      const std::string z = n.substr(0, n.size() - std::strlen(log::kSegmentSuffix)) + log::kZsegSuffix;
      if (!n.ends_with(log::kSegmentSuffix) || !m.Open(seg_dir + "/" + z).ok()) return o;
      n = z;
    }
    // A compressed segment is checked (every frame's CRC) and expanded to
    // the segment it stands for, which is then checked like any other.
    std::string expanded;
    std::string_view segment = m.view();
    if (n.ends_with(log::kZsegSuffix)) {
      uint64_t good_entries = 0;
      auto image = log::ExpandCompressedSegment(m.view(), &good_entries);
      if (!image.ok()) {
        report->bad_index = static_cast<int64_t>(next + good_entries);
        return DataLossError("segment " + n + ": " + image.status().message());
      }
      expanded = std::move(*image);
      segment = expanded;
    }
    // Batches are hashed on other threads while this one checks the CRCs
    // and envelopes of the next batch; the tree takes them in order.
    std::vector<std::string_view> batch, hashing;
    std::vector<Hash> hashes;
    std::future<void> pending;
    uint64_t seg_first = 0;
    bool tree_failed = false;
    // Adds the batch being hashed, if any, to the tree.
    auto drain = [&]() -> Status {
      if (!pending.valid()) return OkStatus();
      pending.get();
      hashing.clear();
      Status st = tree.Add(hashes);
      tree_failed = !st.ok();
      return st;
    };
    auto flush = [&]() -> Status {
      RETURN_IF_ERROR(drain());
      hashing.swap(batch);
      pending = std::async(std::launch::async, [&hashing, &hashes] { HashAll(hashing, &hashes); });
      return OkStatus();
    };
    Status s = log::ScanSegment(
        segment,
        [&](uint64_t index, std::string_view data) -> Status {
          if (index != next) {
            report->bad_index = static_cast<int64_t>(next);
            return DataLossError("segment " + n + " starts at entry " + std::to_string(index) +
                                 ", expected " + std::to_string(next));
          }
          auto dec = DecodeEntry(data);
          if (!dec.ok()) {
            report->bad_index = static_cast<int64_t>(index);
            return DataLossError("entry " + std::to_string(index) + ": " + dec.status().message());
          }
          if (dec->external) {
            auto blob = blobs.Get(dec->payload_digest);
            if (!blob.ok() || blob->size() != dec->payload_size) {
              report->bad_index = static_cast<int64_t>(index);
              return DataLossError("entry " + std::to_string(index) + ": payload " +
                                   (blob.ok() ? "size differs" : blob.status().message()));
            }
            ++report->blobs;
          }
          batch.push_back(data);
          ++next;
          if (batch.size() == 16384) RETURN_IF_ERROR(flush());
          return OkStatus();
        },
        &seg_first, nullptr);
    const bool last_segment = ni + 1 == names.size();
    // The batch hashed while the rest was scanned: if it is bad, it holds
    // the first bad index, whatever the scan found after it.
    if (Status d = drain(); !d.ok()) s = d;
    if (!s.ok() && !tree_failed && last_segment && report->bad_index < 0 && next >= covered) {
      // Past every signed checkpoint, at the end of the log: a record being
      // written right now (server running) or a torn write that recovery
      // will cut. Not covered by any signature, so not an integrity failure.
      report->unverified_tail = "stopped at entry " + std::to_string(next) + ", after the last checkpoint (size " +
                                std::to_string(covered) + "): " + s.message();
      s = OkStatus();
    }
    if (s.ok()) {
      s = flush();
      if (s.ok()) s = drain();
    }
    if (!s.ok()) {
      if (report->bad_index < 0 && !tree_failed) report->bad_index = static_cast<int64_t>(next);
      if (s.message().starts_with("entry") || s.message().starts_with("tile") ||
          s.message().starts_with("checkpoint") || s.message().starts_with("segment"))
        return s;
      return DataLossError("segment " + n + ": " + s.message());
    }
    done += m.view().size();
    if (progress) progress(done, total);
  }
  report->entries = next;
  report->bytes = total;
  report->unsigned_entries = next > covered ? next - covered : 0;
  if (auto losses = ReadFileToString(log_dir + "/" + kAcceptedLossesName); losses.ok()) {
    for (std::string_view rest = *losses; !rest.empty();) {
      size_t nl = rest.find('\n');
      std::string_view line = rest.substr(0, nl);
      if (!line.empty()) report->accepted_losses.emplace_back(line);
      rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
    }
  }
  RETURN_IF_ERROR(tree.Finish());
  if (cps.empty() && next > 0)
    return DataLossError("no signed checkpoint covers any of the " + std::to_string(next) +
                         " entries: " + log_dir + "/" + kCheckpointLogName +
                         " is missing or empty, so nothing shows that they are the entries the log signed");
  return OkStatus();
}

}  // namespace annals::ledger
