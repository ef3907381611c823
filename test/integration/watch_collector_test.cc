// The watch collector end to end: the real `annals serve --watch` (and
// `annals collect --url`) against test/fake_apiserver/fake_kube_apiserver.py,
// a small API server that speaks the real wire protocol (paginated lists,
// chunked watch streams, bookmarks, ERROR 410 frames, HTTP 410, bearer
// tokens, dropped connections). Objects are real ones from
// ../shared/corpus/k8s-objects (KubeHound's PodList, k9s fixtures,
// kubeclient's recorded watch stream and 410 answer). After a scripted
// history of creates, IP assignments, deletions, a disconnect, a malformed
// frame and a 410, state-at-T and whois answer what the script did, and a
// restart appends nothing twice.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "client/http_client.h"
#include "common/time_util.h"
#include "testutil/fake_apiserver.h"
#include "testutil/server_process.h"
#include "testutil/test_macros.h"

namespace annals {
namespace {

using nlohmann::json;
using testutil::FakeApiServer;
using testutil::ServeOptions;
using testutil::ServerProcess;
using testutil::TempDir;

const char kToken[] = "watch-test-token-3f9c";

json LoadJson(const std::string& rel) {
  std::ifstream in(testutil::CorpusDir() + "/k8s-objects/" + rel);
  EXPECT_TRUE(in.good()) << rel;
  std::stringstream ss;
  ss << in.rdbuf();
  return json::parse(ss.str());
}

// `token` is the user's token, or "tokenFile: PATH".
std::string Kubeconfig(const TempDir& dir, int port, const std::string& token) {
  const std::string user = token.starts_with("tokenFile: ") ? token : "token: " + token;
  return testutil::WriteFakeKubeconfig(dir.Sub("kubeconfig"), port, user);
}

json Get(const std::string& url, const std::string& path, int* status = nullptr) {
  auto c = client::HttpClient::Create(url);
  auto r = (*c)->Get(path);
  if (!r.ok()) return json();
  if (status) *status = r->status;
  return json::parse(r->body, nullptr, false);
}

bool WaitFor(const std::function<bool()>& pred, int seconds = 20) {
  auto end = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return pred();
}

std::set<std::string> PodNames(const std::string& url, const std::string& at) {
  json j = Get(url, "/v1/state?kind=pods&at=" + at);
  std::set<std::string> names;
  if (j.is_object())
    for (const auto& o : j["objects"]) names.insert(o.value("namespace", "") + "/" + o.value("name", ""));
  return names;
}

std::string WhoIs(const std::string& url, const std::string& ip, const std::string& at) {
  int status = 0;
  json j = Get(url, "/v1/pods/by-ip/" + ip + "?at=" + at, &status);
  if (status != 200 || !j.is_object()) return "";
  if (j.contains("pod")) return j["pod"].value("namespace", "") + "/" + j["pod"].value("name", "");
  return j.value("namespace", "") + "/" + j.value("name", "");
}

uint64_t Metric(const std::string& url, const std::string& line_prefix) {
  auto c = client::HttpClient::Create(url);
  auto r = (*c)->Get("/metrics");
  if (!r.ok()) return 0;
  std::istringstream in(r->body);
  std::string line;
  while (std::getline(in, line))
    if (line.starts_with(line_prefix + " ")) return std::stoull(line.substr(line_prefix.size() + 1));
  return 0;
}

// How many entries the ledger holds durably (the signed checkpoint's tree
// size may lag what the projections already show).
uint64_t Entries(const std::string& url) { return Metric(url, "annals_log_entries"); }

// Every durable entry's metadata, in order.
std::vector<json> Metas(const std::string& url) {
  std::vector<json> out;
  const uint64_t n = Entries(url);
  for (uint64_t i = 0; i < n; ++i) out.push_back(Get(url, "/v1/entries/" + std::to_string(i))["meta"]);
  return out;
}

std::string ReadText(const std::string& path) {
  auto t = testutil::ReadFile(path);
  return t.ok() ? *t : "";
}

std::string Now() { return FormatRfc3339(NowMicros()); }

json WithIp(json pod, const std::string& ip) {
  pod["status"]["podIP"] = ip;
  pod["status"]["podIPs"] = json::array({{{"ip", ip}}});
  pod["status"]["phase"] = "Running";
  return pod;
}

TEST(WatchCollector, ScriptedHistoryGivesStateAndWhoisAndRestartAppendsNothingTwice) {
  FakeApiServer api(kToken);
  ASSERT_GT(api.port(), 0);
  TempDir dir;
  // Before the collector starts: KubeHound's three pods and k9s' Service.
  json seeds = LoadJson("kubehound-kind-cluster/default/pods.json");
  for (json pod : seeds["items"]) {
    pod["kind"] = "Pod";
    pod["apiVersion"] = "v1";
    api.Apply("ADDED", pod);
  }
  api.Apply("ADDED", LoadJson("k9s/svc.json"), "/api/v1/services");

  ServeOptions so;
  so.data_dir = dir.Sub("data");
  so.checkpoint_interval_ms = 20;
  so.extra_args = {"--watch", "--kubeconfig", Kubeconfig(dir, api.port(), kToken),
                   "--watch-resources", "pods,services", "--watch-timeout", "4"};
  ServerProcess server(so);
  ASSERT_OK(server.Start());
  const std::string& url = server.url();
  ASSERT_TRUE(WaitFor([&] { return PodNames(url, Now()).size() == 3; })) << server.StderrText();
  EXPECT_EQ(WhoIs(url, "10.244.1.2", Now()), "default/priv-pod");
  // Both watches stream (each got at least its bookmark).
  EXPECT_TRUE(WaitFor([&] { return Metric(url, "annals_watch_open") == 2; }));

  // kubeclient's recorded watch stream: php is added, then scheduled.
  json stream;
  {
    std::ifstream in(testutil::CorpusDir() + "/k8s-objects/kubeclient/watch_stream.json");
    std::string line;
    while (std::getline(in, line)) stream.push_back(json::parse(line));
  }
  ASSERT_EQ(stream.size(), 3u);
  json php = stream[0]["object"];
  api.Apply("ADDED", php);
  json php_ip = WithIp(stream[1]["object"], "10.244.7.7");
  api.Apply("MODIFIED", php_ip);
  ASSERT_TRUE(WaitFor([&] { return WhoIs(url, "10.244.7.7", Now()) == "default/php"; }))
      << server.StderrText();
  const std::string t_php = Now();
  // Known only from the watch: its history is its versions as the
  // collector saw them, found without naming the namespace too.
  {
    json h = Get(url, "/v1/history?kind=pods&name=php");
    ASSERT_TRUE(h.is_object()) << h.dump();
    EXPECT_EQ(h.value("source", ""), "k8s-watch") << h.dump();
    ASSERT_EQ(h.value("count", 0), 2) << h.dump();
    EXPECT_EQ(h["events"][0]["verb"], "ADDED");
    EXPECT_EQ(h["events"][1]["verb"], "MODIFIED");
    EXPECT_EQ(h["events"][1]["namespace"], "default");
    EXPECT_EQ(h["events"][1]["uid"], php["metadata"]["uid"]);
    EXPECT_LT(h["events"][0]["index"].get<uint64_t>(), h["events"][1]["index"].get<uint64_t>());
    auto cli = testutil::RunAnnals({"history", "pod/php", "--url", url});
    ASSERT_EQ(cli.exit_code, 0) << cli.err;
    EXPECT_NE(cli.out.find("NAMESPACE"), std::string::npos) << cli.out;
    EXPECT_NE(cli.out.find("(watch)"), std::string::npos) << cli.out;
    auto none = testutil::RunAnnals({"history", "pod/php", "--url", url, "--verbs", "get"});
    ASSERT_EQ(none.exit_code, 0) << none.err;
    EXPECT_NE(none.out.find("No changes to pod/php in any namespace"), std::string::npos) << none.out;
  }

  // k9s' nginx pod, renamed, gets another IP.
  json web = LoadJson("k9s/po.json");
  web["metadata"]["name"] = "web";
  web["metadata"]["namespace"] = "default";
  web["metadata"]["uid"] = "7d0f6c1e-web0-4c8e-9a51-000000000001";
  api.Apply("ADDED", WithIp(web, "10.244.7.8"));
  ASSERT_TRUE(WaitFor([&] { return WhoIs(url, "10.244.7.8", Now()) == "default/web"; }));
  const std::string t_both = Now();

  // A dropped connection (mid-frame): the collector resumes from its last
  // resourceVersion and misses nothing.
  api.Control("drop", {{"partial", true}});
  web["metadata"]["labels"]["tier"] = "frontend";
  api.Apply("MODIFIED", WithIp(web, "10.244.7.8"));
  ASSERT_TRUE(WaitFor([&] {
    json j = Get(url, "/v1/state?kind=pods&selector=tier%3Dfrontend&at=" + Now());
    return j.is_object() && j.value("count", 0) == 1;
  })) << server.StderrText();
  EXPECT_GE(Metric(url, "annals_watch_reconnects_total{resource=\"pods\"}"), 1u);

  // A malformed frame: logged, counted, not appended; the watch restarts.
  const uint64_t before_garbage = Entries(url);
  api.Control("garbage", {{"line", R"({"type":"ADDED","object":{"kind":"Pod","metadata":{"name":"half")"}});
  ASSERT_TRUE(WaitFor([&] { return Metric(url, "annals_watch_malformed_frames_total{resource=\"pods\"}") >= 1; }));
  web["metadata"]["labels"]["tier"] = "web";
  api.Apply("MODIFIED", WithIp(web, "10.244.7.8"));
  ASSERT_TRUE(WaitFor([&] { return Entries(url) == before_garbage + 1; })) << server.StderrText();

  // Away: the API server refuses us while php is deleted and db takes its
  // IP, and then forgets that history: the resume gets 410 and a relist.
  api.Control("refuse", {{"on", true}});
  api.Control("drop", {{"partial", false}});
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const std::string t_away = Now();
  api.Apply("DELETED", stream[2]["object"]);
  json db = LoadJson("k9s/po.json");
  db["metadata"]["name"] = "db";
  db["metadata"]["namespace"] = "default";
  db["metadata"]["uid"] = "7d0f6c1e-db00-4c8e-9a51-000000000002";
  api.Apply("ADDED", WithIp(db, "10.244.7.7"));
  api.Control("compact", {{"http410", false}});
  api.Control("refuse", {{"on", false}});
  ASSERT_TRUE(WaitFor([&] { return WhoIs(url, "10.244.7.7", Now()) == "default/db"; }))
      << server.StderrText();
  // Every resource's resume hit the compaction: wait for both relists.
  ASSERT_TRUE(WaitFor([&] { return Metric(url, "annals_watch_relists_total{resource=\"services\"}") >= 2; }));
  ASSERT_TRUE(WaitFor([&] {
    const uint64_t a = Entries(url);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    return a == Entries(url);
  }));
  const std::string t_end = Now();
  EXPECT_GE(api.Stats().value("gone", 0), 2);
  EXPECT_GE(Metric(url, "annals_watch_relists_total{resource=\"pods\"}"), 2u);

  // The scripted truth.
  const std::set<std::string> kSeeds = {"default/hostpath-pod", "default/priv-hostpid-pod", "default/priv-pod"};
  auto with = [&](std::set<std::string> s, std::initializer_list<const char*> more) {
    for (auto m : more) s.insert(m);
    return s;
  };
  EXPECT_EQ(PodNames(url, t_php), with(kSeeds, {"default/php"}));
  EXPECT_EQ(PodNames(url, t_both), with(kSeeds, {"default/php", "default/web"}));
  EXPECT_EQ(PodNames(url, t_away), with(kSeeds, {"default/php", "default/web"}));
  EXPECT_EQ(PodNames(url, t_end), with(kSeeds, {"default/web", "default/db"}));
  EXPECT_EQ(WhoIs(url, "10.244.7.7", t_php), "default/php");
  EXPECT_EQ(WhoIs(url, "10.244.7.7", t_away), "default/php");
  EXPECT_EQ(WhoIs(url, "10.244.7.7", t_end), "default/db");
  EXPECT_EQ(WhoIs(url, "10.244.7.8", t_end), "default/web");
  EXPECT_EQ(WhoIs(url, "10.244.7.8", t_php), "");

  // The entries: each key once; the relist marker, php's deletion observed
  // at the relist (a tombstone) and db found by it.
  std::vector<json> metas = Metas(url);
  std::set<std::string> keys;
  int markers = 0, tombstones = 0, relist_adds = 0;
  for (const auto& m : metas) {
    ASSERT_TRUE(m.is_object());
    EXPECT_TRUE(keys.insert(m.value("key", "")).second) << m.dump();
    if (m.value("type", "") == "k8s.watch.relist") ++markers;
    const json w = m.value("watch", json::object());
    if (w.value("observed", "") == "relist" && w.value("event", "") == "DELETED") {
      ++tombstones;
      EXPECT_EQ(w.value("name", ""), "php");
    }
    if (w.value("observed", "") == "relist" && w.value("event", "") == "ADDED" && w.value("name", "") == "db")
      ++relist_adds;
  }
  EXPECT_GE(markers, 3);  // two initial lists, at least one relist after 410
  EXPECT_EQ(tombstones, 1);
  EXPECT_EQ(relist_adds, 1);

  // A restart resumes where it stopped: nothing appended again.
  const uint64_t size = Entries(url);
  ASSERT_OK(server.Stop());
  ASSERT_OK(server.Start());
  std::this_thread::sleep_for(std::chrono::seconds(2));
  EXPECT_EQ(Entries(server.url()), size) << server.StderrText();

  api.Apply("DELETED", WithIp(web, "10.244.7.8"));
  ASSERT_TRUE(WaitFor([&] { return Entries(server.url()) == size + 1; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_EQ(Entries(server.url()), size + 1);
  EXPECT_EQ(PodNames(server.url(), Now()), with(kSeeds, {"default/db"}));
  EXPECT_EQ(WhoIs(server.url(), "10.244.7.8", Now()), "");
  EXPECT_EQ(WhoIs(server.url(), "10.244.7.7", t_php), "default/php");  // rebuilt from the log
}

// Bearer tokens: a wrong one gets 401 and stores nothing; a token file is
// re-read on every request, so a rotated token is picked up. A list in
// pages, an HTTP 410 answer (kubeclient's recorded body) and `annals
// collect --url` posting to a separate ledger over /v1/ingest/k8s-watch.
TEST(WatchCollector, TokensPagesHttp410AndRemoteCollector) {
  FakeApiServer api(kToken, testutil::CorpusDir() + "/k8s-objects/kubeclient/pods_410.json");
  ASSERT_GT(api.port(), 0);
  TempDir dir;
  // The kind cluster's kube-system pods: more than one page of 5.
  json pods = LoadJson("kubehound-kind-cluster/kube-system/pods.json");
  const size_t n = pods["items"].size();
  ASSERT_GT(n, 5u);
  for (json pod : pods["items"]) {
    pod["kind"] = "Pod";
    pod["apiVersion"] = "v1";
    api.Apply("ADDED", pod);
  }
  ServeOptions so;
  so.data_dir = dir.Sub("data");
  so.checkpoint_interval_ms = 20;
  ServerProcess ledger(so);
  ASSERT_OK(ledger.Start());
  const std::string& url = ledger.url();

  // Malformed watch records are refused whole.
  {
    auto c = client::HttpClient::Create(url);
    auto r = (*c)->Post("/v1/ingest/k8s-watch",
                        R"({"type":"ADDED","version":"v1","resource":"pods","object":{"metadata":{"uid":"u"}}})");
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->status, 400);
    EXPECT_NE(r->body.find("resourceVersion"), std::string::npos) << r->body;
    EXPECT_EQ(Entries(url), 0u);
  }

  // A token file the collector re-reads; first with a wrong token.
  const std::string token_file = dir.Sub("token");
  std::ofstream(token_file) << "wrong-token\n";
  const std::string kubeconfig = Kubeconfig(dir, api.port(), "tokenFile: " + token_file);
  auto collect_args = std::vector<std::string>{
      "collect", "--url", url, "--state-dir", dir.Sub("collect-state"), "--kubeconfig", kubeconfig,
      "--watch-resources", "pods", "--watch-timeout", "3", "--watch-list-page", "5"};
  pid_t pid = fork();
  if (pid == 0) {
    std::vector<char*> argv;
    std::string bin = testutil::AnnalsBinary();
    argv.push_back(bin.data());
    for (auto& a : collect_args) argv.push_back(a.data());
    argv.push_back(nullptr);
    int fd = ::open(dir.Sub("collect.err").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    dup2(fd, 2);
    execv(bin.c_str(), argv.data());
    _exit(127);
  }
  ASSERT_GT(pid, 0);
  struct Reap {
    pid_t pid;
    ~Reap() {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
  } reap{pid};
  ASSERT_TRUE(WaitFor([&] { return api.Stats().value("unauthorized", 0) >= 2; }));
  EXPECT_EQ(Entries(url), 0u);

  // The right token in the file: picked up on the next attempt.
  std::ofstream(token_file) << kToken << "\n";
  ASSERT_TRUE(WaitFor([&] { return PodNames(url, Now()).size() == n; }, 40))
      << ReadText(dir.Sub("collect.err"));
  EXPECT_GE(api.Stats().value("lists", 0), static_cast<int>((n + 4) / 5));

  // Rotation: the server now wants a new token; the file changes with it.
  api.Control("token", {{"token", "rotated-token-77"}});
  std::ofstream(token_file) << "rotated-token-77\n";
  api.Control("drop", {{"partial", false}});
  json victim = pods["items"][0];
  victim["kind"] = "Pod";
  victim["apiVersion"] = "v1";
  const std::string victim_name = "kube-system/" + victim["metadata"]["name"].get<std::string>();
  api.Apply("DELETED", victim);
  ASSERT_TRUE(WaitFor([&] { return PodNames(url, Now()).size() == n - 1; }, 40))
      << ReadText(dir.Sub("collect.err"));
  const std::string t_deleted = Now();

  // HTTP 410 (not an ERROR frame): relist; the answer's message is logged.
  api.Control("refuse", {{"on", true}});
  api.Control("drop", {{"partial", false}});
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  json moved = pods["items"][1];
  moved["kind"] = "Pod";
  moved["apiVersion"] = "v1";
  moved["metadata"]["labels"]["relisted"] = "yes";
  api.Apply("MODIFIED", moved);
  api.Control("compact", {{"http410", true}});
  api.Control("refuse", {{"on", false}});
  ASSERT_TRUE(WaitFor([&] {
    json j = Get(url, "/v1/state?kind=pods&selector=relisted%3Dyes&at=" + Now());
    return j.is_object() && j.value("count", 0) == 1;
  }, 40)) << ReadText(dir.Sub("collect.err"));
  EXPECT_GE(api.Stats().value("gone", 0), 1);
  EXPECT_EQ(PodNames(url, t_deleted).count(victim_name), 0u);
  const std::string err = ReadText(dir.Sub("collect.err"));
  EXPECT_NE(err.find("401"), std::string::npos) << err;
  EXPECT_NE(err.find("410"), std::string::npos) << err;

  // Every key once, every payload an object with a uid (or a marker).
  std::set<std::string> keys;
  for (const auto& m : Metas(url)) EXPECT_TRUE(keys.insert(m.value("key", "")).second) << m.dump();
}

// Over TLS, as against a real API server: the collector verifies the
// server's certificate against the kubeconfig's CA (another CA: nothing
// collected), takes a list and a stream of many events that arrive
// back-to-back (many HTTP chunks per TLS read), and survives a connection
// cut mid-frame.
TEST(WatchCollector, OverTlsVerifiesTheServerAndTakesEveryEvent) {
  TempDir dir;
  const std::string cert = dir.Sub("cert.pem"), key = dir.Sub("key.pem"), other = dir.Sub("other.pem");
  ASSERT_TRUE(testutil::MakeSelfSignedCert(cert, key));
  ASSERT_TRUE(testutil::MakeSelfSignedCert(other, dir.Sub("other-key.pem")));
  FakeApiServer api(kToken, "", cert, key);
  ASSERT_GT(api.tls_port(), 0);
  json pods = LoadJson("kubehound-kind-cluster/kube-system/pods.json");
  const size_t n = pods["items"].size();
  for (json pod : pods["items"]) {
    pod["kind"] = "Pod";
    pod["apiVersion"] = "v1";
    api.Apply("ADDED", pod);
  }
  auto serve = [&](const std::string& ca, const std::string& sub) {
    ServeOptions so;
    so.data_dir = dir.Sub(sub);
    so.checkpoint_interval_ms = 20;
    so.extra_args = {"--watch", "--kubeconfig",
                     testutil::WriteFakeKubeconfig(dir.Sub(sub + ".kubeconfig"), api.tls_port(),
                                                   std::string("token: ") + kToken, ca),
                     "--watch-resources", "pods", "--watch-timeout", "5"};
    return so;
  };
  {
    // Trusting another CA: the handshake fails and nothing is appended.
    ServerProcess wrong(serve(other, "wrong"));
    ASSERT_OK(wrong.Start());
    EXPECT_TRUE(WaitFor([&] { return Metric(wrong.url(), "annals_watch_errors_total{resource=\"pods\"}") >= 1; }));
    EXPECT_EQ(Entries(wrong.url()), 0u);
    EXPECT_EQ(api.Stats().value("lists", 0), 0);
  }
  ServerProcess ledger(serve(cert, "data"));
  ASSERT_OK(ledger.Start());
  const std::string& url = ledger.url();
  ASSERT_TRUE(WaitFor([&] { return PodNames(url, Now()).size() == n; }, 40));

  // 400 versions of one pod, sent back to back, then a cut mid-frame.
  json pod = pods["items"][0];
  pod["kind"] = "Pod";
  pod["apiVersion"] = "v1";
  for (int i = 1; i <= 400; ++i) {
    pod["metadata"]["labels"]["step"] = std::to_string(i);
    api.Apply("MODIFIED", pod);
  }
  ASSERT_TRUE(WaitFor([&] {
    json j = Get(url, "/v1/state?kind=pods&selector=step%3D400&at=" + Now());
    return j.is_object() && j.value("count", 0) == 1;
  }, 40));
  api.Control("drop", {{"partial", true}});
  pod["metadata"]["labels"]["step"] = "after-cut";
  api.Apply("MODIFIED", pod);
  ASSERT_TRUE(WaitFor([&] {
    json j = Get(url, "/v1/state?kind=pods&selector=step%3Dafter-cut&at=" + Now());
    return j.is_object() && j.value("count", 0) == 1;
  }, 40));
  // Every version once: the list's n, the 400 and the one after the cut
  // (resuming from the last resourceVersion re-sends nothing).
  std::set<std::string> keys;
  size_t events = 0;
  for (const auto& m : Metas(url)) {
    EXPECT_TRUE(keys.insert(m.value("key", "")).second) << m.dump();
    events += m.value("type", "") == "k8s.watch";
  }
  EXPECT_EQ(events, n + 401);
}

}  // namespace
}  // namespace annals
