#include "checkpoint/cosignature.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/bytes.h"
#include "common/sha256.h"

namespace annals::note {
namespace {

namespace fs = std::filesystem;

const fs::path kCorpus = fs::path(ANNALS_CORPUS_DIR) / "notes-checkpoints";
constexpr std::string_view kDash = "\xe2\x80\x94 ";
constexpr std::string_view kCheckpoint =
    "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::unique_ptr<Cosigner> NewCosigner(const std::string& name) {
  auto skey = GeneratePrivateKey(name);
  EXPECT_TRUE(skey.ok());
  auto c = Cosigner::FromPrivateKey(*skey);
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return std::move(*c);
}

// The C2SP spec's example checkpoint (from the corpus) carries a witness
// cosignature: its layout is the spec's (key ID, the time of the spec's
// example message, 64 signature bytes). No key was published to verify it.
TEST(Cosignature, TheSpecsExampleParses) {
  nlohmann::json vectors = nlohmann::json::parse(ReadFile(kCorpus / "signed-note-vectors.json"))["vectors"];
  std::string text;
  for (const auto& v : vectors)
    if (v["id"] == "c2sp-tlog-cosignature-example") text = v["note"];
  ASSERT_FALSE(text.empty());
  auto note = ParseNote(text);
  ASSERT_TRUE(note.ok()) << note.status().ToString();
  EXPECT_EQ(note->text, kCheckpoint);
  ASSERT_EQ(note->signatures.size(), 2u);
  const Signature& w = note->signatures[1];
  EXPECT_EQ(w.name, "witness.example.com/w1");
  EXPECT_EQ(w.key_hash, 0x8d66cf3fu);
  auto c = ParseCosignature(w.signature);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->timestamp, 1679315147u);  // the spec's "time 1679315147"
  EXPECT_EQ(c->signature.size(), 64u);
  // The log's own signature is a plain note signature, not a cosignature.
  EXPECT_FALSE(ParseCosignature(note->signatures[0].signature).ok());
}

// A real cosigner's key, given both as a vkey and in hex (Sigsum policy
// form): the key ID is SHA-256(name, "\n", 0x04, key)[:4].
TEST(Cosignature, KeyIdOfARealWitnessKey) {
  auto v = CosignatureVerifier::FromVerifierKey("remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2");
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(v.value()->key_hash(), 0xda77ade7u);
  auto key = HexDecode("ebcdeb78e7fdb2ef9227b2c1ef11e94600b55b4d6d9a57877e31ee89e59adc36");
  ASSERT_TRUE(key.has_value());
  EXPECT_EQ(KeyHash("remora.n621.de", *key, kAlgCosignatureV1), 0xda77ade7u);
  // Computed independently of KeyHash.
  const char alg = 0x04;
  Hash h = Sha256("remora.n621.de\n" + std::string(1, alg) + *key);
  EXPECT_EQ(GetBigEndian32(reinterpret_cast<const char*>(h.data())), 0xda77ade7u);
  EXPECT_EQ(v.value()->VerifierKey(), "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2");
}

TEST(Cosignature, CosignThenVerify) {
  auto cosigner = NewCosigner("witness.example/w1");
  const std::string vkey = cosigner->VerifierKey();
  EXPECT_TRUE(vkey.starts_with("witness.example/w1+"));
  auto verifier = CosignatureVerifier::FromVerifierKey(vkey);
  ASSERT_TRUE(verifier.ok()) << verifier.status().ToString();
  auto line = cosigner->Cosign(kCheckpoint, 1679315147);
  ASSERT_TRUE(line.ok()) << line.status().ToString();
  ASSERT_TRUE(line->starts_with(std::string(kDash) + "witness.example/w1 "));
  // The blob, read independently: key ID, timestamp, and an Ed25519
  // signature of exactly the spec's message.
  auto blob = Base64Decode(line->substr(kDash.size() + 19, line->size() - kDash.size() - 19 - 1));
  ASSERT_TRUE(blob.has_value());
  ASSERT_EQ(blob->size(), 76u);
  EXPECT_EQ(GetBigEndian32(blob->data()), cosigner->key_hash());
  EXPECT_EQ(GetBigEndian64(blob->data() + 4), 1679315147u);
  const std::string message = std::string("cosignature/v1\ntime 1679315147\n") + std::string(kCheckpoint);
  EXPECT_EQ(CosignedMessage(kCheckpoint, 1679315147), message);
  // The public key from the vkey's last field (0x04, then 32 bytes), as a
  // plain Ed25519 verifier: the signature is over exactly that message.
  // (name+ID+key: the key's base64 may itself hold '+'.)
  auto raw = Base64Decode(vkey.substr(vkey.find('+', vkey.find('+') + 1) + 1));
  ASSERT_TRUE(raw.has_value());
  ASSERT_EQ(raw->size(), 33u);
  EXPECT_EQ((*raw)[0], '\x04');
  const std::string pub = raw->substr(1);
  auto ed25519 = Verifier::FromVerifierKey(VerifierKeyText(cosigner->name(), KeyHash(cosigner->name(), pub), pub));
  ASSERT_TRUE(ed25519.ok()) << ed25519.status().ToString();
  EXPECT_TRUE((*ed25519)->VerifyRaw(message, blob->substr(12)));
  EXPECT_FALSE((*ed25519)->VerifyRaw(std::string(kCheckpoint), blob->substr(12)));
  auto& ed = *verifier;
  // Appended to a signed checkpoint, the cosignature verifies and gives its time.
  auto log = GeneratePrivateKey("example.com/behind-the-sofa");
  auto log_signer = Signer::FromPrivateKey(*log);
  auto signed_cp = (*log_signer)->SignNote(kCheckpoint);
  ASSERT_TRUE(signed_cp.ok());
  auto note = ParseNote(*signed_cp + *line);
  ASSERT_TRUE(note.ok()) << note.status().ToString();
  auto t = ed->Verify(*note);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(*t, 1679315147u);
  // Not on another checkpoint, nor with another time in the line.
  std::string other(*signed_cp);
  other.replace(other.find("20852163"), 8, "20852164");
  auto moved = ParseNote(other.substr(0, other.find("\n\n") + 2) + *line);
  ASSERT_TRUE(moved.ok());
  EXPECT_EQ(ed->Verify(*moved).status().code(), StatusCode::kUnauthenticated);
  std::string retimed_blob = *blob;
  retimed_blob[11] ^= 1;
  auto retimed = ParseNote(*signed_cp + std::string(kDash) + "witness.example/w1 " + Base64Encode(retimed_blob) + "\n");
  ASSERT_TRUE(retimed.ok());
  EXPECT_EQ(ed->Verify(*retimed).status().code(), StatusCode::kUnauthenticated);
  // A note without this cosigner's line: NotFound; another key's line of the same name is ignored.
  EXPECT_EQ(ed->Verify(*ParseNote(*signed_cp)).status().code(), StatusCode::kNotFound);
  auto impostor = NewCosigner("witness.example/w1");
  auto forged = ParseNote(*signed_cp + *impostor->Cosign(kCheckpoint, 1679315147));
  ASSERT_TRUE(forged.ok());
  EXPECT_EQ(ed->Verify(*forged).status().code(), StatusCode::kNotFound);
}

TEST(Cosignature, MalformedInputsAreRefused) {
  // Lengths other than 72 after the key ID.
  for (size_t n : {0u, 64u, 71u, 73u, 200u})
    EXPECT_EQ(ParseCosignature(std::string(n, 'x')).status().code(), StatusCode::kInvalidArgument) << n;
  // A timestamp above 2^63 - 1.
  std::string high(72, '\0');
  high[0] = '\x80';
  EXPECT_FALSE(ParseCosignature(high).ok());
  // Verifier keys: a note-signature (0x01) key, a wrong key ID, a short key.
  EXPECT_FALSE(CosignatureVerifier::FromVerifierKey("PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW").ok());
  EXPECT_FALSE(CosignatureVerifier::FromVerifierKey("remora.n621.de+da77ade8+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2").ok());
  EXPECT_FALSE(CosignatureVerifier::FromVerifierKey("remora.n621.de+da77ade7+BOvN63jn").ok());
  EXPECT_FALSE(CosignatureVerifier::FromVerifierKey("").ok());
  // Cosigning something that is not note text, or at a time out of range.
  auto c = NewCosigner("w");
  EXPECT_FALSE(c->Cosign("no final newline", 1).ok());
  EXPECT_FALSE(c->Cosign("", 1).ok());
  EXPECT_FALSE(c->Cosign("a\x01\n", 1).ok());
  EXPECT_FALSE(c->Cosign(kCheckpoint, uint64_t{1} << 63).ok());
  // A malformed line by the known key fails (it is not skipped).
  auto v = CosignatureVerifier::FromVerifierKey(c->VerifierKey());
  std::string bad_blob;
  PutBigEndian32(&bad_blob, c->key_hash());
  bad_blob += std::string(10, 'x');
  auto note = ParseNote(std::string(kCheckpoint) + "\n" + std::string(kDash) + "w " + Base64Encode(bad_blob) + "\n");
  ASSERT_TRUE(note.ok()) << note.status().ToString();
  EXPECT_EQ((*v)->Verify(*note).status().code(), StatusCode::kUnauthenticated);
}

}  // namespace
}  // namespace annals::note
