// SealedStore: the values redaction took out of events, beside the log
// and never in it (DATA/sealed/, docs/format/sealed-store.md). RocksDB
// with its write-ahead log synced on every write: a value is durable
// before the entry that commits to it is appended, so an acknowledged
// entry's value can always be revealed until it is erased.
//
//   "v" + MAC (32 bytes)          -> the value and its salt
//   "e" + MAC                     -> the erasure: the ledger index of the
//                                    annals.erasure entry (8 bytes, BE)
//   "r" + SHA-256(stored payload) -> SHA-256(received payload): how a
//                                    retried event is recognised as the
//                                    one stored redacted (deduplication)
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
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/sha256.h"
#include "common/status.h"
#include "redact/redactor.h"

namespace rocksdb {
class DB;
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
  Status Put(const std::vector<SealedValue>& values, const std::vector<Payload>& payloads);

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
  // Deletes the value (a tombstone naming the erasure entry stays), then
  // flushes and compacts the store so that no live file holds it.
  Status Erase(const Hash& mac, uint64_t erasure_index);
  bool encrypted() const { return key_.has_value(); }

 private:
  SealedStore(std::unique_ptr<rocksdb::DB> db, std::optional<SealKey> key);
  StatusOr<std::string> Seal(std::string_view record_key, std::string_view plain) const;
  StatusOr<std::string> Unseal(std::string_view record_key, std::string_view sealed) const;

  std::unique_ptr<rocksdb::DB> db_;
  std::optional<SealKey> key_;
};

}  // namespace annals::redact

#endif  // ANNALS_REDACT_SEALED_STORE_H_
