// BlobStore: payloads too large for one entry, stored content-addressed as
// <dir>/<hex[0:2]>/<hex> (hex = SHA-256 of the payload). Put is durable when
// it returns; blobs are never rewritten. Thread-safe. File I/O goes through
// an env::Env, which must outlive the store.
#ifndef ANNALS_LEDGER_BLOB_STORE_H_
#define ANNALS_LEDGER_BLOB_STORE_H_

#include <string>
#include <string_view>

#include "common/sha256.h"
#include "common/status.h"
#include "env/env.h"

namespace annals::ledger {

class BlobStore {
 public:
  explicit BlobStore(std::string dir, env::Env* env = env::Env::Default())
      : dir_(std::move(dir)), env_(env) {}
  Status Put(const Hash& digest, std::string_view payload);
  // Reads and checks the digest: DataLoss on mismatch, NotFound if absent.
  StatusOr<std::string> Get(const Hash& digest) const;
  std::string PathFor(const Hash& digest) const;

 private:
  const std::string dir_;
  env::Env* const env_;
};

}  // namespace annals::ledger

#endif  // ANNALS_LEDGER_BLOB_STORE_H_
