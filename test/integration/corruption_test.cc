// Corruption tests of `annals verify --data DIR` on a data directory made by
// the real server (1000 real audit events, one of them a >70 KB event list
// stored as a blob, a series of signed checkpoints). Each test damages a
// fresh copy in one place and requires verify to fail (non-zero exit) and to
// name where: the entry index for a segment record, a tile or a blob, the
// record number for the checkpoint log. An unmodified copy passes. Some
// tests also check what `annals serve` does with the damaged copy.
#include <dirent.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <vector>

#include "checkpoint/checkpoint.h"
#include "checkpoint/note.h"
#include "client/http_client.h"
#include "common/bytes.h"
#include "common/crc32c.h"
#include "common/sha256.h"
#include "ledger/checkpoint_log.h"
#include "log/segment_format.h"
#include <thread>
#include "merkle/merkle.h"
#include "testutil/log_client.h"
#include "testutil/server_process.h"
#include "testutil/test_macros.h"

namespace annals {
namespace {

using testutil::CommandResult;
using testutil::RunAnnals;
using testutil::TempDir;

constexpr uint64_t kEntries = 1000;
constexpr uint64_t kLargeAt = 500;
constexpr auto kWait = std::chrono::seconds(30);
const char kSegmentName[] = "00000000000000000000.seg";

// One CRC-framed record (segments and checkpoints.log share the framing of
// log/segment_format.h: length u32 BE | masked crc32c u32 BE | data).
struct Record {
  uint64_t offset;       // of the record header in the file
  uint64_t data_offset;  // of the data
  uint32_t length;
};

std::vector<Record> ParseRecords(std::string_view file, uint64_t start) {
  std::vector<Record> out;
  uint64_t off = start;
  while (off + log::kRecordHeaderSize <= file.size()) {
    uint32_t len = GetBigEndian32(file.data() + off);
    if (off + log::kRecordHeaderSize + len > file.size()) break;
    out.push_back({off, off + log::kRecordHeaderSize, len});
    off += log::kRecordHeaderSize + len;
  }
  return out;
}

std::string Frame(std::string_view data) {
  std::string out;
  PutBigEndian32(&out, static_cast<uint32_t>(data.size()));
  uint32_t crc = crc32c::Extend(crc32c::Value(out.data(), 4), data.data(), data.size());
  PutBigEndian32(&out, crc32c::Mask(crc));
  out.append(data);
  return out;
}

// The index in "annals: verify FAILED at index N: ...", or -1.
int64_t FailedIndex(const std::string& err) {
  std::smatch m;
  if (std::regex_search(err, m, std::regex("FAILED at index ([0-9]+)"))) return std::stoll(m[1]);
  return -1;
}

// The pristine data directory, built once by a real server.
struct Pristine {
  TempDir tmp;
  std::string data;
  std::vector<std::string> payloads;
  std::string vkey;
};
Pristine* pristine = nullptr;

class CorruptionTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    pristine = new Pristine;
    pristine->data = pristine->tmp.Sub("data");
    Status s = Build();
    if (!s.ok()) {
      std::fprintf(stderr, "building the pristine log failed: %s\n", s.ToString().c_str());
      pristine->data.clear();
    }
  }
  static void TearDownTestSuite() {
    delete pristine;
    pristine = nullptr;
  }

  // 1000 entries in batches of 50 (the large one alone), a checkpoint after
  // each batch, then a clean stop.
  static Status Build() {
    testutil::ServeOptions o;
    o.redaction_policy = "none";  // byte-for-byte checks
    o.data_dir = pristine->data;
    o.checkpoint_interval_ms = 20;
    testutil::ServerProcess server(o);
    RETURN_IF_ERROR(server.Start());
    pristine->vkey = server.verifier_key();
    ASSIGN_OR_RETURN(auto verifier, note::Verifier::FromVerifierKey(pristine->vkey));
    ASSIGN_OR_RETURN(auto http, client::HttpClient::Create(server.url()));
    const auto corpus = testutil::CorpusAuditLines();
    if (corpus.empty()) return NotFoundError("no corpus in " + testutil::CorpusDir());
    auto& p = pristine->payloads;
    while (p.size() < kEntries) {
      std::vector<std::string> batch;
      if (p.size() == kLargeAt) {
        batch.push_back(testutil::LargeEventList(72 * 1024));
      } else {
        while (batch.size() < 50 && p.size() + batch.size() < kEntries &&
               p.size() + batch.size() != kLargeAt) {
          uint64_t n = p.size() + batch.size();
          batch.push_back(testutil::UniqueVariant(corpus[n % corpus.size()], n));
        }
      }
      ASSIGN_OR_RETURN(uint64_t first, testutil::PostEvents(http.get(), batch));
      if (first != p.size()) return InternalError("appended at " + std::to_string(first));
      p.insert(p.end(), batch.begin(), batch.end());
      RETURN_IF_ERROR(testutil::WaitForCheckpoint(http.get(), *verifier, p.size(), kWait).status());
    }
    return server.Stop();
  }

  void SetUp() override {
    ASSERT_NE(pristine, nullptr);
    ASSERT_FALSE(pristine->data.empty()) << "no pristine log (see the suite set-up error)";
    dir_ = tmp_.Sub("copy");
    ASSERT_OK(testutil::CopyTree(pristine->data, dir_));
  }

  CommandResult Verify() { return RunAnnals({"verify", "--data", dir_}); }

  // Runs verify on the damaged copy and requires a failure.
  CommandResult VerifyMustFail() {
    CommandResult r = Verify();
    std::printf("verify said: %s", r.err.c_str());
    EXPECT_NE(r.exit_code, 0) << "verify passed a damaged log: " << r.out;
    EXPECT_TRUE(r.err.starts_with("annals: verify FAILED")) << r.err;
    EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << "want one line on stderr: " << r.err;
    return r;
  }

  std::string SegmentPath() const { return dir_ + "/segments/" + kSegmentName; }
  std::string CheckpointLogPath() const { return dir_ + "/log/checkpoints.log"; }

  std::vector<Record> SegmentRecords() {
    auto f = testutil::ReadFile(SegmentPath());
    EXPECT_TRUE(f.ok()) << f.status().ToString();
    if (!f.ok()) return {};
    EXPECT_GE(f->size(), log::kSegmentHeaderSize);
    EXPECT_EQ(std::memcmp(f->data(), log::kSegmentMagic, sizeof(log::kSegmentMagic)), 0);
    EXPECT_EQ(GetBigEndian64(f->data() + 12), 0u) << "first index in the segment header";
    return ParseRecords(*f, log::kSegmentHeaderSize);
  }

  std::vector<Record> CheckpointRecords() {
    auto f = testutil::ReadFile(CheckpointLogPath());
    EXPECT_TRUE(f.ok()) << f.status().ToString();
    return f.ok() ? ParseRecords(*f, ledger::kCheckpointLogHeaderSize) : std::vector<Record>{};
  }

  // With entry kLargeAt's blob damaged or gone: the server starts and is
  // ready, names the entry, answers 500 for it and 200 around it.
  void ExpectServedAroundAnUnreadableBlob(const std::string& hex) {
    std::error_code ec;
    std::filesystem::remove_all(dir_ + "/index", ec);  // project the whole log again
    ASSERT_FALSE(ec) << ec.message();
    testutil::ServeOptions o;
    o.redaction_policy = "none";  // byte-for-byte checks
    o.data_dir = dir_;
    testutil::ServerProcess server(o);
    Status started = server.Start();
    ASSERT_TRUE(started.ok()) << "one unreadable blob stopped the server: " << started.ToString();
    EXPECT_NE(server.StderrText().find("entry " + std::to_string(kLargeAt) + ": payload unreadable"),
              std::string::npos)
        << server.StderrText();
    EXPECT_NE(server.StderrText().find(hex), std::string::npos) << server.StderrText();
    ASSERT_OK_AND_ASSIGN(auto http, client::HttpClient::Create(server.url()));
    ASSERT_OK_AND_ASSIGN(client::HttpResult r, http->Get("/v1/entries/" + std::to_string(kLargeAt)));
    EXPECT_EQ(r.status, 500) << r.body.substr(0, 200);
    for (uint64_t i : {kLargeAt - 1, kLargeAt + 1, kEntries - 1}) {
      ASSERT_OK_AND_ASSIGN(client::HttpResult ok, http->Get("/v1/entries/" + std::to_string(i)));
      EXPECT_EQ(ok.status, 200) << i << ": " << ok.body.substr(0, 200);
    }
    ASSERT_OK_AND_ASSIGN(auto ready, http->Get("/readyz"));
    EXPECT_EQ(ready.status, 200) << ready.body;
    ASSERT_OK_AND_ASSIGN(auto events, http->Get("/v1/events?limit=1"));
    EXPECT_EQ(events.status, 200) << events.body.substr(0, 200);
    ASSERT_OK_AND_ASSIGN(auto metrics, http->Get("/metrics"));
    EXPECT_NE(metrics.body.find("annals_projection_unreadable_payloads 1\n"), std::string::npos);
    ASSERT_OK(server.Stop());
  }

  TempDir tmp_;
  std::string dir_;
};

TEST_F(CorruptionTest, UnmodifiedCopyVerifies) {
  // The layout the damage below relies on.
  std::vector<std::string> segs;
  if (DIR* d = ::opendir((dir_ + "/segments").c_str())) {
    while (dirent* e = ::readdir(d))
      if (std::string(e->d_name).ends_with(".seg")) segs.push_back(e->d_name);
    ::closedir(d);
  }
  ASSERT_EQ(segs, std::vector<std::string>{kSegmentName});
  ASSERT_EQ(SegmentRecords().size(), kEntries);
  ASSERT_GE(CheckpointRecords().size(), 10u);

  CommandResult r = Verify();
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("verified 1000 entries"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("1 blobs"), std::string::npos) << r.out;
  // The copy is a working log too.
  CommandResult again = RunAnnals({"verify", "--data", pristine->data});
  EXPECT_EQ(again.exit_code, 0) << again.err;
}

TEST_F(CorruptionTest, FlippedSegmentByteIsReportedAtItsEntryIndex) {
  constexpr uint64_t kVictim = 337;
  std::vector<Record> recs = SegmentRecords();
  ASSERT_EQ(recs.size(), kEntries);
  const Record& r = recs[kVictim];
  ASSERT_OK(testutil::FlipByte(SegmentPath(), r.data_offset + r.length / 2));
  CommandResult v = VerifyMustFail();
  EXPECT_EQ(FailedIndex(v.err), static_cast<int64_t>(kVictim)) << v.err;

  // The server refuses the damaged log rather than cutting acknowledged,
  // checkpointed entries as if they were a torn tail.
  ASSERT_OK_AND_ASSIGN(std::string before, testutil::ReadFile(SegmentPath()));
  testutil::ServeOptions o;
  o.redaction_policy = "none";  // byte-for-byte checks
  o.data_dir = dir_;
  testutil::ServerProcess server(o);
  Status s = server.Start();
  EXPECT_FALSE(s.ok()) << "serve started on a log with a damaged checkpointed entry";
  EXPECT_NE(server.StderrText().find(std::to_string(kVictim)), std::string::npos)
      << server.StderrText();
  ASSERT_OK_AND_ASSIGN(std::string after, testutil::ReadFile(SegmentPath()));
  EXPECT_TRUE(after == before) << "serve modified the damaged segment (" << before.size() << " -> "
                               << after.size() << " bytes)";
}

TEST_F(CorruptionTest, CompressedSegmentsServeVerifyAndLocateAFlippedByte) {
  // A log of 256-entry segments: the server compresses the sealed ones in
  // the background and keeps answering from them.
  const std::string data = tmp_.Sub("zdata");
  testutil::ServeOptions o;
  o.redaction_policy = "none";  // byte-for-byte checks
  o.data_dir = data;
  o.checkpoint_interval_ms = 20;
  o.extra_args = {"--segment-entries", "256", "--segment-compression", "3"};
  std::vector<std::string> payloads;
  {
    testutil::ServerProcess server(o);
    ASSERT_OK(server.Start());
    ASSERT_OK_AND_ASSIGN(auto http, client::HttpClient::Create(server.url()));
    const auto corpus = testutil::CorpusAuditLines();
    ASSERT_FALSE(corpus.empty());
    while (payloads.size() < 700) {
      std::vector<std::string> batch;
      for (size_t k = 0; k < 100; ++k)
        batch.push_back(testutil::UniqueVariant(corpus[(payloads.size() + k) % corpus.size()],
                                                payloads.size() + k));
      ASSERT_OK_AND_ASSIGN(uint64_t first, testutil::PostEvents(http.get(), batch));
      ASSERT_EQ(first, payloads.size());
      payloads.insert(payloads.end(), batch.begin(), batch.end());
    }
    std::string metrics;
    for (int i = 0; i < 300; ++i) {
      ASSERT_OK_AND_ASSIGN(auto m, http->Get("/metrics"));
      metrics = m.body;
      if (metrics.find("annals_log_compressed_segments 2\n") != std::string::npos) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ASSERT_NE(metrics.find("annals_log_compressed_segments 2\n"), std::string::npos) << metrics;
    ASSERT_NE(metrics.find("annals_log_plain_segments 1\n"), std::string::npos) << metrics;
    for (uint64_t i : {0, 255, 256, 300, 511, 699}) {
      ASSERT_OK_AND_ASSIGN(auto r, http->Get("/v1/entries/" + std::to_string(i)));
      EXPECT_EQ(r.status, 200) << i << ": " << r.body.substr(0, 200);
      EXPECT_NE(r.body.find(nlohmann::json::parse(payloads[i]).at("auditID").get<std::string>()),
                std::string::npos)
          << i;
    }
    ASSERT_OK(server.Stop());
  }
  const std::string z = data + "/segments/00000000000000000256.zseg";
  ASSERT_TRUE(std::filesystem::exists(z));
  ASSERT_FALSE(std::filesystem::exists(data + "/segments/00000000000000000256.seg"));
  CommandResult ok = RunAnnals({"verify", "--data", data});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_NE(ok.out.find("verified 700 entries"), std::string::npos) << ok.out;

  // One byte of the second segment's compressed records.
  ASSERT_OK(testutil::FlipByte(z, log::kZsegHeaderSize + 200));
  CommandResult bad = RunAnnals({"verify", "--data", data});
  EXPECT_NE(bad.exit_code, 0) << bad.out;
  EXPECT_EQ(FailedIndex(bad.err), 256) << bad.err;
  EXPECT_NE(bad.err.find("entries 256..511"), std::string::npos) << bad.err;
  // The server starts (it reads only the ends of a compressed segment) and
  // refuses the damaged frame's entries, serving the others.
  testutil::ServerProcess server(o);
  ASSERT_OK(server.Start());
  ASSERT_OK_AND_ASSIGN(auto http, client::HttpClient::Create(server.url()));
  ASSERT_OK_AND_ASSIGN(auto damaged, http->Get("/v1/entries/300"));
  EXPECT_EQ(damaged.status, 500) << damaged.body;
  ASSERT_OK_AND_ASSIGN(auto fine, http->Get("/v1/entries/100"));
  EXPECT_EQ(fine.status, 200) << fine.body.substr(0, 200);
  ASSERT_OK(server.Stop());
}

TEST_F(CorruptionTest, EvidenceBundlesFromTheServedLogVerifyOfflineAndFailOnAnyChange) {
  testutil::ServeOptions o;
  o.redaction_policy = "none";  // byte-for-byte checks
  o.data_dir = dir_;
  testutil::ServerProcess server(o);
  ASSERT_OK(server.Start());
  const std::string vkey = pristine->vkey;
  const std::string bundle = tmp_.Sub("evidence.tar");
  // Chosen entries, one of them the >64 KiB event kept as a blob.
  CommandResult ex = RunAnnals({"export", "--url", server.url(), "--log-key", vkey, "--index",
                                "3,337", "--index", std::to_string(kLargeAt), "--out", bundle});
  ASSERT_EQ(ex.exit_code, 0) << ex.err;
  EXPECT_NE(ex.out.find("wrote " + bundle + ": 3 entries"), std::string::npos) << ex.out;
  // A question's answer: every `create` event the search finds.
  const std::string answer = tmp_.Sub("creates.tar");
  CommandResult json = RunAnnals({"search", "--url", server.url(), "--verb", "create", "-o", "json",
                                  "--limit", "10000"});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  const size_t creates = nlohmann::json::parse(json.out).at("events").size();
  ASSERT_GT(creates, 0u);
  CommandResult sx = RunAnnals({"search", "--url", server.url(), "--verb", "create", "--export",
                                answer, "--log-key", vkey});
  ASSERT_EQ(sx.exit_code, 0) << sx.err;
  EXPECT_NE(sx.out.find(": " + std::to_string(creates) + " entries"), std::string::npos) << sx.out;
  // Without the key nothing is written.
  CommandResult nokey = RunAnnals({"export", "--url", server.url(), "--index", "3", "--out",
                                   tmp_.Sub("nokey.tar")});
  EXPECT_NE(nokey.exit_code, 0);
  ASSERT_OK(server.Stop());

  // Offline: nothing but the file and the key.
  CommandResult ok = RunAnnals({"verify", "--bundle", bundle, "--key", vkey});
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_NE(ok.out.find("bundle verified: 3 entries (3,337,500)"), std::string::npos) << ok.out;
  // Entry 500's 72 KB payload is in the blob store: the bundle carries it.
  EXPECT_NE(ok.out.find("1 of them hold a payload over 64 KiB by its SHA-256; 1 such payloads are in the bundle and match"),
            std::string::npos)
      << ok.out;
  CommandResult ok2 = RunAnnals({"verify", "--bundle", answer, "--key", vkey});
  EXPECT_EQ(ok2.exit_code, 0) << ok2.err;
  // Any tar tool reads it.
  CommandResult listed = testutil::RunProgram({"/bin/tar", "-tf", bundle});
  EXPECT_EQ(listed.exit_code, 0) << listed.err;
  EXPECT_EQ(listed.out, "manifest\ncheckpoint\nentries/3\nproofs/3\nentries/337\nproofs/337\n"
                        "entries/500\nproofs/500\npayloads/500\n");
  // Extracted, the payload is the event list posted, byte for byte.
  const std::string x = tmp_.Sub("extracted");
  std::filesystem::create_directories(x);
  CommandResult extracted = testutil::RunProgram({"/bin/tar", "-xf", bundle, "-C", x});
  ASSERT_EQ(extracted.exit_code, 0) << extracted.err;
  ASSERT_OK_AND_ASSIGN(std::string payload, testutil::ReadFile(x + "/payloads/500"));
  EXPECT_TRUE(payload == pristine->payloads[kLargeAt]) << payload.size();

  // A changed byte anywhere, header, manifest, checkpoint, entry, proof or
  // padding, fails verification.
  ASSERT_OK_AND_ASSIGN(std::string good, testutil::ReadFile(bundle));
  for (uint64_t at = 0; at < good.size(); at += good.size() / 37 + 1) {
    ASSERT_OK(testutil::FlipByte(bundle, at));
    CommandResult bad = RunAnnals({"verify", "--bundle", bundle, "--key", vkey});
    EXPECT_NE(bad.exit_code, 0) << "byte " << at << " changed and the bundle still verified";
    EXPECT_TRUE(bad.err.starts_with("annals: bundle FAILED: ")) << bad.err;
    ASSERT_OK(testutil::FlipByte(bundle, at));
  }
  // Another key does not verify it.
  CommandResult other = RunAnnals({"verify", "--bundle", bundle, "--key",
                                   "annals.local/log+00000000+AaKzTd+jQO0HUgElDEXKCJVG/VQ9qM4NZk4hEnCkSVR3"});
  EXPECT_NE(other.exit_code, 0);
}

TEST_F(CorruptionTest, FlippedTileByteIsReportedInsideTheTile) {
  // Level 0's full tiles, tile N at byte N * 8192 (docs/format/tiles.md).
  const std::string tile = dir_ + "/log/tiles/0.tiles";
  ASSERT_OK_AND_ASSIGN(std::string good, testutil::ReadFile(tile));
  ASSERT_GE(good.size(), 2u * 256 * 32);
  ASSERT_OK(testutil::FlipByte(tile, 100 * 32 + 7));
  CommandResult v = VerifyMustFail();
  const int64_t idx = FailedIndex(v.err);
  EXPECT_GE(idx, 0) << v.err;
  EXPECT_LT(idx, 256) << v.err;
  EXPECT_NE(v.err.find("tile/0/000"), std::string::npos) << v.err;

  // Tiles are derived data: the server rebuilds them from the segments.
  testutil::ServeOptions o;
  o.redaction_policy = "none";  // byte-for-byte checks
  o.data_dir = dir_;
  testutil::ServerProcess server(o);
  ASSERT_OK(server.Start());
  ASSERT_OK(server.Stop());
  ASSERT_OK_AND_ASSIGN(std::string repaired, testutil::ReadFile(tile));
  EXPECT_TRUE(repaired == good) << "the damaged tile was not rebuilt";
  CommandResult after = Verify();
  EXPECT_EQ(after.exit_code, 0) << after.err;
}

TEST_F(CorruptionTest, MissingTileIsReportedInsideTheTile) {
  // The level-0 file cut after its first tile: tile 1 is gone.
  ASSERT_EQ(::truncate((dir_ + "/log/tiles/0.tiles").c_str(), 256 * 32), 0);
  CommandResult v = VerifyMustFail();
  const int64_t idx = FailedIndex(v.err);
  EXPECT_GE(idx, 256) << v.err;
  EXPECT_LT(idx, 512) << v.err;
}

TEST_F(CorruptionTest, FlippedBlobByteIsReportedAtTheEntryThatReferencesIt) {
  const std::string& large = pristine->payloads[kLargeAt];
  ASSERT_GT(large.size(), 70u * 1024);
  const std::string hex = HexEncode(HashBytes(Sha256(large)));
  const std::string blob = dir_ + "/blobs/" + hex.substr(0, 2) + "/" + hex;
  ASSERT_OK_AND_ASSIGN(std::string stored, testutil::ReadFile(blob));
  ASSERT_TRUE(stored == large) << "the blob does not hold the payload";
  ASSERT_OK(testutil::FlipByte(blob, large.size() / 2));
  CommandResult v = VerifyMustFail();
  EXPECT_EQ(FailedIndex(v.err), static_cast<int64_t>(kLargeAt)) << v.err;

  // The server never hands out the damaged payload as the event, and does
  // not stop for it: it starts (projecting the whole log again, the
  // derived indexes removed), refuses that entry, reports it, and serves
  // everything else.
  ExpectServedAroundAnUnreadableBlob(hex);
}

TEST_F(CorruptionTest, MissingBlobIsReportedAndEverythingElseIsServed) {
  const std::string hex = HexEncode(HashBytes(Sha256(pristine->payloads[kLargeAt])));
  ASSERT_EQ(::unlink((dir_ + "/blobs/" + hex.substr(0, 2) + "/" + hex).c_str()), 0);
  CommandResult v = VerifyMustFail();
  EXPECT_EQ(FailedIndex(v.err), static_cast<int64_t>(kLargeAt)) << v.err;
  ExpectServedAroundAnUnreadableBlob(hex);
}

TEST_F(CorruptionTest, TruncatedSegmentIsReportedAsMissingEntries) {
  std::vector<Record> recs = SegmentRecords();
  ASSERT_EQ(recs.size(), kEntries);
  ASSERT_OK_AND_ASSIGN(std::string seg, testutil::ReadFile(SegmentPath()));
  ASSERT_OK(testutil::OverwriteFile(SegmentPath(), seg.substr(0, recs[900].offset)));
  CommandResult v = VerifyMustFail();
  EXPECT_NE(v.err.find("900"), std::string::npos) << v.err;
}

TEST_F(CorruptionTest, LostCheckpointsAreNotSignedAgainWithoutTheOperator) {
  // checkpoints.log deleted and the log's tail cut: signing what is left
  // would sign a smaller tree than the 1000 entries already published.
  std::vector<Record> recs = SegmentRecords();
  ASSERT_EQ(recs.size(), kEntries);
  ASSERT_EQ(::unlink(CheckpointLogPath().c_str()), 0);
  ASSERT_OK_AND_ASSIGN(std::string seg, testutil::ReadFile(SegmentPath()));
  ASSERT_OK(testutil::OverwriteFile(SegmentPath(), seg.substr(0, recs[900].offset)));

  CommandResult v = VerifyMustFail();
  EXPECT_NE(v.err.find("no signed checkpoint covers any of the 900 entries"), std::string::npos) << v.err;

  testutil::ServeOptions o;
  o.redaction_policy = "none";  // byte-for-byte checks
  o.data_dir = dir_;
  {
    testutil::ServerProcess server(o);
    Status s = server.Start();
    EXPECT_FALSE(s.ok()) << "serve signed a log whose checkpoints were lost";
    EXPECT_NE(server.StderrText().find("--accept-lost-checkpoints"), std::string::npos)
        << server.StderrText();
  }
  // Nothing was signed by the refused start.
  auto cps = testutil::ReadFile(CheckpointLogPath());
  EXPECT_TRUE(!cps.ok() || cps->size() <= ledger::kCheckpointLogHeaderSize)
      << "a refused start wrote " << (cps.ok() ? cps->size() : 0) << " bytes of checkpoints";

  // The operator's decision: the server signs the log as found, and says so.
  o.extra_args = {"--accept-lost-checkpoints"};
  testutil::ServerProcess server(o);
  ASSERT_OK(server.Start());
  EXPECT_NE(server.StderrText().find("--accept-lost-checkpoints: the log's 900 entries"), std::string::npos)
      << server.StderrText();
  ASSERT_OK_AND_ASSIGN(auto verifier, note::Verifier::FromVerifierKey(pristine->vkey));
  ASSERT_OK_AND_ASSIGN(auto http, client::HttpClient::Create(server.url()));
  ASSERT_OK_AND_ASSIGN(auto cp, testutil::WaitForCheckpoint(http.get(), *verifier, 900, kWait));
  EXPECT_EQ(cp.cp.size, 900u);
  ASSERT_OK(server.Stop());
  ASSERT_OK_AND_ASSIGN(std::string losses, testutil::ReadFile(dir_ + "/log/" + ledger::kAcceptedLossesName));
  EXPECT_NE(losses.find("no signed checkpoint for 900 entries"), std::string::npos) << losses;

  // verify passes again (the entries are signed now) and reports the decision.
  CommandResult after = Verify();
  EXPECT_EQ(after.exit_code, 0) << after.err;
  EXPECT_NE(after.err.find("an operator accepted lost checkpoints"), std::string::npos) << after.err;
  // A restart needs no flag: the log has its checkpoints again.
  o.extra_args.clear();
  testutil::ServerProcess again(o);
  ASSERT_OK(again.Start());
  ASSERT_OK(again.Stop());
}

// The offset, inside checkpoint record `rec`'s note, of the base64 of its
// (first) signature, and that base64's length.
std::pair<size_t, size_t> SignatureSpan(std::string_view note) {
  const std::string dash = "\n\xE2\x80\x94 ";  // "\n— "
  size_t line = note.find(dash);
  if (line == std::string_view::npos) return {0, 0};
  size_t b64 = note.find(' ', line + dash.size()) + 1;
  size_t end = note.find('\n', b64);
  return {b64, end - b64};
}

class CheckpointCorruptionTest : public CorruptionTest {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(CorruptionTest::SetUp());
    recs_ = CheckpointRecords();
    ASSERT_GE(recs_.size(), 3u);
    victim_ = recs_.size() / 2;  // not the last: a torn tail is another matter
    ASSERT_OK_AND_ASSIGN(file_, testutil::ReadFile(CheckpointLogPath()));
    note_ = file_.substr(recs_[victim_].data_offset, recs_[victim_].length);
  }
  // Replaces the victim record with `note`, correctly framed.
  Status ReplaceVictim(std::string_view note) {
    std::string out = file_.substr(0, recs_[victim_].offset) + Frame(note) +
                      file_.substr(recs_[victim_].data_offset + recs_[victim_].length);
    return testutil::OverwriteFile(CheckpointLogPath(), out);
  }
  std::string RecordName() const { return "checkpoint record " + std::to_string(victim_); }

  std::vector<Record> recs_;
  size_t victim_ = 0;
  std::string file_;
  std::string note_;
};

TEST_F(CheckpointCorruptionTest, FlippedSignatureByteIsReportedAtItsRecord) {
  auto [b64, len] = SignatureSpan(note_);
  ASSERT_GT(len, 40u) << note_;
  ASSERT_OK(testutil::FlipByte(CheckpointLogPath(), recs_[victim_].data_offset + b64 + len / 2));
  CommandResult v = VerifyMustFail();
  EXPECT_NE(v.err.find(RecordName()), std::string::npos) << v.err;
}

TEST_F(CheckpointCorruptionTest, BadSignatureWithValidFramingIsReportedAtItsRecord) {
  // Flip a bit of the Ed25519 signature itself and re-frame the record, so
  // that only the signature check can notice.
  auto [b64, len] = SignatureSpan(note_);
  ASSERT_GT(len, 40u) << note_;
  auto raw = Base64Decode(note_.substr(b64, len));
  ASSERT_TRUE(raw.has_value());
  ASSERT_EQ(raw->size(), 4u + 64u);
  (*raw)[4 + 20] ^= 0x01;
  std::string forged = note_.substr(0, b64) + Base64Encode(*raw) + note_.substr(b64 + len);
  ASSERT_OK(ReplaceVictim(forged));
  CommandResult v = VerifyMustFail();
  EXPECT_NE(v.err.find(RecordName()), std::string::npos) << v.err;
  EXPECT_NE(v.err.find("signature"), std::string::npos) << v.err;
}

TEST_F(CheckpointCorruptionTest, SignedCheckpointWithAWrongRootIsReportedAtItsRecord) {
  // A checkpoint properly signed with the log's own key, over a root that is
  // not the tree's: what a buggy or dishonest signer would leave behind.
  ASSERT_OK_AND_ASSIGN(std::string skey, testutil::ReadFile(dir_ + "/key"));
  while (!skey.empty() && skey.back() == '\n') skey.pop_back();
  ASSERT_OK_AND_ASSIGN(auto signer, note::Signer::FromPrivateKey(skey));
  ASSERT_OK_AND_ASSIGN(note::Note n, note::ParseNote(note_));
  ASSERT_OK_AND_ASSIGN(checkpoint::Checkpoint cp, checkpoint::Parse(n.text));
  ASSERT_GT(cp.size, 0u);
  cp.root[0] ^= 0x01;
  ASSERT_OK_AND_ASSIGN(std::string forged, signer->SignNote(cp.Marshal()));
  ASSERT_OK(ReplaceVictim(forged));
  CommandResult v = VerifyMustFail();
  EXPECT_NE(v.err.find(RecordName()), std::string::npos) << v.err;
  EXPECT_NE(v.err.find("root"), std::string::npos) << v.err;
}

// DISABLED: fails today. verify names "index 1000" (one past the log) for a
// bad checkpoint root: VerifyDataDir (src/ledger/verifier.cc) falls back to
// bad_index = next for any error, including TreeChecker::CheckRoot's, which
// is about a checkpoint, not an entry. Enable once only segment-scan errors
// take that fallback.
TEST_F(CheckpointCorruptionTest, WrongRootNamesNoEntryBeyondTheCheckpoint) {
  ASSERT_OK_AND_ASSIGN(std::string skey, testutil::ReadFile(dir_ + "/key"));
  while (!skey.empty() && skey.back() == '\n') skey.pop_back();
  ASSERT_OK_AND_ASSIGN(auto signer, note::Signer::FromPrivateKey(skey));
  ASSERT_OK_AND_ASSIGN(note::Note n, note::ParseNote(note_));
  ASSERT_OK_AND_ASSIGN(checkpoint::Checkpoint cp, checkpoint::Parse(n.text));
  cp.root[0] ^= 0x01;
  ASSERT_OK_AND_ASSIGN(std::string forged, signer->SignNote(cp.Marshal()));
  ASSERT_OK(ReplaceVictim(forged));
  CommandResult v = VerifyMustFail();
  EXPECT_LT(FailedIndex(v.err), static_cast<int64_t>(cp.size))
      << "the damage is in the checkpoint, not in an entry at or after its size: " << v.err;
}

// DISABLED: fails today. CheckpointLog::Open treats any bad record as a torn
// tail and truncates the file there, so one flipped byte in the middle of
// checkpoints.log makes `serve` silently delete every later signed
// checkpoint (src/ledger/checkpoint_log.cc, Scan). Enable once Scan only
// cuts a bad record that reaches the end of the file.
TEST_F(CheckpointCorruptionTest, ServeKeepsTheCheckpointsAfterADamagedRecord) {
  // A damaged record in the middle of checkpoints.log is not a torn tail:
  // the signed checkpoints after it must not be thrown away on start.
  auto [b64, len] = SignatureSpan(note_);
  ASSERT_GT(len, 40u) << note_;
  ASSERT_OK(testutil::FlipByte(CheckpointLogPath(), recs_[victim_].data_offset + b64 + len / 2));
  ASSERT_OK_AND_ASSIGN(std::string damaged, testutil::ReadFile(CheckpointLogPath()));
  testutil::ServeOptions o;
  o.redaction_policy = "none";  // byte-for-byte checks
  o.data_dir = dir_;
  testutil::ServerProcess server(o);
  Status s = server.Start();
  if (s.ok()) ASSERT_OK(server.Stop());
  ASSERT_OK_AND_ASSIGN(std::string after, testutil::ReadFile(CheckpointLogPath()));
  EXPECT_GE(after.size(), damaged.size())
      << "serve cut checkpoints.log at the damaged record " << victim_ << " of " << recs_.size()
      << ", discarding " << recs_.size() - victim_ - 1 << " valid signed checkpoints after it";
  EXPECT_TRUE(after.substr(0, damaged.size()) == damaged) << "serve rewrote checkpoints.log";
}

}  // namespace
}  // namespace annals
