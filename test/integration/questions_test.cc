// The questions over the real Kubernetes audit corpus: every event of
// k8s-audit/audit2rbac-demo.jsonl and k8s-audit/falco/*.json goes through the
// webhook endpoint of the real `annals` binary; search counts (group_by),
// event listing, history of a few objects and state at T are checked against
// what this test computes from the raw files.
//
// Two pairs of Falco trace files reuse one (auditID, stage) with different
// bytes. The first one stored is the audit event; the second is kept as a
// "k8s.audit.conflict" entry, which is not an audit event: it is counted
// nowhere. The test computes which one comes first from the posting order
// and checks the opposite order too.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
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

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << path;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct RawEvent {
  std::string file;   // corpus file name
  std::string bytes;  // exactly as in the file
  json j;
};

// The corpus: audit2rbac's lines, then the Falco files in name order (one
// event per file, six lines in create_configmap_sensitive_values.json).
// Files that hold no audit event go to *not_events.
std::vector<RawEvent> LoadCorpus(std::vector<RawEvent>* not_events) {
  const std::string dir = testutil::CorpusDir() + "/k8s-audit";
  std::vector<RawEvent> out;
  auto add = [&](const std::string& file, const std::string& bytes) {
    RawEvent e{file, bytes, json::parse(bytes)};
    if (e.j.is_object() && e.j.contains("auditID")) {
      out.push_back(std::move(e));
    } else {
      not_events->push_back(std::move(e));
    }
  };
  std::stringstream a2r(Slurp(dir + "/audit2rbac-demo.jsonl"));
  for (std::string l; std::getline(a2r, l);)
    if (!l.empty()) add("audit2rbac-demo.jsonl", l);
  std::vector<std::string> files;
  for (const auto& f : std::filesystem::directory_iterator(dir + "/falco"))
    if (f.path().extension() == ".json") files.push_back(f.path().filename().string());
  std::sort(files.begin(), files.end());
  for (const auto& f : files) {
    std::string text = Slurp(dir + "/falco/" + f);
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
    if (json::accept(text)) {
      add(f, text);
    } else {
      std::stringstream ss(text);
      for (std::string l; std::getline(ss, l);)
        if (!l.empty()) add(f, l);
    }
  }
  return out;
}

// What the ledger makes of the posted list: the first event of each
// (auditID, stage) is an audit event, a later one with other bytes a
// conflict; index = position (nothing in the corpus repeats byte for byte).
struct Posted {
  const RawEvent* ev;
  uint64_t index;
  bool conflict;
};

std::vector<Posted> Model(const std::vector<const RawEvent*>& order) {
  std::vector<Posted> out;
  std::set<std::pair<std::string, std::string>> seen;
  for (size_t i = 0; i < order.size(); ++i) {
    auto key = std::make_pair(order[i]->j["auditID"].get<std::string>(), order[i]->j["stage"].get<std::string>());
    out.push_back({order[i], i, !seen.insert(key).second});
  }
  return out;
}

std::string Str(const json& j, std::initializer_list<const char*> path) {
  const json* cur = &j;
  for (const char* p : path) {
    if (!cur->is_object() || !cur->contains(p)) return "";
    cur = &(*cur)[p];
  }
  return cur->is_string() ? cur->get<std::string>() : "";
}
std::string TimeOf(const json& e) {
  std::string t = Str(e, {"stageTimestamp"});
  return t.empty() ? Str(e, {"timestamp"}) : t;
}
Micros MicrosOf(const json& e) { return ParseRfc3339(TimeOf(e)).value_or(0); }
int CodeOf(const json& e) {
  if (e.contains("responseStatus") && e["responseStatus"].contains("code")) return e["responseStatus"]["code"];
  return 0;
}

// The group_by key of an event, computed from its raw JSON.
std::string KeyOf(const json& e, const std::string& by) {
  if (by == "verb") return Str(e, {"verb"});
  if (by == "user") return Str(e, {"user", "username"});
  if (by == "resource") return Str(e, {"objectRef", "resource"});
  if (by == "namespace") return Str(e, {"objectRef", "namespace"});
  if (by == "code") return std::to_string(CodeOf(e));
  if (by == "source_ip") return e.contains("sourceIPs") && !e["sourceIPs"].empty() ? e["sourceIPs"][0].get<std::string>() : "";
  if (by == "user_agent") return Str(e, {"userAgent"});
  if (by == "day") return FormatRfc3339(MicrosOf(e)).substr(0, 10);
  if (by == "hour") return FormatRfc3339(MicrosOf(e)).substr(0, 13) + ":00:00Z";
  ADD_FAILURE() << by;
  return "";
}

StatusOr<json> GetJson(client::HttpClient* http, const std::string& path, int want = 200) {
  ASSIGN_OR_RETURN(auto r, http->Get(path));
  if (r.status != want) return InternalError("GET " + path + ": " + std::to_string(r.status) + " " + r.body);
  json j = json::parse(r.body, nullptr, false);
  if (j.is_discarded()) return InternalError("GET " + path + ": not JSON");
  return j;
}

std::string Enc(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      char b[4];
      std::snprintf(b, sizeof(b), "%%%02X", c);
      out += b;
    }
  }
  return out;
}

class CorpusServer {
 public:
  CorpusServer() : server_(Options(dir_)) {}
  static ServeOptions Options(const TempDir& d) {
    ServeOptions o;
    o.redaction_policy = "none";  // byte-for-byte checks
    o.data_dir = d.Sub("data");
    return o;
  }

  // Posts `order` as one EventList, byte for byte, and waits for the
  // projection.
  Status Start(const std::vector<const RawEvent*>& order, json* answer) {
    RETURN_IF_ERROR(server_.Start());
    ASSIGN_OR_RETURN(http_, client::HttpClient::Create(server_.url()));
    std::string body = R"({"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[)";
    for (size_t i = 0; i < order.size(); ++i) body += (i ? "," : "") + order[i]->bytes;
    body += "]}";
    ASSIGN_OR_RETURN(auto r, http_->Post("/v1/ingest/k8s-audit", body));
    if (r.status != 200) return InternalError("ingest: " + std::to_string(r.status) + " " + r.body);
    *answer = json::parse(r.body);
    const auto deadline = Clock::now() + std::chrono::seconds(20);
    while (Clock::now() < deadline) {
      auto j = GetJson(http_.get(), "/v1/state?at=2000-01-01T00:00:00Z&kind=nosuchkind");
      if (j.ok() && (*j)["applied"].get<uint64_t>() >= order.size()) return OkStatus();
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return UnavailableError("projection did not catch up");
  }
  client::HttpClient* http() { return http_.get(); }

 private:
  TempDir dir_;
  ServerProcess server_;
  std::unique_ptr<client::HttpClient> http_;
};

class AuditCorpus : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    not_events_ = std::make_unique<std::vector<RawEvent>>();
    events_ = std::make_unique<std::vector<RawEvent>>(LoadCorpus(not_events_.get()));
    std::vector<const RawEvent*> order;
    for (const auto& e : *events_) order.push_back(&e);
    posted_ = std::make_unique<std::vector<Posted>>(Model(order));
    server_ = std::make_unique<CorpusServer>();
    answer_ = std::make_unique<json>();
    Status s = server_->Start(order, answer_.get());
    if (!s.ok()) error_ = s.ToString();
  }
  static void TearDownTestSuite() {
    server_.reset();
    posted_.reset();
    events_.reset();
    not_events_.reset();
    answer_.reset();
    error_.clear();
  }
  void SetUp() override { ASSERT_TRUE(error_.empty()) << error_; }

  // The audit events (conflicts left out) that `keep` accepts.
  std::vector<const Posted*> Audit(const std::function<bool(const json&)>& keep = nullptr) const {
    std::vector<const Posted*> out;
    for (const auto& p : *posted_)
      if (!p.conflict && (!keep || keep(p.ev->j))) out.push_back(&p);
    return out;
  }
  const Posted& ByFile(const std::string& file) const {
    for (const auto& p : *posted_)
      if (p.ev->file == file) return p;
    ADD_FAILURE() << file;
    return posted_->front();
  }

  // group_by over the server against the same over the raw events.
  void ExpectGroups(const std::string& by, const std::string& filter,
                    const std::function<bool(const json&)>& keep) {
    SCOPED_TRACE("group_by=" + by + filter);
    std::map<std::string, uint64_t> want;
    uint64_t total = 0;
    for (const Posted* p : Audit(keep)) {
      ++want[KeyOf(p->ev->j, by)];
      ++total;
    }
    ASSERT_OK_AND_ASSIGN(json j, GetJson(server_->http(), "/v1/events?group_by=" + by + filter));
    EXPECT_EQ(j["group_by"], by);
    EXPECT_EQ(j["total"], total);
    std::map<std::string, uint64_t> got;
    std::vector<std::pair<int64_t, std::string>> order;
    for (const auto& g : j["groups"]) {
      got[g["key"]] = g["count"];
      order.emplace_back(-g["count"].get<int64_t>(), g["key"]);
    }
    EXPECT_EQ(got, want);
    EXPECT_TRUE(std::is_sorted(order.begin(), order.end())) << "groups not by count desc, key asc";
  }

  // The corpus posted once to one server, shared by the suite's tests.
  static inline std::unique_ptr<std::vector<RawEvent>> events_, not_events_;
  static inline std::unique_ptr<std::vector<Posted>> posted_;
  static inline std::unique_ptr<CorpusServer> server_;
  static inline std::unique_ptr<json> answer_;
  static inline std::string error_;
};

TEST_F(AuditCorpus, TheCorpusIsWhatTheModelAssumes) {
  // 37 audit2rbac events, 51 Falco events in 46 files, and fal_01_003.json
  // ({"kind": 0}) which is no event at all.
  EXPECT_EQ(events_->size(), 88u);
  ASSERT_EQ(not_events_->size(), 1u);
  EXPECT_EQ((*not_events_)[0].file, "fal_01_003.json");
  size_t conflicts = 0;
  for (const auto& p : *posted_) conflicts += p.conflict;
  EXPECT_EQ(conflicts, 2u);
  EXPECT_TRUE(ByFile("some-user_creates_namespace_foo.json").conflict);
  EXPECT_FALSE(ByFile("anonymous_creates_namespace_foo.json").conflict);
  EXPECT_TRUE(ByFile("create_nginx_pod_privileged_2nd_container.json").conflict);
  EXPECT_FALSE(ByFile("create_nginx_pod_no_secctx_1st_container_privileged_2nd_container.json").conflict);
  // The server's own account of the post.
  EXPECT_EQ((*answer_)["count"], 88);
  EXPECT_EQ((*answer_)["stored"], 88);
  EXPECT_EQ((*answer_)["duplicates"], 0);
  EXPECT_EQ((*answer_)["conflicts"], 2);
  EXPECT_EQ((*answer_)["first_index"], 0);
  // The conflicts are in the log, marked.
  ASSERT_OK_AND_ASSIGN(json e, GetJson(server_->http(), "/v1/entries/" +
                                                           std::to_string(ByFile("some-user_creates_namespace_foo.json").index)));
  EXPECT_EQ(e["meta"]["type"], "k8s.audit.conflict");
  // The non-event is refused whole.
  auto r = server_->http()->Post("/v1/ingest/k8s-audit", (*not_events_)[0].bytes);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 400) << r->body;
}

TEST_F(AuditCorpus, GroupByCountsEqualCountsFromTheRawFiles) {
  for (const char* by : {"verb", "user", "resource", "namespace", "code", "source_ip", "day"})
    ExpectGroups(by, "", nullptr);
  // With filters.
  // A namespace alone reads that namespace's pre-aggregated counts (the
  // 'b' keys of the event index): every key, and within a time window.
  for (const char* by : {"verb", "user", "resource", "namespace", "code", "source_ip", "user_agent", "day", "hour"})
    for (const char* ns : {"default", "kube-system"})
      ExpectGroups(by, std::string("&namespace=") + ns,
                   [ns](const json& e) { return Str(e, {"objectRef", "namespace"}) == ns; });
  {
    const Micros from = *ParseRfc3339("2018-10-26T13:00:00Z"), to = *ParseRfc3339("2018-10-26T14:00:00Z");
    ExpectGroups("user", "&namespace=default&from=2018-10-26T13:00:00Z&to=2018-10-26T14:00:00Z", [&](const json& e) {
      const Micros t = MicrosOf(e);
      return Str(e, {"objectRef", "namespace"}) == "default" && t >= from && t <= to;
    });
  }
  ExpectGroups("resource", "&code=403", [](const json& e) { return CodeOf(e) == 403; });
  ExpectGroups("user", "&verb=create", [](const json& e) { return Str(e, {"verb"}) == "create"; });
  ExpectGroups("code", "&resource=pods", [](const json& e) { return Str(e, {"objectRef", "resource"}) == "pods"; });
  ExpectGroups("namespace", "&resource=po", [](const json& e) { return Str(e, {"objectRef", "resource"}) == "pods"; });
  ExpectGroups("verb", "&stage=ResponseStarted", [](const json& e) { return Str(e, {"stage"}) == "ResponseStarted"; });
  ExpectGroups("verb", "&user=system%3Aanonymous",
               [](const json& e) { return Str(e, {"user", "username"}) == "system:anonymous"; });
  ExpectGroups("verb", "&user=some-user", [](const json&) { return false; });  // its only event is the conflict
  const Micros from = *ParseRfc3339("2018-10-26T13:00:00Z"), to = *ParseRfc3339("2018-10-26T14:00:00Z");
  ExpectGroups("resource", "&from=2018-10-26T13:00:00Z&to=2018-10-26T14:00:00Z", [&](const json& e) {
    Micros t = MicrosOf(e);
    return t >= from && t <= to;
  });
  // Grouped by time with one counted field (verbs, resource or code), with
  // and without a namespace and a window with partial hours: whole hours
  // come from the pre-aggregated counts, and must agree with the rows.
  auto verb_in = [](const json& e, std::initializer_list<const char*> vs) {
    for (const char* v : vs)
      if (Str(e, {"verb"}) == v) return true;
    return false;
  };
  for (const char* by : {"hour", "day"}) {
    ExpectGroups(by, "&verb=create,delete,patch", [&](const json& e) { return verb_in(e, {"create", "delete", "patch"}); });
    ExpectGroups(by, "&verb=list", [&](const json& e) { return verb_in(e, {"list"}); });
    ExpectGroups(by, "&resource=pods", [](const json& e) { return Str(e, {"objectRef", "resource"}) == "pods"; });
    ExpectGroups(by, "&code=403", [](const json& e) { return CodeOf(e) == 403; });
    ExpectGroups(by, "&namespace=default&verb=create,update", [&](const json& e) {
      return Str(e, {"objectRef", "namespace"}) == "default" && verb_in(e, {"create", "update"});
    });
    ExpectGroups(by, "&namespace=default&resource=configmaps", [](const json& e) {
      return Str(e, {"objectRef", "namespace"}) == "default" && Str(e, {"objectRef", "resource"}) == "configmaps";
    });
    ExpectGroups(by, "&verb=create,delete&from=2018-10-26T13:10:00Z&to=2018-10-26T14:20:00Z", [&](const json& e) {
      const Micros t = MicrosOf(e);
      return verb_in(e, {"create", "delete"}) && t >= *ParseRfc3339("2018-10-26T13:10:00Z") &&
             t <= *ParseRfc3339("2018-10-26T14:20:00Z");
    });
  }
  // A user is who was authenticated or whom they impersonated: bob is
  // both in the corpus (system:admin as bob).
  auto is_user = [](const json& e, const std::string& u) {
    return Str(e, {"user", "username"}) == u || Str(e, {"impersonatedUser", "username"}) == u;
  };
  ASSERT_GT(Audit([&](const json& e) { return Str(e, {"impersonatedUser", "username"}) == "bob"; }).size(), 0u);
  for (const char* by : {"hour", "day", "verb"}) {
    ExpectGroups(by, "&user=bob", [&](const json& e) { return is_user(e, "bob"); });
    ExpectGroups(by, "&user=system%3Aadmin", [&](const json& e) { return is_user(e, "system:admin"); });
    ExpectGroups(by, "&user=bob&namespace=default", [&](const json& e) {
      return is_user(e, "bob") && Str(e, {"objectRef", "namespace"}) == "default";
    });
  }
  ExpectGroups("user", "&verb=create,delete", [&](const json& e) { return verb_in(e, {"create", "delete"}); });
  ExpectGroups("verb", "&q=some-reader", [](const json& e) {
    return Str(e, {"objectRef", "name"}).find("some-reader") != std::string::npos ||
           Str(e, {"user", "username"}).find("some-reader") != std::string::npos ||
           Str(e, {"objectRef", "namespace"}).find("some-reader") != std::string::npos;
  });
  ASSERT_OK_AND_ASSIGN(auto bad, server_->http()->Get("/v1/events?group_by=colour"));
  EXPECT_EQ(bad.status, 400);
}

TEST_F(AuditCorpus, PagedListingIsEveryAuditEventInLedgerOrder) {
  std::vector<const Posted*> want = Audit();
  ASSERT_EQ(want.size(), 86u);
  std::vector<json> got;
  std::string cursor;
  for (int page = 0; page < 100; ++page) {
    ASSERT_OK_AND_ASSIGN(json j, GetJson(server_->http(), "/v1/events?limit=10" + cursor));
    for (const auto& e : j["events"]) got.push_back(e);
    EXPECT_LE(j["events"].size(), 10u);
    if (j["next_cursor"].is_null()) break;
    cursor = "&cursor=" + std::to_string(j["next_cursor"].get<uint64_t>());
  }
  ASSERT_EQ(got.size(), want.size());
  for (size_t k = 0; k < want.size(); ++k) {
    const json& raw = want[k]->ev->j;
    const json& e = got[k];
    SCOPED_TRACE(want[k]->ev->file);
    EXPECT_EQ(e["index"], want[k]->index);
    EXPECT_EQ(e["verb"], Str(raw, {"verb"}));
    EXPECT_EQ(e["user"], Str(raw, {"user", "username"}));
    EXPECT_EQ(e["resource"], Str(raw, {"objectRef", "resource"}));
    EXPECT_EQ(e["subresource"], Str(raw, {"objectRef", "subresource"}));
    EXPECT_EQ(e["namespace"], Str(raw, {"objectRef", "namespace"}));
    // A create by generateName is named by its response.
    std::string name = Str(raw, {"objectRef", "name"});
    const int code = CodeOf(raw);
    if (name.empty() && Str(raw, {"verb"}) == "create" && Str(raw, {"stage"}) == "ResponseComplete" && code >= 200 &&
        code < 300 && Str(raw, {"responseObject", "kind"}) != "Status")
      name = Str(raw, {"responseObject", "metadata", "name"});
    EXPECT_EQ(e["name"], name);
    // Who was impersonated, if anyone.
    const std::string as = Str(raw, {"impersonatedUser", "username"});
    EXPECT_EQ(e["impersonated_user"], as.empty() ? json() : json(as));
    EXPECT_EQ(e["stage"], Str(raw, {"stage"}));
    EXPECT_EQ(e["code"], CodeOf(raw));
    EXPECT_EQ(e["time"], FormatRfc3339(MicrosOf(raw)));
  }
  // A user is found as whoever was authenticated and as whomever they
  // impersonated.
  std::set<std::string> impersonated;
  for (const Posted* p : want)
    if (std::string as = Str(p->ev->j, {"impersonatedUser", "username"}); !as.empty()) impersonated.insert(as);
  EXPECT_FALSE(impersonated.empty());  // audit2rbac's demo impersonates
  for (const auto& u : impersonated) {
    SCOPED_TRACE("user " + u);
    const size_t n = Audit([&u](const json& e) {
                       return Str(e, {"user", "username"}) == u || Str(e, {"impersonatedUser", "username"}) == u;
                     }).size();
    ASSERT_OK_AND_ASSIGN(json j, GetJson(server_->http(), "/v1/events?limit=1000&user=" + Enc(u)));
    EXPECT_EQ(j["events"].size(), n);
    EXPECT_GT(n, 0u);
  }
  // JSON lines.
  auto r = server_->http()->Get("/v1/events?limit=10000&format=jsonl&verb=delete");
  ASSERT_TRUE(r.ok());
  std::stringstream ss(r->body);
  size_t lines = 0;
  for (std::string l; std::getline(ss, l);) {
    EXPECT_EQ(json::parse(l)["verb"], "delete");
    ++lines;
  }
  EXPECT_EQ(lines, Audit([](const json& e) { return Str(e, {"verb"}) == "delete"; }).size());
}

// History rows of (resource, namespace, name), computed from the raw
// events: ResponseComplete or Panic, reads left out, by event time then
// index. A Namespace's events are filed under its cluster-scoped name.
std::vector<const Posted*> ExpectedHistory(const std::vector<const Posted*>& audit, const std::string& resource,
                                           const std::string& ns, const std::string& name) {
  std::vector<const Posted*> rows;
  for (const Posted* p : audit) {
    const json& e = p->ev->j;
    std::string n = Str(e, {"objectRef", "name"});
    if (n.empty()) n = Str(e, {"responseObject", "metadata", "name"});
    std::string en = Str(e, {"objectRef", "namespace"});
    if (resource == "namespaces") en = "";
    if (Str(e, {"objectRef", "resource"}) != resource || en != ns || n != name) continue;
    std::string stage = Str(e, {"stage"}), verb = Str(e, {"verb"});
    if (stage != "ResponseComplete" && stage != "Panic") continue;
    if (verb == "get" || verb == "list" || verb == "watch") continue;
    rows.push_back(p);
  }
  std::stable_sort(rows.begin(), rows.end(), [](const Posted* a, const Posted* b) {
    Micros ta = MicrosOf(a->ev->j), tb = MicrosOf(b->ev->j);
    return ta != tb ? ta < tb : a->index < b->index;
  });
  return rows;
}

TEST_F(AuditCorpus, HistoryOfObjectsEqualsTheRawEventsOnThem) {
  struct Case {
    std::string resource, ns, name;
    size_t rows;  // what the corpus holds, so the model cannot drift
  };
  const std::vector<Case> cases = {
      {"configmaps", "default", "my-config", 9},      // 8 creates (8 uids) + a Status-answered delete
      {"clusterroles", "", "some-reader", 6},         // 5 creates (5 uids) + a delete
      {"clusterrolebindings", "", "some-reader-binding", 3},
      {"namespaces", "", "foo", 3},                   // minikube's and anonymous' creates, the delete
      {"pods", "default", "nginx-deployment-544b59f8b8-ffkxm", 1},  // the first of a conflicting pair
      {"services", "default", "nginx", 4},
      {"pods", "default", "nginx-deployment-7998647bdf-phvq7", 0},  // exec/attach: ResponseStarted only
  };
  const auto audit = Audit();
  for (const auto& c : cases) {
    SCOPED_TRACE(c.resource + "/" + c.ns + "/" + c.name);
    auto want = ExpectedHistory(audit, c.resource, c.ns, c.name);
    EXPECT_EQ(want.size(), c.rows);
    ASSERT_OK_AND_ASSIGN(json j, GetJson(server_->http(), "/v1/history?kind=" + c.resource + "&namespace=" + c.ns +
                                                              "&name=" + Enc(c.name)));
    ASSERT_EQ(j["events"].size(), want.size()) << j.dump().substr(0, 2000);
    EXPECT_EQ(j["count"], want.size());
    for (size_t k = 0; k < want.size(); ++k) {
      const json& raw = want[k]->ev->j;
      const json& row = j["events"][k];
      SCOPED_TRACE(want[k]->ev->file);
      EXPECT_EQ(row["index"], want[k]->index);
      EXPECT_EQ(row["verb"], Str(raw, {"verb"}));
      EXPECT_EQ(row["time"], TimeOf(raw));
      EXPECT_EQ(row["user"]["username"], Str(raw, {"user", "username"}));
      EXPECT_EQ(row["user"]["groups"], raw["user"].value("groups", json::array()));
      EXPECT_EQ(row["source_ips"], raw.value("sourceIPs", json::array()));
      EXPECT_EQ(row["user_agent"], raw.value("userAgent", ""));
      EXPECT_EQ(row["code"], CodeOf(raw));
      std::string uid = Str(raw, {"responseObject", "metadata", "uid"});
      if (uid.empty()) uid = Str(raw, {"objectRef", "uid"});
      EXPECT_EQ(row["uid"], uid);
      // A create of a uid is its first version; a Status answer has no body.
      if (!Str(raw, {"responseObject", "metadata", "uid"}).empty() && Str(raw, {"verb"}) == "create") {
        EXPECT_EQ(row["changes"], json::parse(R"([{"op":"add","path":"/"}])"));
      } else if (Str(raw, {"responseObject", "kind"}) == "Status" || !raw.contains("responseObject")) {
        EXPECT_FALSE(row.contains("changes")) << row.dump();
      }
    }
  }
  // Without a namespace: every namespace that has the name, merged in time
  // order, each row saying where.
  for (const auto& c : cases) {
    if (c.ns.empty() || c.rows == 0) continue;
    SCOPED_TRACE("any namespace: " + c.resource + "/" + c.name);
    std::set<std::string> namespaces;
    for (const Posted* p : audit) {
      std::string n = Str(p->ev->j, {"objectRef", "name"});
      if (n.empty()) n = Str(p->ev->j, {"responseObject", "metadata", "name"});  // generateName
      if (Str(p->ev->j, {"objectRef", "resource"}) == c.resource && n == c.name)
        namespaces.insert(Str(p->ev->j, {"objectRef", "namespace"}));
    }
    std::vector<const Posted*> want;
    for (const auto& ns : namespaces) {
      auto w = ExpectedHistory(audit, c.resource, ns, c.name);
      want.insert(want.end(), w.begin(), w.end());
    }
    std::stable_sort(want.begin(), want.end(), [](const Posted* a, const Posted* b) {
      Micros ta = MicrosOf(a->ev->j), tb = MicrosOf(b->ev->j);
      return ta != tb ? ta < tb : a->index < b->index;
    });
    ASSERT_OK_AND_ASSIGN(json j, GetJson(server_->http(), "/v1/history?kind=" + c.resource + "&name=" + Enc(c.name)));
    ASSERT_EQ(j["events"].size(), want.size()) << j.dump().substr(0, 2000);
    for (size_t k = 0; k < want.size(); ++k) {
      EXPECT_EQ(j["events"][k]["index"], want[k]->index);
      EXPECT_EQ(j["events"][k]["namespace"], Str(want[k]->ev->j, {"objectRef", "namespace"}));
    }
  }
  // Reads only when asked for: the Falco "get" of a pod.
  const Posted& get = ByFile("create_nginx_pod_unsensitive_mount.json");
  ASSERT_OK_AND_ASSIGN(json none, GetJson(server_->http(),
                                          "/v1/history?kind=pods&namespace=default&name=nginx-deployment-6dfd8b84dc-6dkjc"));
  EXPECT_EQ(none["events"].size(), 0u);
  ASSERT_OK_AND_ASSIGN(json reads, GetJson(server_->http(), "/v1/history?kind=pods&namespace=default"
                                                            "&name=nginx-deployment-6dfd8b84dc-6dkjc&verbs=get,list"));
  ASSERT_EQ(reads["events"].size(), 1u);
  EXPECT_EQ(reads["events"][0]["index"], get.index);
  // An object the ledger never heard of.
  ASSERT_OK_AND_ASSIGN(json unknown, GetJson(server_->http(), "/v1/history?kind=pods&namespace=default&name=nope", 404));
  EXPECT_TRUE(unknown.contains("error"));
  ASSERT_OK_AND_ASSIGN(json nowhere, GetJson(server_->http(), "/v1/history?kind=pods&name=nope", 404));
  EXPECT_NE(nowhere.value("error", "").find("in any namespace"), std::string::npos) << nowhere.dump();
}

// State at T from the raw events: versions are ResponseComplete 2xx writes
// answering the object; a delete answered with a Status ends the newest
// object of that name existing then. (The corpus has no other delete.)
std::map<std::string, const Posted*> ExpectedState(const std::vector<const Posted*>& audit, Micros at,
                                                   const std::string& resource) {
  struct Obj {
    std::string resource, ns, name;
    std::vector<std::pair<std::pair<Micros, uint64_t>, const Posted*>> versions;  // nullptr = gone
  };
  std::map<std::string, Obj> objs;
  std::vector<const Posted*> events = audit;
  for (const Posted* p : events) {
    const json& e = p->ev->j;
    const std::string verb = Str(e, {"verb"});
    if (Str(e, {"stage"}) != "ResponseComplete" || CodeOf(e) < 200 || CodeOf(e) >= 300) continue;
    if (verb != "create" && verb != "update" && verb != "patch" && verb != "delete") continue;
    std::string uid = Str(e, {"responseObject", "metadata", "uid"});
    if (uid.empty() || Str(e, {"responseObject", "kind"}) == "Status") continue;
    EXPECT_NE(verb, "delete") << "the model does not cover deletes answering the object: " << p->ev->file;
    Obj& o = objs[uid];
    o.resource = Str(e, {"objectRef", "resource"});
    o.ns = Str(e, {"responseObject", "metadata", "namespace"});
    o.name = Str(e, {"responseObject", "metadata", "name"});
    o.versions.push_back({{MicrosOf(e), p->index}, p});
  }
  for (auto& [uid, o] : objs) std::sort(o.versions.begin(), o.versions.end());
  auto version_at = [](const Obj& o, Micros t) -> const std::pair<std::pair<Micros, uint64_t>, const Posted*>* {
    const std::pair<std::pair<Micros, uint64_t>, const Posted*>* v = nullptr;
    for (const auto& x : o.versions)
      if (x.first.first <= t) v = &x;
    return v;
  };
  // Status-answered deletes, in ledger order.
  for (const Posted* p : events) {
    const json& e = p->ev->j;
    if (Str(e, {"verb"}) != "delete" || Str(e, {"stage"}) != "ResponseComplete") continue;
    if (CodeOf(e) < 200 || CodeOf(e) >= 300 || !Str(e, {"responseObject", "metadata", "uid"}).empty()) continue;
    if (!e.contains("responseObject")) continue;
    const Micros t = MicrosOf(e);
    Obj* best = nullptr;
    Micros best_t = 0;
    for (auto& [uid, o] : objs) {
      if (o.resource != Str(e, {"objectRef", "resource"}) || o.name != Str(e, {"objectRef", "name"}) ||
          o.ns != Str(e, {"objectRef", "namespace"}))
        continue;
      auto* v = version_at(o, t);
      if (v && v->second && (!best || v->first.first >= best_t)) {
        best = &o;
        best_t = v->first.first;
      }
    }
    if (best) {
      best->versions.push_back({{t, p->index}, nullptr});
      std::sort(best->versions.begin(), best->versions.end());
    }
  }
  std::map<std::string, const Posted*> out;
  for (const auto& [uid, o] : objs) {
    if (!resource.empty() && o.resource != resource) continue;
    auto* v = version_at(o, at);
    if (v && v->second) out[uid] = v->second;
  }
  return out;
}

TEST_F(AuditCorpus, StateAtTOfFalcoObjects) {
  struct Case {
    std::string at, kind;
    int count;  // from reading the traces by hand; -1: not checked
  };
  const std::vector<Case> cases = {
      {"2018-10-25T15:00:00Z", "pods", 2},
      {"2018-10-26T13:13:20Z", "configmaps", 8},  // eight my-config uids
      {"2018-10-26T13:14:00Z", "configmaps", 7},  // the newest was deleted at 13:13:33
      {"2018-10-26T13:25:30Z", "clusterroles", 1},
      {"2018-10-26T13:25:40Z", "clusterroles", 0},  // deleted at 13:25:37
      {"2018-10-26T14:30:00Z", "clusterroles", 3},
      {"2018-10-26T14:30:00Z", "clusterrolebindings", 1},
      {"2021-01-01T00:00:00Z", "", -1},
  };
  const auto audit = Audit();
  for (const auto& c : cases) {
    SCOPED_TRACE(c.at + " " + c.kind);
    auto want = ExpectedState(audit, *ParseRfc3339(c.at), c.kind);
    if (c.count >= 0) {
      EXPECT_EQ(want.size(), static_cast<size_t>(c.count));
    }
    ASSERT_OK_AND_ASSIGN(json j, GetJson(server_->http(), "/v1/state?at=" + c.at + (c.kind.empty() ? "" : "&kind=" + c.kind)));
    EXPECT_EQ(j["count"], want.size());
    std::map<std::string, json> got;
    for (const auto& o : j["objects"]) got[o["uid"]] = o;
    ASSERT_EQ(got.size(), want.size()) << j.dump().substr(0, 3000);
    for (const auto& [uid, p] : want) {
      ASSERT_TRUE(got.count(uid)) << uid;
      const json& o = got[uid];
      EXPECT_EQ(o["index"], p->index) << uid;
      EXPECT_EQ(o["state"], "present");
      EXPECT_EQ(o["object"], p->ev->j["responseObject"]);
      EXPECT_EQ(o["since"], FormatRfc3339(MicrosOf(p->ev->j)));
    }
  }
  // The conflicting copy of the privileged nginx pod is not a second version.
  ASSERT_OK_AND_ASSIGN(json pods, GetJson(server_->http(), "/v1/state?at=2019-01-01T00:00:00Z&kind=pods&namespace=default"));
  size_t n = 0;
  for (const auto& o : pods["objects"]) {
    if (o["name"] == "nginx-deployment-544b59f8b8-ffkxm") {
      ++n;
      EXPECT_EQ(o["index"], ByFile("create_nginx_pod_no_secctx_1st_container_privileged_2nd_container.json").index);
    }
  }
  EXPECT_EQ(n, 1u);
  // The Falco pods were answered before scheduling: no IP, nobody at it.
  ASSERT_OK_AND_ASSIGN(json who, GetJson(server_->http(), "/v1/pods/by-ip/172.17.0.6?at=2018-10-26T14:00:00Z", 404));
  EXPECT_TRUE(who["nearest"]["before"].is_null());
}

TEST_F(AuditCorpus, StateAtTInPagesIsTheWholeAnswerInOrder) {
  const std::string at = "/v1/state?at=2021-01-01T00:00:00Z";
  ASSERT_OK_AND_ASSIGN(json whole, GetJson(server_->http(), at));
  ASSERT_GT(whole["count"].get<size_t>(), 7u);
  EXPECT_EQ(whole["total"], whole["count"]);
  EXPECT_FALSE(whole.contains("next_cursor"));
  // Pages of three, with and without bodies, walk the same objects in the
  // same order and end without a cursor.
  for (bool bodies : {true, false}) {
    SCOPED_TRACE(bodies ? "bodies" : "no bodies");
    json objects = json::array();
    std::string cursor;
    size_t pages = 0;
    do {
      ASSERT_OK_AND_ASSIGN(json page, GetJson(server_->http(), at + "&limit=3&bodies=" + (bodies ? "true" : "false") +
                                                              (cursor.empty() ? "" : "&cursor=" + cursor)));
      ++pages;
      EXPECT_EQ(page["total"], whole["count"]);
      EXPECT_LE(page["count"].get<size_t>(), 3u);
      EXPECT_EQ(page["count"], page["objects"].size());
      for (auto& o : page["objects"]) {
        EXPECT_EQ(o.contains("object"), bodies);
        objects.push_back(o);
      }
      cursor = page.value("next_cursor", "");
      ASSERT_LT(pages, 100u);
    } while (!cursor.empty());
    EXPECT_EQ(pages, (whole["count"].get<size_t>() + 2) / 3);
    ASSERT_EQ(objects.size(), whole["objects"].size());
    for (size_t i = 0; i < objects.size(); ++i) {
      json w = whole["objects"][i];
      if (!bodies) w.erase("object");
      EXPECT_EQ(objects[i], w) << i;
    }
  }
  // A cursor this server did not give is refused, not read as "start over".
  // (Six parts; five with an empty cluster, which the server never writes.)
  for (std::string bad : {"%21%21", "Zm9v", "a+b", "cG9kcwBkZWZhdWx0AHgAdQB2AHc", "cG9kcwBkZWZhdWx0AHgAdQA"}) {
    SCOPED_TRACE(bad);
    ASSERT_OK_AND_ASSIGN(json e, GetJson(server_->http(), at + "&limit=3&cursor=" + bad, 400));
    EXPECT_NE(e["error"].get<std::string>().find("cursor"), std::string::npos);
  }
  ASSERT_OK_AND_ASSIGN(json e, GetJson(server_->http(), at + "&limit=0", 400));
  ASSERT_OK_AND_ASSIGN(e, GetJson(server_->http(), at + "&bodies=yes", 400));
}

TEST_F(AuditCorpus, SearchRowsCarryInclusionProofs) {
  // Until a checkpoint covers the events listed (one is signed every second).
  json page;
  for (int i = 0; i < 100; ++i) {
    ASSERT_OK_AND_ASSIGN(page, GetJson(server_->http(), "/v1/events?resource=configmaps&limit=5&proof=true"));
    ASSERT_FALSE(page["events"].empty());
    if (page["receipt"]["tree_size"].get<uint64_t>() > page["events"].back()["index"].get<uint64_t>()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_EQ(page["events"].size(), 5u);
  const json& r = page["receipt"];
  ASSERT_EQ(r["inclusion_proofs"].size(), 5u) << r.dump();
  // Each proof is the one /v1/entries gives for that entry (the log is
  // quiet: same checkpoint), and the five are five different entries.
  for (const auto& ev : page["events"]) {
    const std::string i = std::to_string(ev["index"].get<uint64_t>());
    ASSERT_TRUE(r["inclusion_proofs"].contains(i)) << i;
    const json& p = r["inclusion_proofs"][i];
    ASSERT_OK_AND_ASSIGN(json e, GetJson(server_->http(), "/v1/entries/" + i));
    EXPECT_EQ(e["checkpoint"], r["checkpoint"]);
    EXPECT_EQ(p["leaf_hash"], e["leaf_hash"]) << i;
    EXPECT_EQ(p["hashes"], e["inclusion_proof"]["hashes"]) << i;
    EXPECT_EQ(e["meta"]["v"], 2);
    EXPECT_EQ(e["event"]["objectRef"]["resource"], "configmaps");
  }
}

TEST(AuditCorpusOrder, TheFirstOfAConflictingPairPostedIsTheAuditEvent) {
  std::vector<RawEvent> not_events;
  std::vector<RawEvent> events = LoadCorpus(&not_events);
  // Reverse order: now some-user's copy comes first.
  std::vector<const RawEvent*> order;
  for (auto it = events.rbegin(); it != events.rend(); ++it) order.push_back(&*it);
  std::vector<Posted> posted = Model(order);
  CorpusServer server;
  json answer;
  ASSERT_OK(server.Start(order, &answer));
  EXPECT_EQ(answer["conflicts"], 2);
  std::map<std::string, uint64_t> want;
  for (const auto& p : posted)
    if (!p.conflict) ++want[KeyOf(p.ev->j, "user")];
  EXPECT_EQ(want.count("some-user"), 1u);
  ASSERT_OK_AND_ASSIGN(json j, GetJson(server.http(), "/v1/events?group_by=user"));
  std::map<std::string, uint64_t> got;
  for (const auto& g : j["groups"]) got[g["key"]] = g["count"];
  EXPECT_EQ(got, want);
  ASSERT_OK_AND_ASSIGN(json h, GetJson(server.http(), "/v1/history?kind=namespaces&name=foo"));
  std::set<std::string> users;
  for (const auto& e : h["events"]) users.insert(e["user"]["username"]);
  EXPECT_TRUE(users.count("some-user"));
  EXPECT_FALSE(users.count("system:anonymous"));
}

}  // namespace
}  // namespace annals
