#include "redact/sealed_store.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>
#include <sys/stat.h>

#include "common/bytes.h"
#include "common/file_util.h"
#include "index/rocks_util.h"

namespace annals::redact {

namespace {

constexpr char kPlain = 0, kAesGcm = 1;
constexpr size_t kNonce = 12, kTag = 16;

std::string KeyOf(char prefix, const Hash& h) {
  std::string k(1, prefix);
  k.append(HashBytes(h));
  return k;
}

Status FromRocks(const rocksdb::Status& s, const std::string& what) {
  if (s.ok()) return OkStatus();
  if (s.IsCorruption()) return DataLossError("sealed store: " + what + ": " + s.ToString());
  // A full disk comes back as an IO error whose subcode is not always set.
  if (s.IsNoSpace() || s.ToString().find("No space left") != std::string::npos)
    return ResourceExhaustedError("sealed store: out of space: " + what + ": " + s.ToString());
  return InternalError("sealed store: " + what + ": " + s.ToString());
}

struct CipherCtx {
  EVP_CIPHER_CTX* c = EVP_CIPHER_CTX_new();
  ~CipherCtx() { EVP_CIPHER_CTX_free(c); }
};

}  // namespace

StatusOr<SealKey> ReadSealKey(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, ReadFileToString(path));
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
  size_t a = 0;
  while (a < text.size() && std::isspace(static_cast<unsigned char>(text[a]))) ++a;
  auto bytes = HexDecode(std::string_view(text).substr(a));
  if (!bytes || bytes->size() != 32)
    return InvalidArgumentError("seal key " + path + ": want 64 hex digits (e.g. from `openssl rand -hex 32`)");
  SealKey k;
  std::copy(bytes->begin(), bytes->end(), k.begin());
  return k;
}

SealedStore::SealedStore(std::string dir, std::unique_ptr<rocksdb::DB> db, std::optional<SealKey> key)
    : dir_(std::move(dir)), db_(std::move(db)), key_(key) {}
SealedStore::~SealedStore() = default;

StatusOr<std::unique_ptr<rocksdb::DB>> SealedStore::OpenDb(const std::string& dir) {
  rocksdb::Options o;
  o.create_if_missing = true;
  o.paranoid_checks = true;
  o.info_log = index::StoreLogger("sealed store");
  index::NoPreallocation(&o);
  // Deleted WAL files go at once, not to an archive.
  o.WAL_ttl_seconds = 0;
  o.WAL_size_limit_MB = 0;
  rocksdb::DB* raw = nullptr;
  RETURN_IF_ERROR(FromRocks(rocksdb::DB::Open(o, dir, &raw), "open " + dir));
  return std::unique_ptr<rocksdb::DB>(raw);
}

StatusOr<std::unique_ptr<SealedStore>> SealedStore::Open(const std::string& dir, std::optional<SealKey> key) {
  RETURN_IF_ERROR(MakeDirs(dir));
  ::chmod(dir.c_str(), 0700);
  ASSIGN_OR_RETURN(std::unique_ptr<rocksdb::DB> db, OpenDb(dir));
  // A store written with a key must be read with it, and one written
  // without must not be read as if encrypted: the first value says.
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions()));
  it->Seek("v");
  if (it->Valid() && it->key().starts_with("v") && !it->value().empty()) {
    const bool enc = it->value()[0] == kAesGcm;
    if (enc && !key) return FailedPreconditionError("sealed store " + dir + " is encrypted: give --seal-key");
    if (!enc && key)
      return FailedPreconditionError("sealed store " + dir + " holds values sealed without a key; "
                                     "--seal-key applies to a new store only");
  }
  return std::unique_ptr<SealedStore>(new SealedStore(dir, std::move(db), key));
}

StatusOr<std::string> SealedStore::Seal(std::string_view record_key, std::string_view plain) const {
  if (!key_) {
    std::string out(1, kPlain);
    out.append(plain);
    return out;
  }
  std::string out(1 + kNonce + plain.size() + kTag, '\0');
  out[0] = kAesGcm;
  auto* nonce = reinterpret_cast<uint8_t*>(out.data() + 1);
  if (RAND_bytes(nonce, kNonce) != 1) return InternalError("sealed store: RAND_bytes failed");
  CipherCtx ctx;
  int len = 0;
  auto* ct = reinterpret_cast<uint8_t*>(out.data() + 1 + kNonce);
  if (!ctx.c || EVP_EncryptInit_ex(ctx.c, EVP_aes_256_gcm(), nullptr, key_->data(), nonce) != 1 ||
      EVP_EncryptUpdate(ctx.c, nullptr, &len, reinterpret_cast<const uint8_t*>(record_key.data()),
                        static_cast<int>(record_key.size())) != 1 ||
      EVP_EncryptUpdate(ctx.c, ct, &len, reinterpret_cast<const uint8_t*>(plain.data()),
                        static_cast<int>(plain.size())) != 1 ||
      EVP_EncryptFinal_ex(ctx.c, ct + len, &len) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.c, EVP_CTRL_GCM_GET_TAG, kTag, ct + plain.size()) != 1)
    return InternalError("sealed store: encryption failed");
  return out;
}

StatusOr<std::string> SealedStore::Unseal(std::string_view record_key, std::string_view sealed) const {
  if (sealed.empty()) return DataLossError("sealed store: an empty record");
  if (sealed[0] == kPlain) {
    if (key_) return DataLossError("sealed store: a plain record in an encrypted store");
    return std::string(sealed.substr(1));
  }
  if (sealed[0] != kAesGcm || sealed.size() < 1 + kNonce + kTag) return DataLossError("sealed store: a bad record");
  if (!key_) return FailedPreconditionError("sealed store: the value is encrypted: give --seal-key");
  const auto* nonce = reinterpret_cast<const uint8_t*>(sealed.data() + 1);
  const size_t n = sealed.size() - 1 - kNonce - kTag;
  const auto* ct = reinterpret_cast<const uint8_t*>(sealed.data() + 1 + kNonce);
  std::string plain(n, '\0');
  CipherCtx ctx;
  int len = 0;
  std::array<uint8_t, kTag> tag;
  std::copy(ct + n, ct + n + kTag, tag.begin());
  if (!ctx.c || EVP_DecryptInit_ex(ctx.c, EVP_aes_256_gcm(), nullptr, key_->data(), nonce) != 1 ||
      EVP_DecryptUpdate(ctx.c, nullptr, &len, reinterpret_cast<const uint8_t*>(record_key.data()),
                        static_cast<int>(record_key.size())) != 1 ||
      EVP_DecryptUpdate(ctx.c, reinterpret_cast<uint8_t*>(plain.data()), &len, ct, static_cast<int>(n)) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.c, EVP_CTRL_GCM_SET_TAG, kTag, tag.data()) != 1 ||
      EVP_DecryptFinal_ex(ctx.c, reinterpret_cast<uint8_t*>(plain.data()) + len, &len) != 1)
    return DataLossError("sealed store: a record does not decrypt (another key, or altered)");
  return plain;
}

Status SealedStore::Put(const std::vector<SealedValue>& values, const std::vector<Payload>& payloads) {
  rocksdb::WriteBatch batch;
  for (const auto& v : values) {
    const std::string k = KeyOf('v', v.mac);
    std::string plain(reinterpret_cast<const char*>(v.salt.data()), v.salt.size());
    plain.append(v.value);
    ASSIGN_OR_RETURN(std::string rec, Seal(k, plain));
    batch.Put(k, rec);
  }
  for (const auto& p : payloads) batch.Put(KeyOf('r', p.stored), std::string(HashBytes(p.received)));
  RETURN_IF_ERROR(Write(&batch, false, "write"));
  unsynced_.store(true);
  return OkStatus();
}

Status SealedStore::Recover() {
  std::unique_lock lock(mu_);
  if (!needs_resume_.load()) return OkStatus();
  if (db_) {
    rocksdb::Status r = db_->Resume();
    if (r.ok()) {
      needs_resume_.store(false);
      return OkStatus();
    }
    if (!r.IsBusy()) return FromRocks(r, "resume after a failed write");
    db_.reset();
  }
  auto db = OpenDb(dir_);
  if (!db.ok())
    return UnavailableError("sealed store: not open again yet after a failed write: " + db.status().message());
  db_ = std::move(*db);
  needs_resume_.store(false);
  return OkStatus();
}

Status SealedStore::Write(rocksdb::WriteBatch* batch, bool sync, const char* what) {
  // After a failed write RocksDB refuses every later one until resumed
  // (a full disk, once space returns): recover first.
  if (needs_resume_.load()) RETURN_IF_ERROR(Recover());
  std::shared_lock lock(mu_);
  if (!db_) return UnavailableError("sealed store: not open again yet after a failed write");
  rocksdb::WriteOptions wo;
  wo.sync = sync;
  rocksdb::Status s = db_->Write(wo, batch);
  if (!s.ok()) needs_resume_.store(true);
  return FromRocks(s, what);
}

Status SealedStore::Sync() {
  if (!unsynced_.exchange(false)) return OkStatus();
  std::shared_lock lock(mu_);
  if (!db_) {
    unsynced_.store(true);
    return UnavailableError("sealed store: not open again yet after a failed write");
  }
  rocksdb::Status r = db_->SyncWAL();
  if (!r.ok()) {
    unsynced_.store(true);
    needs_resume_.store(true);
  }
  return FromRocks(r, "sync");
}

StatusOr<SealedStore::Opened> SealedStore::Get(const Hash& mac) const {
  std::shared_lock lock(mu_);
  if (!db_) return UnavailableError("sealed store: not open again yet after a failed write");
  std::string rec;
  const std::string k = KeyOf('v', mac);
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), k, &rec);
  if (s.IsNotFound()) {
    std::string erased;
    rocksdb::Status e = db_->Get(rocksdb::ReadOptions(), KeyOf('e', mac), &erased);
    if (e.ok() && erased.size() == 8)
      return FailedPreconditionError("the value was erased (ledger entry " +
                                     std::to_string(GetBigEndian64(erased.data())) + ")");
    return NotFoundError("no sealed value for this commitment");
  }
  RETURN_IF_ERROR(FromRocks(s, "read"));
  ASSIGN_OR_RETURN(std::string plain, Unseal(k, rec));
  if (plain.size() < 32) return DataLossError("sealed store: a short record");
  Opened o;
  std::copy(plain.begin(), plain.begin() + 32, o.salt.begin());
  o.value = plain.substr(32);
  if (MacOf(o.salt, o.value) != mac) return DataLossError("sealed store: a record does not match its commitment");
  return o;
}

StatusOr<std::optional<Hash>> SealedStore::ReceivedDigest(const Hash& stored) const {
  std::shared_lock lock(mu_);
  if (!db_) return UnavailableError("sealed store: not open again yet after a failed write");
  std::string v;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), KeyOf('r', stored), &v);
  if (s.IsNotFound()) return std::optional<Hash>();
  RETURN_IF_ERROR(FromRocks(s, "read"));
  if (v.size() != 32) return DataLossError("sealed store: a bad payload record");
  Hash h;
  std::copy(v.begin(), v.end(), h.begin());
  return std::optional<Hash>(h);
}

Status SealedStore::Erase(const Hash& mac, uint64_t erasure_index, const Hash& stored) {
  rocksdb::WriteBatch batch;
  const std::string k = KeyOf('v', mac);
  batch.Delete(k);
  batch.Delete(KeyOf('r', stored));
  std::string idx;
  PutBigEndian64(&idx, erasure_index);
  batch.Put(KeyOf('e', mac), idx);
  RETURN_IF_ERROR(Write(&batch, true, "erase"));
  std::shared_lock lock(mu_);
  if (!db_) return UnavailableError("sealed store: not open again yet after a failed write");
  // Out of the memtable and the WAL, then out of every table file: the
  // compaction rewrites the files that held it without it.
  RETURN_IF_ERROR(FromRocks(db_->Flush(rocksdb::FlushOptions()), "flush after an erasure"));
  rocksdb::CompactRangeOptions co;
  co.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
  RETURN_IF_ERROR(FromRocks(db_->CompactRange(co, nullptr, nullptr), "compact after an erasure"));
  return FromRocks(db_->FlushWAL(true), "sync after an erasure");
}

}  // namespace annals::redact
