// A full disk under the real server (docs/faults.md "A full disk"): the
// data directory on a 48 MB tmpfs, real audit EventLists posted until the
// disk is full, the server stopped, the rest of the disk filled by another
// file, and the server started again. It must start, serve the log and
// the questions, refuse ingest with 503 and say why in /readyz and
// /metrics, take ingest again by itself once space returns, and lose none
// of what it acknowledged. Needs root (mount); without it the test is
// reported as skipped, saying so.
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <unistd.h>

#include <sys/stat.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "checkpoint/checkpoint.h"
#include "checkpoint/note.h"
#include "ledger/checkpoint_log.h"
#include "client/http_client.h"
#include "testutil/log_client.h"
#include "testutil/server_process.h"
#include "testutil/test_macros.h"

namespace annals {
namespace {

using testutil::RunAnnals;
using testutil::TempDir;
constexpr auto kWait = std::chrono::seconds(30);

class DiskFullTest : public ::testing::Test {
 protected:
  void SetUp() override {
    mnt_ = tmp_.Sub("mnt");
    ASSERT_EQ(::mkdir(mnt_.c_str(), 0700), 0);
    if (::mount("tmpfs", mnt_.c_str(), "tmpfs", 0, "size=48m") != 0)
      GTEST_SKIP() << "cannot mount a tmpfs (" << std::strerror(errno)
                   << "): a full disk needs root to be made; this test did not run";
    mounted_ = true;
    data_ = mnt_ + "/data";
  }
  void TearDown() override {
    if (mounted_) ::umount2(mnt_.c_str(), MNT_DETACH);
  }

  // Writes `path` until the disk is full (or `bytes` are written).
  static uint64_t Fill(const std::string& path, uint64_t bytes) {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (f == nullptr) return 0;
    std::string chunk(64 << 10, 'x');
    uint64_t written = 0;
    while (written < bytes) {
      size_t n = std::fwrite(chunk.data(), 1, chunk.size(), f);
      written += n;
      if (n < chunk.size() || std::fflush(f) != 0) break;
    }
    std::fclose(f);
    return written;
  }

  // The bytes under each directory of the data directory and the files at
  // its top (what filled the disk, when a case fails).
  std::string DiskUse() const {
    std::string out;
    namespace fs = std::filesystem;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(data_, ec)) {
      uint64_t bytes = 0;
      if (e.is_directory()) {
        for (const auto& f : fs::recursive_directory_iterator(e.path(), ec))
          if (f.is_regular_file()) bytes += f.file_size();
      } else if (e.is_regular_file()) {
        bytes = e.file_size();
      }
      out += e.path().filename().string() + " " + std::to_string(bytes) + "\n";
    }
    return out;
  }

  // An EventList of `n` corpus events made unique with `tag`.
  std::string EventList(size_t n, const std::string& tag) {
    std::string body = R"({"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[)";
    for (size_t i = 0; i < n; ++i) {
      if (i) body += ',';
      body += testutil::UniqueVariant(corpus_[(next_ + i) % corpus_.size()], tag + "-" + std::to_string(next_ + i));
    }
    next_ += n;
    return body + "]}";
  }

  // Posts EventLists of 400 until one is refused; returns how many events
  // were acknowledged, the refusal's body in *refusal.
  uint64_t PostUntilRefused(client::HttpClient* http, const std::string& tag, std::string* refusal) {
    uint64_t acknowledged = 0;
    for (int i = 0; i < 10000; ++i) {
      auto r = http->Post("/v1/ingest/k8s-audit", EventList(400, tag));
      EXPECT_TRUE(r.ok()) << r.status().ToString();
      if (!r.ok()) break;
      if (r->status == 200) {
        acknowledged += 400;
        continue;
      }
      EXPECT_EQ(r->status, 503) << r->body;
      *refusal = r->body;
      break;
    }
    return acknowledged;
  }

  // A question's answer once the projection has caught up (503 until
  // then; 30 s at most), or the last answer.
  static client::HttpResult QuestionOnceCaughtUp(client::HttpClient* http) {
    client::HttpResult last;
    for (int i = 0; i < 300; ++i) {
      auto r = http->Get("/v1/events?verb=create&limit=5");
      if (r.ok()) last = *r;
      if (r.ok() && r->status != 503) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return last;
  }

  // Posts 100 events every 100 ms until one is taken (10 s at most);
  // returns the last answer's status and body.
  std::pair<int, std::string> PostUntilTaken(client::HttpClient* http, const std::string& tag) {
    std::pair<int, std::string> last{0, ""};
    for (int i = 0; i < 100 && last.first != 200; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      auto r = http->Post("/v1/ingest/k8s-audit", EventList(100, tag));
      if (r.ok()) last = {r->status, r->body};
    }
    return last;
  }

  TempDir tmp_;
  std::string mnt_, data_;
  bool mounted_ = false;
  // The corpus's audit Events (other lines are not webhook input).
  std::vector<std::string> corpus_ = [] {
    std::vector<std::string> events;
    for (auto& l : testutil::CorpusAuditLines())
      if (l.find("\"auditID\"") != std::string::npos && l.find("\"kind\":\"Event\"") != std::string::npos)
        events.push_back(std::move(l));
    return events;
  }();
  uint64_t next_ = 0;
};

TEST_F(DiskFullTest, StartsOnAFullDiskServesReadsRefusesIngestAndRecoversWhenSpaceReturns) {
  ASSERT_FALSE(corpus_.empty());
  // Another program's 8 MB on the same file system: deleted later, it is
  // the space that returns.
  ASSERT_EQ(Fill(mnt_ + "/other", 8 << 20), uint64_t{8} << 20);

  testutil::ServeOptions o;
  o.data_dir = data_;
  o.checkpoint_interval_ms = 50;
  uint64_t acknowledged = 0;
  std::string refusal;
  {
    testutil::ServerProcess server(o);
    ASSERT_OK(server.Start());
    ASSERT_OK_AND_ASSIGN(auto http, client::HttpClient::Create(server.url()));
    acknowledged = PostUntilRefused(http.get(), "a", &refusal);
    ASSERT_GT(acknowledged, 4000u) << "the disk filled too early";
    EXPECT_TRUE(refusal.find("disk nearly full") != std::string::npos ||
                refusal.find("out of space") != std::string::npos)
        << refusal;
    // /readyz says why (the guard looks four times a second).
    std::string ready;
    for (int i = 0; i < 40; ++i) {
      ASSERT_OK_AND_ASSIGN(auto rz, http->Get("/readyz"));
      ready = rz.body;
      if (rz.status == 503 && ready.find("disk nearly full") != std::string::npos) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    EXPECT_NE(ready.find("disk nearly full"), std::string::npos) << ready;
    // The questions go on while ingest is refused: the projection catches
    // up with everything acknowledged in the room the guard kept. (Stopped
    // far behind instead, the next start would need more room than the
    // reserve holds to catch up: docs/faults.md.)
    const client::HttpResult events = QuestionOnceCaughtUp(http.get());
    EXPECT_EQ(events.status, 200) << events.body.substr(0, 200) << "\n" << DiskUse() << server.StderrText();
    ASSERT_OK(server.Stop());
  }
  // Whatever room is left, taken.
  Fill(mnt_ + "/filler", uint64_t{1} << 30);

  o.wait_ready = false;
  testutil::ServerProcess server(o);
  Status started = server.Start();
  ASSERT_TRUE(started.ok()) << started.ToString() << "\n" << server.StderrText();
  EXPECT_NE(server.StderrText().find("released the"), std::string::npos) << server.StderrText();
  ASSERT_OK_AND_ASSIGN(auto http, client::HttpClient::Create(server.url()));
  ASSERT_OK_AND_ASSIGN(auto verifier, note::Verifier::FromVerifierKey(server.verifier_key()));
  // Reads: the checkpoint covers everything acknowledged, entries and the
  // questions answer, health is fine.
  ASSERT_OK_AND_ASSIGN(auto cp, testutil::WaitForCheckpoint(http.get(), *verifier, acknowledged, kWait));
  EXPECT_GE(cp.cp.size, acknowledged);
  ASSERT_OK_AND_ASSIGN(auto entry, http->Get("/v1/entries/" + std::to_string(acknowledged - 1)));
  EXPECT_EQ(entry.status, 200) << entry.body.substr(0, 200);
  // The questions, once the projection has caught up with the log's tail
  // (it writes its indexes in the room the reserve left).
  const client::HttpResult events = QuestionOnceCaughtUp(http.get());
  EXPECT_EQ(events.status, 200) << events.body.substr(0, 200) << "\n" << DiskUse() << server.StderrText();
  ASSERT_OK_AND_ASSIGN(auto health, http->Get("/healthz"));
  EXPECT_EQ(health.status, 200) << health.body;
  // Writes: refused, every time, each refused event counted.
  for (int i = 0; i < 3; ++i) {
    ASSERT_OK_AND_ASSIGN(auto r, http->Post("/v1/ingest/k8s-audit", EventList(100, "b")));
    EXPECT_EQ(r.status, 503) << r.body;
    EXPECT_NE(r.body.find("disk nearly full"), std::string::npos) << r.body;
  }
  ASSERT_OK_AND_ASSIGN(auto rz, http->Get("/readyz"));
  EXPECT_EQ(rz.status, 503) << rz.body;
  ASSERT_OK_AND_ASSIGN(auto metrics, http->Get("/metrics"));
  EXPECT_NE(metrics.body.find("annals_events_rejected_total{source=\"k8s-audit\"} 300"), std::string::npos)
      << metrics.body;
  EXPECT_NE(metrics.body.find("annals_disk_writes_refused 1"), std::string::npos);

  // Space returns: ingest is taken again without a restart.
  ASSERT_EQ(::unlink((mnt_ + "/other").c_str()), 0);
  ASSERT_EQ(::unlink((mnt_ + "/filler").c_str()), 0);
  const auto [status, body] = PostUntilTaken(http.get(), "c");
  ASSERT_EQ(status, 200) << body;
  ASSERT_OK_AND_ASSIGN(auto again, http->Get("/readyz"));
  EXPECT_EQ(again.status, 200) << again.body;
  ASSERT_OK(server.Stop());
  // Nothing acknowledged was lost, and the log verifies.
  auto v = RunAnnals({"verify", "--data", data_});
  EXPECT_EQ(v.exit_code, 0) << v.err;
  EXPECT_NE(v.out.find("verified " + std::to_string(acknowledged + 100) + " entries"), std::string::npos)
      << v.out;
}

TEST_F(DiskFullTest, WithoutTheGuardAFullDiskIsRetriedInPlaceAndEachCheckpointSignedOnce) {
  // --disk-reserve 0: the disk really fills under the log, its tiles, the
  // checkpoints and RocksDB. Acknowledged events survive, nothing is
  // appended to checkpoints.log twice, no temporary file is left, /readyz
  // says why, and ingest resumes in the same process once space returns.
  ASSERT_FALSE(corpus_.empty());
  ASSERT_EQ(Fill(mnt_ + "/other", 8 << 20), uint64_t{8} << 20);
  testutil::ServeOptions o;
  o.data_dir = data_;
  o.checkpoint_interval_ms = 50;
  o.extra_args = {"--disk-reserve", "0"};
  testutil::ServerProcess server(o);
  ASSERT_OK(server.Start());
  ASSERT_OK_AND_ASSIGN(auto http, client::HttpClient::Create(server.url()));
  ASSERT_OK_AND_ASSIGN(auto verifier, note::Verifier::FromVerifierKey(server.verifier_key()));
  std::string refusal;
  const uint64_t acknowledged = PostUntilRefused(http.get(), "d", &refusal);
  ASSERT_GT(acknowledged, 4000u);
  EXPECT_NE(refusal.find("out of space"), std::string::npos) << refusal;
  // The refused batch's bytes were cut, so a small one could fit, and an
  // index that opens again after its failed flush gives back what that
  // flush left: take what is left until a small batch is refused too, and
  // /readyz says so.
  client::HttpResult again;
  int fillers = 0;
  while (fillers < 5) {
    Fill(mnt_ + "/filler" + std::to_string(fillers++), uint64_t{1} << 30);
    ASSERT_OK_AND_ASSIGN(again, http->Post("/v1/ingest/k8s-audit", EventList(10, "e")));
    if (again.status != 200) break;
  }
  EXPECT_EQ(again.status, 503) << again.body;
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // publisher retries meanwhile
  ASSERT_OK_AND_ASSIGN(auto rz, http->Get("/readyz"));
  EXPECT_EQ(rz.status, 503) << rz.body;
  // Space returns: the same process takes ingest again and signs it all.
  ASSERT_EQ(::unlink((mnt_ + "/other").c_str()), 0);
  for (int i = 0; i < fillers; ++i) ASSERT_EQ(::unlink((mnt_ + "/filler" + std::to_string(i)).c_str()), 0);
  const auto [status, body] = PostUntilTaken(http.get(), "f");
  ASSERT_EQ(status, 200) << body;
  ASSERT_OK_AND_ASSIGN(auto cp, testutil::WaitForCheckpoint(http.get(), *verifier, acknowledged + 100, kWait));
  EXPECT_GE(cp.cp.size, acknowledged + 100);
  // The indexes that failed to write while the disk was full catch up: the
  // questions answer, over everything acknowledged.
  client::HttpResult ready;
  for (int i = 0; i < 300; ++i) {
    ASSERT_OK_AND_ASSIGN(ready, http->Get("/readyz"));
    if (ready.status == 200) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(ready.status, 200) << ready.body << "\n" << server.StderrText().substr(0, 4000);
  ASSERT_OK_AND_ASSIGN(auto events, http->Get("/v1/events?group_by=verb"));
  EXPECT_EQ(events.status, 200) << events.body.substr(0, 300);
  ASSERT_OK(server.Stop());
  // Each signed size once, rising; no temporary file anywhere.
  std::vector<uint64_t> sizes;
  ASSERT_OK(ledger::CheckpointLog::Scan(data_ + "/log", [&](uint64_t, std::string_view note) -> Status {
    ASSIGN_OR_RETURN(auto opened, note::OpenNote(note, *verifier));
    ASSIGN_OR_RETURN(auto c, checkpoint::Parse(opened.text));
    sizes.push_back(c.size);
    return OkStatus();
  }));
  for (size_t i = 1; i < sizes.size(); ++i) EXPECT_LT(sizes[i - 1], sizes[i]) << "records " << i - 1 << ", " << i;
  for (const auto& e : std::filesystem::recursive_directory_iterator(data_))
    EXPECT_FALSE(e.path().string().ends_with(".tmp")) << e.path();
  auto v = RunAnnals({"verify", "--data", data_});
  EXPECT_EQ(v.exit_code, 0) << v.err;
}

}  // namespace
}  // namespace annals
