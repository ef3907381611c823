// SealedStore: the values redaction took out of events, beside the log
// and never in it (DATA/sealed/, docs/format/sealed-store.md). RocksDB
// with its write-ahead log synced before the entries that commit to the
// values are (Sync, from the ledger's writer): an acknowledged entry's
// value can always be revealed until it is erased.
//
//   "v" + MAC (32 bytes)          -> the value and its salt
//   "e" + MAC                     -> the erasure: the ledger index of the
//                                    annals.erasure entry (8 bytes, BE)
//   "r" + SHA-256(stored payload) -> SHA-256(received payload): how a
//                                    retried event is recognised as the
//                                    one stored redacted (deduplication);
//                                    deleted when a value of it is erased
//
// With a seal key (`serve --seal-key FILE`, 32 bytes the operator holds
// outside the data directory) every value record is encrypted with
// AES-256-GCM (a random 96-bit nonce each; the key of the record as
// associated data); without one the records are plain (the directory is
// 0700). Not derived: it cannot be rebuilt from the log; back it up with
// the key.
//
// Thread-safe.
#ifndef ANNALS_REDACT_SEALED_STORE_H_
#define ANNALS_REDACT_SEALED_STORE_H_

#include <array>
#include <atomic>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/sha256.h"
#include "common/status.h"
#include "redact/redactor.h"

namespace rocksdb {
class DB;
class WriteBatch;
}

namespace annals::redact {

using SealKey = std::array<uint8_t, 32>;

// A seal key file: 64 hex digits (surrounding whitespace ignored).
StatusOr<SealKey> ReadSealKey(const std::string& path);

class SealedStore {
 public:
  static StatusOr<std::unique_ptr<SealedStore>> Open(const std::string& dir, std::optional<SealKey> key);
  ~SealedStore();

  // One synced write: every value of a batch of redactions, and for each
  // redacted payload the digest of what was received.
  struct Payload {
    Hash stored, received;
  };
  // Written, not yet synced: Sync makes it durable (the ledger's writer
  // calls it before the fdatasync of the entries that commit to these
  // values, so both become durable in one group commit and the values no
  // later than their entries).
  Status Put(const std::vector<SealedValue>& values, const std::vector<Payload>& payloads);
  // Syncs what Put wrote since the last Sync (nothing to do: no syscall).
  Status Sync();

  struct Opened {
    std::string value;
    Salt salt{};
  };
  // NotFound when the store never held it; FailedPrecondition naming the
  // erasure entry when it was erased; DataLoss when a record does not
  // decrypt (wrong key, or altered).
  StatusOr<Opened> Get(const Hash& mac) const;
  // What was received for a stored payload, if it was redacted here.
  StatusOr<std::optional<Hash>> ReceivedDigest(const Hash& stored) const;
  // Deletes the value (a tombstone naming the erasure entry stays) and the
  // received-payload digest of the entry that held it (`stored`: the
  // digest of that entry's payload), then flushes and compacts the store
  // so that no live file holds either.
  Status Erase(const Hash& mac, uint64_t erasure_index, const Hash& stored);
  bool encrypted() const { return key_.has_value(); }

 private:
  SealedStore(std::string dir, std::unique_ptr<rocksdb::DB> db, std::optional<SealKey> key);
  static StatusOr<std::unique_ptr<rocksdb::DB>> OpenDb(const std::string& dir);
  StatusOr<std::string> Seal(std::string_view record_key, std::string_view plain) const;
  // After a failed write or sync: resumes RocksDB, or, while it answers
  // "busy" (its own recovery, which on a small volume may never end), closes
  // and opens the store again (the WAL replays what it holds).
  Status Recover();
  Status Write(rocksdb::WriteBatch* batch, bool sync, const char* what);
  StatusOr<std::string> Unseal(std::string_view record_key, std::string_view sealed) const;

  const std::string dir_;
  // db_ is replaced only by Recover, under mu_ held exclusively; every use
  // holds it shared. Null while it could not be opened again.
  mutable std::shared_mutex mu_;
  std::unique_ptr<rocksdb::DB> db_;
  std::optional<SealKey> key_;
  std::atomic<bool> unsynced_{false};
  std::atomic<bool> needs_resume_{false};  // a write failed: Recover() before the next
};

}  // namespace annals::redact

#endif  // ANNALS_REDACT_SEALED_STORE_H_
