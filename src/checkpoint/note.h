// C2SP signed-note: Ed25519 keys in note form, signing and verification.
// Signer and Verifier are immutable after creation and thread-safe.
#ifndef ANNALS_CHECKPOINT_NOTE_H_
#define ANNALS_CHECKPOINT_NOTE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace annals::note {

inline constexpr uint8_t kAlgEd25519 = 0x01;
inline constexpr size_t kMaxNoteSize = 1 << 20;  // parse limit for notes
inline constexpr size_t kMaxSignatures = 100;     // as golang.org/x/mod/sumdb/note
inline constexpr size_t kEd25519SignatureSize = 64;
// What starts each signature line of a note: U+2014 (em dash), then a space.
inline constexpr std::string_view kSigPrefix = "\xe2\x80\x94 ";

// Key name rules (signed-note): non-empty, no Unicode spaces, no '+'.
bool ValidKeyName(std::string_view name);
// key ID hash: first 4 bytes (big-endian) of SHA-256(name || 0x0A || alg || pubkey)
// (alg 0x01 for note signatures, 0x04 for cosignatures).
uint32_t KeyHash(std::string_view name, std::string_view public_key, uint8_t alg = kAlgEd25519);
// "<name>+<hash %08x>+<base64(alg || pubkey)>".
std::string VerifierKeyText(std::string_view name, uint32_t hash, std::string_view pub, uint8_t alg = kAlgEd25519);
// A verifier key of algorithm `alg` with a 32-byte key, its hash checked.
struct KeyFields {
  std::string name;
  uint32_t key_hash = 0;
  std::string key;  // the 32 key bytes after the algorithm byte
};
StatusOr<KeyFields> ParseVerifierKeyFields(std::string_view vkey, uint8_t alg);
// True if s is well-formed UTF-8 (no overlongs, surrogates or code points past
// U+10FFFF) and has no ASCII control characters other than '\n'.
bool ValidNoteText(std::string_view s);

// Generates a new key: "PRIVATE+KEY+<name>+<hash %08x>+<base64(0x01 || seed32)>".
StatusOr<std::string> GeneratePrivateKey(std::string_view name);

struct Signature {
  std::string name;
  uint32_t key_hash = 0;
  std::string signature;  // raw bytes after the 4-byte key hash
};

struct Note {
  std::string text;  // up to and including the final '\n' before the blank line
  std::vector<Signature> signatures;
};

// Parses a signed note strictly: text non-empty, ends in '\n', valid UTF-8,
// no control characters other than '\n'; "\n\n" separator; signature lines
// "— <name> <base64(keyhash||sig)>\n" (U+2014, space); at least one.
// The separator is the last "\n\n", so the text may contain blank lines.
// Signature bytes are opaque here (any algorithm, at least 1 byte). The base64
// must be canonical, so text + "\n" + re-encoded lines reproduces `data`.
// Errors are InvalidArgument naming the defect.
StatusOr<Note> ParseNote(std::string_view data);

class Signer {
 public:
  // Parses "PRIVATE+KEY+<name>+<hash>+<key>"; checks the name, the algorithm
  // (Ed25519 only), the seed length and that <hash> (8 lowercase hex digits)
  // matches the derived public key. InvalidArgument otherwise.
  static StatusOr<std::unique_ptr<Signer>> FromPrivateKey(std::string_view skey);
  ~Signer();
  const std::string& name() const { return name_; }
  uint32_t key_hash() const { return key_hash_; }
  // "<name>+<hash %08x>+<base64(0x01 || pubkey32)>".
  std::string VerifierKey() const;
  // Raw 64-byte Ed25519 signature of msg.
  std::string SignRaw(std::string_view msg) const;
  // The 32-byte Ed25519 public key.
  const std::string& public_key() const { return public_key_; }
  // text + "\n" + "— name base64(keyhash||sig)\n". text must end in '\n'.
  StatusOr<std::string> SignNote(std::string_view text) const;

 private:
  Signer() = default;
  std::string name_;
  uint32_t key_hash_ = 0;
  std::string public_key_;
  void* pkey_ = nullptr;  // EVP_PKEY*
};

class Verifier {
 public:
  // Parses "<name>+<hash>+<key>" with the same checks as FromPrivateKey.
  // Other algorithms (ECDSA 0x02, RFC 6962 0x05, ...) are InvalidArgument.
  static StatusOr<std::unique_ptr<Verifier>> FromVerifierKey(std::string_view vkey);
  ~Verifier();
  const std::string& name() const { return name_; }
  uint32_t key_hash() const { return key_hash_; }
  bool VerifyRaw(std::string_view msg, std::string_view sig) const;
  // The key in text form, byte-identical to what FromVerifierKey accepted.
  std::string VerifierKey() const;

 private:
  Verifier() = default;
  std::string name_;
  uint32_t key_hash_ = 0;
  std::string public_key_;
  void* pkey_ = nullptr;  // EVP_PKEY*
};

// Parses `data` and checks that a signature by `verifier` (same name and key
// hash) is present and valid. Returns the note. Signatures by unknown keys are
// ignored, as signed-note requires; an invalid signature by the known key is
// an error. Only the first signature line by the verifier is checked (later
// duplicates are ignored, as in Go). Malformed notes are InvalidArgument; a
// missing ("no signature by <name>") or bad ("invalid signature by <name>")
// signature is Unauthenticated.
StatusOr<Note> OpenNote(std::string_view data, const Verifier& verifier);

}  // namespace annals::note

#endif  // ANNALS_CHECKPOINT_NOTE_H_
