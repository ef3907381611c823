// Tests for Ingestor admission: a retry (same key, same bytes) is stored
// once, a reused key with other bytes is kept as a marked conflict, whether
// the holder is in the same request, in the dedup index (read back from the
// log, a blob by its digest), or known only after a restart.
#include "ingest/ingestor.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <cerrno>
#include <filesystem>

#include "env/fault_injection_env.h"
#include "ingest/k8s_audit.h"
#include "ledger/entry.h"
#include "redact/policy.h"

namespace annals::ingest {
namespace {

namespace fs = std::filesystem;

class IngestorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "annals-ingestor-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    Open();
  }
  void TearDown() override {
    Close();
    fs::remove_all(dir_);
  }
  void Open() {
    ledger::LedgerOptions lo;
    lo.data_dir = dir_;
    lo.env = &faults_;
    auto ledger = ledger::Ledger::Open(lo);
    ASSERT_TRUE(ledger.ok()) << ledger.status().ToString();
    ledger_ = std::move(*ledger);
    auto dedup = index::DedupIndex::Open(dir_ + "/index/dedup");
    ASSERT_TRUE(dedup.ok()) << dedup.status().ToString();
    dedup_ = std::move(*dedup);
    auto in = Ingestor::Open(ledger_.get(), dedup_.get(), &metrics_);
    ASSERT_TRUE(in.ok()) << in.status().ToString();
    ingestor_ = std::move(*in);
  }
  void Close() {
    ingestor_.reset();
    ledger_.reset();
    dedup_.reset();
  }
  // Submits (key, payload) items and waits until they are durable (or not).
  StatusOr<IngestResult> TrySubmit(const std::vector<std::pair<std::string, std::string>>& items) {
    std::vector<IngestItem> in;
    for (const auto& [key, payload] : items)
      in.push_back({R"({"v":1,"src":"test","type":"k8s.audit","key":")" + key + "\"}", payload, key});
    return ingestor_->SubmitAndWait("test", std::move(in));
  }
  IngestResult Submit(const std::vector<std::pair<std::string, std::string>>& items) {
    auto r = TrySubmit(items);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : IngestResult{};
  }
  // The metadata of every entry in the log, in order.
  std::vector<std::string> Metas() {
    std::vector<std::string> out;
    EXPECT_TRUE(ledger_->ReadEntries(0, ledger_->DurableSize(), [&](uint64_t, std::string_view e) {
      auto d = ledger::DecodeEntry(e);
      if (!d.ok()) return d.status();
      out.emplace_back(d->meta);
      return OkStatus();
    }).ok());
    return out;
  }

  std::string dir_;
  env::FaultInjectionEnv faults_{env::Env::Default()};
  Metrics metrics_;
  std::unique_ptr<ledger::Ledger> ledger_;
  std::unique_ptr<index::DedupIndex> dedup_;
  std::unique_ptr<Ingestor> ingestor_;
};

void ExpectCounts(const IngestResult& r, uint64_t stored, uint64_t duplicates, uint64_t conflicts) {
  EXPECT_EQ(r.stored, stored);
  EXPECT_EQ(r.duplicates, duplicates);
  EXPECT_EQ(r.conflicts, conflicts);
}

TEST_F(IngestorTest, RetriesAreStoredOnceAndOtherBytesAreMarkedConflicts) {
  // Within one request.
  ExpectCounts(Submit({{"a", R"({"n":1})"}, {"a", R"({"n":1})"}, {"b", R"({"n":2})"}, {"b", R"({"n":3})"}}), 3, 1, 1);
  // Against the index (the holder's bytes read back from the log).
  ExpectCounts(Submit({{"a", R"({"n":1})"}, {"b", R"({"n":2})"}}), 0, 2, 0);
  ExpectCounts(Submit({{"a", R"({"n":9})"}}), 1, 0, 1);
  // A retried conflict is a duplicate of itself, not a new conflict.
  ExpectCounts(Submit({{"a", R"({"n":9})"}, {"b", R"({"n":3})"}}), 0, 2, 0);
  auto metas = Metas();
  ASSERT_EQ(metas.size(), 4u);
  EXPECT_FALSE(Ingestor::IsConflict(metas[0]));
  EXPECT_FALSE(Ingestor::IsConflict(metas[1]));
  EXPECT_TRUE(Ingestor::IsConflict(metas[2]));
  EXPECT_TRUE(Ingestor::IsConflict(metas[3]));
  // After a restart the index (and the log behind it) still knows them.
  Close();
  Open();
  ExpectCounts(Submit({{"a", R"({"n":1})"}, {"a", R"({"n":9})"}, {"b", R"({"n":4})"}}), 1, 2, 1);
  EXPECT_EQ(Metas().size(), 5u);
  // A conflict and its retry in the request that makes it: one stored.
  ExpectCounts(Submit({{"c", R"({"n":1})"}, {"c", R"({"n":2})"}, {"c", R"({"n":2})"}}), 2, 1, 1);
  EXPECT_EQ(Metas().size(), 7u);
}

// A failed append reaches the submitter as ResourceExhausted (disk full) or
// Unavailable (failed fdatasync), both HTTP 503 (api/http.cc), and frees
// its keys: the client's retry is stored, not counted as a duplicate.
TEST(IngestorKeyTest, TheKeyIsTheTopLevelMemberOfTheMetadata) {
  // A catch-up reads each entry's key back from its metadata.
  EXPECT_EQ(Ingestor::KeyFromMeta(R"({"v":1,"src":"events","type":"x","ce":{"key":"nested","id":"a-1"},)"
                                  R"("key":"ce:12:/ci/pipelinea-1"})"),
            "ce:12:/ci/pipelinea-1");
  EXPECT_EQ(Ingestor::KeyFromMeta(R"({"key":"a\"b\u00e9","type":"k8s.audit"})"), "a\"b\xc3\xa9");
  EXPECT_EQ(Ingestor::KeyFromMeta(R"({"v":1,"type":"k8s.audit","audit":{"key":"nested"}})"), "");  // none
  EXPECT_EQ(Ingestor::KeyFromMeta(R"({"key":7})"), "");  // not a string
  EXPECT_EQ(Ingestor::KeyFromMeta(R"({"key":"unterminated})"), "");
  EXPECT_EQ(Ingestor::KeyFromMeta(""), "");
  EXPECT_EQ(Ingestor::KeyFromMeta("[1,2]"), "");
}

TEST_F(IngestorTest, FailedAppendIsAnErrorAndItsRetryIsStored) {
  ExpectCounts(Submit({{"a", R"({"n":1})"}}), 1, 0, 0);
  // The segments' disk is full (not the checkpoints': the publisher may
  // run meanwhile, and a checkpoint that cannot be written stops appends).
  faults_.Arm(env::FaultInjectionEnv::Op::kWrite, "/segments/", ENOSPC);
  auto full = TrySubmit({{"b", R"({"n":2})"}});
  ASSERT_FALSE(full.ok());
  EXPECT_EQ(full.status().code(), StatusCode::kResourceExhausted) << full.status().ToString();
  faults_.ReturnSpace();
  ExpectCounts(Submit({{"b", R"({"n":2})"}}), 1, 0, 0);

  faults_.Arm(env::FaultInjectionEnv::Op::kSync, "/segments/", EIO, 1);
  auto failed = TrySubmit({{"c", R"({"n":3})"}});
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().code(), StatusCode::kUnavailable) << failed.status().ToString();
  auto refused = TrySubmit({{"c", R"({"n":3})"}});
  EXPECT_EQ(refused.status().code(), StatusCode::kUnavailable);
  Close();
  Open();
  ExpectCounts(Submit({{"a", R"({"n":1})"}, {"b", R"({"n":2})"}, {"c", R"({"n":3})"}}), 1, 2, 0);
  EXPECT_EQ(Metas().size(), 3u);
}

TEST_F(IngestorTest, BlobPayloadsAreComparedByTheirDigest) {
  // Over 64 KiB: the entry holds the payload's digest, the bytes a blob.
  const std::string big = "{\"x\":\"" + std::string(100000, 'x') + "\"}";
  std::string other = big;
  other[50000] = 'y';
  ExpectCounts(Submit({{"big", big}}), 1, 0, 0);
  auto first = ledger_->ReadEntry(0);
  ASSERT_TRUE(first.ok());
  auto d = ledger::DecodeEntry(*first);
  ASSERT_TRUE(d.ok());
  ASSERT_TRUE(d->external) << "the test needs a blob payload";
  ExpectCounts(Submit({{"big", big}}), 0, 1, 0);
  ExpectCounts(Submit({{"big", other}}), 1, 0, 1);
  Close();
  Open();
  ExpectCounts(Submit({{"big", big}, {"big", other}}), 0, 2, 0);
}

TEST_F(IngestorTest, ItemsWithoutAKeyAreNeverDeduplicated) {
  ExpectCounts(Submit({{"", "{}"}, {"", "{}"}}), 2, 0, 0);
  ExpectCounts(Submit({{"", "{}"}}), 1, 0, 0);
}

// A request that fails after admission (here its second entry cannot be
// encoded: metadata over 64 KiB) stores nothing and gives back the keys it
// reserved: the same event sent again is stored, not taken for a
// duplicate of the failed request.
TEST_F(IngestorTest, AFailedRequestStoresNothingAndReleasesItsKeys) {
  std::vector<IngestItem> in;
  in.push_back({R"({"v":1,"src":"test","type":"k8s.audit","key":"a"})", R"({"n":1})", "a"});
  in.push_back({"{\"pad\":\"" + std::string(70000, 'm') + "\"}", R"({"n":2})", "b"});
  auto failed = ingestor_->SubmitAndWait("test", std::move(in));
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().code(), StatusCode::kInvalidArgument) << failed.status().ToString();
  EXPECT_EQ(ledger_->DurableSize(), 0u);
  ExpectCounts(Submit({{"a", R"({"n":1})"}, {"b", R"({"n":2})"}}), 2, 0, 0);
  EXPECT_EQ(Metas().size(), 2u);
}

}  // namespace
}  // namespace annals::ingest

namespace annals::ingest {
namespace {

// Destroying the Ingestor while appends it handed the ledger are still
// queued waits for their callbacks (which use the Ingestor) instead of
// leaving them to run on freed memory (ASan reports it in build-asan).
TEST_F(IngestorTest, DestroyingWithAppendsInFlightWaitsForTheirCallbacks) {
  constexpr int kBatches = 400;
  std::vector<std::string> payloads;
  for (int i = 0; i < kBatches * 4; ++i) payloads.push_back(R"({"n":)" + std::to_string(i) + "}");
  std::atomic<int> done{0};
  for (int b = 0; b < kBatches; ++b) {
    std::vector<IngestItem> in;
    for (int k = 0; k < 4; ++k) {
      const std::string key = "drain-" + std::to_string(b * 4 + k);
      in.push_back({R"({"v":1,"src":"test","type":"k8s.audit","key":")" + key + "\"}", payloads[b * 4 + k], key});
    }
    ingestor_->Submit("test", std::move(in), [&done](StatusOr<IngestResult> r) {
      EXPECT_TRUE(r.ok()) << r.status().ToString();
      done.fetch_add(1);
    });
  }
  ingestor_.reset();  // the ledger still runs: every queued append calls back first
  EXPECT_EQ(done.load(), kBatches);
  EXPECT_EQ(ledger_->DurableSize(), static_cast<uint64_t>(kBatches * 4));
}

}  // namespace
}  // namespace annals::ingest

namespace annals::ingest {
namespace {

// OpenCatchingUp: the dedup index catches up on a thread of its own; what is
// submitted meanwhile is held and admitted once it has, so retries of events
// the index has not reached yet (the log's last ones) are still found.
TEST_F(IngestorTest, IngestDuringTheDedupCatchUpWaitsForItAndFindsRetries) {
  constexpr int kEntries = 60000;
  std::vector<std::string> payloads;
  for (int i = 0; i < kEntries; ++i) payloads.push_back(R"({"n":)" + std::to_string(i) + "}");
  for (int b = 0; b < kEntries; b += 2000) {
    std::vector<std::pair<std::string, std::string>> items;
    for (int i = b; i < b + 2000; ++i) items.emplace_back("k" + std::to_string(i), payloads[i]);
    ExpectCounts(Submit(items), 2000, 0, 0);
  }
  Close();
  fs::remove_all(dir_ + "/index/dedup");  // the index is caught up from nothing
  Open();
  ingestor_.reset();
  ingestor_ = Ingestor::OpenCatchingUp(ledger_.get(), dedup_.get(), &metrics_);
  const bool held = !ingestor_->catch_up().done;
  // Retries of the first and the last event, one conflict, one new event.
  const auto r = Submit({{"k0", payloads[0]}, {"k" + std::to_string(kEntries - 1), payloads[kEntries - 1]},
                         {"k7", R"({"n":"other"})"}, {"new", R"({"n":"new"})"}});
  ExpectCounts(r, 2, 2, 1);
  ASSERT_TRUE(ingestor_->WaitForCatchUp().ok());
  const auto p = ingestor_->catch_up();
  EXPECT_TRUE(p.done);
  EXPECT_EQ(p.applied, static_cast<uint64_t>(kEntries));
  EXPECT_EQ(p.target, static_cast<uint64_t>(kEntries));
  EXPECT_EQ(ledger_->DurableSize(), static_cast<uint64_t>(kEntries + 2));
  std::printf("(the request came %s the catch-up ended)\n", held ? "before" : "after");
}

}  // namespace
}  // namespace annals::ingest

namespace annals::ingest {
namespace {

// The webhook's parse looks at each parsed event for the redactor's
// triggers: an event naming secrets goes on to redaction, a plain one is
// skipped by it; without a redactor every event goes on.
TEST(AuditBodyRedactionLook, EachEventIsMarkedByWhatItHolds) {
  const std::string body =
      R"({"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[)"
      R"({"auditID":"a1","stage":"ResponseComplete","verb":"get","objectRef":{"resource":"secrets","name":"db"}},)"
      R"({"auditID":"a2","stage":"ResponseComplete","verb":"get","objectRef":{"resource":"pods","name":"web"}},)"
      R"({"auditID":"a3","stage":"ResponseComplete","verb":"create","requestObject":{"spec":{"containers":[{"env":[]}]}}}]})";
  const redact::Redactor redactor(redact::DefaultPolicy());
  auto looked = ParseAuditBody(body, 0, &redactor);
  ASSERT_TRUE(looked.ok()) << looked.status().ToString();
  ASSERT_EQ(looked->size(), 3u);
  EXPECT_TRUE((*looked)[0].may_redact);
  EXPECT_FALSE((*looked)[1].may_redact);
  EXPECT_TRUE((*looked)[2].may_redact);
  EXPECT_FALSE(AuditItem((*looked)[1], "k8s-audit", "2026-12-07T00:00:00Z").may_redact);
  auto plain = ParseAuditBody(body);
  ASSERT_TRUE(plain.ok());
  for (const auto& e : *plain) EXPECT_TRUE(e.may_redact);
}

TEST(AuditMetadata, VersionTwoNamesTheEventAndLeavesItsFieldsToThePayload) {
  // The worked example of docs/format/entry.md.
  const std::string body =
      R"({"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{},"items":[)" "\n"
      R"({"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"6f1c0f3e-3f0b-4d55-9a57-1d8c2b7e0a11","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/default/pods/web-0","verb":"delete","user":{"username":"alice","groups":["system:authenticated"]},"sourceIPs":["10.0.0.7"],"userAgent":"kubectl/v1.29.0","objectRef":{"resource":"pods","namespace":"default","name":"web-0","apiVersion":"v1"},"responseStatus":{"metadata":{},"code":200},"requestReceivedTimestamp":"2024-05-01T12:00:00.000000Z","stageTimestamp":"2024-05-01T12:00:00.012345Z"})"
      "\n]}";
  auto events = ParseAuditBody(body);
  ASSERT_TRUE(events.ok()) << events.status().ToString();
  ASSERT_EQ(events->size(), 1u);
  const AuditEvent& e = (*events)[0];
  const std::string rt = "2026-11-25T15:40:56.057115Z";
  const IngestItem item = AuditItem(e, "k8s-audit", rt);
  EXPECT_EQ(item.meta,
            R"({"v":2,"src":"k8s-audit","rt":"2026-11-25T15:40:56.057115Z","ct":"application/json","type":"k8s.audit",)"
            R"("key":"audit:36:6f1c0f3e-3f0b-4d55-9a57-1d8c2b7e0a11/ResponseComplete"})");
  EXPECT_EQ(item.meta, AuditMeta(e, "k8s-audit", rt));
  EXPECT_EQ(item.key, "audit:36:6f1c0f3e-3f0b-4d55-9a57-1d8c2b7e0a11/ResponseComplete");
  EXPECT_EQ(Ingestor::KeyFromMeta(item.meta), item.key);
  auto entry = ledger::EncodeEntry(item.meta, item.payload, nullptr);
  ASSERT_TRUE(entry.ok());
  EXPECT_EQ(entry->size(), 741u);
  // Version 1, as logs written before hold it.
  EXPECT_EQ(AuditMetaV1(e, "k8s-audit", rt),
            R"({"v":1,"src":"k8s-audit","rt":"2026-11-25T15:40:56.057115Z","ct":"application/json","type":"k8s.audit",)"
            R"("key":"audit:36:6f1c0f3e-3f0b-4d55-9a57-1d8c2b7e0a11/ResponseComplete","audit":{"stage":"ResponseComplete",)"
            R"("verb":"delete","user":"alice","resource":"pods","namespace":"default","name":"web-0","code":200,)"
            R"("level":"Metadata","time":"2024-05-01T12:00:00.012345Z","ip":"10.0.0.7","ua":"kubectl/v1.29.0"}})");
  // Filed under a cluster, either version gains it after "v".
  IngestItem bound = item;
  ASSERT_TRUE(BindCluster("prod", &bound).ok());
  EXPECT_TRUE(bound.meta.starts_with(R"({"v":2,"cluster":"prod","src":)")) << bound.meta;
  EXPECT_EQ(bound.key, "cluster:4:prod/" + item.key);
}

}  // namespace
}  // namespace annals::ingest
