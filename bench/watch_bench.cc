// watch_bench: figures for the watch collector. Not a test: nothing here
// passes or fails on time.
//
//   1. watch    one chunked watch stream of N ADDED frames of real Pod
//               objects (KubeHound's kind cluster kube-system pods, each
//               with its own uid and resourceVersion) through the real
//               KubeClient, Collector and Ingestor into a ledger on --dir;
//               timed from the collector's start until every event is
//               durable (fdatasync'ed).
//   2. relist   the initial list of M pods in pages of 500 (the
//               collector's default), each item appended; timed until all
//               are durable.
//
// The API server is a small raw-socket HTTP/1.1 server in this process that
// writes bytes built before the clock starts (a real API server runs on
// other cores; building the frames while timed took ~7% of the CPU).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/metrics.h"
#include "index/dedup_index.h"
#include "ingest/ingestor.h"
#include "ledger/ledger.h"
#include "watch/collector.h"
#include "kube/kube_client.h"

namespace annals::bench {
namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "watch_bench: %s\n", what.c_str());
  std::exit(1);
}

// Pods with "@@UID@@" and "@@RV@@" where the uid and resourceVersion go.
struct PodTemplate {
  std::string a, b, c;  // a X b Y c
  bool uid_first = true;  // X is the uid (else the resourceVersion)
};

std::vector<PodTemplate> LoadTemplates() {
  std::ifstream in(std::string(ANNALS_CORPUS_DIR) + "/k8s-objects/kubehound-kind-cluster/kube-system/pods.json");
  std::stringstream ss;
  ss << in.rdbuf();
  json list = json::parse(ss.str());
  std::vector<PodTemplate> out;
  for (json pod : list["items"]) {
    pod["kind"] = "Pod";
    pod["apiVersion"] = "v1";
    pod["metadata"]["uid"] = "@@UID@@";
    pod["metadata"]["resourceVersion"] = "@@RV@@";
    std::string s = pod.dump();
    auto u = s.find("@@UID@@"), r = s.find("@@RV@@");
    if (u == std::string::npos || r == std::string::npos) Die("template");
    if (u < r) out.push_back({s.substr(0, u), s.substr(u + 7, r - u - 7), s.substr(r + 6), true});
    else out.push_back({s.substr(0, r), s.substr(r + 6, u - r - 6), s.substr(u + 7), false});
  }
  return out;
}

std::string Pod(const std::vector<PodTemplate>& t, uint64_t i) {
  char uid[40];
  std::snprintf(uid, sizeof(uid), "00000000-0000-4000-8000-%012llx", static_cast<unsigned long long>(i));
  const PodTemplate& p = t[i % t.size()];
  const std::string rv = std::to_string(1000 + i);
  return p.uid_first ? p.a + uid + p.b + rv + p.c : p.a + rv + p.b + uid + p.c;
}

void WriteAll(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return;
    off += static_cast<size_t>(n);
  }
}

// The API server: lists of `list_items` pods (paged) and, on the first
// watch, a stream of `watch_events` frames; later watches are held open.
class BenchApiServer {
 public:
  BenchApiServer(std::vector<PodTemplate> t, uint64_t list_items, uint64_t watch_events)
      : t_(std::move(t)), list_items_(list_items), watch_events_(watch_events) {
    // The watch stream's chunks (64 KiB of frames each), ready to send.
    std::string chunk;
    auto flush = [&] {
      char hex[32];
      std::snprintf(hex, sizeof(hex), "%zx\r\n", chunk.size());
      watch_chunks_.push_back(hex + chunk + "\r\n");
      chunk.clear();
    };
    for (uint64_t i = 0; i < watch_events_; ++i) {
      chunk += R"({"type":"ADDED","object":)";
      chunk += Pod(t_, list_items_ + i);
      chunk += "}\n";
      if (chunk.size() >= (64 << 10)) flush();
    }
    if (!chunk.empty()) flush();
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 || ::listen(fd_, 16) != 0) Die("listen");
    socklen_t len = sizeof(a);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { Run(); });
  }
  ~BenchApiServer() {
    stop_ = true;
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
    for (int c : held_) ::close(c);
  }
  int port() const { return port_; }

 private:
  void Run() {
    while (!stop_) {
      int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      std::string req;
      char buf[4096];
      while (req.find("\r\n\r\n") == std::string::npos) {
        ssize_t n = ::recv(c, buf, sizeof(buf), 0);
        if (n <= 0) break;
        req.append(buf, static_cast<size_t>(n));
      }
      const std::string line = req.substr(0, req.find("\r\n"));
      if (line.find("watch=1") != std::string::npos) {
        Watch(c);
      } else {
        List(c, line);
        ::close(c);
      }
    }
  }
  void List(int c, const std::string& line) {
    const uint64_t page = 500;
    uint64_t start = 0;
    auto k = line.find("continue=");
    if (k != std::string::npos) start = std::stoull(line.substr(k + 9));
    const uint64_t end = std::min(list_items_, start + page);
    std::string body = R"({"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":")" +
                       std::to_string(1000 + list_items_) + "\"";
    if (end < list_items_) body += R"(,"continue":")" + std::to_string(end) + "\"";
    body += R"(},"items":[)";
    for (uint64_t i = start; i < end; ++i) {
      if (i > start) body += ',';
      body += Pod(t_, i);
    }
    body += "]}";
    WriteAll(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
                    std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body);
  }
  void Watch(int c) {
    WriteAll(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n");
    if (watched_++ > 0 || watch_events_ == 0) {
      held_.push_back(c);  // nothing more to say: held open
      return;
    }
    for (const std::string& chunk : watch_chunks_) WriteAll(c, chunk);
    held_.push_back(c);
  }

  std::vector<PodTemplate> t_;
  uint64_t list_items_, watch_events_;
  std::vector<std::string> watch_chunks_;
  int fd_ = -1, port_ = 0;
  int watched_ = 0;
  std::vector<int> held_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// Runs the collector on a fresh ledger until `expect` entries are durable.
double Run(const std::string& dir, const std::vector<PodTemplate>& t, uint64_t list_items,
           uint64_t watch_events, uint64_t* bytes) {
  std::filesystem::remove_all(dir);
  BenchApiServer api(t, list_items, watch_events);
  ledger::LedgerOptions lo;
  lo.data_dir = dir;
  auto ledger = ledger::Ledger::Open(lo);
  if (!ledger.ok()) Die(ledger.status().message());
  auto dedup = index::DedupIndex::Open(dir + "/index/dedup");
  if (!dedup.ok()) Die(dedup.status().message());
  Metrics metrics;
  auto ingestor = ingest::Ingestor::Open(ledger->get(), dedup->get(), &metrics);
  if (!ingestor.ok()) Die(ingestor.status().message());
  kube::KubeConfig kc;
  kc.server = "http://127.0.0.1:" + std::to_string(api.port());
  kc.token = "bench";
  auto kube = kube::KubeClient::Create(kc);
  if (!kube.ok()) Die(kube.status().message());
  watch::IngestorSink sink(ingestor->get());
  watch::CollectorOptions o;
  o.resources = {*watch::ParseResourceSpec("pods")};
  o.state_dir = dir + "/watch";
  watch::Collector collector(kube->get(), &sink, &metrics, o);
  const uint64_t expect = 1 + list_items + watch_events;  // + the relist marker
  auto t0 = Clock::now();
  if (Status s = collector.Start(); !s.ok()) Die(s.message());
  while ((*ledger)->DurableSize() < expect) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  collector.Stop();
  *bytes = 0;
  for (auto& e : std::filesystem::recursive_directory_iterator(dir))
    if (e.is_regular_file()) *bytes += e.file_size();
  ingestor->reset();
  ledger->reset();
  dedup->reset();
  std::filesystem::remove_all(dir);
  return secs;
}

}  // namespace
}  // namespace annals::bench

int main(int argc, char** argv) {
  using namespace annals::bench;
  CLI::App app{"watch collector figures"};
  std::string dir = "/tmp";
  uint64_t events = 100000, pods = 150000;
  app.add_option("--dir", dir, "where the temporary ledgers go")->capture_default_str();
  app.add_option("--events", events, "watch events in the stream")->capture_default_str();
  app.add_option("--pods", pods, "pods in the relist")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  auto t = LoadTemplates();
  size_t avg = 0;
  for (uint64_t i = 0; i < t.size(); ++i) avg += Pod(t, i).size();
  avg /= t.size();
  std::printf("watch_bench: real Pod objects (KubeHound kind cluster kube-system), %zu bytes on average; %u hardware threads\n",
              avg, std::thread::hardware_concurrency());
  const std::string work = dir + "/annals-watch-bench-" + std::to_string(::getpid());
  uint64_t bytes = 0;
  double w = Run(work, t, 0, events, &bytes);
  std::fflush(stdout);
  std::printf("watch    %8llu events in %6.2fs  %9.0f events/s durable  (%.1f MB/s into the data directory)\n",
              static_cast<unsigned long long>(events), w, static_cast<double>(events) / w,
              static_cast<double>(bytes) / w / 1e6);
  double r = Run(work, t, pods, 0, &bytes);
  std::printf("relist   %8llu pods   in %6.2fs  %9.0f pods/s durable  (%.1f MB/s into the data directory)\n",
              static_cast<unsigned long long>(pods), r, static_cast<double>(pods) / r,
              static_cast<double>(bytes) / r / 1e6);
  return 0;
}
