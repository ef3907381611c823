// Secret-safety end to end (docs/security.md "Secrets"): RequestResponse-
// level events built around the real k9s objects, carrying Secrets,
// ConfigMaps, TokenRequests, credential env values, last-applied
// annotations and Authorization headers, sent through every source (the
// webhook, /v1/ingest/events, /v1/ingest/k8s-watch, the TCP connector and
// a tailed file) to a real `annals serve`; then every byte of the data
// directory is searched for each value, the values are revealed by an
// admin (and not by a reader), erased, and the log still verifies.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "client/http_client.h"
#include "common/bytes.h"
#include "common/sha256.h"
#include "testutil/log_client.h"
#include "testutil/server_process.h"
#include "testutil/test_macros.h"

namespace annals {
namespace {

using nlohmann::json;
using testutil::ServeOptions;
using testutil::ServerProcess;
using testutil::TempDir;

std::string Corpus(const std::string& rel) {
  auto text = testutil::ReadFile(std::string(ANNALS_CORPUS_DIR) + "/" + rel);
  EXPECT_TRUE(text.ok()) << rel;
  return text.ok() ? *text : "";
}

std::string HashHex(std::string_view s) { return HexEncode(HashBytes(Sha256(s))); }

// A RequestResponse audit event as the kube-apiserver writes it.
json AuditEvent(const std::string& id, const std::string& verb, const std::string& resource, const std::string& sub,
                const std::string& name, const json& req, const json& resp) {
  json e{{"kind", "Event"},
         {"apiVersion", "audit.k8s.io/v1"},
         {"level", "RequestResponse"},
         {"auditID", id},
         {"stage", "ResponseComplete"},
         {"requestURI", "/api/v1/namespaces/shop/" + resource + "/" + name},
         {"verb", verb},
         {"user", {{"username", "kubernetes-admin"}, {"groups", {"system:masters", "system:authenticated"}}}},
         {"sourceIPs", {"172.18.0.1"}},
         {"userAgent", "kubectl/v1.29.2 (linux/amd64) kubernetes/4b8e819"},
         {"objectRef", {{"resource", resource}, {"namespace", "shop"}, {"name", name}, {"apiVersion", "v1"}}},
         {"responseStatus", {{"metadata", json::object()}, {"code", 201}}},
         {"requestReceivedTimestamp", "2024-03-01T10:00:00.000000Z"},
         {"stageTimestamp", "2024-03-01T10:00:00.010000Z"}};
  if (!sub.empty()) e["objectRef"]["subresource"] = sub;
  if (!req.is_null()) e["requestObject"] = req;
  if (!resp.is_null()) e["responseObject"] = resp;
  return e;
}

json Secret(const std::string& name, const std::string& b64, const std::string& plain) {
  return {{"apiVersion", "v1"},
          {"kind", "Secret"},
          {"metadata", {{"name", name}, {"namespace", "shop"}, {"uid", "5e0c" + HashHex(name).substr(0, 8)}}},
          {"type", "Opaque"},
          {"data", {{"password", b64}}},
          {"stringData", {{"api-key", plain}}}};
}

class Secrets : public ::testing::Test {
 protected:
  void SetUp() override {
    std::ofstream(dir_.Sub("seal.key")) << "7f3a9c0d1e2b4a5968778695a4b3c2d1e0f1a2b3c4d5e6f708192a3b4c5d6e7f\n";
    std::ofstream(dir_.Sub("policy.json"))
        << R"({"name":"shop","kinds":[{"kind":"ConfigMap","resource":"configmaps","paths":["data/*"]}]})";
    std::ofstream(dir_.Sub("tokens")) << HashHex("admin-token") << " root admins\n"
                                      << HashHex("reader-token") << " auditor readers\n"
                                      << HashHex("ingest-token") << " kube-apiserver ingesters\n";
    std::ofstream(dir_.Sub("auth.json"))
        << R"({"tokens":"tokens","groups":{"admins":["admin"],"readers":["read","verify"],"ingesters":["ingest"]}})";
    tail_ = dir_.Sub("audit.log");
    std::ofstream(tail_).flush();
    tcp_port_ = testutil::FreePort();
  }

  std::unique_ptr<ServerProcess> Serve(const std::string& data, bool sealed_key) {
    ServeOptions o;
    o.data_dir = data;
    o.checkpoint_interval_ms = 50;
    o.redaction_policy = dir_.Sub("policy.json");
    o.extra_args = {"--auth-config", dir_.Sub("auth.json"), "--tail", tail_, "--tcp-listen",
                    "127.0.0.1:" + std::to_string(tcp_port_)};
    if (sealed_key) o.extra_args.insert(o.extra_args.end(), {"--seal-key", dir_.Sub("seal.key")});
    auto s = std::make_unique<ServerProcess>(o);
    Status st = s->Start();
    EXPECT_TRUE(st.ok()) << st.message();
    return s;
  }
  static std::unique_ptr<client::HttpClient> As(const ServerProcess& s, const std::string& token) {
    auto c = client::HttpClient::Create(s.url(), client::ClientAuth{"", "", "", token});
    EXPECT_TRUE(c.ok());
    return std::move(*c);
  }
  static uint64_t Entries(client::HttpClient* admin) {
    auto m = testutil::Metric(admin, "annals_log_entries");
    return m.ok() ? *m : 0;
  }
  static void WaitEntries(client::HttpClient* admin, uint64_t n) {
    for (int i = 0; i < 300 && Entries(admin) < n; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    ASSERT_GE(Entries(admin), n);
  }
  void SendTcp(const std::string& text) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(tcp_port_);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    ASSERT_EQ(::write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
    ::close(fd);
  }
  // Every file under dir, whole.
  static std::vector<std::pair<std::string, std::string>> Files(const std::string& dir) {
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
      if (!e.is_regular_file()) continue;
      auto text = testutil::ReadFile(e.path().string());
      if (text.ok()) out.emplace_back(e.path().string(), std::move(*text));
    }
    return out;
  }
  static std::vector<std::string> Holding(const std::string& dir, const std::string& needle) {
    std::vector<std::string> where;
    for (const auto& [path, bytes] : Files(dir))
      if (bytes.find(needle) != std::string::npos) where.push_back(path);
    return where;
  }
  testutil::CommandResult Cli(std::vector<std::string> args, const ServerProcess& s, const std::string& token) {
    args.insert(args.end(), {"--url", s.url(), "--token", token});
    return testutil::RunAnnals(args, "", std::chrono::seconds(60), {"ANNALS_CONFIG", "HOME=" + dir_.path()});
  }

  TempDir dir_;
  std::string tail_;
  uint16_t tcp_port_ = 0;
};

TEST_F(Secrets, NoSecretValueReachesAnyFileAndAdminsRevealThemAgainstTheSignedLog) {
  const std::string data = dir_.Sub("data");
  auto server = Serve(data, /*sealed_key=*/true);
  auto admin = As(*server, "admin-token");
  auto ingester = As(*server, "ingest-token");

  // The values that must never be stored, by source.
  const std::string web_b64 = "d2ViaG9vay1kYi1wYXNzd29yZC0x";  // "webhook-db-password-1"
  const std::string web_plain = "webhook-stringdata-api-key-9f2";
  const std::string token = "eyJhbGciOiJSUzI1NiIsImtpZCI6InNob3AifQ.c2hvcC10b2tlbi1wYXlsb2Fk.c2lnbmF0dXJlLXho";
  const std::string env_pw = "pod-env-password-correct-horse";
  const std::string cm_value = "configmap-dsn-postgres://shop:pw@db";
  const std::string bearer = "Bearer cloud-bearer-token-5c1d";
  const std::string watch_b64 = "d2F0Y2gtc2VjcmV0LXZhbHVlLTM=";
  const std::string listed_b64 = "bGlzdGVkLXNlY3JldC12YWx1ZS02";
  const std::string tcp_b64 = "dGNwLXNlY3JldC12YWx1ZS00";
  const std::string tail_b64 = "dGFpbC1zZWNyZXQtdmFsdWUtNQ==";

  // 1. The webhook: a Secret created, a TokenRequest, a Deployment and a
  // Pod from the k9s fixtures (last-applied annotation; credential env), a
  // ConfigMap (the policy file's own rule).
  json dp = json::parse(Corpus("k8s-objects/k9s/dp.json"));
  const std::string last_applied = dp["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"];
  json pod = json::parse(Corpus("k8s-objects/k9s/po.json"));
  pod["spec"]["containers"][0]["env"] = json::array(
      {{{"name", "DB_PASSWORD"}, {"value", env_pw}}, {{"name", "LOG_LEVEL"}, {"value", "visible-log-level-marker"}}});
  json tr{{"kind", "TokenRequest"}, {"apiVersion", "authentication.k8s.io/v1"},
          {"spec", {{"audiences", {"https://kubernetes.default.svc"}}}}};
  json tr_resp = tr;
  tr_resp["status"] = {{"token", token}, {"expirationTimestamp", "2024-03-01T11:00:00Z"}};
  json cm{{"kind", "ConfigMap"}, {"apiVersion", "v1"}, {"metadata", {{"name", "shop-config"}}},
          {"data", {{"DSN", cm_value}}}};
  json list{{"kind", "EventList"},
            {"apiVersion", "audit.k8s.io/v1"},
            {"items",
             {AuditEvent("w-1", "create", "secrets", "", "db-credentials-webhook",
                         Secret("db-credentials-webhook", web_b64, web_plain),
                         Secret("db-credentials-webhook", web_b64, web_plain)),
              AuditEvent("w-2", "create", "serviceaccounts", "token", "shop-sa", tr, tr_resp),
              AuditEvent("w-3", "update", "deployments", "", dp["metadata"]["name"], dp, dp),
              AuditEvent("w-4", "create", "pods", "", pod["metadata"]["name"], pod, pod),
              AuditEvent("w-5", "create", "configmaps", "", "shop-config", cm, cm)}}};
  const std::string body = list.dump();
  auto r = ingester->Post("/v1/ingest/k8s-audit", body);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(json::parse(r->body)["stored"], 5);
  // A retry of the same body: every event recognised, though stored
  // redacted with fresh salts.
  r = ingester->Post("/v1/ingest/k8s-audit", body);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(json::parse(r->body)["duplicates"], 5) << r->body;

  // 2. /v1/ingest/events: a cloud-style record with an Authorization header.
  json cloud{{"specversion", "1.0"}, {"id", "cloud-1"}, {"source", "/shop/gateway"}, {"type", "api.call"},
             {"data", {{"requestParameters", {{"headers", {{"Authorization", bearer}, {"Accept", "*/*"}}}}}}}};
  r = ingester->Post("/v1/ingest/events", cloud.dump());
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->status, 200) << r->body;
  // 3. /v1/ingest/k8s-watch: a watched Secret.
  json watch{{"group", ""}, {"version", "v1"}, {"resource", "secrets"}, {"kind", "Secret"}, {"type", "ADDED"},
             {"object", Secret("watched-secret", watch_b64, "watch-plain-api-key")}};
  watch["object"]["metadata"]["resourceVersion"] = "4242";
  // And one as a list's item arrives: no kind in the object itself.
  json listed = watch;
  listed["object"] = Secret("listed-secret", listed_b64, "listed-plain-api-key");
  listed["object"].erase("kind");
  listed["object"].erase("apiVersion");
  listed["object"]["metadata"]["resourceVersion"] = "4243";
  r = ingester->Post("/v1/ingest/k8s-watch", watch.dump() + "\n" + listed.dump());
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->status, 200) << r->body;
  // 4. The TCP connector and 5. the tailed file, one Secret event each.
  SendTcp(AuditEvent("t-1", "create", "secrets", "", "tcp-secret", Secret("tcp-secret", tcp_b64, "tcp-plain-key"),
                     nullptr)
              .dump() +
          "\n");
  {
    std::ofstream f(tail_, std::ios::app);
    f << AuditEvent("f-1", "create", "secrets", "", "tail-secret", Secret("tail-secret", tail_b64, "tail-plain-key"),
                    nullptr)
             .dump()
      << "\n";
  }
  WaitEntries(admin.get(), 10);
  // Let the projections and indexes write what they will.
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  ASSERT_OK_AND_ASSIGN(uint64_t redacted, testutil::Metric(admin.get(), "annals_redacted_events_total{source=\"k8s-audit\"}"));
  EXPECT_EQ(redacted, 5u);

  // Every file of the data directory, the sealed store and indexes
  // included: none holds a value; the names around them are there.
  const std::vector<std::string> secrets = {web_b64, web_plain,  token,     env_pw,    cm_value, bearer.substr(7),
                                            watch_b64, tcp_b64, tail_b64, "watch-plain-api-key", "tcp-plain-key",
                                            "tail-plain-key", last_applied.substr(0, 120), listed_b64,
                                            "listed-plain-api-key",
                                            "webhook-db-password-1"};
  for (const auto& s : secrets) EXPECT_EQ(Holding(data, s), std::vector<std::string>{}) << s;
  for (const char* marker : {"db-credentials-webhook", "visible-log-level-marker", "shop-config", "watched-secret",
                             "tcp-secret", "tail-secret", "/shop/gateway", "listed-secret"})
    EXPECT_FALSE(Holding(data, marker).empty()) << marker << " not found: the scan would not see a value either";

  // An admin reveals: the real CLI checks the value opens the commitment
  // in the entry and the entry is in the log's signed checkpoint.
  auto e0 = admin->Get("/v1/entries/0");
  ASSERT_TRUE(e0.ok());
  json entry0 = json::parse(e0->body);
  ASSERT_EQ(entry0["meta"]["redacted"]["count"], 4) << entry0["meta"].dump();
  EXPECT_TRUE(entry0["meta"]["redacted"]["policy"].get<std::string>().starts_with("shop@"));
  auto rv = Cli({"reveal", "--index", "0", "--path", "/requestObject/data/password", "--log-key",
                 server->verifier_key()},
                *server, "admin-token");
  EXPECT_EQ(rv.exit_code, 0) << rv.err;
  EXPECT_EQ(rv.out, "\"" + web_b64 + "\"\n");
  EXPECT_NE(rv.err.find("signed checkpoint of size"), std::string::npos) << rv.err;
  for (const auto& [index, path, want] :
       std::vector<std::tuple<int, std::string, std::string>>{{1, "/responseObject/status/token", token},
                                                              {3, "/requestObject/spec/containers/0/env/0/value", env_pw},
                                                              {4, "/responseObject/data/DSN", cm_value}}) {
    auto c = Cli({"reveal", "--index", std::to_string(index), "--path", path}, *server, "admin-token");
    EXPECT_EQ(c.exit_code, 0) << path << c.err;
    EXPECT_EQ(c.out, "\"" + want + "\"\n") << path;
  }
  // A reader may not; nor may anyone without a credential.
  auto reader = As(*server, "reader-token");
  auto denied = reader->Get("/v1/sealed?index=0&path=/requestObject/data/password");
  ASSERT_TRUE(denied.ok());
  EXPECT_EQ(denied->status, 403);
  EXPECT_EQ(denied->body.find(web_b64), std::string::npos);
  auto rc = Cli({"reveal", "--index", "0", "--path", "/requestObject/data/password"}, *server, "reader-token");
  EXPECT_NE(rc.exit_code, 0);
  EXPECT_EQ(rc.out.find(web_b64), std::string::npos);
  // A path that holds no commitment, and an entry that does not exist.
  auto bad = admin->Get("/v1/sealed?index=0&path=/requestObject/metadata/name");
  ASSERT_TRUE(bad.ok());
  EXPECT_EQ(bad->status, 400);
  bad = admin->Get("/v1/sealed?index=99999&path=/x");
  ASSERT_TRUE(bad.ok());
  EXPECT_EQ(bad->status, 404);

  // The reveals are on the record as reads of /v1/sealed.
  const uint64_t n = Entries(admin.get());
  size_t reveals = 0;
  for (uint64_t i = 10; i < n; ++i) {
    auto e = admin->Get("/v1/entries/" + std::to_string(i));
    ASSERT_TRUE(e.ok());
    json j = json::parse(e->body);
    if (j["meta"].value("type", "") == "annals.read" &&
        j["event"]["target"].get<std::string>().starts_with("/v1/sealed?"))
      ++reveals;
  }
  EXPECT_EQ(reveals, 4u);

  // Erasure: recorded, then gone; the commitment stays and the log still
  // verifies.
  auto er = Cli({"erase", "--index", "0", "--path", "/requestObject/data/password", "--reason",
                 "rotated; ticket SEC-1234"},
                *server, "admin-token");
  ASSERT_EQ(er.exit_code, 0) << er.err;
  auto again = Cli({"reveal", "--index", "0", "--path", "/requestObject/data/password"}, *server, "admin-token");
  EXPECT_NE(again.exit_code, 0);
  EXPECT_NE(again.err.find("erased"), std::string::npos) << again.err;
  auto other = Cli({"reveal", "--index", "0", "--path", "/responseObject/data/password"}, *server, "admin-token");
  EXPECT_EQ(other.exit_code, 0) << other.err;  // the response's copy has its own commitment
  auto reader_erase = reader->Post("/v1/erase", R"({"index":0,"path":"/responseObject/data/password","reason":"x"})");
  ASSERT_TRUE(reader_erase.ok());
  EXPECT_EQ(reader_erase->status, 403);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto v = Cli({"verify", "--key", server->verifier_key()}, *server, "reader-token");
  EXPECT_EQ(v.exit_code, 0) << v.out << v.err;
  // The entry still holds the commitment, unchanged.
  auto e0b = admin->Get("/v1/entries/0");
  ASSERT_TRUE(e0b.ok());
  EXPECT_EQ(json::parse(e0b->body)["event"]["requestObject"]["data"]["password"],
            entry0["event"]["requestObject"]["data"]["password"]);
  ASSERT_TRUE(server->Stop().ok());  // a clean stop: verify reads what the server wrote
  auto off = testutil::RunAnnals({"verify", "--data", data});
  EXPECT_EQ(off.exit_code, 0) << off.out << off.err;
}

// Without a seal key the sealed store holds the values in the clear: there
// the scan finds them (so it would find a leak), and an erasure takes the
// value out of every file.
TEST_F(Secrets, ErasureTakesTheValueOutOfEveryFileAndSurvivesAKill) {
  const std::string data = dir_.Sub("plain");
  auto server = Serve(data, /*sealed_key=*/false);
  auto admin = As(*server, "admin-token");
  auto ingester = As(*server, "ingest-token");
  const std::string keep = "a2VlcC10aGlzLXZhbHVlLTc=", gone = "ZXJhc2UtdGhpcy12YWx1ZS04";
  json list{{"kind", "EventList"},
            {"apiVersion", "audit.k8s.io/v1"},
            {"items",
             {AuditEvent("e-1", "create", "secrets", "", "keep", Secret("keep", keep, "keep-plain"), nullptr),
              AuditEvent("e-2", "create", "secrets", "", "gone", Secret("gone", gone, "gone-plain"), nullptr)}}};
  auto r = ingester->Post("/v1/ingest/k8s-audit", list.dump());
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->status, 200) << r->body;
  // Acknowledged, then killed at once: the values were sealed before the
  // entries were appended, so both are there after the restart.
  server->Kill();
  ASSERT_OK(server->Restart());
  admin = As(*server, "admin-token");
  for (const auto& [index, value] : std::vector<std::pair<int, std::string>>{{0, keep}, {1, gone}}) {
    auto c = Cli({"reveal", "--index", std::to_string(index), "--path", "/requestObject/data/password"}, *server,
                 "admin-token");
    EXPECT_EQ(c.exit_code, 0) << c.err;
    EXPECT_EQ(c.out, "\"" + value + "\"\n");
  }
  // Only in the sealed store.
  for (const auto& where : Holding(data, gone)) EXPECT_NE(where.find("/sealed/"), std::string::npos) << where;
  ASSERT_FALSE(Holding(data, gone).empty());
  auto er = Cli({"erase", "--index", "1", "--path", "/requestObject/data/password", "--reason", "test"}, *server,
                "admin-token");
  ASSERT_EQ(er.exit_code, 0) << er.err;
  EXPECT_EQ(Holding(data, gone), std::vector<std::string>{});
  EXPECT_FALSE(Holding(data, keep).empty());  // the other value stays
  // The erasure entry names what, who and why.
  const std::string out = er.out;
  const size_t at = out.find("entry ");
  ASSERT_NE(at, std::string::npos) << out;
  auto e = admin->Get("/v1/entries/" + std::to_string(std::stoull(out.substr(at + 6))));
  ASSERT_TRUE(e.ok());
  json j = json::parse(e->body);
  EXPECT_EQ(j["meta"]["type"], "annals.erasure");
  EXPECT_EQ(j["event"]["user"], "root");
  EXPECT_EQ(j["event"]["reason"], "test");
  EXPECT_EQ(j["event"]["index"], 1);
  EXPECT_TRUE(j["event"]["commitment"].get<std::string>().starts_with("redacted:v1:"));
  // Erasing it again: nothing to erase, nothing appended.
  const uint64_t before = Entries(admin.get());
  auto twice = admin->Post("/v1/erase", R"({"index":1,"path":"/requestObject/data/password","reason":"again"})");
  ASSERT_TRUE(twice.ok());
  EXPECT_EQ(twice->status, 412) << twice->body;
  EXPECT_EQ(Entries(admin.get()), before);
}

}  // namespace
}  // namespace annals
