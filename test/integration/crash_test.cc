// Crash test of the real `annals` binary: 4 client threads append batches of
// real audit events (each with a unique auditID) over HTTP while a poller
// records every checkpoint served; after a random 20-300 ms the server gets
// SIGKILL. After each restart on the same data directory:
//  - every acknowledged event is in the log at the index it was given, and
//    the new part of the log holds only events that were sent, each once;
//  - no checkpoint ever served is rolled back, and every one (from every
//    iteration) is consistent with the recovered log (consistency proofs
//    checked against the roots they signed);
//  - a clean stop exits 0 and `annals verify --data` passes.
//
// ANNALS_CRASH_ITERATIONS and ANNALS_CRASH_SEED override the defaults.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "checkpoint/note.h"
#include "client/http_client.h"
#include "client/remote_verifier.h"
#include "common/bytes.h"
#include "ledger/entry.h"
#include "merkle/merkle.h"
#include "testutil/log_client.h"
#include "testutil/server_process.h"
#include "testutil/test_macros.h"

namespace annals {
namespace {

using client::HttpClient;
using client::HttpResult;
using nlohmann::json;
using testutil::SignedCheckpoint;

constexpr int kDefaultIterations = 50;
constexpr int kClientThreads = 4;
constexpr auto kWait = std::chrono::seconds(30);

uint64_t EnvOr(const char* name, uint64_t def) {
  const char* v = std::getenv(name);
  if (!v || !*v) return def;
  return std::strtoull(v, nullptr, 10);
}

struct AckedBatch {
  uint64_t first_index;
  std::vector<std::string> lines;
};

// What the clients of one iteration did.
struct IterationRecord {
  std::mutex mu;
  std::vector<AckedBatch> acked;
  std::vector<std::string> sent;    // every line sent, acknowledged or not
  std::vector<std::string> notes;   // distinct checkpoint notes, in order seen
  std::vector<std::string> errors;  // unexpected answers
};

void ClientLoop(const std::string& url, const std::vector<std::string>* corpus, int iteration,
                int thread, uint32_t seed, std::atomic<bool>* stop, IterationRecord* rec) {
  auto http = HttpClient::Create(url);
  if (!http.ok()) return;
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> batch_size(1, 16);
  uint64_t seq = 0;
  while (!stop->load()) {
    std::vector<std::string> lines;
    const int n = batch_size(rng);
    for (int k = 0; k < n; ++k, ++seq) {
      const std::string& base = (*corpus)[(seq * 7 + thread) % corpus->size()];
      // A unique auditID per line: "<original>-c<iteration>.<thread>.<seq>".
      lines.push_back(testutil::UniqueVariant(base, "c" + std::to_string(iteration) + "." +
                                                        std::to_string(thread) + "." +
                                                        std::to_string(seq)));
    }
    {
      std::lock_guard lock(rec->mu);
      rec->sent.insert(rec->sent.end(), lines.begin(), lines.end());
    }
    std::string body;
    for (const auto& l : lines) body += l + "\n";
    auto r = (*http)->Post("/v1/ingest/events", body, "application/x-ndjson");
    // The connection failed: the server is gone. An unacknowledged batch
    // may or may not be in the log.
    if (!r.ok()) return;
    if (r->status == 503 || r->status == 429) continue;  // backpressure
    auto answer = testutil::ParseIngestAnswer(*r, lines.size());
    if (!answer.ok() || answer->stored != lines.size()) {
      // All lines are unique and well-formed: anything but "all stored" is
      // a server bug.
      std::lock_guard lock(rec->mu);
      rec->errors.push_back(answer.ok() ? "lines reported as duplicates: " + r->body
                                        : answer.status().ToString());
      continue;
    }
    std::lock_guard lock(rec->mu);
    rec->acked.push_back({*answer->first_index, std::move(lines)});
  }
}

void PollCheckpoints(const std::string& url, std::atomic<bool>* stop, IterationRecord* rec) {
  auto http = HttpClient::Create(url);
  if (!http.ok()) return;
  std::string last;
  while (!stop->load()) {
    auto r = (*http)->Get("/log/checkpoint");
    if (!r.ok()) return;  // server gone
    if (r->status == 200 && r->body != last) {
      last = r->body;
      std::lock_guard lock(rec->mu);
      rec->notes.push_back(last);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

class CrashTest : public ::testing::Test {
 protected:
  void SetUp() override {
    data_ = tmp_.Sub("data");
    testutil::ServeOptions opts;
    opts.redaction_policy = "none";  // byte-for-byte checks
    opts.data_dir = data_;
    opts.checkpoint_interval_ms = 50;
    server_ = std::make_unique<testutil::ServerProcess>(opts);
    // Audit events only: each line gets a unique auditID.
    for (const auto& l : testutil::CorpusAuditLines()) {
      json j = json::parse(l, nullptr, false);
      if (j.is_object() && j.contains("auditID") && j["auditID"].is_string() &&
          j.contains("stage") && l.find("\"auditID\":\"") != std::string::npos)
        corpus_.push_back(l);
    }
    ASSERT_GE(corpus_.size(), 50u) << "corpus not found in " << testutil::CorpusDir();
  }

  // Waits until the served checkpoint covers every durable entry (the entry
  // at its size does not exist yet) and returns it.
  StatusOr<SignedCheckpoint> WaitForQuiescentCheckpoint(HttpClient* http) {
    const auto deadline = std::chrono::steady_clock::now() + kWait;
    for (;;) {
      ASSIGN_OR_RETURN(SignedCheckpoint cp, testutil::FetchCheckpoint(http, *verifier_));
      ASSIGN_OR_RETURN(HttpResult r, http->Get("/v1/entries/" + std::to_string(cp.cp.size)));
      if (r.status == 404) return cp;
      if (r.status != 200)
        return UnavailableError("GET /v1/entries: HTTP " + std::to_string(r.status));
      if (std::chrono::steady_clock::now() >= deadline)
        return UnavailableError("checkpoint stuck at " + std::to_string(cp.cp.size) +
                                " below the durable log");
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }

  // Checks that the checkpoint note `note` (size S, root R), served at some
  // point, is signed by the log and is a prefix of `now`.
  void ExpectConsistent(HttpClient* http, const std::string& note, const SignedCheckpoint& now) {
    auto seen = testutil::OpenCheckpoint(note, *verifier_);
    ASSERT_TRUE(seen.ok()) << "served checkpoint does not verify: " << seen.status().ToString()
                           << "\n"
                           << note;
    const uint64_t s = seen->cp.size;
    ASSERT_LE(s, now.cp.size) << "checkpoint of size " << s << " was served, the log now has "
                              << now.cp.size;
    if (s == 0) {
      EXPECT_EQ(seen->cp.root, merkle::EmptyRoot());
      return;
    }
    if (s == now.cp.size) {
      EXPECT_EQ(seen->cp.root, now.cp.root) << "two checkpoints of size " << s << " differ";
      return;
    }
    auto r = http->Get("/v1/proof/consistency?first=" + std::to_string(s) +
                       "&second=" + std::to_string(now.cp.size));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_EQ(r->status, 200) << r->body;
    json j = json::parse(r->body, nullptr, false);
    ASSERT_TRUE(j.is_object() && j["hashes"].is_array()) << r->body;
    std::vector<Hash> proof;
    for (const auto& h : j["hashes"]) {
      auto raw = Base64Decode(h.get<std::string>());
      ASSERT_TRUE(raw && raw->size() == 32);
      Hash hash;
      std::copy(raw->begin(), raw->end(), hash.begin());
      proof.push_back(hash);
    }
    EXPECT_OK(merkle::VerifyConsistency(s, now.cp.size, proof, seen->cp.root, now.cp.root));
  }

  testutil::TempDir tmp_;
  std::string data_;
  std::unique_ptr<testutil::ServerProcess> server_;
  std::unique_ptr<note::Verifier> verifier_;
  std::vector<std::string> corpus_;
};

TEST_F(CrashTest, AcknowledgedEventsAndServedCheckpointsSurviveKill9) {
  const int iterations = static_cast<int>(EnvOr("ANNALS_CRASH_ITERATIONS", kDefaultIterations));
  const uint64_t seed = EnvOr("ANNALS_CRASH_SEED", std::random_device{}());
  std::printf("crash test: %d iterations, ANNALS_CRASH_SEED=%llu\n", iterations,
              static_cast<unsigned long long>(seed));
  RecordProperty("seed", std::to_string(seed));
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> delay_ms(20, 300);

  ASSERT_OK(server_->Start());
  ASSERT_OK_AND_ASSIGN(verifier_, note::Verifier::FromVerifierKey(server_->verifier_key()));
  std::vector<std::string> all_notes;
  uint64_t total_acked = 0, total_batches = 0;
  double max_restart_secs = 0;
  const auto start = std::chrono::steady_clock::now();

  for (int it = 0; it < iterations; ++it) {
    SCOPED_TRACE("iteration " + std::to_string(it) + " (ANNALS_CRASH_SEED=" + std::to_string(seed) +
                 ")");
    ASSERT_TRUE(server_->running());
    ASSERT_OK_AND_ASSIGN(auto http, HttpClient::Create(server_->url()));
    ASSERT_OK_AND_ASSIGN(SignedCheckpoint before, WaitForQuiescentCheckpoint(http.get()));

    // Load, then kill -9 at a random moment.
    IterationRecord rec;
    std::atomic<bool> stop{false};
    std::vector<std::thread> threads;
    for (int t = 0; t < kClientThreads; ++t)
      threads.emplace_back(ClientLoop, server_->url(), &corpus_, it, t,
                           static_cast<uint32_t>(rng()), &stop, &rec);
    threads.emplace_back(PollCheckpoints, server_->url(), &stop, &rec);
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms(rng)));
    server_->Kill();
    stop = true;
    for (auto& t : threads) t.join();

    // Recover.
    const auto restart = std::chrono::steady_clock::now();
    ASSERT_OK(server_->Start());  // recovery after kill -9
    max_restart_secs =
        std::max(max_restart_secs,
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - restart).count());
    ASSERT_OK_AND_ASSIGN(http, HttpClient::Create(server_->url()));
    ASSERT_OK_AND_ASSIGN(SignedCheckpoint first_after,
                         testutil::FetchCheckpoint(http.get(), *verifier_));
    uint64_t max_seen = before.cp.size;
    for (const auto& n : rec.notes) {
      auto c = testutil::OpenCheckpoint(n, *verifier_);
      ASSERT_TRUE(c.ok()) << c.status().ToString();
      max_seen = std::max(max_seen, c->cp.size);
    }
    EXPECT_GE(first_after.cp.size, max_seen) << "the served checkpoint went back after a crash";
    ASSERT_OK_AND_ASSIGN(SignedCheckpoint now, WaitForQuiescentCheckpoint(http.get()));

    // Every acknowledged event is at its index.
    uint64_t max_acked_end = before.cp.size;
    for (const auto& e : rec.errors) ADD_FAILURE() << "unexpected ingest answer: " << e;
    for (const auto& b : rec.acked) {
      ASSERT_GE(b.first_index, before.cp.size);
      max_acked_end = std::max<uint64_t>(max_acked_end, b.first_index + b.lines.size());
    }
    ASSERT_LE(max_acked_end, now.cp.size) << "acknowledged entries are missing after the crash";
    ASSERT_OK_AND_ASSIGN(
        std::vector<std::string> entries,
        testutil::FetchEntries(http.get(), before.cp.size, now.cp.size, now.cp.size));
    ASSERT_EQ(entries.size(), now.cp.size - before.cp.size);
    std::vector<std::string> payloads;
    for (uint64_t k = 0; k < entries.size(); ++k) {
      auto d = ledger::DecodeEntry(entries[k]);
      ASSERT_TRUE(d.ok()) << "entry " << before.cp.size + k << ": " << d.status().ToString();
      ASSERT_FALSE(d->external);
      payloads.emplace_back(d->payload);
    }
    for (const auto& b : rec.acked) {
      for (size_t k = 0; k < b.lines.size(); ++k) {
        ASSERT_EQ(payloads[b.first_index + k - before.cp.size], b.lines[k])
            << "acknowledged event not at its index " << b.first_index + k;
      }
    }
    // The new entries are exactly some of the lines sent, each once.
    std::set<std::string> sent(rec.sent.begin(), rec.sent.end());
    std::set<std::string> found;
    for (uint64_t k = 0; k < payloads.size(); ++k) {
      ASSERT_TRUE(sent.count(payloads[k])) << "entry " << before.cp.size + k << " was never sent";
      ASSERT_TRUE(found.insert(payloads[k]).second)
          << "entry " << before.cp.size + k << " is stored twice";
    }

    // Every checkpoint served so far, in any iteration, is a prefix of now.
    all_notes.insert(all_notes.end(), rec.notes.begin(), rec.notes.end());
    all_notes.push_back(first_after.note);
    for (const auto& n : rec.notes) ASSERT_NO_FATAL_FAILURE(ExpectConsistent(http.get(), n, now));
    ASSERT_NO_FATAL_FAILURE(ExpectConsistent(http.get(), first_after.note, now));

    // Clean stop, offline verification, start again for the next round.
    ASSERT_OK(server_->Stop());
    testutil::CommandResult v = testutil::RunAnnals({"verify", "--data", data_});
    ASSERT_EQ(v.exit_code, 0) << v.err;
    EXPECT_NE(v.out.find("verified " + std::to_string(now.cp.size) + " entries"), std::string::npos)
        << v.out;
    ASSERT_OK(server_->Start());

    for (const auto& b : rec.acked) total_acked += b.lines.size();
    total_batches += rec.acked.size();
  }

  // Finally, all checkpoints ever seen against the final log.
  ASSERT_OK_AND_ASSIGN(auto http, HttpClient::Create(server_->url()));
  ASSERT_OK_AND_ASSIGN(SignedCheckpoint final_cp, WaitForQuiescentCheckpoint(http.get()));
  std::set<std::string> distinct(all_notes.begin(), all_notes.end());
  for (const auto& n : distinct) ASSERT_NO_FATAL_FAILURE(ExpectConsistent(http.get(), n, final_cp));
  client::RemoteVerifyResult rv;
  EXPECT_OK(client::VerifyRemote(server_->url(), server_->verifier_key(), "", nullptr, &rv));
  ASSERT_OK(server_->Stop());

  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf(
      "crash test: %d kills, %llu entries, %llu acknowledged in %llu batches, "
      "%zu distinct checkpoints checked, slowest recovery %.2fs, %.1fs in all\n",
      iterations, static_cast<unsigned long long>(final_cp.cp.size),
      static_cast<unsigned long long>(total_acked), static_cast<unsigned long long>(total_batches),
      distinct.size(), max_restart_secs, secs);
  EXPECT_GT(total_acked, 0u) << "no append was ever acknowledged: the test tested nothing";
  EXPECT_GT(distinct.size(), static_cast<size_t>(iterations)) << "too few checkpoints seen";
}

}  // namespace
}  // namespace annals
