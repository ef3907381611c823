#include "checkpoint/cosignature.h"

#include <limits>

#include "common/bytes.h"

namespace annals::note {

namespace {

constexpr uint64_t kMaxTimestamp = uint64_t{std::numeric_limits<int64_t>::max()};

}  // namespace

std::string CosignedMessage(std::string_view text, uint64_t timestamp) {
  std::string m = "cosignature/v1\ntime " + std::to_string(timestamp) + "\n";
  m.append(text);
  return m;
}

StatusOr<Cosignature> ParseCosignature(std::string_view bytes) {
  if (bytes.size() != kCosignatureSize)
    return InvalidArgumentError("cosignature: " + std::to_string(bytes.size()) + " bytes after the key ID, not " +
                                std::to_string(kCosignatureSize));
  Cosignature c;
  c.timestamp = GetBigEndian64(bytes.data());
  if (c.timestamp > kMaxTimestamp) return InvalidArgumentError("cosignature: timestamp above 2^63 - 1");
  c.signature = std::string(bytes.substr(8));
  return c;
}

StatusOr<std::unique_ptr<Cosigner>> Cosigner::FromPrivateKey(std::string_view skey) {
  ASSIGN_OR_RETURN(std::unique_ptr<Signer> signer, Signer::FromPrivateKey(skey));
  std::unique_ptr<Cosigner> c(new Cosigner());
  c->key_hash_ = KeyHash(signer->name(), signer->public_key(), kAlgCosignatureV1);
  c->signer_ = std::move(signer);
  return c;
}

std::string Cosigner::VerifierKey() const {
  return VerifierKeyText(signer_->name(), key_hash_, signer_->public_key(), kAlgCosignatureV1);
}

StatusOr<std::string> Cosigner::Cosign(std::string_view text, uint64_t timestamp) const {
  if (text.empty() || text.back() != '\n' || !ValidNoteText(text))
    return InvalidArgumentError("cosign: not note text (UTF-8 lines ending in a newline)");
  if (text.size() > kMaxNoteSize) return InvalidArgumentError("cosign: note text larger than 1 MiB");
  if (timestamp > kMaxTimestamp) return InvalidArgumentError("cosign: timestamp above 2^63 - 1");
  const std::string sig = signer_->SignRaw(CosignedMessage(text, timestamp));
  if (sig.size() != kEd25519SignatureSize) return InternalError("Ed25519 signing failed");
  std::string blob;
  PutBigEndian32(&blob, key_hash_);
  PutBigEndian64(&blob, timestamp);
  blob += sig;
  std::string line(kSigPrefix);
  line += signer_->name();
  line += ' ';
  line += Base64Encode(blob);
  line += '\n';
  return line;
}

StatusOr<std::unique_ptr<CosignatureVerifier>> CosignatureVerifier::FromVerifierKey(std::string_view vkey) {
  ASSIGN_OR_RETURN(KeyFields k, ParseVerifierKeyFields(vkey, kAlgCosignatureV1));
  // The Ed25519 key under its note-signature ID: note::Verifier checks the
  // signatures (one place that holds OpenSSL's Ed25519 calls).
  ASSIGN_OR_RETURN(auto ed,
                   Verifier::FromVerifierKey(VerifierKeyText(k.name, KeyHash(k.name, k.key), k.key, kAlgEd25519)));
  std::unique_ptr<CosignatureVerifier> v(new CosignatureVerifier());
  v->name_ = std::move(k.name);
  v->key_hash_ = k.key_hash;
  v->public_key_ = std::move(k.key);
  v->ed25519_ = std::move(ed);
  return v;
}

std::string CosignatureVerifier::VerifierKey() const {
  return VerifierKeyText(name_, key_hash_, public_key_, kAlgCosignatureV1);
}

StatusOr<uint64_t> CosignatureVerifier::Verify(const Note& note) const {
  for (const Signature& sig : note.signatures) {
    if (sig.name != name_ || sig.key_hash != key_hash_) continue;
    auto c = ParseCosignature(sig.signature);
    if (!c.ok()) return UnauthenticatedError("cosignature by " + name_ + ": " + c.status().message());
    if (!ed25519_->VerifyRaw(CosignedMessage(note.text, c->timestamp), c->signature))
      return UnauthenticatedError("invalid cosignature by " + name_);
    return c->timestamp;
  }
  return NotFoundError("no cosignature by " + name_);
}

}  // namespace annals::note
