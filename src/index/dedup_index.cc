#include "index/dedup_index.h"
#include "common/log.h"
#include "common/thread_util.h"

#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/sst_file_writer.h>
#include <rocksdb/table.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "common/bytes.h"
#include "common/file_util.h"
#include "index/rocks_util.h"

namespace annals::index {

namespace {
constexpr char kWatermarkKey[] = "\x00watermark";
constexpr char kKeyPrefix = 'k';
// Bumped when the key layout changes; a mismatch means rebuild.
constexpr char kVersion[] = "5";  // 5: "K" values are the log index alone

rocksdb::Options DbOptions() {
  rocksdb::Options opts;
  opts.create_if_missing = true;
  opts.max_open_files = 256;
  opts.info_log = StoreLogger("dedup index");
  // The runs are ingested table files (SstFileWriter), which carry no
  // unique id: checking ids against the manifest only warned about each
  // at every open. Block checksums still cover them (the scrub's
  // VerifyChecksum).
  opts.verify_sst_unique_id_in_manifest = false;
  NoPreallocation(&opts);
  rocksdb::BlockBasedTableOptions table;
  // Most lookups are of keys not there: bloom filters answer them without
  // reading data blocks. Every run spans the whole (hashed) key space, so a
  // lookup consults a filter in each L0 file and in each deeper level; at
  // 10 bits a key about 1 lookup in 20 then read a data block, which cost
  // the webhook a sixth of its CPU. 20 bits (2.5 MB a million keys) make
  // that about 1 in 10,000.
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(20));
  opts.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  // Keys are hashes, so every run overlaps every other: leveled compaction
  // would merge each new batch of L0 runs with all of L1, rewriting the
  // whole index again and again (7% of the server's CPU at 100k events/s).
  // Universal compaction merges runs of similar size, writing each key
  // about log(runs) times.
  opts.compaction_style = rocksdb::kCompactionStyleUniversal;
  // Hashes and digests do not compress: skip the work.
  opts.compression = rocksdb::kNoCompression;
  return opts;
}

}  // namespace

RunTable::RunTable(size_t expected_keys) {
  size_t n = 16;
  while (n < expected_keys * 2) n <<= 1;  // Put grows past half full
  slots_.assign(n, 0);
  arena_.reserve(expected_keys * 48);  // the index's records: 4 + 34 + 8 bytes
}

std::string_view RunTable::KeyAt(uint32_t offset) const {
  const unsigned char* p = reinterpret_cast<const unsigned char*>(arena_.data() + offset);
  return std::string_view(arena_.data() + offset + 4, p[0] | (p[1] << 8));
}

std::string_view RunTable::ValueAt(uint32_t offset) const {
  const unsigned char* p = reinterpret_cast<const unsigned char*>(arena_.data() + offset);
  const size_t klen = p[0] | (p[1] << 8);
  return std::string_view(arena_.data() + offset + 4 + klen, p[2] | (p[3] << 8));
}

namespace {
uint32_t Offset(uint64_t slot) { return static_cast<uint32_t>(slot) - 1; }
// How many items ahead a loop over scattered memory fetches the one it
// will need: slots in a batch's Put/Find (RunTable::PrefetchSlot), arena
// records in key order (Sorted, WriteRun).
constexpr size_t kPrefetchAhead = 8;
}  // namespace

uint64_t RunTable::HashOf(std::string_view key) { return std::hash<std::string_view>()(key); }

size_t RunTable::Slot(std::string_view key, uint64_t hash) const {
  const size_t mask = slots_.size() - 1;
  const uint64_t tag = hash >> 32;
  size_t i = hash & mask;
  while (slots_[i] != 0 && ((slots_[i] >> 32) != tag || KeyAt(Offset(slots_[i])) != key))
    i = (i + 1) & mask;
  return i;
}

void RunTable::Put(std::string_view key, std::string_view value, uint64_t hash) {
  if ((size_ + 1) * 2 > slots_.size()) Grow();
  const size_t i = Slot(key, hash);
  if (slots_[i] == 0) ++size_;
  // A replaced value stays in the arena, unreferenced; replacing is rare.
  const uint32_t offset = static_cast<uint32_t>(arena_.size());
  const size_t klen = std::min<size_t>(key.size(), 0xffff);
  const size_t vlen = std::min<size_t>(value.size(), 0xffff);
  const char header[4] = {static_cast<char>(klen & 0xff), static_cast<char>(klen >> 8),
                          static_cast<char>(vlen & 0xff), static_cast<char>(vlen >> 8)};
  arena_.append(header, 4);
  arena_.append(key.data(), klen);
  arena_.append(value.data(), vlen);
  slots_[i] = (hash >> 32 << 32) | (uint64_t{offset} + 1);
}

std::optional<std::string_view> RunTable::Find(std::string_view key, uint64_t hash) const {
  const size_t i = Slot(key, hash);
  if (slots_[i] == 0) return std::nullopt;
  return ValueAt(Offset(slots_[i]));
}

void RunTable::Grow() {
  std::vector<uint64_t> old(slots_.size() * 2, 0);
  old.swap(slots_);
  const size_t mask = slots_.size() - 1;
  for (uint64_t s : old) {
    if (s == 0) continue;
    size_t i = HashOf(KeyAt(Offset(s))) & mask;
    while (slots_[i] != 0) i = (i + 1) & mask;
    slots_[i] = s;
  }
}

std::vector<std::pair<std::string_view, std::string_view>> RunTable::Sorted() const {
  // Sorted by each key's first eight bytes as a big-endian number (the
  // same order as the bytes), held inline, and only ties compare the keys
  // in the arena: sorting pairs of views chased a pointer per comparison.
  struct Item {
    uint64_t prefix;
    uint32_t offset;
  };
  std::vector<Item> items;
  items.reserve(size_);
  for (uint64_t s : slots_) {
    if (s == 0) continue;
    const std::string_view k = KeyAt(Offset(s));
    char head[8] = {};  // short keys padded with zeros sort first, as bytewise
    std::memcpy(head, k.data(), std::min<size_t>(8, k.size()));
    items.push_back({GetBigEndian64(head), Offset(s)});
  }
  std::sort(items.begin(), items.end(), [this](const Item& a, const Item& b) {
    if (a.prefix != b.prefix) return a.prefix < b.prefix;
    return KeyAt(a.offset) < KeyAt(b.offset);
  });
  std::vector<std::pair<std::string_view, std::string_view>> out;
  out.reserve(items.size());
  // In key order the records are scattered over the arena (megabytes):
  // each is fetched a few records ahead of its use.
  for (size_t i = 0; i < items.size(); ++i) {
    if (i + kPrefetchAhead < items.size()) __builtin_prefetch(arena_.data() + items[i + kPrefetchAhead].offset);
    out.emplace_back(KeyAt(items[i].offset), ValueAt(items[i].offset));
  }
  return out;
}

StatusOr<std::unique_ptr<DedupIndex>> DedupIndex::Open(const std::string& dir,
                                                       DedupIndexOptions options) {
  std::unique_ptr<DedupIndex> idx(new DedupIndex());
  idx->dir_ = dir;
  idx->options_ = options;
  idx->open_ = Run(options.run_keys);
  // Another layout is wiped: the index is derived, and the Ingestor
  // catches it up from the log.
  std::string wiped;  // quietly, as before: the catch-up says what it rebuilds
  RETURN_IF_ERROR(OpenVersioned(dir, DbOptions(), kVersion, "dedup index", &idx->db_, &wiped));
  std::string v;
  auto s = idx->db_->Get(rocksdb::ReadOptions(), rocksdb::Slice(kWatermarkKey, sizeof(kWatermarkKey) - 1), &v);
  if (s.ok() && v.size() == 8) idx->watermark_.store(GetBigEndian64(v.data()));
  idx->sealed_watermark_ = idx->watermark_.load();
  // Leftovers of a run whose ingestion a crash interrupted.
  std::error_code ec;
  for (const auto& f : std::filesystem::directory_iterator(dir, ec))
    if (f.path().filename().string().starts_with("run-")) std::filesystem::remove(f.path(), ec);
  idx->writer_ = std::thread([p = idx.get()] {
    SetThreadName("annals-dedup");
    p->WriterLoop();
  });
  return idx;
}

DedupIndex::~DedupIndex() {
  if (!db_) return;
  Status s = Flush();
  if (!s.ok()) log::Warning("dedup index flush: %s", s.message().c_str());
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (writer_.joinable()) writer_.join();
}

StatusOr<std::optional<std::string>> DedupIndex::Lookup(std::string_view key) const {
  ASSIGN_OR_RETURN(auto values, LookupMany({key}));
  return std::move(values[0]);
}

// Keys in their stored form (kKeyPrefix + key), end to end in one buffer,
// with their RunTable hashes.
struct DedupIndex::Prefixed {
  // key_of(keys[i]) is the i-th key.
  template <class Keys, class KeyOf>
  Prefixed(const Keys& keys, KeyOf key_of) {
    size_t bytes = 0;
    for (const auto& k : keys) bytes += 1 + std::string_view(key_of(k)).size();
    text.reserve(bytes);
    ends.reserve(keys.size());
    hashes.reserve(keys.size());
    for (const auto& k : keys) {
      const size_t begin = text.size();
      text.push_back(kKeyPrefix);
      text.append(key_of(k));
      ends.push_back(text.size());
      hashes.push_back(RunTable::HashOf(std::string_view(text).substr(begin)));
    }
  }
  std::string_view key(size_t i) const {
    const size_t begin = i == 0 ? 0 : ends[i - 1];
    return std::string_view(text).substr(begin, ends[i] - begin);
  }
  std::string text;
  std::vector<size_t> ends;
  std::vector<uint64_t> hashes;
};

StatusOr<std::vector<std::optional<std::string>>> DedupIndex::LookupMany(
    const std::vector<std::string_view>& keys) const {
  std::vector<std::optional<std::string>> out(keys.size());
  // The stored forms of the keys, end to end in one buffer (a string each
  // was an allocation per ingested event); those not in a run are read
  // from RocksDB.
  const Prefixed prefixed(keys, [](std::string_view k) { return k; });
  std::vector<size_t> from_db;
  {
    // The runs first, under one hold of the lock: a run leaves sealed_ only
    // after RocksDB holds it, so what is not in a run here is in RocksDB
    // by the time it is read below, or was never recorded.
    std::shared_lock lock(mu_);
    for (size_t i = 0; i < keys.size(); ++i) {
      if (i + kPrefetchAhead < keys.size()) {
        open_.PrefetchSlot(prefixed.hashes[i + kPrefetchAhead]);
        if (sealed_) sealed_->PrefetchSlot(prefixed.hashes[i + kPrefetchAhead]);
      }
      const std::string_view k = prefixed.key(i);
      if (auto v = open_.Find(k, prefixed.hashes[i])) {
        out[i] = std::string(*v);
        continue;
      }
      if (sealed_) {
        if (auto v = sealed_->Find(k, prefixed.hashes[i])) {
          out[i] = std::string(*v);
          continue;
        }
      }
      from_db.push_back(i);
    }
  }
  if (from_db.empty()) return out;
  std::vector<rocksdb::Slice> slices;
  slices.reserve(from_db.size());
  for (size_t i : from_db) {
    const std::string_view k = prefixed.key(i);
    slices.emplace_back(k.data(), k.size());
  }
  std::vector<rocksdb::PinnableSlice> values(slices.size());
  std::vector<rocksdb::Status> statuses(slices.size());
  db_->MultiGet(rocksdb::ReadOptions(), db_->DefaultColumnFamily(), slices.size(), slices.data(),
                values.data(), statuses.data());
  for (size_t j = 0; j < slices.size(); ++j) {
    if (statuses[j].IsNotFound()) continue;
    RETURN_IF_ERROR(FromRocks(statuses[j], "dedup lookup"));
    out[from_db[j]] = values[j].ToString();
  }
  return out;
}

uint64_t DedupIndex::UnwrittenBytes() const {
  std::shared_lock lock(mu_);
  return open_.bytes() + (sealed_ ? sealed_->bytes() : 0);
}

BackgroundWork DedupIndex::BackgroundWorkDone() const {
  std::shared_lock lock(mu_);
  return db_ ? BackgroundWorkOf(db_.get()) : BackgroundWork{};
}

Status DedupIndex::Record(const std::vector<std::pair<std::string_view, std::string_view>>& entries,
                          uint64_t watermark, bool catching_up) {
  std::unique_lock lock(mu_);
  if (!writer_status_.ok()) return writer_status_;
  // A run is sized for its keys at once (a catch-up's grown from a live
  // run's size was rehashed four times), and sealed before a batch would
  // take it past them (which doubled its table once more).
  const size_t limit = catching_up ? options_.catch_up_run_keys : options_.run_keys;
  if (!open_.empty() && open_.size() + entries.size() > limit) RETURN_IF_ERROR(SealLocked(lock));
  if (open_.empty() && open_.capacity() < limit) open_ = Run(limit);
  const Prefixed prefixed(entries, [](const auto& e) { return e.first; });
  for (size_t i = 0; i < entries.size(); ++i) {
    if (i + kPrefetchAhead < entries.size()) open_.PrefetchSlot(prefixed.hashes[i + kPrefetchAhead]);
    open_.Put(prefixed.key(i), entries[i].second, prefixed.hashes[i]);
  }
  if (watermark > watermark_.load()) watermark_.store(watermark);
  if (open_.size() >= limit) return SealLocked(lock);
  return OkStatus();
}

Status DedupIndex::SealLocked(std::unique_lock<std::shared_mutex>& lock) {
  // One run in writing at a time: this bounds memory, and holds back
  // recording (and so acknowledgements) if RocksDB falls behind.
  cv_.wait(lock, [this] { return !sealed_ || !writer_status_.ok(); });
  if (!writer_status_.ok()) return writer_status_;
  sealed_ = std::make_unique<Run>(std::move(open_));
  open_ = Run(options_.run_keys);
  sealed_watermark_ = watermark_.load();
  cv_.notify_all();
  return OkStatus();
}

Status DedupIndex::Flush() {
  std::unique_lock lock(mu_);
  if (!open_.empty() || watermark_.load() > sealed_watermark_) RETURN_IF_ERROR(SealLocked(lock));
  cv_.wait(lock, [this] { return !sealed_ || !writer_status_.ok(); });
  return writer_status_;
}

void DedupIndex::WriterLoop() {
  std::unique_lock lock(mu_);
  while (true) {
    cv_.wait(lock, [this] { return stop_ || sealed_; });
    if (!sealed_) return;  // stopping, nothing left to write
    const Run* run = sealed_.get();
    const uint64_t watermark = sealed_watermark_;
    lock.unlock();
    // Lookups keep reading the sealed run (shared lock) while it is written.
    Status s = WriteRun(*run, watermark);
    lock.lock();
    if (!s.ok() && writer_status_.ok()) writer_status_ = s;
    sealed_.reset();
    cv_.notify_all();
  }
}

Status DedupIndex::WriteRun(const Run& run, uint64_t watermark) {
  const auto sorted = run.Sorted();
  const std::string path = dir_ + "/run-" + std::to_string(++file_seq_) + ".sst";
  // Keep the run's pages cached (the writer drops them by default): its
  // blocks are read back by the next compaction and the odd lookup.
  rocksdb::SstFileWriter writer(rocksdb::EnvOptions(), DbOptions(), nullptr,
                                /*invalidate_page_cache=*/false);
  RETURN_IF_ERROR(FromRocks(writer.Open(path), "dedup run " + path));
  // The watermark sorts first (0x00 < 'k') and is ingested atomically with
  // the keys it covers.
  std::string v;
  PutBigEndian64(&v, watermark);
  RETURN_IF_ERROR(FromRocks(writer.Put(rocksdb::Slice(kWatermarkKey, sizeof(kWatermarkKey) - 1), v),
                            "dedup run"));
  // The writer compares each key with the one before: fetched ahead, as
  // the records lie scattered over the run's arena (this comparison's
  // cache misses were 3% of a 10M catch-up's CPU).
  for (size_t i = 0; i < sorted.size(); ++i) {
    if (i + kPrefetchAhead < sorted.size()) __builtin_prefetch(sorted[i + kPrefetchAhead].first.data());
    const auto& [k, val] = sorted[i];
    RETURN_IF_ERROR(FromRocks(writer.Put(rocksdb::Slice(k.data(), k.size()), rocksdb::Slice(val.data(), val.size())),
                              "dedup run"));
  }
  RETURN_IF_ERROR(FromRocks(writer.Finish(), "dedup run " + path));
  rocksdb::IngestExternalFileOptions ingest;
  ingest.move_files = true;
  return FromRocks(db_->IngestExternalFile({path}, ingest), "ingest dedup run " + path);
}

Status DedupIndex::ForEach(const std::function<void(std::string_view key, std::string_view value)>& fn) {
  RETURN_IF_ERROR(Flush());
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  for (it->SeekToFirst(); it->Valid(); it->Next())
    fn(std::string_view(it->key().data(), it->key().size()), std::string_view(it->value().data(), it->value().size()));
  if (!it->status().ok()) return DataLossError("dedup index: " + it->status().ToString());
  return OkStatus();
}

}  // namespace annals::index
