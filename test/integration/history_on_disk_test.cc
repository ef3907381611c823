// The event index on disk (docs/format/event-index.md) through the real
// binary: a restart finds it covering the log and catches up only the
// tail and loads the state snapshot instead of replaying the log; the
// questions answer 503 with progress until the projection has caught up; a
// flipped byte in the index or the snapshot is found and the answers stay
// the same; after kill -9 at random moments of ingest and catch-up the
// answers equal those of `annals rebuild` on a copy; SIGTERM during
// catch-up exits within a second.
//
// The events are audit2rbac-demo.jsonl's 37 real audit events, posted in
// copies (every 100th with Falco's 49 too): copy k has its auditIDs
// suffixed with k and its timestamps moved k*37 seconds later, so the log
// spans many hours (the hour aggregates of group-by are used, and the
// hours at the edges of a range are scanned).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "client/http_client.h"
#include "common/time_util.h"
#include "testutil/server_process.h"
#include "testutil/test_macros.h"

namespace annals {
namespace {

using nlohmann::json;
using testutil::ServeOptions;
using testutil::ServerProcess;
using testutil::TempDir;
using Clock = std::chrono::steady_clock;

struct Corpus {
  std::vector<json> bulk;   // audit2rbac-demo.jsonl: 37 events, lists and gets
  std::vector<json> falco;  // k8s-audit/falco: creates, patches, deletes of named objects
};

// Falco's files reuse two (auditID, stage) pairs with other bytes; only the
// first of each is kept, so that every posted event is an audit event.
Corpus LoadCorpus() {
  Corpus c;
  const std::string dir = testutil::CorpusDir() + "/k8s-audit";
  std::ifstream in(dir + "/audit2rbac-demo.jsonl");
  for (std::string l; std::getline(in, l);)
    if (!l.empty()) c.bulk.push_back(json::parse(l));
  std::vector<std::string> files;
  for (const auto& f : std::filesystem::directory_iterator(dir + "/falco"))
    if (f.path().extension() == ".json") files.push_back(f.path().string());
  std::sort(files.begin(), files.end());
  std::set<std::pair<std::string, std::string>> seen;
  auto add = [&](const json& j) {
    if (j.is_object() && j.contains("auditID") && seen.insert({j["auditID"].get<std::string>(), j.value("stage", "")}).second)
      c.falco.push_back(j);
  };
  for (const auto& f : files) {
    std::ifstream fin(f);
    std::stringstream ss;
    ss << fin.rdbuf();
    const std::string text = ss.str();
    if (json::accept(text)) {
      add(json::parse(text));
    } else {
      std::stringstream lines(text);
      for (std::string l; std::getline(lines, l);)
        if (!l.empty()) add(json::parse(l));
    }
  }
  return c;
}

void Shift(json* j, const char* key, Micros by) {
  if (!j->contains(key) || !(*j)[key].is_string()) return;
  auto t = ParseRfc3339((*j)[key].get<std::string>());
  if (t) (*j)[key] = FormatRfc3339(*t + by);
}

// Copy k of the corpus: the bulk events, and every 100th copy Falco's too.
size_t CopySize(const Corpus& c, size_t k) { return c.bulk.size() + (k % 100 == 0 ? c.falco.size() : 0); }

struct Body {
  std::string text;
  size_t events = 0;
};

// Copies [first, first+n) as EventList bodies of about `per_body` events.
std::vector<Body> Bodies(const Corpus& c, size_t first, size_t n, size_t per_body) {
  std::vector<Body> bodies;
  Body body;
  for (size_t k = first; k < first + n; ++k) {
    auto add = [&](json e) {
      e["auditID"] = e["auditID"].get<std::string>() + "-" + std::to_string(k);
      const Micros by = static_cast<Micros>(k) * 37 * 1000000;
      for (const char* key : {"timestamp", "requestReceivedTimestamp", "stageTimestamp"}) Shift(&e, key, by);
      if (body.events == 0) body.text = R"({"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[)";
      body.text += (body.events ? "," : "") + e.dump();
      ++body.events;
    };
    for (const json& e : c.bulk) add(e);
    if (k % 100 == 0)
      for (const json& e : c.falco) add(e);
    if (body.events >= per_body) {
      body.text += "]}";
      bodies.push_back(std::move(body));
      body = Body{};
    }
  }
  if (body.events) {
    body.text += "]}";
    bodies.push_back(std::move(body));
  }
  return bodies;
}

Status Post(client::HttpClient* http, const std::string& body) {
  ASSIGN_OR_RETURN(auto r, http->Post("/v1/ingest/k8s-audit", body));
  if (r.status != 200) return InternalError("ingest: " + std::to_string(r.status) + " " + r.body);
  return OkStatus();
}

// Questions over every part of the event index: listing (first page, a
// later cursor, filters), group-by over all time (hour aggregates) and
// over a range cutting hours (edge scans), history with and without verbs.
const std::vector<std::string>& Queries() {
  static const std::vector<std::string> q = {
      "/v1/events?limit=25",
      "/v1/events?limit=25&cursor=40000",
      "/v1/events?namespace=default&verb=create&limit=50",
      "/v1/events?user=system%3Aadmin&limit=10&format=jsonl",
      "/v1/events?group_by=verb",
      "/v1/events?group_by=user",
      "/v1/events?group_by=resource",
      "/v1/events?group_by=namespace",
      "/v1/events?group_by=code",
      "/v1/events?group_by=hour",
      "/v1/events?group_by=day",
      "/v1/events?group_by=verb&from=2017-09-11T23:17:30Z&to=2017-09-12T04:41:10Z",
      "/v1/events?group_by=code&namespace=default",
      "/v1/history?kind=clusterrole&name=some-reader",
      "/v1/history?kind=configmap&namespace=default&name=my-config&verbs=create,delete,get",
      "/v1/history?kind=deployment&namespace=default&name=nginx-deployment&children=true",
      // From the object projection (and its snapshot).
      "/v1/state?at=2030-01-01T00:00:00Z",
      "/v1/state?at=2019-06-01T00:00:00Z&kind=configmaps",
  };
  return q;
}

std::vector<std::string> Answers(client::HttpClient* http) {
  std::vector<std::string> out;
  for (const auto& q : Queries()) {
    auto r = http->Get(q);
    EXPECT_TRUE(r.ok()) << q;
    if (!r.ok()) {
      out.push_back("error");
      continue;
    }
    EXPECT_TRUE(r->status == 200 || r->status == 404) << q << ": " << r->body;
    out.push_back(std::to_string(r->status) + " " + r->body);
  }
  return out;
}

void ExpectSameAnswers(const std::vector<std::string>& got, const std::vector<std::string>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t k = 0; k < got.size(); ++k) EXPECT_EQ(got[k], want[k]) << Queries()[k];
}

uint64_t Total(client::HttpClient* http) {
  auto r = http->Get("/v1/events?group_by=verb");
  if (!r.ok() || r->status != 200) return 0;
  return json::parse(r->body)["total"].get<uint64_t>();
}

// Waits until /readyz says 200; false after `within`.
bool WaitReady(client::HttpClient* http, std::chrono::seconds within) {
  const auto deadline = Clock::now() + within;
  while (Clock::now() < deadline) {
    auto r = http->Get("/readyz");
    if (r.ok() && r->status == 200) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

// The unlabelled series on /metrics ("annals_log_entries" -> 101223);
// empty if it cannot be read.
std::map<std::string, uint64_t> Gauges(client::HttpClient* http) {
  std::map<std::string, uint64_t> out;
  auto r = http->Get("/metrics");
  if (!r.ok() || r->status != 200) return out;
  std::istringstream lines(r->body);
  for (std::string l; std::getline(lines, l);) {
    const size_t sp = l.find(' ');
    if (l.empty() || l[0] == '#' || sp == std::string::npos || l.find('{') < sp) continue;
    out[l.substr(0, sp)] = std::strtoull(l.c_str() + sp + 1, nullptr, 10);
  }
  return out;
}

// Waits until the projection (the object state and the event index) covers
// every entry the log holds; false after `within`. /readyz alone does not
// say that: it is about the catch-up of a start (it stays 200 while the
// projector indexes what was ingested since, a few ms behind the acks), so
// questions asked right after an ingest may not count its last body yet.
bool WaitProjected(client::HttpClient* http, std::chrono::seconds within) {
  const auto deadline = Clock::now() + within;
  while (Clock::now() < deadline) {
    // One page: the log's size and the projection's progress read together
    // (nothing is ingested meanwhile, so the log does not grow past it).
    const auto g = Gauges(http);
    if (g.contains("annals_log_entries") && g.contains("annals_projection_applied") &&
        g.contains("annals_projection_ready") && g.at("annals_projection_ready") == 1 &&
        g.at("annals_projection_applied") >= g.at("annals_log_entries"))
      return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

// The largest file with `ext` under dir.
std::string Largest(const std::string& dir, const std::string& ext) {
  std::string best;
  uintmax_t size = 0;
  for (const auto& f : std::filesystem::directory_iterator(dir))
    if (f.path().extension() == ext && f.file_size() > size) {
      size = f.file_size();
      best = f.path().string();
    }
  return best;
}

// Flips a bit of the byte at num/den of the largest table file under dir;
// the file's size.
StatusOr<size_t> FlipByteOfLargestTable(const std::string& dir, size_t num, size_t den) {
  const std::string sst = Largest(dir, ".sst");
  if (sst.empty()) return NotFoundError("no table file under " + dir);
  ASSIGN_OR_RETURN(std::string bytes, testutil::ReadFile(sst));
  if (bytes.empty()) return NotFoundError(sst + " is empty");
  bytes[bytes.size() * num / den] ^= 0x20;
  RETURN_IF_ERROR(testutil::OverwriteFile(sst, bytes));
  return bytes.size();
}

class HistoryOnDisk : public ::testing::Test {
 protected:
  // 2,700 copies: 101,223 events, audit2rbac's over 27.75 hours.
  static constexpr size_t kCopies = 2700;

  static void SetUpTestSuite() {
    dir_ = std::make_unique<TempDir>();
    corpus_ = std::make_unique<Corpus>(LoadCorpus());
    ServeOptions o;
    o.data_dir = dir_->Sub("data");
    server_ = std::make_unique<ServerProcess>(o);
    Status s = server_->Start();
    if (s.ok()) s = Connect();
    for (const auto& body : Bodies(*corpus_, 0, kCopies, 5000)) {
      if (!s.ok()) break;
      s = Post(http_.get(), body.text);
    }
    // Every body is acknowledged (durable in the log); the answers recorded
    // here must count them all, so wait for the projection to index them.
    if (s.ok() && !WaitProjected(http_.get(), std::chrono::seconds(60)))
      s = UnavailableError("the projection did not cover the log within 60 s");
    if (s.ok()) answers_ = std::make_unique<std::vector<std::string>>(Answers(http_.get()));
    if (!s.ok()) error_ = s.ToString();
  }
  static void TearDownTestSuite() {
    http_.reset();
    server_.reset();
    answers_.reset();
    corpus_.reset();
    dir_.reset();
  }
  static Status Connect() {
    ASSIGN_OR_RETURN(http_, client::HttpClient::Create(server_->url()));
    return OkStatus();
  }
  void SetUp() override {
    ASSERT_TRUE(error_.empty()) << error_;
    ASSERT_EQ(corpus_->bulk.size(), 37u);
    ASSERT_EQ(corpus_->falco.size(), 49u);
  }
  static size_t Events() {
    size_t n = 0;
    for (size_t k = 0; k < kCopies; ++k) n += CopySize(*corpus_, k);
    return n;
  }

  static inline std::unique_ptr<TempDir> dir_;
  static inline std::unique_ptr<Corpus> corpus_;
  static inline std::unique_ptr<ServerProcess> server_;
  static inline std::unique_ptr<client::HttpClient> http_;
  static inline std::unique_ptr<std::vector<std::string>> answers_;
  static inline std::string error_;
};

TEST_F(HistoryOnDisk, TheAnswersCountEveryEvent) {
  EXPECT_EQ(Total(http_.get()), Events());
  json hours = json::parse((*answers_)[9].substr(4));
  EXPECT_GE(hours["groups"].size(), 28u);  // 27.75 hours of audit2rbac's events alone
  json range = json::parse((*answers_)[11].substr(4));
  EXPECT_GT(range["total"].get<uint64_t>(), 0u);
  EXPECT_LT(range["total"].get<uint64_t>(), Events());
  json listing = json::parse((*answers_)[1].substr(4));
  ASSERT_EQ(listing["events"].size(), 25u);
  EXPECT_EQ(listing["events"][0]["index"], 40000);
  // Five creates and a delete of some-reader in each of the 27 copies with
  // Falco's events.
  ASSERT_EQ((*answers_)[13].substr(0, 4), "200 ");
  EXPECT_EQ(json::parse((*answers_)[13].substr(4))["events"].size(), 27u * 6);
  ASSERT_EQ((*answers_)[15].substr(0, 4), "200 ");
  EXPECT_GE(json::parse((*answers_)[15].substr(4))["events"].size(), 27u * 2);
}

// Each RocksDB-backed index's flushes and compactions are in /metrics,
// labelled by index.
TEST_F(HistoryOnDisk, MetricsShowEachIndexsBackgroundWork) {
  auto r = http_->Get("/metrics");
  ASSERT_TRUE(r.ok() && r->status == 200);
  for (const char* family : {"annals_index_background_cpu_seconds_total", "annals_index_background_read_bytes_total",
                             "annals_index_background_written_bytes_total"}) {
    EXPECT_NE(r->body.find(std::string("# TYPE ") + family + " counter\n"), std::string::npos) << family;
    for (const char* index : {"events", "dedup", "cold"})
      EXPECT_NE(r->body.find(std::string(family) + "{index=\"" + index + "\"} "), std::string::npos)
          << family << " " << index;
  }
}

TEST_F(HistoryOnDisk, ARestartLoadsTheSnapshotAndReplaysNothing) {
  ASSERT_OK(server_->Stop());
  EXPECT_NE(server_->StderrText().find("state snapshot written: " + std::to_string(Events()) + " entries"),
            std::string::npos)
      << server_->StderrText();
  ASSERT_OK(server_->Start());
  ASSERT_OK(Connect());
  EXPECT_NE(server_->StderrText().find("state snapshot loaded: " + std::to_string(Events()) + " entries"),
            std::string::npos)
      << server_->StderrText();
  ExpectSameAnswers(Answers(http_.get()), *answers_);
}

TEST_F(HistoryOnDisk, ADamagedOrForeignSnapshotIsNotUsedAndTheAnswersStayTheSame) {
  ASSERT_OK(server_->Stop());
  const std::string snap = server_->options().data_dir + "/index/state/projection.snap";
  ASSERT_OK_AND_ASSIGN(std::string bytes, testutil::ReadFile(snap));
  // Damaged: one flipped bit in the middle.
  std::string bad = bytes;
  bad[bad.size() / 2] ^= 0x01;
  ASSERT_OK(testutil::OverwriteFile(snap, bad));
  size_t before = server_->StderrText().size();
  ASSERT_OK(server_->Start());
  ASSERT_OK(Connect());
  EXPECT_NE(server_->StderrText().substr(before).find("state snapshot not used (state snapshot"), std::string::npos)
      << server_->StderrText().substr(before);
  EXPECT_NE(server_->StderrText().substr(before).find("checksum mismatch"), std::string::npos);
  ExpectSameAnswers(Answers(http_.get()), *answers_);
  ASSERT_OK(server_->Stop());

  // Foreign: the snapshot of another log of the same length is refused by
  // the hash of its last entry.
  TempDir other;
  {
    ServeOptions o;
    o.data_dir = other.Sub("data");
    ServerProcess s(o);
    ASSERT_OK(s.Start());
    ASSERT_OK_AND_ASSIGN(auto http, client::HttpClient::Create(s.url()));
    std::string lines;
    for (size_t i = 0; i < Events(); ++i) lines += R"({"n":)" + std::to_string(i) + "}\n";
    auto r = http->Post("/v1/ingest/events", lines);
    ASSERT_TRUE(r.ok() && r->status == 200) << (r.ok() ? r->body : r.status().ToString());
    ASSERT_OK(s.Stop());
  }
  ASSERT_OK_AND_ASSIGN(std::string foreign, testutil::ReadFile(other.Sub("data") + "/index/state/projection.snap"));
  ASSERT_OK(testutil::OverwriteFile(snap, foreign));
  before = server_->StderrText().size();
  ASSERT_OK(server_->Start());
  ASSERT_OK(Connect());
  EXPECT_NE(server_->StderrText().substr(before).find("is not the one it was made after"), std::string::npos)
      << server_->StderrText().substr(before);
  ExpectSameAnswers(Answers(http_.get()), *answers_);
}

TEST_F(HistoryOnDisk, RestartCatchesUpOnlyTheTailAndAnswers503WithProgressMeanwhile) {
  ASSERT_OK(server_->Stop());
  // Without its snapshot the object projection replays the whole log.
  std::filesystem::remove(server_->options().data_dir + "/index/state/projection.snap");
  server_->options().wait_ready = false;
  ASSERT_OK(server_->Start());
  ASSERT_OK(Connect());
  // The questions wait for the replay; each 503 says how far it got.
  auto first = http_->Get("/v1/events?group_by=verb");
  ASSERT_TRUE(first.ok());
  if (first->status == 503) {
    json b = json::parse(first->body);
    EXPECT_EQ(b["progress"]["target"], Events()) << first->body;
    EXPECT_LE(b["progress"]["applied"].get<uint64_t>(), Events());
  } else {
    // Caught up before the first question: allowed, but then it was fast.
    EXPECT_EQ(first->status, 200) << first->body;
  }
  ASSERT_TRUE(WaitReady(http_.get(), std::chrono::seconds(60)));
  // The event index was already complete: nothing of it was redone.
  EXPECT_NE(server_->StderrText().find("event index covers " + std::to_string(Events()) + " of the log's " +
                                       std::to_string(Events()) + " entries"),
            std::string::npos)
      << server_->StderrText();
  ExpectSameAnswers(Answers(http_.get()), *answers_);
  server_->options().wait_ready = true;
}

TEST_F(HistoryOnDisk, AFlippedByteInTheIndexIsFoundAndTheIndexRebuiltWithTheSameAnswers) {
  ASSERT_OK(server_->Stop());
  ASSERT_OK_AND_ASSIGN(size_t table_size, FlipByteOfLargestTable(server_->options().data_dir + "/index/events", 1, 3));
  ASSERT_GT(table_size, 4096u);
  const size_t before = server_->StderrText().size();
  ASSERT_OK(server_->Start());
  ASSERT_OK(Connect());
  // Found at open, by the background check or by the first question that
  // reads the block: each rebuilds the index from the log.
  const auto deadline = Clock::now() + std::chrono::seconds(60);
  bool found = false;
  while (!found && Clock::now() < deadline) {
    for (const auto& q : Queries()) (void)http_->Get(q);  // 503 while it rebuilds
    const std::string err = server_->StderrText().substr(before);
    found = err.find("event index damaged") != std::string::npos || err.find("event index wiped") != std::string::npos ||
            err.find("rebuilding it from the log") != std::string::npos;
  }
  ASSERT_TRUE(found) << server_->StderrText().substr(before);
  ASSERT_TRUE(WaitReady(http_.get(), std::chrono::seconds(60)));
  ExpectSameAnswers(Answers(http_.get()), *answers_);
}

// With --cold-after 0 every deleted object's history is on disk: the
// answers are those of the all-in-memory projection. A byte flipped in the
// cold store's table is found (at open, by the background check or by a
// question reading it back) and the projection replayed, same answers.
TEST_F(HistoryOnDisk, ColdHistoriesAnswerAlikeAndAFlippedByteInThemIsFoundAndReplayed) {
  ASSERT_OK(server_->Stop());
  std::filesystem::remove(server_->options().data_dir + "/index/state/projection.snap");
  server_->options().extra_args = {"--cold-after", "0"};
  ASSERT_OK(server_->Start());
  ASSERT_OK(Connect());
  ASSERT_TRUE(WaitProjected(http_.get(), std::chrono::seconds(60)));
  EXPECT_GT(Gauges(http_.get())["annals_state_cold_objects"], 0u);
  ExpectSameAnswers(Answers(http_.get()), *answers_);
  // A table file begins with its data blocks (the bodies); the index,
  // filter and footer follow them: a byte in each part.
  for (const size_t eighths : {1, 5, 7}) {
    SCOPED_TRACE("byte at " + std::to_string(eighths) + "/8 of the table");
    ASSERT_OK(server_->Stop());  // flushes the cold store's memtable to a table file
    ASSERT_OK_AND_ASSIGN(size_t table_size,
                         FlipByteOfLargestTable(server_->options().data_dir + "/index/objects", eighths, 8));
    ASSERT_GT(table_size, 256u);
    const size_t before = server_->StderrText().size();
    ASSERT_OK(server_->Start());
    ASSERT_OK(Connect());
    const auto deadline = Clock::now() + std::chrono::seconds(60);
    bool found = false;
    while (!found && Clock::now() < deadline) {
      for (const auto& q : Queries()) {
        auto r = http_->Get(q);  // right, or 503 while it replays: never an answer made of what could not be read
        if (r.ok()) {
          EXPECT_TRUE(r->status == 200 || r->status == 503 || r->status == 404) << q << ": " << r->status;
        }
      }
      const std::string err = server_->StderrText().substr(before);
      found = err.find("state projection damaged") != std::string::npos ||
              err.find("cold objects damaged") != std::string::npos;
    }
    ASSERT_TRUE(found) << server_->StderrText().substr(before);
    ASSERT_TRUE(WaitReady(http_.get(), std::chrono::seconds(60)));
    ASSERT_TRUE(WaitProjected(http_.get(), std::chrono::seconds(60)));
    ExpectSameAnswers(Answers(http_.get()), *answers_);
    EXPECT_GT(Gauges(http_.get())["annals_state_cold_objects"], 0u);
  }
  // The damaged table file went with the replay: a restart finds nothing.
  ASSERT_OK(server_->Stop());
  const size_t before = server_->StderrText().size();
  ASSERT_OK(server_->Start());
  ASSERT_OK(Connect());
  ASSERT_TRUE(WaitProjected(http_.get(), std::chrono::seconds(60)));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // the background check's time
  EXPECT_EQ(server_->StderrText().substr(before).find("damaged"), std::string::npos) << server_->StderrText().substr(before);
  ExpectSameAnswers(Answers(http_.get()), *answers_);
  ASSERT_OK(server_->Stop());
  server_->options().extra_args.clear();
  ASSERT_OK(server_->Start());  // for tests after this one
  ASSERT_OK(Connect());
}

// The objects of a state answer (without what a proof adds).
json StateObjects(client::HttpClient* http, const std::string& at, bool proof) {
  auto r = http->Get("/v1/state?at=" + at + (proof ? "&proof=true" : ""));
  EXPECT_TRUE(r.ok() && r->status == 200) << at << ": " << (r.ok() ? r->body : r.status().ToString());
  if (!r.ok() || r->status != 200) return json();
  return json::parse(r->body)["objects"];
}

std::vector<std::string> Images(const std::string& data) {
  std::vector<std::string> out;
  for (const auto& f : std::filesystem::directory_iterator(data + "/index/state/images"))
    if (f.path().extension() == ".img") out.push_back(f.path().string());
  std::sort(out.begin(), out.end());
  return out;
}

// Body images (a catch-up writes one every --snapshot-every entries):
// state at every hour of the corpus, and at times before, between and
// after the images, equals the answer read from the log alone (an answer
// with a proof never reads images), and the suite's recorded answers. A
// flipped byte in an image's block is found by the answer that reads it,
// which still answers right from the log; the image is removed. A damaged
// header or an image of another log is removed at start.
TEST_F(HistoryOnDisk, StateFromBodyImagesEqualsTheLogsAtEveryHourAndADamagedImageIsDropped) {
  ASSERT_OK(server_->Stop());
  const std::string data = server_->options().data_dir;
  std::filesystem::remove_all(data + "/index/state");
  server_->options().extra_args = {"--snapshot-every", "10000"};
  ASSERT_OK(server_->Start());
  ASSERT_OK(Connect());
  ASSERT_TRUE(WaitProjected(http_.get(), std::chrono::seconds(60)));
  // 101,223 entries, an image once 10,000 more were applied, at the end of
  // a chunk of 4,096 (12,288, 24,576, ..., 98,304), written by a thread of
  // their own.
  std::vector<std::string> images;
  for (const auto deadline = Clock::now() + std::chrono::seconds(60); Clock::now() < deadline;) {
    images = Images(data);
    if (images.size() >= 8 && Gauges(http_.get())["annals_state_body_images"] == images.size()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_EQ(images.size(), 8u) << server_->StderrText();
  EXPECT_EQ(std::filesystem::path(images.back()).filename(), "00000000000000098304.img");
  ExpectSameAnswers(Answers(http_.get()), *answers_);

  std::vector<std::string> times = {"2017-09-11T00:00:00Z", "2019-06-01T00:00:00Z", "2030-01-01T00:00:00Z"};
  {
    auto r = http_->Get("/v1/events?group_by=hour");
    ASSERT_TRUE(r.ok() && r->status == 200);
    const json answer = json::parse(r->body);
    for (const auto& g : answer["groups"]) {
      ASSERT_TRUE(g.contains("key")) << g.dump();
      const std::string hour = g["key"].get<std::string>();
      times.push_back(hour);
      times.push_back(hour.substr(0, 14) + "29:59.5Z");  // within the hour
    }
  }
  ASSERT_GE(times.size(), 50u);
  size_t with_objects = 0, objects = 0;
  auto g0 = Gauges(http_.get());
  for (const auto& at : times) {
    SCOPED_TRACE(at);
    const json from_images = StateObjects(http_.get(), at, false);
    EXPECT_EQ(from_images, StateObjects(http_.get(), at, true));
    if (from_images.is_array() && !from_images.empty()) ++with_objects;
    objects += from_images.size();
  }
  EXPECT_GE(with_objects, 20u);
  // Every body was read once from the log for the answer with a proof, and
  // once for the other: from the image chosen for T where it had it (most),
  // else from the log (objects changed since that image).
  auto g = Gauges(http_.get());
  EXPECT_EQ(g["annals_state_body_images"], images.size());
  const uint64_t from_images = g["annals_state_bodies_from_images_total"] - g0["annals_state_bodies_from_images_total"];
  const uint64_t from_log = g["annals_state_bodies_from_log_total"] - g0["annals_state_bodies_from_log_total"];
  EXPECT_EQ(from_images + from_log, 2 * objects);
  EXPECT_GE(from_images, objects / 2) << from_images << " of " << objects;

  // A byte of the first block of a middle image: the state at that
  // image's own time needs every body it holds.
  const std::string victim = images[images.size() / 2];
  ASSERT_OK_AND_ASSIGN(std::string bytes, testutil::ReadFile(victim));
  ASSERT_GT(bytes.size(), 200u);
  Micros t = 0;
  for (int k = 0; k < 8; ++k) t = (t << 8) | static_cast<uint8_t>(bytes[24 + k]);
  bytes[80 + 5] ^= 0x10;
  ASSERT_OK(testutil::OverwriteFile(victim, bytes));
  size_t before = server_->StderrText().size();
  const std::string at = FormatRfc3339(t);
  EXPECT_EQ(StateObjects(http_.get(), at, false), StateObjects(http_.get(), at, true));
  EXPECT_FALSE(std::filesystem::exists(victim));
  EXPECT_NE(server_->StderrText().substr(before).find("damaged"), std::string::npos)
      << server_->StderrText().substr(before);

  // A damaged header: removed at start, the answers the same.
  ASSERT_OK(server_->Stop());
  const std::string header_victim = images.front();
  ASSERT_OK_AND_ASSIGN(bytes, testutil::ReadFile(header_victim));
  bytes[20] ^= 0x01;
  ASSERT_OK(testutil::OverwriteFile(header_victim, bytes));
  before = server_->StderrText().size();
  ASSERT_OK(server_->Start());
  ASSERT_OK(Connect());
  EXPECT_NE(server_->StderrText().substr(before).find("header CRC mismatch"), std::string::npos)
      << server_->StderrText().substr(before);
  EXPECT_FALSE(std::filesystem::exists(header_victim));
  EXPECT_EQ(Images(data).size(), images.size() - 2);
  for (const auto& at : times) EXPECT_EQ(StateObjects(http_.get(), at, false), StateObjects(http_.get(), at, true)) << at;
  ExpectSameAnswers(Answers(http_.get()), *answers_);
  ASSERT_OK(server_->Stop());
  server_->options().extra_args.clear();
  ASSERT_OK(server_->Start());  // for tests after this one
  ASSERT_OK(Connect());
}

// 24 kills at random moments: 16 during live ingest (with a state snapshot
// every 2,000 entries, so some land while one is written), 8 during the
// catch-up of a start. Nothing acknowledged is lost, and the answers in the
// end equal those of `annals rebuild` on a copy. --cold-after 0 sends every
// deleted object's history to the cold store at once, so kills land while
// bodies are written, named by a snapshot, brought back and deleted.
TEST_F(HistoryOnDisk, AfterKill9AtRandomMomentsTheAnswersEqualARebuild) {
  ASSERT_OK(server_->Stop());
  server_->options().extra_args = {"--snapshot-every", "2000", "--cold-after", "0"};
  std::mt19937 rng(20261203);
  size_t acked_total = 0, next_copy = kCopies;
  for (int round = 0; round < 24; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    const bool during_catch_up = round % 3 == 2;
    server_->options().wait_ready = !during_catch_up;
    ASSERT_OK(server_->Start());
    if (during_catch_up) {
      // Started, not yet ready: the snapshot load or the replay is running.
      std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 150));
      server_->Kill();
      continue;
    }
    std::atomic<bool> stop{false};
    std::atomic<size_t> acked{0};
    std::vector<Body> bodies = Bodies(*corpus_, next_copy, 60, 370);
    next_copy += 60;
    std::thread poster([&, url = server_->url()] {
      auto http = client::HttpClient::Create(url);
      if (!http.ok()) return;
      for (const auto& b : bodies) {
        if (stop || !Post(http->get(), b.text).ok()) return;
        acked += b.events;
      }
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(20 + rng() % 400));
    server_->Kill();
    stop = true;
    poster.join();
    acked_total += acked;
  }
  server_->options().wait_ready = true;
  ASSERT_OK(server_->Start());
  ASSERT_OK(Connect());
  ASSERT_TRUE(WaitReady(http_.get(), std::chrono::seconds(60)));
  const uint64_t total = Total(http_.get());
  // Every acknowledged event is answered for (the log may hold a few more:
  // bodies made durable whose answers the kills cut off).
  EXPECT_GT(acked_total, 0u);
  EXPECT_GE(total, Events() + acked_total);
  const std::vector<std::string> after = Answers(http_.get());
  EXPECT_GT(Gauges(http_.get())["annals_state_cold_objects"], 0u) << "deleted objects left memory";
  ASSERT_OK(server_->Stop());
  server_->options().extra_args.clear();

  TempDir copy;
  ASSERT_OK(testutil::CopyTree(server_->options().data_dir, copy.Sub("data")));
  testutil::CommandResult rb = testutil::RunAnnals({"rebuild", "--data", copy.Sub("data")});
  ASSERT_EQ(rb.exit_code, 0) << rb.err;
  ServeOptions o;
  o.data_dir = copy.Sub("data");
  ServerProcess rebuilt(o);
  ASSERT_OK(rebuilt.Start());
  ASSERT_OK_AND_ASSIGN(auto http, client::HttpClient::Create(rebuilt.url()));
  ASSERT_TRUE(WaitReady(http.get(), std::chrono::seconds(60)));
  EXPECT_EQ(Total(http.get()), total);
  ExpectSameAnswers(Answers(http.get()), after);
  ASSERT_OK(server_->Start());  // for tests after this one
  ASSERT_OK(Connect());
}

TEST_F(HistoryOnDisk, SigtermDuringCatchUpExitsWithinASecond) {
  ASSERT_OK(server_->Stop());
  std::filesystem::remove(server_->options().data_dir + "/index/state/projection.snap");
  server_->options().wait_ready = false;
  ASSERT_OK(server_->Start());
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_OK_AND_ASSIGN(auto http, client::HttpClient::Create(server_->url()));
  auto r = http->Get("/readyz");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 503) << "caught up already; nothing to interrupt";
  const auto t0 = Clock::now();
  ASSERT_OK(server_->Stop());
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  EXPECT_LT(secs, 1.0);
  server_->options().wait_ready = true;
  ASSERT_OK(server_->Start());
  ASSERT_OK(Connect());
}

}  // namespace
}  // namespace annals
