// C2SP tlog-cosignature (cosignature/v1, Ed25519): a witness's timestamped
// signature on a checkpoint, carried as one more signed-note signature line.
//
//   signed message:  "cosignature/v1\ntime <T>\n" + the checkpoint's note text
//   signature line:  "— <name> base64(key ID || T as 8 bytes big-endian || Ed25519 signature)\n"
//   key ID:          SHA-256(<name> || "\n" || 0x04 || public key)[:4]
//   verifier key:    "<name>+<key ID %08x>+base64(0x04 || public key)"
//
// T is seconds since the epoch, at most 2^63 - 1. docs/witness.md.
// Cosigner and CosignatureVerifier are immutable after creation and
// thread-safe.
#ifndef ANNALS_CHECKPOINT_COSIGNATURE_H_
#define ANNALS_CHECKPOINT_COSIGNATURE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "checkpoint/note.h"
#include "common/status.h"

namespace annals::note {

inline constexpr uint8_t kAlgCosignatureV1 = 0x04;
// The bytes of a cosignature after its key ID: timestamp and signature.
inline constexpr size_t kCosignatureSize = 8 + kEd25519SignatureSize;

// The message a cosigner signs over a checkpoint's note text (which ends in
// '\n' and holds no signature lines) at `timestamp`.
std::string CosignedMessage(std::string_view text, uint64_t timestamp);

// A signature line's bytes after the key ID, read as a cosignature:
// InvalidArgument unless exactly 72 bytes with a timestamp <= 2^63 - 1.
struct Cosignature {
  uint64_t timestamp = 0;
  std::string signature;  // 64 bytes
};
StatusOr<Cosignature> ParseCosignature(std::string_view bytes);

class Cosigner {
 public:
  // An Ed25519 private key as `annals keygen` writes it
  // ("PRIVATE+KEY+<name>+<hash>+<base64(0x01 || seed)>"), used to cosign:
  // its name is the cosigner's, its key ID the cosignature one (0x04).
  // A witness's key should cosign only (c2sp.org/tlog-cosignature: one key
  // per cosigner).
  static StatusOr<std::unique_ptr<Cosigner>> FromPrivateKey(std::string_view skey);
  const std::string& name() const { return signer_->name(); }
  uint32_t key_hash() const { return key_hash_; }
  // "<name>+<key ID>+base64(0x04 || public key)".
  std::string VerifierKey() const;
  // The cosignature line "— <name> <base64>\n" on text (a checkpoint's
  // note text, ending in '\n') at timestamp. InvalidArgument for text that
  // is not note text or a timestamp above 2^63 - 1.
  StatusOr<std::string> Cosign(std::string_view text, uint64_t timestamp) const;

 private:
  Cosigner() = default;
  std::unique_ptr<Signer> signer_;
  uint32_t key_hash_ = 0;
};

class CosignatureVerifier {
 public:
  // A cosigner's verifier key ("<name>+<key ID>+base64(0x04 || key)");
  // InvalidArgument for any other algorithm or a key ID that is not the
  // key's.
  static StatusOr<std::unique_ptr<CosignatureVerifier>> FromVerifierKey(std::string_view vkey);
  const std::string& name() const { return name_; }
  uint32_t key_hash() const { return key_hash_; }
  std::string VerifierKey() const;
  // The timestamp of this cosigner's cosignature on `note`: the first
  // signature line with its name and key ID (others are ignored, as
  // signed-note requires). NotFound if there is none; Unauthenticated if
  // it is malformed or does not verify.
  StatusOr<uint64_t> Verify(const Note& note) const;

 private:
  CosignatureVerifier() = default;
  std::string name_;
  uint32_t key_hash_ = 0;
  std::string public_key_;
  std::unique_ptr<Verifier> ed25519_;  // the same key, to check Ed25519 signatures with
};

}  // namespace annals::note

#endif  // ANNALS_CHECKPOINT_COSIGNATURE_H_
