// DedupIndex: which dedup keys the log already holds, with a short value
// per key. It stores what it is given; the Ingestor's keys are "K" +
// SHA-256 of a dedup key and "C" + SHA-256 naming a conflicting item, each
// with the log index as value (docs/format/dedup-index.md).
// A derived index in RocksDB under <data>/index/dedup: it is rebuildable
// from the log, so it is written without a WAL; its watermark says how much
// of the log it covers, and Ingestor catches it up from there on start. An
// index of another layout version is destroyed on open and caught up again.
//
// Writes are bulk-loaded: recorded keys collect in an in-memory run; a full
// run is sorted and written as one SST file that RocksDB ingests together
// with the run's watermark, on a background thread. The keys are digests
// arriving in random order, and inserting them one by one into RocksDB's
// memtable (and flushing it) cost a third of the server's CPU at full
// ingest. Recorded keys are durable only once their run is ingested: a
// crash loses the runs not yet ingested, and the watermark with them.
// Lookups read the open run, the run being written, then RocksDB.
//
// Thread-safe. Owns the run writer thread; the destructor flushes the open
// run.
#ifndef ANNALS_INDEX_DEDUP_INDEX_H_
#define ANNALS_INDEX_DEDUP_INDEX_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "common/status.h"
#include "index/background_work.h"

namespace rocksdb {
class DB;
}

namespace annals::index {

struct DedupIndexOptions {
  // Keys per bulk-loaded run (one SST file each).
  size_t run_keys = 1 << 17;
  // The same for a catch-up from the log (Record's `catching_up`): every
  // run spans the whole hashed key space, so universal compaction merges
  // each key about log2(runs) times; eight times fewer runs take about
  // half the compactions of a 10M-entry catch-up, for ~100 MB more memory
  // while it lasts (an open and a sealed run of ~60 MB each).
  size_t catch_up_run_keys = 1 << 20;
};

// The keys of one run: an open-addressing hash table over one byte arena,
// so recording a key costs no allocation of its own (a node-based map made
// three per key). Not thread-safe; DedupIndex guards it.
class RunTable {
 public:
  explicit RunTable(size_t expected_keys = 0);
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  size_t capacity() const { return slots_.size() / 2; }  // keys it holds before growing
  size_t bytes() const { return arena_.size(); }  // of keys and values
  // Sets `key` to `value`; a later value replaces an earlier one. Keys and
  // values are at most 65,535 bytes (the index's are 34 and 8).
  void Put(std::string_view key, std::string_view value) { Put(key, value, HashOf(key)); }
  std::optional<std::string_view> Find(std::string_view key) const { return Find(key, HashOf(key)); }
  // The same with the key's HashOf computed once: a batch hashes its keys
  // first and has each one's slot fetched into the cache a few keys ahead
  // of its Put or Find (PrefetchSlot), as slots are read at random.
  static uint64_t HashOf(std::string_view key);
  void PrefetchSlot(uint64_t hash) const { __builtin_prefetch(&slots_[hash & (slots_.size() - 1)]); }
  void Put(std::string_view key, std::string_view value, uint64_t hash);
  std::optional<std::string_view> Find(std::string_view key, uint64_t hash) const;
  // Every (key, value), in key order.
  std::vector<std::pair<std::string_view, std::string_view>> Sorted() const;

 private:
  // Arena record: u16 key length, u16 value length, key, value.
  std::string_view KeyAt(uint32_t offset) const;
  std::string_view ValueAt(uint32_t offset) const;
  // Where key is, or the empty slot for it.
  size_t Slot(std::string_view key, uint64_t hash) const;
  void Grow();

  std::string arena_;
  // High 32 bits: the key's hash (compared before the arena is touched, so
  // a probe past another key costs no cache miss); low 32: arena offset + 1,
  // 0 = empty.
  std::vector<uint64_t> slots_;
  size_t size_ = 0;
};

class DedupIndex {
 public:
  static StatusOr<std::unique_ptr<DedupIndex>> Open(const std::string& dir,
                                                    DedupIndexOptions options = {});
  ~DedupIndex();

  // Log entries [0, watermark()) are reflected in the index (recorded;
  // durable in RocksDB once their run is ingested).
  uint64_t watermark() const { return watermark_; }
  // The value recorded under `key`, if any.
  StatusOr<std::optional<std::string>> Lookup(std::string_view key) const;
  // The values of many keys at once (RocksDB MultiGet for those not in a run).
  StatusOr<std::vector<std::optional<std::string>>> LookupMany(
      const std::vector<std::string_view>& keys) const;
  // Records (key, value) pairs and advances the watermark, atomically: a
  // crash keeps the whole call or none of it, and never keys without the
  // watermark that covers them. May wait while a full run is written.
  Status Record(const std::vector<std::pair<std::string_view, std::string_view>>& entries,
                uint64_t watermark, bool catching_up = false);
  // Writes the open run to RocksDB (clean shutdown), so the next start has
  // nothing to catch up.
  Status Flush();
  // The bytes of the runs not yet written (the open one and one being
  // written): what the index still needs of the disk (the disk guard
  // keeps room for them).
  uint64_t UnwrittenBytes() const;
  // Its compactions' work (merging runs) since it was opened, for /metrics.
  BackgroundWork BackgroundWorkDone() const;
  // Every stored key and value in key order, the watermark's included, after
  // a Flush (what `annals rebuild` must make again from the log; tests).
  Status ForEach(const std::function<void(std::string_view key, std::string_view value)>& fn);

 private:
  using Run = RunTable;  // stored key -> value
  struct Prefixed;  // a batch of keys in their stored form, hashed
  DedupIndex() = default;
  // Sorts `run` and ingests it into RocksDB as one SST with `watermark`.
  Status WriteRun(const Run& run, uint64_t watermark);
  void WriterLoop();
  // Hands the open run to the writer; waits while the previous one is still
  // being written. Needs `lock` held on mu_.
  Status SealLocked(std::unique_lock<std::shared_mutex>& lock);

  std::string dir_;
  DedupIndexOptions options_;
  std::unique_ptr<rocksdb::DB> db_;
  std::atomic<uint64_t> watermark_{0};

  mutable std::shared_mutex mu_;  // guards everything below
  std::condition_variable_any cv_;
  Run open_;                        // being recorded
  std::unique_ptr<Run> sealed_;     // being written by the writer thread
  uint64_t sealed_watermark_ = 0;
  uint64_t file_seq_ = 0;
  Status writer_status_;            // sticky: the first failed run
  bool stop_ = false;
  std::thread writer_;
};

}  // namespace annals::index

#endif  // ANNALS_INDEX_DEDUP_INDEX_H_
