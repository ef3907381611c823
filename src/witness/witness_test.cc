#include "witness/witness.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "checkpoint/checkpoint.h"
#include "checkpoint/cosignature.h"
#include "checkpoint/note.h"
#include "common/bytes.h"
#include "merkle/merkle.h"

namespace annals::witness {
namespace {

constexpr uint64_t kNow = 1767225600;  // 2026-01-01T00:00:00Z

template <class T>
T Take(StatusOr<T> s) {
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return std::move(*s);
}

// A log of leaves "<prefix> i": roots and consistency proofs computed from
// the leaves with the merkle library's readers.
struct Tree {
  std::string prefix;
  Hash Node(uint64_t level, uint64_t index) const {
    if (level == 0) return merkle::HashLeaf(prefix + " " + std::to_string(index));
    return merkle::HashChildren(Node(level - 1, 2 * index), Node(level - 1, 2 * index + 1));
  }
  merkle::NodeReader Reader() const {
    return [this](uint64_t level, uint64_t index) -> StatusOr<Hash> { return Node(level, index); };
  }
  Hash Root(uint64_t size) const { return *merkle::RootHash(size, Reader()); }
  std::vector<Hash> Proof(uint64_t a, uint64_t b) const { return *merkle::ConsistencyProof(a, b, Reader()); }
};

class WitnessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("witness_test_" + std::to_string(::getpid()) + "_" +
                                                     ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    log_key_ = *note::GeneratePrivateKey("example.org/log");
    log_ = Take(note::Signer::FromPrivateKey(log_key_));
    witness_key_ = *note::GeneratePrivateKey("witness.example/w1");
    Reopen();
    verifier_ = Take(note::CosignatureVerifier::FromVerifierKey(w_->VerifierKey()));
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void Reopen() {
    w_.reset();
    Witness::Options o;
    o.dir = dir_.string();
    o.key = witness_key_;
    o.logs = {log_->VerifierKey()};
    o.now = [] { return kNow; };
    auto w = Witness::Open(std::move(o));
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    w_ = std::move(*w);
  }
  std::string Signed(uint64_t size, const Hash& root, const note::Signer& by) const {
    checkpoint::Checkpoint cp;
    cp.origin = "example.org/log";
    cp.size = size;
    cp.root = root;
    return *by.SignNote(cp.Marshal());
  }
  static std::string Body(uint64_t old_size, const std::vector<Hash>& proof, const std::string& note) {
    std::string b = "old " + std::to_string(old_size) + "\n";
    for (const Hash& h : proof) b += Base64Encode(HashBytes(h)) + "\n";
    return b + "\n" + note;
  }
  // Posts size `size` of tree t from `old` with the right proof.
  Answer Add(const Tree& t, uint64_t old, uint64_t size) {
    return w_->AddCheckpoint(Body(old, old ? t.Proof(old, size) : std::vector<Hash>{}, Signed(size, t.Root(size), *log_)));
  }
  // The answer's cosignature verifies on the checkpoint, at kNow.
  void ExpectCosigned(const Answer& a, const Tree& t, uint64_t size) {
    ASSERT_EQ(a.status, 200) << a.body;
    auto n = note::ParseNote(Signed(size, t.Root(size), *log_) + a.body);
    ASSERT_TRUE(n.ok()) << n.status().ToString();
    auto ts = verifier_->Verify(*n);
    ASSERT_TRUE(ts.ok()) << ts.status().ToString();
    EXPECT_EQ(*ts, kNow);
  }

  std::filesystem::path dir_;
  std::string log_key_, witness_key_;
  std::unique_ptr<note::Signer> log_;
  std::unique_ptr<Witness> w_;
  std::unique_ptr<note::CosignatureVerifier> verifier_;
};

TEST_F(WitnessTest, GrowsWithConsistencyProofsAndRefusesForksAndRollbacks) {
  const Tree t{"entry"};
  ExpectCosigned(Add(t, 0, 5), t, 5);  // the first one: trusted on first use
  // A client that does not know the witness's size learns it from a 409.
  Answer stale = Add(t, 0, 9);
  EXPECT_EQ(stale.status, 409);
  EXPECT_EQ(stale.content_type, kSizeContentType);
  EXPECT_EQ(stale.body, "5\n");
  ExpectCosigned(Add(t, 5, 9), t, 9);
  EXPECT_EQ(Add(t, 5, 12).body, "9\n");
  // The same checkpoint again: cosigned again, nothing changes.
  ExpectCosigned(Add(t, 9, 9), t, 9);
  // A fork: another tree of the same log (same key), consistent with
  // nothing the witness saw.
  const Tree fork{"forged"};
  Answer a = w_->AddCheckpoint(Body(9, fork.Proof(9, 12), Signed(12, fork.Root(12), *log_)));
  EXPECT_EQ(a.status, 422) << a.body;
  // A proof of the real tree does not carry a forged root either.
  a = w_->AddCheckpoint(Body(9, t.Proof(9, 12), Signed(12, fork.Root(12), *log_)));
  EXPECT_EQ(a.status, 422) << a.body;
  // The same size with another root: a split view, refused.
  a = w_->AddCheckpoint(Body(9, {}, Signed(9, fork.Root(9), *log_)));
  EXPECT_EQ(a.status, 409) << a.body;
  EXPECT_NE(a.content_type, kSizeContentType);
  // A rollback: smaller than what the witness holds.
  a = w_->AddCheckpoint(Body(9, {}, Signed(5, t.Root(5), *log_)));
  EXPECT_EQ(a.status, 400) << a.body;
  uint64_t size = 0;
  Hash root{};
  ASSERT_TRUE(w_->Latest("example.org/log", &size, &root));
  EXPECT_EQ(size, 9u);
  EXPECT_EQ(root, t.Root(9));
  // Kept across a restart.
  Reopen();
  ASSERT_TRUE(w_->Latest("example.org/log", &size, &root));
  EXPECT_EQ(size, 9u);
  EXPECT_EQ(Add(t, 0, 12).body, "9\n");
  ExpectCosigned(Add(t, 9, 12), t, 12);
}

TEST_F(WitnessTest, OnlyTheLogsKeysAndWellFormedBodies) {
  const Tree t{"entry"};
  // Another log (unknown origin): 404.
  auto other = Take(note::Signer::FromPrivateKey(*note::GeneratePrivateKey("example.org/other")));
  checkpoint::Checkpoint cp;
  cp.origin = "example.org/other";
  cp.size = 3;
  cp.root = t.Root(3);
  EXPECT_EQ(w_->AddCheckpoint(Body(0, {}, *other->SignNote(cp.Marshal()))).status, 404);
  // The log's origin signed by another key of the same name: 403.
  auto impostor = Take(note::Signer::FromPrivateKey(*note::GeneratePrivateKey("example.org/log")));
  EXPECT_EQ(w_->AddCheckpoint(Body(0, {}, Signed(3, t.Root(3), *impostor))).status, 403);
  // A bad signature by the log's key: 403.
  std::string tampered = Signed(3, t.Root(3), *log_);
  tampered[tampered.size() - 5] = tampered[tampered.size() - 5] == 'A' ? 'B' : 'A';
  EXPECT_EQ(w_->AddCheckpoint(Body(0, {}, tampered)).status, 403);
  // Malformed bodies: 400, and nothing stored.
  const std::string good = Signed(3, t.Root(3), *log_);
  for (const std::string& body :
       {std::string("old 0\n") + good, "old 00\n\n" + good, "old -1\n\n" + good, "new 0\n\n" + good,
        "old 0\nnot-base64!\n\n" + good, "old 0\n" + Base64Encode("short") + "\n\n" + good,
        Body(0, {t.Root(1)}, good) /* a proof from size 0 */, std::string("old 0\n\n") + "not a note\n",
        std::string(kMaxRequestBytes + 1, 'x'), std::string()}) {
    Answer a = w_->AddCheckpoint(body);
    EXPECT_EQ(a.status, 400) << body.substr(0, 40) << " -> " << a.body;
  }
  std::vector<Hash> long_proof(kMaxProofLines + 1, t.Root(1));
  EXPECT_EQ(w_->AddCheckpoint(Body(0, long_proof, good)).status, 400);
  uint64_t size = 0;
  Hash root{};
  EXPECT_FALSE(w_->Latest("example.org/log", &size, &root));
  // A damaged state file is refused at start, not taken for "never seen".
  ExpectCosigned(Add(t, 0, 3), t, 3);
  for (const auto& f : std::filesystem::directory_iterator(dir_)) {
    std::ofstream(f.path()) << "garbage\n";
  }
  Witness::Options o;
  o.dir = dir_.string();
  o.key = witness_key_;
  o.logs = {log_->VerifierKey()};
  EXPECT_EQ(Witness::Open(std::move(o)).status().code(), StatusCode::kDataLoss);
}

// The log side reads the witness's own answers: a cosignature it made
// counts, its 409 size is read, and anything else (another key's line, a
// line moved from another checkpoint, a malformed size, errors) does not
// count as a cosignature.
TEST_F(WitnessTest, TheLogSideReadsOnlyCosignaturesThatVerifyAndWellFormedSizes) {
  Tree t{"a"};
  const std::string note = Signed(5, t.Root(5), *log_);
  const std::string text = note.substr(0, note.find("\n\n") + 1);
  const Answer a = Add(t, 0, 5);
  ASSERT_EQ(a.status, 200) << a.body;
  Reply r = ReadAddCheckpointAnswer(a.status, a.content_type, a.body, text, *verifier_);
  EXPECT_EQ(r.kind, Reply::kCosigned) << r.error;
  EXPECT_EQ(r.line, a.body);
  // Among other lines (another key's first): still found.
  auto other = Take(note::Cosigner::FromPrivateKey(*note::GeneratePrivateKey("witness.example/other")));
  const std::string theirs = *other->Cosign(text, kNow);
  r = ReadAddCheckpointAnswer(200, "text/plain", theirs + a.body, text, *verifier_);
  EXPECT_EQ(r.kind, Reply::kCosigned);
  EXPECT_EQ(r.line, a.body);
  // Another key's alone, or this key's over another checkpoint: refused.
  EXPECT_EQ(ReadAddCheckpointAnswer(200, "text/plain", theirs, text, *verifier_).kind, Reply::kRefused);
  const std::string six = Signed(6, t.Root(6), *log_);
  EXPECT_EQ(ReadAddCheckpointAnswer(200, "", a.body, six.substr(0, six.find("\n\n") + 1), *verifier_).kind,
            Reply::kRefused);
  EXPECT_EQ(ReadAddCheckpointAnswer(200, "", "", text, *verifier_).kind, Reply::kRefused);
  EXPECT_EQ(ReadAddCheckpointAnswer(200, "", a.body.substr(0, a.body.size() - 1), text, *verifier_).kind,
            Reply::kRefused);  // no newline: not a line

  // The witness's own 409 for a stale size.
  const Answer stale = Add(t, 0, 5);
  ASSERT_EQ(stale.status, 409);
  r = ReadAddCheckpointAnswer(stale.status, stale.content_type, stale.body, text, *verifier_);
  EXPECT_EQ(r.kind, Reply::kSize);
  EXPECT_EQ(r.size, 5u);
  for (const char* bad : {"5", "05\n", "-1\n", "\n", "5\n6\n", "18446744073709551616\n"})
    EXPECT_EQ(ReadAddCheckpointAnswer(409, kSizeContentType, bad, text, *verifier_).kind, Reply::kRefused) << bad;
  // A 409 of another type is a fork at its size; 422 a rejected proof.
  r = ReadAddCheckpointAnswer(409, "text/plain", "root mismatch\n", text, *verifier_);
  EXPECT_EQ(r.kind, Reply::kRefused);
  EXPECT_NE(r.error.find("a fork"), std::string::npos) << r.error;
  r = ReadAddCheckpointAnswer(422, "text/plain", "bad proof", text, *verifier_);
  EXPECT_EQ(r.kind, Reply::kRefused);
  EXPECT_NE(r.error.find("rejected the consistency proof"), std::string::npos) << r.error;
  EXPECT_EQ(ReadAddCheckpointAnswer(503, "", "", text, *verifier_).kind, Reply::kUnavailable);
  EXPECT_EQ(ReadAddCheckpointAnswer(404, "", "", text, *verifier_).kind, Reply::kRefused);
}

}  // namespace
}  // namespace annals::witness
