// The event index on disk (docs/format/event-index.md) through the real
// binary: a restart finds it covering the log and catches up only the
// tail; the questions answer 503 with progress until the projection has
// caught up; a flipped byte in one of its files is found, the index rebuilt
// from the log and the answers are the same; after kill -9 in the middle of
// ingest the answers equal those of `annals rebuild` on a copy.
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
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
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
    if (s.ok() && !WaitReady(http_.get(), std::chrono::seconds(60))) s = UnavailableError("not ready");
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

TEST_F(HistoryOnDisk, RestartCatchesUpOnlyTheTailAndAnswers503WithProgressMeanwhile) {
  ASSERT_OK(server_->Stop());
  server_->options().wait_ready = false;
  ASSERT_OK(server_->Start());
  ASSERT_OK(Connect());
  // The projection of the objects replays the log (snapshots are still to
  // come), so the questions wait for it; each 503 says how far it got.
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
  const std::string sst = Largest(server_->options().data_dir + "/index/events", ".sst");
  ASSERT_FALSE(sst.empty());
  ASSERT_OK_AND_ASSIGN(std::string bytes, testutil::ReadFile(sst));
  ASSERT_GT(bytes.size(), 4096u);
  bytes[bytes.size() / 3] ^= 0x20;
  ASSERT_OK(testutil::OverwriteFile(sst, bytes));
  const size_t before = server_->StderrText().size();
  ASSERT_OK(server_->Start());
  ASSERT_OK(Connect());
  // Found at open, by the background check or by the first question that
  // reads the block: each rebuilds the index from the log.
  const auto deadline = Clock::now() + std::chrono::seconds(60);
  bool found = false;
  while (!found && Clock::now() < deadline) {
    (void)Answers(http_.get());
    const std::string err = server_->StderrText().substr(before);
    found = err.find("event index damaged") != std::string::npos || err.find("event index wiped") != std::string::npos ||
            err.find("rebuilding it from the log") != std::string::npos;
  }
  ASSERT_TRUE(found) << server_->StderrText().substr(before);
  ASSERT_TRUE(WaitReady(http_.get(), std::chrono::seconds(60)));
  ExpectSameAnswers(Answers(http_.get()), *answers_);
}

TEST_F(HistoryOnDisk, AfterKill9DuringIngestTheAnswersEqualARebuild) {
  // More copies posted from another thread while the server is killed.
  std::atomic<bool> stop{false};
  std::atomic<size_t> acked{0};
  std::vector<Body> bodies = Bodies(*corpus_, kCopies, 400, 370);
  std::thread poster([&] {
    auto http = client::HttpClient::Create(server_->url());
    if (!http.ok()) return;
    for (const auto& b : bodies) {
      if (stop || !Post(http->get(), b.text).ok()) return;
      acked += b.events;
    }
  });
  while (acked < 3700) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  server_->Kill();
  stop = true;
  poster.join();
  ASSERT_OK(server_->Start());
  ASSERT_OK(Connect());
  ASSERT_TRUE(WaitReady(http_.get(), std::chrono::seconds(60)));
  const uint64_t total = Total(http_.get());
  // Every acknowledged event is answered for (the log may hold a few more:
  // a body made durable whose answer the kill cut off).
  EXPECT_GE(total, Events() + acked.load());
  const std::vector<std::string> after = Answers(http_.get());
  ASSERT_OK(server_->Stop());

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

}  // namespace
}  // namespace annals
