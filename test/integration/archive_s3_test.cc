// The archive to object storage end to end, against a real S3 server with
// Object Lock: Ceph's RADOS Gateway from Debian, started here by
// ../shared/tools/s3-rgw.sh (single node, memstore). The store is checked
// with an independent client (boto3, test/integration/s3_tool.py) and the
// bucket is verified by `annals verify --url` over the gateway's plain
// HTTP, with no annals server involved.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "client/http_client.h"
#include "common/bytes.h"
#include "common/sha256.h"
#include "testutil/log_client.h"
#include "testutil/server_process.h"
#include "testutil/test_macros.h"

namespace annals {
namespace {

using client::HttpClient;
using testutil::CommandResult;
using testutil::Metric;
using testutil::RunAnnals;
using testutil::RunProgram;
using testutil::ServeOptions;
using testutil::ServerProcess;
using testutil::TempDir;

const std::string kRgwScript = std::string(ANNALS_SOURCE_DIR) + "/../shared/tools/s3-rgw.sh";
const std::string kS3Tool = std::string(ANNALS_SOURCE_DIR) + "/test/integration/s3_tool.py";

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// One gateway for the whole suite (it takes 15 s or more to start).
class ArchiveTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    rgw_dir_ = new TempDir();
    CommandResult r = RunProgram({"/bin/bash", kRgwScript, "start", rgw_dir_->Sub("rgw")}, "",
                                 std::chrono::seconds(900));
    start_error_ = r.exit_code == 0 ? "" : "s3-rgw.sh start failed: " + r.err;
    // The last line: export S3_ENDPOINT=... AWS_ACCESS_KEY_ID=... ...
    std::string last = Trim(r.out);
    last = last.substr(last.rfind('\n') == std::string::npos ? 0 : last.rfind('\n') + 1);
    std::istringstream words(last);
    for (std::string w; words >> w;) {
      const size_t eq = w.find('=');
      if (w == "export" || eq == std::string::npos) continue;
      ::setenv(w.substr(0, eq).c_str(), w.substr(eq + 1).c_str(), 1);
      if (w.starts_with("S3_ENDPOINT=")) endpoint_ = w.substr(eq + 1);
    }
    if (start_error_.empty() && endpoint_.empty()) start_error_ = "no S3_ENDPOINT in: " + r.out;
  }
  static void TearDownTestSuite() {
    RunProgram({"/bin/bash", kRgwScript, "stop", rgw_dir_->Sub("rgw")}, "", std::chrono::seconds(120));
    delete rgw_dir_;
  }
  void SetUp() override { ASSERT_EQ(start_error_, ""); }

  static std::string S3(const std::vector<std::string>& args) {
    std::vector<std::string> argv{"/usr/bin/python3", kS3Tool};
    argv.insert(argv.end(), args.begin(), args.end());
    CommandResult r = RunProgram(argv, "", std::chrono::seconds(120));
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return Trim(r.out);
  }

  // A server archiving to s3://bucket/prefix, with small segments so that
  // some are sealed (and compressed) and archived too.
  std::unique_ptr<ServerProcess> Serve(const std::string& bucket_url, std::vector<std::string> extra = {}) {
    ServeOptions o;
    o.data_dir = dir_.Sub("data");
    o.checkpoint_interval_ms = 100;
    o.listen = "127.0.0.1:" + std::to_string(port_);
    o.extra_args = {"--archive", bucket_url, "--s3-endpoint", endpoint_, "--archive-interval", "0.2",
                    "--segment-entries", "256"};
    o.extra_args.insert(o.extra_args.end(), extra.begin(), extra.end());
    auto s = std::make_unique<ServerProcess>(o);
    Status st = s->Start();
    EXPECT_OK(st);
    return s;
  }

  static std::vector<std::string> Events(size_t n, const std::string& tag) {
    const auto lines = testutil::CorpusAuditLines();
    std::vector<std::string> out;
    for (size_t i = 0; i < n; ++i) out.push_back(testutil::UniqueVariant(lines[i % lines.size()], tag + std::to_string(i)));
    return out;
  }
  static Status Post(HttpClient* http, const std::vector<std::string>& events) {
    for (size_t i = 0; i < events.size(); i += 100) {
      std::vector<std::string> batch(events.begin() + i, events.begin() + std::min(events.size(), i + 100));
      RETURN_IF_ERROR(testutil::PostEvents(http, batch).status());
    }
    return OkStatus();
  }
  static uint64_t M(HttpClient* http, const std::string& series) {
    auto v = Metric(http, series);
    return v.ok() ? *v : ~uint64_t{0};
  }
  // Waits until the bucket's checkpoint is the served one and every sealed
  // segment is uploaded, with at least `at_least` entries; returns the
  // archived size.
  static uint64_t WaitArchived(HttpClient* http, uint64_t at_least = 1,
                               std::chrono::seconds timeout = std::chrono::seconds(120)) {
    const auto until = std::chrono::steady_clock::now() + timeout;
    uint64_t size = 0;
    while (std::chrono::steady_clock::now() < until) {
      const uint64_t cp = M(http, "annals_checkpoint_size");
      size = M(http, "annals_archive_size");
      const uint64_t segs = M(http, "annals_log_compressed_segments");
      const uint64_t next = M(http, "annals_archive_next_segment");
      if (cp != ~uint64_t{0} && cp >= at_least && size == cp && M(http, "annals_log_plain_segments") == 1 &&
          next == segs * 256)
        return size;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ADD_FAILURE() << "archive did not catch up: archived " << size << " of " << M(http, "annals_checkpoint_size");
    return size;
  }
  CommandResult VerifyBucket(const std::string& path, const std::string& key) {
    return RunAnnals({"verify", "--url", endpoint_ + "/" + path, "--key", key});
  }
  // key -> versions, for every key under prefix (s3_tool versions).
  std::map<std::string, std::pair<int, int>> Versions(const std::string& bucket, const std::string& prefix) {
    std::map<std::string, std::pair<int, int>> out;
    std::istringstream in(S3({"versions", bucket, prefix}));
    std::string key;
    int versions = 0, etags = 0;
    while (in >> key >> versions >> etags) out[key] = {versions, etags};
    return out;
  }

  static TempDir* rgw_dir_;
  static std::string endpoint_, start_error_;
  TempDir dir_;
  uint16_t port_ = testutil::FreePort();
};

TempDir* ArchiveTest::rgw_dir_ = nullptr;
std::string ArchiveTest::endpoint_;
std::string ArchiveTest::start_error_;

TEST_F(ArchiveTest, ArchivesWhileIngestingUnderObjectLockAndTheBucketVerifies) {
  ASSERT_EQ(S3({"mkbucket", "locked", "lock"}), "created");
  auto server = Serve("s3://locked/prod/log", {"--archive-retain", "1d"});
  ASSERT_TRUE(server->running());
  ASSERT_OK_AND_ASSIGN(auto http, HttpClient::Create(server->url()));
  auto events = Events(1999, "a");
  // One event over 64 KiB: its payload goes to the blob store, and to the
  // bucket beside the entry that names it.
  std::string big = testutil::UniqueVariant(testutil::CorpusAuditLines()[0], "big");
  big.insert(1, "\"annals_test_padding\":\"" + std::string(100000, 'p') + "\",");
  events.insert(events.begin() + 700, big);
  ASSERT_OK(Post(http.get(), events));
  EXPECT_EQ(WaitArchived(http.get()), 2000u);

  // A complete C2SP log: verified from the bucket alone.
  CommandResult v = VerifyBucket("locked/prod/log", server->verifier_key());
  EXPECT_EQ(v.exit_code, 0) << v.out << v.err;
  EXPECT_NE(v.out.find("size 2000"), std::string::npos) << v.out;

  // Each object once; the sealed segments (7 of 256 entries) compressed.
  auto versions = Versions("locked", "prod/log/");
  int segments = 0;
  for (const auto& [key, n] : versions) {
    if (key == "prod/log/checkpoint") continue;
    EXPECT_EQ(n.first, 1) << key;
    if (key.starts_with("prod/log/annals/segments/")) {
      ++segments;
      EXPECT_TRUE(key.ends_with(".zseg")) << key;
    }
  }
  EXPECT_EQ(segments, 7);
  std::vector<std::string> blobs;
  for (const auto& [key, n] : versions)
    if (key.starts_with("prod/log/annals/blobs/")) blobs.push_back(key);
  ASSERT_EQ(blobs.size(), 1u);
  S3({"get", "locked", blobs[0], dir_.Sub("blob")});
  ASSERT_OK_AND_ASSIGN(std::string blob, testutil::ReadFile(dir_.Sub("blob")));
  EXPECT_GT(blob.size(), 100000u);
  EXPECT_EQ(blobs[0], "prod/log/annals/blobs/" + HexEncode(HashBytes(Sha256(blob))));
  EXPECT_EQ(versions.count("prod/log/tile/entries/007.p/208"), 1u);
  EXPECT_EQ(versions.count("prod/log/tile/1/000.p/7"), 1u);
  // The next checkpoint (2010) shares its level-1 partial tile (7 hashes)
  // with the archived one: that tile is not stored a second time.
  ASSERT_OK(Post(http.get(), Events(10, "a2-")));
  EXPECT_EQ(WaitArchived(http.get(), 2010), 2010u);
  EXPECT_EQ(Versions("locked", "prod/log/tile/1/000.p/7")["prod/log/tile/1/000.p/7"].first, 1);
  EXPECT_EQ(Versions("locked", "prod/log/tile/entries/007.p/218").count("prod/log/tile/entries/007.p/218"), 1u);

  // The store refuses to delete a locked object, or to shorten its lock.
  EXPECT_EQ(S3({"retention", "locked", "prod/log/tile/entries/000"}).substr(0, 10), "COMPLIANCE");
  EXPECT_EQ(S3({"delete", "locked", "prod/log/tile/entries/000"}), "AccessDenied");
  EXPECT_EQ(S3({"delete", "locked", "prod/log/annals/segments/00000000000000000000.zseg"}), "AccessDenied");
  EXPECT_EQ(S3({"shorten", "locked", "prod/log/tile/0/000"}), "AccessDenied");
  // A new version written over an archived bundle is not the archived one:
  // the bucket's log no longer verifies, and the archived version is still
  // there (two versions now).
  ASSERT_OK(testutil::OverwriteFile(dir_.Sub("fake"), std::string(600, 'x')));
  EXPECT_EQ(S3({"put", "locked", "prod/log/tile/entries/001", dir_.Sub("fake")}), "put");
  v = VerifyBucket("locked/prod/log", server->verifier_key());
  EXPECT_NE(v.exit_code, 0);
  EXPECT_NE((v.out + v.err).find("tile/entries/001"), std::string::npos) << v.out << v.err;
  EXPECT_EQ(Versions("locked", "prod/log/tile/entries/001")["prod/log/tile/entries/001"].first, 2);
  EXPECT_EQ(M(http.get(), "annals_archive_stopped"), 0u);
}

TEST_F(ArchiveTest, AlteredObjectInAnUnlockedBucketIsNamedByTheVerifier) {
  ASSERT_EQ(S3({"mkbucket", "open"}), "created");
  auto server = Serve("s3://open");
  ASSERT_OK_AND_ASSIGN(auto http, HttpClient::Create(server->url()));
  ASSERT_OK(Post(http.get(), Events(600, "b")));
  EXPECT_EQ(WaitArchived(http.get()), 600u);
  CommandResult v = VerifyBucket("open", server->verifier_key());
  ASSERT_EQ(v.exit_code, 0) << v.out << v.err;

  // Without Object Lock the store lets anyone with write access change an
  // object: one byte of entry 256's body, in bundle 1.
  ASSERT_EQ(S3({"get", "open", "tile/entries/001", dir_.Sub("b1")}).empty(), false);
  ASSERT_OK(testutil::FlipByte(dir_.Sub("b1"), 100));
  EXPECT_EQ(S3({"put", "open", "tile/entries/001", dir_.Sub("b1")}), "put");
  v = VerifyBucket("open", server->verifier_key());
  EXPECT_NE(v.exit_code, 0);
  EXPECT_NE((v.out + v.err).find("the entries from 256"), std::string::npos) << v.out << v.err;
  // Without a lock, deletes go through: the lock is what refused them above.
  EXPECT_EQ(S3({"delete", "open", "tile/entries/000"}), "deleted");
}

TEST_F(ArchiveTest, KillDuringUploadsResumesWithNothingUploadedTwice) {
  ASSERT_EQ(S3({"mkbucket", "crash", "lock"}), "created");
  auto server = Serve("s3://crash/log", {"--archive-retain", "1d", "--archive-parallel", "4"});
  ASSERT_OK_AND_ASSIGN(auto http, HttpClient::Create(server->url()));
  // Ingest keeps going while the archiver uploads; kill -9 once objects
  // are being stored and some are still to go.
  std::atomic<bool> done{false};
  Status posted;
  std::thread poster([&] {
    auto h = HttpClient::Create(server->url());
    if (!h.ok()) return;
    for (int round = 0; round < 40 && !done.load(); ++round) {
      posted = Post(h->get(), Events(200, "c" + std::to_string(round) + "-"));
      if (!posted.ok()) return;
    }
  });
  bool killed = false;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < until) {
    const uint64_t objects = M(http.get(), "annals_archive_objects_total{kind=\"bundle\"}");
    if (objects != ~uint64_t{0} && objects >= 4 && M(http.get(), "annals_archive_backlog_entries") > 0) {
      server->Kill();
      killed = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  done.store(true);
  poster.join();
  ASSERT_TRUE(killed) << "the archiver never had work in flight";

  ASSERT_OK(server->Restart());
  ASSERT_OK_AND_ASSIGN(http, HttpClient::Create(server->url()));
  const uint64_t size = WaitArchived(http.get());
  EXPECT_GT(size, 0u);
  CommandResult v = VerifyBucket("crash/log", server->verifier_key());
  EXPECT_EQ(v.exit_code, 0) << v.out << v.err;
  for (const auto& [key, n] : Versions("crash", "log/")) {
    if (key == "log/checkpoint") continue;
    EXPECT_EQ(n.first, 1) << key << " uploaded " << n.first << " times";
  }
  const std::string log = server->StderrText();
  EXPECT_EQ(log.find("differs from the local log"), std::string::npos) << log;
}

TEST_F(ArchiveTest, StoreDownForAWhileNeverBlocksIngestAndTheArchiveCatchesUp) {
  ASSERT_EQ(S3({"mkbucket", "outage", "lock"}), "created");
  auto server = Serve("s3://outage", {"--archive-retain", "1d", "--archive-max-backlog", "300"});
  ASSERT_OK_AND_ASSIGN(auto http, HttpClient::Create(server->url()));
  ASSERT_OK(Post(http.get(), Events(300, "d")));
  EXPECT_EQ(WaitArchived(http.get()), 300u);

  // The gateway goes away (its port refuses connections).
  const std::string pid_file = rgw_dir_->Sub("rgw") + "/pids/rgw";
  ASSERT_OK_AND_ASSIGN(std::string pid_text, testutil::ReadFile(pid_file));
  const pid_t rgw = static_cast<pid_t>(std::stol(pid_text));
  ASSERT_EQ(::kill(rgw, SIGKILL), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));

  // Ingest goes on, acknowledged; the backlog grows and is reported.
  ASSERT_OK(Post(http.get(), Events(700, "e")));
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (M(http.get(), "annals_archive_backlog_entries") < 700 && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(M(http.get(), "annals_archive_backlog_entries"), 700u);
  EXPECT_EQ(M(http.get(), "annals_archive_size"), 300u);
  EXPECT_GT(M(http.get(), "annals_archive_errors_total{code=\"UNAVAILABLE\"}"), 0u);
  ASSERT_OK_AND_ASSIGN(auto ready, http->Get("/readyz"));
  EXPECT_EQ(ready.status, 503);
  EXPECT_NE(ready.body.find("archive backlog: 700 entries"), std::string::npos) << ready.body;

  // Back on the same port (the cluster's objects survived in the OSD).
  CommandResult restart = RunProgram(
      {"/bin/sh", "-c",
       "setsid radosgw --conf '" + rgw_dir_->Sub("rgw") + "/ceph.conf' -n client.rgw -f >>'" +
           rgw_dir_->Sub("rgw") + "/log/rgw-restart.log' 2>&1 </dev/null & echo $! > '" + pid_file + "'"});
  ASSERT_EQ(restart.exit_code, 0) << restart.err;
  EXPECT_EQ(WaitArchived(http.get(), 1000, std::chrono::seconds(180)), 1000u);
  ASSERT_OK_AND_ASSIGN(ready, http->Get("/readyz"));
  EXPECT_EQ(ready.status, 200) << ready.body;
  CommandResult v = VerifyBucket("outage", server->verifier_key());
  EXPECT_EQ(v.exit_code, 0) << v.out << v.err;
  EXPECT_NE(v.out.find("size 1000"), std::string::npos) << v.out;
}

TEST_F(ArchiveTest, LocalRetentionDropsArchivedSegmentsAndEveryAnswerStaysTheSame) {
  ASSERT_EQ(S3({"mkbucket", "retain", "lock"}), "created");
  auto server = Serve("s3://retain/log", {"--archive-retain", "1d"});
  ASSERT_OK_AND_ASSIGN(auto http, HttpClient::Create(server->url()));
  ASSERT_OK(Post(http.get(), Events(2000, "r")));
  EXPECT_EQ(WaitArchived(http.get()), 2000u);
  // Entries with their receipts, search, group-by and state, all of which
  // read entries back from the log.
  const std::vector<std::string> questions{"/v1/entries/0", "/v1/entries/300", "/v1/entries/1500",
                                           "/v1/entries/1999", "/v1/events?limit=10000",
                                           "/v1/events?group_by=verb", "/v1/state?at=2030-01-01T00:00:00Z"};
  // Each answer the same as before, or where it first differs.
  auto same = [&](const std::vector<std::string>& now, const std::vector<std::string>& then) {
    ASSERT_EQ(now.size(), then.size());
    for (size_t i = 0; i < now.size(); ++i) {
      if (now[i] == then[i]) continue;
      size_t at = 0;
      while (at < now[i].size() && at < then[i].size() && now[i][at] == then[i][at]) ++at;
      ADD_FAILURE() << questions[i] << " differs at byte " << at << ": now \""
                    << now[i].substr(at > 80 ? at - 80 : 0, 200) << "\", before \""
                    << then[i].substr(at > 80 ? at - 80 : 0, 200) << "\"";
    }
  };
  auto answers = [&](HttpClient* h) {
    std::vector<std::string> out;
    for (const auto& q : questions) {
      auto r = h->Get(q);
      EXPECT_TRUE(r.ok() && r->status == 200) << q << ": " << (r.ok() ? r->body : r.status().ToString());
      out.push_back(r.ok() ? r->body : "");
    }
    return out;
  };
  const auto before = answers(http.get());
  ASSERT_OK(server->Stop());

  // Kept locally only until archived: every sealed segment goes.
  server->options().extra_args.insert(server->options().extra_args.end(), {"--local-retain", "0s"});
  ASSERT_OK(server->Start());
  ASSERT_OK_AND_ASSIGN(http, HttpClient::Create(server->url()));
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (M(http.get(), "annals_log_archived_only_segments") < 7 && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(M(http.get(), "annals_log_archived_only_segments"), 7u);
  std::vector<std::string> local;
  for (const auto& e : std::filesystem::directory_iterator(dir_.Sub("data") + "/segments"))
    if (e.path().extension() == ".zseg" || e.path().extension() == ".seg") local.push_back(e.path().filename());
  EXPECT_EQ(local, std::vector<std::string>{"00000000000000001792.seg"});
  same(answers(http.get()), before);

  // After a crash, the list of archived segments still says where they are.
  server->Kill();
  ASSERT_OK(server->Start());
  ASSERT_OK_AND_ASSIGN(http, HttpClient::Create(server->url()));
  EXPECT_EQ(M(http.get(), "annals_log_archived_only_segments"), 7u);
  same(answers(http.get()), before);
  CommandResult v = VerifyBucket("retain/log", server->verifier_key());
  EXPECT_EQ(v.exit_code, 0) << v.out << v.err;
  // The data directory alone: the archived entries' hashes from the tiles.
  v = RunAnnals({"verify", "--data", dir_.Sub("data"), "--key", server->verifier_key()});
  EXPECT_EQ(v.exit_code, 0) << v.out << v.err;
  EXPECT_NE(v.err.find("entries 0..1791 are in the archive only"), std::string::npos) << v.err;
  EXPECT_NE(v.out.find("verified 2000 entries"), std::string::npos) << v.out;
}

// A store that takes connections and never answers (a black hole on the
// network path): the archive waits, ingest does not, and SIGTERM still
// stops the server at once (the request in flight is ended).
TEST_F(ArchiveTest, StoreThatNeverAnswersDoesNotStallIngestOrShutdown) {
  const int hole = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(hole, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(hole, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(::listen(hole, 64), 0);  // never accepted: the kernel completes the handshakes
  socklen_t len = sizeof(addr);
  ASSERT_EQ(::getsockname(hole, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  ServeOptions o;
  o.data_dir = dir_.Sub("data");
  o.checkpoint_interval_ms = 100;
  o.extra_args = {"--archive", "s3://hole/log", "--s3-endpoint",
                  "http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)), "--archive-interval", "0.2"};
  ServerProcess server(o);
  ASSERT_OK(server.Start());
  ASSERT_OK_AND_ASSIGN(auto http, HttpClient::Create(server.url()));
  ASSERT_OK(Post(http.get(), Events(500, "h")));
  std::this_thread::sleep_for(std::chrono::seconds(1));
  EXPECT_EQ(M(http.get(), "annals_archive_size"), 0u);
  EXPECT_EQ(M(http.get(), "annals_log_entries"), 500u);
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_OK(server.Stop(std::chrono::seconds(30)));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(10));
  ::close(hole);
}

}  // namespace
}  // namespace annals
