#include "checkpoint/note.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "checkpoint/checkpoint.h"
#include "common/bytes.h"

namespace annals::note {
namespace {

namespace fs = std::filesystem;

const fs::path kCorpus = fs::path(ANNALS_CORPUS_DIR) / "notes-checkpoints";
constexpr std::string_view kDash = "\xe2\x80\x94";

// Vectors from golang.org/x/mod/sumdb/note (also in signed-note-vectors.json).
constexpr std::string_view kPeterSkey =
    "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
constexpr std::string_view kPeterVkey =
    "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
constexpr std::string_view kPeterText =
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n";

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

nlohmann::json LoadVectors() {
  return nlohmann::json::parse(ReadFile(kCorpus / "signed-note-vectors.json"))["vectors"];
}

std::unique_ptr<Verifier> MustVerifier(std::string_view vkey) {
  auto v = Verifier::FromVerifierKey(vkey);
  EXPECT_TRUE(v.ok()) << vkey << ": " << v.status().ToString();
  return v.ok() ? std::move(*v) : nullptr;
}

std::unique_ptr<Signer> MustSigner(std::string_view skey) {
  auto s = Signer::FromPrivateKey(skey);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return s.ok() ? std::move(*s) : nullptr;
}

// Rebuilds a note from its parts, as the fuzzer does.
std::string Serialize(const Note& n) {
  std::string out = n.text + "\n";
  for (const Signature& s : n.signatures) {
    std::string blob;
    PutBigEndian32(&blob, s.key_hash);
    blob += s.signature;
    out += std::string(kDash) + " " + s.name + " " + Base64Encode(blob) + "\n";
  }
  return out;
}

std::string SigLine(std::string_view name, uint32_t hash, std::string_view sig) {
  std::string blob;
  PutBigEndian32(&blob, hash);
  blob += sig;
  return std::string(kDash) + " " + std::string(name) + " " + Base64Encode(blob) + "\n";
}

// Algorithm byte of a verifier key "<name>+<hash>+<base64>".
int KeyAlgorithm(const std::string& vkey) {
  size_t p = vkey.find('+', vkey.find('+') + 1);
  auto key = Base64Decode(std::string_view(vkey).substr(p + 1));
  return key && !key->empty() ? static_cast<uint8_t>((*key)[0]) : -1;
}

void ExpectInvalid(std::string_view data, std::string_view why) {
  auto n = ParseNote(data);
  ASSERT_FALSE(n.ok()) << why;
  EXPECT_EQ(n.status().code(), StatusCode::kInvalidArgument) << why;
}

// ------------------------------------------------------------ public vectors

TEST(NoteVectorsTest, EveryVectorParsesOrVerifiesAsRecorded) {
  nlohmann::json vectors = LoadVectors();
  ASSERT_GE(vectors.size(), 10u);
  int verified = 0, rejected = 0, unsupported = 0;
  for (const auto& v : vectors) {
    SCOPED_TRACE(v["id"].get<std::string>());
    const std::string data = v["note"];
    if (data.find("\n\n") == std::string::npos) {
      // An unsigned checkpoint body: not a note, but a valid checkpoint.
      EXPECT_FALSE(ParseNote(data).ok());
      EXPECT_TRUE(checkpoint::Parse(data).ok());
      continue;
    }
    auto note = ParseNote(data);
    ASSERT_TRUE(note.ok()) << note.status().ToString();
    EXPECT_EQ(Serialize(*note), data);

    std::vector<std::string> vkeys;
    if (v["vkey"].is_string()) vkeys.push_back(v["vkey"]);
    if (v["vkey"].is_array()) vkeys = v["vkey"].get<std::vector<std::string>>();
    for (const std::string& vkey : vkeys) {
      SCOPED_TRACE(vkey);
      auto verifier = Verifier::FromVerifierKey(vkey);
      if (KeyAlgorithm(vkey) != kAlgEd25519) {
        // ECDSA (0x02) and RFC 6962 (0x05) keys are outside our scope.
        ASSERT_FALSE(verifier.ok());
        EXPECT_NE(verifier.status().message().find("unsupported key algorithm"), std::string::npos);
        ++unsupported;
        continue;
      }
      ASSERT_TRUE(verifier.ok()) << verifier.status().ToString();
      EXPECT_EQ((*verifier)->VerifierKey(), vkey);
      EXPECT_EQ((*verifier)->key_hash(),
                std::stoul(vkey.substr(vkey.find('+') + 1, 8), nullptr, 16));
      const auto& expected = v["per_key_results"][(*verifier)->name()];
      auto opened = OpenNote(data, **verifier);
      if (expected.is_boolean() && expected.get<bool>()) {
        EXPECT_TRUE(opened.ok()) << opened.status().ToString();
        if (opened.ok()) {
          EXPECT_EQ(opened->text, note->text);
        }
        ++verified;
      } else {
        EXPECT_FALSE(opened.ok());
        ++rejected;
      }
    }
  }
  // Keeps the loop honest: the corpus has these many of each.
  EXPECT_EQ(verified, 9);
  EXPECT_EQ(rejected, 2);
  EXPECT_EQ(unsupported, 3);
}

TEST(NoteVectorsTest, GoPrivateKeyReproducesPublishedSignatureExactly) {
  for (const auto& v : LoadVectors()) {
    if (!v.contains("skey_test_only")) continue;
    auto signer = MustSigner(v["skey_test_only"].get<std::string>());
    ASSERT_NE(signer, nullptr);
    EXPECT_EQ(signer->VerifierKey(), v["vkey"].get<std::string>());
    const std::string data = v["note"];
    auto note = ParseNote(data);
    ASSERT_TRUE(note.ok());
    auto signed_note = signer->SignNote(note->text);
    ASSERT_TRUE(signed_note.ok());
    EXPECT_EQ(*signed_note, data);  // Ed25519 is deterministic
    return;
  }
  FAIL() << "no vector with skey_test_only";
}

TEST(NoteVectorsTest, KeyHashMatchesPublishedKeys) {
  auto pub = Base64Decode("ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW");
  ASSERT_TRUE(pub.has_value());
  EXPECT_EQ(KeyHash("PeterNeumann", pub->substr(1)), 0xc74f20a3u);
  auto sumdb = Base64Decode("Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8");
  ASSERT_TRUE(sumdb.has_value());
  EXPECT_EQ(KeyHash("sum.golang.org", sumdb->substr(1)), 0x033de0aeu);
}

TEST(NoteVectorsTest, MismatchedVerifierErrorsNameTheKey) {
  auto peter = MustVerifier(kPeterVkey);
  std::map<std::string, std::string> errors;
  for (const auto& v : LoadVectors()) {
    auto r = OpenNote(v["note"].get<std::string>(), *peter);
    if (!r.ok()) errors[v["id"]] = r.status().message();
  }
  EXPECT_EQ(errors["golang-note-enoch-only-vkey-peter"], "no signature by PeterNeumann");
  EXPECT_EQ(errors["golang-note-corrupted-signature"], "invalid signature by PeterNeumann");
}

void CheckLogDir(const std::string& log) {
  SCOPED_TRACE(log);
  std::string vkey = ReadFile(kCorpus / (log + ".vkey"));
  while (!vkey.empty() && vkey.back() == '\n') vkey.pop_back();
  auto verifier = MustVerifier(vkey);
  ASSERT_NE(verifier, nullptr);
  EXPECT_EQ(verifier->VerifierKey(), vkey);
  int count = 0;
  uint64_t max_size = 0;
  std::optional<uint64_t> latest;
  for (const auto& entry : fs::directory_iterator(kCorpus / log)) {
    std::string file = entry.path().filename().string();
    if (!file.starts_with("checkpoint")) continue;
    SCOPED_TRACE(file);
    std::string data = ReadFile(entry.path());
    auto note = OpenNote(data, *verifier);
    ASSERT_TRUE(note.ok()) << note.status().ToString();
    EXPECT_EQ(Serialize(*note), data);
    auto cp = checkpoint::Parse(note->text);
    ASSERT_TRUE(cp.ok()) << cp.status().ToString();
    EXPECT_EQ(cp->Marshal(), note->text);
    if (file == "checkpoint") {
      latest = cp->size;
    } else {
      EXPECT_EQ(std::to_string(cp->size), file.substr(strlen("checkpoint.")));
    }
    max_size = std::max(max_size, cp->size);
    ++count;
  }
  EXPECT_EQ(count, 17);
  ASSERT_TRUE(latest.has_value());
  EXPECT_EQ(*latest, max_size);
}

TEST(NoteVectorsTest, TesseraTestdataCheckpointsVerify) { CheckLogDir("tessera-testdata-log"); }

TEST(NoteVectorsTest, ServerlessTestdataCheckpointsVerify) {
  CheckLogDir("serverless-log-testdata-log");
}

// -------------------------------------------------------- sign and verify

TEST(SignerTest, GeneratedKeySignsAndOwnVerifierAccepts) {
  auto skey = GeneratePrivateKey("example.com/annals");
  ASSERT_TRUE(skey.ok());
  EXPECT_TRUE(skey->starts_with("PRIVATE+KEY+example.com/annals+"));
  auto signer = MustSigner(*skey);
  ASSERT_NE(signer, nullptr);
  EXPECT_EQ(signer->name(), "example.com/annals");
  auto verifier = MustVerifier(signer->VerifierKey());
  ASSERT_NE(verifier, nullptr);
  EXPECT_EQ(verifier->key_hash(), signer->key_hash());

  const std::string text = "origin\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n";
  auto data = signer->SignNote(text);
  ASSERT_TRUE(data.ok());
  auto note = OpenNote(*data, *verifier);
  ASSERT_TRUE(note.ok()) << note.status().ToString();
  EXPECT_EQ(note->text, text);
  ASSERT_EQ(note->signatures.size(), 1u);
  EXPECT_EQ(note->signatures[0].key_hash, signer->key_hash());
  EXPECT_TRUE(verifier->VerifyRaw("msg", signer->SignRaw("msg")));
  EXPECT_FALSE(verifier->VerifyRaw("msh", signer->SignRaw("msg")));
}

TEST(SignerTest, TwoGeneratedKeysDiffer) {
  auto a = GeneratePrivateKey("k");
  auto b = GeneratePrivateKey("k");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(*a, *b);
}

TEST(SignerTest, TamperedTextFailsVerification) {
  auto signer = MustSigner(kPeterSkey);
  auto verifier = MustVerifier(kPeterVkey);
  auto data = signer->SignNote(kPeterText);
  ASSERT_TRUE(data.ok());
  std::string tampered = *data;
  tampered[3] ^= 0x01;
  auto r = OpenNote(tampered, *verifier);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(r.status().message(), "invalid signature by PeterNeumann");
}

TEST(SignerTest, TamperedSignatureFailsVerification) {
  auto signer = MustSigner(kPeterSkey);
  auto verifier = MustVerifier(kPeterVkey);
  std::string sig = signer->SignRaw(kPeterText);
  ASSERT_EQ(sig.size(), kEd25519SignatureSize);
  sig[10] ^= 0x40;
  std::string data = std::string(kPeterText) + "\n" + SigLine("PeterNeumann", 0xc74f20a3, sig);
  EXPECT_FALSE(OpenNote(data, *verifier).ok());
  // A truncated signature is well-formed but cannot verify.
  data = std::string(kPeterText) + "\n" + SigLine("PeterNeumann", 0xc74f20a3, sig.substr(0, 63));
  EXPECT_TRUE(ParseNote(data).ok());
  EXPECT_FALSE(OpenNote(data, *verifier).ok());
}

TEST(SignerTest, SignatureWithOtherKeyHashIsIgnored) {
  auto signer = MustSigner(kPeterSkey);
  auto verifier = MustVerifier(kPeterVkey);
  std::string sig = signer->SignRaw(kPeterText);
  std::string data = std::string(kPeterText) + "\n" + SigLine("PeterNeumann", 0xc74f20a4, sig);
  auto r = OpenNote(data, *verifier);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "no signature by PeterNeumann");
}

TEST(SignerTest, UnknownSignaturesBeforeKnownOneAreIgnored) {
  auto signer = MustSigner(kPeterSkey);
  auto verifier = MustVerifier(kPeterVkey);
  std::string data = std::string(kPeterText) + "\n" + SigLine("other", 1, "junk") +
                     SigLine("PeterNeumann", 0xc74f20a3, signer->SignRaw(kPeterText));
  auto r = OpenNote(data, *verifier);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->signatures.size(), 2u);
}

TEST(SignerTest, TextWithBlankLinesRoundTrips) {
  auto signer = MustSigner(kPeterSkey);
  auto verifier = MustVerifier(kPeterVkey);
  const std::string text = "a\n\nb\n\n";
  auto data = signer->SignNote(text);
  ASSERT_TRUE(data.ok());
  auto r = OpenNote(*data, *verifier);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->text, text);
}

TEST(SignerTest, SignNoteRejectsBadText) {
  auto signer = MustSigner(kPeterSkey);
  EXPECT_FALSE(signer->SignNote("").ok());
  EXPECT_FALSE(signer->SignNote("no newline").ok());
  EXPECT_FALSE(signer->SignNote("tab\there\n").ok());
  EXPECT_FALSE(signer->SignNote("bad \xff utf8\n").ok());
}

// ------------------------------------------------------------- key parsing

TEST(KeyTest, ValidKeyNameFollowsSignedNoteRules) {
  EXPECT_TRUE(ValidKeyName("example.com/log"));
  EXPECT_TRUE(ValidKeyName("caf\xc3\xa9"));
  EXPECT_FALSE(ValidKeyName(""));
  EXPECT_FALSE(ValidKeyName("a b"));
  EXPECT_FALSE(ValidKeyName("a+b"));
  EXPECT_FALSE(ValidKeyName("a\tb"));
  EXPECT_FALSE(
      ValidKeyName("a\xc2\xa0"
                   "b"));  // U+00A0 no-break space
  EXPECT_FALSE(
      ValidKeyName("a\xe3\x80\x80"
                   "b"));  // U+3000 ideographic space
  EXPECT_FALSE(
      ValidKeyName("a\xe2\x80\x89"
                   "b"));  // U+2009 thin space
  EXPECT_FALSE(ValidKeyName("a\xff"));
}

TEST(KeyTest, GeneratePrivateKeyRejectsBadName) {
  EXPECT_FALSE(GeneratePrivateKey("bad name").ok());
  EXPECT_FALSE(GeneratePrivateKey("").ok());
}

TEST(KeyTest, MalformedPrivateKeysAreRejected) {
  const std::string good(kPeterSkey);
  ASSERT_NE(MustSigner(good), nullptr);
  const std::vector<std::string> bad = {
      "",
      "PRIVATE+KEY+",
      good.substr(12),                                         // no prefix
      "private+key+" + good.substr(12),                        // wrong case
      "PRIVATE+KEY+PeterNeumann+c74f20a4+" + good.substr(34),  // hash mismatch
      "PRIVATE+KEY+PeterNeumann+C74F20A3+" + good.substr(34),  // uppercase hex
      "PRIVATE+KEY+PeterNeumann+c74f20a+" + good.substr(34),   // 7 hex digits
      "PRIVATE+KEY+Peter+Neumann+c74f20a3+" + good.substr(34),
      "PRIVATE+KEY+PeterNeumann+c74f20a3",
      "PRIVATE+KEY+PeterNeumann+c74f20a3+",
      good + "=",                       // bad base64
      good.substr(0, good.size() - 4),  // 29-byte seed
      "PRIVATE+KEY+PeterNeumann+c74f20a3+" +
          Base64Encode(std::string("\x02") + std::string(32, 'x')),
  };
  for (const std::string& skey : bad) {
    auto s = Signer::FromPrivateKey(skey);
    ASSERT_FALSE(s.ok()) << skey;
    EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument) << skey;
  }
}

TEST(KeyTest, MalformedVerifierKeysAreRejected) {
  const std::string good(kPeterVkey);
  const std::string key = good.substr(22);
  ASSERT_EQ(good.substr(0, 22), "PeterNeumann+c74f20a3+");
  auto raw = Base64Decode(key);
  ASSERT_TRUE(raw.has_value());
  std::string alg2 = *raw;
  alg2[0] = 0x02;
  const std::vector<std::string> bad = {
      "",
      "PeterNeumann",
      "PeterNeumann+c74f20a3",
      "PeterNeumann+c74f20a3+",
      "EnochRoot+c74f20a3+" + key,      // hash does not match name
      "PeterNeumann+c74f20a4+" + key,   // hash does not match key
      "PeterNeumann+C74F20A3+" + key,   // uppercase hex
      "PeterNeumann+0c74f20a3+" + key,  // 9 hex digits
      "Peter Neumann+c74f20a3+" + key,
      "PeterNeumann+c74f20a3+" + key.substr(4),
      "PeterNeumann+c74f20a3+" + Base64Encode(alg2),
      "PeterNeumann+c74f20a3+" + Base64Encode(*raw + "x"),
      "PeterNeumann+c74f20a3+" + key + "\n",
  };
  for (const std::string& vkey : bad) {
    auto v = Verifier::FromVerifierKey(vkey);
    ASSERT_FALSE(v.ok()) << vkey;
    EXPECT_EQ(v.status().code(), StatusCode::kInvalidArgument) << vkey;
  }
}

// ---------------------------------------------------------- note parsing

class MalformedNoteTest : public ::testing::Test {
 protected:
  std::string sig_ = SigLine("k", 0x01020304, std::string(64, 's'));
};

TEST_F(MalformedNoteTest, WellFormedBaseCaseParses) {
  auto n = ParseNote("hello\n\n" + sig_);
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(n->text, "hello\n");
  ASSERT_EQ(n->signatures.size(), 1u);
  EXPECT_EQ(n->signatures[0].name, "k");
  EXPECT_EQ(n->signatures[0].key_hash, 0x01020304u);
  EXPECT_EQ(n->signatures[0].signature, std::string(64, 's'));
}

TEST_F(MalformedNoteTest, MissingBlankLine) { ExpectInvalid("hello\n" + sig_, "no blank line"); }
TEST_F(MalformedNoteTest, Empty) { ExpectInvalid("", "empty"); }
TEST_F(MalformedNoteTest, NoSignatures) { ExpectInvalid("hello\n\n", "no signatures"); }
TEST_F(MalformedNoteTest, OnlySignatures) { ExpectInvalid(sig_, "no text"); }

TEST_F(MalformedNoteTest, TrailingGarbageAfterSignatures) {
  ExpectInvalid("hello\n\n" + sig_ + "x", "no final newline");
  ExpectInvalid("hello\n\n" + sig_ + "garbage\n", "non-signature line");
  ExpectInvalid("hello\n\n" + sig_.substr(0, sig_.size() - 1), "unterminated");
}

TEST_F(MalformedNoteTest, WrongDash) {
  std::string rest = sig_.substr(kDash.size());
  ExpectInvalid("hello\n\n-" + rest, "hyphen");
  ExpectInvalid("hello\n\n--" + rest, "two hyphens");
  ExpectInvalid("hello\n\n\xe2\x80\x93" + rest, "en dash");
  ExpectInvalid("hello\n\n" + std::string(kDash) + rest.substr(1), "no space after dash");
  ExpectInvalid("hello\n\n " + sig_, "leading space");
}

TEST_F(MalformedNoteTest, BadBase64) {
  std::string line = sig_.substr(0, sig_.size() - 1);
  ExpectInvalid("hello\n\n" + line + "=\n", "bad padding");
  ExpectInvalid("hello\n\n" + std::string(kDash) + " k AAAA!AAA\n", "bad char");
  ExpectInvalid("hello\n\n" + std::string(kDash) + " k \n", "empty base64");
  ExpectInvalid("hello\n\n" + std::string(kDash) + " k\n", "no base64");
  ExpectInvalid("hello\n\n" + std::string(kDash) + " k AAAAAB==\n", "non-canonical");
  ExpectInvalid("hello\n\n" + std::string(kDash) + " k AAAAAA==\n", "only 4 bytes");
  ExpectInvalid("hello\n\n" + std::string(kDash) + "  k AAAAAAA=\n", "double space");
  ExpectInvalid("hello\n\n" + std::string(kDash) + " k  AAAAAAA=\n", "double space 2");
  ExpectInvalid("hello\n\n" + std::string(kDash) + " k AAAAAAA= \n", "trailing space");
  ExpectInvalid("hello\n\n" + std::string(kDash) + " k+1 AAAAAAA=\n", "plus in name");
  EXPECT_TRUE(ParseNote("hello\n\n" + std::string(kDash) + " k AAAAAAA=\n").ok());
}

TEST_F(MalformedNoteTest, ControlCharacters) {
  ExpectInvalid("hel\tlo\n\n" + sig_, "tab");
  ExpectInvalid("hello\r\n\n" + sig_, "CR");
  ExpectInvalid(std::string("hel\0lo\n\n", 9) + sig_, "NUL");
  ExpectInvalid("hel\x1blo\n\n" + sig_, "ESC");
  ExpectInvalid("hello\n\n" + sig_.substr(0, sig_.size() - 1) + "\r\n", "CRLF");
}

TEST_F(MalformedNoteTest, InvalidUtf8) {
  ExpectInvalid("hel\xfflo\n\n" + sig_, "0xff");
  ExpectInvalid("hel\xc0\xafo\n\n" + sig_, "overlong");
  ExpectInvalid("hel\xed\xa0\x80o\n\n" + sig_, "surrogate");
  ExpectInvalid("hel\xf4\x90\x80\x80o\n\n" + sig_, "past U+10FFFF");
  ExpectInvalid("hel\xe2\x80o\n\n" + sig_, "truncated");
  ExpectInvalid("hello\n\n" + sig_ + "\xe2", "truncated at end");
  EXPECT_TRUE(ParseNote("h\xc3\xa9llo \xf0\x9f\x98\x80\n\n" + sig_).ok());
}

TEST_F(MalformedNoteTest, SignatureCountIsLimited) {
  std::string sigs;
  for (size_t i = 0; i < kMaxSignatures; ++i) sigs += sig_;
  auto n = ParseNote("hello\n\n" + sigs);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(n->signatures.size(), kMaxSignatures);
  ExpectInvalid("hello\n\n" + sigs + sig_, "101 signatures");
}

TEST_F(MalformedNoteTest, TooLarge) {
  std::string text(kMaxNoteSize, 'a');
  text.back() = '\n';
  ExpectInvalid(text + "\n" + sig_, "over 1 MiB");
}

TEST_F(MalformedNoteTest, LastBlankLineSplitsTextFromSignatures) {
  // The earlier "signature" becomes part of the text, as in Go.
  auto n = ParseNote("hello\n\n" + sig_ + "\n" + sig_);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(n->text, "hello\n\n" + sig_);
  EXPECT_EQ(n->signatures.size(), 1u);
  ExpectInvalid("hello\n\n" + sig_ + "\n", "blank line at end");
}

TEST_F(MalformedNoteTest, MalformedNoteIsRejectedBeforeVerification) {
  auto verifier = MustVerifier(kPeterVkey);
  auto r = OpenNote("hello\n" + sig_, *verifier);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace annals::note
