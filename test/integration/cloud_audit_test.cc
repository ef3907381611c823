// Cloud audit ingest end to end with the real `annals` binary and the real
// records of ../shared/corpus/cloud-audit: the 55 CloudTrail delivery files
// of the invictus-ir Stratus dataset (half of them gzipped by gzip(1), as
// CloudTrail writes them to S3) and the CloudTrail example file through
// /v1/ingest/aws-cloudtrail; the GCP Cloud Audit Log entries (the two JSON
// samples as an array, KHI's nine GKE lifecycle entries, YAML in the corpus,
// as JSON lines) through /v1/ingest/gcp-audit; the Azure Activity Log file
// through /v1/ingest/azure-activity. The log must hold each record once, as
// a "cloud.audit" entry whose payload is the record's own bytes within the
// file it came in, with the normalized facts a reading of the raw JSON here
// (nlohmann, not the server's parser) gives; sending everything again, by
// the endpoints or as JSON lines, stores nothing; bad bodies are refused
// with their reason and leave the log as it was.
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <algorithm>
#include <fstream>
#include <thread>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "checkpoint/note.h"
#include "client/http_client.h"
#include "client/table.h"
#include "kube/yaml.h"
#include "common/bytes.h"
#include "common/file_util.h"
#include "common/sha256.h"
#include "common/time_util.h"
#include "ledger/entry.h"
#include "testutil/log_client.h"
#include "testutil/server_process.h"
#include "testutil/test_macros.h"

namespace annals {
namespace {

using client::HttpClient;
using client::HttpResult;
using nlohmann::json;
using testutil::Metric;
using testutil::ReadFile;
using testutil::ServeOptions;
using testutil::ServerProcess;
using testutil::TempDir;

constexpr auto kWait = std::chrono::seconds(60);
constexpr char kAws[] = "/v1/ingest/aws-cloudtrail";
constexpr char kGcp[] = "/v1/ingest/gcp-audit";
constexpr char kAzure[] = "/v1/ingest/azure-activity";

std::string CloudDir() { return testutil::CorpusDir() + "/cloud-audit"; }

std::vector<std::string> NonBlank(const std::string& text) {
  std::vector<std::string> out;
  size_t at = 0;
  while (at < text.size()) {
    size_t nl = text.find('\n', at);
    std::string line = text.substr(at, nl == std::string::npos ? std::string::npos : nl - at);
    at = nl == std::string::npos ? text.size() : nl + 1;
    if (line.find_first_not_of(" \t\r") != std::string::npos) out.push_back(line);
  }
  return out;
}

std::string J(const json& j, std::initializer_list<const char*> path) {
  const json* at = &j;
  for (const char* k : path) {
    if (!at->is_object() || !at->contains(k)) return "";
    at = &(*at)[k];
  }
  return at->is_string() ? at->get<std::string>() : "";
}

// One record as the ledger must hold it, worked out from the raw JSON here.
struct Expected {
  std::string key;
  std::string source;    // the endpoint's source name
  const std::string* file;  // the bytes it was sent in
  json record;
  std::string cloud, actor, service, op, account;
};

// One body to send.
struct Body {
  std::string endpoint;
  std::string bytes;     // as sent (gzip or not)
  bool content_encoding_gzip = false;
  size_t records = 0;
};

struct Corpus {
  std::vector<std::unique_ptr<std::string>> files;  // the JSON text records are found in
  std::vector<Expected> expected;
  std::vector<Body> bodies;
};

std::string Gzip(const std::string& text) {
  auto r = testutil::RunProgram({"/bin/gzip", "-c", "-n"}, text);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return r.out;
}

Expected Aws(const json& rec, const std::string* file) {
  Expected e{"aws:" + rec["eventID"].get<std::string>(), "aws-cloudtrail", file, rec, "aws", "", "", "", ""};
  for (const char* k : {"arn", "invokedBy", "principalId", "userName"})
    if (e.actor.empty()) e.actor = J(rec, {"userIdentity", k});
  const json& api = rec.contains("eventSource") ? rec : rec["insightDetails"];
  e.service = J(api, {"eventSource"});
  e.op = J(api, {"eventName"});
  e.account = J(rec, {"recipientAccountId"});
  if (e.account.empty()) e.account = J(rec, {"userIdentity", "accountId"});
  return e;
}

Expected Gcp(const json& entry, const std::string* file) {
  const std::string log_name = entry["logName"];
  Expected e{"gcp:" + std::to_string(log_name.size()) + ":" + log_name + entry["insertId"].get<std::string>(),
             "gcp-audit", file, entry, "gcp", "", "", "", ""};
  e.actor = J(entry, {"protoPayload", "authenticationInfo", "principalEmail"});
  e.service = J(entry, {"protoPayload", "serviceName"});
  e.op = J(entry, {"protoPayload", "methodName"});
  e.account = J(entry, {"resource", "labels", "project_id"});
  return e;
}

Corpus LoadCorpus() {
  Corpus c;
  auto keep = [&c](std::string text) {
    c.files.push_back(std::make_unique<std::string>(std::move(text)));
    return c.files.back().get();
  };
  // CloudTrail: every delivery file, in name order; every other one gzipped
  // (and of those, every other one says so in Content-Encoding).
  std::vector<std::string> paths;
  for (const auto& e : std::filesystem::directory_iterator(CloudDir() + "/aws-cloudtrail-invictus-stratus"))
    if (e.path().extension() == ".json") paths.push_back(e.path().string());
  std::sort(paths.begin(), paths.end());
  paths.push_back(CloudDir() + "/aws-cloudtrail-records.otel.json");
  for (size_t i = 0; i < paths.size(); ++i) {
    const std::string* text = keep(*ReadFile(paths[i]));
    const json file = json::parse(*text);
    for (const auto& rec : file["Records"]) c.expected.push_back(Aws(rec, text));
    Body b{kAws, *text, false, file["Records"].size()};
    if (i % 2 == 1) {
      b.bytes = Gzip(*text);
      b.content_encoding_gzip = i % 4 == 1;
    }
    c.bodies.push_back(std::move(b));
  }
  // GCP: the two JSON samples as one array.
  std::string array = "[";
  for (const char* name : {"gcp-auditlog-k8s-activity.otel.json", "gcp-auditlog-gke-data-access.otel.json"}) {
    array += (array.size() > 1 ? ",\n" : "") + *ReadFile(CloudDir() + "/" + name);
  }
  array += "]";
  const std::string* gcp_array = keep(array);
  for (const auto& entry : json::parse(*gcp_array)) c.expected.push_back(Gcp(entry, gcp_array));
  c.bodies.push_back({kGcp, *gcp_array, false, 2});
  // GCP: KHI's GKE entries (YAML in the corpus) as JSON lines.
  std::string lines;
  size_t khi = 0;
  std::vector<json> khi_entries;
  for (const auto& e : std::filesystem::directory_iterator(CloudDir() + "/gcp-gke-khi")) {
    if (e.path().extension() != ".yaml") continue;
    auto j = kube::YamlToJson(*ReadFile(e.path().string()), e.path().filename().string());
    EXPECT_TRUE(j.ok()) << j.status().ToString();
    lines += j->dump() + "\n";
    khi_entries.push_back(*j);
    ++khi;
  }
  EXPECT_EQ(khi, 9u);
  const std::string* gcp_lines = keep(lines);
  for (const auto& entry : khi_entries) c.expected.push_back(Gcp(entry, gcp_lines));
  c.bodies.push_back({kGcp, *gcp_lines, false, khi});
  // Azure.
  const std::string* azure = keep(*ReadFile(CloudDir() + "/azure-activity-administrative.otel.json"));
  const json azure_file = json::parse(*azure);
  for (const auto& rec : azure_file["records"]) {
    Expected e{"", "azure-activity", azure, rec, "azure", "", "", "", ""};
    std::string key = "azure:";
    for (const char* k : {"time", "resourceId", "operationName", "correlationId"}) {
      const std::string v = J(rec, {k});
      key += std::to_string(v.size()) + ":" + v;
    }
    e.key = key + J(rec, {"resultType"});
    e.actor = J(rec, {"identity", "claims", "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name"});
    e.op = J(rec, {"operationName"});
    e.service = e.op.substr(0, e.op.find('/'));
    c.expected.push_back(std::move(e));
  }
  c.bodies.push_back({kAzure, *azure, false, azure_file["records"].size()});
  return c;
}

StatusOr<HttpResult> Send(HttpClient* http, const Body& b) {
  if (b.content_encoding_gzip)
    return http->Send("POST", b.endpoint, {{"Content-Type", "application/json"}, {"Content-Encoding", "gzip"}},
                      b.bytes);
  return http->Post(b.endpoint, b.bytes, b.bytes.starts_with("\x1f\x8b") ? "application/gzip" : "application/json");
}

uint64_t LogEntries(HttpClient* http) {
  auto n = Metric(http, "annals_log_entries");
  EXPECT_TRUE(n.ok()) << n.status().ToString();
  return n.ok() ? *n : 0;
}

class CloudAuditTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ServeOptions o;
    o.data_dir = dir_.Sub("data");
    // Byte-for-byte checks: the default redaction policy would replace
    // credential-named values.
    o.redaction_policy = "none";
    server_ = std::make_unique<ServerProcess>(o);
    ASSERT_OK(server_->Start());
    ASSERT_OK_AND_ASSIGN(http_, HttpClient::Create(server_->url()));
  }

  TempDir dir_;
  std::unique_ptr<ServerProcess> server_;
  std::unique_ptr<HttpClient> http_;
};

TEST_F(CloudAuditTest, EveryRecordIsStoredOnceAsReceivedWithItsFacts) {
  Corpus c = LoadCorpus();
  ASSERT_EQ(c.expected.size(), 2900u + 7u + 2u + 9u + 1u);
  for (const Body& b : c.bodies) {
    ASSERT_OK_AND_ASSIGN(HttpResult r, Send(http_.get(), b));
    ASSERT_EQ(r.status, 200) << b.endpoint << ": " << r.body;
    const json a = json::parse(r.body);
    EXPECT_EQ(a["count"], b.records);
    EXPECT_EQ(a["stored"], b.records);
    EXPECT_EQ(a["duplicates"], 0);
  }
  const uint64_t n = c.expected.size();
  ASSERT_EQ(LogEntries(http_.get()), n);
  ASSERT_OK_AND_ASSIGN(auto verifier, note::Verifier::FromVerifierKey(server_->verifier_key()));
  ASSERT_OK_AND_ASSIGN(auto cp, testutil::WaitForCheckpoint(http_.get(), *verifier, n, kWait));
  ASSERT_EQ(cp.cp.size, n);
  ASSERT_OK_AND_ASSIGN(auto entries, testutil::FetchEntries(http_.get(), 0, n, n));
  ASSERT_EQ(entries.size(), n);

  std::map<std::string, std::pair<json, std::string>> by_key;  // key -> (meta, payload)
  for (uint64_t i = 0; i < n; ++i) {
    ASSERT_OK_AND_ASSIGN(auto d, ledger::DecodeEntry(entries[i]));
    ASSERT_FALSE(d.external) << i;
    json meta = json::parse(d.meta);
    ASSERT_EQ(meta["type"], "cloud.audit") << d.meta;
    const std::string key = meta["key"];
    ASSERT_TRUE(by_key.emplace(key, std::make_pair(meta, std::string(d.payload))).second) << "twice: " << key;
  }
  std::map<const std::string*, size_t> searched_from;  // records of a file are found in order
  size_t bad = 0;
  for (const Expected& e : c.expected) {
    auto it = by_key.find(e.key);
    if (it == by_key.end()) {
      if (++bad < 5) ADD_FAILURE() << "no entry for " << e.key;
      continue;
    }
    const auto& [meta, payload] = it->second;
    // The record's own bytes: a stretch of the file it came in, after the
    // record before it, that reads as the record.
    const size_t at = e.file->find(payload, searched_from[e.file]);
    EXPECT_NE(at, std::string::npos) << e.key << ": payload is not a stretch of the file";
    if (at != std::string::npos) searched_from[e.file] = at + payload.size();
    EXPECT_EQ(json::parse(payload), e.record) << e.key;
    EXPECT_EQ(meta["src"], e.source);
    const json& f = meta["cloud"];
    EXPECT_EQ(f["provider"], e.cloud) << e.key;
    EXPECT_EQ(f["actor"], e.actor) << e.key;
    EXPECT_EQ(f["service"], e.service) << e.key;
    EXPECT_EQ(f["op"], e.op) << e.key;
    if (e.cloud != "azure") {
      EXPECT_EQ(f["account"], e.account) << e.key;
    }
  }
  EXPECT_EQ(bad, 0u);

  // Everything again: nothing new.
  for (const Body& b : c.bodies) {
    ASSERT_OK_AND_ASSIGN(HttpResult r, Send(http_.get(), b));
    ASSERT_EQ(r.status, 200) << r.body;
    const json a = json::parse(r.body);
    EXPECT_EQ(a["stored"], 0) << b.endpoint;
    EXPECT_EQ(a["duplicates"], b.records);
  }
  // The stored records as JSON lines through /v1/ingest/events (what
  // --tail and the TCP connector read): recognised, nothing new. (Those of
  // one line: the pretty-printed samples span several.)
  std::vector<std::string> lines;
  for (const auto& [key, mp] : by_key)
    if (mp.second.find('\n') == std::string::npos) lines.push_back(mp.second);
  ASSERT_GE(lines.size(), 2900u + 9u);
  ASSERT_OK_AND_ASSIGN(auto answer, testutil::PostEventsAnswer(http_.get(), lines));
  EXPECT_EQ(answer.stored, 0u);
  EXPECT_EQ(answer.duplicates, lines.size());
  EXPECT_EQ(LogEntries(http_.get()), n);
}

TEST_F(CloudAuditTest, BadBodiesAreRefusedAndStoreNothing) {
  const std::string file = *ReadFile(CloudDir() + "/aws-cloudtrail-records.otel.json");
  json no_id = json::parse(file);
  no_id["Records"][4].erase("eventID");
  const std::string gz = Gzip(file);
  struct Case {
    std::string endpoint, body, want;
    int status = 400;
    bool gzip_header = false;
  };
  const std::vector<Case> cases = {
      {kAws, file.substr(0, file.size() / 2), "body:"},
      {kAws, gz.substr(0, gz.size() - 20), "gzip: the body is truncated"},
      {kAws, no_id.dump(), "Records[4]: no eventID"},
      {kAws, *ReadFile(CloudDir() + "/azure-activity-administrative.otel.json"), "not a CloudTrail delivery file"},
      {kAws, file, "gzip", 400, true},  // says gzip, is not
      {kGcp, "{\"insertId\":\"a\",\"logName\":\"l\",\"timestamp\":\"2023-07-10T12:00:00Z\"}\nnot json\n", "line 2"},
      {kAzure, R"({"records":[{"time":"t","operationName":"o"}]})", "records[0]: no resourceId"},
      {kAzure, "", "empty body"},
  };
  const uint64_t before = LogEntries(http_.get());
  for (const Case& k : cases) {
    StatusOr<HttpResult> r = k.gzip_header ? http_->Send("POST", k.endpoint, {{"Content-Encoding", "gzip"}}, k.body)
                                           : http_->Post(k.endpoint, k.body);
    ASSERT_OK(r.status());
    EXPECT_EQ(r->status, k.status) << k.want << ": " << r->body;
    const json err = json::parse(r->body, nullptr, false);
    ASSERT_TRUE(err.is_object() && err.contains("error")) << r->body;
    EXPECT_NE(err["error"].get<std::string>().find(k.want), std::string::npos) << r->body;
  }
  ASSERT_OK_AND_ASSIGN(HttpResult br, http_->Send("POST", kAws, {{"Content-Encoding", "br"}}, file));
  EXPECT_EQ(br.status, 415) << br.body;
  EXPECT_EQ(LogEntries(http_.get()), before);
  ASSERT_OK_AND_ASSIGN(uint64_t rejected, Metric(http_.get(), "annals_events_rejected_total{source=\"aws-cloudtrail\"}"));
  EXPECT_EQ(rejected, 5u);
}

// Polls until the projection and the event index cover n entries.
Status WaitApplied(HttpClient* http, uint64_t n) {
  uint64_t applied = 0;
  for (int i = 0; i < 6000; ++i) {
    auto r = http->Get("/v1/state?at=2000-01-01T00:00:00Z&kind=nosuchkind");
    if (r.ok() && r->status == 200) {
      applied = json::parse(r->body)["applied"].get<uint64_t>();
      if (applied >= n) return OkStatus();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return UnavailableError("applied " + std::to_string(applied) + " of " + std::to_string(n));
}

StatusOr<json> GetJson(HttpClient* http, const std::string& path) {
  ASSIGN_OR_RETURN(HttpResult r, http->Get(path));
  if (r.status != 200) return UnavailableError(path + ": HTTP " + std::to_string(r.status) + " " + r.body);
  return json::parse(r.body);
}

// group_by answer as key -> count.
std::map<std::string, uint64_t> Groups(const json& j) {
  std::map<std::string, uint64_t> out;
  for (const auto& g : j["groups"]) out[g["key"].get<std::string>()] = g["count"].get<uint64_t>();
  return out;
}

// Search and group-by over the normalized view, with Kubernetes audit
// events beside the cloud records; every count is worked out here from the
// raw files.
TEST_F(CloudAuditTest, SearchAndGroupByAcrossSources) {
  Corpus c = LoadCorpus();
  for (const Body& b : c.bodies) {
    ASSERT_OK_AND_ASSIGN(HttpResult r, Send(http_.get(), b));
    ASSERT_EQ(r.status, 200) << r.body;
  }
  // Kubernetes audit events from the corpus (audit2rbac: 37 v1 events).
  const auto k8s = testutil::CorpusAuditLines();
  std::vector<std::string> audit2rbac;
  for (const auto& line : k8s)
    if (line.find("\"audit.k8s.io/v1\"") != std::string::npos && audit2rbac.size() < 37) audit2rbac.push_back(line);
  ASSERT_OK_AND_ASSIGN(auto k8s_answer, testutil::PostEventsAnswer(http_.get(), audit2rbac));
  const uint64_t k8s_stored = k8s_answer.stored;
  ASSERT_GT(k8s_stored, 0u);
  const uint64_t n = LogEntries(http_.get());
  ASSERT_OK(WaitApplied(http_.get(), n));

  // Expected counts, from the raw records.
  std::map<std::string, uint64_t> by_cloud, aws_actions, gcp_actors;
  std::map<std::string, uint64_t> aws_actors;
  for (const Expected& e : c.expected) {
    ++by_cloud[e.cloud];
    if (e.cloud == "aws") {
      ++aws_actions[e.op];
      ++aws_actors[e.actor];
    }
    if (e.cloud == "gcp") ++gcp_actors[e.actor];
  }
  by_cloud["kubernetes"] = k8s_stored;

  ASSERT_OK_AND_ASSIGN(json g, GetJson(http_.get(), "/v1/events?group_by=cloud"));
  EXPECT_EQ(Groups(g), by_cloud);
  EXPECT_EQ(g["total"], n);
  ASSERT_OK_AND_ASSIGN(g, GetJson(http_.get(), "/v1/events?cloud=aws&group_by=action"));
  EXPECT_EQ(Groups(g), aws_actions);
  ASSERT_OK_AND_ASSIGN(g, GetJson(http_.get(), "/v1/events?cloud=gcp&group_by=actor"));
  EXPECT_EQ(Groups(g), gcp_actors);
  ASSERT_OK_AND_ASSIGN(g, GetJson(http_.get(), "/v1/events?cloud=kubernetes&group_by=cloud"));
  EXPECT_EQ(Groups(g), (std::map<std::string, uint64_t>{{"kubernetes", k8s_stored}}));

  // The busiest AWS actor: search by actor (pages followed) finds exactly
  // its records, by eventID.
  auto top = std::max_element(aws_actors.begin(), aws_actors.end(),
                              [](const auto& a, const auto& b) { return a.second < b.second; });
  std::set<std::string> want_ids, got_ids;
  for (const Expected& e : c.expected)
    if (e.cloud == "aws" && e.actor == top->first) want_ids.insert(e.record["eventID"].get<std::string>());
  ASSERT_EQ(want_ids.size(), top->second);
  std::string cursor;
  std::vector<uint64_t> indexes;
  for (;;) {
    ASSERT_OK_AND_ASSIGN(json page, GetJson(http_.get(), "/v1/events?actor=" + client::UrlEncode(top->first) +
                                                             "&limit=500" + (cursor.empty() ? "" : "&cursor=" + cursor)));
    for (const auto& e : page["events"]) {
      EXPECT_EQ(e["cloud"], "aws");
      EXPECT_EQ(e["user"], top->first);
      indexes.push_back(e["index"].get<uint64_t>());
    }
    if (page["next_cursor"].is_null()) break;
    cursor = std::to_string(page["next_cursor"].get<uint64_t>());
  }
  ASSERT_OK_AND_ASSIGN(auto entries, testutil::FetchEntries(http_.get(), 0, n, n));
  for (uint64_t i : indexes) {
    ASSERT_OK_AND_ASSIGN(auto d, ledger::DecodeEntry(entries[i]));
    got_ids.insert(json::parse(d.payload)["eventID"].get<std::string>());
  }
  EXPECT_EQ(got_ids, want_ids);
  EXPECT_EQ(indexes.size(), want_ids.size());

  // A window that cuts hours: counts from the rows at the edges.
  const Micros from = *ParseRfc3339("2023-07-10T12:07:30Z"), to = *ParseRfc3339("2023-07-10T12:31:10Z");
  std::map<std::string, uint64_t> window;
  for (const Expected& e : c.expected) {
    if (e.cloud != "aws") continue;
    const Micros t = ParseRfc3339(e.record["eventTime"].get<std::string>()).value_or(0);
    if (t >= from && t <= to) ++window[e.op];
  }
  ASSERT_FALSE(window.empty());
  ASSERT_OK_AND_ASSIGN(g, GetJson(http_.get(), "/v1/events?cloud=aws&group_by=action&from=2023-07-10T12:07:30Z&to=2023-07-10T12:31:10Z"));
  EXPECT_EQ(Groups(g), window);

  // Failures by error, and by account.
  uint64_t failures = 0;
  std::map<std::string, uint64_t> accounts;
  for (const Expected& e : c.expected) {
    if (e.cloud == "aws" && e.record.contains("errorCode")) ++failures;
    if (e.cloud == "aws") ++accounts[e.account];
  }
  ASSERT_OK_AND_ASSIGN(g, GetJson(http_.get(), "/v1/events?cloud=aws&group_by=result"));
  EXPECT_EQ(Groups(g)["failure"], failures);
  EXPECT_EQ(Groups(g)["success"], by_cloud["aws"] - failures);
  ASSERT_OK_AND_ASSIGN(g, GetJson(http_.get(), "/v1/events?cloud=aws&group_by=account"));
  EXPECT_EQ(Groups(g), accounts);

  // OCSF API Activity.
  ASSERT_OK_AND_ASSIGN(json ocsf, GetJson(http_.get(), "/v1/events?cloud=aws&limit=200&format=ocsf"));
  ASSERT_EQ(ocsf["events"].size(), 200u);
  for (const auto& o : ocsf["events"]) {
    EXPECT_EQ(o["class_uid"], 6003);
    EXPECT_EQ(o["category_uid"], 6);
    EXPECT_EQ(o["type_uid"], 600300 + o["activity_id"].get<int>());
    EXPECT_EQ(o["cloud"]["provider"], "aws");
    const uint64_t i = std::stoull(o["metadata"]["uid"].get<std::string>());
    ASSERT_OK_AND_ASSIGN(auto d, ledger::DecodeEntry(entries[i]));
    const json rec = json::parse(d.payload);
    const json& api = rec.contains("eventSource") ? rec : rec["insightDetails"];
    EXPECT_EQ(o["api"]["operation"], api["eventName"]);
    EXPECT_EQ(o["api"]["service"]["name"], api["eventSource"]);
    EXPECT_EQ(o["status_id"], rec.contains("errorCode") ? 2 : 1);
    EXPECT_EQ(o["time"], ParseRfc3339(rec["eventTime"].get<std::string>()).value_or(0) / 1000);
  }
  // A namespace with cloud or account filters: cloud records have no
  // namespace, so nothing (not an error), whichever path answers.
  for (const char* q : {"/v1/events?namespace=default&cloud=aws", "/v1/events?namespace=default&account=123837392027",
                        "/v1/events?namespace=default&cloud=aws&group_by=hour",
                        "/v1/events?namespace=default&account=1&group_by=day"}) {
    ASSERT_OK_AND_ASSIGN(json none, GetJson(http_.get(), q));
    if (none.contains("events")) EXPECT_EQ(none["events"].size(), 0u) << q;
    else EXPECT_EQ(none["total"], 0) << q;
  }
  ASSERT_OK_AND_ASSIGN(HttpResult bad, http_->Get("/v1/events?group_by=cloud&format=ocsf"));
  EXPECT_EQ(bad.status, 400);
  ASSERT_OK_AND_ASSIGN(bad, http_->Get("/v1/events?user=a&actor=b"));
  EXPECT_EQ(bad.status, 400);

  // The CLI, as a user runs it.
  auto cli = testutil::RunAnnals({"search", "--url", server_->url(), "--cloud", "gcp", "--group-by", "actor"});
  ASSERT_EQ(cli.exit_code, 0) << cli.err;
  for (const auto& [actor, count] : gcp_actors) {
    EXPECT_NE(cli.out.find(actor), std::string::npos) << cli.out;
  }
  cli = testutil::RunAnnals({"search", "--url", server_->url(), "--actor", top->first, "--limit", "3"});
  ASSERT_EQ(cli.exit_code, 0) << cli.err;
  EXPECT_NE(cli.out.find("SOURCE"), std::string::npos) << cli.out;
  EXPECT_NE(cli.out.find(top->first), std::string::npos) << cli.out;
}

// ---------------------------------------------------------------------------
// CloudTrail digests: a trail's bucket as `aws s3 sync` copies it (the 55
// delivery files of the corpus, gzipped, and hourly digest files signed as
// CloudTrail signs them, with a key made here: AWS's private keys are not
// ours to sign with), each digest's signature in <digest>.sig.

std::string Hex(const unsigned char* p, size_t n) { return HexEncode(std::string_view(reinterpret_cast<const char*>(p), n)); }

std::string Sha256Hex(std::string_view s) {
  unsigned char md[32];
  unsigned int n = 0;
  EVP_Digest(s.data(), s.size(), md, &n, EVP_sha256(), nullptr);
  return Hex(md, n);
}

class Trail {
 public:
  Trail() {
    key_ = EVP_RSA_gen(2048);
    unsigned char* der = nullptr;
    const int n = i2d_PublicKey(key_, &der);  // PKCS#1 RSAPublicKey, as CloudTrail publishes
    const std::string pub(reinterpret_cast<char*>(der), static_cast<size_t>(n));
    OPENSSL_free(der);
    unsigned char md[16];
    unsigned int mn = 0;
    EVP_Digest(pub.data(), pub.size(), md, &mn, EVP_md5(), nullptr);
    fingerprint_ = Hex(md, mn);
    keys_json_ = json{{"PublicKeyList",
                       {{{"Value", Base64Encode(pub)},
                         {"ValidityStartTime", "2023-01-01T00:00:00Z"},
                         {"ValidityEndTime", "2024-01-01T00:00:00Z"},
                         {"Fingerprint", fingerprint_}}}}}
                     .dump();
  }
  ~Trail() { EVP_PKEY_free(key_); }

  std::string Sign(const std::string& msg) {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    size_t n = 0;
    EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, key_);
    EVP_DigestSign(ctx, nullptr, &n, reinterpret_cast<const unsigned char*>(msg.data()), msg.size());
    std::string sig(n, '\0');
    EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &n,
                   reinterpret_cast<const unsigned char*>(msg.data()), msg.size());
    EVP_MD_CTX_free(ctx);
    sig.resize(n);
    return HexEncode(sig);
  }

  // Writes the bucket under dir: every corpus delivery file, gzipped, and
  // digests for 11:00-12:00, 12:00-13:00 and 13:00-14:00 (empty).
  void Write(const std::string& dir) {
    const std::string logs = "AWSLogs/218007301253/CloudTrail/us-east-1/2023/07/10/";
    const std::string digests = "AWSLogs/218007301253/CloudTrail-Digest/us-east-1/2023/07/10/";
    std::filesystem::create_directories(dir + "/" + logs);
    std::filesystem::create_directories(dir + "/" + digests);
    std::map<int, json> by_hour;  // hour -> logFiles
    for (const auto& e : std::filesystem::directory_iterator(CloudDir() + "/aws-cloudtrail-invictus-stratus")) {
      if (e.path().extension() != ".json") continue;
      const std::string name = e.path().filename().string();
      const std::string text = *ReadFile(e.path().string());
      const std::string object = logs + name + ".gz";
      ASSERT_OK(WriteFileAtomic(dir + "/" + object, Gzip(text)));
      const int hour = std::stoi(name.substr(name.find("T1") + 1, 2));
      by_hour[hour].push_back({{"s3Bucket", "trail-bucket"}, {"s3Object", object}, {"hashValue", Sha256Hex(text)},
                               {"hashAlgorithm", "SHA-256"}, {"newestEventTime", "2023-07-10T12:00:00Z"},
                               {"oldestEventTime", "2023-07-10T11:00:00Z"}});
      records_[object] = json::parse(text)["Records"].size();
    }
    json prev;  // null for the first
    std::string prev_sig, prev_hash;
    for (int hour : {11, 12, 13}) {
      const std::string end = "2023-07-10T" + std::to_string(hour + 1) + ":00:00Z";
      const std::string object = digests + "218007301253_CloudTrail-Digest_us-east-1_trail_us-east-1_20230710T" +
                                 std::to_string(hour + 1) + "0000Z.json.gz";
      json d{{"awsAccountId", "218007301253"},
             {"digestStartTime", "2023-07-10T" + std::to_string(hour) + ":00:00Z"},
             {"digestEndTime", end},
             {"digestS3Bucket", "trail-bucket"},
             {"digestS3Object", object},
             {"digestPublicKeyFingerprint", fingerprint_},
             {"digestSignatureAlgorithm", "SHA256withRSA"},
             {"newestEventTime", nullptr},
             {"oldestEventTime", nullptr},
             {"previousDigestS3Bucket", prev.is_null() ? json() : json("trail-bucket")},
             {"previousDigestS3Object", prev},
             {"previousDigestHashValue", prev.is_null() ? json() : json(prev_hash)},
             {"previousDigestHashAlgorithm", prev.is_null() ? json() : json("SHA-256")},
             {"previousDigestSignature", prev.is_null() ? json() : json(prev_sig)},
             {"logFiles", by_hour.count(hour) ? by_hour[hour] : json::array()}};
      const std::string text = d.dump(2);
      const std::string sig =
          Sign(end + "\ntrail-bucket/" + object + "\n" + Sha256Hex(text) + "\n" + (prev.is_null() ? "null" : prev_sig));
      ASSERT_OK(WriteFileAtomic(dir + "/" + object, Gzip(text)));
      ASSERT_OK(WriteFileAtomic(dir + "/" + object + ".sig", sig + "\n"));
      digest_objects_.push_back(object);
      digest_texts_.push_back(text);
      prev = object;
      prev_sig = sig;
      prev_hash = Sha256Hex(text);
    }
  }

  const std::string& keys_json() const { return keys_json_; }
  const std::map<std::string, size_t>& records() const { return records_; }
  const std::vector<std::string>& digest_objects() const { return digest_objects_; }
  const std::vector<std::string>& digest_texts() const { return digest_texts_; }

 private:
  EVP_PKEY* key_ = nullptr;
  std::string fingerprint_, keys_json_;
  std::map<std::string, size_t> records_;  // log object -> records
  std::vector<std::string> digest_objects_, digest_texts_;
};

class CloudTrailDigestTest : public CloudAuditTest {
 protected:
  testutil::CommandResult Import(const std::string& dir) {
    EXPECT_OK(WriteFileAtomic(dir_.Sub("keys.json"), trail_.keys_json()));
    return testutil::RunAnnals({"import-cloudtrail-digests", dir, "--public-keys", dir_.Sub("keys.json"), "--url",
                                server_->url()});
  }
  // The outcome records the import wrote, by digest.
  std::map<std::string, json> Outcomes() {
    std::map<std::string, json> out;
    const uint64_t n = LogEntries(http_.get());
    auto entries = testutil::FetchEntries(http_.get(), 0, n, n);
    EXPECT_TRUE(entries.ok()) << entries.status().ToString();
    if (!entries.ok()) return out;
    for (const auto& e : *entries) {
      auto d = ledger::DecodeEntry(e);
      if (!d.ok() || d->meta.find("annals.cloudtrail.digest") == std::string_view::npos) continue;
      const json ev = json::parse(d->payload);
      out[ev["data"]["digest"].get<std::string>()] = ev["data"];
    }
    return out;
  }
  Trail trail_;
};

TEST_F(CloudTrailDigestTest, ValidChainImportsEveryFileOnceAndRecordsTheOutcome) {
  const std::string bucket = dir_.Sub("bucket");
  trail_.Write(bucket);
  auto r = Import(bucket);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("3/3 digest files valid"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("55/55 log files valid; 2900 records stored, 0 already"), std::string::npos) << r.out;
  ASSERT_OK_AND_ASSIGN(auto verifier, note::Verifier::FromVerifierKey(server_->verifier_key()));
  ASSERT_OK(testutil::WaitForCheckpoint(http_.get(), *verifier, 2903, kWait).status());
  EXPECT_EQ(LogEntries(http_.get()), 2900u + 3u);
  auto outcomes = Outcomes();
  ASSERT_EQ(outcomes.size(), 3u);
  for (const auto& [digest, o] : outcomes) {
    EXPECT_EQ(o["signature"], "valid") << digest;
    EXPECT_TRUE(o["chain"] == "valid" || o["chain"] == "first") << o.dump();
    for (const auto& f : o["log_files"]) EXPECT_EQ(f["result"], "valid") << f.dump();
  }
  // Again: nothing new, the outcome records too.
  r = Import(bucket);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("0 records stored, 2900 already"), std::string::npos) << r.out;
  EXPECT_EQ(LogEntries(http_.get()), 2900u + 3u);
}

TEST_F(CloudTrailDigestTest, ALogFileThatDoesNotMatchItsHashIsRefused) {
  const std::string bucket = dir_.Sub("bucket");
  trail_.Write(bucket);
  // One byte of one record changed after delivery (and gzipped again).
  const auto& [object, records] = *trail_.records().begin();
  auto gunzip = testutil::RunProgram({"/bin/gzip", "-dc", bucket + "/" + object});
  ASSERT_EQ(gunzip.exit_code, 0) << gunzip.err;
  std::string text = gunzip.out;
  const size_t at = text.find("\"eventName\":\"") + 13;
  text[at] = text[at] == 'X' ? 'Y' : 'X';
  ASSERT_OK(WriteFileAtomic(bucket + "/" + object, Gzip(text)));
  auto r = Import(bucket);
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find(object + "\tINVALID: hash value doesn't match"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("54/55 log files valid; " + std::to_string(2900 - records) + " records stored"),
            std::string::npos)
      << r.out;
  EXPECT_EQ(LogEntries(http_.get()), 2900u - records + 3u);
  size_t refused = 0;
  for (const auto& [digest, o] : Outcomes())
    for (const auto& f : o["log_files"])
      if (f["object"] == object) {
        EXPECT_EQ(f["result"], "INVALID: hash value doesn't match");
        ++refused;
      }
  EXPECT_EQ(refused, 1u);
}

TEST_F(CloudTrailDigestTest, AChangedOrMissingDigestIsCaughtAndItsFilesRefused) {
  const std::string bucket = dir_.Sub("bucket");
  trail_.Write(bucket);
  // The 11:00 digest edited after signing (a log file's hash swapped for
  // another's): its signature fails, its files are refused, and the next
  // digest's chain no longer holds.
  json d = json::parse(trail_.digest_texts()[0]);
  ASSERT_GE(d["logFiles"].size(), 2u);
  std::swap(d["logFiles"][0]["hashValue"], d["logFiles"][1]["hashValue"]);
  ASSERT_OK(WriteFileAtomic(bucket + "/" + trail_.digest_objects()[0], Gzip(d.dump(2))));
  auto r = Import(bucket);
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find(trail_.digest_objects()[0] + "\tINVALID: signature does not verify"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("chain INVALID: previousDigestHashValue"), std::string::npos) << r.out;
  size_t eleven = 0, records = 0;
  for (const auto& f : d["logFiles"]) {
    const std::string object = f["s3Object"];
    EXPECT_NE(r.out.find(object + "\tINVALID: its digest is not valid"), std::string::npos) << object;
    ++eleven;
    records += trail_.records().at(object);
  }
  EXPECT_EQ(LogEntries(http_.get()), 2900u - records + 3u);
  EXPECT_NE(r.out.find(std::to_string(55 - eleven) + "/55 log files valid"), std::string::npos) << r.out;

  // The 12:00 digest gone (and its signature): the 13:00 one's chain names
  // it, and the files only it vouched for are refused.
  const std::string bucket2 = dir_.Sub("bucket2");
  trail_.Write(bucket2);
  std::filesystem::remove(bucket2 + "/" + trail_.digest_objects()[1]);
  std::filesystem::remove(bucket2 + "/" + trail_.digest_objects()[1] + ".sig");
  r = Import(bucket2);
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("chain INVALID: the previous digest " + trail_.digest_objects()[1] + " is not here"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("INVALID: no valid digest names it"), std::string::npos) << r.out;
  // A digest whose gzip is broken: refused, and its outcome recorded too.
  const std::string bucket3 = dir_.Sub("bucket3");
  trail_.Write(bucket3);
  ASSERT_OK(WriteFileAtomic(bucket3 + "/" + trail_.digest_objects()[2], "not gzip at all"));
  const uint64_t before = LogEntries(http_.get());
  r = Import(bucket3);
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find(trail_.digest_objects()[2] + "\tINVALID: digest:"), std::string::npos) << r.out;
  bool recorded = false;
  for (const auto& [digest, o] : Outcomes())
    if (digest == trail_.digest_objects()[2]) recorded = o["signature"].get<std::string>().starts_with("INVALID");
  EXPECT_TRUE(recorded);
  EXPECT_GT(LogEntries(http_.get()), before);
  // A digest without its signature file.
  std::filesystem::remove(bucket2 + "/" + trail_.digest_objects()[2] + ".sig");
  r = Import(bucket2);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("INVALID: no signature"), std::string::npos) << r.out;
  // Public keys that are not list-public-keys output.
  ASSERT_OK(WriteFileAtomic(dir_.Sub("bad-keys.json"), "{}"));
  auto bad = testutil::RunAnnals({"import-cloudtrail-digests", bucket2, "--public-keys", dir_.Sub("bad-keys.json"),
                                  "--url", server_->url()});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.err.find("PublicKeyList"), std::string::npos) << bad.err;
}

// ---------------------------------------------------------------------------
// Clusters: two API servers posting the same real audit events with
// credentials bound to different clusters are two sets of events.

std::string TokenHash(std::string_view token) { return HexEncode(HashBytes(Sha256(token))); }

TEST(Clusters, TheSameEventsFromTwoClustersAreKeptApart) {
  TempDir dir;
  std::ofstream(dir.Sub("tokens")) << TokenHash("a-token") << " apiserver-a\n"
                                   << TokenHash("b-token") << " apiserver-b\n"
                                   << TokenHash("reader-token") << " reader\n"
                                   << TokenHash("pipeline-token") << " pipeline\n";
  std::ofstream(dir.Sub("auth.json")) << R"({"tokens":"tokens","users":{
      "apiserver-a":{"roles":["ingest:k8s-audit"],"cluster":"prod-a"},
      "apiserver-b":{"roles":["ingest:k8s-audit"],"cluster":"prod-b"},
      "reader":["read","verify"],
      "pipeline":["ingest:events"]}})";
  ServeOptions o;
  o.data_dir = dir.Sub("data");
  o.redaction_policy = "none";
  o.extra_args = {"--auth-config", dir.Sub("auth.json")};
  ServerProcess server(o);
  ASSERT_OK(server.Start());
  auto as = [&](const std::string& token) {
    client::ClientAuth auth;
    auth.token = token;
    return HttpClient::Create(server.url(), auth);
  };
  ASSERT_OK_AND_ASSIGN(auto a, as("a-token"));
  ASSERT_OK_AND_ASSIGN(auto b, as("b-token"));
  ASSERT_OK_AND_ASSIGN(auto reader, as("reader-token"));
  ASSERT_OK_AND_ASSIGN(auto pipeline, as("pipeline-token"));

  // audit2rbac's events (v1), as one EventList; counted here.
  std::string list = R"({"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[)";
  std::map<std::string, uint64_t> by_user;
  std::set<std::string> pairs;
  size_t n = 0;
  for (const auto& line : NonBlank(*ReadFile(testutil::CorpusDir() + "/k8s-audit/audit2rbac-demo.jsonl"))) {
    const json ev = json::parse(line);
    if (!pairs.insert(ev["auditID"].get<std::string>() + "/" + ev["stage"].get<std::string>()).second) continue;
    list += (n++ ? "," : "") + line;
    ++by_user[ev["user"]["username"].get<std::string>()];
  }
  list += "]}";
  ASSERT_GT(n, 10u);
  for (auto* c : {a.get(), b.get()}) {
    ASSERT_OK_AND_ASSIGN(HttpResult r, c->Post("/v1/ingest/k8s-audit", list));
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(json::parse(r.body)["stored"], n) << "the other cluster's copy is not a duplicate";
  }
  // A retry is still a retry within one cluster.
  ASSERT_OK_AND_ASSIGN(HttpResult again, a->Post("/v1/ingest/k8s-audit", list));
  EXPECT_EQ(json::parse(again.body)["duplicates"], n);
  // A credential bound to one cluster cannot post as another.
  ASSERT_OK_AND_ASSIGN(HttpResult forged, a->Post("/v1/ingest/k8s-audit?cluster=prod-b", list));
  EXPECT_EQ(forged.status, 403) << forged.body;
  // A cluster name that is not UTF-8 is refused.
  ASSERT_OK_AND_ASSIGN(HttpResult not_utf8, pipeline->Post("/v1/ingest/events?cluster=%FF", "{\"a\":1}\n"));
  EXPECT_EQ(not_utf8.status, 400) << not_utf8.body;
  // A pipeline allowed to post events may not post a cloud record (it
  // would be filed as aws-cloudtrail).
  const json ct = json::parse(*ReadFile(CloudDir() + "/aws-cloudtrail-records.otel.json"))["Records"][0];
  ASSERT_OK_AND_ASSIGN(HttpResult posing, pipeline->Post("/v1/ingest/events", ct.dump() + "\n"));
  EXPECT_EQ(posing.status, 403) << posing.body;
  EXPECT_NE(posing.body.find("ingest:aws-cloudtrail"), std::string::npos) << posing.body;
  // An unbound credential names its cluster.
  ASSERT_OK_AND_ASSIGN(HttpResult staged, pipeline->Post("/v1/ingest/events?cluster=staging", "{\"msg\":\"deployed\"}\n"));
  ASSERT_EQ(staged.status, 200) << staged.body;

  const uint64_t total = 2 * n + 1;
  ASSERT_OK_AND_ASSIGN(auto verifier, note::Verifier::FromVerifierKey(server.verifier_key()));
  ASSERT_OK_AND_ASSIGN(auto cp, testutil::WaitForCheckpoint(reader.get(), *verifier, total, kWait));
  EXPECT_EQ(cp.cp.size, total);
  ASSERT_OK(WaitApplied(reader.get(), total));
  ASSERT_OK_AND_ASSIGN(json g, GetJson(reader.get(), "/v1/events?group_by=cluster"));
  EXPECT_EQ(Groups(g), (std::map<std::string, uint64_t>{{"prod-a", n}, {"prod-b", n}}));
  for (const char* cluster : {"prod-a", "prod-b"}) {
    ASSERT_OK_AND_ASSIGN(g, GetJson(reader.get(), std::string("/v1/events?group_by=user&cluster=") + cluster));
    EXPECT_EQ(Groups(g), by_user) << cluster;
    ASSERT_OK_AND_ASSIGN(json page, GetJson(reader.get(), std::string("/v1/events?limit=1000&cluster=") + cluster));
    EXPECT_EQ(page["events"].size(), n);
    for (const auto& e : page["events"]) EXPECT_EQ(e["cluster"], cluster);
  }
  // On the log: each entry says its cluster, and its key is the cluster's.
  ASSERT_OK_AND_ASSIGN(auto entries, testutil::FetchEntries(reader.get(), 0, total, total));
  std::map<std::string, size_t> clusters;
  for (const auto& e : entries) {
    ASSERT_OK_AND_ASSIGN(auto d, ledger::DecodeEntry(e));
    const json meta = json::parse(d.meta);
    const std::string cluster = meta.value("cluster", "");
    ++clusters[cluster];
    if (meta.contains("key")) {
      EXPECT_TRUE(meta["key"].get<std::string>().starts_with("cluster:" + std::to_string(cluster.size()) + ":" + cluster + "/"))
          << d.meta;
    }
  }
  EXPECT_EQ(clusters, (std::map<std::string, size_t>{{"prod-a", n}, {"prod-b", n}, {"staging", 1}}));

  // The Falco project's audit events (RequestResponse: real objects): the
  // same list from each cluster. Each cluster's state, history and
  // provenance are the other's, at its own ledger indexes; asked of none,
  // both.
  std::string falco = R"({"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[)";
  size_t m = 0;
  std::vector<std::string> files;
  for (const auto& f : std::filesystem::directory_iterator(testutil::CorpusDir() + "/k8s-audit/falco"))
    if (f.path().extension() == ".json") files.push_back(f.path().string());
  std::sort(files.begin(), files.end());
  for (const auto& f : files) {
    std::string text = *ReadFile(f);
    std::vector<std::string> lines;
    if (json::accept(text)) {
      lines.push_back(json::parse(text).dump());
    } else {
      lines = NonBlank(text);
    }
    for (const auto& line : lines) {
      const json ev = json::parse(line);
      if (!ev.is_object() || !ev.contains("auditID")) continue;
      if (!pairs.insert(ev["auditID"].get<std::string>() + "/" + ev["stage"].get<std::string>()).second) continue;
      falco += (m++ ? "," : "") + line;
    }
  }
  falco += "]}";
  ASSERT_GT(m, 20u);
  uint64_t first[2];
  for (int k = 0; k < 2; ++k) {
    ASSERT_OK_AND_ASSIGN(HttpResult r, (k ? b : a)->Post("/v1/ingest/k8s-audit", falco));
    ASSERT_EQ(r.status, 200) << r.body;
    ASSERT_EQ(json::parse(r.body)["stored"], m);
    first[k] = json::parse(r.body)["first_index"];
  }
  const uint64_t offset = first[1] - first[0];
  ASSERT_OK(WaitApplied(reader.get(), total + 2 * m));
  ASSERT_OK_AND_ASSIGN(json known, GetJson(reader.get(), "/v1/clusters"));
  EXPECT_EQ(known["clusters"], json::array({"prod-a", "prod-b"}));
  const std::string at = "/v1/state?at=2030-01-01T00:00:00Z";
  ASSERT_OK_AND_ASSIGN(json sa, GetJson(reader.get(), at + "&cluster=prod-a"));
  ASSERT_OK_AND_ASSIGN(json sb, GetJson(reader.get(), at + "&cluster=prod-b"));
  ASSERT_OK_AND_ASSIGN(json s_all, GetJson(reader.get(), at));
  ASSERT_GT(sa["count"].get<size_t>(), 5u);
  ASSERT_EQ(sa["count"], sb["count"]);
  EXPECT_EQ(s_all["count"].get<size_t>(), 2 * sa["count"].get<size_t>());
  for (size_t i = 0; i < sa["objects"].size(); ++i) {
    json oa = sa["objects"][i], ob = sb["objects"][i];
    SCOPED_TRACE(oa.value("resource", "") + "/" + oa.value("name", ""));
    EXPECT_EQ(oa["cluster"], "prod-a");
    EXPECT_EQ(ob["cluster"], "prod-b");
    EXPECT_EQ(ob["index"].get<uint64_t>(), oa["index"].get<uint64_t>() + offset);
    EXPECT_GE(oa["index"].get<uint64_t>(), first[0]);
    EXPECT_LT(oa["index"].get<uint64_t>(), first[0] + m);
    for (json* o : {&oa, &ob}) {
      o->erase("cluster");
      o->erase("index");
    }
    EXPECT_EQ(oa, ob);
    // The object's history: the same events, at each cluster's indexes.
    const std::string q = "/v1/history?kind=" + oa["resource"].get<std::string>() + "&namespace=" +
                          oa["namespace"].get<std::string>() + "&name=" + oa["name"].get<std::string>() +
                          "&verbs=create,update,patch,delete,get";
    ASSERT_OK_AND_ASSIGN(json ha, GetJson(reader.get(), q + "&cluster=prod-a"));
    ASSERT_OK_AND_ASSIGN(json hb, GetJson(reader.get(), q + "&cluster=prod-b"));
    ASSERT_OK_AND_ASSIGN(json h_all, GetJson(reader.get(), q));
    ASSERT_GT(ha["events"].size(), 0u);
    ASSERT_EQ(ha["events"].size(), hb["events"].size());
    EXPECT_EQ(h_all["events"].size(), 2 * ha["events"].size());
    for (size_t e = 0; e < ha["events"].size(); ++e) {
      json ea = ha["events"][e], eb = hb["events"][e];
      EXPECT_EQ(ea["cluster"], "prod-a");
      EXPECT_EQ(eb["cluster"], "prod-b");
      EXPECT_EQ(eb["index"].get<uint64_t>(), ea["index"].get<uint64_t>() + offset);
      if (ea.contains("previous_index")) {
        EXPECT_EQ(eb["previous_index"].get<uint64_t>(), ea["previous_index"].get<uint64_t>() + offset);
      }
      for (json* e2 : {&ea, &eb})
        for (const char* f : {"cluster", "index", "previous_index"}) e2->erase(f);
      EXPECT_EQ(ea, eb);
    }
  }
}

}  // namespace
}  // namespace annals
