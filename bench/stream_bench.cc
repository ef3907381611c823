// stream_bench: figures for subscriptions, against a spawned `annals serve`
// over loopback: delivery throughput of /v1/watch to 1 and to 100
// Server-Sent Events subscribers (from the shared buffer and, for one
// subscriber, from the log), the lag from ingest acknowledgement to
// delivery at a paced 10,000 events/s (p50/p99), and NATS JetStream publish
// throughput (if nats-server is installed). Events are audit events from
// the shared corpus with unique auditIDs. It measures; it does not pass or
// fail. Clients run on the same machine as the server.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <signal.h>
#include <string>
#include <thread>
#include <vector>

#include "bench_process.h"
#include "client/http_client.h"
#include "client/sse.h"
#include "testutil/server_process.h"

namespace annals::bench {
namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

double Since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "stream_bench: %s\n", what.c_str());
  std::exit(1);
}

std::vector<std::string> Events(size_t n, const std::string& tag) {
  std::vector<std::string> out = UniqueAuditEvents(testutil::CorpusDir(), n, tag);
  if (out.empty()) Die("no corpus events");
  return out;
}

std::string Body(const std::vector<std::string>& evs, size_t b, size_t e) { return EventListBody(evs, b, e); }

// POSTs evs in batches; returns the first index of each batch's answer.
void Ingest(const std::string& url, const std::vector<std::string>& evs, size_t batch) {
  auto c = client::HttpClient::Create(url);
  if (!c.ok()) Die(c.status().message());
  for (size_t i = 0; i < evs.size(); i += batch) {
    auto r = (*c)->Post("/v1/ingest/k8s-audit", Body(evs, i, std::min(evs.size(), i + batch)));
    if (!r.ok() || r->status != 200) Die("ingest failed");
  }
}

// Reads /v1/watch?from=0 until n events arrived; returns seconds.
double Drain(const std::string& url, uint64_t n) {
  auto c = client::HttpClient::Create(url);
  if (!c.ok()) Die(c.status().message());
  client::SseParser p;
  uint64_t got = 0;
  auto t0 = Clock::now();
  Status s = (*c)->GetStream("/v1/watch?from=0", {}, [&](std::string_view d) {
    return p.Feed(d, [&](const client::SseEvent&) { return ++got < n; });
  });
  if (got < n) Die("subscriber got " + std::to_string(got) + " of " + std::to_string(n) + ": " + s.message());
  return Since(t0);
}

std::unique_ptr<testutil::ServerProcess> Serve(const std::string& dir, std::vector<std::string> extra) {
  testutil::ServeOptions o;
  o.data_dir = dir;
  o.checkpoint_interval_ms = 200;
  o.extra_args = std::move(extra);
  auto s = std::make_unique<testutil::ServerProcess>(o);
  Status st = s->Start();
  if (!st.ok()) Die(st.message());
  return s;
}

void Row(const char* what, double value, const char* unit) { std::printf("  %-58s %12.0f %s\n", what, value, unit); }

}  // namespace

int Main() {
  std::printf("stream_bench: /v1/watch and forwarders over loopback (%u cores)\n",
              std::thread::hardware_concurrency());
  testutil::TempDir tmp;
  const size_t kN = 200000;
  auto evs = Events(kN, "b");
  std::printf("  events: %zu audit events, ~%zu bytes each\n", evs.size(), evs[0].size());
  {
    auto server = Serve(tmp.Sub("a"), {"--watch-buffer", "250000"});
    auto t0 = Clock::now();
    Ingest(server->url(), evs, 1000);
    Row("ingest (webhook, batches of 1000), events/s", kN / Since(t0), "");
    Drain(server->url(), kN);  // warm: the feed has built every change
    Row("1 subscriber, from the shared buffer, events/s", kN / Drain(server->url(), kN), "");

    const int kSubs = 100;
    const uint64_t kEach = 50000;
    std::vector<std::thread> ts;
    auto t1 = Clock::now();
    for (int i = 0; i < kSubs; ++i) ts.emplace_back([&] { Drain(server->url(), kEach); });
    for (auto& t : ts) t.join();
    Row("100 subscribers, deliveries/s summed", kSubs * kEach / Since(t1), "");
  }
  {
    // A buffer of 1,000: a subscriber from 0 reads and encodes from the log.
    auto server = Serve(tmp.Sub("a"), {"--watch-buffer", "1000"});
    Row("1 subscriber, from the log (re-encoded), events/s", kN / Drain(server->url(), kN), "");
  }
  {
    // Lag from acknowledgement to delivery at 10,000 events/s (100 every 10 ms).
    auto server = Serve(tmp.Sub("lag"), {});
    auto lag_evs = Events(60000, "lag");
    std::vector<Clock::time_point> acked(lag_evs.size()), delivered(lag_evs.size());
    std::atomic<bool> ready{false};
    std::thread sub([&] {
      auto c = client::HttpClient::Create(server->url());
      client::SseParser p;
      uint64_t got = 0;
      ready = true;
      (void)(*c)->GetStream("/v1/watch?from=0", {}, [&](std::string_view d) {
        return p.Feed(d, [&](const client::SseEvent& e) {
          uint64_t id = std::stoull(e.id);
          if (id < delivered.size()) delivered[id] = Clock::now();
          return ++got < lag_evs.size();
        });
      });
    });
    while (!ready) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    auto c = client::HttpClient::Create(server->url());
    auto next = Clock::now();
    for (size_t i = 0; i < lag_evs.size(); i += 100) {
      std::this_thread::sleep_until(next);
      next += std::chrono::milliseconds(10);
      auto r = (*c)->Post("/v1/ingest/k8s-audit", Body(lag_evs, i, i + 100));
      if (!r.ok() || r->status != 200) Die("paced ingest failed");
      auto now = Clock::now();
      uint64_t first = json::parse(r->body)["first_index"];
      for (uint64_t k = first; k < first + 100 && k < acked.size(); ++k) acked[k] = now;
    }
    sub.join();
    std::vector<double> ms;
    for (size_t i = 0; i < acked.size(); ++i)
      ms.push_back(std::chrono::duration<double, std::milli>(delivered[i] - acked[i]).count());
    std::sort(ms.begin(), ms.end());
    std::printf("  lag ack -> delivery at 10,000 events/s (%zu events): p50 %.2f ms  p99 %.2f ms  max %.2f ms\n",
                ms.size(), ms[ms.size() / 2], ms[ms.size() * 99 / 100], ms.back());
    std::printf("    (negative: delivered before the poster read its 200)\n");
  }
  if (::system("command -v nats-server > /dev/null 2>&1") == 0) {
    const uint16_t port = testutil::FreePort();
    pid_t pid = ::fork();
    if (pid == 0) {
      std::string sd = tmp.Sub("nats"), p = std::to_string(port), log = tmp.Sub("nats.log");
      ::execlp("nats-server", "nats-server", "-js", "-sd", sd.c_str(), "-a", "127.0.0.1", "-p", p.c_str(), "-l",
               log.c_str(), nullptr);
      ::_exit(127);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(700));
    // The log of 200,000 events is already there: the forwarder starts at 0.
    // Rate between the first and the last sample of its counter.
    auto server = Serve(tmp.Sub("a"), {"--nats", "nats://127.0.0.1:" + std::to_string(port)});
    auto c = client::HttpClient::Create(server->url());
    const std::string key = "annals_forward_sent_total{kind=\"nats\"} ";
    uint64_t sent = 0, first_sent = 0;
    Clock::time_point first_t{}, last_t{};
    auto t0 = Clock::now();
    while (sent < kN && Since(t0) < 120) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      auto r = (*c)->Get("/metrics");
      if (!r.ok()) continue;
      auto p = r->body.find(key);
      if (p == std::string::npos) continue;
      sent = std::stoull(r->body.substr(p + key.size()));
      last_t = Clock::now();
      if (first_t == Clock::time_point{}) {
        first_t = last_t;
        first_sent = sent;
      }
    }
    double secs = std::chrono::duration<double>(last_t - first_t).count();
    if (sent > first_sent && secs > 0)
      Row("NATS JetStream publish (acknowledged batches), events/s", (sent - first_sent) / secs, "");
    else
      std::printf("  NATS: forwarder sent %llu\n", static_cast<unsigned long long>(sent));
    server.reset();
    ::kill(pid, SIGTERM);
    ::waitpid(pid, nullptr, 0);
  } else {
    std::printf("  NATS: nats-server not installed; skipped\n");
  }
  return 0;
}

}  // namespace annals::bench

int main() { return annals::bench::Main(); }
