#include "index/rocks_util.h"

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <map>

#include <rocksdb/env.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/table.h>

#include "common/file_util.h"
#include "common/log.h"

namespace annals::index {

namespace {
constexpr std::string_view kVersionKey("\x00version", 8);

class LogLogger : public rocksdb::Logger {
 public:
  explicit LogLogger(std::string what) : rocksdb::Logger(rocksdb::InfoLogLevel::WARN_LEVEL), what_(std::move(what)) {}
  using rocksdb::Logger::Logv;
  void Logv(const char* format, va_list ap) override { Logv(rocksdb::InfoLogLevel::WARN_LEVEL, format, ap); }
  void Logv(const rocksdb::InfoLogLevel level, const char* format, va_list ap) override {
    if (level < GetInfoLogLevel() || level == rocksdb::InfoLogLevel::HEADER_LEVEL) return;
    char buf[1024];
    std::vsnprintf(buf, sizeof buf, format, ap);
    if (level >= rocksdb::InfoLogLevel::ERROR_LEVEL) {
      log::Error("rocksdb (%s): %s", what_.c_str(), buf);
    } else {
      log::Warning("rocksdb (%s): %s", what_.c_str(), buf);
    }
  }

 private:
  const std::string what_;
};
}  // namespace

std::shared_ptr<rocksdb::Logger> StoreLogger(const std::string& what) { return std::make_shared<LogLogger>(what); }

void NoPreallocation(rocksdb::Options* opts) {
  opts->allow_fallocate = false;
  opts->manifest_preallocation_size = 64 << 10;
  // What a WAL holds at open stays in the memtable: an open writes no
  // table file, so it needs almost no room (a start on a full disk).
  opts->avoid_flush_during_recovery = true;
}

rocksdb::Options DerivedStoreOptions(const std::string& what, const std::shared_ptr<rocksdb::Cache>& cache,
                                     int max_open_files, bool pin_l0) {
  rocksdb::Options opts;
  opts.info_log = StoreLogger(what);
  NoPreallocation(&opts);
  opts.create_if_missing = true;
  opts.max_open_files = max_open_files;
  opts.wal_recovery_mode = rocksdb::WALRecoveryMode::kPointInTimeRecovery;
  opts.paranoid_checks = true;
  // RocksDB 7.8 warns at every open about tables it wrote without a
  // unique id (seen on the cold objects' first table): noise on an
  // operator's terminal. The tables' block checksums are what the scrub
  // checks (VerifyChecksum), and a damaged store is rebuilt from the log.
  opts.verify_sst_unique_id_in_manifest = false;
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = cache;
  table.block_size = 16 * 1024;
  table.cache_index_and_filter_blocks = true;
  table.pin_l0_filter_and_index_blocks_in_cache = pin_l0;
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  // Index and filter in 4 KiB partitions under a small top level: a table
  // of ten million keys has a ~12 MB filter, larger than one shard of the
  // block cache, so a whole filter was read from the file for every point
  // read (1.5 ms each on a 10M-event index; a search reading an hour
  // count per hour of a month took 1.1 s). Now a point read loads one
  // partition, and the partitions stay cached.
  table.index_type = rocksdb::BlockBasedTableOptions::kTwoLevelIndexSearch;
  table.partition_filters = true;
  table.metadata_block_size = 4096;
  table.cache_index_and_filter_blocks_with_high_priority = true;
  table.pin_top_level_index_and_filter = true;
  opts.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  opts.compression = rocksdb::kLZ4Compression;
  opts.bottommost_compression = rocksdb::kZSTD;
  return opts;
}

uint64_t MemtableBytes(rocksdb::DB* db) {
  uint64_t bytes = 0;
  return db->GetAggregatedIntProperty(rocksdb::DB::Properties::kCurSizeAllMemTables, &bytes) ? bytes : 0;
}

BackgroundWork BackgroundWorkOf(rocksdb::DB* db, const std::vector<rocksdb::ColumnFamilyHandle*>& families) {
  BackgroundWork w;
  std::vector<rocksdb::ColumnFamilyHandle*> all = {db->DefaultColumnFamily()};
  all.insert(all.end(), families.begin(), families.end());
  auto number = [](const std::map<std::string, std::string>& m, const char* key) {
    auto it = m.find(key);
    return it == m.end() ? 0.0 : std::strtod(it->second.c_str(), nullptr);
  };
  for (rocksdb::ColumnFamilyHandle* cf : all) {
    std::map<std::string, std::string> m;
    if (!db->GetMapProperty(cf, rocksdb::DB::Properties::kCFStats, &m)) continue;
    w.cpu_nanos += static_cast<uint64_t>(number(m, "compaction.Sum.CompMergeCPU") * 1e9);
    w.bytes_read += static_cast<uint64_t>(number(m, "compaction.Sum.ReadGB") * (1ull << 30));
    w.bytes_written += static_cast<uint64_t>(number(m, "compaction.Sum.WriteGB") * (1ull << 30));
  }
  return w;
}

Status FromRocks(const rocksdb::Status& s, const std::string& what) {
  if (s.ok()) return OkStatus();
  if (s.IsCorruption()) return DataLossError(what + ": " + s.ToString());
  return InternalError(what + ": " + s.ToString());
}

namespace {
Status OpenFamilies(const std::string& dir, const rocksdb::Options& opts, const std::string& what,
                    const std::vector<rocksdb::ColumnFamilyDescriptor>& families, std::unique_ptr<rocksdb::DB>* db,
                    std::vector<FamilyHandle>* handles) {
  rocksdb::DB* raw = nullptr;
  rocksdb::DBOptions dbo(opts);
  dbo.create_missing_column_families = true;
  std::vector<rocksdb::ColumnFamilyDescriptor> all{{rocksdb::kDefaultColumnFamilyName, opts}};
  all.insert(all.end(), families.begin(), families.end());
  std::vector<rocksdb::ColumnFamilyHandle*> raw_handles;
  RETURN_IF_ERROR(FromRocks(rocksdb::DB::Open(dbo, dir, all, &raw_handles, &raw), "open " + what + " " + dir));
  db->reset(raw);
  delete raw_handles[0];  // the default family's: DB::DefaultColumnFamily() serves
  if (handles) handles->clear();
  for (size_t i = 1; i < raw_handles.size(); ++i) {
    if (handles) {
      handles->emplace_back(raw_handles[i]);
    } else {
      delete raw_handles[i];  // the caller keeps no handles (the family stays open in the DB)
    }
  }
  return OkStatus();
}
}  // namespace

Status OpenVersioned(const std::string& dir, const rocksdb::Options& opts, std::string_view version,
                     const std::string& what, std::unique_ptr<rocksdb::DB>* db, std::string* wiped,
                     const std::vector<rocksdb::ColumnFamilyDescriptor>& families, std::vector<FamilyHandle>* handles) {
  wiped->clear();
  // The directory first: RocksDB lists it before creating it, and a store
  // just wiped (DestroyDB removes the directory) would otherwise log a
  // "NotFound" error on every first start.
  RETURN_IF_ERROR(MakeDirs(dir));
  RETURN_IF_ERROR(OpenFamilies(dir, opts, what, families, db, handles));
  std::string v;
  rocksdb::Status s = (*db)->Get(rocksdb::ReadOptions(), kVersionKey, &v);
  if (s.ok() && v != version) {
    *wiped = "layout version " + v + ", this build writes " + std::string(version);
    if (handles) handles->clear();
    db->reset();
    RETURN_IF_ERROR(FromRocks(rocksdb::DestroyDB(dir, opts), "wipe " + what + " " + dir));
    RETURN_IF_ERROR(MakeDirs(dir));
    RETURN_IF_ERROR(OpenFamilies(dir, opts, what, families, db, handles));
    s = rocksdb::Status::NotFound();
  }
  if (!s.IsNotFound()) return FromRocks(s, what + " version");
  rocksdb::WriteOptions wo;
  wo.sync = true;
  return FromRocks((*db)->Put(wo, kVersionKey, rocksdb::Slice(version.data(), version.size())), what + " version");
}

}  // namespace annals::index
