// Evidence bundles: made from a real ledger holding real audit events
// (../shared/corpus/k8s-audit/audit2rbac-demo.jsonl), verified offline,
// and refused when any byte changes.
#include "ledger/bundle.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "checkpoint/note.h"
#include "common/tar.h"
#include "ledger/entry.h"
#include "ledger/ledger.h"

namespace annals::ledger {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> CorpusLines() {
  std::ifstream in(std::string(ANNALS_CORPUS_DIR) + "/k8s-audit/audit2rbac-demo.jsonl");
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(line);
  return out;
}

class BundleTest : public testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "annals-bundle-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
    LedgerOptions o;
    o.data_dir = root_ + "/data";
    o.checkpoint_interval = std::chrono::milliseconds(5);
    auto l = Ledger::Open(o);
    ASSERT_TRUE(l.ok()) << l.status().ToString();
    ledger_ = std::move(*l);
    lines_ = CorpusLines();
    ASSERT_GE(lines_.size(), 20u);
    std::vector<std::string> entries;
    for (size_t i = 0; i < lines_.size(); ++i) {
      auto e = EncodeEntry(R"({"v":1,"src":"k8s-audit","n":)" + std::to_string(i) + "}", lines_[i], nullptr);
      ASSERT_TRUE(e.ok()) << e.status().ToString();
      entries.push_back(*e);
    }
    ASSERT_TRUE(ledger_->Append(entries).ok());
    ASSERT_TRUE(ledger_->WaitForCheckpoint(lines_.size(), std::chrono::seconds(30)));
    auto v = note::Verifier::FromVerifierKey(ledger_->signer().VerifierKey());
    ASSERT_TRUE(v.ok());
    char hash[9];
    std::snprintf(hash, sizeof(hash), "%08x", (*v)->key_hash());
    key_ = (*v)->name() + "+" + hash;
  }
  void TearDown() override {
    ledger_.reset();
    fs::remove_all(root_);
  }

  Bundle Make(const std::vector<uint64_t>& indexes) {
    Bundle b;
    b.checkpoint = ledger_->Checkpoint();
    b.key = key_;
    const uint64_t size = ledger_->CheckpointSize();
    for (uint64_t i : indexes) {
      BundleEntry e;
      e.index = i;
      e.entry = ledger_->ReadEntry(i).value();
      e.proof = ledger_->InclusionProof(i, size).value();
      b.entries.push_back(std::move(e));
    }
    return b;
  }

  std::string root_;
  std::unique_ptr<Ledger> ledger_;
  std::vector<std::string> lines_;
  std::string key_;
};

TEST_F(BundleTest, AMadeBundleVerifiesOfflineWithTheKey) {
  auto tar_bytes = EncodeBundle(Make({0, 3, 17}));
  ASSERT_TRUE(tar_bytes.ok()) << tar_bytes.status().ToString();
  Bundle back;
  auto r = VerifyBundle(*tar_bytes, ledger_->signer().VerifierKey(), &back);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->indexes, (std::vector<uint64_t>{0, 3, 17}));
  EXPECT_EQ(r->tree_size, lines_.size());
  EXPECT_EQ(r->origin, "annals.local/log");
  ASSERT_EQ(back.entries.size(), 3u);
  auto dec = DecodeEntry(back.entries[1].entry);
  ASSERT_TRUE(dec.ok());
  EXPECT_EQ(dec->payload, lines_[3]);
  // Any tar tool reads it: the members by name.
  auto members = tar::Read(*tar_bytes, 100);
  ASSERT_TRUE(members.ok());
  EXPECT_EQ((*members)[2].name, "entries/0");
  EXPECT_EQ((*members)[7].name, "proofs/17");
}

TEST_F(BundleTest, EveryChangedByteIsRefused) {
  auto tar_bytes = EncodeBundle(Make({2, 5}));
  ASSERT_TRUE(tar_bytes.ok());
  const std::string vkey = ledger_->signer().VerifierKey();
  size_t refused = 0;
  for (size_t i = 0; i < tar_bytes->size(); ++i) {
    std::string bad = *tar_bytes;
    bad[i] ^= 0x01;
    auto r = VerifyBundle(bad, vkey);
    if (!r.ok()) {
      ++refused;
      EXPECT_EQ(r.status().code(), StatusCode::kDataLoss) << "byte " << i;
    }
  }
  EXPECT_EQ(refused, tar_bytes->size());
  for (size_t n = 0; n < tar_bytes->size(); n += 97)
    EXPECT_FALSE(VerifyBundle(tar_bytes->substr(0, n), vkey).ok()) << n;
}

TEST_F(BundleTest, ABlobPayloadTravelsWithItsEntryAndIsChecked) {
  // An event list over 64 KiB: the entry holds its digest, the blob store
  // the bytes.
  std::string big = "{\"kind\":\"EventList\",\"items\":[";
  for (size_t i = 0; big.size() < 80 * 1024; ++i) big += (i ? "," : "") + lines_[i % lines_.size()];
  big += "]}";
  bool needs_blob = false;
  Hash digest{};
  auto e = EncodeEntry(R"({"v":1})", big, &needs_blob, &digest);
  ASSERT_TRUE(e.ok() && needs_blob);
  ASSERT_TRUE(ledger_->PutBlob(digest, big).ok());
  auto at = ledger_->Append({*e});
  ASSERT_TRUE(at.ok());
  ASSERT_TRUE(ledger_->WaitForCheckpoint(*at + 1, std::chrono::seconds(30)));
  Bundle b = Make({1, *at});
  b.entries[1].payload = big;
  auto bytes = EncodeBundle(b);
  ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
  const std::string vkey = ledger_->signer().VerifierKey();
  Bundle back;
  auto r = VerifyBundle(*bytes, vkey, &back);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->external_payloads, 1u);
  EXPECT_EQ(r->external_payloads_included, 1u);
  EXPECT_EQ(back.entries[1].payload, big);
  // Another payload of the same size is refused, naming it.
  b.entries[1].payload[100] ^= 0x01;
  r = VerifyBundle(EncodeBundle(b).value(), vkey);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("payloads/" + std::to_string(*at) + ": not the payload"),
            std::string::npos)
      << r.status().ToString();
  // An inline entry takes no payload member.
  b = Make({1});
  b.entries[0].payload = "x";
  EXPECT_FALSE(EncodeBundle(b).ok());
}

TEST_F(BundleTest, AnotherKeyOrAnotherEntryIsRefusedNamingWhat) {
  auto other = note::GeneratePrivateKey("annals.local/log");
  ASSERT_TRUE(other.ok());
  auto signer = note::Signer::FromPrivateKey(*other);
  ASSERT_TRUE(signer.ok());
  auto tar_bytes = EncodeBundle(Make({4}));
  ASSERT_TRUE(tar_bytes.ok());
  auto r = VerifyBundle(*tar_bytes, (*signer)->VerifierKey());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("made for key"), std::string::npos) << r.status().ToString();

  // Entry 5's bytes with entry 4's proof and index, re-packed: the archive
  // is canonical, but the tree holds another entry at 4.
  Bundle b = Make({4});
  b.entries[0].entry = ledger_->ReadEntry(5).value();
  auto swapped = EncodeBundle(b);
  ASSERT_TRUE(swapped.ok());
  r = VerifyBundle(*swapped, ledger_->signer().VerifierKey());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(r.status().message().find("entries/4: not the entry"), std::string::npos)
      << r.status().ToString();

  // Out of order or repeated indexes are not made.
  EXPECT_FALSE(EncodeBundle(Make({5, 4})).ok());
  EXPECT_FALSE(EncodeBundle(Make({4, 4})).ok());
}

}  // namespace
}  // namespace annals::ledger
