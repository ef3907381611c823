#include "state/cold_objects.h"

#include <mutex>
#include <shared_mutex>

#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>

#include "common/bytes.h"
#include "common/crc32c.h"
#include "common/file_util.h"
#include "index/rocks_util.h"

namespace annals::state {

using index::FromRocks;

namespace {

// Bumped when the layout (or the object encoding) changes.
constexpr std::string_view kVersion = "1";
constexpr char kBody = 'o';


std::string BodyKey(uint32_t id, uint64_t generation) {
  std::string k(1, kBody);
  PutBigEndian32(&k, id);
  PutBigEndian64(&k, generation);
  return k;
}

rocksdb::Options DbOptions(const std::shared_ptr<rocksdb::Cache>& cache) {
  rocksdb::Options opts = index::DerivedStoreOptions("cold objects", cache, 256, /*pin_l0=*/false);
  opts.write_buffer_size = size_t{16} << 20;
  opts.max_write_buffer_number = 2;
  opts.max_background_jobs = 1;
  return opts;
}

}  // namespace

StatusOr<std::unique_ptr<ColdObjects>> ColdObjects::Open(const std::string& dir, size_t block_cache_bytes,
                                                         std::string* wiped) {
  std::unique_ptr<ColdObjects> c(new ColdObjects());
  c->dir_ = dir;
  c->cache_ = rocksdb::NewLRUCache(std::max<size_t>(block_cache_bytes, size_t{4} << 20));
  c->batch_ = std::make_unique<rocksdb::WriteBatch>();
  RETURN_IF_ERROR(MakeDirs(dir));
  std::string why;
  Status s = c->OpenDb(&why);
  if (s.code() == StatusCode::kDataLoss) {
    why = "damaged (" + s.message() + ")";
    c->db_.reset();
    RETURN_IF_ERROR(FromRocks(rocksdb::DestroyDB(dir, DbOptions(c->cache_)), "wipe cold objects " + dir));
    std::string again;
    s = c->OpenDb(&again);
  }
  RETURN_IF_ERROR(s);
  if (wiped) *wiped = why;
  return c;
}

ColdObjects::~ColdObjects() {
  if (db_) (void)db_->Flush(rocksdb::FlushOptions());
}

Status ColdObjects::OpenDb(std::string* wiped) {
  return index::OpenVersioned(dir_, DbOptions(cache_), kVersion, "cold objects", &db_, wiped);
}

void ColdObjects::Put(uint32_t id, uint64_t generation, std::string_view body) {
  std::string v(body);
  const uint32_t crc = crc32c::Mask(crc32c::Value(body.data(), body.size()));
  PutBigEndian32(&v, crc);
  (void)batch_->Put(BodyKey(id, generation), v);
}

void ColdObjects::Delete(uint32_t id, uint64_t generation) { (void)batch_->Delete(BodyKey(id, generation)); }

Status ColdObjects::Commit() {
  RETURN_IF_ERROR(ReopenIfStuck());
  std::shared_lock lock(mu_);
  if (!db_) return UnavailableError("cold objects " + dir_ + ": not open again yet after a failed write");
  if (batch_->Count() == 0) return OkStatus();
  rocksdb::Status s = db_->Write(rocksdb::WriteOptions(), batch_.get());
  if (!s.ok() && !s.IsCorruption()) stuck_ = true;
  RETURN_IF_ERROR(FromRocks(s, "write cold objects"));
  batch_->Clear();
  return OkStatus();
}

// A write or sync that failed (a full disk) leaves RocksDB refusing every
// later one until it recovers by itself, which on a small volume it never
// did (Resume() answers "busy" meanwhile): the database is closed and
// opened again instead, which replays what its WAL holds. The pending batch
// is kept and written after. Fails (and is tried again at the next commit)
// while there is still no room to open.
Status ColdObjects::ReopenIfStuck() {
  if (!stuck_.load()) return OkStatus();
  std::unique_lock lock(mu_);
  if (!stuck_.load()) return OkStatus();
  db_.reset();
  std::string wiped;
  RETURN_IF_ERROR(OpenDb(&wiped));
  stuck_ = false;
  return OkStatus();
}

uint64_t ColdObjects::UnflushedBytes() const {
  std::shared_lock lock(mu_);
  return db_ ? index::MemtableBytes(db_.get()) : 0;
}

index::BackgroundWork ColdObjects::BackgroundWorkDone() const {
  std::shared_lock lock(mu_);
  return db_ ? index::BackgroundWorkOf(db_.get()) : index::BackgroundWork{};
}

Status ColdObjects::Sync() {
  RETURN_IF_ERROR(Commit());
  std::shared_lock lock(mu_);
  if (!db_) return UnavailableError("cold objects " + dir_ + ": not open again yet after a failed write");
  rocksdb::Status s = db_->FlushWAL(/*sync=*/true);
  if (!s.ok() && !s.IsCorruption()) stuck_ = true;
  return FromRocks(s, "sync cold objects");
}

StatusOr<std::string> ColdObjects::Get(uint32_t id, uint64_t generation) const {
  std::shared_lock lock(mu_);
  if (!db_) return UnavailableError("cold objects " + dir_ + ": not open again yet after a failed write");
  std::string v;
  rocksdb::ReadOptions ro;
  ro.verify_checksums = true;
  const std::string key = BodyKey(id, generation);
  rocksdb::Status s = db_->Get(ro, key, &v);
  if (s.IsNotFound())
    return NotFoundError("cold object " + std::to_string(id) + "@" + std::to_string(generation) + " is missing");
  RETURN_IF_ERROR(FromRocks(s, "read cold object " + std::to_string(id)));
  if (v.size() < 4 || crc32c::Unmask(GetBigEndian32(v.data() + v.size() - 4)) !=
                          crc32c::Value(v.data(), v.size() - 4))
    return DataLossError("cold object " + std::to_string(id) + "@" + std::to_string(generation) +
                         ": checksum mismatch");
  v.resize(v.size() - 4);
  return v;
}

Status ColdObjects::ForEach(
    const std::function<Status(uint32_t id, uint64_t generation, std::string_view body)>& fn) const {
  std::shared_lock lock(mu_);
  if (!db_) return UnavailableError("cold objects " + dir_ + ": not open again yet after a failed write");
  return ForEachLocked(fn);
}

Status ColdObjects::ForEachLocked(
    const std::function<Status(uint32_t id, uint64_t generation, std::string_view body)>& fn) const {
  rocksdb::ReadOptions ro;
  ro.verify_checksums = true;
  ro.fill_cache = false;  // a pass over everything would evict what questions use
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro));
  for (it->Seek(std::string(1, kBody)); it->Valid() && it->key()[0] == kBody; it->Next()) {
    const rocksdb::Slice k = it->key(), v = it->value();
    if (k.size() != 13 || v.size() < 4 ||
        crc32c::Unmask(GetBigEndian32(v.data() + v.size() - 4)) != crc32c::Value(v.data(), v.size() - 4))
      return DataLossError("cold objects: damaged record");
    RETURN_IF_ERROR(fn(GetBigEndian32(k.data() + 1), GetBigEndian64(k.data() + 5),
                       std::string_view(v.data(), v.size() - 4)));
  }
  return FromRocks(it->status(), "scan cold objects");
}

Status ColdObjects::Verify(const std::atomic<bool>* stop) const {
  std::shared_lock lock(mu_);
  if (!db_) return UnavailableError("cold objects " + dir_ + ": not open again yet after a failed write");
  // Every block of every table file (the index and filter blocks too,
  // which a scan does not read), then every body's own CRC.
  RETURN_IF_ERROR(FromRocks(db_->VerifyChecksum(), "cold objects"));
  uint64_t n = 0;
  return ForEachLocked([&](uint32_t, uint64_t, std::string_view) -> Status {
    if ((++n & 1023) == 0 && stop->load()) return UnavailableError("cold objects check stopped");
    return OkStatus();
  });
}

Status ColdObjects::Wipe() {
  // The files go, not only their keys: a damaged table file would
  // otherwise stay (under range tombstones) until a compaction.
  std::unique_lock lock(mu_);
  batch_->Clear();
  db_.reset();
  RETURN_IF_ERROR(FromRocks(rocksdb::DestroyDB(dir_, DbOptions(cache_)), "wipe cold objects " + dir_));
  std::string why;
  return OpenDb(&why);
}

}  // namespace annals::state
