#include "index/dedup_index.h"

#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>

#include "common/bytes.h"
#include "common/file_util.h"

namespace annals::index {

namespace {
constexpr char kWatermarkKey[] = "\x00watermark";
constexpr char kKeyPrefix = 'k';
// Bumped when the key layout changes; a mismatch means rebuild.
constexpr char kVersionKey[] = "\x00version";
constexpr char kVersion[] = "3";

Status FromRocks(const rocksdb::Status& s, const std::string& what) {
  if (s.ok()) return OkStatus();
  return InternalError(what + ": " + s.ToString());
}
}  // namespace

StatusOr<std::unique_ptr<DedupIndex>> DedupIndex::Open(const std::string& dir) {
  RETURN_IF_ERROR(MakeDirs(dir));
  rocksdb::Options opts;
  opts.create_if_missing = true;
  opts.max_open_files = 256;
  opts.write_buffer_size = 32 << 20;
  // Most lookups are of keys not there: a memtable bloom filter answers them
  // without searching the memtable's skiplist.
  opts.memtable_prefix_bloom_size_ratio = 0.1;
  opts.memtable_whole_key_filtering = true;
  rocksdb::BlockBasedTableOptions table;
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  opts.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  rocksdb::DB* raw = nullptr;
  RETURN_IF_ERROR(FromRocks(rocksdb::DB::Open(opts, dir, &raw), "open dedup index " + dir));
  std::unique_ptr<DedupIndex> idx(new DedupIndex());
  idx->db_.reset(raw);
  std::string v;
  auto s = idx->db_->Get(rocksdb::ReadOptions(), rocksdb::Slice(kVersionKey, sizeof(kVersionKey) - 1), &v);
  if (s.ok() && v != kVersion) {
    // Another layout: the index is derived, so start it afresh; the
    // Ingestor catches it up from the log.
    idx->db_.reset();
    RETURN_IF_ERROR(FromRocks(rocksdb::DestroyDB(dir, opts), "reset dedup index " + dir));
    RETURN_IF_ERROR(FromRocks(rocksdb::DB::Open(opts, dir, &raw), "open dedup index " + dir));
    idx->db_.reset(raw);
    s = rocksdb::Status::NotFound();
  }
  if (s.IsNotFound()) {
    RETURN_IF_ERROR(FromRocks(idx->db_->Put(rocksdb::WriteOptions(),
                                            rocksdb::Slice(kVersionKey, sizeof(kVersionKey) - 1), kVersion),
                              "init dedup index"));
  }
  s = idx->db_->Get(rocksdb::ReadOptions(), rocksdb::Slice(kWatermarkKey, sizeof(kWatermarkKey) - 1), &v);
  if (s.ok() && v.size() == 8) idx->watermark_.store(GetBigEndian64(v.data()));
  return idx;
}

DedupIndex::~DedupIndex() {
  if (db_) (void)Flush();
}

StatusOr<std::optional<std::string>> DedupIndex::Lookup(std::string_view key) const {
  std::string k(1, kKeyPrefix);
  k += key;
  std::string v;
  auto s = db_->Get(rocksdb::ReadOptions(), k, &v);
  if (s.IsNotFound()) return std::optional<std::string>();
  RETURN_IF_ERROR(FromRocks(s, "dedup lookup"));
  return std::optional<std::string>(std::move(v));
}

StatusOr<std::vector<std::optional<std::string>>> DedupIndex::LookupMany(
    const std::vector<std::string>& keys) const {
  std::vector<std::optional<std::string>> out(keys.size());
  if (keys.empty()) return out;
  std::vector<std::string> prefixed(keys.size());
  std::vector<rocksdb::Slice> slices(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    prefixed[i].reserve(keys[i].size() + 1);
    prefixed[i].push_back(kKeyPrefix);
    prefixed[i] += keys[i];
    slices[i] = prefixed[i];
  }
  std::vector<rocksdb::PinnableSlice> values(keys.size());
  std::vector<rocksdb::Status> statuses(keys.size());
  db_->MultiGet(rocksdb::ReadOptions(), db_->DefaultColumnFamily(), keys.size(), slices.data(),
                values.data(), statuses.data());
  for (size_t i = 0; i < keys.size(); ++i) {
    if (statuses[i].IsNotFound()) continue;
    RETURN_IF_ERROR(FromRocks(statuses[i], "dedup lookup"));
    out[i] = values[i].ToString();
  }
  return out;
}

Status DedupIndex::Record(const std::vector<std::pair<std::string, std::string>>& entries,
                          uint64_t watermark) {
  rocksdb::WriteBatch batch;
  std::string k, v;
  for (const auto& [key, value] : entries) {
    k.assign(1, kKeyPrefix);
    k += key;
    batch.Put(k, value);
  }
  if (watermark > watermark_) {
    v.clear();
    PutBigEndian64(&v, watermark);
    batch.Put(rocksdb::Slice(kWatermarkKey, sizeof(kWatermarkKey) - 1), v);
  }
  rocksdb::WriteOptions wo;
  wo.disableWAL = true;  // derived and rebuildable: see the class comment
  RETURN_IF_ERROR(FromRocks(db_->Write(wo, &batch), "dedup record"));
  if (watermark > watermark_.load()) watermark_.store(watermark);
  return OkStatus();
}

Status DedupIndex::Flush() {
  return FromRocks(db_->Flush(rocksdb::FlushOptions()), "dedup flush");
}

}  // namespace annals::index
