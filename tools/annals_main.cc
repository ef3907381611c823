// annals: the single binary. Subcommands per SPEC.md.
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <shared_mutex>
#include <iostream>
#include <thread>
#include <nlohmann/json.hpp>

#include <boost/asio/ip/address.hpp>

#include "api/api.h"
#include "api/paths.h"
#include "auth/authorizer.h"
#include "checkpoint/note.h"
#include "index/dedup_index.h"
#include "index/event_index.h"
#include "ingest/file_tail.h"
#include "ingest/ingestor.h"
#include "ingest/tcp_line.h"
#include "client/client_options.h"
#include "client/http_client.h"
#include "client/remote_verifier.h"
#include "client/sse.h"
#include "common/bytes.h"
#include "common/file_util.h"
#include "ledger/ledger.h"
#include "ledger/verifier.h"
#include "server/http_server.h"
#include "client/table.h"
#include "forward/forwarder.h"
#include "forward/nats_sink.h"
#include "forward/syslog_sink.h"
#include "common/sha256.h"
#include "state/projector.h"
#include "state/questions.h"
#include "stream/change_feed.h"
#include "watch/collector.h"
#include "kube/kube_client.h"
#include "kube/token_review.h"

namespace annals {
namespace {

// How long one TokenReview may take, connecting included. A request whose
// token needs one waits that long at most (on a review thread, not a
// listener thread), then gets 401.
constexpr std::chrono::milliseconds kTokenReviewTimeout{5000};

int Fail(const std::string& msg) {
  std::fprintf(stderr, "annals: %s\n", msg.c_str());
  return 1;
}
int Fail(const Status& s) { return Fail(s.message()); }

std::function<void(uint64_t, uint64_t)> ProgressBar(const char* what) {
  if (!::isatty(2)) return nullptr;
  return [what](uint64_t done, uint64_t total) {
    int pct = total ? static_cast<int>(done * 100 / total) : 100;
    int bars = pct / 4;
    std::fprintf(stderr, "\r%s [%.*s%*s] %3d%%", what, bars, "#########################",
                 25 - bars, "", pct);
    if (done >= total) std::fprintf(stderr, "\n");
  };
}

struct WatchFlags {
  bool enabled = false;
  std::string kubeconfig, context, resources;
  bool in_cluster = false;
  int watch_timeout_s = 300;
  size_t list_page = 500;
};

struct ServeFlags {
  std::string tcp_listen;
  std::vector<std::string> tails;
  WatchFlags watch;
  size_t watch_buffer = 65536;
  std::vector<std::string> forwards;
  std::string forward_ca;
  std::string nats;
  // docs/security.md
  std::string tls_cert, tls_key, client_ca, tokens, auth_config;
  std::string token_review;  // "in-cluster" or a kubeconfig path
  std::vector<std::string> token_review_audiences;
  bool insecure_listen = false;
  int request_timeout = 60;
  double rate_limit = 0, rate_burst = 0;
  uint32_t max_inflight = 0;
  uint64_t memory_budget = uint64_t{1} << 30;
  uint64_t snapshot_every = 1000000;
  double snapshot_interval = 600;
};

// Where the state projection's snapshot lives (state_snapshot.h).
std::string SnapshotPath(const std::string& data) { return data + "/index/state/projection.snap"; }

// The event index's share of --memory-budget: half for its block cache, an
// eighth (at most 64 MiB) for its memtables.
index::EventIndexOptions EventIndexOptionsFor(uint64_t budget) {
  index::EventIndexOptions o;
  o.block_cache_bytes = budget / 2;
  o.write_buffer_bytes = std::min<uint64_t>(budget / 8, uint64_t{64} << 20);
  return o;
}

// The API server's client: --kubeconfig, else in-cluster, else
// $KUBECONFIG or ~/.kube/config.
StatusOr<std::unique_ptr<kube::KubeClient>> MakeKubeClient(const WatchFlags& f) {
  StatusOr<kube::KubeConfig> cfg = FailedPreconditionError("no API server configured");
  if (!f.kubeconfig.empty()) {
    cfg = kube::LoadKubeconfig(f.kubeconfig, f.context);
  } else if (f.in_cluster || std::getenv("KUBERNETES_SERVICE_HOST")) {
    cfg = kube::InClusterConfig();
  } else {
    std::string path;
    if (const char* k = std::getenv("KUBECONFIG"); k && *k) path = std::string(k).substr(0, std::string(k).find(':'));
    else if (const char* h = std::getenv("HOME")) path = std::string(h) + "/.kube/config";
    if (path.empty() || !FileExists(path))
      return FailedPreconditionError(
          "no API server to watch: give --kubeconfig FILE or --in-cluster (or set $KUBECONFIG)");
    cfg = kube::LoadKubeconfig(path, f.context);
  }
  if (!cfg.ok()) return cfg.status();
  return kube::KubeClient::Create(std::move(*cfg));
}

StatusOr<watch::CollectorOptions> MakeCollectorOptions(const WatchFlags& f, const std::string& state_dir) {
  watch::CollectorOptions o;
  ASSIGN_OR_RETURN(o.resources, watch::ParseResourceList(f.resources));
  o.state_dir = state_dir;
  if (f.watch_timeout_s <= 0) return InvalidArgumentError("--watch-timeout must be positive");
  o.watch_timeout = std::chrono::seconds(f.watch_timeout_s);
  if (f.list_page == 0) return InvalidArgumentError("--watch-list-page must be positive");
  o.list_page = f.list_page;
  return o;
}

// DATA/forward/<kind>-<first 16 hex of SHA-256(target)>.pos: a new target
// starts from the beginning of the log.
std::string CursorPath(const std::string& data, const forward::Sink& sink) {
  return data + "/forward/" + sink.kind() + "-" +
         HexEncode(HashBytes(Sha256(sink.target()))).substr(0, 16) + ".pos";
}

bool IsLoopbackHost(const std::string& host) {
  boost::system::error_code ec;
  auto a = boost::asio::ip::make_address(host, ec);
  return !ec && a.is_loopback();
}

int Serve(const std::string& data, const std::string& listen, const std::string& key_file,
          const std::string& origin, int interval_ms, uint64_t max_body, const ServeFlags& flags) {
  ledger::LedgerOptions lo;
  lo.data_dir = data;
  lo.origin = origin;
  lo.checkpoint_interval = std::chrono::milliseconds(interval_ms);
  if (!key_file.empty()) {
    auto k = ReadFileToString(key_file);
    if (!k.ok()) return Fail(k.status());
    std::string key = *k;
    while (!key.empty() && (key.back() == '\n' || key.back() == '\r')) key.pop_back();
    lo.private_key = key;
  }
  // Block termination signals before threads start; a waiter below takes them.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGHUP);  // reloads the TLS certificate and key
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);

  auto listen_hp = SplitHostPort(listen);
  if (!listen_hp.ok()) return Fail(listen_hp.status());
  const bool tls = !flags.tls_cert.empty();
  if (!tls && !flags.insecure_listen && !IsLoopbackHost(listen_hp->first))
    return Fail("refusing plain HTTP on " + listen +
                ": give --tls-cert and --tls-key, or --insecure-listen to accept the risk");
  const bool auth_on = !flags.client_ca.empty() || !flags.tokens.empty() || !flags.auth_config.empty() ||
                       !flags.token_review.empty();
  if (!IsLoopbackHost(listen_hp->first) && !auth_on)
    std::fprintf(stderr, "annals: warning: no --client-ca, --tokens, --token-review or --auth-config: "
                         "every caller that reaches %s may write and read\n", listen.c_str());
  if (flags.token_review.empty() && !flags.token_review_audiences.empty())
    return Fail("--token-review-audience needs --token-review");
  // The default roles make every authenticated caller an admin: with
  // TokenReview, that would be every ServiceAccount in the cluster.
  if (!flags.token_review.empty() && flags.auth_config.empty())
    return Fail("--token-review needs --auth-config: without it every ServiceAccount in the cluster "
                "would be an admin");
  std::unique_ptr<auth::Authorizer> authorizer;
  std::unique_ptr<kube::TokenReviewer> token_reviewer;
  if (auth_on) {
    auth::AuthConfig ac = auth::DefaultAuthConfig();
    if (!flags.auth_config.empty()) {
      auto text = ReadFileToString(flags.auth_config);
      if (!text.ok()) return Fail(text.status());
      auto parsed = auth::ParseAuthConfig(*text);
      if (!parsed.ok()) return Fail(flags.auth_config + ": " + parsed.status().message());
      ac = std::move(*parsed);
      // A relative tokens path is relative to the config file.
      if (!ac.tokens_file.empty() && ac.tokens_file.front() != '/')
        ac.tokens_file = DirName(flags.auth_config) + "/" + ac.tokens_file;
    }
    auto a = auth::Authorizer::Create(std::move(ac), flags.tokens);
    if (!a.ok()) return Fail(a.status());
    authorizer = std::move(*a);
  }
  if (!flags.token_review.empty()) {
    auto cfg = flags.token_review == "in-cluster" ? kube::InClusterConfig()
                                                  : kube::LoadKubeconfig(flags.token_review);
    if (!cfg.ok())
      return Fail("--token-review: " + cfg.status().message() +
                  (flags.token_review == "in-cluster" ? "; outside a cluster, give --token-review KUBECONFIG" : ""));
    auto client = kube::KubeClient::Create(std::move(*cfg));
    if (!client.ok()) return Fail("--token-review: " + client.status().message());
    token_reviewer = std::make_unique<kube::TokenReviewer>(std::move(*client), flags.token_review_audiences,
                                                            kTokenReviewTimeout);
  }

  auto ledger = ledger::Ledger::Open(lo);
  if (!ledger.ok()) return Fail("cannot open ledger in " + data + ": " + ledger.status().message());
  const auto& rec = (*ledger)->recovery();
  if (!rec.log.reason.empty())
    std::fprintf(stderr, "annals: recovery: cut %llu bytes of torn log tail (%s)\n",
                 static_cast<unsigned long long>(rec.log.truncated_bytes), rec.log.reason.c_str());
  if (!rec.checkpoint_log_cut.empty())
    std::fprintf(stderr, "annals: recovery: cut torn checkpoint log tail (%s)\n",
                 rec.checkpoint_log_cut.c_str());
  if (rec.tiles_rebuilt) std::fprintf(stderr, "annals: recovery: rebuilt all tiles from the log\n");

  auto dedup = index::DedupIndex::Open(data + "/index/dedup");
  if (!dedup.ok()) return Fail("cannot open the dedup index: " + dedup.status().message());
  Metrics metrics;
  auto ingestor = ingest::Ingestor::Open(ledger->get(), dedup->get(), &metrics);
  if (!ingestor.ok()) return Fail("cannot catch up the dedup index: " + ingestor.status().message());
  std::string wiped;
  auto events = index::EventIndex::Open(data + "/index/events", EventIndexOptionsFor(flags.memory_budget), &wiped);
  if (!events.ok()) return Fail("cannot open the event index: " + events.status().message());
  if (!wiped.empty()) std::fprintf(stderr, "annals: event index %s: rebuilding it from the log\n", wiped.c_str());
  std::fprintf(stderr, "annals: event index covers %llu of the log's %llu entries\n",
               static_cast<unsigned long long>((*events)->watermark()),
               static_cast<unsigned long long>((*ledger)->DurableSize()));
  state::StateStore store;
  // The projection catches up on its own thread while the listener serves:
  // the log, health and ingest at once, the questions once it is ready.
  state::Projector projector(ledger->get(), &store, events->get());
  projector.set_snapshot(SnapshotPath(data), std::max<uint64_t>(flags.snapshot_every, 1), flags.snapshot_interval);
  projector.OnCaughtUp([](uint64_t entries, uint64_t replayed, double secs) {
    std::printf("ready: %llu entries, %llu of them replayed, in %.2fs\n", static_cast<unsigned long long>(entries),
                static_cast<unsigned long long>(replayed), secs);
    std::fflush(stdout);
  });
  state::Questions questions(ledger->get(), &store, events->get());
  questions.OnIndexDamaged([&projector](const std::string& why) { projector.RebuildEvents(why); });
  api::Api api(ledger->get(), ingestor->get(), &metrics, &questions);
  api.SetReadiness([&projector]() {
    api::Readiness r;
    const auto p = projector.progress();
    r.ready = projector.caught_up();
    r.applied = p.applied;
    r.target = p.target;
    r.entries_per_second = p.entries_per_second;
    r.rebuilding_index = p.rebuilding_events;
    return r;
  });
  stream::ChangeFeedOptions fo;
  fo.buffer_entries = std::max<size_t>(1, flags.watch_buffer);
  stream::ChangeFeed feed({ledger->get(), &store, &questions}, &projector, fo);
  feed.Start();
  api.SetChangeFeed(&feed);
  std::vector<std::unique_ptr<forward::Forwarder>> forwarders;
  std::vector<std::string> targets = flags.forwards;
  if (!flags.nats.empty()) targets.push_back(flags.nats);
  for (const auto& f : targets) {
    std::unique_ptr<forward::Sink> sink;
    forward::ForwarderOptions fwo;
    if (f.starts_with("syslog+")) {
      auto t = forward::ParseSyslogUrl(f);
      if (!t.ok()) return Fail(t.status());
      sink = std::make_unique<forward::SyslogSink>(*t, (*ledger)->signer().name(), flags.forward_ca);
      fwo.wait_for_checkpoint = true;
    } else if (f == flags.nats) {
      sink = std::make_unique<forward::NatsSink>(f, (*ledger)->signer().name());
    } else {
      return Fail("--forward wants syslog+tcp://HOST:PORT or syslog+tls://HOST:PORT, got " + f);
    }
    std::string cursor = CursorPath(data, *sink);
    forwarders.push_back(std::make_unique<forward::Forwarder>(&feed, std::move(sink), cursor, &metrics, fwo));
    Status s = forwarders.back()->Start();
    if (!s.ok()) return Fail("forwarder " + f + ": " + s.message());
  }
  if (token_reviewer) {
    auth::TokenReviewOptions ro;
    ro.metrics = &metrics;
    authorizer->EnableTokenReview(
        [r = token_reviewer.get()](std::string_view token) { return r->Review(token); }, std::move(ro));
  }
  if (authorizer) api.EnableAuth(authorizer.get());
  auth::Limiter limiter({flags.rate_limit, flags.rate_burst, flags.max_inflight});
  if (limiter.enabled()) api.EnableLimits(&limiter);
  server::HttpServerOptions so;
  so.listen = listen;
  so.max_body_bytes = max_body;
  so.tls_cert = flags.tls_cert;
  so.tls_key = flags.tls_key;
  so.client_ca = flags.client_ca;
  so.idle_timeout_seconds = flags.request_timeout;
  so.handshake_timeout_seconds = std::min(so.handshake_timeout_seconds, flags.request_timeout);
  // However Serve returns: the review threads use the api, the ingestor,
  // the metrics and the reviewer, so they stop before those go (after the
  // listener, declared below, has stopped handing them requests).
  struct StopReviews {
    auth::Authorizer* a;
    ~StopReviews() {
      if (a) a->Stop();
    }
  } stop_reviews{authorizer.get()};
  server::HttpServer http(so, [&api](api::HttpRequest&& req, api::Responder r) {
    api.Handle(std::move(req), std::move(r));
  });
  auto port = http.Start();
  if (!port.ok()) return Fail(port.status());
  std::unique_ptr<ingest::TcpLineListener> tcp;
  if (!flags.tcp_listen.empty()) {
    tcp = std::make_unique<ingest::TcpLineListener>(flags.tcp_listen, ingestor->get(), &metrics);
    auto thp = SplitHostPort(flags.tcp_listen);
    if (!thp.ok()) return Fail(thp.status());
    if (tls) {
      ingest::TcpLineListener::Admit admit;
      if (authorizer)
        admit = [a = authorizer.get()](const std::string& user, const std::vector<std::string>& groups) {
          return !user.empty() && auth::Resolve(a->config(), user, groups, true).MayIngest("tcp");
        };
      Status s = tcp->EnableTls({flags.tls_cert, flags.tls_key, flags.client_ca}, std::move(admit));
      if (!s.ok()) return Fail(s);
    } else if (!flags.insecure_listen && !IsLoopbackHost(thp->first)) {
      return Fail("refusing plain TCP on " + flags.tcp_listen +
                  ": give --tls-cert and --tls-key, or --insecure-listen to accept the risk");
    }
    auto tport = tcp->Start();
    if (!tport.ok()) return Fail(tport.status());
    std::printf("tcp: %u\n", *tport);
  }
  std::vector<std::unique_ptr<ingest::FileTailer>> tailers;
  for (const auto& f : flags.tails) {
    tailers.push_back(std::make_unique<ingest::FileTailer>(f, data + "/tail", ingestor->get(), &metrics));
    Status s = tailers.back()->Start();
    if (!s.ok()) return Fail(s);
  }
  std::unique_ptr<kube::KubeClient> kube;
  std::unique_ptr<watch::IngestorSink> watch_sink;
  std::unique_ptr<watch::Collector> collector;
  if (flags.watch.enabled) {
    auto k = MakeKubeClient(flags.watch);
    if (!k.ok()) return Fail(k.status());
    kube = std::move(*k);
    auto opts = MakeCollectorOptions(flags.watch, data + "/watch");
    if (!opts.ok()) return Fail(opts.status());
    watch_sink = std::make_unique<watch::IngestorSink>(ingestor->get());
    collector = std::make_unique<watch::Collector>(kube.get(), watch_sink.get(), &metrics, std::move(*opts));
    Status s = collector->Start();
    if (!s.ok()) return Fail(s);
  }
  std::printf("annals serving %s entries=%llu\nurl: %s://%s:%u\nverifier key: %s\n",
              data.c_str(), static_cast<unsigned long long>((*ledger)->DurableSize()),
              tls ? "https" : "http", listen_hp->first.c_str(), *port,
              (*ledger)->signer().VerifierKey().c_str());
  std::fflush(stdout);
  projector.Start();
  int sig = 0;
  while (sigwait(&sigs, &sig) == 0 && sig == SIGHUP) {
    if (!tls) continue;
    Status s = http.ReloadTls();
    if (s.ok() && tcp) s = tcp->ReloadTls();
    std::fprintf(stderr, "annals: SIGHUP: %s\n",
                 s.ok() ? "reloaded the TLS certificate and key" : s.message().c_str());
  }
  std::fprintf(stderr, "annals: signal %d, shutting down\n", sig);
  projector.Cancel();  // a catch-up in progress (on any thread) ends at its next chunk
  if (collector) collector->Stop();
  if (token_reviewer) token_reviewer->Abort();  // reviews in flight fail now
  http.Stop();
  // The review threads may still be answering requests (they use the api,
  // the ingestor and the metrics): finish them before those go.
  if (authorizer) authorizer->Stop();
  for (auto& f : forwarders) f->Stop();
  feed.Stop();
  projector.Stop();
  // The next start loads this and replays only what comes after it; a
  // start cancelled before it caught up leaves the last one in place.
  if (projector.caught_up()) {
    Status ss = projector.SaveSnapshot();
    if (!ss.ok()) std::fprintf(stderr, "annals: state snapshot: %s\n", ss.message().c_str());
  }
  if (tcp) tcp->Stop();
  for (auto& t : tailers) t->Stop();
  ingestor->reset();
  ledger->reset();
  dedup->reset();
  events->reset();
  return 0;
}

// `annals collect --url LEDGER`: the watch collector alone, appending to a
// remote ledger; its state lives in --state-dir.
int Collect(const client::ServerTarget& target, const std::string& state_dir, const WatchFlags& flags) {
  const std::string& url = target.url;
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  auto kube = MakeKubeClient(flags);
  if (!kube.ok()) return Fail(kube.status());
  auto opts = MakeCollectorOptions(flags, state_dir);
  if (!opts.ok()) return Fail(opts.status());
  Metrics metrics;
  watch::RemoteSink sink(url, target.auth);
  watch::Collector collector(kube->get(), &sink, &metrics, std::move(*opts));
  Status s = collector.Start();
  if (!s.ok()) return Fail(s);
  std::printf("annals collecting from %s into %s\n", (*kube)->config().server.c_str(), url.c_str());
  std::fflush(stdout);
  int sig = 0;
  sigwait(&sigs, &sig);
  std::fprintf(stderr, "annals: signal %d, shutting down\n", sig);
  collector.Stop();
  return 0;
}

int Keygen(const std::string& name, const std::string& out) {
  auto key = note::GeneratePrivateKey(name);
  if (!key.ok()) return Fail(key.status());
  if (FileExists(out)) return Fail(out + " exists; refusing to overwrite a key");
  Status s = WriteFileAtomic(out, *key + "\n", 0600);
  if (!s.ok()) return Fail(s);
  auto signer = note::Signer::FromPrivateKey(*key);
  std::printf("%s\n", (*signer)->VerifierKey().c_str());
  return 0;
}

StatusOr<std::string> VerifierKeyForDataDir(const std::string& data) {
  ASSIGN_OR_RETURN(std::string key, ReadFileToString(data + "/key"));
  while (!key.empty() && (key.back() == '\n' || key.back() == '\r')) key.pop_back();
  ASSIGN_OR_RETURN(auto signer, note::Signer::FromPrivateKey(key));
  return signer->VerifierKey();
}

int KeyShow(const std::string& data) {
  auto vkey = VerifierKeyForDataDir(data);
  if (!vkey.ok()) return Fail(vkey.status());
  std::printf("%s\n", vkey->c_str());
  return 0;
}

int VerifyLocal(const std::string& data, std::string vkey) {
  if (vkey.empty()) {
    auto v = VerifierKeyForDataDir(data);
    if (!v.ok()) return Fail(v.status());
    vkey = *v;
  }
  ledger::VerifyReport report;
  auto start = std::chrono::steady_clock::now();
  Status s = ledger::VerifyDataDir(data, vkey, ProgressBar("verify"), &report);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!s.ok()) {
    if (report.bad_index >= 0)
      std::fprintf(stderr, "annals: verify FAILED at index %lld: %s\n",
                   static_cast<long long>(report.bad_index), s.message().c_str());
    else
      std::fprintf(stderr, "annals: verify FAILED: %s\n", s.message().c_str());
    return 2;
  }
  if (!report.unverified_tail.empty())
    std::fprintf(stderr, "annals: note: %s\n", report.unverified_tail.c_str());
  std::printf("verified %llu entries, %llu tiles, %llu blobs, %llu checkpoints in %.3fs\n",
              static_cast<unsigned long long>(report.entries),
              static_cast<unsigned long long>(report.tiles),
              static_cast<unsigned long long>(report.blobs),
              static_cast<unsigned long long>(report.checkpoints), secs);
  return 0;
}

int VerifyRemote(const client::ServerTarget& target, const std::string& vkey, const std::string& state) {
  const std::string& url = target.url;
  if (vkey.empty()) return Fail("--key VKEY is required with --url");
  client::RemoteVerifyResult r;
  Status s = client::VerifyRemote(url, vkey, state, ProgressBar("verify"), &r, target.auth);
  if (!s.ok()) {
    std::fprintf(stderr, "annals: verify FAILED: %s\n", s.message().c_str());
    return 2;
  }
  std::printf("verified %s: size %llu (previously trusted %llu), %llu tiles\n", url.c_str(),
              static_cast<unsigned long long>(r.size),
              static_cast<unsigned long long>(r.previous_size),
              static_cast<unsigned long long>(r.tiles));
  return 0;
}

StatusOr<std::unique_ptr<client::HttpClient>> Connect(const client::ServerTarget& t) {
  return client::HttpClient::Create(t.url, t.auth);
}

int Append(const client::ServerTarget& target, size_t batch) {
  auto c = Connect(target);
  if (!c.ok()) return Fail(c.status());
  std::string body, line;
  uint64_t sent = 0;
  auto flush = [&]() -> int {
    if (body.empty()) return 0;
    auto r = (*c)->Post(api::paths::kIngestEvents, body, "application/x-ndjson");
    if (!r.ok()) return Fail(r.status());
    if (r->status != 200) return Fail("server answered " + std::to_string(r->status) + ": " + r->body);
    body.clear();
    return 0;
  };
  size_t n = 0;
  while (std::getline(std::cin, line)) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    body += line;
    body += '\n';
    ++sent;
    if (++n == batch) {
      if (int rc = flush()) return rc;
      n = 0;
    }
  }
  if (int rc = flush()) return rc;
  std::fprintf(stderr, "appended %llu entries\n", static_cast<unsigned long long>(sent));
  return 0;
}

int Proof(const client::ServerTarget& target, const std::string& path) {
  auto c = Connect(target);
  if (!c.ok()) return Fail(c.status());
  auto r = (*c)->Get(path);
  if (!r.ok()) return Fail(r.status());
  if (r->status != 200) return Fail("server answered " + std::to_string(r->status) + ": " + r->body);
  std::fwrite(r->body.data(), 1, r->body.size(), stdout);
  return 0;
}

// GETs path and prints the body (or, with a formatter, its table).
int Query(const client::ServerTarget& target, const std::string& path,
          const std::function<std::string(const nlohmann::json&)>& table = nullptr) {
  auto c = Connect(target);
  if (!c.ok()) return Fail(c.status());
  auto r = (*c)->Get(path);
  if (!r.ok()) return Fail("cannot reach " + target.url + ": " + r.status().message());
  if (r->status != 200) {
    auto j = nlohmann::json::parse(r->body, nullptr, false);
    std::string msg = j.is_object() && j.contains("error") ? j["error"].get<std::string>() : r->body;
    std::fprintf(stderr, "annals: %s\n", msg.c_str());
    if (j.is_object() && j.contains("nearest")) std::fprintf(stderr, "nearest: %s\n", j["nearest"].dump().c_str());
    return r->status == 404 ? 3 : 1;
  }
  if (table) {
    auto j = nlohmann::json::parse(r->body, nullptr, false);
    if (j.is_discarded()) return Fail("server answered with invalid JSON");
    std::fputs(table(j).c_str(), stdout);
  } else {
    std::fwrite(r->body.data(), 1, r->body.size(), stdout);
  }
  return 0;
}

// Rebuilds every derived structure from the log: the dedup index from
// scratch, and the projections (which are otherwise rebuilt on each start).
int Rebuild(const std::string& data, uint64_t memory_budget) {
  ledger::LedgerOptions lo;
  lo.data_dir = data;
  if (!FileExists(data + "/key")) return Fail("no ledger in " + data);
  auto ledger = ledger::Ledger::Open(lo);
  if (!ledger.ok()) return Fail("cannot open ledger in " + data + ": " + ledger.status().message());
  auto t0 = std::chrono::steady_clock::now();
  const std::string dedup_dir = data + "/index/dedup";
  std::error_code ec;
  std::filesystem::remove_all(dedup_dir, ec);
  if (ec) return Fail("cannot remove " + dedup_dir + ": " + ec.message());
  auto dedup = index::DedupIndex::Open(dedup_dir);
  if (!dedup.ok()) return Fail(dedup.status());
  Metrics metrics;
  auto ingestor = ingest::Ingestor::Open(ledger->get(), dedup->get(), &metrics);
  if (!ingestor.ok()) return Fail("dedup index: " + ingestor.status().message());
  Status fs = (*dedup)->Flush();
  if (!fs.ok()) return Fail(fs);
  const std::string events_dir = data + "/index/events";
  std::filesystem::remove_all(events_dir, ec);
  if (ec) return Fail("cannot remove " + events_dir + ": " + ec.message());
  auto events = index::EventIndex::Open(events_dir, EventIndexOptionsFor(memory_budget));
  if (!events.ok()) return Fail(events.status());
  const std::string snapshot = SnapshotPath(data);
  if (std::remove(snapshot.c_str()) != 0 && errno != ENOENT)
    return Fail("cannot remove " + snapshot + ": " + std::strerror(errno));
  state::StateStore store;
  state::Projector projector(ledger->get(), &store, events->get());
  projector.set_report_progress(true);
  projector.set_snapshot(snapshot, 1, 0);
  Status s = projector.CatchUp();
  if (!s.ok()) return Fail("projection: " + s.message());
  s = projector.SaveSnapshot();
  if (!s.ok()) return Fail("state snapshot: " + s.message());
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::shared_lock lock(store.mutex());
  std::printf("rebuilt from %llu entries in %.2fs: dedup index, event index, %zu objects\n",
              static_cast<unsigned long long>((*ledger)->DurableSize()), secs, store.object_count());
  return 0;
}

// Follows /v1/watch and prints each change's JSON on its own line. Resumes
// by itself (Last-Event-ID) when the connection drops or the server cuts it
// off, so the output has no gap and no duplicate.
int Watch(const client::ServerTarget& target, const std::string& path, uint64_t max_events) {
  std::string last_id;
  uint64_t printed = 0;
  int backoff_ms = 200;
  for (;;) {
    auto c = Connect(target);
    if (!c.ok()) return Fail(c.status());
    client::SseParser parser;
    bool enough = false;
    std::vector<std::pair<std::string, std::string>> headers;
    if (!last_id.empty()) headers.emplace_back("Last-Event-ID", last_id);
    Status s = (*c)->GetStream(path, headers, [&](std::string_view data) {
      return parser.Feed(data, [&](const client::SseEvent& ev) {
        if (ev.event == "error") {
          auto j = nlohmann::json::parse(ev.data, nullptr, false);
          std::fprintf(stderr, "annals: watch: server: %s\n",
                       j.is_object() ? j.value("error", ev.data).c_str() : ev.data.c_str());
          return true;  // the server closes; we resume
        }
        last_id = ev.id;
        std::fwrite(ev.data.data(), 1, ev.data.size(), stdout);
        std::fputc('\n', stdout);
        std::fflush(stdout);
        backoff_ms = 200;
        if (max_events && ++printed >= max_events) {
          enough = true;
          return false;
        }
        return true;
      });
    });
    if (enough) return 0;
    if (s.code() == StatusCode::kFailedPrecondition) return Fail(s);
    std::fprintf(stderr, "annals: watch: %s; resuming after id %s\n",
                 s.ok() ? "stream ended" : s.message().c_str(), last_id.empty() ? "(none)" : last_id.c_str());
    std::this_thread::sleep_for(std::chrono::milliseconds(backoff_ms));
    backoff_ms = std::min(backoff_ms * 2, 5000);
  }
}

}  // namespace
}  // namespace annals

int main(int argc, char** argv) {
  using namespace annals;
  CLI::App app{"annals: a write-once, verifiable ledger of a Kubernetes cluster"};
  app.require_subcommand(1);

  std::string data = "annals-data", listen = "127.0.0.1:7070", key_file, origin = "annals.local/log";
  int interval_ms = 500;
  uint64_t max_body = 16u << 20;
  auto* serve = app.add_subcommand("serve", "run the ledger");
  serve->add_option("--data", data, "data directory")->capture_default_str();
  serve->add_option("--listen", listen, "HTTP listen address")->capture_default_str();
  serve->add_option("--key", key_file, "signing key file (PRIVATE+KEY+...)");
  serve->add_option("--origin", origin, "log origin for a key made on first start")->capture_default_str();
  serve->add_option("--checkpoint-interval", interval_ms, "ms between checkpoints")->capture_default_str();
  serve->add_option("--max-body", max_body, "largest request body in bytes")->capture_default_str();
  ServeFlags flags;
  auto add_watch = [](CLI::App* c, WatchFlags* w) {
    c->add_option("--kubeconfig", w->kubeconfig, "kubeconfig of the API server to watch");
    c->add_option("--context", w->context, "kubeconfig context (default: current-context)");
    c->add_flag("--in-cluster", w->in_cluster, "use the pod's ServiceAccount token and CA");
    c->add_option("--watch-resources", w->resources,
                  "comma-separated resources (pods, deployments, group/version/resource); default: all built-in");
    c->add_option("--watch-timeout", w->watch_timeout_s, "seconds per watch request")->capture_default_str();
    c->add_option("--watch-list-page", w->list_page, "objects per list page (limit=)")->capture_default_str();
  };
  serve->add_flag("--watch", flags.watch.enabled, "list/watch the Kubernetes API server into the ledger");
  add_watch(serve, &flags.watch);
  // Every command that talks to a server: where it is and how to get in
  // (client/client_options.h). verify's --key is the log's verifier key, so
  // there the client key is --client-key only.
  client::ClientFlags cf;
  auto add_client = [&cf](CLI::App* c, bool key_taken = false) {
    c->add_option("--url", cf.url, "server URL (else $ANNALS_URL, the config file, http://127.0.0.1:7070)");
    c->add_option("--cacert", cf.cacert, "PEM CA bundle to verify an https:// server with (default: the system's)");
    c->add_option("--cert,--client-cert", cf.cert, "PEM client certificate (CN = user, O = groups)");
    c->add_option(key_taken ? "--client-key" : "--key,--client-key", cf.key, "PEM private key of --cert");
    c->add_option("--token", cf.token, "bearer token (else $ANNALS_TOKEN, the config file)");
    c->add_option("--token-file", cf.token_file, "file holding the bearer token");
    c->add_option("--config", cf.config,
                  "client config (YAML: server, cacert, cert, key, token, token-file; "
                  "default $ANNALS_CONFIG, else ~/.config/annals/config.yaml)");
  };
  WatchFlags collect_flags;
  std::string collect_state = "annals-collect-state";
  auto* collect = app.add_subcommand("collect", "list/watch the Kubernetes API server into a remote ledger");
  add_client(collect);
  collect->add_option("--state-dir", collect_state, "where the last resourceVersions are kept")->capture_default_str();
  add_watch(collect, &collect_flags);
  serve->add_option("--tcp-listen", flags.tcp_listen, "newline-delimited JSON over TCP on ADDR");
  serve->add_option("--tail", flags.tails, "follow a kube-apiserver audit log file (repeatable)");
  serve->add_option("--watch-buffer", flags.watch_buffer,
                    "newest changes kept in memory for subscribers; a live subscriber further behind is disconnected")
      ->capture_default_str();
  serve->add_option("--forward", flags.forwards,
                    "forward every entry to syslog+tcp://HOST:PORT or syslog+tls://HOST:PORT (repeatable)");
  serve->add_option("--nats", flags.nats,
                    "publish every change to NATS JetStream at URL (nats://HOST:PORT), subject annals.<log>.<resource>.<namespace>.<name>");
  serve->add_option("--forward-ca", flags.forward_ca, "PEM trust anchors for syslog+tls (default: the system's)");
  serve->add_option("--tls-cert", flags.tls_cert, "serve HTTPS with this PEM certificate chain (reloaded on SIGHUP)");
  serve->add_option("--tls-key", flags.tls_key, "the PEM private key of --tls-cert");
  serve->add_option("--client-ca", flags.client_ca, "verify client certificates against this PEM CA bundle (CN = user, O = groups)");
  serve->add_option("--tokens", flags.tokens, "bearer tokens file: \"<sha256 hex> <user> [groups]\" lines, re-read on change");
  serve->add_option("--auth-config", flags.auth_config, "roles config (JSON, docs/security.md)");
  serve->add_option("--token-review", flags.token_review,
                    "ask the Kubernetes API server who unknown bearer tokens belong to (TokenReview): "
                    "\"in-cluster\" (the pod's ServiceAccount) or a kubeconfig path");
  serve->add_option("--token-review-audience", flags.token_review_audiences,
                    "accept only tokens meant for this audience (repeatable; default: the API server's)");
  serve->add_flag("--insecure-listen", flags.insecure_listen, "allow plain HTTP on a non-loopback address");
  serve->add_option("--rate-limit", flags.rate_limit, "requests/s per caller (user, or address if anonymous); 0 = none");
  serve->add_option("--rate-burst", flags.rate_burst, "requests a caller may send at once above --rate-limit (default: the rate)");
  serve->add_option("--max-inflight", flags.max_inflight, "requests in flight per caller; 0 = none");
  serve->add_option("--memory-budget", flags.memory_budget,
                    "bytes for the on-disk indexes' caches (e.g. 1GiB, 512MiB)")
      ->transform(CLI::AsSizeValue(false))
      ->capture_default_str();
  serve->add_option("--snapshot-every", flags.snapshot_every,
                    "write a state snapshot once this many entries were projected since the last")
      ->capture_default_str();
  serve->add_option("--snapshot-interval", flags.snapshot_interval,
                    "or once this many seconds passed since the last (and an entry came)")
      ->capture_default_str();
  serve->add_option("--request-timeout", flags.request_timeout, "seconds a client has to send a whole request")->capture_default_str();

  std::string name, out;
  auto* keygen = app.add_subcommand("keygen", "make an Ed25519 signing key in note form");
  keygen->add_option("--name", name, "key name (the log origin)")->required();
  keygen->add_option("--out", out, "file to write")->required();

  auto* key = app.add_subcommand("key", "key operations");
  key->require_subcommand(1);
  auto* key_show = key->add_subcommand("show", "print the verifier key");
  key_show->add_option("--data", data, "data directory")->capture_default_str();

  std::string vkey, state;
  auto* verify = app.add_subcommand("verify", "verify a data directory (--data) or a served log (--url)");
  auto* verify_data = verify->add_option("--data", data, "data directory");
  verify->add_option("--key", vkey, "verifier key");
  verify->add_option("--state", state, "file holding the last trusted checkpoint");
  add_client(verify, /*key_taken=*/true);

  size_t batch = 1000;
  auto* append = app.add_subcommand("append", "append JSON lines from stdin");
  append->add_option("--batch", batch, "lines per request")->capture_default_str();
  add_client(append);

  auto* proof = app.add_subcommand("proof", "fetch proofs");
  proof->require_subcommand(1);
  uint64_t index = 0, size = 0, first = 0, second = 0;
  auto* incl = proof->add_subcommand("inclusion", "inclusion proof for INDEX");
  incl->add_option("index", index)->required();
  std::string proof_vkey;
  incl->add_option("--tree-size", size, "tree size (default: the latest checkpoint's, whose signature is checked)");
  incl->add_option("--log-key", proof_vkey, "the log's verifier key, to check the checkpoint's signature");
  add_client(incl);
  auto* cons = proof->add_subcommand("consistency", "consistency proof OLD NEW");
  cons->add_option("old", first)->required();
  cons->add_option("new", second)->required();
  add_client(cons);

  std::string at, kind, ns, selector, output = "table", since, until, verbs, group_by;
  std::string ip, object;
  bool children = false;
  auto add_url = [&](CLI::App* c) { add_client(c); };
  auto* state_cmd = app.add_subcommand("state", "the objects that existed at T");
  state_cmd->add_option("--at", at, "RFC 3339 or relative time (-15m)")->required();
  state_cmd->add_option("--kind", kind, "kind or resource");
  state_cmd->add_option("-n,--namespace", ns, "namespace");
  state_cmd->add_option("-l,--selector", selector, "label selector");
  state_cmd->add_option("-o,--output", output, "table or json")->capture_default_str();
  add_url(state_cmd);
  auto* whois = app.add_subcommand("whois", "the pod that held IP at T");
  whois->add_option("ip", ip)->required();
  whois->add_option("--at", at, "RFC 3339 or relative time")->required();
  add_url(whois);
  auto* history = app.add_subcommand("history", "who did what to KIND/NAME");
  history->add_option("object", object, "KIND/NAME")->required();
  history->add_option("-n,--namespace", ns, "namespace");
  history->add_flag("--children", children, "include what the object owns");
  history->add_option("--since", since, "from this time");
  history->add_option("--until", until, "up to this time");
  history->add_option("--verbs", verbs, "verbs to include (e.g. get,list)");
  history->add_option("-o,--output", output, "table or json")->capture_default_str();
  add_url(history);
  std::string s_user, s_verb, s_resource, s_name, s_from, s_to, s_code, s_limit;
  auto* search = app.add_subcommand("search", "search and group audit events");
  search->add_option("--user", s_user);
  search->add_option("--verb", s_verb);
  search->add_option("--resource", s_resource);
  search->add_option("-n,--namespace", ns);
  search->add_option("--name", s_name);
  search->add_option("--code", s_code);
  search->add_option("--from", s_from);
  search->add_option("--to", s_to);
  search->add_option("--limit", s_limit);
  search->add_option("--group-by", group_by, "user|verb|resource|namespace|code|source_ip|user_agent|hour|day");
  search->add_option("-o,--output", output, "table or json")->capture_default_str();
  add_url(search);
  std::string w_from, w_type, w_stage, w_heartbeat;
  uint64_t w_max = 0;
  auto* watch = app.add_subcommand("watch", "follow changes as they become durable (resumes by itself)");
  watch->add_option("--from", w_from, "first ledger index (default: only new changes)");
  watch->add_option("--user", s_user);
  watch->add_option("--verb", s_verb);
  watch->add_option("--resource", s_resource, "resource or kind");
  watch->add_option("-n,--namespace", ns);
  watch->add_option("--name", s_name);
  watch->add_option("--code", s_code);
  watch->add_option("--stage", w_stage);
  watch->add_option("--type", w_type, "entry type (k8s.audit, a CloudEvent type)");
  watch->add_option("-l,--selector", selector, "label selector on the object");
  watch->add_option("--max-events", w_max, "exit after printing this many changes");
  add_url(watch);
  auto* enrich = app.add_subcommand("enrich", "add workload identity to flow JSON lines (stdin -> stdout)");
  add_url(enrich);

  auto* rebuild = app.add_subcommand("rebuild", "rebuild every index and projection from the log (server stopped)");
  rebuild->add_option("--data", data, "data directory")->capture_default_str();
  uint64_t rebuild_budget = uint64_t{1} << 30;
  rebuild->add_option("--memory-budget", rebuild_budget, "bytes for the indexes' caches")
      ->transform(CLI::AsSizeValue(false));

  CLI11_PARSE(app, argc, argv);
  if (rebuild->parsed()) return Rebuild(data, rebuild_budget);

  // The server of a client command, from its flags, the environment and
  // the config file.
  client::ServerTarget target;
  const bool remote_verify = verify->parsed() && !cf.url.empty();
  if (!serve->parsed() && !keygen->parsed() && !key_show->parsed() && (!verify->parsed() || remote_verify)) {
    auto t = client::ResolveServer(cf);
    if (!t.ok()) return Fail(t.status());
    target = std::move(*t);
  }

  using client::UrlEncode;
  auto param = [](std::string* q, const char* k, const std::string& v) {
    if (v.empty()) return;
    *q += (q->find('?') == std::string::npos ? "?" : "&");
    *q += k;
    *q += "=" + UrlEncode(v);
  };
  if (state_cmd->parsed()) {
    std::string q = api::paths::kState;
    param(&q, "at", at);
    param(&q, "kind", kind);
    param(&q, "namespace", ns);
    param(&q, "selector", selector);
    if (output == "json") return Query(target, q);
    return Query(target, q, [](const nlohmann::json& j) {
      std::vector<std::vector<std::string>> rows;
      for (const auto& o : j["objects"])
        rows.push_back({o.value("resource", ""), o.value("namespace", ""), o.value("name", ""),
                        o.value("state", ""), o.value("since", ""), std::to_string(o.value("index", 0))});
      return client::FormatTable({"RESOURCE", "NAMESPACE", "NAME", "STATE", "SINCE", "INDEX"}, rows);
    });
  }
  if (whois->parsed()) {
    std::string q = std::string(api::paths::kPodsByIpPrefix) + UrlEncode(ip);
    param(&q, "at", at);
    return Query(target, q);
  }
  if (history->parsed()) {
    auto slash = object.find('/');
    if (slash == std::string::npos) return Fail("expected KIND/NAME, got " + object);
    std::string q = api::paths::kHistory;
    param(&q, "kind", object.substr(0, slash));
    param(&q, "name", object.substr(slash + 1));
    param(&q, "namespace", ns);
    if (children) param(&q, "children", "true");
    param(&q, "since", since);
    param(&q, "until", until);
    param(&q, "verbs", verbs);
    if (output == "json") return Query(target, q);
    return Query(target, q, client::FormatHistory);
  }
  // The event filters search and watch share.
  auto event_filters = [&](std::string* q) {
    param(q, "user", s_user);
    param(q, "verb", s_verb);
    param(q, "resource", s_resource);
    param(q, "namespace", ns);
    param(q, "name", s_name);
    param(q, "code", s_code);
  };
  if (search->parsed()) {
    std::string q = api::paths::kEvents;
    event_filters(&q);
    param(&q, "from", s_from);
    param(&q, "to", s_to);
    param(&q, "limit", s_limit);
    param(&q, "group_by", group_by);
    if (output == "json") return Query(target, q);
    return Query(target, q, [](const nlohmann::json& j) {
      std::vector<std::vector<std::string>> rows;
      if (j.contains("groups")) {
        for (const auto& g : j["groups"]) rows.push_back({g.value("key", ""), std::to_string(g.value("count", 0))});
        return client::FormatTable({j.value("group_by", "KEY"), "COUNT"}, rows);
      }
      for (const auto& e : j["events"])
        rows.push_back({e.value("time", ""), e.value("verb", ""), e.value("user", ""), e.value("resource", ""),
                        e.value("namespace", ""), e.value("name", ""), std::to_string(e.value("code", 0)),
                        std::to_string(e.value("index", 0))});
      return client::FormatTable({"TIME", "VERB", "USER", "RESOURCE", "NAMESPACE", "NAME", "CODE", "INDEX"}, rows);
    });
  }
  if (watch->parsed()) {
    std::string q = api::paths::kWatch;
    param(&q, "from", w_from);
    event_filters(&q);
    param(&q, "stage", w_stage);
    param(&q, "type", w_type);
    param(&q, "selector", selector);
    return Watch(target, q, w_max);
  }
  if (enrich->parsed()) {
    auto c = Connect(target);
    if (!c.ok()) return Fail(c.status());
    std::string body, line;
    size_t n = 0;
    auto flush = [&]() -> int {
      if (body.empty()) return 0;
      auto r = (*c)->Post(api::paths::kEnrichFlows, body, "application/x-ndjson");
      if (!r.ok()) return Fail(r.status());
      if (r->status != 200) return Fail("server answered " + std::to_string(r->status) + ": " + r->body);
      std::fwrite(r->body.data(), 1, r->body.size(), stdout);
      body.clear();
      n = 0;
      return 0;
    };
    // Streams in chunks: constant memory whatever the input size.
    while (std::getline(std::cin, line)) {
      body += line;
      body += '\n';
      if (++n == 5000)
        if (int rc = flush()) return rc;
    }
    return flush();
  }

  if (serve->parsed()) return Serve(data, listen, key_file, origin, interval_ms, max_body, flags);
  if (collect->parsed()) return Collect(target, collect_state, collect_flags);
  if (keygen->parsed()) return Keygen(name, out);
  if (key_show->parsed()) return KeyShow(data);
  if (verify->parsed()) {
    if (remote_verify) return VerifyRemote(target, vkey, state);
    if (verify_data->count() == 0)
      return Fail("verify what? --data DIR (a data directory) or --url URL (a served log)");
    return VerifyLocal(data, vkey);
  }
  if (append->parsed()) return Append(target, batch);
  if (incl->parsed()) {
    if (size == 0) {
      // The latest checkpoint's size, trusted only once its signature is.
      if (proof_vkey.empty())
        return Fail("give --tree-size N, or --log-key VKEY to prove against the latest signed checkpoint");
      auto c = Connect(target);
      if (!c.ok()) return Fail(c.status());
      auto cp = client::FetchCheckpoint(c->get(), proof_vkey);
      if (!cp.ok()) return Fail(cp.status());
      size = cp->size;
    }
    return Proof(target, std::string(api::paths::kInclusionProof) + "?index=" + std::to_string(index) +
                          "&tree_size=" + std::to_string(size));
  }
  if (cons->parsed())
    return Proof(target, std::string(api::paths::kConsistencyProof) + "?first=" + std::to_string(first) +
                          "&second=" + std::to_string(second));
  return 0;
}
