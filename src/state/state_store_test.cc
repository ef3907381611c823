// Tests for StateStore: the projection rules of docs/state.md, applied in
// process to audit events built around real objects of the shared corpus
// (k9s and KubeHound fixtures). Each event goes through the real ingest
// parser and AuditMeta, as the server stores it.
#include "state/state_store.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "ingest/k8s_audit.h"

namespace annals::state {
namespace {

using nlohmann::json;

std::string CorpusFile(const std::string& rel) {
  std::ifstream in(std::string(ANNALS_CORPUS_DIR) + "/k8s-objects/" + rel, std::ios::binary);
  EXPECT_TRUE(in.good()) << rel;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

const Micros kT0 = *ParseRfc3339("2024-03-01T10:00:00Z");
Micros At(double seconds) { return kT0 + static_cast<Micros>(seconds * 1e6); }

// A real pod (k9s po.json) renamed and given the phase and IPs asked for.
json Pod(const std::string& ns, const std::string& name, const std::string& uid,
         const std::string& phase, const std::vector<std::string>& ips) {
  json p = json::parse(CorpusFile("k9s/po.json"));
  p["metadata"]["namespace"] = ns;
  p["metadata"]["name"] = name;
  p["metadata"]["uid"] = uid;
  p["metadata"]["labels"] = {{"app", name}};
  p["status"]["phase"] = phase;
  p["status"].erase("podIP");
  p["status"].erase("podIPs");
  if (!ips.empty()) {
    p["status"]["podIP"] = ips[0];
    p["status"]["podIPs"] = json::array();
    for (const auto& ip : ips) p["status"]["podIPs"].push_back({{"ip", ip}});
  }
  return p;
}

json Deleting(json obj, int64_t grace, Micros when) {
  obj["metadata"]["deletionTimestamp"] = FormatRfc3339(when);
  obj["metadata"]["deletionGracePeriodSeconds"] = grace;
  return obj;
}

json StatusSuccess(const std::string& kind, const std::string& name) {
  return {{"kind", "Status"},
          {"apiVersion", "v1"},
          {"metadata", json::object()},
          {"status", "Success"},
          {"details", {{"name", name}, {"kind", kind}}}};
}

struct Ev {
  std::string verb, resource, subresource, ns, name;
  Micros time = 0;
  json response;  // null: none (Metadata level)
  int code = 200;
  std::string stage = "ResponseComplete";
};

json AuditEvent(const Ev& e, int serial) {
  json ref = {{"resource", e.resource}, {"namespace", e.ns}, {"name", e.name}, {"apiVersion", "v1"}};
  if (!e.subresource.empty()) ref["subresource"] = e.subresource;
  json j = {{"kind", "Event"},
            {"apiVersion", "audit.k8s.io/v1"},
            {"level", e.response.is_null() ? "Metadata" : "RequestResponse"},
            {"auditID", "00000000-0000-4000-8000-" + std::to_string(100000000000 + serial)},
            {"stage", e.stage},
            {"requestURI", "/api/v1/namespaces/" + e.ns + "/" + e.resource + "/" + e.name},
            {"verb", e.verb},
            {"user", {{"username", "system:node:worker-1"}, {"groups", {"system:nodes"}}}},
            {"sourceIPs", {"172.18.0.3"}},
            {"userAgent", "kubelet/v1.29.2"},
            {"objectRef", ref},
            {"responseStatus", {{"metadata", json::object()}, {"code", e.code}}},
            {"requestReceivedTimestamp", FormatRfc3339(e.time - 1000)},
            {"stageTimestamp", FormatRfc3339(e.time)}};
  if (!e.response.is_null()) j["responseObject"] = e.response;
  return j;
}

// Applies audit events to a StateStore the way the Projector does: entry
// meta from the real ingest parser, payload = the event bytes.
class Harness {
 public:
  // Applies at the next ledger index; returns it.
  uint64_t Apply(const Ev& e) { return ApplyAt(next_, e); }
  uint64_t ApplyAt(uint64_t index, const Ev& e) {
    const std::string payload = AuditEvent(e, static_cast<int>(index)).dump();
    auto ev = ingest::ParseAuditEvent(payload, "test event");
    EXPECT_TRUE(ev.ok()) << ev.status().ToString();
    const std::string meta = ingest::AuditMeta(*ev, "k8s-audit", "2024-03-01T12:00:00Z");
    Status s = store.Apply(index, meta, payload, &rows);
    // The event index's half alone (a rebuild of that index) gives the same.
    index::EventBatch alone;
    EXPECT_TRUE(StateStore::EventRows(index, meta, payload, &alone).ok());
    ExpectSameBatchTail(alone);
    EXPECT_TRUE(s.ok()) << s.ToString();
    next_ = std::max(next_, index + 1);
    return index;
  }
  uint64_t ApplyRaw(std::string_view meta, std::string_view payload) {
    EXPECT_TRUE(store.Apply(next_, meta, payload, &rows).ok());
    return next_++;
  }

  // The event rows and name links Apply has handed out so far.
  index::EventBatch rows;
  index::EventRowView Row(size_t i) const {
    index::EventRowView v;
    const auto& r = rows.row_list().at(i);
    EXPECT_TRUE(index::DecodeEventRow(r.index, rows.arena(r.at, r.size), &v).ok());
    return v;
  }
  // The ledger indexes filed under (resource, namespace, name), ascending.
  std::vector<uint64_t> Filed(std::string_view resource, std::string_view ns, std::string_view name) const {
    const std::string key = index::NameKey(resource, ns, name);
    std::vector<uint64_t> out;
    for (const auto& n : rows.name_list())
      if (rows.arena(n.at, n.size) == key) out.push_back(n.index);
    return out;
  }
  // `alone` (one entry's EventRows) equals what Apply just added to rows.
  void ExpectSameBatchTail(const index::EventBatch& alone) const {
    const auto& all_rows = rows.row_list();
    const auto& all_names = rows.name_list();
    ASSERT_LE(alone.row_list().size(), all_rows.size());
    ASSERT_LE(alone.name_list().size(), all_names.size());
    for (size_t i = 0; i < alone.row_list().size(); ++i) {
      const auto& a = alone.row_list()[i];
      const auto& b = all_rows[all_rows.size() - alone.row_list().size() + i];
      EXPECT_EQ(alone.arena(a.at, a.size), rows.arena(b.at, b.size));
      EXPECT_EQ(a.index, b.index);
    }
    for (size_t i = 0; i < alone.name_list().size(); ++i) {
      const auto& a = alone.name_list()[i];
      const auto& b = all_names[all_names.size() - alone.name_list().size() + i];
      EXPECT_EQ(alone.arena(a.at, a.size), rows.arena(b.at, b.size));
      EXPECT_EQ(a.index, b.index);
    }
  }

  uint32_t Id(const std::string& uid) const {
    int64_t id = store.FindUid(0, uid);
    EXPECT_GE(id, 0) << uid;
    return static_cast<uint32_t>(id);
  }
  const Object& Obj(const std::string& uid) const { return store.object(Id(uid)); }
  // "present" / "terminating" / "gone" / "absent" (no version yet) at t.
  std::string StateAt(const std::string& uid, Micros t) const {
    const Version* v = Obj(uid).At(t);
    return v ? std::string(PresenceName(v->presence)) : "absent";
  }
  // The uid of the pod that held ip at t, or "".
  std::string Holder(const std::string& ip, Micros t, const IpInterval** before = nullptr,
                     const IpInterval** after = nullptr) const {
    const IpInterval* iv = store.PodByIp(*ParseIp(ip), t, before, after);
    return iv ? store.object(iv->pod).uid : "";
  }
  uint32_t Str(std::string_view s) const { return store.strings().Find(s); }

  StateStore store;

 private:
  uint64_t next_ = 0;
};

const char kNs[] = "shop";

TEST(StateStore, CreateAndStatusPatchesMakeVersionsAndAnInterval) {
  Harness h;
  const json pending = Pod(kNs, "web-1", "uid-web-1", "Pending", {});
  uint64_t c = h.Apply({"create", "pods", "", kNs, "web-1", At(0), pending, 201});
  uint64_t bind = h.Apply({"create", "pods", "binding", kNs, "web-1", At(0.5), StatusSuccess("pods", "web-1"), 201});
  uint64_t run = h.Apply({"patch", "pods", "status", kNs, "web-1", At(2),
                          Pod(kNs, "web-1", "uid-web-1", "Running", {"10.244.1.7"})});
  uint64_t again = h.Apply({"patch", "pods", "status", kNs, "web-1", At(5),
                            Pod(kNs, "web-1", "uid-web-1", "Running", {"10.244.1.7"})});

  std::shared_lock lock(h.store.mutex());
  const Object& o = h.Obj("uid-web-1");
  EXPECT_EQ(h.store.strings().Get(o.resource), "pods");
  EXPECT_EQ(h.store.strings().Get(o.ns), kNs);
  EXPECT_EQ(h.store.strings().Get(o.name), "web-1");
  // The binding answered a Status: provenance, not a version.
  ASSERT_EQ(o.versions.size(), 3u);
  EXPECT_EQ(o.versions[0].index, c);
  EXPECT_EQ(o.versions[1].index, run);
  EXPECT_EQ(o.versions[2].index, again);
  EXPECT_EQ(o.versions[1].time, At(2));
  EXPECT_EQ(o.At(At(-1)), nullptr);
  EXPECT_EQ(o.At(At(0))->index, c);
  EXPECT_EQ(o.At(At(1.999999))->index, c);
  EXPECT_EQ(o.At(At(2))->index, run);
  EXPECT_EQ(o.At(At(100))->index, again);
  EXPECT_EQ(h.StateAt("uid-web-1", At(3)), "present");

  // One interval from the first version that held the IP, still open: the
  // repeated patch does not split it.
  ASSERT_EQ(o.intervals.size(), 1u);
  EXPECT_EQ(o.intervals[0].start, At(2));
  EXPECT_EQ(o.intervals[0].end, kNever);
  EXPECT_EQ(o.intervals[0].start_index, run);
  EXPECT_EQ(o.intervals[0].end_index, 0u);
  EXPECT_EQ(h.Holder("10.244.1.7", At(1.999999)), "");
  EXPECT_EQ(h.Holder("10.244.1.7", At(2)), "uid-web-1");
  EXPECT_EQ(h.Holder("10.244.1.7", At(1e6)), "uid-web-1");
  EXPECT_EQ(h.Holder("10.244.1.8", At(3)), "");

  // Every event is in the event table and the name's provenance.
  ASSERT_EQ(h.rows.rows(), 4u);
  EXPECT_EQ(h.Row(1).subresource, "binding");
  EXPECT_EQ(h.Filed("pods", kNs, "web-1"), (std::vector<uint64_t>{c, bind, run, again}));
}

TEST(StateStore, OnlyCompletedSuccessfulWritesOfTheObjectMakeVersions) {
  Harness h;
  const json pod = Pod(kNs, "api-0", "uid-api-0", "Running", {"10.244.2.2"});
  Ev started{"create", "pods", "", kNs, "api-0", At(0), pod, 201, "ResponseStarted"};
  h.Apply(started);
  h.Apply({"create", "pods", "", kNs, "api-0", At(0), pod, 409});             // conflict
  h.Apply({"get", "pods", "", kNs, "api-0", At(1), pod, 200});               // read
  h.Apply({"list", "pods", "", kNs, "", At(1), pod, 200});                   // read
  h.Apply({"create", "pods", "", kNs, "api-0", At(2), json(), 201});         // Metadata level
  h.Apply({"watch", "pods", "", kNs, "", At(3), json(), 200});
  std::shared_lock lock(h.store.mutex());
  EXPECT_EQ(h.store.FindUid(0, "uid-api-0"), -1);
  EXPECT_EQ(h.store.object_count(), 0u);
  EXPECT_EQ(h.store.PodByIp(*ParseIp("10.244.2.2"), At(2), nullptr, nullptr), nullptr);
  EXPECT_EQ(h.rows.rows(), 6u);
  EXPECT_EQ(h.Filed("pods", kNs, "api-0").size(), 4u);  // the list and the watch name no object
}

TEST(StateStore, GracefulDeleteIsTerminatingUntilTheFinalDelete) {
  Harness h;
  const std::string ip = "10.244.1.9";
  h.Apply({"create", "pods", "", kNs, "web-2", At(0), Pod(kNs, "web-2", "uid-web-2", "Pending", {}), 201});
  uint64_t run = h.Apply({"patch", "pods", "status", kNs, "web-2", At(1),
                          Pod(kNs, "web-2", "uid-web-2", "Running", {ip})});
  // kubectl delete: the apiserver answers the pod with a deletionTimestamp
  // and the grace period left.
  h.Apply({"delete", "pods", "", kNs, "web-2", At(10),
           Deleting(Pod(kNs, "web-2", "uid-web-2", "Running", {ip}), 30, At(40))});
  // The kubelet reports the containers stopping, then deletes with grace 0.
  h.Apply({"patch", "pods", "status", kNs, "web-2", At(20),
           Deleting(Pod(kNs, "web-2", "uid-web-2", "Running", {ip}), 30, At(40))});
  uint64_t fin = h.Apply({"delete", "pods", "", kNs, "web-2", At(25),
                          Deleting(Pod(kNs, "web-2", "uid-web-2", "Running", {ip}), 0, At(10))});
  std::shared_lock lock(h.store.mutex());
  EXPECT_EQ(h.StateAt("uid-web-2", At(9)), "present");
  EXPECT_EQ(h.StateAt("uid-web-2", At(10)), "terminating");
  EXPECT_EQ(h.StateAt("uid-web-2", At(24)), "terminating");
  EXPECT_EQ(h.StateAt("uid-web-2", At(25)), "gone");
  // A terminating pod still has its IP; gone, it does not.
  EXPECT_EQ(h.Holder(ip, At(24.9)), "uid-web-2");
  const IpInterval* before = nullptr;
  EXPECT_EQ(h.Holder(ip, At(25), &before), "");
  ASSERT_NE(before, nullptr);
  EXPECT_EQ(before->start, At(1));
  EXPECT_EQ(before->end, At(25));
  EXPECT_EQ(before->start_index, run);
  EXPECT_EQ(before->end_index, fin);
}

TEST(StateStore, PodUpdatedWithDeletionTimestampIsTerminatingNotGone) {
  Harness h;
  json p = Pod(kNs, "web-3", "uid-web-3", "Running", {"10.244.1.10"});
  h.Apply({"create", "pods", "", kNs, "web-3", At(0), p, 201});
  // Even without finalizers: a pod waits for the kubelet's final delete.
  h.Apply({"patch", "pods", "status", kNs, "web-3", At(5), Deleting(p, 30, At(35))});
  std::shared_lock lock(h.store.mutex());
  EXPECT_EQ(h.StateAt("uid-web-3", At(6)), "terminating");
  EXPECT_EQ(h.Holder("10.244.1.10", At(6)), "uid-web-3");
}

TEST(StateStore, FinalizersKeepAnObjectUntilTheLastIsRemoved) {
  Harness h;
  json dp = json::parse(CorpusFile("k9s/dp.json"));
  const std::string uid = dp["metadata"]["uid"];
  const std::string ns = dp["metadata"]["namespace"];
  h.Apply({"create", "deployments", "", ns, "icx-db", At(0), dp, 201});
  json deleting = Deleting(dp, 0, At(10));
  deleting["metadata"]["finalizers"] = json::array({"foregroundDeletion"});
  h.Apply({"delete", "deployments", "", ns, "icx-db", At(10), deleting});
  // The garbage collector updates status while dependents go away...
  h.Apply({"update", "deployments", "status", ns, "icx-db", At(12), deleting});
  // ...then removes the finalizer: the apiserver deletes it, no more events.
  json released = deleting;
  released["metadata"]["finalizers"] = json::array();
  h.Apply({"update", "deployments", "", ns, "icx-db", At(15), released});

  // A ReplicaSet deleted outright (no finalizers, no grace) is gone at once.
  json rs = json::parse(CorpusFile("k9s/rs.json"));
  const std::string rs_uid = rs["metadata"]["uid"];
  h.Apply({"create", "replicasets", "", ns, "icx-db-7d4b578979", At(1), rs, 201});
  h.Apply({"delete", "replicasets", "", ns, "icx-db-7d4b578979", At(11), Deleting(rs, 0, At(11))});
  std::shared_lock lock(h.store.mutex());
  EXPECT_EQ(h.StateAt(uid, At(9)), "present");
  EXPECT_EQ(h.StateAt(uid, At(10)), "terminating");
  EXPECT_EQ(h.StateAt(uid, At(14)), "terminating");
  EXPECT_EQ(h.StateAt(uid, At(15)), "gone");
  EXPECT_EQ(h.StateAt(rs_uid, At(10.9)), "present");
  EXPECT_EQ(h.StateAt(rs_uid, At(11)), "gone");
}

TEST(StateStore, DeleteAnsweredWithStatusEndsTheObjectOfThatNameAtThatTime) {
  Harness h;
  json cm = {{"kind", "ConfigMap"}, {"apiVersion", "v1"},
             {"metadata", {{"name", "settings"}, {"namespace", kNs}, {"uid", "cm-a"}}},
             {"data", {{"k", "v1"}}}};
  h.Apply({"create", "configmaps", "", kNs, "settings", At(0), cm, 201});
  uint64_t del_a = h.Apply({"delete", "configmaps", "", kNs, "settings", At(10), StatusSuccess("configmaps", "settings")});
  cm["metadata"]["uid"] = "cm-b";
  h.Apply({"create", "configmaps", "", kNs, "settings", At(20), cm, 201});
  uint64_t del_b = h.Apply({"delete", "configmaps", "", kNs, "settings", At(30), StatusSuccess("configmaps", "settings")});
  // A delete of a name nobody created: nothing to end, no object made.
  h.Apply({"delete", "configmaps", "", kNs, "unknown", At(31), StatusSuccess("configmaps", "unknown")});
  // A pod deleted with a Status answer loses its IP too.
  h.Apply({"create", "pods", "", kNs, "job-x", At(0), Pod(kNs, "job-x", "uid-job-x", "Running", {"10.244.3.3"}), 201});
  h.Apply({"delete", "pods", "", kNs, "job-x", At(5), StatusSuccess("pods", "job-x")});

  std::shared_lock lock(h.store.mutex());
  EXPECT_EQ(h.store.object_count(), 3u);
  EXPECT_EQ(h.StateAt("cm-a", At(9)), "present");
  EXPECT_EQ(h.StateAt("cm-a", At(10)), "gone");
  EXPECT_EQ(h.StateAt("cm-a", At(40)), "gone");
  EXPECT_EQ(h.StateAt("cm-b", At(25)), "present");
  EXPECT_EQ(h.StateAt("cm-b", At(30)), "gone");
  ASSERT_EQ(h.Obj("cm-a").versions.size(), 2u);  // the second delete did not touch cm-a
  EXPECT_EQ(h.Obj("cm-a").versions[1].index, del_a);
  ASSERT_EQ(h.Obj("cm-b").versions.size(), 2u);
  EXPECT_EQ(h.Obj("cm-b").versions[1].index, del_b);
  EXPECT_EQ(h.Holder("10.244.3.3", At(4)), "uid-job-x");
  EXPECT_EQ(h.Holder("10.244.3.3", At(5)), "");
}

TEST(StateStore, PodRecreatedWithTheSameNameIsANewObject) {
  Harness h;
  h.Apply({"create", "pods", "", kNs, "db-0", At(0), Pod(kNs, "db-0", "uid-db-0-a", "Running", {"10.244.4.4"}), 201});
  h.Apply({"delete", "pods", "", kNs, "db-0", At(10), Pod(kNs, "db-0", "uid-db-0-a", "Running", {"10.244.4.4"})});
  h.Apply({"create", "pods", "", kNs, "db-0", At(11), Pod(kNs, "db-0", "uid-db-0-b", "Pending", {}), 201});
  h.Apply({"patch", "pods", "status", kNs, "db-0", At(12), Pod(kNs, "db-0", "uid-db-0-b", "Running", {"10.244.4.5"})});
  std::shared_lock lock(h.store.mutex());
  uint32_t a = h.Id("uid-db-0-a"), b = h.Id("uid-db-0-b");
  EXPECT_NE(a, b);
  EXPECT_EQ(h.store.ByName(0, h.Str("pods"), h.Str(kNs), h.Str("db-0")), (std::vector<uint32_t>{a, b}));
  EXPECT_EQ(h.StateAt("uid-db-0-a", At(9)), "present");
  // Deleted with the object, no grace left: gone.
  EXPECT_EQ(h.StateAt("uid-db-0-a", At(10)), "gone");
  EXPECT_EQ(h.StateAt("uid-db-0-b", At(10.5)), "absent");
  EXPECT_EQ(h.StateAt("uid-db-0-b", At(11)), "present");
  EXPECT_EQ(h.Holder("10.244.4.4", At(9)), "uid-db-0-a");
  EXPECT_EQ(h.Holder("10.244.4.4", At(11)), "");
  EXPECT_EQ(h.Holder("10.244.4.5", At(12)), "uid-db-0-b");
}

TEST(StateStore, CompletedJobPodReleasesItsIpForReuse) {
  Harness h;
  json job = json::parse(CorpusFile("k9s/job.json"));
  const std::string ip = "10.244.5.5";
  auto job_pod = [&](const std::string& phase) {
    json p = Pod("default", "hello-1567179180-x7k2p", "uid-job-pod", phase, {ip});
    p["metadata"]["ownerReferences"] = {{{"apiVersion", "batch/v1"}, {"kind", "Job"}, {"name", "hello-1567179180"},
                                          {"uid", job["metadata"]["uid"]}, {"controller", true}}};
    return p;
  };
  h.Apply({"create", "jobs", "", "default", "hello-1567179180", At(0), job, 201});
  h.Apply({"create", "pods", "", "default", "hello-1567179180-x7k2p", At(1), Pod("default", "hello-1567179180-x7k2p", "uid-job-pod", "Pending", {}), 201});
  uint64_t running = h.Apply({"patch", "pods", "status", "default", "hello-1567179180-x7k2p", At(2), job_pod("Running")});
  // The pod completes: it stays (Completed) with its podIP in status, but
  // the IP is free for the next pod on the node.
  uint64_t done = h.Apply({"patch", "pods", "status", "default", "hello-1567179180-x7k2p", At(30), job_pod("Succeeded")});
  uint64_t next = h.Apply({"create", "pods", "", "default", "web-9", At(40), Pod("default", "web-9", "uid-web-9", "Running", {ip}), 201});
  // A Failed pod frees its IP the same way.
  h.Apply({"patch", "pods", "status", "default", "web-9", At(50), Pod("default", "web-9", "uid-web-9", "Failed", {ip})});

  std::shared_lock lock(h.store.mutex());
  EXPECT_EQ(h.StateAt("uid-job-pod", At(100)), "present");  // Completed pods still exist
  EXPECT_EQ(h.Holder(ip, At(29)), "uid-job-pod");
  const IpInterval *before = nullptr, *after = nullptr;
  EXPECT_EQ(h.Holder(ip, At(35), &before, &after), "");
  ASSERT_NE(before, nullptr);
  ASSERT_NE(after, nullptr);
  EXPECT_EQ(h.store.object(before->pod).uid, "uid-job-pod");
  EXPECT_EQ(before->start_index, running);
  EXPECT_EQ(before->end, At(30));
  EXPECT_EQ(before->end_index, done);
  EXPECT_EQ(h.store.object(after->pod).uid, "uid-web-9");
  EXPECT_EQ(after->start_index, next);
  EXPECT_EQ(h.Holder(ip, At(45)), "uid-web-9");
  EXPECT_EQ(h.Holder(ip, At(50)), "");
  // The children of the Job: its pod.
  EXPECT_EQ(h.store.Children(0, job["metadata"]["uid"].get<std::string>()),
            (std::vector<uint32_t>{h.Id("uid-job-pod")}));
}

TEST(StateStore, IpChangeClosesTheOldIntervalAndOpensTheNew) {
  Harness h;
  h.Apply({"create", "pods", "", kNs, "mover", At(0), Pod(kNs, "mover", "uid-mover", "Running", {"10.244.6.1"}), 201});
  h.Apply({"patch", "pods", "status", kNs, "mover", At(10), Pod(kNs, "mover", "uid-mover", "Running", {"10.244.6.2"})});
  std::shared_lock lock(h.store.mutex());
  const Object& o = h.Obj("uid-mover");
  ASSERT_EQ(o.intervals.size(), 2u);
  EXPECT_EQ(h.Holder("10.244.6.1", At(9.9)), "uid-mover");
  EXPECT_EQ(h.Holder("10.244.6.1", At(10)), "");
  EXPECT_EQ(h.Holder("10.244.6.2", At(9.9)), "");
  EXPECT_EQ(h.Holder("10.244.6.2", At(10)), "uid-mover");
  EXPECT_EQ(o.ips_ever.size(), 2u);
}

TEST(StateStore, HostNetworkPodNeverHoldsTheNodeIp) {
  Harness h;
  json items = json::parse(CorpusFile("kubehound-kind-cluster/kube-system/pods.json"))["items"];
  json etcd;
  for (const auto& p : items)
    if (p["metadata"]["name"] == "etcd-kubehound.test.local-control-plane") etcd = p;
  ASSERT_TRUE(etcd.is_object());
  ASSERT_TRUE(etcd["spec"]["hostNetwork"].get<bool>());
  const std::string node_ip = etcd["status"]["podIP"];
  h.Apply({"create", "pods", "", "kube-system", etcd["metadata"]["name"], At(0), etcd, 201});
  h.Apply({"patch", "pods", "status", "kube-system", etcd["metadata"]["name"], At(1), etcd});
  std::shared_lock lock(h.store.mutex());
  const Object& o = h.Obj(etcd["metadata"]["uid"]);
  EXPECT_EQ(o.versions.size(), 2u);
  EXPECT_TRUE(o.intervals.empty());
  const IpInterval *before = nullptr, *after = nullptr;
  EXPECT_EQ(h.Holder(node_ip, At(2), &before, &after), "");
  EXPECT_EQ(before, nullptr);
  EXPECT_EQ(after, nullptr);
}

TEST(StateStore, DualStackPodHoldsBothFamilies) {
  Harness h;
  h.Apply({"create", "pods", "", kNs, "dual", At(0),
           Pod(kNs, "dual", "uid-dual", "Running", {"10.244.7.7", "fd00:10:244:7::7"}), 201});
  // Loses the IPv6 address only.
  h.Apply({"patch", "pods", "status", kNs, "dual", At(10), Pod(kNs, "dual", "uid-dual", "Running", {"10.244.7.7"})});
  std::shared_lock lock(h.store.mutex());
  EXPECT_EQ(h.Holder("10.244.7.7", At(1)), "uid-dual");
  EXPECT_EQ(h.Holder("fd00:10:244:7::7", At(1)), "uid-dual");
  EXPECT_EQ(h.Holder("fd00:10:244:7:0:0:0:7", At(9)), "uid-dual");
  EXPECT_EQ(h.Holder("fd00:10:244:7::7", At(10)), "");
  EXPECT_EQ(h.Holder("10.244.7.7", At(10)), "uid-dual");
  // The IPv4 address is not also its IPv4-compatible IPv6 twin.
  EXPECT_EQ(h.Holder("::10.244.7.7", At(1)), "");
}

TEST(StateStore, IntervalsExtendedInOrderEqualThoseRebuiltFromAShuffle) {
  // A pod whose addresses change over 60 updates (the newest-version path
  // extends the intervals), and the same updates in a shuffled order (late
  // versions re-derive them): the histories, and so the intervals and the
  // answers, must be the same. Each seed shuffles differently, so late
  // versions land at every distance from the newest.
  for (unsigned seed = 11; seed < 27; ++seed) {
    SCOPED_TRACE(seed);
    std::mt19937 rng(seed);
    const std::vector<std::string> pool = {"10.244.9.1", "10.244.9.2", "fd00:10:244:9::3"};
    std::vector<Ev> evs;
    evs.push_back({"create", "pods", "", kNs, "hopper", At(0), Pod(kNs, "hopper", "uid-hopper", "Pending", {}), 201});
    for (int i = 1; i <= 60; ++i) {
      std::vector<std::string> ips;
      for (const auto& ip : pool)
        if (rng() % 2) ips.push_back(ip);
      if (i % 7 == 0 && !ips.empty()) ips.push_back(ips.front());  // listed twice
      const char* phase = i % 13 == 0 ? "Pending" : "Running";
      evs.push_back({"patch", "pods", "status", kNs, "hopper", At(i), Pod(kNs, "hopper", "uid-hopper", phase, ips)});
    }
    Harness in_order, shuffled;
    for (size_t i = 0; i < evs.size(); ++i) in_order.ApplyAt(i, evs[i]);
    std::vector<size_t> order(evs.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::shuffle(order.begin() + 1, order.end(), rng);  // the create first: it makes the object
    for (size_t i : order) shuffled.ApplyAt(i, evs[i]);

    std::shared_lock l1(in_order.store.mutex()), l2(shuffled.store.mutex());
    const Object& a = in_order.Obj("uid-hopper");
    const Object& b = shuffled.Obj("uid-hopper");
    ASSERT_GT(a.intervals.size(), 10u);
    ASSERT_EQ(a.intervals.size(), b.intervals.size());
    for (size_t i = 0; i < a.intervals.size(); ++i) {
      EXPECT_EQ(a.intervals[i].ip, b.intervals[i].ip) << i;
      EXPECT_EQ(a.intervals[i].start, b.intervals[i].start) << i;
      EXPECT_EQ(a.intervals[i].end, b.intervals[i].end) << i;
      EXPECT_EQ(a.intervals[i].start_index, b.intervals[i].start_index) << i;
      EXPECT_EQ(a.intervals[i].end_index, b.intervals[i].end_index) << i;
    }
    for (const auto& ip : pool) {
      for (int t = 0; t <= 62; ++t) {
        EXPECT_EQ(in_order.Holder(ip, At(t + 0.5)), shuffled.Holder(ip, At(t + 0.5))) << ip << " at " << t;
        EXPECT_EQ(in_order.Holder(ip, At(t)), shuffled.Holder(ip, At(t))) << ip << " at " << t;
      }
    }
  }
}

TEST(StateStore, OutOfOrderEventsLandInTimeOrderAndFixEarlierAnswers) {
  Harness h;
  const std::string ip = "10.244.8.8";
  h.ApplyAt(0, {"create", "pods", "", kNs, "late", At(0), Pod(kNs, "late", "uid-late", "Pending", {}), 201});
  // The completion arrives before the status patch that gave the IP.
  uint64_t done = h.ApplyAt(1, {"patch", "pods", "status", kNs, "late", At(30), Pod(kNs, "late", "uid-late", "Succeeded", {ip})});
  {
    std::shared_lock lock(h.store.mutex());
    EXPECT_EQ(h.Holder(ip, At(10)), "");
    EXPECT_TRUE(h.Obj("uid-late").intervals.empty());
  }
  uint64_t run = h.ApplyAt(2, {"patch", "pods", "status", kNs, "late", At(5), Pod(kNs, "late", "uid-late", "Running", {ip})});
  std::shared_lock lock(h.store.mutex());
  const Object& o = h.Obj("uid-late");
  ASSERT_EQ(o.versions.size(), 3u);
  EXPECT_EQ(o.versions[0].index, 0u);
  EXPECT_EQ(o.versions[1].index, run);
  EXPECT_EQ(o.versions[2].index, done);
  ASSERT_EQ(o.intervals.size(), 1u);
  EXPECT_EQ(o.intervals[0].start, At(5));
  EXPECT_EQ(o.intervals[0].end, At(30));
  EXPECT_EQ(o.intervals[0].start_index, run);
  EXPECT_EQ(o.intervals[0].end_index, done);
  EXPECT_EQ(h.Holder(ip, At(10)), "uid-late");
  EXPECT_EQ(h.Holder(ip, At(30)), "");
}

TEST(StateStore, VersionsAtTheSameTimeAreOrderedByLedgerIndex) {
  Harness h;
  const std::string ip = "10.244.9.9";
  // Same stageTimestamp (second precision from an old apiserver): the later
  // entry is the later version, whatever order they are applied in.
  h.ApplyAt(5, {"patch", "pods", "status", kNs, "tie", At(1), Pod(kNs, "tie", "uid-tie", "Succeeded", {ip})});
  h.ApplyAt(3, {"patch", "pods", "status", kNs, "tie", At(1), Pod(kNs, "tie", "uid-tie", "Running", {ip})});
  std::shared_lock lock(h.store.mutex());
  const Object& o = h.Obj("uid-tie");
  ASSERT_EQ(o.versions.size(), 2u);
  EXPECT_EQ(o.versions[0].index, 3u);
  EXPECT_EQ(o.versions[1].index, 5u);
  EXPECT_EQ(o.At(At(1))->index, 5u);
  // Opened and closed at the same instant: an empty interval holds nothing.
  EXPECT_EQ(h.Holder(ip, At(1)), "");
}

TEST(StateStore, NearestIntervalsBeforeAndAfter) {
  Harness h;
  const std::string ip = "10.244.10.10";
  for (int i = 0; i < 5; ++i) {
    const std::string name = "cycle-" + std::to_string(i);
    const std::string uid = "uid-cycle-" + std::to_string(i);
    h.Apply({"create", "pods", "", kNs, name, At(100 * i), Pod(kNs, name, uid, "Running", {ip}), 201});
    h.Apply({"delete", "pods", "", kNs, name, At(100 * i + 50), Pod(kNs, name, uid, "Running", {ip})});
  }
  std::shared_lock lock(h.store.mutex());
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(h.Holder(ip, At(100 * i + 10)), "uid-cycle-" + std::to_string(i));
    const IpInterval *before = nullptr, *after = nullptr;
    EXPECT_EQ(h.Holder(ip, At(100 * i + 75), &before, &after), "");
    ASSERT_NE(before, nullptr);
    EXPECT_EQ(h.store.object(before->pod).uid, "uid-cycle-" + std::to_string(i));
    if (i < 4) {
      ASSERT_NE(after, nullptr);
      EXPECT_EQ(h.store.object(after->pod).uid, "uid-cycle-" + std::to_string(i + 1));
    } else {
      EXPECT_EQ(after, nullptr);
    }
  }
  const IpInterval *before = nullptr, *after = nullptr;
  EXPECT_EQ(h.Holder(ip, At(-1), &before, &after), "");
  EXPECT_EQ(before, nullptr);
  ASSERT_NE(after, nullptr);
  EXPECT_EQ(h.store.object(after->pod).uid, "uid-cycle-0");
}

TEST(StateStore, EntriesThatAreNotAuditEventsAreIgnored) {
  Harness h;
  const json pod = Pod(kNs, "x", "uid-x", "Running", {"10.244.11.11"});
  const std::string payload = AuditEvent({"create", "pods", "", kNs, "x", At(0), pod, 201}, 1).dump();
  auto ev = ingest::ParseAuditEvent(payload, "e");
  ASSERT_TRUE(ev.ok());
  std::string meta = ingest::AuditMeta(*ev, "k8s-audit", "2024-03-01T12:00:00Z");
  // The same bytes stored as a conflict (a reused auditID and stage).
  std::string conflict = meta;
  conflict.replace(conflict.find(R"("type":"k8s.audit")"), 18, R"("type":"k8s.audit.conflict")");
  h.ApplyRaw(conflict, payload);
  h.ApplyRaw(R"({"v":1,"src":"events","type":"json"})", payload);
  h.ApplyRaw("not json", payload);
  h.ApplyRaw(R"({"v":1,"type":"k8s.audit"})", payload);  // no audit facts
  std::shared_lock lock(h.store.mutex());
  EXPECT_EQ(h.store.object_count(), 0u);
  EXPECT_EQ(h.rows.rows(), 0u);
}

TEST(StateStore, GenerateNamePodsAreFiledUnderTheirRealName) {
  Harness h;
  // The ReplicaSet controller creates pods with generateName: the audit
  // event's objectRef has no name.
  json p = Pod(kNs, "web-5f7d9-abcde", "uid-gen", "Pending", {});
  uint64_t c = h.Apply({"create", "pods", "", kNs, "", At(0), p, 201});
  uint64_t s = h.Apply({"patch", "pods", "status", kNs, "web-5f7d9-abcde", At(1),
                        Pod(kNs, "web-5f7d9-abcde", "uid-gen", "Running", {"10.244.12.12"})});
  std::shared_lock lock(h.store.mutex());
  EXPECT_EQ(h.Filed("pods", kNs, "web-5f7d9-abcde"), (std::vector<uint64_t>{c, s}));
}

TEST(StateStore, ChildrenAndApplicationInstances) {
  Harness h;
  json dp = json::parse(CorpusFile("k9s/dp.json"));
  json rs = json::parse(CorpusFile("k9s/rs.json"));
  const std::string ns = "icx";
  h.Apply({"create", "deployments", "", ns, "icx-db", At(0), dp, 201});
  h.Apply({"create", "replicasets", "", ns, rs["metadata"]["name"], At(1), rs, 201});
  json pod = Pod(ns, "icx-db-7d4b578979-q2w3e", "uid-icx-pod", "Running", {"10.244.13.13"});
  pod["metadata"]["ownerReferences"] = {{{"kind", "ReplicaSet"}, {"name", rs["metadata"]["name"]},
                                         {"uid", rs["metadata"]["uid"]}, {"controller", true}}};
  h.Apply({"create", "pods", "", ns, "icx-db-7d4b578979-q2w3e", At(2), pod, 201});
  json cm = {{"kind", "ConfigMap"}, {"apiVersion", "v1"},
             {"metadata", {{"name", "icx-db-config"}, {"namespace", ns}, {"uid", "uid-icx-cm"},
                           {"labels", {{"app.kubernetes.io/instance", "icx-db"}}}}}};
  h.Apply({"create", "configmaps", "", ns, "icx-db-config", At(3), cm, 201});
  json secret = {{"kind", "Secret"}, {"apiVersion", "v1"},
                 {"metadata", {{"name", "sh.helm.release.v1.icx-db.v1"}, {"namespace", ns}, {"uid", "uid-icx-secret"},
                               {"annotations", {{"meta.helm.sh/release-name", "icx-db"}}}}}};
  h.Apply({"create", "secrets", "", ns, "sh.helm.release.v1.icx-db.v1", At(4), secret, 201});
  json other = cm;
  other["metadata"]["namespace"] = "elsewhere";
  other["metadata"]["uid"] = "uid-other-cm";
  h.Apply({"create", "configmaps", "", "elsewhere", "icx-db-config", At(5), other, 201});

  std::shared_lock lock(h.store.mutex());
  EXPECT_EQ(h.store.Children(0, dp["metadata"]["uid"].get<std::string>()),
            (std::vector<uint32_t>{h.Id(rs["metadata"]["uid"])}));
  EXPECT_EQ(h.store.Children(0, rs["metadata"]["uid"].get<std::string>()),
            (std::vector<uint32_t>{h.Id("uid-icx-pod")}));
  EXPECT_TRUE(h.store.Children(0, "uid-icx-pod").empty());
  EXPECT_EQ(h.store.Instance(0, h.Str(ns), "icx-db"),
            (std::vector<uint32_t>{h.Id("uid-icx-cm"), h.Id("uid-icx-secret")}));
  EXPECT_EQ(h.store.Instance(0, h.Str("elsewhere"), "icx-db"), (std::vector<uint32_t>{h.Id("uid-other-cm")}));
  auto pods = h.store.Objects(h.Str("pods"), h.Str(ns), false);
  EXPECT_EQ(pods, (std::vector<uint32_t>{h.Id("uid-icx-pod")}));
  EXPECT_EQ(h.store.Objects(h.Str("configmaps"), 0, true).size(), 2u);
  EXPECT_EQ(h.store.Objects(0, h.Str(ns), false).size(), 5u);
  EXPECT_EQ(h.store.Objects(0, 0, true).size(), 6u);
}

// An object is filed under every owner and instance any of its versions
// named: a version like the one before files nothing again, and one that
// changes its owner or labels is filed anew.
TEST(StateStore, LinksFollowEveryVersionsOwnersAndInstance) {
  Harness h;
  const std::string ns = "links";
  json pod = Pod(ns, "p", "uid-p", "Running", {"10.244.14.14"});
  auto ref = [](const std::string& uid, bool controller) {
    return json{{"kind", "ReplicaSet"}, {"name", "rs-" + uid}, {"uid", uid}, {"controller", controller}};
  };
  int t = 0;
  auto update = [&]() { h.Apply({"update", "pods", "", ns, "p", At(t++), pod, 200}); };
  h.Apply({"create", "pods", "", ns, "p", At(t++), pod, 201});
  pod["metadata"]["ownerReferences"] = json::array({ref("rs-a", true)});
  update();
  update();  // the same owner and labels again
  pod["metadata"]["ownerReferences"] = json::array({ref("rs-b", true)});
  update();
  pod["metadata"]["labels"] = {{"app.kubernetes.io/instance", "x"}};
  update();
  update();
  pod["metadata"]["labels"] = {{"app.kubernetes.io/instance", "y"}};
  update();
  // Two owners: the version names the controller alone, both are filed.
  pod["metadata"]["ownerReferences"] = json::array({ref("rs-c", false), ref("rs-b", true)});
  update();
  update();
  pod["metadata"]["ownerReferences"] = json::array({ref("rs-b", true)});
  pod["metadata"]["annotations"] = {{"meta.helm.sh/release-name", "z"}};
  update();

  std::shared_lock lock(h.store.mutex());
  const std::vector<uint32_t> p{h.Id("uid-p")};
  for (const char* owner : {"rs-a", "rs-b", "rs-c"}) EXPECT_EQ(h.store.Children(0, owner), p) << owner;
  for (const char* release : {"x", "y", "z"}) EXPECT_EQ(h.store.Instance(0, h.Str(ns), release), p) << release;
  EXPECT_TRUE(h.store.Instance(0, h.Str(ns), "w").empty());
}

TEST(StateStore, VersionsCarryInternedOwnerLabelsAndSelector) {
  Harness h;
  json rs = json::parse(CorpusFile("k9s/rs.json"));
  json svc = json::parse(CorpusFile("k9s/svc.json"));
  const std::string ns = "icx";
  svc["metadata"]["namespace"] = ns;
  svc["spec"]["selector"] = {{"app", "a"}};
  h.Apply({"create", "services", "", ns, svc["metadata"]["name"], At(1), svc, 201});
  auto pod_with = [&](const std::string& name, const std::string& uid, json labels) {
    json p = Pod(ns, name, uid, "Running", {"10.244.20.1"});
    p["metadata"]["labels"] = labels;
    p["metadata"]["ownerReferences"] = {{{"kind", "Node"}, {"name", "n"}, {"uid", "uid-node"}},
                                        {{"kind", "ReplicaSet"}, {"name", rs["metadata"]["name"]},
                                         {"uid", rs["metadata"]["uid"]}, {"controller", true}}};
    p["spec"]["serviceAccountName"] = "sa-" + name;
    return p;
  };
  h.Apply({"create", "pods", "", ns, "p1", At(2), pod_with("p1", "uid-p1", {{"app", "a"}, {"tier", "db"}}), 201});
  h.Apply({"create", "pods", "", ns, "p2", At(3), pod_with("p2", "uid-p2", {{"tier", "db"}, {"app", "a"}}), 201});
  h.Apply({"create", "pods", "", ns, "p3", At(4), pod_with("p3", "uid-p3", json::object()), 201});

  std::shared_lock lock(h.store.mutex());
  const Version& v1 = h.Obj("uid-p1").versions[0];
  const Version& v2 = h.Obj("uid-p2").versions[0];
  const Version& v3 = h.Obj("uid-p3").versions[0];
  // The same labels in another order are one label set; no labels is set 0.
  EXPECT_NE(v1.labels, 0u);
  EXPECT_EQ(v1.labels, v2.labels);
  EXPECT_EQ(v3.labels, 0u);
  const LabelSet& set = h.store.label_set(v1.labels);
  ASSERT_EQ(set.size(), 2u);
  EXPECT_TRUE(std::is_sorted(set.begin(), set.end()));
  EXPECT_EQ(h.store.strings().Get(set[0].first) + "=" + h.store.strings().Get(set[0].second),
            h.Str("app") < h.Str("tier") ? "app=a" : "tier=db");
  // The controller reference wins over the first one.
  ASSERT_NE(v1.owner, 0u);
  const OwnerLink& owner = h.store.owner_ref(v1.owner);
  EXPECT_EQ(h.store.strings().Get(owner.kind), "ReplicaSet");
  EXPECT_EQ(h.store.strings().Get(owner.name), rs["metadata"]["name"]);
  EXPECT_EQ(owner.uid, rs["metadata"]["uid"]);
  EXPECT_EQ(v1.owner, v2.owner);
  EXPECT_EQ(h.store.strings().Get(h.Obj("uid-p1").pod[0].service_account), "sa-p1");
  // The Service's selector is a label set too; pods carry none.
  const Version& sv = h.Obj(svc["metadata"]["uid"].get<std::string>()).versions[0];
  ASSERT_NE(sv.selector, 0u);
  EXPECT_EQ(h.store.label_set(sv.selector).size(), 1u);
  EXPECT_EQ(v1.selector, 0u);
}

TEST(StateStore, ServiceEpochCountsServiceVersionsOfTheNamespace) {
  Harness h;
  json svc = json::parse(CorpusFile("k9s/svc.json"));
  svc["metadata"]["namespace"] = "a";
  const std::string name = svc["metadata"]["name"];
  h.Apply({"create", "services", "", "a", name, At(10), svc, 201});
  h.Apply({"update", "services", "", "a", name, At(20), svc, 200});
  json other = svc;
  other["metadata"]["namespace"] = "b";
  other["metadata"]["uid"] = "uid-svc-b";
  h.Apply({"create", "services", "", "b", name, At(15), other, 201});
  {
    std::shared_lock lock(h.store.mutex());
    const uint32_t a = h.Str("a");
    EXPECT_EQ(h.store.ServiceEpoch(a, At(5)), 0u);
    EXPECT_EQ(h.store.ServiceEpoch(a, At(10)), 1u);
    EXPECT_EQ(h.store.ServiceEpoch(a, At(19)), 1u);
    EXPECT_EQ(h.store.ServiceEpoch(a, At(25)), 2u);
    EXPECT_EQ(h.store.ServiceEpoch(h.Str("b"), At(25)), 1u);
  }
  // A late Service version (earlier time, later index) moves the epochs
  // after its time and leaves those before it alone.
  h.Apply({"delete", "services", "", "a", name, At(12), StatusSuccess("Service", name), 200});
  std::shared_lock lock(h.store.mutex());
  EXPECT_EQ(h.store.ServiceEpoch(h.Str("a"), At(11)), 1u);
  EXPECT_EQ(h.store.ServiceEpoch(h.Str("a"), At(13)), 2u);
}

TEST(StateStore, LateOwnerOrServiceVersionBumpsTheLateGeneration) {
  Harness h;
  json rs = json::parse(CorpusFile("k9s/rs.json"));
  const std::string ns = "icx";
  h.Apply({"create", "replicasets", "", ns, rs["metadata"]["name"], At(1), rs, 201});
  const uint64_t g0 = h.store.late_generation(h.Str(ns));
  h.Apply({"create", "pods", "", ns, "p", At(5), Pod(ns, "p", "uid-p", "Running", {"10.244.0.9"}), 201});
  rs["spec"]["replicas"] = 2;
  h.Apply({"update", "replicasets", "", ns, rs["metadata"]["name"], At(9), rs, 200});  // after every pod version
  EXPECT_EQ(h.store.late_generation(h.Str(ns)), g0);
  h.Apply({"update", "replicasets", "", ns, rs["metadata"]["name"], At(4), rs, 200});  // late: before the pod's
  const uint64_t g1 = h.store.late_generation(h.Str(ns));
  EXPECT_GT(g1, g0);
  // Services: in time order nothing moves; one before the latest does.
  json svc = json::parse(CorpusFile("k9s/svc.json"));
  svc["metadata"]["namespace"] = ns;
  h.Apply({"create", "services", "", ns, svc["metadata"]["name"], At(20), svc, 201});
  h.Apply({"update", "services", "", ns, svc["metadata"]["name"], At(30), svc, 200});
  EXPECT_EQ(h.store.late_generation(h.Str(ns)), g1);
  h.Apply({"update", "services", "", ns, svc["metadata"]["name"], At(25), svc, 200});
  const uint64_t g2 = h.store.late_generation(h.Str(ns));
  EXPECT_GT(g2, g1);
  // Another namespace's late version leaves this one's alone; a
  // cluster-scoped one (an owner may be cluster-scoped) moves it.
  json other = rs;
  other["metadata"]["namespace"] = "elsewhere";
  other["metadata"]["uid"] = "uid-rs-elsewhere";
  h.Apply({"create", "replicasets", "", "elsewhere", other["metadata"]["name"], At(1), other, 201});
  EXPECT_EQ(h.store.late_generation(h.Str(ns)), g2);
  json node = json::parse(CorpusFile("k9s/no.json"));
  h.Apply({"update", "nodes", "", "", node["metadata"]["name"], At(3), node, 200});
  EXPECT_GT(h.store.late_generation(h.Str(ns)), g2);
}

TEST(StateStore, NamespaceEventsAreFiledUnderTheClusterScopedName) {
  Harness h;
  // The apiserver fills objectRef.namespace with the namespace's own name on
  // requests to /api/v1/namespaces/NAME, but not on the create (a POST to
  // /api/v1/namespaces): both must land in one history.
  json ns = {{"kind", "Namespace"}, {"apiVersion", "v1"},
             {"metadata", {{"name", "foo"}, {"uid", "uid-ns-foo"}}},
             {"spec", {{"finalizers", {"kubernetes"}}}}};
  uint64_t c = h.Apply({"create", "namespaces", "", "", "foo", At(0), ns, 201});
  json terminating = Deleting(ns, 0, At(10));
  uint64_t d = h.Apply({"delete", "namespaces", "", "foo", "foo", At(10), terminating});
  uint64_t g = h.Apply({"get", "namespaces", "", "foo", "foo", At(11), terminating});
  uint64_t gone = h.Apply({"delete", "namespaces", "", "foo", "foo", At(20), StatusSuccess("namespaces", "foo")});
  std::shared_lock lock(h.store.mutex());
  EXPECT_EQ(h.Filed("namespaces", "", "foo"), (std::vector<uint64_t>{c, d, g, gone}));
  EXPECT_EQ(h.StateAt("uid-ns-foo", At(5)), "present");
  // A Namespace keeps its finalizers in spec.finalizers: deleted, it is
  // Terminating while the namespace controller empties it.
  EXPECT_EQ(h.StateAt("uid-ns-foo", At(10)), "terminating");
  EXPECT_EQ(h.StateAt("uid-ns-foo", At(19)), "terminating");
  EXPECT_EQ(h.StateAt("uid-ns-foo", At(20)), "gone");
  EXPECT_EQ(h.Obj("uid-ns-foo").versions.back().index, gone);
}

// The members of an audit event in the order the kube-apiserver writes
// them (nlohmann::json sorts them: responseObject before stage and verb).
std::string ApiserverOrder(const json& j) {
  static const char* kOrder[] = {"kind", "apiVersion", "level", "auditID", "stage", "requestURI", "verb", "user",
                                 "impersonatedUser", "sourceIPs", "userAgent", "objectRef", "responseStatus",
                                 "requestObject", "responseObject", "requestReceivedTimestamp", "stageTimestamp",
                                 "timestamp", "annotations"};
  nlohmann::ordered_json o;
  for (const char* k : kOrder)
    if (j.contains(k)) o[k] = j[k];
  for (const auto& [k, v] : j.items())
    if (!o.contains(k)) o[k] = v;
  return o.dump();
}

std::vector<std::string> CorpusAuditEvents() {
  std::vector<std::string> files = {"audit2rbac-demo.jsonl"};
  std::vector<std::string> falco;
  const std::string dir = std::string(ANNALS_CORPUS_DIR) + "/k8s-audit/";
  for (const auto& f : std::filesystem::directory_iterator(dir + "falco")) falco.push_back("falco/" + f.path().filename().string());
  std::sort(falco.begin(), falco.end());
  files.insert(files.end(), falco.begin(), falco.end());
  std::vector<std::string> out;
  for (const auto& f : files) {
    std::ifstream in(dir + f, std::ios::binary);
    EXPECT_TRUE(in.good()) << f;
    for (std::string line; std::getline(in, line);)
      if (line.find_first_not_of(" \t\r") != std::string::npos) out.push_back(line);
  }
  return out;
}

TEST(StateStore, MetadataVersionsOneAndTwoGiveTheSameRowsAndState) {
  // Version 2 leaves the indexed fields to the payload; a log holding
  // version 1 entries (the fields repeated in the metadata) must answer the
  // same: the same event rows and name links, the same objects and versions.
  std::vector<std::string> events = CorpusAuditEvents();
  const size_t corpus = events.size();
  const json pod = Pod(kNs, "web-0", "uid-web-0", "Running", {"10.244.1.7"});
  const json gen = Pod(kNs, "web-5f7d9-abcde", "uid-gen", "Pending", {});
  std::vector<json> made;
  int serial = 0;
  made.push_back(AuditEvent({"create", "pods", "", kNs, "web-0", At(0), pod, 201}, ++serial));
  made.push_back(AuditEvent({"patch", "pods", "status", kNs, "web-0", At(1), pod, 200}, ++serial));
  made.push_back(AuditEvent({"get", "pods", "", kNs, "web-0", At(2), pod, 200}, ++serial));
  made.push_back(AuditEvent({"update", "pods", "", kNs, "web-0", At(3), pod, 409}, ++serial));
  made.push_back(AuditEvent({"create", "pods", "", kNs, "", At(4), gen, 201}, ++serial));
  made.push_back(AuditEvent({"delete", "pods", "", kNs, "web-0", At(5), StatusSuccess("pods", "web-0")}, ++serial));
  made.push_back(AuditEvent({"delete", "pods", "", kNs, "web-5f7d9-abcde", At(6), json(), 200}, ++serial));
  json imp = AuditEvent({"create", "pods", "", "team-a", "imp", At(7), Pod("team-a", "imp", "uid-imp", "Pending", {}), 201},
                        ++serial);
  imp["impersonatedUser"] = {{"username", "system:serviceaccount:team-a:deployer"}};
  imp["userAgent"] = std::string(300, 'k');  // cut at 256 bytes in the rows
  made.push_back(imp);
  json beta = AuditEvent({"update", "pods", "", "team-a", "imp", At(8), Pod("team-a", "imp", "uid-imp", "Running", {"10.244.2.9"}), 200},
                         ++serial);
  beta["apiVersion"] = "audit.k8s.io/v1beta1";
  beta["timestamp"] = beta["stageTimestamp"];
  beta.erase("stageTimestamp");
  made.push_back(beta);
  for (const json& j : made) {
    events.push_back(j.dump());           // sorted: responseObject before stage, verb and code
    events.push_back(ApiserverOrder(j));  // as the apiserver writes: after them
  }
  StateStore v1, v2;
  index::EventBatch rows1, rows2;
  uint64_t index = 0;
  size_t audit = 0;
  for (const std::string& payload : events) {
    auto ev = ingest::ParseAuditEvent(payload, "event");
    if (!ev.ok()) continue;
    ++audit;
    const std::string meta1 = ingest::AuditMetaV1(*ev, "k8s-audit", "2024-03-01T12:00:00Z");
    ASSERT_TRUE(meta1.starts_with(R"({"v":1,)")) << meta1;
    ASSERT_NE(meta1.find(R"(,"audit":{"stage":)"), std::string::npos) << meta1;
    ASSERT_TRUE(v1.Apply(index, meta1, payload, &rows1).ok());
    const std::string meta2 = ingest::AuditMeta(*ev, "k8s-audit", "2024-03-01T12:00:00Z");
    ASSERT_TRUE(meta2.starts_with(R"({"v":2,)")) << meta2;
    ASSERT_EQ(meta2.find(R"("audit")"), std::string::npos) << meta2;
    ASSERT_TRUE(v2.Apply(index, meta2, payload, &rows2).ok());
    ++index;
  }
  EXPECT_GT(audit, corpus / 2);
  ASSERT_EQ(rows1.rows(), audit);
  ASSERT_EQ(rows2.rows(), audit);
  for (size_t i = 0; i < audit; ++i) {
    const auto& a = rows1.row_list()[i];
    const auto& b = rows2.row_list()[i];
    EXPECT_EQ(a.index, b.index);
    EXPECT_EQ(rows1.arena(a.at, a.size), rows2.arena(b.at, b.size)) << "row of entry " << a.index;
  }
  ASSERT_EQ(rows1.name_list().size(), rows2.name_list().size());
  for (size_t i = 0; i < rows1.name_list().size(); ++i) {
    const auto& a = rows1.name_list()[i];
    const auto& b = rows2.name_list()[i];
    EXPECT_EQ(a.index, b.index);
    EXPECT_EQ(rows1.arena(a.at, a.size), rows2.arena(b.at, b.size));
  }
  // The impersonated create's row names who it acted as, and its agent cut.
  bool saw_as = false;
  for (const auto& r : rows2.row_list()) {
    index::EventRowView v;
    ASSERT_TRUE(index::DecodeEventRow(r.index, rows2.arena(r.at, r.size), &v).ok());
    if (v.as == "system:serviceaccount:team-a:deployer") {
      saw_as = true;
      EXPECT_EQ(v.ua, std::string(256, 'k'));
    }
  }
  EXPECT_TRUE(saw_as);
  auto snapshot = [](const StateStore& s) {
    std::string out;
    EXPECT_TRUE(s.EncodeSnapshot([&](std::string_view part) {
                  out.append(part);
                  return OkStatus();
                }).ok());
    return out;
  };
  {
    std::shared_lock lock(v2.mutex());
    EXPECT_GE(v2.object_count(), 3u);  // web-0, the generated pod, imp, and the corpus' objects
    const int64_t id = v2.FindUid(0, "uid-imp");
    ASSERT_GE(id, 0);
    EXPECT_GE(v2.object(static_cast<uint32_t>(id)).versions.size(), 2u);  // its create and update
  }
  EXPECT_EQ(snapshot(v1), snapshot(v2));
}

}  // namespace
}  // namespace annals::state
