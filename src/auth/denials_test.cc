#include "auth/denials.h"

#include <gtest/gtest.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <thread>

namespace annals::auth {
namespace {

using nlohmann::json;

struct Captured {
  std::vector<json> metas, payloads;
  Status next = OkStatus();  // what the sink answers next
  Status Take(std::vector<DenialLog::Record> records) {
    if (!next.ok()) return std::exchange(next, OkStatus());
    for (const auto& r : records) {
      metas.push_back(json::parse(r.meta));
      payloads.push_back(json::parse(r.payload));
    }
    return OkStatus();
  }
};

Denial D(std::string user, std::string reason, std::string endpoint, std::string remote = "10.0.0.1",
         std::string target = "GET /v1/state") {
  return Denial{user, user.empty() ? "none" : "tls", remote, reason, endpoint, target};
}

DenialLogOptions Manual() {
  DenialLogOptions o;
  o.window = std::chrono::hours(1);  // flushed by hand
  o.max_callers = 8;
  return o;
}

TEST(DenialLog, OneRecordPerCallerReasonAndEndpointWithCountsAndSamples) {
  Metrics m;
  Captured c;
  DenialLog log(Manual(), &m, [&](auto r) { return c.Take(std::move(r)); });
  for (int i = 0; i < 5; ++i) log.Note(D("", "unauthenticated", "read", "10.0.0." + std::to_string(i % 2)));
  for (int i = 0; i < 7; ++i)
    log.Note(D("alice", "forbidden", "ingest", "10.0.0.9", "POST /v1/ingest/k8s-audit?n=" + std::to_string(i)));
  log.Note(D("alice", "forbidden", "admin", "10.0.0.9", "GET /metrics"));
  ASSERT_TRUE(log.Flush().ok());
  // Anonymous callers are told apart by address; alice's two endpoints are
  // two records.
  ASSERT_EQ(c.payloads.size(), 4u);
  uint64_t total = 0;
  for (size_t i = 0; i < c.payloads.size(); ++i) {
    const json& p = c.payloads[i];
    total += p["count"].get<uint64_t>();
    EXPECT_EQ(c.metas[i]["type"], "annals.denied");
    EXPECT_EQ(c.metas[i]["src"], "annals");
    EXPECT_EQ(c.metas[i]["denied"]["count"], p["count"]);
    EXPECT_LE(p["first"].get<std::string>(), p["last"].get<std::string>());
    EXPECT_LE(p["window"]["from"].get<std::string>(), p["first"].get<std::string>());
  }
  EXPECT_EQ(total, 13u);
  // Sorted by reason, endpoint, caller: forbidden/admin, forbidden/ingest,
  // then the two addresses.
  EXPECT_EQ(c.payloads[0]["endpoint"], "admin");
  EXPECT_EQ(c.payloads[1]["user"], "alice");
  EXPECT_EQ(c.payloads[1]["count"], 7);
  EXPECT_EQ(c.payloads[1]["auth"], "tls");
  EXPECT_EQ(c.payloads[1]["targets"].size(), 4u);  // samples, not every target
  EXPECT_EQ(c.payloads[1]["targets"][0], "POST /v1/ingest/k8s-audit?n=0");
  EXPECT_EQ(c.payloads[2]["remotes"], json::array({"10.0.0.0"}));
  EXPECT_EQ(c.payloads[2]["count"], 3);
  EXPECT_EQ(c.payloads[3]["count"], 2);
  EXPECT_EQ(c.metas[3]["denied"]["remote"], "10.0.0.1");
  // An empty window writes nothing.
  ASSERT_TRUE(log.Flush().ok());
  EXPECT_EQ(c.payloads.size(), 4u);
}

TEST(DenialLog, AFloodOfDistinctCallersAddsABoundedNumberOfRecords) {
  Metrics m;
  Captured c;
  DenialLog log(Manual(), &m, [&](auto r) { return c.Take(std::move(r)); });
  for (int i = 0; i < 100000; ++i) log.Note(D("user-" + std::to_string(i), "forbidden", "read"));
  for (int i = 0; i < 1000; ++i) log.Note(D("", "unauthenticated", "read", "10.1." + std::to_string(i)));
  ASSERT_TRUE(log.Flush().ok());
  // 8 named callers (the first to come), then one "others" record per
  // reason and endpoint.
  ASSERT_EQ(c.payloads.size(), 10u);
  uint64_t total = 0, others = 0;
  for (const auto& p : c.payloads) {
    total += p["count"].get<uint64_t>();
    if (p.value("others", false)) {
      ++others;
      EXPECT_FALSE(p.contains("user"));
    }
  }
  EXPECT_EQ(others, 2u);
  EXPECT_EQ(total, 101000u);
  EXPECT_EQ(c.payloads[8]["reason"], "forbidden");
  EXPECT_EQ(c.payloads[8]["callers"], 100000 - 8);
  EXPECT_EQ(c.payloads[9]["reason"], "unauthenticated");
  EXPECT_EQ(c.payloads[9]["callers"], 1000);
  EXPECT_NE(m.Render().find("annals_denied_folded_total{reason=\"forbidden\"} 99992"), std::string::npos)
      << m.Render();
}

TEST(DenialLog, RecordsTheSinkRefusesAreKeptForTheNextWindow) {
  Metrics m;
  Captured c;
  DenialLog log(Manual(), &m, [&](auto r) { return c.Take(std::move(r)); });
  log.Note(D("bob", "rate", "read"));
  log.Note(D("bob", "rate", "read"));
  c.next = ResourceExhaustedError("disk full");
  EXPECT_FALSE(log.Flush().ok());
  EXPECT_TRUE(c.payloads.empty());
  log.Note(D("bob", "rate", "read"));
  ASSERT_TRUE(log.Flush().ok());
  ASSERT_EQ(c.payloads.size(), 1u);
  EXPECT_EQ(c.payloads[0]["count"], 3);
  EXPECT_NE(m.Render().find("annals_denied_records_total{result=\"failed\"} 1"), std::string::npos);
}

TEST(DenialLog, FailedWindowsDoNotRaiseTheBound) {
  Metrics m;
  Captured c;
  DenialLog log(Manual(), &m, [&](auto r) { return c.Take(std::move(r)); });
  // Three windows the disk refuses, each with 8 new callers (the bound).
  for (int w = 0; w < 3; ++w) {
    for (int i = 0; i < 8; ++i) log.Note(D("w" + std::to_string(w) + "-" + std::to_string(i), "forbidden", "read"));
    c.next = ResourceExhaustedError("disk full");
    EXPECT_FALSE(log.Flush().ok());
  }
  ASSERT_TRUE(log.Flush().ok());
  // Still 8 named callers and one "others", every refusal counted.
  ASSERT_EQ(c.payloads.size(), 9u);
  uint64_t total = 0;
  for (const auto& p : c.payloads) total += p["count"].get<uint64_t>();
  EXPECT_EQ(total, 24u);
  EXPECT_EQ(c.payloads[8]["callers"], 16);
}

TEST(DenialLog, TheThreadWritesEachWindowAndStopWritesTheLast) {
  Metrics m;
  Captured c;
  Mutex mu;
  DenialLogOptions o;
  o.window = std::chrono::milliseconds(50);
  auto log = std::make_unique<DenialLog>(o, &m, [&](auto r) {
    MutexLock l(&mu);
    return c.Take(std::move(r));
  });
  log->Start();
  log->Note(D("carol", "forbidden", "verify"));
  for (int i = 0; i < 200; ++i) {
    {
      MutexLock l(&mu);
      if (!c.payloads.empty()) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  {
    MutexLock l(&mu);
    ASSERT_EQ(c.payloads.size(), 1u);
  }
  log->Note(D("dave", "forbidden", "verify"));
  log->Stop();
  MutexLock l(&mu);
  ASSERT_EQ(c.payloads.size(), 2u);
  EXPECT_EQ(c.payloads[1]["user"], "dave");
}

}  // namespace
}  // namespace annals::auth
