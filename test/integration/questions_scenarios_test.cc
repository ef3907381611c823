// The questions annals answers (state at T, pod by IP at T, flow enrichment,
// history, receipts), end to end: the real `annals` binary over HTTP, fed
// audit events whose responseObjects are real Pods, ReplicaSets,
// Deployments, Services, Jobs and CronJobs of the shared corpus (k9s
// fixtures, the KubeHound kind cluster's PodLists) on a scripted timeline.
// Every expected answer is computed from the script, not from the server:
// which version of each object is the last at T, who held an IP when.
//
// The script (seconds after 2024-03-01T10:00:00Z):
//   icx:     Deployment icx-db (k9s dp.json) with ReplicaSet icx-db-7d4b578979
//            (rs.json) and pod p1 (10.244.1.2 from t=3); Service icx-db
//            selects app=icx-db until its selector changes at t=60; the
//            rollout at t=100 makes ReplicaSet icx-db-5c8d7f9b6d with pod p2
//            (10.244.1.7); p1 is deleted gracefully (terminating at 110,
//            gone at 139); p3 of the new ReplicaSet gets p1's IP at 145.
//   default: CronJob hello -> Job hello-1567179180 -> pod (10.244.2.5 from
//            203 until it Succeeded at 230); pod nginx (k9s po.json) gets
//            10.244.2.5 at 241 and is selected by Service dictionary1;
//            StatefulSet-style pod db-0 deleted at 320 and recreated with a
//            new uid at 321 (its status patch arrives after its delete);
//            a dual-stack pod at 401; a ConfigMap deleted with a Status.
//   kube-system: etcd on the host network (172.18.0.4: never a pod's IP).
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
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

#include "checkpoint/checkpoint.h"
#include "checkpoint/note.h"
#include "client/http_client.h"
#include "common/bytes.h"
#include "common/sha256.h"
#include "common/file_util.h"
#include "common/time_util.h"
#include "index/dedup_index.h"
#include "index/event_index.h"
#include "merkle/merkle.h"
#include "state/k8s_object.h"
#include "testutil/log_client.h"
#include "testutil/server_process.h"
#include "testutil/test_macros.h"

#ifndef KUBECTL_AUDIT_BINARY
#error "KUBECTL_AUDIT_BINARY must be defined to the path of the kubectl-audit plugin"
#endif

namespace annals {
namespace {

using nlohmann::json;
using testutil::ServeOptions;
using testutil::ServerProcess;
using testutil::TempDir;
using Clock = std::chrono::steady_clock;

// ---------------------------------------------------------------------------
// Corpus objects and the script.

json CorpusJson(const std::string& rel) {
  std::ifstream in(testutil::CorpusDir() + "/k8s-objects/" + rel, std::ios::binary);
  EXPECT_TRUE(in.good()) << rel;
  std::stringstream ss;
  ss << in.rdbuf();
  return json::parse(ss.str());
}

json CorpusItem(const std::string& rel, const std::string& name) {
  const json list = CorpusJson(rel);
  for (const auto& i : list["items"])
    if (i["metadata"]["name"] == name) return i;
  ADD_FAILURE() << "no " << name << " in " << rel;
  return json::object();
}

const Micros kT0 = *ParseRfc3339("2024-03-01T10:00:00Z");
Micros T(double s) { return kT0 + static_cast<Micros>(s * 1e6); }
std::string Ts(double s) { return FormatRfc3339(T(s)); }

struct Step {
  std::string label;  // "p1.run": how the checks name it
  double t = 0;
  std::string verb, resource, subresource, ns, name;  // objectRef (name "" for generateName)
  json object;         // responseObject; null = Metadata level
  int code = 200;
  std::string effect;  // "present" | "terminating" | "gone" | "" (no version)
  std::string uid;     // the object this version belongs to
  std::string user;
  std::string impersonated;  // impersonatedUser.username, if any
  uint64_t index = 0;  // ledger index, once posted

  // The name the ledger files the event under.
  std::string KeyName() const {
    if (!name.empty() || !object.is_object()) return name;
    return object["metadata"].value("name", "");
  }
  bool IsRead() const { return verb == "get" || verb == "list" || verb == "watch"; }
};

json OwnerRef(const std::string& api_version, const std::string& kind, const json& owner) {
  return {{"apiVersion", api_version}, {"blockOwnerDeletion", true}, {"controller", true},
          {"kind", kind}, {"name", owner["metadata"]["name"]}, {"uid", owner["metadata"]["uid"]}};
}

// A pod from a real template, renamed, relabelled, re-owned.
json PodFrom(json pod, const std::string& ns, const std::string& name, const std::string& uid,
             const json& labels, const json& owner) {
  json& md = pod["metadata"];
  md["namespace"] = ns;
  md["name"] = name;
  md["uid"] = uid;
  md["labels"] = labels;
  md.erase("selfLink");
  if (owner.is_null()) {
    md.erase("ownerReferences");
  } else {
    md["ownerReferences"] = json::array({owner});
  }
  return pod;
}

int g_rv = 1000;

json WithStatus(json pod, const std::string& phase, const std::vector<std::string>& ips) {
  pod["metadata"]["resourceVersion"] = std::to_string(++g_rv);
  json& st = pod["status"];
  st["phase"] = phase;
  st.erase("podIP");
  st.erase("podIPs");
  if (phase == "Pending") {
    st.erase("containerStatuses");
    st.erase("hostIP");
  }
  if (!ips.empty()) {
    st["podIP"] = ips[0];
    st["podIPs"] = json::array();
    for (const auto& ip : ips) st["podIPs"].push_back({{"ip", ip}});
  }
  return pod;
}

json Deleting(json obj, int64_t grace, double at) {
  obj["metadata"]["resourceVersion"] = std::to_string(++g_rv);
  obj["metadata"]["deletionTimestamp"] = Ts(at);
  obj["metadata"]["deletionGracePeriodSeconds"] = grace;
  return obj;
}

json Bumped(json obj) {
  obj["metadata"]["resourceVersion"] = std::to_string(++g_rv);
  return obj;
}

const char kAlice[] = "alice@example.com";
const char kKubelet[] = "system:node:kubehound.test.local-worker";
const char kRsController[] = "system:serviceaccount:kube-system:replicaset-controller";
const char kDeployController[] = "system:serviceaccount:kube-system:deployment-controller";
const char kJobController[] = "system:serviceaccount:kube-system:job-controller";
const char kCronController[] = "system:serviceaccount:kube-system:cronjob-controller";

// Names and uids the checks refer to.
struct Cast {
  json dp, rs1, rs2, svc_icx, cm_icx, p1, p2, p3;
  json cj, job, job_pod, svc_dict, nginx, db0a, db0b, dual, etcd, cm_settings;
};

class Script {
 public:
  Script() { Build(); }

  std::vector<Step> steps;
  Cast c;

  const Step& Get(const std::string& label) const {
    for (const auto& s : steps)
      if (s.label == label) return s;
    ADD_FAILURE() << "no step " << label;
    static Step none;
    return none;
  }
  uint64_t Index(const std::string& label) const { return Get(label).index; }

  // The last version of each object at or before t (by time, then ledger
  // index), gone ones left out: uid -> step.
  std::map<std::string, const Step*> StateAt(double t) const {
    std::map<std::string, const Step*> last;
    for (const auto& s : steps) {
      if (s.effect.empty() || s.t > t) continue;
      const Step*& cur = last[s.uid];
      if (!cur || std::make_pair(s.t, s.index) > std::make_pair(cur->t, cur->index)) cur = &s;
    }
    for (auto it = last.begin(); it != last.end();) {
      if (it->second->effect == "gone") {
        it = last.erase(it);
      } else {
        ++it;
      }
    }
    return last;
  }
  // The version of uid at t.
  const Step* VersionAt(const std::string& uid, double t) const {
    const Step* cur = nullptr;
    for (const auto& s : steps) {
      if (s.effect.empty() || s.uid != uid || s.t > t) continue;
      if (!cur || std::make_pair(s.t, s.index) > std::make_pair(cur->t, cur->index)) cur = &s;
    }
    return cur;
  }

 private:
  void Add(std::string label, double t, std::string verb, std::string resource, std::string sub,
           std::string ns, std::string name, json object, int code, std::string effect,
           std::string user) {
    Step s;
    s.label = std::move(label);
    s.t = t;
    s.verb = std::move(verb);
    s.resource = std::move(resource);
    s.subresource = std::move(sub);
    s.ns = std::move(ns);
    s.name = std::move(name);
    s.code = code;
    s.effect = std::move(effect);
    s.user = std::move(user);
    if (object.is_object() && object.contains("metadata") && object["metadata"].contains("uid"))
      s.uid = object["metadata"]["uid"];
    s.object = std::move(object);
    steps.push_back(std::move(s));
  }
  void Build();
};

void Script::Build() {
  // --- icx: a Deployment, its rollout, a Service whose selector changes.
  c.dp = CorpusJson("k9s/dp.json");
  c.rs1 = CorpusJson("k9s/rs.json");
  c.rs2 = c.rs1;
  c.rs2["metadata"]["name"] = "icx-db-5c8d7f9b6d";
  c.rs2["metadata"]["uid"] = "2b1d4e6f-0c3a-4e59-9d61-6a7b8c9d0e1f";
  c.rs2["metadata"]["labels"]["pod-template-hash"] = "5c8d7f9b6d";
  c.rs2["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = "2";
  c.rs2["spec"]["selector"]["matchLabels"]["pod-template-hash"] = "5c8d7f9b6d";
  c.rs2["spec"]["template"]["metadata"]["labels"]["pod-template-hash"] = "5c8d7f9b6d";
  c.svc_icx = CorpusJson("k9s/svc.json");
  c.svc_icx["metadata"]["name"] = "icx-db";
  c.svc_icx["metadata"]["namespace"] = "icx";
  c.svc_icx["metadata"]["uid"] = "5e1f0d2c-8b7a-4c3d-9e8f-1a2b3c4d5e6f";
  c.svc_icx["metadata"].erase("selfLink");
  c.svc_icx["spec"]["selector"] = {{"app", "icx-db"}};
  c.cm_icx = {{"apiVersion", "v1"}, {"kind", "ConfigMap"},
              {"metadata", {{"name", "icx-db-config"}, {"namespace", "icx"},
                            {"uid", "0c9b8a7d-6e5f-4a3b-2c1d-0e9f8a7b6c5d"},
                            {"labels", {{"app.kubernetes.io/instance", "icx-db"}}}}},
              {"data", {{"max_connections", "100"}}}};
  const json priv = CorpusItem("kubehound-kind-cluster/default/pods.json", "priv-pod");
  const json hostpath = CorpusItem("kubehound-kind-cluster/default/pods.json", "hostpath-pod");
  const json hostpid = CorpusItem("kubehound-kind-cluster/default/pods.json", "priv-hostpid-pod");
  auto icx_pod = [&](const json& rs, const std::string& name, const std::string& uid) {
    json labels = {{"app", "icx-db"}, {"pod-template-hash", rs["metadata"]["labels"]["pod-template-hash"]}};
    json p = PodFrom(priv, "icx", name, uid, labels, OwnerRef("apps/v1", "ReplicaSet", rs));
    p["metadata"]["generateName"] = rs["metadata"]["name"].get<std::string>() + "-";
    return p;
  };
  c.p1 = icx_pod(c.rs1, "icx-db-7d4b578979-8xk2m", "a1b2c3d4-0001-4000-8000-000000000001");
  c.p2 = icx_pod(c.rs2, "icx-db-5c8d7f9b6d-4jq9z", "a1b2c3d4-0002-4000-8000-000000000002");
  c.p3 = icx_pod(c.rs2, "icx-db-5c8d7f9b6d-v7n2c", "a1b2c3d4-0003-4000-8000-000000000003");

  Add("dp.create", 0, "create", "deployments", "", "icx", "icx-db", c.dp, 201, "present", kAlice);
  Add("cm.create", 0.2, "create", "configmaps", "", "icx", "icx-db-config", c.cm_icx, 201, "present", kAlice);
  Add("svc.create", 0.5, "create", "services", "", "icx", "icx-db", c.svc_icx, 201, "present", kAlice);
  Add("rs1.create", 1, "create", "replicasets", "", "icx", "icx-db-7d4b578979", c.rs1, 201, "present",
      kDeployController);
  Add("p1.create", 2, "create", "pods", "", "icx", "", WithStatus(c.p1, "Pending", {}), 201, "present",
      kRsController);
  Add("p1.run", 3, "patch", "pods", "status", "icx", c.p1["metadata"]["name"],
      WithStatus(c.p1, "Running", {"10.244.1.2"}), 200, "present", kKubelet);
  Add("p1.get", 50, "get", "pods", "", "icx", c.p1["metadata"]["name"],
      WithStatus(c.p1, "Running", {"10.244.1.2"}), 200, "", kKubelet);
  Add("pods.list", 51, "list", "pods", "", "icx", "", json(), 200, "", kAlice);
  Add("dp.get", 52, "get", "deployments", "", "icx", "icx-db", c.dp, 200, "", kAlice);
  json svc2 = Bumped(c.svc_icx);
  svc2["spec"]["selector"] = {{"app", "icx-db"}, {"tier", "cache"}};
  Add("svc.update", 60, "update", "services", "", "icx", "icx-db", svc2, 200, "present", kAlice);
  // The rollout: a new pod template makes a new ReplicaSet.
  json dp2 = Bumped(c.dp);
  dp2["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = "2";
  dp2["metadata"]["generation"] = 2;
  dp2["spec"]["template"]["spec"]["containers"][0]["image"] = "postgres:9.6-alpine";
  Add("dp.patch", 100, "patch", "deployments", "", "icx", "icx-db", dp2, 200, "present", kAlice);
  steps.back().impersonated = "system:serviceaccount:ci:deployer";  // alice, acting as the CI robot
  Add("rs2.create", 100.5, "create", "replicasets", "", "icx", "icx-db-5c8d7f9b6d", c.rs2, 201, "present",
      kDeployController);
  Add("p2.create", 101, "create", "pods", "", "icx", "", WithStatus(c.p2, "Pending", {}), 201, "present",
      kRsController);
  Add("p2.run", 102, "patch", "pods", "status", "icx", c.p2["metadata"]["name"],
      WithStatus(c.p2, "Running", {"10.244.1.7"}), 200, "present", kKubelet);
  // The old pod goes: graceful delete, the kubelet's final delete.
  Add("p1.delete", 110, "delete", "pods", "", "icx", c.p1["metadata"]["name"],
      Deleting(WithStatus(c.p1, "Running", {"10.244.1.2"}), 30, 140), 200, "terminating", kRsController);
  Add("p1.final", 139, "delete", "pods", "", "icx", c.p1["metadata"]["name"],
      Deleting(WithStatus(c.p1, "Running", {"10.244.1.2"}), 0, 110), 200, "gone", kKubelet);
  json rs1_0 = Bumped(c.rs1);
  rs1_0["spec"]["replicas"] = 0;
  Add("rs1.scale", 140, "update", "replicasets", "", "icx", "icx-db-7d4b578979", rs1_0, 200, "present",
      kDeployController);
  Add("p3.create", 141, "create", "pods", "", "icx", "", WithStatus(c.p3, "Pending", {}), 201, "present",
      kRsController);
  Add("p3.run", 145, "patch", "pods", "status", "icx", c.p3["metadata"]["name"],
      WithStatus(c.p3, "Running", {"10.244.1.2"}), 200, "present", kKubelet);

  // --- kube-system: a static pod on the host network.
  c.etcd = CorpusItem("kubehound-kind-cluster/kube-system/pods.json", "etcd-kubehound.test.local-control-plane");
  Add("etcd.create", 5, "create", "pods", "", "kube-system", c.etcd["metadata"]["name"], c.etcd, 201, "present",
      "system:node:kubehound.test.local-control-plane");

  // --- default: CronJob -> Job -> pod that completes; its IP is reused.
  c.cj = CorpusJson("k9s/cj.json");
  c.job = CorpusJson("k9s/job.json");
  c.job_pod = PodFrom(hostpath, "default", "hello-1567179180-x7k2p", "a1b2c3d4-0004-4000-8000-000000000004",
                      {{"controller-uid", c.job["metadata"]["uid"]}, {"job-name", "hello-1567179180"}},
                      OwnerRef("batch/v1", "Job", c.job));
  c.svc_dict = CorpusJson("k9s/svc.json");
  c.nginx = CorpusJson("k9s/po.json");
  c.nginx["metadata"]["labels"] = {{"app", "dictionary1"}};
  Add("dict.create", 199, "create", "services", "", "default", "dictionary1", c.svc_dict, 201, "present", kAlice);
  Add("cj.create", 200, "create", "cronjobs", "", "default", "hello", c.cj, 201, "present", kAlice);
  Add("job.create", 201, "create", "jobs", "", "default", "hello-1567179180", c.job, 201, "present", kCronController);
  Add("jp.create", 202, "create", "pods", "", "default", "", WithStatus(c.job_pod, "Pending", {}), 201, "present",
      kJobController);
  Add("jp.run", 203, "patch", "pods", "status", "default", "hello-1567179180-x7k2p",
      WithStatus(c.job_pod, "Running", {"10.244.2.5"}), 200, "present", kKubelet);
  Add("jp.done", 230, "patch", "pods", "status", "default", "hello-1567179180-x7k2p",
      WithStatus(c.job_pod, "Succeeded", {"10.244.2.5"}), 200, "present", kKubelet);
  Add("nginx.create", 240, "create", "pods", "", "default", "nginx", WithStatus(c.nginx, "Pending", {}), 201,
      "present", kAlice);
  Add("nginx.run", 241, "patch", "pods", "status", "default", "nginx",
      WithStatus(c.nginx, "Running", {"10.244.2.5"}), 200, "present", kKubelet);

  // A ConfigMap deleted with a Status answer (no object in the response).
  c.cm_settings = {{"apiVersion", "v1"}, {"kind", "ConfigMap"},
                   {"metadata", {{"name", "settings"}, {"namespace", "default"},
                                 {"uid", "0c9b8a7d-6e5f-4a3b-2c1d-000000000777"}}},
                   {"data", {{"mode", "fast"}}}};
  Add("settings.create", 250, "create", "configmaps", "", "default", "settings", c.cm_settings, 201, "present", kAlice);
  Add("settings.delete", 260, "delete", "configmaps", "", "default", "settings",
      {{"kind", "Status"}, {"apiVersion", "v1"}, {"metadata", json::object()}, {"status", "Success"},
       {"details", {{"name", "settings"}, {"kind", "configmaps"}, {"uid", c.cm_settings["metadata"]["uid"]}}}},
      200, "gone", kAlice);
  steps.back().uid = c.cm_settings["metadata"]["uid"];  // the test knows which object it ends

  // db-0: deleted and recreated under the same name with a new uid. Its
  // first status patch reaches annals after its delete (out of order).
  json db_labels = {{"app", "db"}, {"statefulset.kubernetes.io/pod-name", "db-0"}};
  c.db0a = PodFrom(hostpid, "default", "db-0", "a1b2c3d4-0005-4000-8000-00000000000a", db_labels, json());
  c.db0b = PodFrom(hostpid, "default", "db-0", "a1b2c3d4-0006-4000-8000-00000000000b", db_labels, json());
  Add("db0a.create", 300, "create", "pods", "", "default", "db-0", WithStatus(c.db0a, "Pending", {}), 201, "present",
      kAlice);
  Add("db0a.delete", 320, "delete", "pods", "", "default", "db-0",
      Deleting(WithStatus(c.db0a, "Running", {"10.244.3.3"}), 0, 320), 200, "gone", kAlice);
  Add("db0a.run", 301, "patch", "pods", "status", "default", "db-0", WithStatus(c.db0a, "Running", {"10.244.3.3"}),
      200, "present", kKubelet);
  Add("db0b.create", 321, "create", "pods", "", "default", "db-0", WithStatus(c.db0b, "Pending", {}), 201, "present",
      kAlice);
  Add("db0b.run", 322, "patch", "pods", "status", "default", "db-0", WithStatus(c.db0b, "Running", {"10.244.3.9"}),
      200, "present", kKubelet);

  // Dual stack.
  c.dual = PodFrom(hostpath, "default", "dual-stack-pod", "a1b2c3d4-0007-4000-8000-000000000007",
                   {{"app", "dual"}}, json());
  Add("dual.create", 400, "create", "pods", "", "default", "dual-stack-pod", WithStatus(c.dual, "Pending", {}), 201,
      "present", kAlice);
  Add("dual.run", 401, "patch", "pods", "status", "default", "dual-stack-pod",
      WithStatus(c.dual, "Running", {"10.244.4.4", "fd00:10:244:4::4"}), 200, "present", kKubelet);
}

json AuditEventFor(const Step& s, size_t serial) {
  char id[64];
  std::snprintf(id, sizeof(id), "6f1d2c3b-%04zx-4a5b-8c7d-%012zx", serial, serial * 7919);
  json ref = {{"resource", s.resource}, {"namespace", s.ns}, {"apiVersion", "v1"}};
  if (!s.name.empty()) ref["name"] = s.name;
  if (!s.subresource.empty()) ref["subresource"] = s.subresource;
  if (s.resource == "deployments" || s.resource == "replicasets") ref["apiGroup"] = "apps";
  if (s.resource == "jobs" || s.resource == "cronjobs") ref["apiGroup"] = "batch";
  std::string uri = "/api/v1/namespaces/" + s.ns + "/" + s.resource + (s.name.empty() ? "" : "/" + s.name) +
                    (s.subresource.empty() ? "" : "/" + s.subresource);
  json ev = {{"kind", "Event"},
             {"apiVersion", "audit.k8s.io/v1"},
             {"level", s.object.is_null() ? "Metadata" : "RequestResponse"},
             {"auditID", id},
             {"stage", "ResponseComplete"},
             {"requestURI", uri},
             {"verb", s.verb},
             {"user", {{"username", s.user}, {"uid", "uid-of-" + s.user}, {"groups", {"system:authenticated"}}}},
             {"sourceIPs", {"172.18.0.3"}},
             {"userAgent", "kubectl/v1.29.2 (linux/amd64) kubernetes/4b8e819"},
             {"objectRef", ref},
             {"responseStatus", {{"metadata", json::object()}, {"code", s.code}}},
             {"requestReceivedTimestamp", FormatRfc3339(T(s.t) - 1500)},
             {"stageTimestamp", Ts(s.t)},
             {"annotations", {{"authorization.k8s.io/decision", "allow"}}}};
  if (!s.object.is_null()) ev["responseObject"] = s.object;
  if (!s.impersonated.empty())
    ev["impersonatedUser"] = {{"username", s.impersonated}, {"groups", {"system:serviceaccounts"}}};
  return ev;
}

// ---------------------------------------------------------------------------
// The server and HTTP helpers.

StatusOr<json> GetJson(client::HttpClient* http, const std::string& path, int want_status = 200) {
  ASSIGN_OR_RETURN(auto r, http->Get(path));
  if (r.status != want_status)
    return InternalError("GET " + path + ": status " + std::to_string(r.status) + ": " + r.body);
  json j = json::parse(r.body, nullptr, false);
  if (j.is_discarded()) return InternalError("GET " + path + ": not JSON: " + r.body);
  return j;
}

// Polls until the projection has applied `n` entries.
Status WaitApplied(client::HttpClient* http, uint64_t n, std::chrono::seconds timeout = std::chrono::seconds(20)) {
  const auto deadline = Clock::now() + timeout;
  uint64_t applied = 0;
  while (Clock::now() < deadline) {
    auto j = GetJson(http, "/v1/state?at=2000-01-01T00:00:00Z&kind=nosuchkind");
    if (j.ok()) {
      applied = (*j)["applied"].get<uint64_t>();
      if (applied >= n) return OkStatus();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return UnavailableError("projection applied " + std::to_string(applied) + " of " + std::to_string(n));
}

std::string TokenHash(std::string_view token) { return HexEncode(HashBytes(Sha256(token))); }

class Scenario {
 public:
  // clusters: post the script once per cluster, each through a token bound
  // to that cluster (the same events, interleaved step by step); empty:
  // once, with no cluster and no auth.
  explicit Scenario(std::vector<std::string> clusters = {})
      : clusters_(std::move(clusters)),
        scripts_(std::max<size_t>(1, clusters_.size())),
        server_(Options(dir_, clusters_)) {}

  // Starts the server and posts the script, one EventList per step in
  // script order; records each step's ledger index.
  Status Start() {
    RETURN_IF_ERROR(server_.Start());
    RETURN_IF_ERROR(Reconnect());
    std::vector<std::unique_ptr<client::HttpClient>> posters;
    for (size_t k = 0; k < scripts_.size(); ++k) {
      client::ClientAuth auth;
      if (!clusters_.empty()) auth.token = clusters_[k] + "-token";
      ASSIGN_OR_RETURN(auto c, client::HttpClient::Create(server_.url(), auth));
      posters.push_back(std::move(c));
    }
    for (size_t i = 0; i < scripts_[0].steps.size(); ++i) {
      for (size_t k = 0; k < scripts_.size(); ++k) {
        Step& s = scripts_[k].steps[i];
        std::string body = R"({"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[)" +
                           AuditEventFor(s, i).dump() + "]}";
        ASSIGN_OR_RETURN(auto r, posters[k]->Post("/v1/ingest/k8s-audit", body));
        if (r.status != 200) return InternalError("ingest " + s.label + ": " + std::to_string(r.status) + " " + r.body);
        json a = json::parse(r.body);
        if (a["stored"] != 1 || !a["first_index"].is_number())
          return InternalError("ingest " + s.label + ": " + r.body);
        s.index = a["first_index"].get<uint64_t>();
      }
    }
    return WaitApplied(http_.get(), scripts_.size() * scripts_[0].steps.size());
  }

  static ServeOptions Options(const TempDir& dir, const std::vector<std::string>& clusters = {}) {
    ServeOptions o;
    o.redaction_policy = "none";  // byte-for-byte checks
    o.data_dir = dir.Sub("data");
    o.checkpoint_interval_ms = 50;
    if (!clusters.empty()) {
      // One API server's token per cluster, bound to it; a reader.
      std::ofstream tokens(dir.Sub("tokens"));
      json users = json::object();
      for (const auto& c : clusters) {
        tokens << TokenHash(c + "-token") << " apiserver-" << c << "\n";
        users["apiserver-" + c] = {{"roles", {"ingest:k8s-audit"}}, {"cluster", c}};
      }
      tokens << TokenHash(kReaderToken) << " reader\n";
      users["reader"] = {"read", "verify"};
      std::ofstream(dir.Sub("auth.json")) << json{{"tokens", "tokens"}, {"users", users}}.dump();
      o.extra_args = {"--auth-config", dir.Sub("auth.json")};
    }
    return o;
  }
  static constexpr const char* kReaderToken = "reader-token";

  // The script with the ledger indexes of cluster k's copy.
  const Script& script(size_t k = 0) const { return scripts_[k]; }
  ServerProcess& server() { return server_; }
  client::HttpClient* http() { return http_.get(); }
  const TempDir& dir() const { return dir_; }
  // A reader (with the reader's token when auth is on).
  Status Reconnect() {
    client::ClientAuth auth;
    if (!clusters_.empty()) auth.token = kReaderToken;
    ASSIGN_OR_RETURN(http_, client::HttpClient::Create(server_.url(), auth));
    return OkStatus();
  }

 private:
  TempDir dir_;
  std::vector<std::string> clusters_;
  std::vector<Script> scripts_;
  ServerProcess server_;
  std::unique_ptr<client::HttpClient> http_;
};

// Runs argv with `path_prefix` first on PATH and HOME in a temp dir;
// stdout and stderr are captured through files.
struct RunResult {
  int exit_code = -1;
  std::string out, err;
};

RunResult RunProgram(const std::vector<std::string>& argv, const std::string& path_prefix, const TempDir& tmp) {
  RunResult res;
  const std::string out_path = tmp.Sub("run.out"), err_path = tmp.Sub("run.err");
  std::vector<std::string> env_strings = {"PATH=" + path_prefix + ":/usr/local/bin:/usr/bin:/bin",
                                          "HOME=" + tmp.path()};
  std::vector<char*> args, env;
  std::vector<std::string> argv_copy = argv;
  for (auto& a : argv_copy) args.push_back(a.data());
  args.push_back(nullptr);
  for (auto& e : env_strings) env.push_back(e.data());
  env.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid == 0) {
    int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int in = ::open("/dev/null", O_RDONLY);
    ::dup2(in, 0);
    ::dup2(out, 1);
    ::dup2(err, 2);
    ::execve(args[0], args.data(), env.data());
    ::_exit(127);
  }
  if (pid < 0) return res;
  const auto deadline = Clock::now() + std::chrono::seconds(60);
  int status = 0;
  for (;;) {
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    if (Clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      res.err = "[killed after 60 s]";
      return res;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (WIFEXITED(status)) res.exit_code = WEXITSTATUS(status);
  auto out = testutil::ReadFile(out_path);
  auto err = testutil::ReadFile(err_path);
  if (out.ok()) res.out = *out;
  if (err.ok()) res.err += *err;
  return res;
}

std::string Dirname(const std::string& p) { return p.substr(0, p.rfind('/')); }

// Splits a FormatTable table by the header's column offsets.
std::vector<std::map<std::string, std::string>> ParseTable(const std::string& text) {
  std::vector<std::string> lines;
  std::stringstream ss(text);
  for (std::string l; std::getline(ss, l);) lines.push_back(l);
  std::vector<std::map<std::string, std::string>> rows;
  if (lines.empty()) return rows;
  std::vector<std::pair<std::string, size_t>> cols;
  const std::string& h = lines[0];
  for (size_t i = 0; i < h.size();) {
    if (h[i] == ' ') {
      ++i;
      continue;
    }
    size_t j = h.find(' ', i);
    if (j == std::string::npos) j = h.size();
    cols.emplace_back(h.substr(i, j - i), i);
    i = j;
  }
  for (size_t r = 1; r < lines.size(); ++r) {
    std::map<std::string, std::string> row;
    for (size_t c = 0; c < cols.size(); ++c) {
      size_t b = cols[c].second;
      size_t e = c + 1 < cols.size() ? cols[c + 1].second : std::string::npos;
      std::string cell = b < lines[r].size() ? lines[r].substr(b, e == std::string::npos ? e : e - b) : "";
      while (!cell.empty() && cell.back() == ' ') cell.pop_back();
      row[cols[c].first] = cell;
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

// ---------------------------------------------------------------------------
// Shared scenario for the read-only checks.

// The checks of the questions against the script: `query` is added to
// every question ("&cluster=X" asks one cluster's answers, which then
// name their cluster).
struct Checker {
  const Script& script;
  client::HttpClient* http;
  std::string query;

  const Step& S(const std::string& label) const { return script.Get(label); }
  uint64_t I(const std::string& label) const { return script.Index(label); }
  // The cluster query asks for ("" if none).
  std::string cluster() const { return query.starts_with("&cluster=") ? query.substr(9) : ""; }

  // /v1/state at t (plus extra parameters) against the script's answer,
  // filtered by `keep`.
  void ExpectState(double t, const std::string& extra,
                   const std::function<bool(const Step&)>& keep = nullptr) {
    SCOPED_TRACE("state at t=" + std::to_string(t) + extra);
    ASSERT_OK_AND_ASSIGN(json j, GetJson(http, "/v1/state?at=" + Ts(t) + extra + query));
    EXPECT_EQ(j["at"], Ts(t));
    std::map<std::string, const Step*> want = script.StateAt(t);
    if (keep) {
      for (auto it = want.begin(); it != want.end();) it = keep(*it->second) ? std::next(it) : want.erase(it);
    }
    std::map<std::string, json> got;
    std::vector<std::tuple<std::string, std::string, std::string>> order;
    for (const auto& o : j["objects"]) {
      got[o["uid"]] = o;
      order.emplace_back(o["resource"], o["namespace"], o["name"]);
      if (cluster().empty()) {
        EXPECT_FALSE(o.contains("cluster")) << o.dump().substr(0, 300);
      } else {
        EXPECT_EQ(o.value("cluster", ""), cluster()) << o.dump().substr(0, 300);
      }
    }
    EXPECT_TRUE(std::is_sorted(order.begin(), order.end())) << "objects not in (resource, namespace, name) order";
    EXPECT_EQ(j["count"], want.size());
    EXPECT_EQ(got.size(), want.size());
    for (const auto& [uid, step] : want) {
      SCOPED_TRACE("object " + uid + " version " + step->label);
      auto it = got.find(uid);
      if (it == got.end()) {
        ADD_FAILURE() << "missing " << step->label;
        continue;
      }
      const json& o = it->second;
      EXPECT_EQ(o["resource"], step->resource);
      EXPECT_EQ(o["namespace"], step->object["metadata"].value("namespace", ""));
      EXPECT_EQ(o["name"], step->object["metadata"]["name"]);
      EXPECT_EQ(o["state"], step->effect);
      EXPECT_EQ(o["since"], Ts(step->t));
      EXPECT_EQ(o["index"], step->index);
      EXPECT_EQ(o["object"], step->object);
    }
    for (const auto& [uid, o] : got) EXPECT_TRUE(want.count(uid)) << "unexpected object " << o.dump().substr(0, 300);
  }

  struct Link {
    std::string kind, name, uid;
    std::string version;  // label of the owner's version at T ("" if unknown to annals)
  };
  // /v1/pods/by-ip/ip at t names `pod_version` (label) of the pod whose IP
  // interval opened at `from` and closes at `to` ("" = open).
  void ExpectWhois(const std::string& ip, double t, const std::string& pod_version, const std::string& from,
                   const std::string& to, const std::vector<Link>& owners,
                   const std::vector<std::string>& services) {
    SCOPED_TRACE("whois " + ip + " at t=" + std::to_string(t));
    ASSERT_OK_AND_ASSIGN(json j, GetJson(http, "/v1/pods/by-ip/" + ip + "?at=" + Ts(t) + query));
    const Step& v = S(pod_version);
    const json& md = v.object["metadata"];
    EXPECT_EQ(j["ip"], state::FormatIp(*state::ParseIp(ip)));
    EXPECT_EQ(j["at"], Ts(t));
    EXPECT_FALSE(j.contains("other_clusters")) << j.dump();
    EXPECT_EQ(j.value("cluster", ""), cluster());
    EXPECT_EQ(j["pod"].value("cluster", ""), cluster());
    EXPECT_EQ(j["interval"].value("cluster", ""), cluster());
    EXPECT_EQ(j["pod"]["namespace"], md["namespace"]);
    EXPECT_EQ(j["pod"]["name"], md["name"]);
    EXPECT_EQ(j["pod"]["uid"], md["uid"]);
    EXPECT_EQ(j["pod"]["labels"], md.value("labels", json::object()));
    EXPECT_EQ(j["pod"]["node"], v.object["spec"]["nodeName"]);
    EXPECT_EQ(j["pod"]["service_account"], v.object["spec"]["serviceAccountName"]);
    EXPECT_EQ(j["pod"]["phase"], v.object["status"]["phase"]);
    EXPECT_EQ(j["pod"]["state"], v.effect);
    EXPECT_EQ(j["version_index"], v.index);
    std::set<uint64_t> evidence = {v.index};
    const Step& f = S(from);
    EXPECT_EQ(j["interval"]["uid"], md["uid"]);
    EXPECT_EQ(j["interval"]["from"], Ts(f.t));
    EXPECT_EQ(j["interval"]["from_index"], f.index);
    evidence.insert(f.index);
    if (to.empty()) {
      EXPECT_TRUE(j["interval"]["to"].is_null());
      EXPECT_FALSE(j["interval"].contains("to_index"));
    } else {
      EXPECT_EQ(j["interval"]["to"], Ts(S(to).t));
      EXPECT_EQ(j["interval"]["to_index"], S(to).index);
    }
    ASSERT_EQ(j["owners"].size(), owners.size()) << j["owners"].dump();
    for (size_t k = 0; k < owners.size(); ++k) {
      const json& l = j["owners"][k];
      EXPECT_EQ(l["kind"], owners[k].kind);
      EXPECT_EQ(l["name"], owners[k].name);
      EXPECT_EQ(l["uid"], owners[k].uid);
      if (owners[k].version.empty()) {
        EXPECT_FALSE(l.contains("index"));
      } else {
        EXPECT_EQ(l["index"], I(owners[k].version)) << owners[k].version;
        evidence.insert(I(owners[k].version));
      }
    }
    ASSERT_EQ(j["services"].size(), services.size()) << j["services"].dump();
    for (size_t k = 0; k < services.size(); ++k) {
      const Step& sv = S(services[k]);
      EXPECT_EQ(j["services"][k]["name"], sv.object["metadata"]["name"]);
      EXPECT_EQ(j["services"][k]["uid"], sv.object["metadata"]["uid"]);
      EXPECT_EQ(j["services"][k]["index"], sv.index);
      evidence.insert(sv.index);
    }
    EXPECT_EQ(j["evidence"], json(std::vector<uint64_t>(evidence.begin(), evidence.end())));
  }

  // 404 with the nearest intervals (labels of the steps that opened and
  // closed them; "" = none).
  void ExpectNobody(const std::string& ip, double t, const std::string& before_from, const std::string& before_to,
                    const std::string& after_from) {
    SCOPED_TRACE("nobody " + ip + " at t=" + std::to_string(t));
    ASSERT_OK_AND_ASSIGN(json j, GetJson(http, "/v1/pods/by-ip/" + ip + "?at=" + Ts(t) + query, 404));
    EXPECT_TRUE(j["error"].is_string());
    ASSERT_TRUE(j["nearest"].is_object()) << j.dump();
    const json& b = j["nearest"]["before"];
    if (before_from.empty()) {
      EXPECT_TRUE(b.is_null()) << b.dump();
    } else {
      const Step& f = S(before_from);
      EXPECT_EQ(b["uid"], f.uid);
      EXPECT_EQ(b["name"], f.object["metadata"]["name"]);
      EXPECT_EQ(b["namespace"], f.object["metadata"]["namespace"]);
      EXPECT_EQ(b["from"], Ts(f.t));
      EXPECT_EQ(b["from_index"], f.index);
      EXPECT_EQ(b["to"], Ts(S(before_to).t));
      EXPECT_EQ(b["to_index"], S(before_to).index);
    }
    const json& a = j["nearest"]["after"];
    if (after_from.empty()) {
      EXPECT_TRUE(a.is_null()) << a.dump();
    } else {
      const Step& f = S(after_from);
      EXPECT_EQ(a["uid"], f.uid);
      EXPECT_EQ(a["from"], Ts(f.t));
      EXPECT_EQ(a["from_index"], f.index);
    }
  }

};

class Questions : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    scenario_ = std::make_unique<Scenario>();
    Status s = scenario_->Start();
    if (!s.ok()) start_error_ = s.ToString() + "\nserver stderr:\n" + scenario_->server().StderrText();
  }
  static void TearDownTestSuite() {
    scenario_.reset();
    start_error_.clear();
  }
  void SetUp() override {
    ASSERT_TRUE(start_error_.empty()) << start_error_;
    http_ = client::HttpClient::Create(scenario_->server().url()).value();
  }

  const Script& script() const { return scenario_->script(); }
  const Step& S(const std::string& label) const { return script().Get(label); }
  uint64_t I(const std::string& label) const { return script().Index(label); }

  Checker Check() const { return Checker{script(), http_.get(), ""}; }
  void ExpectState(double t, const std::string& extra, const std::function<bool(const Step&)>& keep = nullptr) {
    Check().ExpectState(t, extra, keep);
  }
  using Link = Checker::Link;
  void ExpectWhois(const std::string& ip, double t, const std::string& pod_version, const std::string& from,
                   const std::string& to, const std::vector<Link>& owners, const std::vector<std::string>& services) {
    Check().ExpectWhois(ip, t, pod_version, from, to, owners, services);
  }
  void ExpectNobody(const std::string& ip, double t, const std::string& before_from, const std::string& before_to,
                    const std::string& after_from) {
    Check().ExpectNobody(ip, t, before_from, before_to, after_from);
  }

  // History rows the script expects for `names` ((resource, ns, name)),
  // newest last; `verbs` empty: writes only.
  std::vector<const Step*> ExpectedHistory(const std::set<std::tuple<std::string, std::string, std::string>>& names,
                                           const std::set<std::string>& verbs = {}) const {
    std::vector<const Step*> rows;
    for (const auto& s : script().steps) {
      if (!names.count({s.resource, s.ns, s.KeyName()})) continue;
      if (verbs.empty() ? s.IsRead() : !verbs.count(s.verb)) continue;
      rows.push_back(&s);
    }
    std::sort(rows.begin(), rows.end(), [](const Step* a, const Step* b) {
      return std::make_pair(a->t, a->index) < std::make_pair(b->t, b->index);
    });
    return rows;
  }

  // One scenario server shared by the read-only tests of this suite.
  static inline std::unique_ptr<Scenario> scenario_;
  static inline std::string start_error_;
  std::unique_ptr<client::HttpClient> http_;
};

// The checks of state and pod-by-IP answers, run against one server as
// it is and against each cluster of a two-cluster server.

void StateChecks(Checker& ck) {
  for (double t : {-1.0, 0.0, 0.7, 2.5, 50.0, 105.0, 110.0, 120.0, 139.0, 142.0, 150.0, 205.0, 235.0, 255.0, 260.0,
                   310.0, 320.5, 330.0, 1000.0})
    ck.ExpectState(t, "");
  // Spot checks of the script itself, so a broken model cannot pass.
  auto at120 = ck.script.StateAt(120);
  EXPECT_EQ(at120.at(ck.S("p1.create").uid)->effect, "terminating");
  EXPECT_EQ(ck.script.StateAt(139).count(ck.S("p1.create").uid), 0u);
  EXPECT_EQ(ck.script.StateAt(310).at(ck.S("db0a.create").uid)->label, "db0a.run");
  EXPECT_EQ(ck.script.StateAt(320.5).count(ck.S("db0a.create").uid), 0u);
  EXPECT_EQ(ck.script.StateAt(1000).at(ck.S("jp.create").uid)->label, "jp.done");  // Completed, still there
}

void StateFilterChecks(Checker& ck) {
  ck.ExpectState(120, "&kind=pods&namespace=icx",
              [](const Step& s) { return s.resource == "pods" && s.object["metadata"]["namespace"] == "icx"; });
  ck.ExpectState(120, "&kind=po",  // short names work
              [](const Step& s) { return s.resource == "pods"; });
  ck.ExpectState(150, "&kind=ReplicaSet&namespace=icx", [](const Step& s) { return s.resource == "replicasets"; });
  ck.ExpectState(150, "&namespace=default", [](const Step& s) { return s.object["metadata"]["namespace"] == "default"; });
  ck.ExpectState(150, "&selector=app%3Dicx-db", [](const Step& s) {
    const json& l = s.object["metadata"].value("labels", json::object());
    return l.value("app", "") == "icx-db";
  });
  ck.ExpectState(150, "&selector=app%3Dicx-db,pod-template-hash%21%3D7d4b578979", [](const Step& s) {
    const json& l = s.object["metadata"].value("labels", json::object());
    return l.value("app", "") == "icx-db" && l.value("pod-template-hash", "") != "7d4b578979";
  });
  ck.ExpectState(150, "&kind=pods&namespace=no-such-namespace", [](const Step&) { return false; });
  ck.ExpectState(150, "&kind=widgets", [](const Step&) { return false; });
}

void WhoisChecks(Checker& ck) {
  const std::string dp_uid = ck.script.c.dp["metadata"]["uid"];
  const std::string rs1_uid = ck.script.c.rs1["metadata"]["uid"];
  const std::string rs2_uid = ck.script.c.rs2["metadata"]["uid"];
  // p1 while Service icx-db selects it.
  ck.ExpectWhois("10.244.1.2", 50, "p1.run", "p1.run", "p1.final",
              {{"ReplicaSet", "icx-db-7d4b578979", rs1_uid, "rs1.create"}, {"Deployment", "icx-db", dp_uid, "dp.create"}},
              {"svc.create"});
  // The Service's selector changed at t=60: the same pod, no longer selected.
  ck.ExpectWhois("10.244.1.2", 70, "p1.run", "p1.run", "p1.final",
              {{"ReplicaSet", "icx-db-7d4b578979", rs1_uid, "rs1.create"}, {"Deployment", "icx-db", dp_uid, "dp.create"}},
              {});
  // Terminating still holds its IP.
  ck.ExpectWhois("10.244.1.2", 120, "p1.delete", "p1.run", "p1.final",
              {{"ReplicaSet", "icx-db-7d4b578979", rs1_uid, "rs1.create"}, {"Deployment", "icx-db", dp_uid, "dp.patch"}},
              {});
  // After the rollout: the new ReplicaSet's pods, and p1's IP on p3.
  ck.ExpectWhois("10.244.1.7", 105, "p2.run", "p2.run", "",
              {{"ReplicaSet", "icx-db-5c8d7f9b6d", rs2_uid, "rs2.create"}, {"Deployment", "icx-db", dp_uid, "dp.patch"}},
              {});
  ck.ExpectWhois("10.244.1.2", 150, "p3.run", "p3.run", "",
              {{"ReplicaSet", "icx-db-5c8d7f9b6d", rs2_uid, "rs2.create"}, {"Deployment", "icx-db", dp_uid, "dp.patch"}},
              {});
  // Job -> CronJob; then the IP on nginx, selected by dictionary1.
  ck.ExpectWhois("10.244.2.5", 210, "jp.run", "jp.run", "jp.done",
              {{"Job", "hello-1567179180", ck.script.c.job["metadata"]["uid"], "job.create"},
               {"CronJob", "hello", ck.script.c.cj["metadata"]["uid"], "cj.create"}},
              {});
  ck.ExpectWhois("10.244.2.5", 250, "nginx.run", "nginx.run", "", {}, {"dict.create"});
  // Same name, new uid.
  ck.ExpectWhois("10.244.3.3", 310, "db0a.run", "db0a.run", "db0a.delete", {}, {});
  ck.ExpectWhois("10.244.3.9", 330, "db0b.run", "db0b.run", "", {}, {});
  // Dual stack: both families, any spelling of the IPv6 address.
  ck.ExpectWhois("10.244.4.4", 410, "dual.run", "dual.run", "", {}, {});
  ck.ExpectWhois("fd00:10:244:4::4", 410, "dual.run", "dual.run", "", {}, {});
  ck.ExpectWhois("fd00:10:244:4:0:0:0:4", 410, "dual.run", "dual.run", "", {}, {});
  ASSERT_OK_AND_ASSIGN(json v6, GetJson(ck.http, "/v1/pods/by-ip/FD00:10:244:4:0::4?at=" + Ts(410) + ck.query));
  EXPECT_EQ(v6["ip"], "fd00:10:244:4::4");
  ASSERT_OK_AND_ASSIGN(json v4, GetJson(ck.http, "/v1/pods/by-ip/10.244.1.2?at=" + Ts(50) + ck.query));
  EXPECT_EQ(v4["ip"], "10.244.1.2");
}

void NobodyChecks(Checker& ck) {
  // Between p1's final delete and p3 getting the IP.
  ck.ExpectNobody("10.244.1.2", 142, "p1.run", "p1.final", "p3.run");
  // Before anyone had it: only an after.
  ck.ExpectNobody("10.244.1.2", 2.5, "", "", "p1.run");
  // The Job pod completed at 230; nginx took the IP at 241.
  ck.ExpectNobody("10.244.2.5", 235, "jp.run", "jp.done", "nginx.run");
  // db-0's first uid lost its IP when deleted; the second has another.
  ck.ExpectNobody("10.244.3.3", 330, "db0a.run", "db0a.delete", "");
  // The node IP of a host-network pod is never a pod's.
  ck.ExpectNobody("172.18.0.4", 10, "", "", "");
  ck.ExpectNobody("10.9.9.9", 10, "", "", "");
  ASSERT_OK_AND_ASSIGN(auto bad, ck.http->Get("/v1/pods/by-ip/not-an-ip?at=" + Ts(10)));
  EXPECT_EQ(bad.status, 400) << bad.body;
  ASSERT_OK_AND_ASSIGN(auto bad_time, ck.http->Get("/v1/pods/by-ip/10.244.1.2?at=yesterday"));
  EXPECT_EQ(bad_time.status, 400) << bad_time.body;
}

// ---------------------------------------------------------------------------
// State at T.

TEST_F(Questions, StateAtSeveralTimesIsTheLastVersionOfEachObject) {
  Checker ck = Check();
  StateChecks(ck);
}

TEST_F(Questions, StateFiltersByKindNamespaceAndSelector) {
  Checker ck = Check();
  StateFilterChecks(ck);
}

// ---------------------------------------------------------------------------
// Pod by IP at T.

TEST_F(Questions, WhoisNamesPodOwnersServicesIntervalAndEvidence) {
  Checker ck = Check();
  WhoisChecks(ck);
}

TEST_F(Questions, WhoisWithoutAnIntervalIs404WithTheNearest) {
  Checker ck = Check();
  NobodyChecks(ck);
}

TEST_F(Questions, CliWhoisAndStateGiveTheServersAnswers) {
  const std::string url = scenario_->server().url();
  // An IPv6 address percent-encoded in the path (as client::UrlEncode and
  // so `annals whois` send it).
  ASSERT_OK_AND_ASSIGN(json enc, GetJson(http_.get(), "/v1/pods/by-ip/fd00%3A10%3A244%3A4%3A%3A4?at=" + Ts(410)));
  EXPECT_EQ(enc["pod"]["uid"], S("dual.run").uid);
  testutil::CommandResult v6 =
      testutil::RunAnnals({"whois", "fd00:10:244:4::4", "--at", Ts(410), "--url", url, "-o", "json"});
  ASSERT_EQ(v6.exit_code, 0) << v6.err;
  json w = json::parse(v6.out);
  EXPECT_EQ(w["pod"]["uid"], S("dual.run").uid);
  EXPECT_EQ(w["version_index"], I("dual.run"));
  // A table like the other questions' by default: the same answer.
  testutil::CommandResult t6 = testutil::RunAnnals({"whois", "fd00:10:244:4::4", "--at", Ts(410), "--url", url});
  ASSERT_EQ(t6.exit_code, 0) << t6.err;
  auto trows = ParseTable(t6.out);
  ASSERT_EQ(trows.size(), 1u) << t6.out;
  EXPECT_EQ(trows[0]["IP"], "fd00:10:244:4::4");
  EXPECT_EQ(trows[0]["POD"], w["pod"]["name"]);
  EXPECT_EQ(trows[0]["NAMESPACE"], w["pod"]["namespace"]);
  EXPECT_EQ(trows[0]["INDEX"], std::to_string(I("dual.run")));
  EXPECT_EQ(trows[0]["FROM"], w["interval"]["from"]);
  // Nobody: exit 3, the nearest on stderr.
  testutil::CommandResult none = testutil::RunAnnals({"whois", "10.244.1.2", "--at", Ts(142), "--url", url});
  EXPECT_EQ(none.exit_code, 3);
  EXPECT_NE(none.err.find("nearest"), std::string::npos) << none.err;
  EXPECT_NE(none.err.find(S("p3.run").uid), std::string::npos) << none.err;
  // State as a table: one row per object, newest version's index.
  testutil::CommandResult st =
      testutil::RunAnnals({"state", "--at", Ts(120), "--kind", "pods", "-n", "icx", "--url", url});
  ASSERT_EQ(st.exit_code, 0) << st.err;
  auto rows = ParseTable(st.out);
  std::map<std::string, std::string> got;  // name -> STATE INDEX
  for (auto& r : rows) got[r["NAME"]] = r["STATE"] + " " + r["INDEX"];
  std::map<std::string, std::string> want;
  for (const auto& [uid, s] : script().StateAt(120))
    if (s->resource == "pods" && s->object["metadata"]["namespace"] == "icx")
      want[s->object["metadata"]["name"]] = s->effect + " " + std::to_string(s->index);
  EXPECT_EQ(got, want);
  EXPECT_EQ(want.size(), 2u);  // p1 terminating, p2 present
}

// ---------------------------------------------------------------------------
// Flow enrichment.

std::vector<std::string> HubbleLines(const std::string& file) {
  std::ifstream in(testutil::CorpusDir() + "/flows/hubble/" + file);
  std::vector<std::string> out;
  for (std::string l; std::getline(in, l);)
    if (!l.empty()) out.push_back(l);
  return out;
}

TEST_F(Questions, EnrichedFlowsNameTheWorkloadsAtTheFlowsTime) {
  std::vector<std::string> real = HubbleLines("basic-sample-10-flows.jsonl");
  ASSERT_GE(real.size(), 8u);
  struct Case {
    double t;
    std::string src, dst;
    std::string src_pod, dst_pod;  // version labels ("" = null workload)
    std::vector<std::string> src_services, dst_services;
    std::string src_owner, dst_owner;  // top owner kind/name ("" = null)
  };
  const std::vector<Case> cases = {
      {50, "10.244.1.2", "10.244.2.5", "p1.run", "", {"icx-db"}, {}, "Deployment/icx-db", ""},
      {105, "10.244.1.2", "10.244.1.7", "p1.run", "p2.run", {}, {}, "Deployment/icx-db", "Deployment/icx-db"},
      {150, "10.244.1.7", "10.244.1.2", "p2.run", "p3.run", {}, {}, "Deployment/icx-db", "Deployment/icx-db"},
      {210, "10.244.2.5", "10.9.9.9", "jp.run", "", {}, {}, "CronJob/hello", ""},
      {235, "10.244.2.5", "172.18.0.4", "", "", {}, {}, "", ""},
      {250, "10.244.1.7", "10.244.2.5", "p2.run", "nginx.run", {}, {"dictionary1"}, "Deployment/icx-db", ""},
      {410, "fd00:10:244:4::4", "10.244.3.9", "dual.run", "db0b.run", {}, {}, "", ""},
      {310, "10.244.3.3", "10.244.4.4", "db0a.run", "", {}, {}, "", ""},
  };
  std::string body;
  std::vector<std::string> in_lines;
  for (size_t k = 0; k < cases.size(); ++k) {
    json f = json::parse(real[k]);
    f["flow"]["time"] = Ts(cases[k].t);
    f["time"] = Ts(cases[k].t);
    f["flow"]["IP"]["source"] = cases[k].src;
    f["flow"]["IP"]["destination"] = cases[k].dst;
    in_lines.push_back(f.dump());
    body += in_lines.back() + "\n";
  }
  // The flat form.
  json flat = {{"time", Ts(105)}, {"src_ip", "10.244.1.7"}, {"dst_ip", "10.244.1.2"}, {"bytes", 1460}};
  in_lines.push_back(flat.dump());
  body += in_lines.back() + "\n";

  ASSERT_OK_AND_ASSIGN(auto r, http_->Post("/v1/enrich/flows", body, "application/x-ndjson"));
  ASSERT_EQ(r.status, 200) << r.body;
  std::vector<std::string> out;
  std::stringstream ss(r.body);
  for (std::string l; std::getline(ss, l);) out.push_back(l);
  ASSERT_EQ(out.size(), in_lines.size());

  auto check = [&](const json& w, const std::string& version, const std::vector<std::string>& services,
                   const std::string& owner) {
    if (version.empty()) {
      EXPECT_TRUE(w.is_null()) << w.dump();
      return;
    }
    ASSERT_TRUE(w.is_object()) << "want " << version;
    const Step& v = S(version);
    EXPECT_EQ(w["namespace"], v.object["metadata"]["namespace"]);
    EXPECT_EQ(w["pod"], v.object["metadata"]["name"]);
    EXPECT_EQ(w["uid"], v.object["metadata"]["uid"]);
    EXPECT_EQ(w["labels"], v.object["metadata"].value("labels", json::object()));
    EXPECT_EQ(w["service_account"], v.object["spec"]["serviceAccountName"]);
    EXPECT_EQ(w["index"], v.index);
    EXPECT_EQ(w["services"], json(services));
    if (owner.empty()) {
      EXPECT_TRUE(w["owner"].is_null()) << w["owner"].dump();
    } else {
      EXPECT_EQ(w["owner"]["kind"].get<std::string>() + "/" + w["owner"]["name"].get<std::string>(), owner);
    }
  };
  for (size_t k = 0; k < out.size(); ++k) {
    SCOPED_TRACE("flow line " + std::to_string(k));
    // The original bytes are kept; the two members are appended.
    const std::string& in = in_lines[k];
    ASSERT_GT(out[k].size(), in.size());
    EXPECT_EQ(out[k].substr(0, in.size() - 1), in.substr(0, in.size() - 1));
    json o = json::parse(out[k]);
    json back = o;
    back.erase("src_workload");
    back.erase("dst_workload");
    EXPECT_EQ(back, json::parse(in));
    if (k < cases.size()) {
      check(o["src_workload"], cases[k].src_pod, cases[k].src_services, cases[k].src_owner);
      check(o["dst_workload"], cases[k].dst_pod, cases[k].dst_services, cases[k].dst_owner);
    } else {
      check(o["src_workload"], "p2.run", {}, "Deployment/icx-db");
      check(o["dst_workload"], "p1.run", {}, "Deployment/icx-db");
    }
  }
  ASSERT_OK_AND_ASSIGN(auto bad, http_->Post("/v1/enrich/flows", "{\"flow\":{}}\n", "application/x-ndjson"));
  EXPECT_EQ(bad.status, 400);
}

// ---------------------------------------------------------------------------
// History, through the real kubectl and the plugin.

TEST_F(Questions, KubectlAuditShowsTheDeploymentAndWhatItOwnsNewestLast) {
  const std::set<std::tuple<std::string, std::string, std::string>> names = {
      {"deployments", "icx", "icx-db"},
      {"replicasets", "icx", "icx-db-7d4b578979"},
      {"replicasets", "icx", "icx-db-5c8d7f9b6d"},
      {"pods", "icx", script().c.p1["metadata"]["name"]},
      {"pods", "icx", script().c.p2["metadata"]["name"]},
      {"pods", "icx", script().c.p3["metadata"]["name"]},
      {"configmaps", "icx", "icx-db-config"},  // app.kubernetes.io/instance=icx-db
  };
  const std::vector<const Step*> want = ExpectedHistory(names);
  ASSERT_EQ(want.size(), 14u);  // the model itself: 14 writes, the Service not among them
  const std::string plugin = KUBECTL_AUDIT_BINARY;
  TempDir tmp;
  std::vector<std::vector<std::string>> runs;
  runs.push_back({plugin, "deployment/icx-db", "-n", "icx", "--children", "--server", scenario_->server().url()});
  // scripts/deps.sh installs kubectl: a machine without it fails here
  // rather than skipping the plugin's real path.
  ASSERT_EQ(::access("/usr/bin/kubectl", X_OK), 0) << "/usr/bin/kubectl not installed (make deps installs it)";
  runs.push_back({"/usr/bin/kubectl", "audit", "deployment/icx-db", "-n", "icx", "--children", "--server",
                    scenario_->server().url()});
  for (const auto& argv : runs) {
    SCOPED_TRACE(argv[0]);
    RunResult r = RunProgram(argv, Dirname(plugin), tmp);
    ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
    auto rows = ParseTable(r.out);
    ASSERT_EQ(rows.size(), want.size()) << r.out;
    for (size_t k = 0; k < rows.size(); ++k) {
      SCOPED_TRACE("row " + std::to_string(k) + ": " + want[k]->label);
      const Step& s = *want[k];
      EXPECT_EQ(rows[k]["INDEX"], std::to_string(s.index));
      EXPECT_EQ(rows[k]["TIME"], Ts(s.t));
      EXPECT_EQ(rows[k]["VERB"], s.verb);
      EXPECT_EQ(rows[k]["RESOURCE"], s.resource + (s.subresource.empty() ? "" : "/" + s.subresource));
      EXPECT_EQ(rows[k]["NAME"], s.KeyName());  // the real name, also for generateName creates
      EXPECT_EQ(rows[k]["USER"], s.user + (s.impersonated.empty() ? "" : " (as " + s.impersonated + ")"));
      EXPECT_EQ(rows[k]["SOURCE"], "172.18.0.3");
      EXPECT_EQ(rows[k]["CODE"], std::to_string(s.code));
    }
  }

  // -o json through kubectl: the same rows, with what changed.
  RunResult r = RunProgram({"/usr/bin/kubectl", "audit", "deployment/icx-db", "-n", "icx", "--children", "-o",
                            "json", "--server", scenario_->server().url()},
                           Dirname(plugin), tmp);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json j = json::parse(r.out);
  ASSERT_EQ(j["events"].size(), want.size());
  EXPECT_EQ(j["count"], want.size());
  for (size_t k = 0; k < want.size(); ++k) {
    const Step& s = *want[k];
    const json& e = j["events"][k];
    SCOPED_TRACE(s.label);
    EXPECT_EQ(e["index"], s.index);
    EXPECT_EQ(e["uid"], s.uid);
    EXPECT_EQ(e["user"]["username"], s.user);
    EXPECT_EQ(e["user"]["uid"], "uid-of-" + s.user);
    if (s.impersonated.empty()) {
      EXPECT_TRUE(e["impersonated_user"].is_null()) << e["impersonated_user"].dump();
    } else {
      EXPECT_EQ(e["impersonated_user"]["username"], s.impersonated);
    }
    EXPECT_EQ(e["user_agent"], "kubectl/v1.29.2 (linux/amd64) kubernetes/4b8e819");
    EXPECT_EQ(e["name"], s.KeyName());
    if (s.verb == "create") {
      EXPECT_EQ(e["changes"], json::parse(R"([{"op":"add","path":"/"}])"));
    } else {
      ASSERT_TRUE(e.contains("changes")) << e.dump();
      for (const auto& op : e["changes"]) {
        EXPECT_FALSE(op["path"].get<std::string>().starts_with("/metadata/resourceVersion")) << op.dump();
      }
    }
  }
  auto changes_of = [&](const std::string& label) {
    for (const auto& e : j["events"])
      if (e["index"] == I(label)) return e["changes"];
    return json();
  };
  // The rollout's patch: the image and the revision annotation.
  json dp_changes = changes_of("dp.patch");
  std::set<std::string> paths;
  for (const auto& op : dp_changes) paths.insert(op["path"]);
  EXPECT_TRUE(paths.count("/spec/template/spec/containers/0/image")) << dp_changes.dump();
  EXPECT_TRUE(paths.count("/metadata/annotations/deployment.kubernetes.io~1revision")) << dp_changes.dump();
  json run_changes = changes_of("p1.run");
  std::set<std::string> run_paths;
  for (const auto& op : run_changes) run_paths.insert(op["path"]);
  EXPECT_TRUE(run_paths.count("/status/podIP")) << run_changes.dump();
  EXPECT_TRUE(run_paths.count("/status/phase")) << run_changes.dump();
}

TEST_F(Questions, HistoryHasReadsOnlyWhenAskedForThem) {
  const std::string plugin = KUBECTL_AUDIT_BINARY;
  TempDir tmp;
  const std::string kubectl = ::access("/usr/bin/kubectl", X_OK) == 0 ? "/usr/bin/kubectl" : "";
  std::vector<std::string> argv = {"deployment/icx-db", "-n", "icx", "--children", "--verbs", "get,list",
                                   "-o", "json", "--server", scenario_->server().url()};
  argv.insert(argv.begin(), kubectl.empty() ? plugin : "audit");
  if (!kubectl.empty()) argv.insert(argv.begin(), kubectl);
  RunResult r = RunProgram(argv, Dirname(plugin), tmp);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json j = json::parse(r.out);
  // The kubelet's get of p1 and alice's get of the Deployment; the list of
  // pods names no object.
  std::vector<uint64_t> got;
  for (const auto& e : j["events"]) got.push_back(e["index"]);
  EXPECT_EQ(got, (std::vector<uint64_t>{I("p1.get"), I("dp.get")}));
  // Without verbs: no reads.
  ASSERT_OK_AND_ASSIGN(json w, GetJson(http_.get(), "/v1/history?kind=deployment&namespace=icx&name=icx-db"));
  std::vector<uint64_t> writes;
  for (const auto& e : w["events"]) writes.push_back(e["index"]);
  EXPECT_EQ(writes, (std::vector<uint64_t>{I("dp.create"), I("dp.patch")}));
  ASSERT_OK_AND_ASSIGN(json all, GetJson(http_.get(), "/v1/history?kind=deployment&namespace=icx&name=icx-db"
                                                      "&verbs=create,patch,get"));
  std::vector<uint64_t> all_idx;
  for (const auto& e : all["events"]) all_idx.push_back(e["index"]);
  EXPECT_EQ(all_idx, (std::vector<uint64_t>{I("dp.create"), I("dp.get"), I("dp.patch")}));
  // since/until bound by event time.
  ASSERT_OK_AND_ASSIGN(json win, GetJson(http_.get(), "/v1/history?kind=pods&namespace=icx&name=" +
                                                          script().c.p1["metadata"]["name"].get<std::string>() +
                                                          "&since=" + Ts(100) + "&until=" + Ts(120)));
  ASSERT_EQ(win["events"].size(), 1u);
  EXPECT_EQ(win["events"][0]["index"], I("p1.delete"));
  // Unknown object: 404 from the server, exit 1 and the message from the plugin.
  ASSERT_OK_AND_ASSIGN(auto nf, http_->Get("/v1/history?kind=deployment&namespace=icx&name=nope"));
  EXPECT_EQ(nf.status, 404);
  RunResult missing = RunProgram({plugin, "deployment/nope", "-n", "icx", "--server", scenario_->server().url()},
                                 Dirname(plugin), tmp);
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("nope"), std::string::npos) << missing.err;
}

TEST_F(Questions, HistoryOfARecreatedPodTellsTheUidsApart) {
  ASSERT_OK_AND_ASSIGN(json j, GetJson(http_.get(), "/v1/history?kind=pod&namespace=default&name=db-0"));
  const std::vector<std::string> labels = {"db0a.create", "db0a.run", "db0a.delete", "db0b.create", "db0b.run"};
  ASSERT_EQ(j["events"].size(), labels.size()) << j.dump();
  // Newest last by event time, although db0a.run was stored after db0a.delete.
  ASSERT_GT(I("db0a.run"), I("db0a.delete"));
  for (size_t k = 0; k < labels.size(); ++k) {
    const json& e = j["events"][k];
    EXPECT_EQ(e["index"], I(labels[k])) << labels[k];
    EXPECT_EQ(e["uid"], S(labels[k]).uid) << labels[k];
  }
  EXPECT_EQ(j["events"][0]["changes"], json::parse(R"([{"op":"add","path":"/"}])"));
  EXPECT_EQ(j["events"][3]["changes"], json::parse(R"([{"op":"add","path":"/"}])"));
  EXPECT_EQ(j["events"][1]["previous_index"], I("db0a.create"));
  EXPECT_EQ(j["events"][2]["previous_index"], I("db0a.run"));
  EXPECT_EQ(j["events"][4]["previous_index"], I("db0b.create"));
  // The Status-answered delete of the ConfigMap.
  ASSERT_OK_AND_ASSIGN(json cm, GetJson(http_.get(), "/v1/history?kind=cm&namespace=default&name=settings"));
  ASSERT_EQ(cm["events"].size(), 2u);
  EXPECT_EQ(cm["events"][1]["index"], I("settings.delete"));
  EXPECT_EQ(cm["events"][1]["verb"], "delete");
}

// ---------------------------------------------------------------------------
// Receipts.

StatusOr<std::string> VerifierKeyOf(const std::string& data_dir) {
  testutil::CommandResult r = testutil::RunAnnals({"key", "show", "--data", data_dir});
  if (r.exit_code != 0) return InternalError("annals key show: " + r.err);
  std::string k = r.out;
  while (!k.empty() && (k.back() == '\n' || k.back() == '\r')) k.pop_back();
  return k;
}

// Checks a receipt covers every index in `indexes` with a proof that
// verifies against its signed checkpoint, and that each leaf is the entry
// the log serves at that index.
void ExpectReceiptVerifies(client::HttpClient* http, const json& receipt, const std::set<uint64_t>& indexes,
                           const note::Verifier& verifier) {
  ASSERT_TRUE(receipt.is_object()) << receipt.dump();
  ASSERT_OK_AND_ASSIGN(note::Note n, note::OpenNote(receipt["checkpoint"].get<std::string>(), verifier));
  ASSERT_OK_AND_ASSIGN(checkpoint::Checkpoint cp, checkpoint::Parse(n.text));
  EXPECT_EQ(receipt["tree_size"], cp.size);
  ASSERT_EQ(receipt["inclusion_proofs"].size(), indexes.size()) << receipt["inclusion_proofs"].dump();
  for (uint64_t i : indexes) {
    SCOPED_TRACE("index " + std::to_string(i));
    ASSERT_LT(i, cp.size);
    const json& p = receipt["inclusion_proofs"][std::to_string(i)];
    ASSERT_TRUE(p.is_object());
    auto leaf_bytes = Base64Decode(p["leaf_hash"].get<std::string>());
    ASSERT_TRUE(leaf_bytes.has_value());
    ASSERT_EQ(leaf_bytes->size(), 32u);
    Hash leaf;
    std::copy(leaf_bytes->begin(), leaf_bytes->end(), leaf.begin());
    std::vector<Hash> proof;
    for (const auto& h : p["hashes"]) {
      auto b = Base64Decode(h.get<std::string>());
      ASSERT_TRUE(b.has_value() && b->size() == 32);
      Hash x;
      std::copy(b->begin(), b->end(), x.begin());
      proof.push_back(x);
    }
    EXPECT_OK(merkle::VerifyInclusion(i, cp.size, leaf, proof, cp.root));
    // A proof for another leaf must not verify: the check can fail.
    Hash wrong = leaf;
    wrong[0] ^= 1;
    EXPECT_FALSE(merkle::VerifyInclusion(i, cp.size, wrong, proof, cp.root).ok());
    // The leaf is the entry the log serves.
    ASSERT_OK_AND_ASSIGN(json e, GetJson(http, "/v1/entries/" + std::to_string(i)));
    auto raw = Base64Decode(e["entry"].get<std::string>());
    ASSERT_TRUE(raw.has_value());
    EXPECT_EQ(merkle::HashLeaf(*raw), leaf);
  }
}

TEST_F(Questions, ProofsInStateAndWhoisVerifyAgainstTheSignedCheckpoint) {
  ASSERT_OK_AND_ASSIGN(std::string vkey, VerifierKeyOf(scenario_->server().options().data_dir));
  EXPECT_EQ(vkey, scenario_->server().verifier_key());
  ASSERT_OK_AND_ASSIGN(auto verifier, note::Verifier::FromVerifierKey(vkey));
  ASSERT_OK(testutil::WaitForCheckpoint(http_.get(), *verifier, script().steps.size(), std::chrono::seconds(20))
                .status());

  ASSERT_OK_AND_ASSIGN(json st, GetJson(http_.get(), "/v1/state?at=" + Ts(150) + "&proof=true"));
  std::set<uint64_t> idx;
  for (const auto& o : st["objects"]) idx.insert(o["index"].get<uint64_t>());
  EXPECT_EQ(idx.size(), script().StateAt(150).size());
  ExpectReceiptVerifies(http_.get(), st["receipt"], idx, *verifier);
  // Each object's body is the responseObject of the entry it names.
  for (const auto& o : st["objects"]) {
    ASSERT_OK_AND_ASSIGN(json e, GetJson(http_.get(), "/v1/entries/" + std::to_string(o["index"].get<uint64_t>())));
    EXPECT_EQ(e["event"]["responseObject"], o["object"]);
  }

  ASSERT_OK_AND_ASSIGN(json w, GetJson(http_.get(), "/v1/pods/by-ip/10.244.1.2?at=" + Ts(50) + "&proof=true"));
  std::set<uint64_t> ev;
  for (const auto& i : w["evidence"]) ev.insert(i.get<uint64_t>());
  EXPECT_EQ(ev, (std::set<uint64_t>{I("p1.run"), I("rs1.create"), I("dp.create"), I("svc.create")}));
  ExpectReceiptVerifies(http_.get(), w["receipt"], ev, *verifier);

  ASSERT_OK_AND_ASSIGN(json h, GetJson(http_.get(), "/v1/history?kind=pod&namespace=default&name=db-0&proof=true"));
  std::set<uint64_t> hv;
  for (const auto& e : h["events"]) hv.insert(e["index"].get<uint64_t>());
  ExpectReceiptVerifies(http_.get(), h["receipt"], hv, *verifier);
}

// ---------------------------------------------------------------------------
// Rebuild: the same answers, byte for byte.

// The derived data of a stopped server's directory, as stored.
// ---------------------------------------------------------------------------
// Two clusters: the whole script posted by two API servers, each through a
// token bound to its cluster (the same events: the same uids, names and
// addresses). Every question asked of one cluster answers as the script
// does for that cluster alone, with that cluster's ledger indexes; asked of
// none, answers hold both, each labelled.

TEST(QuestionsClusters, EachClustersAnswersAreTheScriptsAndNeverTheOthers) {
  const std::vector<std::string> clusters = {"prod-a", "prod-b"};
  Scenario sc(clusters);
  ASSERT_OK(sc.Start());
  ASSERT_NE(sc.script(0).Index("p1.run"), sc.script(1).Index("p1.run"));
  ASSERT_OK_AND_ASSIGN(json known, GetJson(sc.http(), "/v1/clusters"));
  EXPECT_EQ(known["clusters"], json(clusters));
  EXPECT_EQ(known["unnamed"], false);
  auto every_question = [&](Checker& ck) {
    StateChecks(ck);
    StateFilterChecks(ck);
    WhoisChecks(ck);
    NobodyChecks(ck);
  };
  for (size_t k = 0; k < clusters.size(); ++k) {
    SCOPED_TRACE(clusters[k]);
    Checker ck{sc.script(k), sc.http(), "&cluster=" + clusters[k]};
    every_question(ck);
    // History of the Deployment and what it owns: this cluster's events.
    ASSERT_OK_AND_ASSIGN(json h, GetJson(sc.http(), "/v1/history?kind=deployment&namespace=icx&name=icx-db"
                                                    "&children=true&cluster=" + clusters[k]));
    std::vector<uint64_t> got, want;
    for (const auto& e : h["events"]) {
      got.push_back(e["index"]);
      EXPECT_EQ(e["cluster"], clusters[k]);
    }
    const Cast& c = sc.script(k).c;
    const std::set<std::tuple<std::string, std::string, std::string>> names = {
        {"deployments", "icx", "icx-db"},
        {"replicasets", "icx", "icx-db-7d4b578979"},
        {"replicasets", "icx", "icx-db-5c8d7f9b6d"},
        {"pods", "icx", c.p1["metadata"]["name"]},
        {"pods", "icx", c.p2["metadata"]["name"]},
        {"pods", "icx", c.p3["metadata"]["name"]},
        {"configmaps", "icx", "icx-db-config"},
    };
    for (const auto& st : sc.script(k).steps)
      if (!st.IsRead() && names.count({st.resource, st.ns, st.KeyName()})) want.push_back(st.index);
    ASSERT_EQ(want.size(), 14u);
    std::vector<uint64_t> sorted_got = got;
    std::sort(sorted_got.begin(), sorted_got.end());
    EXPECT_EQ(sorted_got, want);
    // The recreated pod: the previous version is this cluster's.
    ASSERT_OK_AND_ASSIGN(json db0, GetJson(sc.http(), "/v1/history?kind=pod&namespace=default&name=db-0&cluster=" +
                                                          clusters[k]));
    ASSERT_EQ(db0["events"].size(), 5u) << db0.dump();
    EXPECT_EQ(db0["events"][1]["previous_index"], ck.I("db0a.create"));
    EXPECT_EQ(db0["events"][4]["previous_index"], ck.I("db0b.create"));
  }
  // Asked of no cluster: both clusters' pods held 10.244.1.2 at t=50.
  ASSERT_OK_AND_ASSIGN(json both, GetJson(sc.http(), "/v1/pods/by-ip/10.244.1.2?at=" + Ts(50)));
  EXPECT_EQ(both["cluster"], "prod-a");
  EXPECT_EQ(both["version_index"], sc.script(0).Index("p1.run"));
  ASSERT_EQ(both["other_clusters"].size(), 1u) << both.dump();
  EXPECT_EQ(both["other_clusters"][0]["cluster"], "prod-b");
  EXPECT_EQ(both["other_clusters"][0]["version_index"], sc.script(1).Index("p1.run"));
  EXPECT_EQ(both["other_clusters"][0]["owners"][0]["index"], sc.script(1).Index("rs1.create"));
  for (size_t k = 0; k < 2; ++k)
    for (const char* label : {"p1.run", "rs1.create", "dp.create", "svc.create"})
      EXPECT_NE(std::find(both["evidence"].begin(), both["evidence"].end(), json(sc.script(k).Index(label))),
                both["evidence"].end())
          << label;
  ASSERT_OK_AND_ASSIGN(json all, GetJson(sc.http(), "/v1/state?at=" + Ts(150)));
  EXPECT_EQ(all["count"], 2 * sc.script(0).StateAt(150).size());
  std::map<std::string, size_t> per_cluster;
  for (const auto& o : all["objects"]) ++per_cluster[o.value("cluster", "")];
  EXPECT_EQ(per_cluster, (std::map<std::string, size_t>{{"prod-a", sc.script(0).StateAt(150).size()},
                                                         {"prod-b", sc.script(1).StateAt(150).size()}}));
  // Paging through both clusters' objects with a limit gives each once.
  std::set<std::pair<std::string, std::string>> paged;
  std::string cursor;
  for (int pages = 0; pages < 100; ++pages) {
    ASSERT_OK_AND_ASSIGN(json page, GetJson(sc.http(), "/v1/state?bodies=false&limit=3&at=" + Ts(150) +
                                                           (cursor.empty() ? "" : "&cursor=" + cursor)));
    for (const auto& o : page["objects"]) EXPECT_TRUE(paged.insert(std::make_pair(o["cluster"].get<std::string>(), o["uid"].get<std::string>())).second) << o.dump();
    if (!page.contains("next_cursor")) break;
    cursor = page["next_cursor"];
  }
  EXPECT_EQ(paged.size(), all["count"].get<size_t>());
  // An unknown cluster has nothing.
  ASSERT_OK_AND_ASSIGN(json none, GetJson(sc.http(), "/v1/state?at=" + Ts(150) + "&cluster=prod-c"));
  EXPECT_EQ(none["count"], 0);
  ASSERT_OK_AND_ASSIGN(auto nf, sc.http()->Get("/v1/history?kind=deployment&namespace=icx&name=icx-db&cluster=prod-c"));
  EXPECT_EQ(nf.status, 404) << nf.body;
  ASSERT_OK_AND_ASSIGN(json nobody, GetJson(sc.http(), "/v1/pods/by-ip/10.244.1.2?at=" + Ts(50) + "&cluster=prod-c", 404));
  EXPECT_TRUE(nobody["nearest"]["before"].is_null() && nobody["nearest"]["after"].is_null()) << nobody.dump();

  // Flow enrichment: cluster= names that cluster's pods; without it the
  // workload says whose it is.
  const std::string flow = json{{"time", Ts(105)}, {"src_ip", "10.244.1.7"}, {"dst_ip", "10.244.1.2"}}.dump() + "\n";
  for (size_t k = 0; k < clusters.size(); ++k) {
    ASSERT_OK_AND_ASSIGN(auto r, sc.http()->Post("/v1/enrich/flows?cluster=" + clusters[k], flow, "application/x-ndjson"));
    ASSERT_EQ(r.status, 200) << r.body;
    const json f = json::parse(r.body);
    EXPECT_EQ(f["src_workload"]["cluster"], clusters[k]) << r.body;
    EXPECT_EQ(f["src_workload"]["index"], sc.script(k).Index("p2.run")) << r.body;
    EXPECT_EQ(f["dst_workload"]["cluster"], clusters[k]) << r.body;
    EXPECT_EQ(f["dst_workload"]["index"], sc.script(k).Index("p1.run")) << r.body;
    EXPECT_EQ(f["src_workload"]["owner"]["index"], sc.script(k).Index("dp.patch")) << r.body;
  }
  ASSERT_OK_AND_ASSIGN(auto any, sc.http()->Post("/v1/enrich/flows", flow, "application/x-ndjson"));
  ASSERT_EQ(any.status, 200) << any.body;
  const std::string any_cluster = json::parse(any.body)["src_workload"].value("cluster", "");
  EXPECT_TRUE(any_cluster == "prod-a" || any_cluster == "prod-b") << any.body;
  ASSERT_OK_AND_ASSIGN(auto unknown, sc.http()->Post("/v1/enrich/flows?cluster=prod-c", flow, "application/x-ndjson"));
  EXPECT_TRUE(json::parse(unknown.body)["src_workload"].is_null()) << unknown.body;

  // The CLI: --cluster asks one cluster; without it, a row per cluster.
  const std::vector<std::string> cli_auth = {"--url", sc.server().url(), "--token", Scenario::kReaderToken};
  auto annals = [&](std::vector<std::string> argv) {
    argv.insert(argv.end(), cli_auth.begin(), cli_auth.end());
    return testutil::RunAnnals(argv);
  };
  testutil::CommandResult wb = annals({"whois", "10.244.1.2", "--at", Ts(50), "--cluster", "prod-b", "-o", "json"});
  ASSERT_EQ(wb.exit_code, 0) << wb.err;
  EXPECT_EQ(json::parse(wb.out)["version_index"], sc.script(1).Index("p1.run"));
  testutil::CommandResult wt = annals({"whois", "10.244.1.2", "--at", Ts(50)});
  ASSERT_EQ(wt.exit_code, 0) << wt.err;
  auto wrows = ParseTable(wt.out);
  ASSERT_EQ(wrows.size(), 2u) << wt.out;
  for (size_t k = 0; k < 2; ++k) {
    EXPECT_EQ(wrows[k]["CLUSTER"], clusters[k]);
    EXPECT_EQ(wrows[k]["INDEX"], std::to_string(sc.script(k).Index("p1.run")));
  }
  testutil::CommandResult st = annals({"state", "--at", Ts(120), "--kind", "pods", "-n", "icx", "--cluster", "prod-a"});
  ASSERT_EQ(st.exit_code, 0) << st.err;
  auto srows = ParseTable(st.out);
  ASSERT_EQ(srows.size(), 2u) << st.out;  // p1 terminating, p2 present
  for (auto& row : srows) {
    EXPECT_EQ(row["CLUSTER"], "prod-a");
    EXPECT_TRUE(row["INDEX"] == std::to_string(sc.script(0).Index("p1.delete")) ||
                row["INDEX"] == std::to_string(sc.script(0).Index("p2.run")))
        << st.out;
  }

  // kubectl audit takes the kubeconfig's cluster: prod-b's rows alone.
  const std::string plugin = KUBECTL_AUDIT_BINARY;
  TempDir tmp;
  ASSERT_OK(MakeDirs(tmp.Sub(".kube")));
  std::ofstream(tmp.Sub(".kube/config")) << "apiVersion: v1\nkind: Config\ncurrent-context: b\n"
                                            "clusters:\n- name: prod-b\n  cluster:\n    server: https://127.0.0.1:6443\n"
                                            "users:\n- name: admin\n  user:\n    token: not-annals\n"
                                            "contexts:\n- name: b\n  context:\n    cluster: prod-b\n    user: admin\n";
  RunResult r = RunProgram({"/usr/bin/kubectl", "audit", "deployment/icx-db", "-n", "icx", "--children", "-o", "json",
                            "--server", sc.server().url(), "--token", Scenario::kReaderToken},
                           Dirname(plugin), tmp);
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  json via_kubectl = json::parse(r.out);
  ASSERT_FALSE(via_kubectl["events"].empty());
  EXPECT_EQ(via_kubectl["cluster"], "prod-b");
  for (const auto& e : via_kubectl["events"]) EXPECT_EQ(e["cluster"], "prod-b");
  // --all-clusters: both, and the table names each row's cluster.
  RunResult table = RunProgram({plugin, "deployment/icx-db", "-n", "icx", "--all-clusters", "--server",
                                sc.server().url(), "--token", Scenario::kReaderToken},
                               Dirname(plugin), tmp);
  ASSERT_EQ(table.exit_code, 0) << table.err;
  auto rows = ParseTable(table.out);
  ASSERT_EQ(rows.size(), 4u) << table.out;  // dp.create and dp.patch, from each cluster
  std::map<std::string, size_t> row_clusters;
  for (auto& row : rows) ++row_clusters[row["CLUSTER"]];
  EXPECT_EQ(row_clusters, (std::map<std::string, size_t>{{"prod-a", 2}, {"prod-b", 2}}));

  // After a restart (the projection from its snapshot): the same answers.
  ASSERT_OK(sc.server().Restart());
  ASSERT_OK(sc.Reconnect());
  ASSERT_OK(WaitApplied(sc.http(), 2 * sc.script(0).steps.size()));
  for (size_t k = 0; k < clusters.size(); ++k) {
    SCOPED_TRACE(clusters[k] + " after a restart");
    Checker ck{sc.script(k), sc.http(), "&cluster=" + clusters[k]};
    WhoisChecks(ck);
  }
}

struct Derived {
  std::vector<std::pair<std::string, std::string>> dedup, events;
  std::string snapshot;
};
Derived ReadDerived(const std::string& data) {
  Derived d;
  auto dedup = index::DedupIndex::Open(data + "/index/dedup");
  EXPECT_TRUE(dedup.ok()) << dedup.status().ToString();
  if (dedup.ok())
    EXPECT_OK((*dedup)->ForEach([&d](std::string_view k, std::string_view v) { d.dedup.emplace_back(k, v); }));
  auto events = index::EventIndex::Open(data + "/index/events");
  EXPECT_TRUE(events.ok()) << events.status().ToString();
  if (events.ok())
    EXPECT_OK((*events)->ForEach([&d](std::string_view k, std::string_view v) { d.events.emplace_back(k, v); }));
  auto snap = ReadFileToString(data + "/index/state/projection.snap");
  EXPECT_TRUE(snap.ok()) << snap.status().ToString();
  if (snap.ok()) d.snapshot = std::move(*snap);
  return d;
}

TEST(QuestionsRebuild, AnswersAreByteIdenticalAfterRebuildAndRestart) {
  Scenario sc;
  ASSERT_OK(sc.Start());
  const std::vector<std::string> queries = {
      "/v1/state?at=" + Ts(50),
      "/v1/state?at=" + Ts(120),
      "/v1/state?at=" + Ts(330) + "&namespace=default",
      "/v1/state?at=" + Ts(1000) + "&kind=pods&selector=app%3Dicx-db",
      "/v1/pods/by-ip/10.244.1.2?at=" + Ts(50),
      "/v1/pods/by-ip/10.244.1.2?at=" + Ts(142),
      "/v1/pods/by-ip/10.244.2.5?at=" + Ts(210),
      "/v1/pods/by-ip/fd00:10:244:4::4?at=" + Ts(410),
      "/v1/history?kind=deployment&namespace=icx&name=icx-db&children=true",
      "/v1/history?kind=pod&namespace=default&name=db-0&verbs=create,patch,delete,get",
      "/v1/events?group_by=verb",
      "/v1/events?group_by=user",
      "/v1/events?limit=7",
      "/v1/events?namespace=icx&format=jsonl",
  };
  auto answers = [&](std::vector<std::string>* out) {
    for (const auto& q : queries) {
      auto r = sc.http()->Get(q);
      ASSERT_TRUE(r.ok()) << q;
      EXPECT_TRUE(r->status == 200 || r->status == 404) << q << ": " << r->body;
      out->push_back(std::to_string(r->status) + " " + r->body);
    }
  };
  std::vector<std::string> before;
  answers(&before);
  ASSERT_EQ(before.size(), queries.size());
  ASSERT_OK(sc.server().Stop());

  // A plain restart loads the state snapshot written at shutdown and
  // replays nothing.
  ASSERT_OK(sc.server().Start());
  ASSERT_OK(sc.Reconnect());
  EXPECT_NE(sc.server().StderrText().find("state snapshot loaded: " + std::to_string(sc.script().steps.size()) +
                                          " entries"),
            std::string::npos)
      << sc.server().StderrText();
  std::vector<std::string> restarted;
  answers(&restarted);
  ASSERT_EQ(restarted.size(), before.size());
  for (size_t k = 0; k < queries.size(); ++k) EXPECT_EQ(restarted[k], before[k]) << queries[k];
  ASSERT_OK(sc.server().Stop());

  // What the live server left: its dedup index, event index and state
  // snapshot. `annals rebuild` must make exactly these again from the log.
  const std::string data = sc.server().options().data_dir;
  const Derived live = ReadDerived(data);
  ASSERT_GT(live.dedup.size(), sc.script().steps.size());  // a key per event, and the watermark
  ASSERT_GT(live.events.size(), sc.script().steps.size());
  ASSERT_FALSE(live.snapshot.empty());
  testutil::CommandResult rb = testutil::RunAnnals({"rebuild", "--data", data});
  ASSERT_EQ(rb.exit_code, 0) << rb.err;
  EXPECT_NE(rb.out.find("rebuilt from " + std::to_string(sc.script().steps.size()) + " entries"), std::string::npos)
      << rb.out;
  const Derived rebuilt = ReadDerived(data);
  EXPECT_EQ(rebuilt.dedup, live.dedup);
  EXPECT_EQ(rebuilt.events, live.events);
  EXPECT_TRUE(rebuilt.snapshot == live.snapshot) << "the rebuilt state snapshot differs from the live one";

  ASSERT_OK(sc.server().Start());
  ASSERT_OK(sc.Reconnect());
  ASSERT_OK(WaitApplied(sc.http(), sc.script().steps.size()));
  std::vector<std::string> after;
  answers(&after);
  ASSERT_EQ(after.size(), before.size());
  for (size_t k = 0; k < queries.size(); ++k) EXPECT_EQ(after[k], before[k]) << queries[k];
  // And the answers are not trivially empty.
  EXPECT_NE(before[0].find(sc.script().c.p1["metadata"]["uid"].get<std::string>()), std::string::npos);
  EXPECT_EQ(before[5].substr(0, 4), "404 ");
}

}  // namespace
}  // namespace annals
