#include "checkpoint/note.h"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <cstdio>
#include <optional>
#include <utility>

#include "common/bytes.h"
#include "common/sha256.h"

namespace annals::note {
namespace {

constexpr size_t kEd25519KeySize = 32;

EVP_PKEY* AsPkey(void* p) { return static_cast<EVP_PKEY*>(p); }

// Decodes one UTF-8 sequence at s[i]. Returns the code point and sets *len, or
// returns -1 for an ill-formed sequence (overlong, surrogate, > U+10FFFF,
// truncated).
int32_t DecodeRune(std::string_view s, size_t i, size_t* len) {
  auto b = [&](size_t k) { return static_cast<unsigned char>(s[i + k]); };
  unsigned char c = b(0);
  if (c < 0x80) {
    *len = 1;
    return c;
  }
  size_t n;
  int32_t r;
  int32_t min;
  if (c >= 0xc2 && c <= 0xdf) {
    n = 2, r = c & 0x1f, min = 0x80;
  } else if (c >= 0xe0 && c <= 0xef) {
    n = 3, r = c & 0x0f, min = 0x800;
  } else if (c >= 0xf0 && c <= 0xf4) {
    n = 4, r = c & 0x07, min = 0x10000;
  } else {
    return -1;
  }
  if (s.size() - i < n) return -1;
  for (size_t k = 1; k < n; ++k) {
    if ((b(k) & 0xc0) != 0x80) return -1;
    r = (r << 6) | (b(k) & 0x3f);
  }
  if (r < min || r > 0x10ffff || (r >= 0xd800 && r <= 0xdfff)) return -1;
  *len = n;
  return r;
}

// Unicode White_Space (what Go's unicode.IsSpace reports).
bool IsUnicodeSpace(int32_t r) {
  switch (r) {
    case '\t':
    case '\n':
    case '\v':
    case '\f':
    case '\r':
    case ' ':
    case 0x85:
    case 0xa0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202f:
    case 0x205f:
    case 0x3000:
      return true;
    default:
      return r >= 0x2000 && r <= 0x200a;
  }
}

// Splits s at the first `sep`: returns the part before, leaves the rest in *s.
// found is false if sep is absent (then the whole of s is returned).
std::string_view Chop(std::string_view* s, char sep, bool* found) {
  size_t i = s->find(sep);
  *found = i != std::string_view::npos;
  if (!*found) {
    std::string_view all = *s;
    *s = {};
    return all;
  }
  std::string_view head = s->substr(0, i);
  s->remove_prefix(i + 1);
  return head;
}

std::optional<uint32_t> ParseKeyHash(std::string_view hex) {
  if (hex.size() != 8) return std::nullopt;
  uint32_t v = 0;
  for (char c : hex) {
    int d;
    if (c >= '0' && c <= '9') {
      d = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      d = c - 'a' + 10;
    } else {
      return std::nullopt;
    }
    v = (v << 4) | static_cast<uint32_t>(d);
  }
  return v;
}

std::string FormatKeyHash(uint32_t h) {
  char buf[9];
  std::snprintf(buf, sizeof(buf), "%08x", h);
  return std::string(buf, 8);
}

struct ParsedKey {
  std::string name;
  uint32_t key_hash = 0;
  std::string key;  // raw key bytes after the algorithm byte
};

// Parses "<name>+<hash>+<base64(alg || key)>" (the tail of both key forms);
// the algorithm byte must be `alg`.
StatusOr<ParsedKey> ParseKeyFields(std::string_view s, std::string_view what, uint8_t alg = kAlgEd25519) {
  bool found = false;
  ParsedKey out;
  std::string_view name = Chop(&s, '+', &found);
  if (!found) return InvalidArgumentError(std::string(what) + ": missing '+' after name");
  std::string_view hash = Chop(&s, '+', &found);
  if (!found) return InvalidArgumentError(std::string(what) + ": missing '+' after key hash");
  if (!ValidKeyName(name)) return InvalidArgumentError(std::string(what) + ": invalid key name");
  std::optional<uint32_t> h = ParseKeyHash(hash);
  if (!h)
    return InvalidArgumentError(std::string(what) + ": key hash is not 8 lowercase hex digits");
  std::optional<std::string> key = Base64Decode(s);
  if (!key || key->empty()) return InvalidArgumentError(std::string(what) + ": bad base64 key");
  if (static_cast<uint8_t>((*key)[0]) != alg) {
    return InvalidArgumentError(std::string(what) + ": unsupported key algorithm " +
                                std::to_string(static_cast<uint8_t>((*key)[0])));
  }
  if (key->size() != 1 + kEd25519KeySize) {
    return InvalidArgumentError(std::string(what) + ": Ed25519 key is not 32 bytes");
  }
  out.name = std::string(name);
  out.key_hash = *h;
  out.key = key->substr(1);
  return out;
}

// Derives the public key of a 32-byte seed; empty on failure.
std::string PublicKeyOf(EVP_PKEY* pkey) {
  std::string pub(kEd25519KeySize, '\0');
  size_t len = pub.size();
  if (EVP_PKEY_get_raw_public_key(pkey, reinterpret_cast<unsigned char*>(pub.data()), &len) != 1 ||
      len != kEd25519KeySize) {
    return {};
  }
  return pub;
}

}  // namespace

std::string VerifierKeyText(std::string_view name, uint32_t hash, std::string_view pub, uint8_t alg) {
  std::string key(1, static_cast<char>(alg));
  key.append(pub);
  return std::string(name) + "+" + FormatKeyHash(hash) + "+" + Base64Encode(key);
}

StatusOr<KeyFields> ParseVerifierKeyFields(std::string_view vkey, uint8_t alg) {
  ASSIGN_OR_RETURN(ParsedKey k, ParseKeyFields(vkey, "verifier key", alg));
  if (KeyHash(k.name, k.key, alg) != k.key_hash) return InvalidArgumentError("verifier key: key hash does not match key");
  return KeyFields{std::move(k.name), k.key_hash, std::move(k.key)};
}

bool ValidKeyName(std::string_view name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size();) {
    size_t len = 0;
    int32_t r = DecodeRune(name, i, &len);
    if (r < 0 || r < 0x20 || r == 0x7f || r == '+' || IsUnicodeSpace(r)) return false;
    i += len;
  }
  return true;
}

uint32_t KeyHash(std::string_view name, std::string_view public_key, uint8_t algorithm) {
  const char alg = static_cast<char>(algorithm);
  Hash h = Sha256Parts({name, "\n", std::string_view(&alg, 1), public_key});
  return GetBigEndian32(reinterpret_cast<const char*>(h.data()));
}

bool ValidNoteText(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    size_t len = 0;
    int32_t r = DecodeRune(s, i, &len);
    if (r < 0 || (r < 0x20 && r != '\n')) return false;
    i += len;
  }
  return true;
}

StatusOr<std::string> GeneratePrivateKey(std::string_view name) {
  if (!ValidKeyName(name)) return InvalidArgumentError("invalid key name");
  std::string seed(kEd25519KeySize, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(seed.data()), static_cast<int>(seed.size())) !=
      1) {
    return InternalError("RAND_bytes failed");
  }
  EVP_PKEY* pkey = EVP_PKEY_new_raw_private_key(
      EVP_PKEY_ED25519, nullptr, reinterpret_cast<const unsigned char*>(seed.data()), seed.size());
  if (pkey == nullptr) return InternalError("cannot create Ed25519 key");
  std::string pub = PublicKeyOf(pkey);
  EVP_PKEY_free(pkey);
  if (pub.empty()) return InternalError("cannot derive Ed25519 public key");
  std::string key(1, static_cast<char>(kAlgEd25519));
  key.append(seed);
  return "PRIVATE+KEY+" + std::string(name) + "+" + FormatKeyHash(KeyHash(name, pub)) + "+" +
         Base64Encode(key);
}

StatusOr<Note> ParseNote(std::string_view data) {
  if (data.size() > kMaxNoteSize) return InvalidArgumentError("note: larger than 1 MiB");
  if (!ValidNoteText(data)) {
    return InvalidArgumentError("note: invalid UTF-8 or control character");
  }
  size_t split = data.rfind("\n\n");
  if (split == std::string_view::npos) {
    return InvalidArgumentError("note: missing blank line before signatures");
  }
  Note note;
  note.text = std::string(data.substr(0, split + 1));
  std::string_view sigs = data.substr(split + 2);
  if (sigs.empty()) return InvalidArgumentError("note: no signatures");
  if (sigs.back() != '\n') {
    return InvalidArgumentError("note: signature block does not end in newline");
  }
  while (!sigs.empty()) {
    size_t nl = sigs.find('\n');  // always found: sigs ends in '\n'
    std::string_view line = sigs.substr(0, nl);
    sigs.remove_prefix(nl + 1);
    if (note.signatures.size() == kMaxSignatures) {
      return InvalidArgumentError("note: more than 100 signatures");
    }
    if (!line.starts_with(kSigPrefix)) {
      return InvalidArgumentError(
          "note: signature line does not start with em dash (U+2014) and space");
    }
    line.remove_prefix(kSigPrefix.size());
    bool found = false;
    std::string_view name = Chop(&line, ' ', &found);
    if (!found) return InvalidArgumentError("note: signature line has no space after name");
    if (!ValidKeyName(name)) return InvalidArgumentError("note: invalid signature key name");
    std::optional<std::string> raw = Base64Decode(line);
    if (!raw) return InvalidArgumentError("note: bad signature base64");
    if (raw->size() < 5) return InvalidArgumentError("note: signature too short");
    Signature sig;
    sig.name = std::string(name);
    sig.key_hash = GetBigEndian32(raw->data());
    sig.signature = raw->substr(4);
    note.signatures.push_back(std::move(sig));
  }
  return note;
}

// ---------------------------------------------------------------- Signer

StatusOr<std::unique_ptr<Signer>> Signer::FromPrivateKey(std::string_view skey) {
  constexpr std::string_view kPrefix = "PRIVATE+KEY+";
  if (!skey.starts_with(kPrefix)) {
    return InvalidArgumentError("private key: missing PRIVATE+KEY+ prefix");
  }
  ASSIGN_OR_RETURN(ParsedKey k, ParseKeyFields(skey.substr(kPrefix.size()), "private key"));
  EVP_PKEY* pkey = EVP_PKEY_new_raw_private_key(
      EVP_PKEY_ED25519, nullptr, reinterpret_cast<const unsigned char*>(k.key.data()),
      k.key.size());
  if (pkey == nullptr) return InternalError("private key: cannot create Ed25519 key");
  std::unique_ptr<Signer> s(new Signer());
  s->pkey_ = pkey;  // owned by s from here on
  s->public_key_ = PublicKeyOf(pkey);
  if (s->public_key_.empty()) return InternalError("private key: cannot derive public key");
  if (KeyHash(k.name, s->public_key_) != k.key_hash) {
    return InvalidArgumentError("private key: key hash does not match key");
  }
  s->name_ = std::move(k.name);
  s->key_hash_ = k.key_hash;
  return s;
}

Signer::~Signer() { EVP_PKEY_free(AsPkey(pkey_)); }

std::string Signer::VerifierKey() const { return VerifierKeyText(name_, key_hash_, public_key_); }

std::string Signer::SignRaw(std::string_view msg) const {
  std::string sig(kEd25519SignatureSize, '\0');
  size_t len = sig.size();
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  bool ok = ctx != nullptr &&
            EVP_DigestSignInit(ctx, nullptr, nullptr, nullptr, AsPkey(pkey_)) == 1 &&
            EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len,
                           reinterpret_cast<const unsigned char*>(msg.data()), msg.size()) == 1 &&
            len == kEd25519SignatureSize;
  EVP_MD_CTX_free(ctx);
  return ok ? sig : std::string();
}

StatusOr<std::string> Signer::SignNote(std::string_view text) const {
  if (text.empty() || text.back() != '\n') {
    return InvalidArgumentError("note text must be non-empty and end in newline");
  }
  if (!ValidNoteText(text)) {
    return InvalidArgumentError("note text: invalid UTF-8 or control character");
  }
  if (text.size() > kMaxNoteSize) return InvalidArgumentError("note text: larger than 1 MiB");
  std::string sig = SignRaw(text);
  if (sig.empty()) return InternalError("Ed25519 signing failed");
  std::string blob;
  PutBigEndian32(&blob, key_hash_);
  blob.append(sig);
  std::string out(text);
  out += "\n";
  out += kSigPrefix;
  out += name_;
  out += " ";
  out += Base64Encode(blob);
  out += "\n";
  return out;
}

// -------------------------------------------------------------- Verifier

StatusOr<std::unique_ptr<Verifier>> Verifier::FromVerifierKey(std::string_view vkey) {
  ASSIGN_OR_RETURN(ParsedKey k, ParseKeyFields(vkey, "verifier key"));
  if (KeyHash(k.name, k.key) != k.key_hash) {
    return InvalidArgumentError("verifier key: key hash does not match key");
  }
  EVP_PKEY* pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr,
                                               reinterpret_cast<const unsigned char*>(k.key.data()),
                                               k.key.size());
  if (pkey == nullptr) return InvalidArgumentError("verifier key: invalid Ed25519 public key");
  std::unique_ptr<Verifier> v(new Verifier());
  v->pkey_ = pkey;
  v->name_ = std::move(k.name);
  v->key_hash_ = k.key_hash;
  v->public_key_ = std::move(k.key);
  return v;
}

Verifier::~Verifier() { EVP_PKEY_free(AsPkey(pkey_)); }

std::string Verifier::VerifierKey() const { return VerifierKeyText(name_, key_hash_, public_key_); }

bool Verifier::VerifyRaw(std::string_view msg, std::string_view sig) const {
  if (sig.size() != kEd25519SignatureSize) return false;
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  bool ok = ctx != nullptr &&
            EVP_DigestVerifyInit(ctx, nullptr, nullptr, nullptr, AsPkey(pkey_)) == 1 &&
            EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                             reinterpret_cast<const unsigned char*>(msg.data()), msg.size()) == 1;
  EVP_MD_CTX_free(ctx);
  return ok;
}

StatusOr<Note> OpenNote(std::string_view data, const Verifier& verifier) {
  ASSIGN_OR_RETURN(Note note, ParseNote(data));
  for (const Signature& sig : note.signatures) {
    if (sig.name != verifier.name() || sig.key_hash != verifier.key_hash()) continue;
    if (!verifier.VerifyRaw(note.text, sig.signature)) {
      return UnauthenticatedError("invalid signature by " + verifier.name());
    }
    return note;
  }
  return UnauthenticatedError("no signature by " + verifier.name());
}

}  // namespace annals::note
