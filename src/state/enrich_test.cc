// Tests for flow enrichment in process (Questions::EnrichFlow/EnrichFlows):
// the rendered workload comes from the projection alone, and a cached
// fragment is re-rendered when a Service or an owner changes under it.
// Objects are the shared corpus's k9s fixtures, applied as audit events.
#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#include "ingest/k8s_audit.h"
#include "state/questions.h"
#include "state/state_store.h"

namespace annals::state {
namespace {

using nlohmann::json;

json Corpus(const std::string& rel) {
  std::ifstream in(std::string(ANNALS_CORPUS_DIR) + "/k8s-objects/" + rel, std::ios::binary);
  EXPECT_TRUE(in.good()) << rel;
  std::stringstream ss;
  ss << in.rdbuf();
  return json::parse(ss.str());
}

const Micros kT0 = *ParseRfc3339("2024-03-01T10:00:00Z");
std::string Ts(double s) { return FormatRfc3339(kT0 + static_cast<Micros>(s * 1e6)); }

// A store fed audit events the way the Projector feeds it. Enrichment never
// reads the log, so Questions gets no ledger.
class Enrich : public ::testing::Test {
 protected:
  uint64_t Apply(const std::string& verb, const std::string& resource, const json& obj, double t) {
    const std::string ns = obj["metadata"].value("namespace", "");
    const std::string name = obj["metadata"].value("name", "");
    json ev = {{"kind", "Event"},
               {"apiVersion", "audit.k8s.io/v1"},
               {"level", "RequestResponse"},
               {"auditID", "00000000-0000-4000-8000-" + std::to_string(100000000000 + next_)},
               {"stage", "ResponseComplete"},
               {"requestURI", "/api/v1/namespaces/" + ns + "/" + resource + "/" + name},
               {"verb", verb},
               {"user", {{"username", "admin"}}},
               {"sourceIPs", {"172.18.0.1"}},
               {"objectRef", {{"resource", resource}, {"namespace", ns}, {"name", name}, {"apiVersion", "v1"}}},
               {"responseStatus", {{"metadata", json::object()}, {"code", verb == "create" ? 201 : 200}}},
               {"responseObject", obj},
               {"requestReceivedTimestamp", Ts(t)},
               {"stageTimestamp", Ts(t)}};
    const std::string payload = ev.dump();
    auto parsed = ingest::ParseAuditEvent(payload, "test event");
    EXPECT_TRUE(parsed.ok()) << parsed.status().ToString();
    EXPECT_TRUE(store_.Apply(next_, ingest::AuditMeta(*parsed, "k8s-audit", Ts(t)), payload, nullptr).ok());
    return next_++;
  }

  json Pod(const std::string& name, const std::string& uid, const std::string& ip, const json& owner) {
    json p = Corpus("k9s/po.json");
    p["metadata"]["namespace"] = "shop";
    p["metadata"]["name"] = name;
    p["metadata"]["uid"] = uid;
    p["metadata"]["labels"] = {{"app", "cart"}, {"tier", "web \"edge\""}};
    p["metadata"]["ownerReferences"] = json::array({owner});
    p["spec"]["serviceAccountName"] = "cart-sa";
    p["status"]["phase"] = "Running";
    p["status"]["podIP"] = ip;
    p["status"]["podIPs"] = {{{"ip", ip}}};
    return p;
  }
  json Service(const std::string& name, const std::string& uid, const json& selector) {
    json s = Corpus("k9s/svc.json");
    s["metadata"]["namespace"] = "shop";
    s["metadata"]["name"] = name;
    s["metadata"]["uid"] = uid;
    s["spec"]["selector"] = selector;
    return s;
  }
  static json Ref(const std::string& kind, const std::string& name, const std::string& uid) {
    return {{"apiVersion", "apps/v1"}, {"kind", kind}, {"name", name}, {"uid", uid}, {"controller", true}};
  }
  json Flow(double t, const std::string& src, const std::string& dst) {
    json f = json::parse(R"({"flow":{"time":"","verdict":"FORWARDED","IP":{"source":"","destination":"",
                              "ipVersion":"IPv4"}},"node_name":"kind-control-plane"})");
    f["flow"]["time"] = Ts(t);
    f["flow"]["IP"]["source"] = src;
    f["flow"]["IP"]["destination"] = dst;
    return f;
  }
  json EnrichOne(const json& flow) {
    auto out = questions_.EnrichFlow(flow.dump());
    EXPECT_TRUE(out.ok()) << out.status().ToString();
    return out.ok() ? json::parse(*out) : json();
  }

  StateStore store_;
  Questions questions_{nullptr, &store_, nullptr};
  uint64_t next_ = 0;
};

TEST_F(Enrich, WorkloadComesFromTheProjectionWithOwnerLabelsAndServices) {
  json rs = Corpus("k9s/rs.json");
  rs["metadata"]["namespace"] = "shop";
  rs["metadata"]["ownerReferences"] = json::array({Ref("Deployment", "cart", "uid-dep")});
  json dep = Corpus("k9s/dp.json");
  dep["metadata"]["namespace"] = "shop";
  dep["metadata"]["name"] = "cart";
  dep["metadata"]["uid"] = "uid-dep";
  dep["metadata"].erase("ownerReferences");
  const uint64_t dep_index = Apply("create", "deployments", dep, 0);
  Apply("create", "replicasets", rs, 1);
  Apply("create", "services", Service("cart", "uid-svc", {{"app", "cart"}}), 2);
  Apply("create", "services", Service("other", "uid-svc2", {{"app", "other"}}), 2);
  Apply("create", "services", Service("none", "uid-svc3", json::object()), 2);
  const uint64_t pod_index = Apply("create", "pods",
                                   Pod("cart-1", "uid-p1", "10.244.1.2", Ref("ReplicaSet", rs["metadata"]["name"],
                                                                             rs["metadata"]["uid"])),
                                   3);
  const json in = Flow(10, "10.244.1.2", "93.184.216.34");
  auto first = questions_.EnrichFlow(in.dump());
  ASSERT_TRUE(first.ok());
  const json out = json::parse(*first);
  json back = out;
  back.erase("src_workload");
  back.erase("dst_workload");
  EXPECT_EQ(back, in);
  const json& w = out["src_workload"];
  EXPECT_EQ(w["namespace"], "shop");
  EXPECT_EQ(w["pod"], "cart-1");
  EXPECT_EQ(w["uid"], "uid-p1");
  EXPECT_EQ(w["labels"], (json{{"app", "cart"}, {"tier", "web \"edge\""}}));
  EXPECT_EQ(w["service_account"], "cart-sa");
  EXPECT_EQ(w["index"], pod_index);
  EXPECT_EQ(w["services"], json::array({"cart"}));  // an empty selector selects nothing
  EXPECT_EQ(w["owner"], (json{{"kind", "Deployment"}, {"name", "cart"}, {"uid", "uid-dep"}, {"index", dep_index}}));
  EXPECT_TRUE(out["dst_workload"].is_null());
  // Cached: the same bytes again.
  EXPECT_EQ(*questions_.EnrichFlow(in.dump()), *first);
  // Before the pod held the IP: nobody.
  EXPECT_TRUE(EnrichOne(Flow(1, "10.244.1.2", "10.244.1.2"))["src_workload"].is_null());
}

TEST_F(Enrich, CachedWorkloadFollowsServiceChangesAtTheFlowsTime) {
  Apply("create", "pods", Pod("cart-1", "uid-p1", "10.244.1.2", Ref("ReplicaSet", "rs", "uid-rs-unknown")), 0);
  EXPECT_EQ(EnrichOne(Flow(10, "10.244.1.2", ""))["src_workload"]["services"], json::array());
  // A Service created at 20 (applied after the first answer was cached).
  Apply("create", "services", Service("cart", "uid-svc", {{"app", "cart"}}), 20);
  EXPECT_EQ(EnrichOne(Flow(10, "10.244.1.2", ""))["src_workload"]["services"], json::array());
  EXPECT_EQ(EnrichOne(Flow(30, "10.244.1.2", ""))["src_workload"]["services"], json::array({"cart"}));
  // Its selector changed at 40: it no longer selects the pod.
  Apply("update", "services", Service("cart", "uid-svc", {{"app", "basket"}}), 40);
  EXPECT_EQ(EnrichOne(Flow(30, "10.244.1.2", ""))["src_workload"]["services"], json::array({"cart"}));
  EXPECT_EQ(EnrichOne(Flow(50, "10.244.1.2", ""))["src_workload"]["services"], json::array());
  // A late event (applied now, time 15) changes what held before 20.
  Apply("create", "services", Service("early", "uid-svc-early", {{"tier", "web \"edge\""}}), 15);
  EXPECT_EQ(EnrichOne(Flow(16, "10.244.1.2", ""))["src_workload"]["services"], json::array({"early"}));
  // An owner the ledger does not know: the link without an index.
  EXPECT_EQ(EnrichOne(Flow(16, "10.244.1.2", ""))["src_workload"]["owner"],
            (json{{"kind", "ReplicaSet"}, {"name", "rs"}, {"uid", "uid-rs-unknown"}}));
}

TEST_F(Enrich, LateOwnerEventIsSeenByACachedWorkload) {
  json rs = Corpus("k9s/rs.json");
  rs["metadata"]["namespace"] = "shop";
  rs["metadata"].erase("ownerReferences");
  const std::string rs_name = rs["metadata"]["name"], rs_uid = rs["metadata"]["uid"];
  Apply("create", "replicasets", rs, 0);
  Apply("create", "pods", Pod("cart-1", "uid-p1", "10.244.1.2", Ref("ReplicaSet", rs_name, rs_uid)), 5);
  EXPECT_EQ(EnrichOne(Flow(10, "10.244.1.2", ""))["src_workload"]["owner"]["kind"], "ReplicaSet");
  // The ReplicaSet's adoption by a Deployment at 2 arrives late.
  rs["metadata"]["ownerReferences"] = json::array({Ref("Deployment", "cart", "uid-dep")});
  Apply("update", "replicasets", rs, 2);
  const json owner = EnrichOne(Flow(10, "10.244.1.2", ""))["src_workload"]["owner"];
  EXPECT_EQ(owner["kind"], "Deployment");
  EXPECT_EQ(owner["name"], "cart");
}

TEST_F(Enrich, BadLinesAreRejectedWithTheirLineNumber) {
  Apply("create", "pods", Pod("cart-1", "uid-p1", "10.244.1.2", Ref("ReplicaSet", "rs", "uid-rs")), 0);
  const std::string good = Flow(10, "10.244.1.2", "not an ip").dump();
  const std::string t = Ts(10);
  for (const std::string& bad :
       {std::string("not json"), std::string("[1,2]"), std::string("{}"),
        std::string("{\"flow\":{\"time\":\"yesterday\"}}"), std::string("{\"time\":12}"),
        std::string("{\"flow\":{}} trailing"), std::string("{\"a\":\"\xff\"}"),
        // Repeated keys where the enricher reads (which value counts would
        // differ between it and the reader of the answer), and a flow that
        // already carries what the answer adds.
        R"({"time":")" + t + R"(","src_ip":"10.244.1.2","src_ip":"10.9.9.9"})",
        R"({"flow":{"time":")" + t + R"(","IP":{"source":"10.244.1.2","source":"10.9.9.9"}}})",
        R"({"flow":{"time":")" + t + R"(","time":")" + t + R"("}})",
        R"({"time":")" + t + R"(","src_ip":"10.244.1.2","src_workload":{"pod":"forged"}})"}) {
    SCOPED_TRACE(bad);
    std::string out;
    Status s = questions_.EnrichFlows(good + "\n\n" + bad + "\n" + good + "\n", &out);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
    EXPECT_NE(s.message().find("line 3"), std::string::npos) << s.message();
  }
  std::string out;
  size_t count = 0;
  ASSERT_TRUE(questions_.EnrichFlows(good + "\r\n" + good + "\n", &out, &count).ok());
  EXPECT_EQ(count, 2u);
  std::stringstream ss(out);
  int lines = 0;
  for (std::string l; std::getline(ss, l); ++lines) {
    json j = json::parse(l);
    EXPECT_EQ(j["src_workload"]["pod"], "cart-1");
    EXPECT_TRUE(j["dst_workload"].is_null());  // not an address
  }
  EXPECT_EQ(lines, 2);
  // The flat form, and an empty object but for the time.
  json flat = json::parse(*questions_.EnrichFlow(
      R"({"time":")" + Ts(10) + R"(","src_ip":"10.244.1.2","dst_ip":"::ffff:10.244.1.2"})"));
  EXPECT_EQ(flat["dst_workload"]["pod"], "cart-1");
  EXPECT_EQ(*questions_.EnrichFlow(R"({"time":")" + Ts(10) + "\"} \n"),
            R"({"time":")" + Ts(10) + R"(","src_workload":null,"dst_workload":null})");
}

// EnrichFlows takes lines through the lookup in batches (of 32), prefetching:
// its answer must be, line for line, what EnrichFlow gives each line alone,
// across batch boundaries, with both shapes, reused addresses and misses.
TEST_F(Enrich, BatchedBodyEqualsLineByLine) {
  Apply("create", "pods", Pod("cart-1", "uid-p1", "10.244.1.2", Ref("ReplicaSet", "rs", "uid-rs")), 0);
  Apply("delete", "pods", Pod("cart-1", "uid-p1", "10.244.1.2", Ref("ReplicaSet", "rs", "uid-rs")), 50);
  Apply("create", "pods", Pod("cart-2", "uid-p2", "10.244.1.2", Ref("ReplicaSet", "rs", "uid-rs")), 60);
  Apply("create", "pods", Pod("cart-3", "uid-p3", "fd00::3", Ref("ReplicaSet", "rs", "uid-rs")), 0);
  // Many versions of one pod (a label per version): the batched search of
  // the versions takes several probes.
  for (int v = 1; v <= 37; ++v) {
    json p = Pod("cart-3", "uid-p3", "fd00::3", Ref("ReplicaSet", "rs", "uid-rs"));
    p["metadata"]["labels"]["version"] = std::to_string(v);
    p["metadata"]["resourceVersion"] = std::to_string(900000 + v);
    Apply("update", "pods", p, v * 2.3);
  }
  Apply("create", "services", Service("cart", "uid-s1", {{"app", "cart"}}), 30);
  std::string body, want;
  const char* addrs[] = {"10.244.1.2", "fd00::3", "10.9.9.9", "not an ip", "::ffff:10.244.1.2"};
  for (int i = 0; i < 100; ++i) {
    const double t = (i * 7) % 90;
    std::string line = i % 3 ? Flow(t, addrs[i % 5], addrs[(i / 5) % 5]).dump()
                             : json{{"time", Ts(t)}, {"src_ip", addrs[(i / 5) % 5]}, {"dst_ip", addrs[i % 5]}}.dump();
    auto one = questions_.EnrichFlow(line);
    ASSERT_TRUE(one.ok()) << one.status().ToString();
    want += *one + "\n";
    body += line + (i % 10 ? "\n" : "\r\n");
  }
  std::string got;
  size_t count = 0;
  ASSERT_TRUE(questions_.EnrichFlows(body, &got, &count).ok());
  EXPECT_EQ(count, 100u);
  EXPECT_EQ(got, want);
  // And the workloads are the ones of each flow's time: cart-1 before the
  // delete at 50 s, cart-2 from 60 s.
  EXPECT_NE(want.find("\"pod\":\"cart-1\""), std::string::npos);
  EXPECT_NE(want.find("\"pod\":\"cart-2\""), std::string::npos);
  EXPECT_NE(want.find("\"pod\":\"cart-3\""), std::string::npos);
  std::set<std::string> versions;  // of cart-3 seen, by its label
  for (size_t at = 0; (at = want.find("\"version\":\"", at)) != std::string::npos; at += 11)
    versions.insert(want.substr(at + 11, want.find('"', at + 11) - at - 11));
  EXPECT_GE(versions.size(), 10u);
}

// A render cache of one set (four ways) for nine pods: every few flows
// evict a workload, which must come back rendered again, the same.
TEST_F(Enrich, EvictionFromASmallRenderCacheKeepsAnswersRight) {
  Questions small(nullptr, &store_, nullptr, 1);
  for (int p = 0; p < 9; ++p)
    Apply("create", "pods",
          Pod("cart-" + std::to_string(p), "uid-p" + std::to_string(p), "10.244.2." + std::to_string(p + 1),
              Ref("ReplicaSet", "rs", "uid-rs")),
          p);
  std::string body, want;
  for (int i = 0; i < 200; ++i) {
    const std::string line =
        Flow(20 + i % 7, "10.244.2." + std::to_string(i % 9 + 1), "10.244.2." + std::to_string((i * 4) % 9 + 1)).dump();
    auto one = questions_.EnrichFlow(line);
    ASSERT_TRUE(one.ok()) << one.status().ToString();
    want += *one + "\n";
    body += line + "\n";
  }
  for (int pass = 0; pass < 2; ++pass) {
    std::string got;
    ASSERT_TRUE(small.EnrichFlows(body, &got).ok());
    EXPECT_EQ(got, want);
  }
  for (int p = 0; p < 9; ++p) EXPECT_NE(want.find("\"pod\":\"cart-" + std::to_string(p) + "\""), std::string::npos);
}

// Threads share the render cache (its per-set spin locks) and read the
// store while another thread applies new versions: with one set of four
// ways for nine pods, entries are evicted and re-rendered all the time.
// The new pods live after every flow's time, so each answer stays what
// one thread alone computes. Under ThreadSanitizer (build-tsan) this also
// checks the cache's and the store's locking.
TEST_F(Enrich, ConcurrentEnrichmentWhileVersionsArriveGivesTheSingleThreadedAnswers) {
  Questions small(nullptr, &store_, nullptr, 1);
  for (int p = 0; p < 9; ++p)
    Apply("create", "pods",
          Pod("cart-" + std::to_string(p), "uid-p" + std::to_string(p), "10.244.3." + std::to_string(p + 1),
              Ref("ReplicaSet", "rs", "uid-rs")),
          p);
  std::string body, want;
  for (int i = 0; i < 100; ++i) {
    const std::string line =
        Flow(20 + i % 5, "10.244.3." + std::to_string(i % 9 + 1), "10.244.3." + std::to_string((i * 4) % 9 + 1)).dump();
    auto one = questions_.EnrichFlow(line);
    ASSERT_TRUE(one.ok()) << one.status().ToString();
    want += *one + "\n";
    body += line + "\n";
  }
  std::atomic<bool> stop{false};
  std::atomic<int> mismatches{0}, passes{0};
  auto reader = [&] {
    while (!stop.load()) {
      std::string got;
      if (!small.EnrichFlows(body, &got).ok() || got != want) mismatches.fetch_add(1);
      passes.fetch_add(1);
    }
  };
  std::thread r1(reader), r2(reader);
  // Later pods (from t=1000 on), on addresses of their own.
  for (int p = 0; p < 60; ++p)
    Apply("create", "pods",
          Pod("late-" + std::to_string(p), "uid-l" + std::to_string(p), "10.244.4." + std::to_string(p + 1),
              Ref("ReplicaSet", "rs", "uid-rs")),
          1000 + p);
  while (passes.load() < 20) std::this_thread::yield();
  stop = true;
  r1.join();
  r2.join();
  EXPECT_EQ(mismatches.load(), 0);
  EXPECT_GE(passes.load(), 20);
}

}  // namespace
}  // namespace annals::state
