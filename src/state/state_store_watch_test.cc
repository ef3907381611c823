// Watch entries in the state projection, and their merge with audit
// versions of the same object (docs/state.md "Watch entries").
#include <gtest/gtest.h>

#include <cstdio>
#include <mutex>
#include <string>

#include "ingest/k8s_audit.h"
#include "ingest/k8s_watch.h"
#include "state/state_store.h"

namespace annals::state {
namespace {

std::string Pod(const std::string& rv, const std::string& ip) {
  return R"({"kind":"Pod","apiVersion":"v1","metadata":{"name":"web","namespace":"default","uid":"pod-uid-1","resourceVersion":")" +
         rv + R"("},"spec":{"nodeName":"n1"},"status":{"phase":"Running","podIP":")" + ip + R"("}})";
}

struct Harness {
  StateStore store;
  uint64_t next = 0;
  void Watch(ingest::WatchRecord::Type type, const std::string& object, const std::string& rt,
             const std::string& observed = "", const std::string& kind = "Pod") {
    ingest::WatchRecord r;
    r.type = type;
    r.version = "v1";
    r.resource = "pods";
    r.kind = kind;
    r.observed = observed;
    r.head = *ingest::ReadObjectHead(object);
    r.object = object;
    ASSERT_TRUE(store.Apply(next++, ingest::WatchMeta(r, "k8s-watch", rt), object, nullptr).ok());
  }
  void Audit(const std::string& object, const std::string& time) {
    std::string ev = R"({"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"RequestResponse","auditID":"a-)" +
                     std::to_string(next) +
                     R"(","stage":"ResponseComplete","verb":"update","user":{"username":"alice"},"objectRef":{"resource":"pods","namespace":"default","name":"web","apiVersion":"v1"},"responseStatus":{"code":200},"stageTimestamp":")" +
                     time + R"(","responseObject":)" + object + "}";
    auto parsed = ingest::ParseAuditEvent(ev, "event");
    ASSERT_TRUE(parsed.ok()) << parsed.status().message();
    ASSERT_TRUE(store.Apply(next++, ingest::AuditMeta(*parsed, "k8s-audit", time), ev, nullptr).ok());
  }
  const Object& Web() {
    int64_t id = store.FindUid(0, "pod-uid-1");
    EXPECT_GE(id, 0);
    return store.object(static_cast<uint32_t>(id));
  }
  std::string WhoHas(const std::string& ip, const std::string& at) {
    std::shared_lock lock(store.mutex());
    const IpInterval* iv = store.PodByIp(*ParseIp(ip), *ParseRfc3339(at), nullptr, nullptr);
    return iv ? store.object(iv->pod).uid : "";
  }
};

TEST(StateWatch, WatchEventsAreVersionsAtTheirReceiveTime) {
  Harness h;
  h.Watch(ingest::WatchRecord::kAdded, Pod("100", "10.0.0.1"), "2024-05-01T12:00:05Z");
  h.Watch(ingest::WatchRecord::kModified, Pod("102", "10.0.0.3"), "2024-05-01T12:00:20Z");
  EXPECT_EQ(h.WhoHas("10.0.0.1", "2024-05-01T12:00:10Z"), "pod-uid-1");
  EXPECT_EQ(h.WhoHas("10.0.0.1", "2024-05-01T12:00:21Z"), "");
  EXPECT_EQ(h.WhoHas("10.0.0.3", "2024-05-01T12:00:21Z"), "pod-uid-1");
  h.Watch(ingest::WatchRecord::kDeleted, Pod("103", "10.0.0.3"), "2024-05-01T12:00:30Z");
  std::shared_lock lock(h.store.mutex());
  const Version* v = h.Web().At(*ParseRfc3339("2024-05-01T12:00:31Z"));
  ASSERT_NE(v, nullptr);
  EXPECT_EQ(v->presence, Presence::kGone);
}

TEST(StateWatch, SameResourceVersionFromAuditAndWatchIsOneVersion) {
  Harness h;
  h.Audit(Pod("101", "10.0.0.2"), "2024-05-01T12:00:10Z");
  h.Watch(ingest::WatchRecord::kModified, Pod("101", "10.0.0.2"), "2024-05-01T12:00:11Z");
  std::shared_lock lock(h.store.mutex());
  ASSERT_EQ(h.Web().versions.size(), 1u);
  EXPECT_EQ(h.Web().versions[0].index, 0u);  // the audit version, with the exact time
}

TEST(StateWatch, ALateWatchVersionOrdersBeforeANewerResourceVersion) {
  Harness h;
  // The audit event for rv 101 happened at :10; the watch delivered rv 100
  // late, at :12. rv 101 must stay the state after :10.
  h.Audit(Pod("101", "10.0.0.2"), "2024-05-01T12:00:10Z");
  h.Watch(ingest::WatchRecord::kAdded, Pod("100", "10.0.0.1"), "2024-05-01T12:00:12Z");
  {
    std::shared_lock lock(h.store.mutex());
    const Version* v = h.Web().At(*ParseRfc3339("2024-05-01T12:00:13Z"));
    ASSERT_NE(v, nullptr);
    EXPECT_EQ(v->index, 0u);
  }
  EXPECT_EQ(h.WhoHas("10.0.0.2", "2024-05-01T12:00:13Z"), "pod-uid-1");
  EXPECT_EQ(h.WhoHas("10.0.0.1", "2024-05-01T12:00:13Z"), "");
}

TEST(StateWatch, LateVersionsDeliveredInReverseOrderCascade) {
  // rv 103 at :10 (audit); the watch delivers rv 102 at :12, then rv 101 at
  // :14. 102 moves before 103, and 101 before 102's new time.
  Harness h;
  h.Audit(Pod("103", "10.0.0.3"), "2024-05-01T12:00:10Z");
  h.Watch(ingest::WatchRecord::kModified, Pod("102", "10.0.0.2"), "2024-05-01T12:00:12Z");
  h.Watch(ingest::WatchRecord::kModified, Pod("101", "10.0.0.1"), "2024-05-01T12:00:14Z");
  std::shared_lock lock(h.store.mutex());
  const Object& o = h.Web();
  ASSERT_EQ(o.versions.size(), 3u);
  EXPECT_EQ(o.versions[0].index, 2u);  // rv 101
  EXPECT_EQ(o.versions[1].index, 1u);  // rv 102
  EXPECT_EQ(o.versions[2].index, 0u);  // rv 103
  EXPECT_LT(o.versions[0].time, o.versions[1].time);
  EXPECT_LT(o.versions[1].time, o.versions[2].time);
  EXPECT_EQ(o.versions[2].time, *ParseRfc3339("2024-05-01T12:00:10Z"));
}

TEST(StateWatch, ALongWatchHistoryStaysInResourceVersionOrder) {
  // 3,000 updates of one pod, each newer and later (the path that must not
  // look at the whole history), its address moving every 100; one of them,
  // rv 3500, is delivered late, after rv 3999. It must order just before
  // rv 3501, and everything else stays where it was.
  Harness h;
  auto at = [](int s) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "2024-05-01T%02d:%02d:%02dZ", 12 + s / 3600, (s / 60) % 60, s % 60);
    return std::string(buf);
  };
  auto ip = [](int i) { return "10.0." + std::to_string(i / 100 / 250) + "." + std::to_string(1 + i / 100 % 250); };
  for (int i = 0; i < 3000; ++i) {
    if (i == 2500) continue;  // comes late, below
    h.Watch(i == 0 ? ingest::WatchRecord::kAdded : ingest::WatchRecord::kModified,
            Pod(std::to_string(1000 + i), ip(i)), at(i));
  }
  h.Watch(ingest::WatchRecord::kModified, Pod("3500", "10.9.9.9"), at(3005));
  {
    std::shared_lock lock(h.store.mutex());
    const Object& o = h.Web();
    ASSERT_EQ(o.versions.size(), 3000u);
    for (size_t k = 1; k < o.versions.size(); ++k) ASSERT_LT(o.versions[k - 1].time, o.versions[k].time) << k;
    EXPECT_EQ(o.versions[2499].index, 2499u);  // rv 3499
    EXPECT_EQ(o.versions[2500].index, 2999u);  // rv 3500, the straggler
    EXPECT_EQ(o.versions[2501].index, 2500u);  // rv 3501
    EXPECT_EQ(o.versions.back().index, 2998u);  // rv 3999 stays last
    EXPECT_EQ(o.max_rv, 3999u);
  }
  EXPECT_EQ(h.WhoHas(ip(150), at(150)), "pod-uid-1");
  EXPECT_EQ(h.WhoHas(ip(2999), at(3010)), "pod-uid-1");
  EXPECT_EQ(h.WhoHas("10.9.9.9", at(3010)), "");
}

TEST(StateWatch, RelistTombstoneEndsTheObjectAndListItemsNeedNoKind) {
  Harness h;
  // A list item: no kind (the entry's watch.kind stands in).
  std::string item = Pod("100", "10.0.0.1");
  const std::string kind_and_version = R"("kind":"Pod","apiVersion":"v1",)";
  item.replace(item.find(kind_and_version), kind_and_version.size(), "");
  h.Watch(ingest::WatchRecord::kAdded, item, "2024-05-01T12:00:05Z", "relist");
  EXPECT_EQ(h.WhoHas("10.0.0.1", "2024-05-01T12:00:06Z"), "pod-uid-1");
  const std::string tomb =
      R"({"kind":"Pod","apiVersion":"v1","metadata":{"name":"web","namespace":"default","uid":"pod-uid-1","resourceVersion":"100"}})";
  h.Watch(ingest::WatchRecord::kDeleted, tomb, "2024-05-01T12:01:00Z", "relist");
  EXPECT_EQ(h.WhoHas("10.0.0.1", "2024-05-01T12:00:59Z"), "pod-uid-1");
  EXPECT_EQ(h.WhoHas("10.0.0.1", "2024-05-01T12:01:00Z"), "");
}

}  // namespace
}  // namespace annals::state
