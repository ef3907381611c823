// witness_bench: what witnessing costs (issue 23, docs/witness.md), against
// spawned processes on this machine: an `annals serve` with and without
// --witness-policy naming three local `annals witness` processes (quorum 2
// of 3), side by side in one run.
//
//   1. ingest: real audit events from the corpus (unique auditIDs) in
//      EventLists of 400 from 4 posters, acknowledged (durable) events/s;
//   2. ack -> served checkpoint: events posted paced (10 per request every
//      10 ms, 1,000 events/s) for 10 s; for each request, the time from its
//      acknowledgement until GET /log/checkpoint covers it (polled every
//      millisecond): with witnesses the checkpoint served is the witnessed
//      one, without them the signed one. At the default checkpoint interval
//      (1 s) and at 100 ms.
//
// Each figure is the median of three runs (each run printed), with the
// disk's bound measured in the same run and the core count. It measures;
// it does not pass or fail.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "bench_process.h"
#include "client/http_client.h"
#include "common/bytes.h"
#include "testutil/server_process.h"

namespace annals::bench {
namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "witness_bench: %s\n", what.c_str());
  std::exit(1);
}

double Since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

std::vector<std::string> Events(size_t n, const std::string& tag) {
  std::vector<std::string> out = UniqueAuditEvents(testutil::CorpusDir(), n, tag);
  if (out.empty()) Die("no corpus events");
  return out;
}

std::string Body(const std::vector<std::string>& evs, size_t b, size_t e) { return EventListBody(evs, b, e); }

std::string RunAnnals(const std::vector<std::string>& args) {
  auto r = testutil::RunAnnals(args);
  if (r.exit_code != 0) Die("annals " + args[0] + ": " + r.err);
  return r.out;
}

std::unique_ptr<testutil::ServerProcess> Serve(const std::string& data, const std::string& key,
                                               std::vector<std::string> extra) {
  testutil::ServeOptions o;
  o.data_dir = data;
  o.key_file = key;
  o.extra_args = std::move(extra);
  auto s = std::make_unique<testutil::ServerProcess>(o);
  if (Status st = s->Start(); !st.ok()) Die("serve: " + st.ToString());
  return s;
}

// The size of the served checkpoint.
uint64_t ServedSize(client::HttpClient* c) {
  auto r = c->Get("/log/checkpoint");
  if (!r.ok() || r->status != 200) Die("GET /log/checkpoint");
  const size_t a = r->body.find('\n');
  const size_t b = r->body.find('\n', a + 1);
  auto n = ParseDecimal(std::string_view(r->body).substr(a + 1, b - a - 1));
  if (!n) Die("bad checkpoint");
  return *n;
}

double IngestRate(const std::string& url, const std::vector<std::string>& evs, int posters, size_t batch) {
  std::atomic<size_t> next{0};
  const auto t0 = Clock::now();
  std::vector<std::thread> ts;
  for (int p = 0; p < posters; ++p)
    ts.emplace_back([&] {
      auto c = client::HttpClient::Create(url);
      if (!c.ok()) Die(c.status().message());
      for (;;) {
        const size_t i = next.fetch_add(batch);
        if (i >= evs.size()) return;
        auto r = (*c)->Post("/v1/ingest/k8s-audit", Body(evs, i, std::min(evs.size(), i + batch)));
        if (!r.ok() || r->status != 200) Die("ingest failed");
      }
    });
  for (auto& t : ts) t.join();
  return static_cast<double>(evs.size()) / Since(t0);
}

struct Latency {
  double p50 = 0, p99 = 0, max = 0;
};

Latency AckToServed(const std::string& url, const std::vector<std::string>& evs, double seconds) {
  struct Pending {
    uint64_t end;
    Clock::time_point acked;
  };
  std::mutex mu;
  std::vector<Pending> pending;
  std::vector<double> lat;
  std::atomic<bool> done{false};
  Clock::time_point done_at;
  std::thread poller([&] {
    auto c = client::HttpClient::Create(url);
    if (!c.ok()) Die(c.status().message());
    for (;;) {
      const bool last = done.load();
      const uint64_t size = ServedSize(c->get());
      const auto now = Clock::now();
      {
        std::lock_guard l(mu);
        auto it = std::remove_if(pending.begin(), pending.end(), [&](const Pending& p) {
          if (p.end > size) return false;
          lat.push_back(std::chrono::duration<double, std::milli>(now - p.acked).count());
          return true;
        });
        pending.erase(it, pending.end());
        if (last && pending.empty()) return;
        if (last && Since(done_at) > 30) Die("a posted event was not served within 30 s");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  });
  auto c = client::HttpClient::Create(url);
  if (!c.ok()) Die(c.status().message());
  const auto t0 = Clock::now();
  size_t i = 0;
  for (int k = 0; Since(t0) < seconds; ++k) {
    const size_t e = std::min(evs.size(), i + 10);
    auto r = c.value()->Post("/v1/ingest/k8s-audit", Body(evs, i, e));
    const auto acked = Clock::now();
    if (!r.ok() || r->status != 200) Die("paced ingest failed");
    const json a = json::parse(r->body);
    const uint64_t first = a.value("first_index", uint64_t{0});
    {
      std::lock_guard l(mu);
      pending.push_back({first + (e - i), acked});
    }
    i = e % evs.size() == 0 ? 0 : e;
    std::this_thread::sleep_until(t0 + std::chrono::milliseconds(10 * (k + 1)));
  }
  done_at = Clock::now();
  done = true;
  poller.join();
  std::sort(lat.begin(), lat.end());
  Latency out;
  if (lat.empty()) return out;
  out.p50 = lat[lat.size() / 2];
  out.p99 = lat[std::min(lat.size() - 1, lat.size() * 99 / 100)];
  out.max = lat.back();
  return out;
}

}  // namespace
}  // namespace annals::bench

int main() {
  using namespace annals::bench;
  using annals::testutil::TempDir;
  TempDir tmp;
  const std::string dir = tmp.path();
  std::printf("witness_bench: %u cores\n", std::thread::hardware_concurrency());

  // One log key per server run: a witness remembers each log it cosigned,
  // and a second run's tree under the same key would be a fork to it.
  constexpr int kRuns = 3;
  constexpr int kLogs = kRuns * 2 * 3;
  std::vector<std::string> log_keys, log_vkeys;
  for (int k = 0; k < kLogs; ++k) {
    log_keys.push_back(dir + "/log" + std::to_string(k) + ".key");
    const std::string out =
        RunAnnals({"keygen", "--name", "bench.example/log-" + std::to_string(k), "--out", log_keys.back()});
    log_vkeys.push_back(out.substr(0, out.find('\n')));
  }
  std::string policy;
  for (const auto& v : log_vkeys) policy += "log " + v + "\n";
  std::vector<std::unique_ptr<annals::testutil::ServerProcess>> witnesses;
  for (int i = 1; i <= 3; ++i) {
    const std::string name = "w" + std::to_string(i);
    RunAnnals({"keygen", "--name", "bench.example/" + name, "--out", dir + "/" + name + ".key"});
    annals::testutil::ServeOptions wo;
    wo.command = "witness";
    wo.data_dir = dir + "/" + name;
    wo.wait_ready = false;
    wo.extra_args = {"--key", dir + "/" + name + ".key"};
    for (const auto& v : log_vkeys) wo.extra_args.insert(wo.extra_args.end(), {"--log", v});
    witnesses.push_back(std::make_unique<annals::testutil::ServerProcess>(wo));
    if (auto s = witnesses.back()->Start(); !s.ok()) Die("witness: " + s.ToString());
    policy += "witness " + name + " " + witnesses.back()->verifier_key() + " " + witnesses.back()->url() + "\n";
  }
  policy += "group two-of-three 2 w1 w2 w3\nquorum two-of-three\n";
  std::ofstream(dir + "/policy") << policy;
  int next_log = 0;

  constexpr size_t kIngestEvents = 200000;
  std::vector<double> plain_rate, witnessed_rate, bounds;
  std::printf("\n== 1. ingest: %zu real audit events, EventLists of 400 from 4 posters (events/s)\n", kIngestEvents);
  for (int run = 0; run < kRuns; ++run) {
    std::string error;
    const double bound = DiskBound(dir, 2.0, &error);
    if (bound < 0) Die("disk bound: " + error);
    bounds.push_back(bound / 1e6);
    // Alternate which goes first, so that neither always meets a warmer disk.
    double rates[2];
    for (int k = 0; k < 2; ++k) {
      const bool witnessed = (k + run) % 2 == 1;
      const std::string data = dir + "/ingest-" + std::to_string(run) + (witnessed ? "-w" : "-p");
      std::vector<std::string> extra;
      if (witnessed) extra = {"--witness-policy", dir + "/policy"};
      auto s = Serve(data, log_keys[next_log++], extra);
      rates[witnessed] = IngestRate(s->url(), Events(kIngestEvents, data), 4, 400);
      if (!s->Stop().ok()) Die("stop");
      std::filesystem::remove_all(data);
    }
    plain_rate.push_back(rates[0]);
    witnessed_rate.push_back(rates[1]);
    std::printf("run %d: without witnesses %.0f, with three witnesses %.0f; disk bound %.0f MB/s\n", run + 1,
                rates[0], rates[1], bound / 1e6);
  }
  std::printf("median: without %.0f events/s, with %.0f events/s (%.1f%%); disk bound %.0f MB/s\n",
              Median(plain_rate), Median(witnessed_rate), 100.0 * Median(witnessed_rate) / Median(plain_rate),
              Median(bounds));

  std::printf("\n== 2. ack -> served checkpoint, 1,000 events/s paced for 10 s (ms)\n");
  for (int interval : {1000, 100}) {
    std::vector<double> p50[2], p99[2], mx[2];
    for (int run = 0; run < kRuns; ++run) {
      for (int witnessed = 0; witnessed < 2; ++witnessed) {
        const std::string data = dir + "/lat-" + std::to_string(interval) + "-" + std::to_string(run) +
                                 (witnessed ? "-w" : "-p");
        std::vector<std::string> extra{"--checkpoint-interval", std::to_string(interval)};
        if (witnessed) extra.insert(extra.end(), {"--witness-policy", dir + "/policy"});
        auto s = Serve(data, log_keys[next_log++], extra);
        const Latency l = AckToServed(s->url(), Events(20000, data), 10.0);
        if (!s->Stop().ok()) Die("stop");
        std::filesystem::remove_all(data);
        p50[witnessed].push_back(l.p50);
        p99[witnessed].push_back(l.p99);
        mx[witnessed].push_back(l.max);
        std::printf("interval %d ms run %d %s: p50 %.1f p99 %.1f max %.1f\n", interval, run + 1,
                    witnessed ? "witnessed (3 witnesses, quorum 2)" : "signed only", l.p50, l.p99, l.max);
      }
    }
    std::printf("interval %d ms median: signed only p50 %.1f p99 %.1f; witnessed p50 %.1f p99 %.1f (max %.1f)\n",
                interval, Median(p50[0]), Median(p99[0]), Median(p50[1]), Median(p99[1]), Median(mx[1]));
  }
  for (auto& w : witnesses) (void)w->Stop();
  return 0;
}
