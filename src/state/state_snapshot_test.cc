// State snapshots: a snapshot loaded and then the rest of the log applied
// gives the very store that applying the whole log gives (compared through
// its encoding, which covers every member, and through the questions'
// accessors); malformed bodies and damaged files are refused, never
// half-loaded. The history is generated from real objects of the shared
// corpus (k9s fixtures): Deployments, ReplicaSets, pods that own IPs from a
// small reused pool (some dual-stack), Services and their selectors, Helm
// instances, graceful deletes, events out of time order, Metadata-level
// reads and watch entries.
#include "state/state_snapshot.h"
#include "state/cold_objects.h"

#include <gtest/gtest.h>
#include <cstring>
#include <sys/stat.h>
#include <sys/mount.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "common/file_util.h"
#include "ingest/k8s_audit.h"
#include "ingest/k8s_watch.h"
#include "ingest/ingestor.h"

namespace annals::state {
namespace {

using nlohmann::json;

json Fixture(const std::string& rel) {
  std::ifstream in(std::string(ANNALS_CORPUS_DIR) + "/k8s-objects/" + rel, std::ios::binary);
  EXPECT_TRUE(in.good()) << rel;
  std::stringstream ss;
  ss << in.rdbuf();
  return json::parse(ss.str());
}

const Micros kT0 = *ParseRfc3339("2024-03-01T10:00:00Z");

// One ledger entry: meta and payload as the server stores them.
struct Entry {
  std::string meta, payload;
};

Entry Audit(int serial, const std::string& verb, const std::string& resource, const std::string& ns,
            const std::string& name, Micros t, const json& response, int code = 200) {
  json ref = {{"resource", resource}, {"namespace", ns}, {"name", name}, {"apiVersion", "v1"}};
  json j = {{"kind", "Event"},
            {"apiVersion", "audit.k8s.io/v1"},
            {"level", response.is_null() ? "Metadata" : "RequestResponse"},
            {"auditID", "00000000-0000-4000-8000-" + std::to_string(100000000000 + serial)},
            {"stage", "ResponseComplete"},
            {"verb", verb},
            {"user", {{"username", serial % 3 ? "system:node:worker-1" : "alice"}, {"groups", {"system:nodes"}}}},
            {"sourceIPs", {"172.18.0.3"}},
            {"userAgent", "kubelet/v1.29.2"},
            {"objectRef", ref},
            {"responseStatus", {{"metadata", json::object()}, {"code", code}}},
            {"stageTimestamp", FormatRfc3339(t)}};
  if (!response.is_null()) j["responseObject"] = response;
  Entry e;
  e.payload = j.dump();
  auto ev = ingest::ParseAuditEvent(e.payload, "test event");
  EXPECT_TRUE(ev.ok()) << ev.status().ToString();
  e.meta = ingest::AuditMeta(*ev, "k8s-audit", FormatRfc3339(t));
  return e;
}

Entry Watch(const json& object, const std::string& resource, const std::string& kind, Micros t) {
  Entry e;
  e.payload = object.dump();
  ingest::WatchRecord r;
  r.type = ingest::WatchRecord::kModified;
  r.version = "v1";
  r.resource = resource;
  r.kind = kind;
  r.head = *ingest::ReadObjectHead(e.payload);
  r.object = e.payload;
  e.meta = ingest::WatchMeta(r, "k8s-watch", FormatRfc3339(t));
  return e;
}

// A generated history of n entries (deterministic for a seed).
std::vector<Entry> History(size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  auto pick = [&](size_t k) { return static_cast<size_t>(rng() % k); };
  const json pod0 = Fixture("k9s/po.json"), svc0 = Fixture("k9s/svc.json"), dp0 = Fixture("k9s/dp.json"),
             rs0 = Fixture("k9s/rs.json");
  const std::vector<std::string> nss = {"shop", "icx"};
  std::vector<Entry> out;
  Micros t = kT0;
  int rv = 1000;
  std::map<std::string, json> live;  // uid -> last body
  while (out.size() < n) {
    t += static_cast<Micros>(1 + pick(30)) * 1000000;
    // Now and then an event from the past (late delivery).
    const Micros when = pick(10) == 0 ? t - static_cast<Micros>(pick(600)) * 1000000 : t;
    const std::string ns = nss[pick(nss.size())];
    const size_t app = pick(4);
    const std::string appname = "app" + std::to_string(app);
    const int serial = static_cast<int>(out.size());
    switch (pick(8)) {
      case 0: {  // Deployment + ReplicaSet
        json dp = dp0;
        dp["metadata"]["namespace"] = ns;
        dp["metadata"]["name"] = appname;
        dp["metadata"]["uid"] = "dp-" + ns + "-" + appname;
        dp["metadata"]["labels"] = {{"app", appname}, {"app.kubernetes.io/instance", "rel" + std::to_string(app % 2)}};
        dp["metadata"]["resourceVersion"] = std::to_string(++rv);
        out.push_back(Audit(serial, live.count(dp["metadata"]["uid"]) ? "patch" : "create", "deployments", ns,
                            appname, when, dp, 201));
        live[dp["metadata"]["uid"]] = dp;
        break;
      }
      case 1: {  // ReplicaSet owned by the Deployment
        json rs = rs0;
        const std::string name = appname + "-" + std::to_string(pick(3));
        rs["metadata"]["namespace"] = ns;
        rs["metadata"]["name"] = name;
        rs["metadata"]["uid"] = "rs-" + ns + "-" + name;
        rs["metadata"]["resourceVersion"] = std::to_string(++rv);
        rs["metadata"]["ownerReferences"] = {
            {{"kind", "Deployment"}, {"name", appname}, {"uid", "dp-" + ns + "-" + appname}, {"controller", true}}};
        out.push_back(Audit(serial, "create", "replicasets", ns, name, when, rs, 201));
        break;
      }
      case 2:
      case 3: {  // a pod, new or updated, with an IP from a small pool
        const std::string name = appname + "-pod-" + std::to_string(pick(5));
        const std::string uid = "pod-" + ns + "-" + name + "-" + std::to_string(pick(2));
        json p = live.count(uid) ? live[uid] : pod0;
        p["metadata"]["namespace"] = ns;
        p["metadata"]["name"] = name;
        p["metadata"]["uid"] = uid;
        p["metadata"]["labels"] = {{"app", appname}, {"tier", pick(2) ? "web" : "db"}};
        p["metadata"]["resourceVersion"] = std::to_string(++rv);
        p["metadata"]["ownerReferences"] = {{{"kind", "ReplicaSet"},
                                             {"name", appname + "-0"},
                                             {"uid", "rs-" + ns + "-" + appname + "-0"},
                                             {"controller", true}}};
        p["status"]["phase"] = pick(6) == 0 ? "Succeeded" : "Running";
        const std::string ip = "10.244.0." + std::to_string(1 + pick(6));
        p["status"]["podIP"] = ip;
        p["status"]["podIPs"] = {{{"ip", ip}}};
        if (pick(5) == 0) p["status"]["podIPs"].push_back({{"ip", "fd00::" + std::to_string(1 + pick(4))}});
        if (pick(7) == 0) {
          out.push_back(Watch(p, "pods", "Pod", when));
        } else {
          out.push_back(Audit(serial, live.count(uid) ? "update" : "create", "pods", ns, name, when, p,
                              live.count(uid) ? 200 : 201));
        }
        live[uid] = p;
        break;
      }
      case 4: {  // delete a pod: graceful, then final
        for (auto& [uid, body] : live) {
          if (body.value("kind", "") != "Pod" || pick(3)) continue;
          json d = body;
          const std::string name = d["metadata"]["name"];
          const std::string pns = d["metadata"]["namespace"];
          d["metadata"]["deletionTimestamp"] = FormatRfc3339(when);
          d["metadata"]["deletionGracePeriodSeconds"] = 30;
          d["metadata"]["resourceVersion"] = std::to_string(++rv);
          out.push_back(Audit(serial, "delete", "pods", pns, name, when, d));
          if (pick(2)) {
            d["metadata"]["deletionGracePeriodSeconds"] = 0;
            d["metadata"]["resourceVersion"] = std::to_string(++rv);
            out.push_back(Audit(serial + 100000, "delete", "pods", pns, name, when + 1000000, d));
          }
          live.erase(uid);
          break;
        }
        break;
      }
      case 5: {  // a Service selecting app=appN (sometimes tier too)
        json s = svc0;
        const std::string name = appname + "-svc";
        s["metadata"]["namespace"] = ns;
        s["metadata"]["name"] = name;
        s["metadata"]["uid"] = "svc-" + ns + "-" + name;
        s["metadata"]["resourceVersion"] = std::to_string(++rv);
        s["spec"]["selector"] = {{"app", appname}};
        if (pick(2)) s["spec"]["selector"]["tier"] = "web";
        out.push_back(Audit(serial, "update", "services", ns, name, when, s));
        break;
      }
      case 6: {  // a Helm release's ConfigMap
        json cm = {{"kind", "ConfigMap"},
                   {"apiVersion", "v1"},
                   {"metadata",
                    {{"name", appname + "-config"},
                     {"namespace", ns},
                     {"uid", "cm-" + ns + "-" + appname},
                     {"resourceVersion", std::to_string(++rv)},
                     {"annotations", {{"meta.helm.sh/release-name", "rel" + std::to_string(app % 2)}}}}}};
        out.push_back(Audit(serial, "create", "configmaps", ns, appname + "-config", when, cm, 201));
        break;
      }
      default:  // a Metadata-level read
        out.push_back(Audit(serial, "get", "pods", ns, appname + "-pod-0", when, json()));
    }
  }
  out.resize(n);
  return out;
}

void ApplyAll(StateStore* s, const std::vector<Entry>& es, size_t from, size_t to) {
  for (size_t i = from; i < to; ++i) {
    Status st = s->Apply(i, es[i].meta, es[i].payload, nullptr);
    ASSERT_TRUE(st.ok()) << i << ": " << st.ToString();
  }
  s->SetApplied(to);
}

std::string Encode(const StateStore& s) {
  std::string out;
  Status st = s.EncodeSnapshot([&](std::string_view piece) {
    out.append(piece);
    return OkStatus();
  });
  EXPECT_TRUE(st.ok()) << st.ToString();
  return out;
}

// What the questions read, for a few addresses and times.
std::string Answers(const StateStore& s) {
  std::shared_lock lock(s.mutex());
  std::string out;
  for (int k = 1; k <= 6; ++k)
    for (int m = 0; m < 200; m += 7) {
      const IpInterval *before = nullptr, *after = nullptr;
      const IpInterval* iv = s.PodByIp(*ParseIp("10.244.0." + std::to_string(k)), kT0 + m * 15 * 1000000ll, &before, &after);
      out += iv ? s.object(iv->pod).uid : "-";
      out += before ? "<" + std::to_string(before->start_index) : "";
      out += after ? ">" + std::to_string(after->start_index) : "";
      out += ";";
    }
  for (uint32_t id = 0; id < s.object_count(); ++id) {
    const Object& o = s.object(id);
    out += o.uid + ":" + std::to_string(s.FindUid(o.cluster, o.uid)) + ":" + std::to_string(s.Children(o.cluster, o.uid).size()) + ":" +
           std::to_string(s.ByName(o.cluster, o.resource, o.ns, o.name).size()) + ";";
  }
  for (const char* ns : {"shop", "icx"}) {
    const uint32_t n = s.strings().Find(ns);
    out += std::to_string(s.Instance(0, n, "rel0").size()) + "/" + std::to_string(s.Instance(0, n, "rel1").size()) + "/" +
           std::to_string(s.Objects(s.pods_id(), n, false).size()) + "/" + std::to_string(s.ServiceEpoch(n, kT0 + 3600000000ll)) +
           "/" + std::to_string(s.late_generation(n)) + ";";
  }
  return out;
}

TEST(StateSnapshot, EncodeDecodeEncodeIsTheSameBytes) {
  const auto es = History(600, 1);
  StateStore a;
  ApplyAll(&a, es, 0, es.size());
  const std::string body = Encode(a);
  StateStore b;
  ASSERT_TRUE(b.DecodeSnapshot(body).ok());
  EXPECT_EQ(b.applied(), es.size());
  EXPECT_EQ(Encode(b), body);
  EXPECT_EQ(Answers(b), Answers(a));
  // The history is not trivial: pods held addresses, Services select.
  std::shared_lock lock(a.mutex());
  EXPECT_GT(a.object_count(), 40u);
  EXPECT_NE(a.PodByIp(*ParseIp("10.244.0.1"), kT0 + 3600ll * 1000000 * 24, nullptr, nullptr), nullptr);
}

// The same history from two clusters (the same uids, names and
// addresses): each cluster's objects, owners, Services and addresses are
// those of the history alone, never the other cluster's; and the
// snapshot keeps them apart.
TEST(StateSnapshot, TwoClustersOfTheSameHistoryAreKeptApart) {
  const auto es = History(300, 4);
  StateStore alone;
  ApplyAll(&alone, es, 0, es.size());
  std::vector<Entry> both;  // east's entry i at 2i, west's at 2i+1
  for (const Entry& e : es)
    for (const char* cluster : {"east", "west"}) {
      ingest::IngestItem item{e.meta, e.payload, ""};
      ASSERT_TRUE(ingest::BindCluster(cluster, &item).ok());
      both.push_back({item.meta, e.payload});
    }
  StateStore two;
  ApplyAll(&two, both, 0, both.size());
  StateStore loaded;
  ASSERT_TRUE(loaded.DecodeSnapshot(Encode(two)).ok());
  EXPECT_EQ(Encode(loaded), Encode(two));
  for (const StateStore* s : {&two, &loaded}) {
    std::shared_lock lock(s->mutex());
    std::shared_lock lock_alone(alone.mutex());
    const Strings& S = s->strings();
    ASSERT_EQ(s->clusters().size(), 2u);
    EXPECT_EQ(s->object_count(), 2 * alone.object_count());
    for (uint32_t id = 0; id < alone.object_count(); ++id) {
      const Object& a = alone.object(id);
      for (int side = 0; side < 2; ++side) {
        const uint32_t c = S.Find(side ? "west" : "east");
        SCOPED_TRACE(a.uid + (side ? " west" : " east"));
        const int64_t found = s->FindUid(c, a.uid);
        ASSERT_GE(found, 0);
        const Object& o = s->object(static_cast<uint32_t>(found));
        EXPECT_EQ(o.cluster, c);
        ASSERT_EQ(o.versions.size(), a.versions.size());
        for (size_t k = 0; k < a.versions.size(); ++k) EXPECT_EQ(o.versions[k].index, 2 * a.versions[k].index + side);
        // Names, owners and instances lead only to this cluster's objects.
        const auto by_name = s->ByName(c, S.Find(alone.strings().Get(a.resource)), S.Find(alone.strings().Get(a.ns)),
                                       S.Find(alone.strings().Get(a.name)));
        EXPECT_EQ(by_name.size(), alone.ByName(0, a.resource, a.ns, a.name).size());
        for (uint32_t x : by_name) EXPECT_EQ(s->names(x).cluster, c);
        EXPECT_EQ(s->Children(c, o.uid).size(), alone.Children(0, a.uid).size());
        for (uint32_t x : s->Children(c, o.uid)) EXPECT_EQ(s->names(x).cluster, c);
        for (size_t k = 0; k < o.versions.size(); ++k) {
          const Micros t = o.versions[k].time;
          const auto chain = s->Owners(c, o.versions[k], t);
          const auto chain_alone = alone.Owners(0, a.versions[k], t);
          ASSERT_EQ(chain.size(), chain_alone.size());
          for (size_t j = 0; j < chain.size(); ++j) {
            ASSERT_EQ(chain[j].version != nullptr, chain_alone[j].version != nullptr);
            if (chain[j].version) {
              EXPECT_EQ(chain[j].version->index, 2 * chain_alone[j].version->index + side);
            }
          }
          if (o.resource != s->pods_id()) continue;
          const auto services = s->SelectingServices(c, o.ns, s->label_set(o.versions[k].labels), t);
          const auto services_alone = alone.SelectingServices(0, a.ns, alone.label_set(a.versions[k].labels), t);
          ASSERT_EQ(services.size(), services_alone.size());
          for (size_t j = 0; j < services.size(); ++j) {
            EXPECT_EQ(s->names(services[j].first).cluster, c);
            EXPECT_EQ(services[j].second->index, 2 * services_alone[j].second->index + side);
          }
        }
      }
    }
    // Every address's intervals: each cluster's pods, as in the history alone.
    for (int k = 1; k <= 6; ++k) {
      const IpKey ip = *ParseIp("10.244.0." + std::to_string(k));
      const auto* list = s->IpIntervals(ip);
      const auto* list_alone = alone.IpIntervals(ip);
      ASSERT_EQ(list ? list->size() : 0, 2 * (list_alone ? list_alone->size() : 0));
      size_t east = 0;
      for (const IpInterval& iv : list ? *list : std::vector<IpInterval>{})
        east += S.Get(s->names(iv.pod).cluster) == "east" && iv.start_index % 2 == 0;
      EXPECT_EQ(east, list_alone ? list_alone->size() : 0);
    }
  }
}

// The fuzzer's seeds (fuzz/corpus/state_snapshot) are bodies of the
// current format: a format change that forgot them fails here.
// ANNALS_WRITE_FUZZ_SEEDS=1 writes them anew.
TEST(StateSnapshot, TheFuzzerSeedsAreOfTheCurrentFormat) {
  const std::string dir = std::string(ANNALS_SOURCE_DIR) + "/fuzz/corpus/state_snapshot/";
  for (auto [n, seed, name] : {std::tuple{40, 5u, "generated_pods_services_watch"}, std::tuple{12, 6u, "generated_small"}}) {
    StateStore a;
    const auto es = History(n, seed);
    ApplyAll(&a, es, 0, es.size());
    const std::string body = Encode(a);
    if (std::getenv("ANNALS_WRITE_FUZZ_SEEDS")) std::ofstream(dir + name, std::ios::binary) << body;
    std::ifstream in(dir + name, std::ios::binary);
    const std::string seed_body((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_EQ(seed_body, body) << dir << name << " is not this format's encoding: run with ANNALS_WRITE_FUZZ_SEEDS=1";
    StateStore b;
    EXPECT_TRUE(b.DecodeSnapshot(seed_body).ok()) << name;
  }
}

// The property a start relies on: snapshot after k entries, load, apply
// the rest == apply everything, for every k.
TEST(StateSnapshot, SnapshotThenTheRestEqualsTheWholeLog) {
  for (unsigned seed : {2u, 3u}) {
    const auto es = History(240, seed);
    StateStore whole;
    ApplyAll(&whole, es, 0, es.size());
    const std::string want = Encode(whole);
    const std::string want_answers = Answers(whole);
    for (size_t k = 0; k <= es.size(); k += 7) {
      SCOPED_TRACE("seed " + std::to_string(seed) + " snapshot at " + std::to_string(k));
      StateStore first;
      ApplyAll(&first, es, 0, k);
      StateStore loaded;
      ASSERT_TRUE(loaded.DecodeSnapshot(Encode(first)).ok());
      ApplyAll(&loaded, es, k, es.size());
      EXPECT_EQ(Encode(loaded), want);
      EXPECT_EQ(Answers(loaded), want_answers);
    }
  }
}

TEST(StateSnapshot, MalformedBodiesAreRefusedAndLeaveTheStoreAlone) {
  const auto es = History(120, 4);
  StateStore a;
  ApplyAll(&a, es, 0, es.size());
  const std::string body = Encode(a);
  StateStore fresh;
  const std::string empty = Encode(fresh);
  // Every truncation.
  for (size_t n = 0; n < body.size(); n += std::max<size_t>(1, body.size() / 997)) {
    StateStore s;
    Status st = s.DecodeSnapshot(std::string_view(body).substr(0, n));
    ASSERT_FALSE(st.ok()) << n;
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
    EXPECT_NE(st.message().find("state snapshot"), std::string::npos);
    EXPECT_EQ(Encode(s), empty) << "a refused snapshot changed the store at length " << n;
  }
  // Trailing bytes.
  {
    StateStore s;
    EXPECT_FALSE(s.DecodeSnapshot(body + '\0').ok());
  }
  // Flipped bytes: refused or accepted, never a crash; what is accepted
  // encodes to a body that decodes again.
  std::mt19937 rng(5);
  size_t refused = 0;
  for (int i = 0; i < 3000; ++i) {
    std::string bad = body;
    bad[rng() % bad.size()] ^= static_cast<char>(1 << (rng() % 8));
    StateStore s;
    if (!s.DecodeSnapshot(bad).ok()) {
      ++refused;
      continue;
    }
    StateStore again;
    EXPECT_TRUE(again.DecodeSnapshot(Encode(s)).ok());
  }
  EXPECT_GT(refused, 0u);
}

class SnapshotFile : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/annals-snap-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/projection.snap";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_, path_;
};

TEST_F(SnapshotFile, RoundTripAndTheHeaderIsCheckedBeforeLoading) {
  const auto es = History(200, 6);
  StateStore a;
  ApplyAll(&a, es, 0, es.size());
  Hash last{};
  last[0] = 0xab;
  ASSERT_TRUE(WriteSnapshotFile(path_, a, es.size(), last).ok());
  EXPECT_FALSE(FileExists(path_ + ".tmp"));

  // Refused by the check: the store stays empty.
  StateStore refused;
  auto r = ReadSnapshotFile(path_, &refused, [](const SnapshotHeader&) { return FailedPreconditionError("not this log"); });
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(refused.applied(), 0u);

  StateStore b;
  SnapshotHeader seen;
  auto h = ReadSnapshotFile(path_, &b, [&](const SnapshotHeader& x) {
    seen = x;
    return OkStatus();
  });
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  EXPECT_EQ(h->applied, es.size());
  EXPECT_EQ(seen.last_entry, last);
  EXPECT_EQ(Encode(b), Encode(a));

  // The applied count must be the store's.
  EXPECT_EQ(WriteSnapshotFile(path_, a, es.size() + 1, last).code(), StatusCode::kFailedPrecondition);

  StateStore none;
  EXPECT_EQ(ReadSnapshotFile(dir_ + "/nothing", &none, [](const SnapshotHeader&) { return OkStatus(); }).status().code(),
            StatusCode::kNotFound);
}

TEST_F(SnapshotFile, AFlippedByteAnywhereIsDataLoss) {
  const auto es = History(100, 7);
  StateStore a;
  ApplyAll(&a, es, 0, es.size());
  ASSERT_TRUE(WriteSnapshotFile(path_, a, es.size(), Hash{}).ok());
  auto bytes = ReadFileToString(path_);
  ASSERT_TRUE(bytes.ok());
  for (size_t at : {size_t{0}, size_t{30}, size_t{40}, bytes->size() / 2, bytes->size() - 1}) {
    std::string bad = *bytes;
    bad[at] ^= 0x04;
    ASSERT_TRUE(WriteFileAtomic(path_, bad).ok());
    StateStore s;
    auto r = ReadSnapshotFile(path_, &s, [](const SnapshotHeader&) { return OkStatus(); });
    EXPECT_EQ(r.status().code(), StatusCode::kDataLoss) << "byte " << at;
    EXPECT_EQ(s.applied(), 0u);
  }
  ASSERT_TRUE(WriteFileAtomic(path_, bytes->substr(0, 50)).ok());
  StateStore s;
  EXPECT_EQ(ReadSnapshotFile(path_, &s, [](const SnapshotHeader&) { return OkStatus(); }).status().code(),
            StatusCode::kDataLoss);
}

}  // namespace
}  // namespace annals::state

// ---------------------------------------------------------------------------
// Hot and cold objects: the same answers whether a history is in memory or
// read back from the cold store.

namespace annals::state {
namespace {

// Every version, owner chain and selecting Service the questions read, on
// a grid of times, for every object.
std::string DeepAnswers(const StateStore& s) {
  std::shared_lock lock(s.mutex());
  std::string out = Answers(s);
  for (uint32_t id = 0; id < s.object_count(); ++id) {
    const Object& o = s.object(id);
    out += "\n" + o.uid + " v";
    for (const Version& v : o.versions) out += " " + std::to_string(v.index) + "/" + std::to_string(v.rv);
    out += " i";
    for (const IpInterval& iv : o.intervals) out += " " + std::to_string(iv.start_index) + "-" + std::to_string(iv.end_index);
    for (int m = 0; m < 24 * 12; m += 5) {
      const Micros t = kT0 + m * 300 * 1000000ll;
      const Version* v = s.VersionAt(id, t);
      out += v ? " @" + std::to_string(v->index) + std::string(PresenceName(v->presence)).substr(0, 1) : " @-";
      if (!v || o.resource != s.pods_id()) continue;
      for (const auto& step : s.Owners(o.cluster, *v, t)) out += "<" + step.link->uid + (step.version ? "+" : "");
      for (const auto& [svc, sv] : s.SelectingServices(o.cluster, o.ns, s.label_set(v->labels), t))
        out += "^" + std::to_string(svc) + "/" + std::to_string(sv->index);
    }
  }
  return out;
}

class ColdObjectsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/annals-cold-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::unique_ptr<ColdObjects> Open(const std::string& name) {
    auto c = ColdObjects::Open(dir_ + "/" + name, 8 << 20);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? std::move(*c) : nullptr;
  }
  // Applies [from, to) to a cold store, committing every 16 entries as the
  // projector does per chunk.
  static void ApplyCold(StateStore* s, const std::vector<Entry>& es, size_t from, size_t to) {
    for (size_t i = from; i < to; ++i) {
      Status st = s->Apply(i, es[i].meta, es[i].payload, nullptr);
      ASSERT_TRUE(st.ok()) << i << ": " << st.ToString();
      if (i % 16 == 15) {
        s->SetApplied(i + 1);
        ASSERT_TRUE(s->CommitCold().ok());
      }
    }
    s->SetApplied(to);
    ASSERT_TRUE(s->CommitCold().ok());
  }
  std::string dir_;
};

constexpr Micros kMinute = 60 * 1000000ll;

// A write that fails for want of space leaves RocksDB refusing every later
// write until it is resumed; the store resumes it, so the pending bodies go
// in once space returns, with no restart (the projection had stayed stuck
// until one). A real full disk: a tmpfs, which needs root to mount.
TEST_F(ColdObjectsTest, WritesGoThroughAgainOnceSpaceReturns) {
  const std::string mnt = dir_ + "/mnt";
  ASSERT_EQ(::mkdir(mnt.c_str(), 0700), 0);
  if (::mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=6m") != 0)
    GTEST_SKIP() << "cannot mount a tmpfs (" << std::strerror(errno)
                 << "): a full disk needs root to be made; this test did not run";
  struct Unmount {
    std::string at;
    ~Unmount() { ::umount2(at.c_str(), MNT_DETACH); }
  } unmount{mnt};
  {
    std::FILE* f = std::fopen((mnt + "/other").c_str(), "wb");
    ASSERT_NE(f, nullptr);
    const std::string chunk(1 << 20, 'x');
    for (int i = 0; i < 3; ++i) ASSERT_EQ(std::fwrite(chunk.data(), 1, chunk.size(), f), chunk.size());
    std::fclose(f);
  }
  auto c = ColdObjects::Open(mnt + "/cold", 8 << 20);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  // Incompressible bodies until a commit fails.
  std::mt19937_64 rng(7);
  auto body = [&rng] {
    std::string b(256 << 10, '\0');
    for (auto& ch : b) ch = static_cast<char>(rng());
    return b;
  };
  uint32_t id = 0;
  Status failed;
  std::string last;
  for (; id < 100 && failed.ok(); ++id) {
    last = body();
    (*c)->Put(id, 1, last);
    failed = (*c)->Commit();
  }
  ASSERT_FALSE(failed.ok()) << "the disk never filled";
  const uint32_t pending = id - 1;
  EXPECT_FALSE((*c)->Commit().ok()) << "still full";
  ASSERT_EQ(::unlink((mnt + "/other").c_str()), 0);
  // Tried again as the projector tries its catch-up again. (RocksDB left to
  // itself answered "busy" to Resume() and refused this for as long as
  // anyone waited: 30 s here.)
  Status again = (*c)->Commit();
  for (int i = 0; i < 300 && !again.ok(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    again = (*c)->Commit();
  }
  ASSERT_TRUE(again.ok()) << again.ToString();
  ASSERT_TRUE((*c)->Sync().ok());
  auto got = (*c)->Get(pending, 1);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, last);
}

TEST_F(ColdObjectsTest, AnswersAreTheSameAsWithEverythingInMemory) {
  for (unsigned seed : {1u, 7u}) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    const auto es = History(900, seed);
    StateStore hot;
    ApplyAll(&hot, es, 0, es.size());
    auto cold = Open("cold" + std::to_string(seed));
    StateStore s;
    // A tiny cache: nearly every read of a cold history goes to disk.
    s.set_cold(cold.get(), 2 * kMinute, 4096);
    ApplyCold(&s, es, 0, es.size());
    const auto st = s.cold_stats();
    EXPECT_GT(st.cold, 10u) << "the history has objects gone long enough to leave memory";
    EXPECT_EQ(DeepAnswers(s), DeepAnswers(hot));
    EXPECT_FALSE(s.damaged()) << s.damage();
    EXPECT_GT(s.cold_stats().loads, 0u);
    ASSERT_TRUE(s.CommitCold().ok());
    EXPECT_LE(s.cold_stats().cached_bytes, 4096u) << "trimmed to the budget once readers are done";
  }
}

// Late events bring cold objects back; with a horizon of zero every gone
// object leaves at the next entry, so nearly every late event thaws one.
TEST_F(ColdObjectsTest, LateEventsBringObjectsBackAndTheAnswersHold) {
  const auto es = History(600, 3);
  StateStore hot;
  ApplyAll(&hot, es, 0, es.size());
  auto cold = Open("cold");
  StateStore s;
  s.set_cold(cold.get(), 0, 1 << 20);
  ApplyCold(&s, es, 0, es.size());
  EXPECT_EQ(DeepAnswers(s), DeepAnswers(hot));
  std::vector<std::pair<uint32_t, uint64_t>> garbage;
  ASSERT_TRUE(s.SyncCold(&garbage).ok());
  EXPECT_FALSE(garbage.empty()) << "some object was brought back and left its old body";
  s.DeleteCold(garbage);
  ASSERT_TRUE(s.CommitCold().ok());
  for (const auto& [id, gen] : garbage) EXPECT_EQ(cold->Get(id, gen).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(DeepAnswers(s), DeepAnswers(hot));
}

// What a start relies on: snapshot after k entries (naming cold bodies),
// load it beside the same cold store, apply the rest == apply everything.
// Which objects are cold depends only on the log, so the bytes match too.
TEST_F(ColdObjectsTest, SnapshotThenTheRestEqualsTheWholeLog) {
  const auto es = History(400, 2);
  auto whole_cold = Open("whole");
  StateStore whole;
  whole.set_cold(whole_cold.get(), kMinute, 1 << 16);
  ApplyCold(&whole, es, 0, es.size());
  const std::string want = Encode(whole), want_answers = DeepAnswers(whole);
  EXPECT_GT(whole.cold_stats().cold, 0u);
  for (size_t k = 0; k <= es.size(); k += 37) {
    SCOPED_TRACE("snapshot at " + std::to_string(k));
    auto cold = Open("k" + std::to_string(k));
    std::string body;
    {
      StateStore first;
      first.set_cold(cold.get(), kMinute, 1 << 16);
      ApplyCold(&first, es, 0, k);
      std::vector<std::pair<uint32_t, uint64_t>> garbage;
      ASSERT_TRUE(first.SyncCold(&garbage).ok());
      body = Encode(first);
      first.DeleteCold(garbage);  // after the snapshot: it does not name them
      // Entries applied after the snapshot and lost in a crash: their
      // bodies and deletions reach the cold store, not the snapshot.
      ApplyCold(&first, es, k, std::min(es.size(), k + 50));
    }
    StateStore loaded;
    loaded.set_cold(cold.get(), kMinute, 1 << 16);
    ASSERT_TRUE(loaded.DecodeSnapshot(body).ok());
    ApplyCold(&loaded, es, k, es.size());
    EXPECT_EQ(Encode(loaded), want);
    EXPECT_EQ(DeepAnswers(loaded), want_answers);
    EXPECT_FALSE(loaded.damaged()) << loaded.damage();
  }
}

// Readers on two threads read cold histories back (the cache at a few
// KB, so they load and the writer trims all the time) while the writer
// applies the rest; under TSan (make test) this is the race check.
TEST_F(ColdObjectsTest, ReadersOnTwoThreadsWhileTheWriterAppliesAndTrims) {
  const auto es = History(900, 11);
  auto cold = Open("cold");
  StateStore s;
  s.set_cold(cold.get(), kMinute, 8192);
  ApplyCold(&s, es, 0, 450);
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> reads{0};
  auto reader = [&] {
    while (!stop) {
      {
        std::shared_lock lock(s.mutex());
        for (uint32_t id = 0; id < s.object_count(); ++id) {
          const Object& o = s.object(id);
          for (const Version& v : o.versions) ASSERT_EQ(s.VersionAt(id, v.time) != nullptr, true);
          reads += o.versions.size();
        }
      }
      // glibc's rwlock prefers readers: two that never let go together
      // would keep the writer out for good.
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  };
  std::thread r1(reader), r2(reader);
  // The readers are running before the writer goes on (on a loaded machine
  // the writer could otherwise finish before either was scheduled).
  while (reads.load() == 0) std::this_thread::sleep_for(std::chrono::microseconds(100));
  ApplyCold(&s, es, 450, es.size());
  stop = true;
  r1.join();
  r2.join();
  EXPECT_GT(reads.load(), 0u);
  EXPECT_FALSE(s.damaged()) << s.damage();
  StateStore hot;
  ApplyAll(&hot, es, 0, es.size());
  EXPECT_EQ(DeepAnswers(s), DeepAnswers(hot));
}

TEST_F(ColdObjectsTest, AMissingOrDamagedBodyIsReportedAndResetStartsAfresh) {
  const auto es = History(600, 5);
  auto cold = Open("cold");
  StateStore s;
  s.set_cold(cold.get(), kMinute, 0);  // no cache: every read goes to disk
  ApplyCold(&s, es, 0, es.size());
  ASSERT_GT(s.cold_stats().cold, 2u);
  // Two cold objects' bodies, as the store names them.
  std::vector<std::pair<uint32_t, uint64_t>> bodies;
  {
    std::shared_lock lock(s.mutex());
    for (uint32_t id = 0; id < s.object_count() && bodies.size() < 2; ++id)
      if (s.names(id).cold) bodies.emplace_back(id, s.names(id).cold);
  }
  ASSERT_EQ(bodies.size(), 2u);
  auto body = cold->Get(bodies[0].first, bodies[0].second);
  ASSERT_TRUE(body.ok());
  cold->Put(bodies[0].first, bodies[0].second, body->substr(0, body->size() / 2));  // truncated
  cold->Delete(bodies[1].first, bodies[1].second);
  ASSERT_TRUE(cold->Commit().ok());
  {
    std::shared_lock lock(s.mutex());
    const Object& o = s.object(bodies[0].first);
    EXPECT_TRUE(o.versions.empty()) << "no history is made up";
  }
  EXPECT_TRUE(s.damaged());
  EXPECT_NE(s.damage().find("cold object " + std::to_string(bodies[0].first)), std::string::npos) << s.damage();
  {
    std::shared_lock lock(s.mutex());
    EXPECT_TRUE(s.object(bodies[1].first).versions.empty());
  }
  ASSERT_TRUE(s.Reset().ok());
  EXPECT_FALSE(s.damaged());
  EXPECT_EQ(s.applied(), 0u);
  size_t left = 0;
  ASSERT_TRUE(cold->ForEach([&](uint32_t, uint64_t, std::string_view) {
                    ++left;
                    return OkStatus();
                  }).ok());
  EXPECT_EQ(left, 0u);
  // Replayed, it answers as a store that never went cold.
  ApplyCold(&s, es, 0, es.size());
  StateStore hot;
  ApplyAll(&hot, es, 0, es.size());
  EXPECT_EQ(DeepAnswers(s), DeepAnswers(hot));
}

}  // namespace
}  // namespace annals::state
