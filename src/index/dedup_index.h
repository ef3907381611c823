// DedupIndex: which dedup keys ((auditID, stage) of an audit event,
// (source, id) of a CloudEvent) the log already holds, with a short value
// per key (the Ingestor's: the log index and payload digest).
// A derived index in RocksDB under <data>/index/dedup: it is rebuildable
// from the log, so it is written without a WAL; its watermark says how much
// of the log it covers, and Ingestor catches it up from there on start.
// Thread-safe (RocksDB is).
#ifndef ANNALS_INDEX_DEDUP_INDEX_H_
#define ANNALS_INDEX_DEDUP_INDEX_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace rocksdb {
class DB;
}

namespace annals::index {

class DedupIndex {
 public:
  static StatusOr<std::unique_ptr<DedupIndex>> Open(const std::string& dir);
  ~DedupIndex();

  // Log entries [0, watermark()) are reflected in the index.
  uint64_t watermark() const { return watermark_; }
  // The value recorded under `key`, if any.
  StatusOr<std::optional<std::string>> Lookup(std::string_view key) const;
  // The values of many keys in one batched read (RocksDB MultiGet).
  StatusOr<std::vector<std::optional<std::string>>> LookupMany(
      const std::vector<std::string>& keys) const;
  // Records (key, value) pairs and advances the watermark, atomically.
  Status Record(const std::vector<std::pair<std::string, std::string>>& entries,
                uint64_t watermark);
  // Flushes memtables (clean shutdown), so the next start has less to scan.
  Status Flush();

 private:
  DedupIndex() = default;
  std::unique_ptr<rocksdb::DB> db_;
  std::atomic<uint64_t> watermark_{0};
};

}  // namespace annals::index

#endif  // ANNALS_INDEX_DEDUP_INDEX_H_
