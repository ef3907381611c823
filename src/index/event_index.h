// EventIndex: the event table of search, group-by and history on disk
// (docs/format/event-index.md), so that the memory they need does not grow
// with the log. A derived index in RocksDB under <data>/index/events,
// rebuildable from the log: one row per audit event keyed by its ledger
// index, the (resource, namespace, name) links history looks up, and per
// hour of event time the span of ledger indexes holding that hour's events
// and pre-aggregated counts per field (user, verb, resource, namespace,
// code, source IP, user agent), so a group-by over a month reads the hours
// it spans, not the events.
//
// Each Commit writes a stretch of the log's rows, links, counts and the new
// watermark as one RocksDB write batch (WAL on, not synced: a kill -9 keeps
// it, a power loss keeps a prefix of batches), so the index never holds
// counts without the watermark that covers them, and is never ahead of the
// durable log it was projected from. A layout of another version, or a store
// RocksDB finds damaged, is wiped and rebuilt from the log.
//
// Thread-safe: one writer (Commit, Reset), many readers.
#ifndef ANNALS_INDEX_EVENT_INDEX_H_
#define ANNALS_INDEX_EVENT_INDEX_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "common/status.h"
#include "index/background_work.h"
#include "common/time_util.h"
#include "index/event_row.h"

namespace rocksdb {
class Cache;
class ColumnFamilyHandle;
class DB;
}  // namespace rocksdb

namespace annals::index {

struct EventIndexOptions {
  // RocksDB's block cache (uncompressed blocks read back for queries).
  size_t block_cache_bytes = size_t{256} << 20;
  // Every memtable together.
  size_t write_buffer_bytes = size_t{64} << 20;
  // A commit of at least this many rows (a catch-up's) writes them as a
  // table file of their own and ingests it beneath the rest.
  size_t ingest_rows = 32768;
  // Tests: a commit fails right after ingesting its rows, as a crash there
  // would leave it (rows beyond the watermark, nothing else).
  bool fail_after_row_ingest = false;
};

inline constexpr Micros kHourMicros = int64_t{3600} * 1000000;
// The hour a time falls in (floor, also before 1970; no overflow at the
// ends of the range).
inline int64_t HourOf(Micros t) { return t >= 0 ? t / kHourMicros : -((-(t + 1)) / kHourMicros) - 1; }

class EventIndex {
 public:
  // Opens or creates the index in dir. One of another layout version, or
  // that RocksDB cannot open as it is (damaged), is wiped; *wiped says why
  // ("" if it was not).
  static StatusOr<std::unique_ptr<EventIndex>> Open(const std::string& dir, EventIndexOptions options = {},
                                                    std::string* wiped = nullptr);
  ~EventIndex();

  // Every key and (merged) value in key order, the watermark's included
  // (what `annals rebuild` must make again from the log; tests).
  Status ForEach(const std::function<void(std::string_view key, std::string_view value)>& fn) const;

  // Log entries [0, watermark()) are in the index.
  uint64_t watermark() const { return watermark_.load(std::memory_order_acquire); }
  // Adds a batch projected from entries [watermark(), watermark) and moves
  // the watermark there, atomically. FailedPrecondition if a row is below
  // the current watermark (its counts would be counted twice).
  Status Commit(const EventBatch& batch, uint64_t watermark);
  // A catch-up commits its rows in batches of this many (fewer watermark
  // and count updates than one commit per chunk read).
  static constexpr size_t kCatchUpRows = 65536;
  // Wipes the index (watermark 0), to be rebuilt from the log.
  Status Reset();

  // Rows with index in [from, to), in index order, until fn returns false.
  // DataLoss if a row cannot be read back (the index is damaged).
  Status Scan(uint64_t from, uint64_t to, const std::function<bool(const EventRowView&)>& fn) const;
  // Ledger indexes filed under (resource, namespace, name), ascending.
  StatusOr<std::vector<uint64_t>> EventsFor(std::string_view resource, std::string_view ns,
                                            std::string_view name) const;
  // The namespaces ("" for cluster-scoped) with events filed under
  // (resource, that namespace, name), in order.
  StatusOr<std::vector<std::string>> NamespacesOf(std::string_view resource, std::string_view name) const;

  // An hour of event time with events: how many, and the span of ledger
  // indexes holding them (events arrive roughly in time order, so a time
  // range reads the rows of its hours' spans, not the whole table).
  struct Hour {
    int64_t hour = 0;
    uint64_t count = 0, first_index = 0, last_index = 0;
  };
  // The hours in [first, last] that have events, in order.
  std::vector<Hour> Hours(int64_t first, int64_t last) const;
  // Pre-aggregated counts in one hour.
  // kImpersonated: the impersonated user, counted only where there is one
  // and it is not the authenticated user (so an event a user filter matches
  // is counted once, under kUser or kImpersonated).
  enum class Field : char {
    kUser = 'u', kVerb = 'v', kResource = 'r', kNamespace = 'n', kCode = 'c', kSourceIp = 'i', kUserAgent = 'a',
    kImpersonated = 'p', kCloud = 'k', kAccount = 'o'
  };
  // fn(value, count) for every value of field among the hour's events (a
  // code as its decimal text), in value order.
  Status Counts(Field field, int64_t hour, const std::function<void(std::string_view, uint64_t)>& fn) const;
  // The same among the hour's events of namespace ns (not ""), for the
  // fields NamespaceCounted says.
  static bool NamespaceCounted(Field f) {
    return f == Field::kUser || f == Field::kVerb || f == Field::kResource || f == Field::kCode ||
           f == Field::kImpersonated;
  }
  Status NamespaceCounts(Field field, int64_t hour, std::string_view ns,
                         const std::function<void(std::string_view, uint64_t)>& fn) const;
  // How many events of each hour have one value of field (among namespace
  // ns's if not ""): one point read per hour, for a filter that names a
  // value (a search skips the hours without it).
  StatusOr<std::vector<uint64_t>> CountsOf(Field field, const std::vector<int64_t>& hours, std::string_view ns,
                                           std::string_view value) const;

  // The bytes its memtables hold, to be written by their next flush (the
  // disk guard keeps room for them).
  uint64_t UnflushedBytes() const;
  // Its flushes' and compactions' work since it was opened (both
  // families), for /metrics.
  BackgroundWork BackgroundWorkDone() const;

  // Reads every stored block and checks its checksum: DataLoss naming the
  // damage. Costs a read of the whole index (run it off the start path);
  // returns Unavailable soon after *stop becomes true.
  Status VerifyChecksums(const std::atomic<bool>* stop) const;

 private:
  EventIndex() = default;
  // fn(the key's rest, count) for the count keys under prefix.
  Status CountsUnder(const std::string& prefix, const std::function<void(std::string_view, uint64_t)>& fn) const;
  // Opens dir_, wiping it if damaged (*wiped says why).
  Status OpenDb(std::string* wiped);
  Status TryOpenDb(std::string* wiped);
  // Closes the database (its column family handle first).
  void CloseDb();
  Status LoadLocked();
  // After a failed write (a full disk) RocksDB refuses every later one
  // until it recovers by itself, which it never does with less free space
  // than its write buffers: the next commit closes and opens it again
  // instead. Memtables that could not be flushed are gone with their
  // watermark (no WAL), so the index goes back to what it made durable and
  // the projector makes the rest again from the log. Fails (and is tried
  // at the next commit) while there is no room to open.
  Status ReopenIfStuck();
  // Readers' answer while the database is closed (a reopen that failed).
  Status NotOpen() const;
  // Writes the batch's rows as one table file and ingests it (Commit, for
  // batches of at least options_.ingest_rows rows).
  Status IngestRows(const EventBatch& batch);

  std::string dir_;
  EventIndexOptions options_;
  std::shared_ptr<rocksdb::Cache> cache_;
  mutable std::shared_mutex mu_;  // db_: Reset swaps it (exclusive); all else shares
  std::unique_ptr<rocksdb::DB> db_;
  // The column family of the rows (`'r'` keys); everything else is in the
  // default one. Declared after db_: destroyed before it.
  std::unique_ptr<rocksdb::ColumnFamilyHandle> rows_;
  mutable std::mutex hours_mu_;
  std::map<int64_t, Hour> hours_;
  // The 'm' keys this process has put since the index was opened or reset
  // (at most kMaxFiledNames; then it starts over): put once, not once per
  // batch, as each was a skip-list search in the memtable. After a crash
  // the batches that put them are caught up again, puts and all.
  std::mutex filed_mu_;
  std::unordered_set<std::string> filed_names_;
  std::atomic<uint64_t> watermark_{0};
  std::atomic<bool> stuck_{false};  // a write failed: reopen before the next
};

}  // namespace annals::index

#endif  // ANNALS_INDEX_EVENT_INDEX_H_
