// tls_bench: what TLS with client certificates costs the ingest path.
// Not a test: nothing here passes or fails, the figures are for people.
//
//   1. webhook  POST /v1/ingest/k8s-audit, EventLists of 400 real corpus
//               events (every auditID made unique), N posters on kept-alive
//               connections, each answer a durable ack: once against a plain
//               loopback `annals serve`, once against one serving HTTPS with
//               --client-ca and --auth-config (every request authenticated
//               by its certificate and authorized for the ingest role).
//               Target: TLS >= 80% of plain. Both servers run side by
//               side and the rounds alternate (plain first, then TLS
//               first), so both see the same mix of whatever else the
//               machine is doing; each run waits until both servers are
//               idle again (their background work from the previous run
//               done).
//   2. handshakes  new connection + full TLS 1.3 handshake with a client
//               certificate (P-256) + GET /healthz, back to back from 1 and
//               4 threads: handshakes/s.
//
// Certificates are made with the openssl CLI, as docs/security.md shows.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench_process.h"
#include "testutil/log_client.h"

namespace annals::bench {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;
constexpr size_t kBatch = 400;

double Since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

[[noreturn]] void Die(const std::string& what, const std::string& why) {
  std::fprintf(stderr, "tls_bench: %s: %s\n", what.c_str(), why.c_str());
  std::exit(1);
}

void Run(const std::string& cmd) {
  if (std::system((cmd + " >/dev/null 2>&1").c_str()) != 0) Die("command failed", cmd);
}

// A CA, a server certificate for 127.0.0.1 and a client certificate
// CN=kube-apiserver, O=annals:ingest, all P-256, in dir.
void MakeCerts(const std::string& d) {
  const std::string ec = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes";
  Run("openssl req -x509 " + ec + " -keyout " + d + "/ca.key -out " + d + "/ca.crt -days 1 -subj /CN=bench-ca");
  std::ofstream(d + "/san.ext") << "subjectAltName=IP:127.0.0.1\n";
  Run("openssl req " + ec + " -keyout " + d + "/server.key -out " + d + "/server.csr -subj /CN=annals");
  Run("openssl x509 -req -in " + d + "/server.csr -CA " + d + "/ca.crt -CAkey " + d +
      "/ca.key -CAcreateserial -days 1 -out " + d + "/server.crt -extfile " + d + "/san.ext");
  Run("openssl req " + ec + " -keyout " + d + "/client.key -out " + d +
      "/client.csr -subj /O=annals:ingest/CN=kube-apiserver");
  Run("openssl x509 -req -in " + d + "/client.csr -CA " + d + "/ca.crt -CAkey " + d +
      "/ca.key -CAcreateserial -days 1 -out " + d + "/client.crt");
  std::ofstream(d + "/auth.json") << R"({"groups":{"annals:ingest":["ingest"]},"anonymous":["verify"]})";
}

class Server {
 public:
  Server(const std::string& annals, const std::string& data, std::vector<std::string> extra) {
    const std::string out = data + ".stdout", err = data + ".stderr";
    std::vector<std::string> args = {annals, "serve", "--data", data, "--listen", "127.0.0.1:0"};
    args.insert(args.end(), extra.begin(), extra.end());
    pid_ = SpawnWithOutput(annals, args, out, err);
    auto t0 = Clock::now();
    while (port_ == 0) {
      std::ifstream in(out);
      std::string line;
      while (std::getline(in, line))
        if (line.starts_with("url: ")) port_ = static_cast<uint16_t>(std::stoi(line.substr(line.rfind(':') + 1)));
      if (port_ == 0 && (::waitpid(pid_, nullptr, WNOHANG) == pid_ || Since(t0) > 120)) {
        pid_ = -1;
        std::ifstream e(err);
        std::string text((std::istreambuf_iterator<char>(e)), std::istreambuf_iterator<char>());
        Die("annals serve did not start", text);
      }
      if (port_ == 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  ~Server() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    ::waitpid(pid_, nullptr, 0);
  }
  uint16_t port() const { return port_; }
  // CPU seconds (user + system, all threads) the server has used so far.
  double CpuSeconds() const { return ProcessCpuSeconds(pid_); }

 private:
  pid_t pid_ = -1;
  uint16_t port_ = 0;
};

// One kept-alive connection, plain or TLS.
template <class Stream>
class Conn {
 public:
  Conn(net::io_context& ioc, uint16_t port, ssl::context* ctx) : stream_(Make(ioc, ctx)) {
    beast::get_lowest_layer(stream_).connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
    // As Go's net/http (the kube-apiserver's webhook client) does: without
    // it, the TLS record that follows the header's waits on Nagle.
    beast::get_lowest_layer(stream_).socket().set_option(tcp::no_delay(true));
    if constexpr (!std::is_same_v<Stream, beast::tcp_stream>) stream_.handshake(ssl::stream_base::client);
  }
  // Status and body.
  std::pair<int, std::string> Do(http::verb verb, const std::string& target, const std::string& body) {
    http::request<http::string_body> req{verb, target, 11};
    req.set(http::field::host, "127.0.0.1");
    req.set(http::field::content_type, "application/json");
    req.body() = body;
    req.prepare_payload();
    http::write(stream_, req);
    http::response<http::string_body> res;
    http::read(stream_, buf_, res);
    return {res.result_int(), std::move(res.body())};
  }

 private:
  static Stream Make(net::io_context& ioc, ssl::context* ctx) {
    if constexpr (std::is_same_v<Stream, beast::tcp_stream>) return Stream(ioc);
    else return Stream(ioc, *ctx);
  }
  Stream stream_;
  beast::flat_buffer buf_;
};

ssl::context ClientContext(const std::string& d) {
  ssl::context ctx(ssl::context::tls_client);
  ctx.load_verify_file(d + "/ca.crt");
  ctx.use_certificate_chain_file(d + "/client.crt");
  ctx.use_private_key_file(d + "/client.key", ssl::context::pem);
  ctx.set_verify_mode(ssl::verify_peer);
  return ctx;
}

// `posters` threads posting EventLists of fresh events for `seconds`.
template <class Stream>
double Saturate(uint16_t port, ssl::context* ctx, const std::vector<std::string>& evs, int posters,
                double seconds, std::atomic<uint64_t>* seq) {
  std::atomic<uint64_t> events{0};
  auto t0 = Clock::now();
  std::vector<std::thread> ts;
  for (int p = 0; p < posters; ++p)
    ts.emplace_back([&] {
      net::io_context ioc;
      Conn<Stream> c(ioc, port, ctx);
      size_t next = 0;
      while (Since(t0) < seconds) {
        std::string body = R"({"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{},"items":[)";
        for (size_t i = 0; i < kBatch; ++i) {
          if (i) body += ',';
          body += testutil::UniqueVariant(evs[next++ % evs.size()], (*seq)++);
        }
        body += "]}";
        auto [status, answer] = c.Do(http::verb::post, "/v1/ingest/k8s-audit", body);
        if (status != 200 || answer.find("\"stored\":" + std::to_string(kBatch)) == std::string::npos)
          Die("webhook", std::to_string(status) + " " + answer);
        events += kBatch;
      }
    });
  for (auto& t : ts) t.join();
  return static_cast<double>(events) / Since(t0);
}

double Handshakes(uint16_t port, ssl::context* ctx, int threads, double seconds) {
  std::atomic<uint64_t> n{0};
  auto t0 = Clock::now();
  std::vector<std::thread> ts;
  for (int i = 0; i < threads; ++i)
    ts.emplace_back([&] {
      net::io_context ioc;
      while (Since(t0) < seconds) {
        Conn<beast::ssl_stream<beast::tcp_stream>> c(ioc, port, ctx);
        if (c.Do(http::verb::get, "/healthz", "").first != 200) Die("handshake", "healthz failed");
        ++n;
      }
    });
  for (auto& t : ts) t.join();
  return static_cast<double>(n) / Since(t0);
}

std::string DefaultAnnalsPath() {
  std::error_code ec;
  auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? "annals" : (self.parent_path().parent_path() / "annals").string();
}

int Main(int argc, char** argv) {
  CLI::App app{"tls_bench: ingest over TLS with client certificates vs plain, and TLS handshakes/s"};
  std::string base = "/tmp", annals = DefaultAnnalsPath();
  double seconds = 5;
  int posters = 4, rounds = 3;
  app.add_option("--dir", base, "where the temporary data directories go")->capture_default_str();
  app.add_option("--annals", annals, "the annals binary")->capture_default_str();
  app.add_option("--seconds", seconds, "length of each run")->capture_default_str();
  app.add_option("--posters", posters, "concurrent posters")->capture_default_str();
  app.add_option("--rounds", rounds, "alternating plain/TLS rounds")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  std::string dir = base + "/tls-bench-XXXXXX";
  if (!::mkdtemp(dir.data())) Die("mkdtemp", std::strerror(errno));
  MakeCerts(dir);
  std::vector<std::string> evs;
  for (auto& l : testutil::CorpusAuditLines())
    if (l.find("\"auditID\"") != std::string::npos) evs.push_back(std::move(l));
  {
    std::ifstream in("/proc/loadavg");
    std::string load;
    std::getline(in, load);
    std::printf("tls_bench\nnproc            %u\nloadavg          %s (other work skews every figure)\n",
                std::thread::hardware_concurrency(), load.c_str());
    std::printf("corpus           %zu audit events, EventLists of %zu, %d posters, %.0f s per run\n",
                evs.size(), kBatch, posters, seconds);
  }
  std::atomic<uint64_t> seq{1};
  ssl::context ctx = ClientContext(dir);
  Server plain_server(annals, dir + "/plain", {});
  Server tls_server(annals, dir + "/tls",
                    {"--tls-cert", dir + "/server.crt", "--tls-key", dir + "/server.key", "--client-ca",
                     dir + "/ca.crt", "--auth-config", dir + "/auth.json"});
  // Warm-up, then alternating rounds: the machine's other load changes
  // from second to second, so each side gets the same mix of it; the best
  // round of each is compared, and the server CPU per event, which other
  // load skews less.
  Saturate<beast::tcp_stream>(plain_server.port(), nullptr, evs, posters, 1, &seq);
  Saturate<beast::ssl_stream<beast::tcp_stream>>(tls_server.port(), &ctx, evs, posters, 1, &seq);
  std::printf("\n== 1. webhook ingest, durable answer per request, %d alternating rounds\n", rounds);
  double plain = 0, tls = 0, plain_cpu = 1e9, tls_cpu = 1e9;
  // Each run starts once both servers have finished the background work
  // of the previous one (dedup runs, index compaction, the projection):
  // otherwise the second run of a round pays for the first.
  auto wait_quiet = [&] {
    for (int i = 0; i < 100; ++i) {
      const double a = plain_server.CpuSeconds(), b = tls_server.CpuSeconds();
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
      if (plain_server.CpuSeconds() - a < 0.015 && tls_server.CpuSeconds() - b < 0.015) return;
    }
  };
  // One run against one server; keeps the best rate and CPU per event.
  auto run = [&]<class Stream>(Server& server, ssl::context* tls_ctx, const char* label, int r, double* best,
                               double* best_cpu) {
    wait_quiet();
    double c0 = server.CpuSeconds();
    double e = Saturate<Stream>(server.port(), tls_ctx, evs, posters, seconds, &seq);
    double cpu = (server.CpuSeconds() - c0) * 1e6 / (e * seconds);
    std::printf("round %d  %-18s %8.0f events/s  server CPU %.1f us/event\n", r + 1, label, e, cpu);
    *best = std::max(*best, e);
    *best_cpu = std::min(*best_cpu, cpu);
  };
  auto run_plain = [&](int r) {
    run.operator()<beast::tcp_stream>(plain_server, nullptr, "plain HTTP", r, &plain, &plain_cpu);
  };
  auto run_tls = [&](int r) {
    run.operator()<beast::ssl_stream<beast::tcp_stream>>(tls_server, &ctx, "TLS + client cert", r, &tls, &tls_cpu);
  };
  for (int r = 0; r < rounds; ++r) {
    // The order alternates too: neither side always goes first.
    if (r % 2 == 0) {
      run_plain(r);
      run_tls(r);
    } else {
      run_tls(r);
      run_plain(r);
    }
    std::fflush(stdout);
  }
  std::printf("best: TLS %.0f vs plain %.0f events/s = %.0f%% (target >= 80%%: %s); "
              "server CPU %.1f vs %.1f us/event\n",
              tls, plain, 100 * tls / plain, tls >= 0.8 * plain ? "meets" : "MISSES", tls_cpu, plain_cpu);
  std::printf("\n== 2. TLS handshakes (new connection, client certificate, GET /healthz)\n");
  for (int threads : {1, 4})
    std::printf("%d thread%s        %7.0f handshakes/s\n", threads, threads > 1 ? "s" : " ",
                Handshakes(tls_server.port(), &ctx, threads, std::min(seconds, 3.0)));
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  return 0;
}

}  // namespace
}  // namespace annals::bench

int main(int argc, char** argv) { return annals::bench::Main(argc, argv); }
