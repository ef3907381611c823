// ColdObjects: the object histories the projection no longer keeps in
// memory (docs/state.md "Hot and cold objects"), in a RocksDB database of
// their own (DATA/index/objects). An object long gone is encoded whole
// (the snapshot's object form) under (id, generation), where the
// generation is the ledger index of the entry whose application froze it:
// a body, once written, never changes. A late event for a cold object
// thaws it back into memory; its old body is deleted only once a snapshot
// that no longer names it is durable, so a snapshot and this database
// agree after a crash at any instant (docs/format/cold-objects.md).
//
// Derived data: wiped whenever the projection is rebuilt from the log.
// Thread-safe: reads and Verify from any thread; Put, Delete, Commit and
// Wipe from one writer.
#ifndef ANNALS_STATE_COLD_OBJECTS_H_
#define ANNALS_STATE_COLD_OBJECTS_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "index/background_work.h"
#include "state/cold_store.h"

namespace rocksdb {
class Cache;
class DB;
class WriteBatch;
}  // namespace rocksdb

namespace annals::state {

class ColdObjects : public ColdStore {
 public:
  // Opens or creates the database in dir; block_cache_bytes bounds what its
  // reads keep in memory. A database of another layout version is wiped
  // (*wiped says so).
  static StatusOr<std::unique_ptr<ColdObjects>> Open(const std::string& dir, size_t block_cache_bytes,
                                                     std::string* wiped = nullptr);
  ~ColdObjects() override;

  // Adds a body to the pending batch (nothing is written until Commit).
  void Put(uint32_t id, uint64_t generation, std::string_view body) override;
  // Adds the deletion of a body to the pending batch.
  void Delete(uint32_t id, uint64_t generation) override;
  // Writes the pending batch (to the WAL, not synced). On failure the batch
  // stays pending and the next Commit tries it again.
  Status Commit() override;
  // Makes everything committed durable (fsync of the WAL).
  Status Sync() override;
  // The body of (id, generation). NotFound if there is none; DataLoss if
  // it is damaged (its checksum, or RocksDB's, does not match).
  StatusOr<std::string> Get(uint32_t id, uint64_t generation) const override;
  // Every body (id, generation) in key order; stops at the first error.
  Status ForEach(const std::function<Status(uint32_t id, uint64_t generation, std::string_view body)>& fn) const;
  // The bytes its memtables hold, to be written by their next flush (the
  // disk guard keeps room for them).
  uint64_t UnflushedBytes() const;
  // Its flushes' and compactions' work since it was opened, for /metrics.
  index::BackgroundWork BackgroundWorkDone() const;
  // Removes every body (the pending batch too).
  Status Wipe() override;
  Status Verify(const std::atomic<bool>* stop) const override;

 private:
  ColdObjects() = default;
  Status OpenDb(std::string* wiped);

  Status ForEachLocked(const std::function<Status(uint32_t, uint64_t, std::string_view)>& fn) const;

  std::string dir_;
  std::shared_ptr<rocksdb::Cache> cache_;
  // db_ and batch_: Wipe replaces the database (exclusive); all else
  // shares (one writer: Put, Delete, Commit come from one thread).
  mutable std::shared_mutex mu_;
  std::unique_ptr<rocksdb::DB> db_;
  std::unique_ptr<rocksdb::WriteBatch> batch_;
  // A write or sync failed: reopen before the next (ReopenIfStuck).
  std::atomic<bool> stuck_{false};
  Status ReopenIfStuck();
};

}  // namespace annals::state

#endif  // ANNALS_STATE_COLD_OBJECTS_H_
