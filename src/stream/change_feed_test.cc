// ChangeFeed under concurrency: while audit events are ingested, several
// consumers (fast ones from the buffer, a slow one that falls behind it and
// reads the log) each see every durable entry exactly once, in order, and
// the same frame for the same entry. Built under ThreadSanitizer in
// `make test` (build-tsan/), where it also checks the feed's locking.
#include "stream/change_feed.h"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "common/metrics.h"
#include "common/time_util.h"
#include "index/dedup_index.h"
#include "index/event_index.h"
#include "ingest/ingestor.h"
#include "ingest/k8s_audit.h"
#include "ledger/ledger.h"
#include "state/projector.h"
#include "state/questions.h"
#include "state/state_store.h"

namespace annals::stream {
namespace {

using namespace std::chrono_literals;

// The corpus's audit events, one per line.
std::vector<std::string> CorpusEvents() {
  std::ifstream in(std::string(ANNALS_CORPUS_DIR) + "/k8s-audit/audit2rbac-demo.jsonl");
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(line);
  return out;
}

// A ledger with the projection and the feed over it, as `annals serve` has.
struct Parts {
  std::string dir;
  Metrics metrics;
  std::unique_ptr<ledger::Ledger> ledger;
  std::unique_ptr<index::DedupIndex> dedup;
  std::unique_ptr<ingest::Ingestor> ingestor;
  std::unique_ptr<index::EventIndex> events;
  std::unique_ptr<state::StateStore> store;
  std::unique_ptr<state::Projector> projector;
  std::unique_ptr<state::Questions> questions;
  std::unique_ptr<ChangeFeed> feed;

  // live_rows, live_ms: Projector::set_live_commit (0 ms: every catch-up
  // commits its rows).
  explicit Parts(size_t buffer_entries, uint64_t live_rows = 1, int live_ms = 0) {
    dir = (std::filesystem::temp_directory_path() /
           ("annals-feed-test-" + std::to_string(::getpid()) + "-" + std::to_string(buffer_entries)))
              .string();
    std::filesystem::remove_all(dir);
    ledger::LedgerOptions lo;
    lo.data_dir = dir;
    lo.origin = "feed.test/log";
    lo.checkpoint_interval = 20ms;
    auto l = ledger::Ledger::Open(lo);
    EXPECT_TRUE(l.ok()) << l.status().ToString();
    ledger = std::move(*l);
    auto d = index::DedupIndex::Open(dir + "/index/dedup");
    EXPECT_TRUE(d.ok()) << d.status().ToString();
    dedup = std::move(*d);
    auto i = ingest::Ingestor::Open(ledger.get(), dedup.get(), &metrics);
    EXPECT_TRUE(i.ok()) << i.status().ToString();
    ingestor = std::move(*i);
    auto e = index::EventIndex::Open(dir + "/index/events");
    EXPECT_TRUE(e.ok()) << e.status().ToString();
    events = std::move(*e);
    store = std::make_unique<state::StateStore>();
    projector = std::make_unique<state::Projector>(ledger.get(), store.get(), events.get());
    questions = std::make_unique<state::Questions>(ledger.get(), store.get(), events.get());
    projector->set_live_commit(live_rows, live_ms);
    EXPECT_TRUE(projector->CatchUp().ok());
    projector->Start();
    ChangeFeedOptions fo;
    fo.buffer_entries = buffer_entries;
    fo.tick = 20ms;
    feed = std::make_unique<ChangeFeed>(ChangeSources{ledger.get(), store.get(), questions.get()},
                                        projector.get(), fo);
    feed->Start();
  }
  ~Parts() {
    feed.reset();
    projector.reset();
    questions.reset();
    ingestor.reset();
    dedup.reset();
    events.reset();
    ledger.reset();
    std::filesystem::remove_all(dir);
  }
};

// What one consumer saw: index -> frame.
struct Seen {
  std::vector<uint64_t> order;
  std::map<uint64_t, std::string> frames;
  uint64_t from_log = 0;
  std::string error;
};

// Reads from `pos` until `until` entries were seen, `per_read` at a time,
// sleeping `pause` between reads (a slow consumer falls behind the buffer).
void Consume(ChangeFeed* feed, uint64_t until, size_t per_read, std::chrono::milliseconds pause, Seen* seen) {
  auto me = feed->Register("test", "consumer", 0, [](bool) {});
  uint64_t pos = 0;
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (pos < until && std::chrono::steady_clock::now() < deadline) {
    feed->WaitFor(pos, 50ms);
    std::vector<std::shared_ptr<const Change>> out;
    bool from_buffer = false;
    Status s = feed->Read(pos, per_read, 1 << 20, &out, &from_buffer);
    if (!s.ok()) {
      seen->error = s.ToString();
      break;
    }
    if (!from_buffer && !out.empty()) ++seen->from_log;
    for (const auto& c : out) {
      seen->order.push_back(c->index);
      seen->frames[c->index] = c->frame;
      pos = c->index + 1;
    }
    me->pos.store(pos);
    if (pause.count() > 0) std::this_thread::sleep_for(pause);
  }
  feed->Unregister(me);
}

TEST(ChangeFeed, EveryConsumerSeesEveryEntryOnceInOrderWhileIngestRuns) {
  const std::vector<std::string> lines = CorpusEvents();
  ASSERT_GE(lines.size(), 30u);
  // A buffer of 8 entries: the slow consumer must read part of the log.
  Parts p(8);
  std::vector<ingest::AuditEvent> events;
  for (const auto& l : lines) {
    auto e = ingest::ParseAuditEvent(l, "corpus line");
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    events.push_back(std::move(*e));
  }
  // Each event three times over, with its auditID made unique per round so
  // none is deduplicated: rounds * lines entries in all.
  constexpr int kRounds = 3;
  const uint64_t total = kRounds * events.size();

  std::vector<Seen> seen(4);
  std::vector<std::thread> consumers;
  consumers.emplace_back(Consume, p.feed.get(), total, 4, 0ms, &seen[0]);
  consumers.emplace_back(Consume, p.feed.get(), total, 64, 0ms, &seen[1]);
  consumers.emplace_back(Consume, p.feed.get(), total, 3, 1ms, &seen[2]);
  consumers.emplace_back(Consume, p.feed.get(), total, 2, 15ms, &seen[3]);  // slow

  std::vector<std::string> bodies;  // payloads outlive their Submit
  bodies.reserve(total);
  for (int r = 0; r < kRounds; ++r) {
    for (size_t k = 0; k < lines.size(); k += 5) {
      std::vector<ingest::IngestItem> items;
      for (size_t j = k; j < std::min(lines.size(), k + 5); ++j) {
        std::string body = lines[j];
        const std::string id = events[j].audit_id;
        const size_t at = body.find(id);
        ASSERT_NE(at, std::string::npos);
        body.replace(at, id.size(), id.substr(0, id.size() - 2) + "r" + std::to_string(r));
        bodies.push_back(std::move(body));
        auto e = ingest::ParseAuditEvent(bodies.back(), "round line");
        ASSERT_TRUE(e.ok()) << e.status().ToString();
        items.push_back(ingest::AuditItem(*e, "k8s-audit", "2026-12-04T00:00:00.000000Z"));
      }
      auto r2 = p.ingestor->SubmitAndWait("k8s-audit", std::move(items));
      ASSERT_TRUE(r2.ok()) << r2.status().ToString();
    }
  }
  for (auto& t : consumers) t.join();

  for (size_t c = 0; c < seen.size(); ++c) {
    SCOPED_TRACE("consumer " + std::to_string(c));
    EXPECT_EQ(seen[c].error, "");
    ASSERT_EQ(seen[c].order.size(), total);
    for (uint64_t i = 0; i < total; ++i) ASSERT_EQ(seen[c].order[i], i);
    for (uint64_t i = 0; i < total; ++i) {
      ASSERT_EQ(seen[c].frames[i], seen[0].frames[i]) << "entry " << i;
      ASSERT_EQ(seen[c].frames[i].rfind("id: " + std::to_string(i) + "\n", 0), 0u) << seen[c].frames[i];
    }
  }
  // The slow consumer fell behind the 8-entry buffer and read from the log.
  EXPECT_GT(seen[3].from_log, 0u);
  EXPECT_EQ(p.feed->next(), total);
}

// Submits every corpus line once as one request, each auditID made unique
// by `round`; the number of entries.
uint64_t SubmitRound(Parts* p, const std::vector<std::string>& lines, int round, std::vector<std::string>* bodies) {
  std::vector<ingest::IngestItem> items;
  bodies->reserve(bodies->size() + lines.size());  // the views below stay valid: reserved before
  for (const auto& l : lines) {
    auto e = ingest::ParseAuditEvent(l, "corpus line");
    EXPECT_TRUE(e.ok()) << e.status().ToString();
    if (!e.ok()) return 0;
    std::string body = l;
    const std::string& id = e->audit_id;
    body.replace(body.find(id), id.size(), id.substr(0, id.size() - 2) + "q" + std::to_string(round));
    bodies->push_back(std::move(body));
    auto again = ingest::ParseAuditEvent(bodies->back(), "round line");
    EXPECT_TRUE(again.ok()) << again.status().ToString();
    items.push_back(ingest::AuditItem(*again, "k8s-audit", "2026-12-07T00:00:00.000000Z"));
  }
  const uint64_t n = items.size();
  auto r = p->ingestor->SubmitAndWait("k8s-audit", std::move(items));
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return n;
}

bool WaitUntil(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

uint64_t StateApplied(Parts* p) {
  state::StateQuery q;
  q.at = *ParseRfc3339("2030-01-01T00:00:00Z");
  q.kind = "nosuchkind";
  auto r = p->questions->State(q, nullptr);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? nlohmann::json::parse(*r)["applied"].get<uint64_t>() : 0;
}

// How many events a search of everything finds.
uint64_t Searched(Parts* p) {
  state::EventQuery q;
  q.limit = 100000;
  auto r = p->questions->Events(q);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? (*r)["count"].get<uint64_t>() : 0;
}

// Live event rows wait for the interval before the event index commits
// them (a few large commits a second, not one per group commit); the store
// and the change feed do not wait for them, and the state answer's
// "applied" counts only what both cover. Stop commits what still waits.
TEST(ChangeFeed, LiveEventRowsCommitAfterTheIntervalAndAtStop) {
  const std::vector<std::string> lines = CorpusEvents();
  ASSERT_GE(lines.size(), 30u);
  Parts p(4096, /*live_rows=*/1 << 20, /*live_ms=*/3000);
  std::vector<std::string> bodies;
  const uint64_t n = SubmitRound(&p, lines, 0, &bodies);
  ASSERT_TRUE(WaitUntil([&] { return p.store->applied() >= n && p.feed->next() >= n; }, 20s));
  const auto applied_at = std::chrono::steady_clock::now();
  EXPECT_LT(p.events->watermark(), n);
  EXPECT_LT(StateApplied(&p), n);
  const uint64_t searched_before = Searched(&p);
  ASSERT_TRUE(WaitUntil([&] { return p.events->watermark() >= n; }, 20s));
  EXPECT_GE(std::chrono::steady_clock::now() - applied_at, 1500ms);
  EXPECT_EQ(p.events->watermark(), n);
  EXPECT_EQ(StateApplied(&p), n);
  // The search finds them now, not before.
  EXPECT_LT(searched_before, Searched(&p));

  const uint64_t m = SubmitRound(&p, lines, 1, &bodies);
  ASSERT_TRUE(WaitUntil([&] { return p.store->applied() >= n + m; }, 20s));
  EXPECT_LT(p.events->watermark(), n + m);
  p.feed->Stop();
  p.projector->Stop();
  EXPECT_EQ(p.events->watermark(), n + m);
}

// Rows reaching the count commit at once, whatever the interval (a tail
// of fewer, made by a later group commit of the log, may wait for it).
TEST(ChangeFeed, LiveEventRowsCommitOnceThereAreEnough) {
  const std::vector<std::string> lines = CorpusEvents();
  ASSERT_GE(lines.size(), 30u);
  Parts p(4096, /*live_rows=*/16, /*live_ms=*/60000);
  std::vector<std::string> bodies;
  const uint64_t n = SubmitRound(&p, lines, 0, &bodies);
  ASSERT_GT(n, 16u);
  EXPECT_TRUE(WaitUntil([&] { return p.events->watermark() >= 16; }, 20s)) << p.events->watermark() << " of " << n;
  EXPECT_LE(p.events->watermark(), n);
  p.feed->Stop();
  p.projector->Stop();
  EXPECT_EQ(p.events->watermark(), n);
}

}  // namespace
}  // namespace annals::stream
