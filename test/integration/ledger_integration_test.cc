// End-to-end tests of the real `annals` binary over real sockets: appends of
// real Kubernetes audit events, the C2SP checkpoint/tiles/entry bundles they
// produce (checked with our own client code), proofs, entries with receipts,
// error answers, and remote verification with a state file catching a
// rolled-back or forked log.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "checkpoint/checkpoint.h"
#include "checkpoint/note.h"
#include "client/http_client.h"
#include "client/remote_verifier.h"
#include "common/bytes.h"
#include "common/sha256.h"
#include "ledger/entry.h"
#include "merkle/merkle.h"
#include "merkle/tile.h"
#include "testutil/log_client.h"
#include "testutil/server_process.h"
#include "testutil/test_macros.h"

namespace annals {
namespace {

using client::HttpClient;
using client::HttpResult;
using nlohmann::json;
using testutil::CommandResult;
using testutil::RunAnnals;
using testutil::ServeOptions;
using testutil::ServerProcess;
using testutil::SignedCheckpoint;
using testutil::TempDir;
using testutil::TileUrl;

constexpr auto kWait = std::chrono::seconds(30);
constexpr uint64_t kMaxBody = 256 << 10;
constexpr size_t kLargePayloadBytes = 70 * 1024;

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

std::string HashesBytes(const std::vector<Hash>& hs, size_t begin, size_t end) {
  std::string out;
  for (size_t i = begin; i < end; ++i) out.append(HashBytes(hs[i]));
  return out;
}

// RFC 6962 MTH of leaves [begin, end), straight from the definition (and so
// independent of merkle::CompactRange, which the server uses).
Hash Mth(const std::vector<Hash>& leaves, size_t begin, size_t end) {
  if (begin == end) return merkle::EmptyRoot();
  if (end - begin == 1) return leaves[begin];
  size_t k = 1;
  while (k * 2 < end - begin) k *= 2;
  return merkle::HashChildren(Mth(leaves, begin, begin + k), Mth(leaves, begin + k, end));
}

StatusOr<Hash> HashFromBase64(const json& j) {
  if (!j.is_string()) return InvalidArgumentError("hash is not a string");
  auto raw = Base64Decode(j.get<std::string>());
  if (!raw || raw->size() != 32) return InvalidArgumentError("hash is not 32 base64 bytes");
  Hash h;
  std::memcpy(h.data(), raw->data(), 32);
  return h;
}

StatusOr<std::vector<Hash>> HashList(const json& j) {
  if (!j.is_array()) return InvalidArgumentError("hashes is not an array");
  std::vector<Hash> out;
  for (const auto& e : j) {
    ASSIGN_OR_RETURN(Hash h, HashFromBase64(e));
    out.push_back(h);
  }
  return out;
}

// A 4xx answer whose body is exactly one line holding {"error": "<non-empty>"}.
void ExpectJsonError(const StatusOr<HttpResult>& r, int want_status, const std::string& what) {
  ASSERT_TRUE(r.ok()) << what << ": " << r.status().ToString();
  EXPECT_EQ(r->status, want_status) << what << ": " << r->body;
  EXPECT_GE(r->status, 400) << what;
  EXPECT_LT(r->status, 500) << what;
  EXPECT_EQ(r->content_type, "application/json") << what;
  std::string body = r->body;
  ASSERT_FALSE(body.empty()) << what;
  EXPECT_EQ(body.find('\n'), body.size() - 1) << what << ": not one line: " << body;
  json j = json::parse(body, nullptr, false);
  ASSERT_TRUE(j.is_object()) << what << ": " << body;
  ASSERT_TRUE(j.contains("error") && j["error"].is_string()) << what << ": " << body;
  EXPECT_FALSE(j["error"].get<std::string>().empty()) << what;
}

class LedgerIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    data_ = tmp_.Sub("data");
    server_ = std::make_unique<ServerProcess>(ServeOptions{data_, "", 50, kMaxBody, {}, "127.0.0.1:0", true, "none"});
    ASSERT_OK(server_->Start());
    CommandResult key = RunAnnals({"key", "show", "--data", data_});
    ASSERT_EQ(key.exit_code, 0) << key.err;
    vkey_ = Trim(key.out);
    ASSERT_EQ(vkey_, server_->verifier_key()) << "`key show` and `serve` disagree on the key";
    ASSERT_OK_AND_ASSIGN(verifier_, note::Verifier::FromVerifierKey(vkey_));
    ASSERT_OK_AND_ASSIGN(http_, HttpClient::Create(server_->url()));
    corpus_ = testutil::CorpusAuditLines();
    ASSERT_GE(corpus_.size(), 80u) << "corpus not found in " << testutil::CorpusDir();
    // The corpus verbatim, except that a repeated audit event (same auditID
    // and stage, which the server stores once) is uniquified.
    std::set<std::string> keys;
    for (size_t i = 0; i < corpus_.size(); ++i) {
      json j = json::parse(corpus_[i], nullptr, false);
      ASSERT_TRUE(j.is_object()) << corpus_[i];
      std::string line = corpus_[i];
      if (j.contains("auditID") && j.contains("stage") &&
          !keys.insert(j["auditID"].dump() + j["stage"].dump()).second)
        line = testutil::UniqueVariant(line, 1000000 + i);
      verbatim_.push_back(std::move(line));
    }
  }

  // The payload for the n-th appended event: the corpus verbatim first,
  // then uniquified corpus events; `large_at` gets a >70 KB event list.
  std::string PayloadFor(uint64_t n) const {
    if (n == large_at_) return testutil::LargeEventList(kLargePayloadBytes);
    if (n < verbatim_.size()) return verbatim_[n];
    return testutil::UniqueVariant(corpus_[n % corpus_.size()], n);
  }
  // A payload never appended by PayloadFor.
  std::string FreshPayload(uint64_t n) const {
    return testutil::UniqueVariant(corpus_[n % corpus_.size()], 2000000 + n);
  }

  // Appends payloads until the log holds `target` entries, in batches of up
  // to 25 lines (the large payload alone); checks each first_index.
  void AppendUpTo(uint64_t target) {
    while (sent_.size() < target) {
      std::vector<std::string> batch;
      while (sent_.size() + batch.size() < target && batch.size() < 25) {
        uint64_t n = sent_.size() + batch.size();
        if (n == large_at_ && !batch.empty()) break;
        batch.push_back(PayloadFor(n));
        if (n == large_at_) break;
      }
      ASSERT_OK_AND_ASSIGN(uint64_t first, testutil::PostEvents(http_.get(), batch));
      ASSERT_EQ(first, sent_.size());
      for (auto& b : batch) sent_.push_back(std::move(b));
    }
  }

  StatusOr<SignedCheckpoint> WaitFor(uint64_t size) {
    return testutil::WaitForCheckpoint(http_.get(), *verifier_, size, kWait);
  }

  StatusOr<HttpResult> Get(const std::string& path) { return http_->Get(path); }

  // Checks that an entry (as served) holds sent_[index]: inline payload
  // bytes equal, or the digest and size of an external one.
  void ExpectEntryHolds(const std::string& entry, uint64_t index) {
    auto dec = ledger::DecodeEntry(entry);
    ASSERT_TRUE(dec.ok()) << "entry " << index << ": " << dec.status().ToString();
    json meta = json::parse(dec->meta, nullptr, false);
    ASSERT_TRUE(meta.is_object()) << "entry " << index << " meta: " << dec->meta;
    ASSERT_TRUE(meta.contains("src") && meta["src"].is_string()) << dec->meta;
    const std::string& want = sent_[index];
    if (want.size() > 65000) {
      EXPECT_TRUE(dec->external) << "large payload " << index << " stored inline";
      EXPECT_EQ(dec->payload_digest, Sha256(want)) << "entry " << index;
      EXPECT_EQ(dec->payload_size, want.size()) << "entry " << index;
    } else {
      EXPECT_FALSE(dec->external) << "entry " << index;
      EXPECT_EQ(dec->payload, want) << "entry " << index << " payload differs from what was sent";
    }
  }

  TempDir tmp_;
  std::string data_;
  std::unique_ptr<ServerProcess> server_;
  std::string vkey_;
  std::unique_ptr<note::Verifier> verifier_;
  std::unique_ptr<HttpClient> http_;
  std::vector<std::string> corpus_;
  std::vector<std::string> verbatim_;
  std::vector<std::string> sent_;  // sent_[i] is the payload of entry i
  uint64_t large_at_ = 400;
};

TEST_F(LedgerIntegrationTest, AppendedEventsAreServedAsVerifiableTilesAndBundles) {
  ASSERT_NO_FATAL_FAILURE(AppendUpTo(700));
  ASSERT_OK_AND_ASSIGN(SignedCheckpoint cp, WaitFor(700));
  ASSERT_EQ(cp.cp.size, 700u);  // nothing else was appended
  EXPECT_EQ(cp.cp.origin, verifier_->name());
  // The checkpoint is a C2SP signed note by our key.
  ASSERT_OK_AND_ASSIGN(note::Note opened, note::OpenNote(cp.note, *verifier_));
  EXPECT_EQ(opened.text, cp.cp.Marshal());

  // Entry bundles: two full, one partial of 700 - 512 = 188.
  std::vector<std::string> entries;
  for (uint64_t b = 0; b < 3; ++b) {
    const uint64_t width = b < 2 ? 256 : 188;
    ASSERT_OK_AND_ASSIGN(HttpResult r, Get(TileUrl(true, 0, b, width)));
    ASSERT_EQ(r.status, 200) << TileUrl(true, 0, b, width) << ": " << r.body;
    ASSERT_OK_AND_ASSIGN(auto bundle, testutil::ParseBundle(r.body, width));
    for (auto& e : bundle) entries.push_back(std::move(e));
  }
  ASSERT_EQ(entries.size(), 700u);
  for (uint64_t i = 0; i < entries.size(); ++i)
    ASSERT_NO_FATAL_FAILURE(ExpectEntryHolds(entries[i], i));

  std::vector<Hash> leaves;
  for (const auto& e : entries) leaves.push_back(merkle::HashLeaf(e));

  // Hash tiles, recomputed from the bundles: two full level-0 tiles, the
  // partial level-0 tile, and the partial level-1 tile over the full ones.
  struct TileCase {
    uint64_t level, index, width;
    std::string want;
    bool immutable;
  };
  std::vector<TileCase> tiles = {
      {0, 0, 256, HashesBytes(leaves, 0, 256), true},
      {0, 1, 256, HashesBytes(leaves, 256, 512), true},
      {0, 2, 188, HashesBytes(leaves, 512, 700), false},
      {1, 0, 2, HashesBytes({Mth(leaves, 0, 256), Mth(leaves, 256, 512)}, 0, 2), false},
  };
  for (const auto& t : tiles) {
    const std::string path = TileUrl(false, t.level, t.index, t.width);
    ASSERT_OK_AND_ASSIGN(HttpResult r, Get(path));
    ASSERT_EQ(r.status, 200) << path << ": " << r.body;
    EXPECT_EQ(r.content_type, "application/octet-stream") << path;
    ASSERT_EQ(r.body.size(), t.width * 32) << path;
    EXPECT_TRUE(r.body == t.want) << path << " does not hold the hashes of the served entries";
    if (t.immutable) {
      EXPECT_NE(r.cache_control.find("immutable"), std::string::npos)
          << path << ": " << r.cache_control;
    } else {
      EXPECT_EQ(r.cache_control.find("immutable"), std::string::npos)
          << path << ": " << r.cache_control;
    }
  }
  // A client holding an older, smaller checkpoint asks for narrower partial
  // tiles and bundles; they are prefixes of the current ones.
  {
    ASSERT_OK_AND_ASSIGN(HttpResult r, Get(TileUrl(false, 0, 0, 10)));
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_TRUE(r.body == HashesBytes(leaves, 0, 10));
    ASSERT_OK_AND_ASSIGN(HttpResult b, Get(TileUrl(true, 0, 2, 7)));
    ASSERT_EQ(b.status, 200) << b.body;
    ASSERT_OK_AND_ASSIGN(auto bundle, testutil::ParseBundle(b.body, 7));
    for (uint64_t k = 0; k < 7; ++k) EXPECT_EQ(bundle[k], entries[512 + k]);
  }
  // Tiles and bundles beyond the tree are not found.
  for (const std::string& path :
       {TileUrl(false, 0, 2, 256), TileUrl(false, 0, 2, 189), TileUrl(true, 0, 2, 256),
        TileUrl(true, 0, 2, 189), TileUrl(true, 0, 3, 1), TileUrl(false, 1, 0, 256),
        TileUrl(false, 1, 0, 3), TileUrl(false, 2, 0, 1)}) {
    ASSERT_NO_FATAL_FAILURE(ExpectJsonError(Get(path), 404, path));
  }

  // The root: from the definition, and from our incremental CompactRange.
  EXPECT_EQ(Mth(leaves, 0, leaves.size()), cp.cp.root);
  merkle::CompactRange range;
  for (const Hash& h : leaves) range.Append(h, [](uint64_t, uint64_t, const Hash&) {});
  EXPECT_EQ(range.Root(), cp.cp.root);

  // Our remote verifier agrees (checkpoint, 3 bundles, 4 hash tiles).
  client::RemoteVerifyResult rv;
  ASSERT_OK(client::VerifyRemote(server_->url(), vkey_, "", nullptr, &rv));
  EXPECT_EQ(rv.size, 700u);
  EXPECT_EQ(rv.tiles, 4u);
  // And so does the CLI.
  CommandResult cli = RunAnnals({"verify", "--url", server_->url(), "--key", vkey_});
  EXPECT_EQ(cli.exit_code, 0) << cli.err;
}

TEST_F(LedgerIntegrationTest, EntryEndpointReturnsEventWithVerifiableReceipt) {
  ASSERT_NO_FATAL_FAILURE(AppendUpTo(600));
  ASSERT_OK_AND_ASSIGN(SignedCheckpoint cp, WaitFor(600));
  for (uint64_t i :
       {uint64_t{0}, uint64_t{36}, uint64_t{255}, uint64_t{256}, large_at_, uint64_t{599}}) {
    SCOPED_TRACE("entry " + std::to_string(i));
    ASSERT_OK_AND_ASSIGN(HttpResult r, Get("/v1/entries/" + std::to_string(i)));
    ASSERT_EQ(r.status, 200) << r.body;
    json j = json::parse(r.body, nullptr, false);
    ASSERT_TRUE(j.is_object()) << r.body;
    EXPECT_EQ(j.value("index", uint64_t{0} - 1), i);
    // The event is the payload that was sent.
    ASSERT_TRUE(j.contains("event")) << r.body.substr(0, 300);
    EXPECT_EQ(j["event"], json::parse(sent_[i]));
    if (i == large_at_) {
      EXPECT_EQ(j.value("payload_sha256", ""), HexEncode(HashBytes(Sha256(sent_[i]))));
    }
    // The raw entry and its leaf hash.
    ASSERT_TRUE(j["entry"].is_string());
    auto raw = Base64Decode(j["entry"].get<std::string>());
    ASSERT_TRUE(raw.has_value());
    ASSERT_NO_FATAL_FAILURE(ExpectEntryHolds(*raw, i));
    const Hash leaf = merkle::HashLeaf(*raw);
    ASSERT_OK_AND_ASSIGN(Hash served_leaf, HashFromBase64(j["leaf_hash"]));
    EXPECT_EQ(served_leaf, leaf);
    // The receipt: a checkpoint signed by the log and an inclusion proof
    // against it, checkable by a third party with the verifier key alone.
    ASSERT_TRUE(j["checkpoint"].is_string());
    ASSERT_OK_AND_ASSIGN(SignedCheckpoint rcp,
                         testutil::OpenCheckpoint(j["checkpoint"].get<std::string>(), *verifier_));
    EXPECT_GE(rcp.cp.size, cp.cp.size);
    const json& proof = j["inclusion_proof"];
    ASSERT_TRUE(proof.is_object()) << r.body.substr(0, 300);
    EXPECT_EQ(proof.value("index", uint64_t{0} - 1), i);
    EXPECT_EQ(proof.value("tree_size", uint64_t{0}), rcp.cp.size);
    ASSERT_OK_AND_ASSIGN(std::vector<Hash> hashes, HashList(proof["hashes"]));
    EXPECT_OK(merkle::VerifyInclusion(i, rcp.cp.size, leaf, hashes, rcp.cp.root));
    // The check is real: a changed entry or proof does not verify.
    std::string changed = *raw;
    changed.back() ^= 1;
    EXPECT_FALSE(
        merkle::VerifyInclusion(i, rcp.cp.size, merkle::HashLeaf(changed), hashes, rcp.cp.root)
            .ok());
    if (!hashes.empty()) {
      hashes[0][0] ^= 1;
      EXPECT_FALSE(merkle::VerifyInclusion(i, rcp.cp.size, leaf, hashes, rcp.cp.root).ok());
    }
  }
}

TEST_F(LedgerIntegrationTest, ConsistencyAndInclusionProofsVerifyAsTheLogGrows) {
  ASSERT_NO_FATAL_FAILURE(AppendUpTo(700));
  ASSERT_OK_AND_ASSIGN(SignedCheckpoint old_cp, WaitFor(700));
  ASSERT_EQ(old_cp.cp.size, 700u);
  ASSERT_NO_FATAL_FAILURE(AppendUpTo(1000));
  ASSERT_OK_AND_ASSIGN(SignedCheckpoint new_cp, WaitFor(1000));
  ASSERT_EQ(new_cp.cp.size, 1000u);

  ASSERT_OK_AND_ASSIGN(std::vector<std::string> entries,
                       testutil::FetchEntries(http_.get(), 0, 1000, 1000));
  std::vector<Hash> leaves;
  for (uint64_t i = 0; i < entries.size(); ++i) {
    ASSERT_NO_FATAL_FAILURE(ExpectEntryHolds(entries[i], i));
    leaves.push_back(merkle::HashLeaf(entries[i]));
  }
  ASSERT_EQ(Mth(leaves, 0, 700), old_cp.cp.root);
  ASSERT_EQ(Mth(leaves, 0, 1000), new_cp.cp.root);

  auto consistency = [&](uint64_t first, uint64_t second) -> StatusOr<std::vector<Hash>> {
    ASSIGN_OR_RETURN(HttpResult r, Get("/v1/proof/consistency?first=" + std::to_string(first) +
                                       "&second=" + std::to_string(second)));
    if (r.status != 200) return UnavailableError("HTTP " + std::to_string(r.status) + " " + r.body);
    json j = json::parse(r.body, nullptr, false);
    if (!j.is_object() || j.value("first", uint64_t{0} - 1) != first ||
        j.value("second", uint64_t{0} - 1) != second)
      return DataLossError("bad consistency answer " + r.body);
    return HashList(j["hashes"]);
  };
  // Old checkpoint to new: the proof the spec promises.
  ASSERT_OK_AND_ASSIGN(std::vector<Hash> proof, consistency(700, 1000));
  EXPECT_OK(merkle::VerifyConsistency(700, 1000, proof, old_cp.cp.root, new_cp.cp.root));
  EXPECT_FALSE(
      merkle::VerifyConsistency(700, 1000, proof, Mth(leaves, 0, 699), new_cp.cp.root).ok());
  EXPECT_FALSE(
      merkle::VerifyConsistency(700, 1000, proof, old_cp.cp.root, Mth(leaves, 0, 999)).ok());
  // Other sizes, against roots computed here.
  for (auto [a, b] : std::vector<std::pair<uint64_t, uint64_t>>{
           {1, 1000}, {255, 256}, {256, 1000}, {512, 700}, {513, 768}, {699, 700}, {1000, 1000}}) {
    SCOPED_TRACE(std::to_string(a) + " -> " + std::to_string(b));
    ASSERT_OK_AND_ASSIGN(std::vector<Hash> p, consistency(a, b));
    EXPECT_OK(merkle::VerifyConsistency(a, b, p, Mth(leaves, 0, a), Mth(leaves, 0, b)));
  }

  for (uint64_t size : {uint64_t{700}, uint64_t{1000}}) {
    const Hash root = size == 700 ? old_cp.cp.root : new_cp.cp.root;
    for (uint64_t i : {0, 1, 255, 256, 511, 512, 699, 700, 767, 768, 999}) {
      if (i >= size) continue;
      SCOPED_TRACE("inclusion of " + std::to_string(i) + " in " + std::to_string(size));
      ASSERT_OK_AND_ASSIGN(HttpResult r, Get("/v1/proof/inclusion?index=" + std::to_string(i) +
                                             "&tree_size=" + std::to_string(size)));
      ASSERT_EQ(r.status, 200) << r.body;
      json j = json::parse(r.body, nullptr, false);
      ASSERT_TRUE(j.is_object()) << r.body;
      EXPECT_EQ(j.value("index", uint64_t{0} - 1), i);
      EXPECT_EQ(j.value("tree_size", uint64_t{0}), size);
      ASSERT_OK_AND_ASSIGN(std::vector<Hash> p, HashList(j["hashes"]));
      EXPECT_OK(merkle::VerifyInclusion(i, size, leaves[i], p, root));
      EXPECT_FALSE(merkle::VerifyInclusion(i, size, leaves[(i + 1) % size], p, root).ok());
    }
  }

  client::RemoteVerifyResult rv;
  ASSERT_OK(client::VerifyRemote(server_->url(), vkey_, "", nullptr, &rv));
  EXPECT_EQ(rv.size, 1000u);
}

TEST_F(LedgerIntegrationTest, BadRequestsGetOneLineJsonErrorsAndStoreNothing) {
  ASSERT_NO_FATAL_FAILURE(AppendUpTo(10));
  ASSERT_OK_AND_ASSIGN(SignedCheckpoint cp, WaitFor(10));
  const std::string good = FreshPayload(0) + "\n";

  // A malformed line fails the whole body: 400 naming the line, nothing stored.
  {
    auto r =
        http_->Post("/v1/ingest/events", good + "{\"kind\":\"Event\",\n", "application/x-ndjson");
    ASSERT_NO_FATAL_FAILURE(ExpectJsonError(r, 400, "malformed line"));
    EXPECT_NE(r->body.find("line 2"), std::string::npos) << r->body;
  }
  for (const std::string& body :
       {std::string("[1,2,3]\n"), std::string("\"str\"\n"), std::string(""), std::string("\n\n"),
        good + "{\"a\":1} trailing\n"}) {
    ASSERT_NO_FATAL_FAILURE(
        ExpectJsonError(http_->Post("/v1/ingest/events", body, "application/x-ndjson"), 400,
                        "body: " + body.substr(0, 40)));
  }
  // A body over --max-body: 413, nothing stored.
  {
    std::vector<std::string> many;
    size_t bytes = 0;
    for (uint64_t n = 0; bytes <= kMaxBody + 1024; ++n) {
      many.push_back(testutil::UniqueVariant(corpus_[n % corpus_.size()], 900000 + n));
      bytes += many.back().size() + 1;
    }
    std::string body;
    for (const auto& l : many) body += l + "\n";
    ASSERT_GT(body.size(), kMaxBody);
    ASSERT_OK_AND_ASSIGN(auto fresh, HttpClient::Create(server_->url()));
    auto r = fresh->Post("/v1/ingest/events", body, "application/x-ndjson");
    ASSERT_TRUE(r.ok()) << "oversized body: " << r.status().ToString();
    EXPECT_EQ(r->status, 413) << r->body;
  }
  // Nothing from the bad bodies was stored: the next append lands at 10.
  ASSERT_OK_AND_ASSIGN(uint64_t next, testutil::PostEvents(http_.get(), {FreshPayload(1)}));
  EXPECT_EQ(next, 10u);
  ASSERT_OK_AND_ASSIGN(cp, WaitFor(11));
  EXPECT_EQ(cp.cp.size, 11u);
  const std::string n = "11";

  struct Case {
    std::string path;
    int status;
  };
  const std::vector<Case> cases = {
      // Inclusion proofs.
      {"/v1/proof/inclusion?index=11&tree_size=11", 400},  // index >= size
      {"/v1/proof/inclusion?index=12&tree_size=11", 400},
      {"/v1/proof/inclusion?index=0&tree_size=0", 400},
      {"/v1/proof/inclusion?index=0", 400},  // missing tree_size
      {"/v1/proof/inclusion?tree_size=5", 400},
      {"/v1/proof/inclusion", 400},
      {"/v1/proof/inclusion?index=abc&tree_size=5", 400},
      {"/v1/proof/inclusion?index=-1&tree_size=5", 400},
      {"/v1/proof/inclusion?index=01&tree_size=5", 400},
      {"/v1/proof/inclusion?index=1e2&tree_size=500", 400},
      {"/v1/proof/inclusion?index=&tree_size=5", 400},
      {"/v1/proof/inclusion?index=0&tree_size=12", 400},                    // beyond the tree
      {"/v1/proof/inclusion?index=0&tree_size=18446744073709551616", 400},  // overflow
      {"/v1/proof/inclusion?index=%zz&tree_size=5", 400},
      // Consistency proofs.
      {"/v1/proof/consistency?first=5&second=12", 400},  // beyond the tree
      {"/v1/proof/consistency?first=6&second=5", 400},
      {"/v1/proof/consistency?first=5", 400},
      {"/v1/proof/consistency?second=5", 400},
      {"/v1/proof/consistency?first=x&second=5", 400},
      {"/v1/proof/consistency?first=5&second=+5", 400},
      // Entries.
      {"/v1/entries/11", 404},
      {"/v1/entries/99999999999", 404},
      {"/v1/entries/abc", 400},
      {"/v1/entries/-1", 400},
      {"/v1/entries/", 400},
      {"/v1/entries/007", 400},
      // Tile paths: malformed (400) and beyond the tree (404).
      {"/log/tile/0/abc", 400},
      {"/log/tile/0/000.p/0", 400},
      {"/log/tile/0/000.p/256", 400},
      {"/log/tile/0/000.p/", 400},
      {"/log/tile/0/0000", 400},
      {"/log/tile/0/00", 400},
      {"/log/tile/0/x000/000", 400},
      {"/log/tile/64/000", 400},
      {"/log/tile/-1/000", 400},
      {"/log/tile/0/000/", 400},
      {"/log/tile/entries/abc", 400},
      {"/log/tile/0/999", 404},
      {"/log/tile/0/000", 404},  // only 11 entries: no full tile yet
      {"/log/tile/0/000.p/12", 404},
      {"/log/tile/entries/000", 404},
      {"/log/tile/entries/001.p/1", 404},
      {"/log/tile/3/000.p/1", 404},
  };
  for (const auto& c : cases)
    ASSERT_NO_FATAL_FAILURE(ExpectJsonError(Get(c.path), c.status, c.path));

  // Valid requests still work after all that.
  ASSERT_OK_AND_ASSIGN(HttpResult ok, Get("/v1/proof/inclusion?index=10&tree_size=11"));
  EXPECT_EQ(ok.status, 200) << ok.body;
  ASSERT_OK_AND_ASSIGN(HttpResult tile, Get("/log/tile/0/000.p/11"));
  EXPECT_EQ(tile.status, 200) << tile.body;
  EXPECT_EQ(tile.body.size(), 11u * 32);
}

TEST_F(LedgerIntegrationTest, RestartKeepsLogCheckpointAndIndexes) {
  ASSERT_NO_FATAL_FAILURE(AppendUpTo(300));
  ASSERT_OK_AND_ASSIGN(SignedCheckpoint before, WaitFor(300));
  ASSERT_OK(server_->Stop());  // SIGTERM: clean exit 0
  CommandResult v = RunAnnals({"verify", "--data", data_});
  EXPECT_EQ(v.exit_code, 0) << v.err;
  EXPECT_NE(v.out.find("verified 300 entries"), std::string::npos) << v.out;

  ASSERT_OK(server_->Start());
  EXPECT_EQ(server_->verifier_key(), vkey_);
  ASSERT_OK_AND_ASSIGN(http_, HttpClient::Create(server_->url()));
  ASSERT_OK_AND_ASSIGN(SignedCheckpoint after, testutil::FetchCheckpoint(http_.get(), *verifier_));
  EXPECT_EQ(after.cp.size, 300u);
  EXPECT_EQ(after.cp.root, before.cp.root);
  // An event stored before the restart is still known: stored once.
  ASSERT_OK_AND_ASSIGN(testutil::IngestAnswer dup,
                       testutil::PostEventsAnswer(http_.get(), {sent_[5], sent_[299]}));
  EXPECT_EQ(dup.stored, 0u);
  EXPECT_EQ(dup.duplicates, 2u);
  ASSERT_NO_FATAL_FAILURE(AppendUpTo(310));  // continues at index 300
  ASSERT_OK_AND_ASSIGN(SignedCheckpoint grown, WaitFor(310));
  EXPECT_EQ(grown.cp.size, 310u);
  ASSERT_OK_AND_ASSIGN(HttpResult r, Get("/v1/proof/consistency?first=300&second=310"));
  ASSERT_EQ(r.status, 200) << r.body;
  ASSERT_OK_AND_ASSIGN(std::vector<Hash> p, HashList(json::parse(r.body)["hashes"]));
  EXPECT_OK(merkle::VerifyConsistency(300, 310, p, before.cp.root, grown.cp.root));
}

TEST_F(LedgerIntegrationTest, RemoteVerifyWithStateCatchesRollbackAndFork) {
  const std::string state = tmp_.Sub("state");
  auto verify = [&](const std::string& url) {
    return RunAnnals({"verify", "--url", url, "--key", vkey_, "--state", state});
  };
  ASSERT_NO_FATAL_FAILURE(AppendUpTo(300));
  ASSERT_OK_AND_ASSIGN(SignedCheckpoint cp300, WaitFor(300));
  CommandResult first = verify(server_->url());
  ASSERT_EQ(first.exit_code, 0) << first.err;
  ASSERT_OK_AND_ASSIGN(std::string trusted, testutil::ReadFile(state));
  ASSERT_OK_AND_ASSIGN(SignedCheckpoint trusted_cp, testutil::OpenCheckpoint(trusted, *verifier_));
  EXPECT_GE(trusted_cp.cp.size, 300u);

  ASSERT_NO_FATAL_FAILURE(AppendUpTo(420));
  ASSERT_OK_AND_ASSIGN(SignedCheckpoint cp420, WaitFor(420));
  CommandResult second = verify(server_->url());
  ASSERT_EQ(second.exit_code, 0) << second.err;
  EXPECT_NE(second.out.find("previously trusted 300"), std::string::npos) << second.out;
  ASSERT_OK_AND_ASSIGN(trusted, testutil::ReadFile(state));
  EXPECT_EQ(trusted, cp420.note);

  // Other servers holding the same signing key (a restored backup, a
  // malicious operator): the key file is copied, the entries differ.
  const std::string key_copy = tmp_.Sub("key-copy");
  ASSERT_OK_AND_ASSIGN(std::string key_text, testutil::ReadFile(data_ + "/key"));
  ASSERT_OK(testutil::OverwriteFile(key_copy, key_text));
  auto other_log = [&](const std::string& name, uint64_t entries, uint64_t salt,
                       std::unique_ptr<ServerProcess>* out) {
    *out = std::make_unique<ServerProcess>(ServeOptions{tmp_.Sub(name), key_copy, 50, 0, {}, "127.0.0.1:0", true, "none"});
    ASSERT_OK((*out)->Start());
    EXPECT_EQ((*out)->verifier_key(), vkey_);
    ASSERT_OK_AND_ASSIGN(auto h, HttpClient::Create((*out)->url()));
    std::vector<std::string> lines;
    for (uint64_t n = 0; n < entries; ++n)
      lines.push_back(testutil::UniqueVariant(corpus_[n % corpus_.size()], salt + n));
    for (size_t b = 0; b < lines.size(); b += 50) {
      std::vector<std::string> batch(lines.begin() + b,
                                     lines.begin() + std::min(lines.size(), b + 50));
      ASSERT_OK(testutil::PostEvents(h.get(), batch));
    }
    ASSERT_OK(testutil::WaitForCheckpoint(h.get(), *verifier_, entries, kWait));
  };

  // Rolled back: fewer entries than the trusted checkpoint.
  std::unique_ptr<ServerProcess> rollback;
  ASSERT_NO_FATAL_FAILURE(other_log("rollback", 50, 0, &rollback));
  CommandResult rolled = verify(rollback->url());
  EXPECT_NE(rolled.exit_code, 0) << rolled.out;
  EXPECT_NE(rolled.err.find("rolled back"), std::string::npos) << rolled.err;
  EXPECT_EQ(testutil::ReadFile(state).value(), cp420.note) << "a failed verify changed the state";

  // Forked: more entries, but a different history below the trusted size.
  std::unique_ptr<ServerProcess> fork;
  ASSERT_NO_FATAL_FAILURE(other_log("fork", 500, 500000, &fork));
  CommandResult forked = verify(fork->url());
  EXPECT_NE(forked.exit_code, 0) << forked.out;
  EXPECT_NE(forked.err.find("fork"), std::string::npos) << forked.err;
  EXPECT_EQ(testutil::ReadFile(state).value(), cp420.note) << "a failed verify changed the state";

  // Without the state file the fork is a self-consistent log: only the
  // remembered checkpoint catches it.
  CommandResult stateless = RunAnnals({"verify", "--url", fork->url(), "--key", vkey_});
  EXPECT_EQ(stateless.exit_code, 0) << stateless.err;

  // A log signed by another key is refused outright.
  const std::string other_key = tmp_.Sub("other.key");
  CommandResult kg = RunAnnals({"keygen", "--name", verifier_->name(), "--out", other_key});
  ASSERT_EQ(kg.exit_code, 0) << kg.err;
  CommandResult wrong_key = RunAnnals({"verify", "--url", server_->url(), "--key", Trim(kg.out)});
  EXPECT_NE(wrong_key.exit_code, 0);
  EXPECT_FALSE(wrong_key.err.empty());

  // The genuine log still verifies against the state after all that.
  ASSERT_NO_FATAL_FAILURE(AppendUpTo(430));
  ASSERT_OK(WaitFor(430));
  CommandResult third = verify(server_->url());
  EXPECT_EQ(third.exit_code, 0) << third.err;
  EXPECT_NE(third.out.find("previously trusted 420"), std::string::npos) << third.out;
}

TEST(KeygenIntegrationTest, KeygenKeyNamesTheLogAndIsNeverOverwritten) {
  TempDir tmp;
  const std::string key = tmp.Sub("signing.key");
  const std::string origin = "ledger.example.com/annals-test";
  CommandResult kg = RunAnnals({"keygen", "--name", origin, "--out", key});
  ASSERT_EQ(kg.exit_code, 0) << kg.err;
  const std::string vkey = Trim(kg.out);
  EXPECT_TRUE(vkey.starts_with(origin + "+")) << vkey;
  ASSERT_OK_AND_ASSIGN(std::string key_text, testutil::ReadFile(key));
  EXPECT_TRUE(key_text.starts_with("PRIVATE+KEY+" + origin + "+")) << "key file has the wrong form";
  struct stat st;
  ASSERT_EQ(::stat(key.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u) << "a private key must not be readable by others";

  CommandResult again = RunAnnals({"keygen", "--name", "other", "--out", key});
  EXPECT_NE(again.exit_code, 0);
  EXPECT_NE(again.err.find("refusing to overwrite"), std::string::npos) << again.err;
  EXPECT_EQ(testutil::ReadFile(key).value(), key_text) << "keygen overwrote a key";

  ServerProcess server(ServeOptions{tmp.Sub("data"), key, 50, 0, {}, "127.0.0.1:0", true, "none"});
  ASSERT_OK(server.Start());
  EXPECT_EQ(server.verifier_key(), vkey);
  ASSERT_OK_AND_ASSIGN(auto verifier, note::Verifier::FromVerifierKey(vkey));
  EXPECT_EQ(verifier->name(), origin);
  ASSERT_OK_AND_ASSIGN(auto http, HttpClient::Create(server.url()));
  const auto corpus = testutil::CorpusAuditLines();
  ASSERT_GE(corpus.size(), 3u);
  ASSERT_OK(testutil::PostEvents(http.get(), {corpus[0], corpus[1], corpus[2]}));
  ASSERT_OK_AND_ASSIGN(SignedCheckpoint cp,
                       testutil::WaitForCheckpoint(http.get(), *verifier, 3, kWait));
  EXPECT_EQ(cp.cp.origin, origin);
  EXPECT_TRUE(cp.note.starts_with(origin + "\n3\n")) << cp.note;
  CommandResult v = RunAnnals({"verify", "--url", server.url(), "--key", vkey});
  EXPECT_EQ(v.exit_code, 0) << v.err;
  ASSERT_OK(server.Stop());
}

}  // namespace
}  // namespace annals
