// SIGTERM under load (issue 15 item 2). Four clients post batches of real
// audit events (each with a unique auditID) over keep-alive connections, a
// fifth follows /v1/watch and TCP-connector clients send lines, and after a
// random 100-700 ms the server gets SIGTERM. Each round:
//  - the server exits 0 within the timeout, and its stderr holds no
//    sanitizer report (make test also runs this test against the
//    ASan+UBSan build of the binary: a callback on a destroyed part, a
//    response written through a destroyed listener, would show here);
//  - every answer a client got was 200 (all stored) or 503 (shutting down,
//    back-pressure): a request the server took is answered, not dropped;
//  - after a restart every acknowledged event is in the log at the index
//    it was given, and `annals verify --data` passes.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "client/http_client.h"
#include "testutil/log_client.h"
#include "testutil/server_process.h"
#include "testutil/test_macros.h"

namespace annals {
namespace {

using client::HttpClient;

constexpr int kRounds = 4;
constexpr int kPosters = 4;

struct Acked {
  uint64_t first_index;
  std::vector<std::string> tags;
};

struct Round {
  std::mutex mu;
  std::vector<Acked> acked;
  std::vector<std::string> unexpected;  // answers other than 200 / 503
  uint64_t answered_503 = 0;
};

void Poster(const std::string& url, const std::vector<std::string>* corpus, int round, int thread,
            std::atomic<bool>* stop, Round* rec) {
  auto http = HttpClient::Create(url);
  if (!http.ok()) return;
  std::mt19937 rng(round * 100 + thread);
  std::uniform_int_distribution<int> batch(1, 32);
  uint64_t seq = 0;
  while (!stop->load()) {
    std::vector<std::string> lines, tags;
    const int n = batch(rng);
    for (int k = 0; k < n; ++k, ++seq) {
      std::string tag = "s" + std::to_string(round) + "." + std::to_string(thread) + "." + std::to_string(seq);
      lines.push_back(testutil::UniqueVariant((*corpus)[(seq * 5 + thread) % corpus->size()], tag));
      tags.push_back(tag);
    }
    std::string body;
    for (const auto& l : lines) body += l + "\n";
    auto r = (*http)->Post("/v1/ingest/events", body, "application/x-ndjson");
    if (!r.ok()) {
      // The listener is closed: from now on connecting fails.
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      auto again = HttpClient::Create(url);
      if (again.ok()) http = std::move(again);
      continue;
    }
    if (r->status == 503 || r->status == 429) {
      std::lock_guard lock(rec->mu);
      ++rec->answered_503;
      continue;
    }
    auto answer = testutil::ParseIngestAnswer(*r, lines.size());
    std::lock_guard lock(rec->mu);
    if (!answer.ok() || answer->stored != lines.size() || !answer->first_index) {
      rec->unexpected.push_back(std::to_string(r->status) + " " + r->body.substr(0, 200));
      continue;
    }
    rec->acked.push_back({*answer->first_index, std::move(tags)});
  }
}

// Lines to the TCP connector, reconnecting until told to stop.
void TcpSender(uint16_t port, const std::vector<std::string>* corpus, int round, std::atomic<bool>* stop) {
  uint64_t seq = 0;
  while (!stop->load()) {
    int fd = testutil::ConnectLoopback(port);
    if (fd < 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      continue;
    }
    while (!stop->load()) {
      std::string chunk;
      for (int k = 0; k < 16; ++k, ++seq)
        chunk += testutil::UniqueVariant((*corpus)[seq % corpus->size()], "t" + std::to_string(round) + "." +
                                                                             std::to_string(seq)) + "\n";
      if (::send(fd, chunk.data(), chunk.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(chunk.size())) break;
    }
    ::close(fd);
  }
}

// A /v1/watch subscriber from the start of the log, until the server goes.
void Watcher(const std::string& url, std::atomic<bool>* stop) {
  while (!stop->load()) {
    auto http = HttpClient::Create(url);
    if (!http.ok()) return;
    (void)(*http)->GetStream("/v1/watch?from=0", {}, [stop](std::string_view) { return !stop->load(); });
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

TEST(Shutdown, SigtermUnderLoadAnswersWhatItTookAndLosesNothing) {
  testutil::TempDir dir;
  const auto corpus = testutil::CorpusAuditLines();
  ASSERT_GT(corpus.size(), 50u);
  testutil::ServeOptions o;
  o.data_dir = dir.Sub("data");
  o.checkpoint_interval_ms = 20;
  o.extra_args = {"--tcp-listen", "127.0.0.1:" + std::to_string(testutil::FreePort())};
  testutil::ServerProcess server(o);
  std::mt19937 rng(20261203);
  std::uniform_int_distribution<int> delay_ms(100, 700);
  std::vector<Acked> all_acked;
  uint64_t answered_503 = 0;
  for (int round = 0; round < kRounds; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    ASSERT_OK(server.Start());
    const uint16_t tcp_port = static_cast<uint16_t>(std::stoi(o.extra_args[1].substr(10)));
    Round rec;
    std::atomic<bool> stop{false};
    std::vector<std::thread> threads;
    for (int t = 0; t < kPosters; ++t)
      threads.emplace_back(Poster, server.url(), &corpus, round, t, &stop, &rec);
    threads.emplace_back(TcpSender, tcp_port, &corpus, round, &stop);
    threads.emplace_back(Watcher, server.url(), &stop);
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms(rng)));
    Status stopped = server.Stop(std::chrono::seconds(60));  // SIGTERM while the clients keep going
    stop = true;
    for (auto& t : threads) t.join();
    ASSERT_OK(stopped);
    const std::string err = server.StderrText();
    EXPECT_EQ(err.find("AddressSanitizer"), std::string::npos) << err;
    EXPECT_EQ(err.find("runtime error:"), std::string::npos) << err;
    EXPECT_EQ(err.find("LeakSanitizer"), std::string::npos) << err;
    EXPECT_TRUE(rec.unexpected.empty()) << rec.unexpected.size() << " unexpected answers, e.g. "
                                        << rec.unexpected.front();
    EXPECT_GT(rec.acked.size(), 0u);
    all_acked.insert(all_acked.end(), rec.acked.begin(), rec.acked.end());
    answered_503 += rec.answered_503;
  }
  std::fprintf(stderr, "%zu batches acknowledged over %d SIGTERMs under load; %llu answered 503\n",
               all_acked.size(), kRounds, static_cast<unsigned long long>(answered_503));

  // Every acknowledged event is where its answer said, after a restart.
  ASSERT_OK(server.Start());
  auto http = HttpClient::Create(server.url());
  ASSERT_OK(http.status());
  auto verifier = note::Verifier::FromVerifierKey(server.verifier_key());
  ASSERT_OK(verifier.status());
  uint64_t end = 0;
  for (const auto& a : all_acked) end = std::max<uint64_t>(end, a.first_index + a.tags.size());
  auto cp = testutil::WaitForCheckpoint(http->get(), **verifier, end, std::chrono::seconds(30));
  ASSERT_OK(cp.status());
  auto entries = testutil::FetchEntries(http->get(), 0, end, cp->cp.size);
  ASSERT_OK(entries.status());
  uint64_t checked = 0;
  for (const auto& a : all_acked)
    for (size_t k = 0; k < a.tags.size(); ++k, ++checked)
      ASSERT_NE((*entries)[a.first_index + k].find(a.tags[k] + "\""), std::string::npos)
          << "acknowledged event " << a.tags[k] << " is not at index " << a.first_index + k;
  EXPECT_GT(checked, 0u);
  ASSERT_OK(server.Stop());
  auto v = testutil::RunAnnals({"verify", "--data", o.data_dir});
  EXPECT_EQ(v.exit_code, 0) << v.err << v.out;
}

}  // namespace
}  // namespace annals
