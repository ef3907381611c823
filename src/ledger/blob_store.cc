#include "ledger/blob_store.h"

#include "common/bytes.h"
#include "common/file_util.h"

namespace annals::ledger {

std::string BlobStore::PathFor(const Hash& digest) const {
  std::string hex = HexEncode(HashBytes(digest));
  return dir_ + "/" + hex.substr(0, 2) + "/" + hex;
}

Status BlobStore::Put(const Hash& digest, std::string_view payload) {
  std::string path = PathFor(digest);
  if (env_->FileExists(path)) {
    // Content-addressed: an existing blob with the right digest is the same.
    auto have = Get(digest);
    if (have.ok()) return OkStatus();
  }
  RETURN_IF_ERROR(env_->CreateDirs(DirName(path)));
  RETURN_IF_ERROR(env::WriteFileAtomic(env_, path, payload, 0444));
  return env_->SyncDir(dir_);
}

StatusOr<std::string> BlobStore::Get(const Hash& digest) const {
  std::string path = PathFor(digest);
  auto data = env::ReadFileToString(env_, path);
  if (!data.ok()) return data.status();
  if (Sha256(*data) != digest) return DataLossError("blob " + path + " does not match its digest");
  return data;
}

}  // namespace annals::ledger
