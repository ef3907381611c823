// annals: the single binary. Subcommands per SPEC.md.
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>
#include <nlohmann/json.hpp>


#include "api/paths.h"
#include "auth/auth_config.h"
#include "checkpoint/note.h"
#include "client/client_options.h"
#include "client/http_client.h"
#include "client/bundle_export.h"
#include "client/cloudtrail_import.h"
#include "client/remote_verifier.h"
#include "client/reveal.h"
#include "client/sse.h"
#include "common/bytes.h"
#include "common/file_util.h"
#include "common/time_util.h"
#include "ingest/cloudtrail_digest.h"
#include "ledger/bundle.h"
#include "witness/policy.h"
#include "ledger/verifier.h"
#include "server/http_server.h"
#include "server/instance.h"
#include "witness/witness.h"
#include "client/table.h"
#include "watch/collector.h"

namespace annals {
namespace {

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

// Blocks SIGINT and SIGTERM (and SIGHUP if asked) before threads start,
// so that only the caller's sigwait on the returned set takes them.
sigset_t BlockTerminationSignals(bool hup) {
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  if (hup) sigaddset(&sigs, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  return sigs;
}

// `annals serve`: the Instance (server/instance.h) until SIGTERM or SIGINT;
// SIGHUP reloads the TLS certificate and key.
int Serve(const std::string& key_file, server::InstanceOptions options) {
  if (!key_file.empty()) {
    auto k = ReadFileToString(key_file);
    if (!k.ok()) return Fail(k.status());
    std::string key = *k;
    while (!key.empty() && (key.back() == '\n' || key.back() == '\r')) key.pop_back();
    options.private_key = key;
  }
  const sigset_t sigs = BlockTerminationSignals(true);
  options.on_serving = [&options](const server::Instance& in) {
    if (in.tcp_port()) std::printf("tcp: %u\n", in.tcp_port());
    std::printf("annals serving %s entries=%llu\nurl: %s://%s:%u\nverifier key: %s\n", options.data_dir.c_str(),
                static_cast<unsigned long long>(in.entries()), in.tls() ? "https" : "http", in.host().c_str(),
                in.port(), in.verifier_key().c_str());
    std::fflush(stdout);
  };
  options.on_ready = [](uint64_t entries, uint64_t replayed, double secs) {
    std::printf("ready: %llu entries, %llu of them replayed, in %.2fs\n", static_cast<unsigned long long>(entries),
                static_cast<unsigned long long>(replayed), secs);
    std::fflush(stdout);
  };
  auto instance = server::Instance::Start(options);
  if (!instance.ok()) return Fail(instance.status());
  int sig = 0;
  while (sigwait(&sigs, &sig) == 0 && sig == SIGHUP) {
    if (!(*instance)->tls()) continue;
    Status s = (*instance)->ReloadTls();
    std::fprintf(stderr, "annals: SIGHUP: %s\n",
                 s.ok() ? "reloaded the TLS certificate and key" : s.message().c_str());
  }
  std::fprintf(stderr, "annals: signal %d, shutting down\n", sig);
  (*instance)->Stop();
  return 0;
}

// `annals collect --url LEDGER`: the watch collector alone, appending to a
// remote ledger; its state lives in --state-dir.
int Collect(const client::ServerTarget& target, const std::string& state_dir, const watch::WatchFlags& flags) {
  const std::string& url = target.url;
  const sigset_t sigs = BlockTerminationSignals(false);
  auto kube = watch::MakeKubeClient(flags);
  if (!kube.ok()) return Fail(kube.status());
  auto opts = watch::MakeCollectorOptions(flags, state_dir);
  if (!opts.ok()) return Fail(opts.status());
  Metrics metrics;
  watch::RemoteSink sink(url, target.auth, flags.cluster);
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

// `annals witness`: the witness side of C2SP tlog-witness
// (docs/witness.md) until SIGTERM or SIGINT: POST /add-checkpoint.
int RunWitness(const std::string& data, const std::string& listen, const std::string& key_file,
               const std::vector<std::string>& logs) {
  auto k = ReadFileToString(key_file);
  if (!k.ok()) return Fail(k.status());
  witness::Witness::Options o;
  o.dir = data + "/witness";
  o.key = std::string(TrimJsonSpace(*k));
  o.logs = logs;
  if (logs.empty()) return Fail("name the logs to witness: --log VKEY (repeatable)");
  auto w = witness::Witness::Open(std::move(o));
  if (!w.ok()) return Fail(w.status());
  const sigset_t sigs = BlockTerminationSignals(false);
  server::HttpServerOptions so;
  so.listen = listen;
  so.max_body_bytes = witness::kMaxRequestBytes;
  witness::Witness* wp = w->get();
  server::HttpServer http(so, [wp](api::HttpRequest&& req, api::Responder respond) {
    const std::string path = req.target.substr(0, req.target.find('?'));
    if (path != "/add-checkpoint") return respond(api::ErrorResponse(404, "the witness serves POST /add-checkpoint"));
    if (req.method != "POST") return respond(api::ErrorResponse(405, "use POST"));
    witness::Answer a = wp->AddCheckpoint(req.body);
    api::HttpResponse r;
    r.status = a.status;
    r.content_type = a.content_type;
    r.body = std::move(a.body);
    respond(std::move(r));
  });
  auto port = http.Start();
  if (!port.ok()) return Fail(port.status());
  const std::string host = listen.substr(0, listen.rfind(':'));
  std::printf("annals witness %s\nurl: http://%s:%u\nverifier key: %s\n", data.c_str(), host.c_str(), *port,
              (*w)->VerifierKey().c_str());
  std::fflush(stdout);
  int sig = 0;
  sigwait(&sigs, &sig);
  std::fprintf(stderr, "annals witness: signal %d, shutting down\n", sig);
  http.Stop();
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
  if (report.unsigned_entries > 0)
    std::fprintf(stderr, "annals: note: the last %llu entries are after the last signed checkpoint (not signed yet)\n",
                 static_cast<unsigned long long>(report.unsigned_entries));
  for (const auto& line : report.accepted_losses)
    std::fprintf(stderr, "annals: note: an operator accepted lost checkpoints: %s\n", line.c_str());
  if (report.archived_only > 0)
    std::fprintf(stderr,
                 "annals: note: entries 0..%llu are in the archive only (local retention): their hashes were "
                 "read from the local tiles and match every signed root; check their bytes with annals "
                 "verify --url on the archive\n",
                 static_cast<unsigned long long>(report.archived_only - 1));
  std::printf("verified %llu entries, %llu tiles, %llu blobs, %llu checkpoints in %.3fs\n",
              static_cast<unsigned long long>(report.entries),
              static_cast<unsigned long long>(report.tiles),
              static_cast<unsigned long long>(report.blobs),
              static_cast<unsigned long long>(report.checkpoints), secs);
  return 0;
}

// --witness-policy FILE, parsed; nullopt without one. With a policy and no
// --key, the key of the policy's one log.
StatusOr<std::optional<witness::Policy>> LoadWitnessPolicy(const std::string& path, std::string* vkey) {
  if (path.empty()) return std::optional<witness::Policy>();
  ASSIGN_OR_RETURN(std::string text, ReadFileToString(path));
  auto p = witness::Policy::Parse(text);
  if (!p.ok()) return InvalidArgumentError("--witness-policy " + path + ": " + p.status().message());
  if (vkey->empty() && p->logs().size() == 1) *vkey = p->logs()[0].verifier->VerifierKey();
  return std::optional<witness::Policy>(std::move(*p));
}

void PrintWitnesses(const std::vector<std::string>& names) {
  std::string list;
  for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
  std::printf("witnessed by %s\n", list.empty() ? "nobody (the policy's quorum is none)" : list.c_str());
}

// annals verify --bundle FILE --key VKEY: offline, nothing but the file.
int VerifyBundleFile(const std::string& path, std::string vkey, const std::string& policy_path) {
  auto policy = LoadWitnessPolicy(policy_path, &vkey);
  if (!policy.ok()) return Fail(policy.status());
  if (vkey.empty()) return Fail("--key VKEY (the log's verifier key) is required with --bundle");
  std::ifstream in(path, std::ios::binary);
  if (!in) return Fail("cannot read " + path);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ledger::Bundle bundle;
  auto r = ledger::VerifyBundle(bytes, vkey, &bundle);
  if (r.ok() && *policy) {
    auto q = witness::CheckQuorum(**policy, bundle.checkpoint);
    Status s = q.ok() ? witness::RequireQuorum(**policy, *q) : q.status();
    if (!s.ok()) r = s;
    if (s.ok()) PrintWitnesses(q->witnessed);
  }
  if (!r.ok()) {
    std::fprintf(stderr, "annals: bundle FAILED: %s\n", r.status().message().c_str());
    return 2;
  }
  std::string list;
  for (size_t k = 0; k < r->indexes.size() && k < 20; ++k) list += (k ? "," : "") + std::to_string(r->indexes[k]);
  if (r->indexes.size() > 20) list += ",...";
  std::printf("bundle verified: %zu entries (%s) of %s, in its tree of %llu entries signed by the key\n",
              r->indexes.size(), list.c_str(), r->origin.c_str(),
              static_cast<unsigned long long>(r->tree_size));
  if (r->external_payloads > 0)
    std::printf("%llu of them hold a payload over 64 KiB by its SHA-256; %llu such payloads are in the "
                "bundle and match\n",
                static_cast<unsigned long long>(r->external_payloads),
                static_cast<unsigned long long>(r->external_payloads_included));
  return 0;
}

int VerifyRemote(const client::ServerTarget& target, std::string vkey, const std::string& state,
                 const std::string& policy_path) {
  const std::string& url = target.url;
  auto policy = LoadWitnessPolicy(policy_path, &vkey);
  if (!policy.ok()) return Fail(policy.status());
  if (vkey.empty()) return Fail("--key VKEY is required with --url");
  client::RemoteVerifyResult r;
  Status s = client::VerifyRemote(url, vkey, state, ProgressBar("verify"), &r, target.auth,
                                  *policy ? &**policy : nullptr);
  if (!s.ok()) {
    std::fprintf(stderr, "annals: verify FAILED: %s\n", s.message().c_str());
    return 2;
  }
  std::printf("verified %s: size %llu (previously trusted %llu), %llu tiles\n", url.c_str(),
              static_cast<unsigned long long>(r.size),
              static_cast<unsigned long long>(r.previous_size),
              static_cast<unsigned long long>(r.tiles));
  if (*policy) PrintWitnesses(r.witnessed);
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
// Writes an evidence bundle of `indexes` from the served log to `out`.
int ExportTo(const client::ServerTarget& target, const std::string& vkey,
             const std::vector<uint64_t>& indexes, const std::string& out) {
  if (vkey.empty())
    return Fail("--log-key VKEY is required: the checkpoint is checked before the bundle is written");
  if (indexes.empty()) return Fail("nothing to export: no entries chosen");
  auto c = Connect(target);
  if (!c.ok()) return Fail(c.status());
  ledger::BundleReport rep;
  auto b = client::ExportBundle(c->get(), vkey, indexes, &rep);
  if (!b.ok()) return Fail(b.status());
  Status w = WriteFileAtomic(out, *b, 0644);
  if (!w.ok()) return Fail(w);
  std::printf("wrote %s: %zu entries of %s with inclusion proofs in its tree of %llu entries\n"
              "check it anywhere with: annals verify --bundle %s --key %s\n",
              out.c_str(), rep.indexes.size(), rep.origin.c_str(),
              static_cast<unsigned long long>(rep.tree_size), out.c_str(), vkey.c_str());
  return 0;
}

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

// Rebuilds every derived structure from the log (server/instance.h).
int Rebuild(const std::string& data, uint64_t memory_budget, double cold_after, uint64_t snapshot_every) {
  auto r = server::RebuildDerived(data, memory_budget, cold_after, std::max<uint64_t>(snapshot_every, 1));
  if (!r.ok()) return Fail(r.status());
  std::printf("rebuilt from %llu entries in %.2fs: dedup index, event index, %zu objects\n",
              static_cast<unsigned long long>(r->entries), r->seconds, r->objects);
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

  std::string data = "annals-data", key_file;
  server::InstanceOptions flags;
  flags.origin = "annals.local/log";
  flags.checkpoint_interval_ms = 500;
  auto* serve = app.add_subcommand("serve", "run the ledger");
  serve->add_option("--data", data, "data directory")->capture_default_str();
  serve->add_option("--listen", flags.listen, "HTTP listen address")->capture_default_str();
  serve->add_option("--key", key_file, "signing key file (PRIVATE+KEY+...)");
  serve->add_option("--origin", flags.origin, "log origin for a key made on first start")->capture_default_str();
  serve->add_option("--checkpoint-interval", flags.checkpoint_interval_ms, "ms between checkpoints")->capture_default_str();
  serve->add_option("--max-body", flags.max_body, "largest request body in bytes")->capture_default_str();
  auto add_watch = [](CLI::App* c, watch::WatchFlags* w) {
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
  watch::WatchFlags collect_flags;
  std::string collect_state = "annals-collect-state";
  auto* collect = app.add_subcommand("collect", "list/watch the Kubernetes API server into a remote ledger");
  add_client(collect);
  collect->add_option("--state-dir", collect_state, "where the last resourceVersions are kept")->capture_default_str();
  add_watch(collect, &collect_flags);
  collect->add_option("--cluster", collect_flags.cluster,
                      "the cluster name its records are filed under (a credential bound to another is refused)");
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
  std::string archive_retain = "0";
  serve->add_option("--archive", flags.archive,
                    "copy the log (entry bundles, tiles, checkpoints, sealed segments) to S3-compatible "
                    "object storage at s3://BUCKET[/PREFIX], as a C2SP tlog-tiles log; credentials from "
                    "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or the AWS credentials file");
  serve->add_option("--s3-endpoint", flags.s3_endpoint, "the S3 endpoint (http(s)://HOST[:PORT]), path-style");
  serve->add_option("--s3-region", flags.s3_region, "region requests are signed for (else $AWS_REGION, us-east-1)");
  serve->add_option("--s3-ca", flags.s3_ca, "PEM CA bundle for an https:// endpoint (default: the system's)");
  serve->add_option("--s3-credentials", flags.s3_credentials,
                    "AWS shared credentials file (default: $AWS_SHARED_CREDENTIALS_FILE, ~/.aws/credentials)");
  serve->add_option("--archive-retain", archive_retain,
                    "S3 Object Lock retention of every archived object (e.g. 7y, 400d); 0 = no lock")
      ->check([](const std::string& v) -> std::string {
        return annals::ParseDurationSeconds(v) ? "" : "want 0 or a count with s, m, h, d or y (e.g. 7y)";
      })
      ->capture_default_str();
  serve->add_option("--archive-lock", flags.archive_lock, "Object Lock mode: compliance or governance")
      ->check(CLI::IsMember({"compliance", "governance"}))
      ->capture_default_str();
  serve->add_option("--archive-parallel", flags.archive_parallel, "concurrent uploads")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  serve->add_option("--archive-interval", flags.archive_interval_seconds,
                    "seconds between archived checkpoints (the bucket's checkpoint lags by about this)")
      ->check(CLI::Range(0.05, 86400.0))
      ->capture_default_str();
  serve->add_option("--local-retain", flags.local_retain,
                    "with --archive: drop the local copy of a sealed segment once it is confirmed in the "
                    "archive and older than DURATION (e.g. 30d) or beyond SIZE of segments on disk (e.g. "
                    "500GiB); reads fetch it back from the archive");
  serve->add_option("--archive-max-backlog", flags.archive_max_backlog,
                    "/readyz answers 503 while more entries than this wait to be archived")
      ->capture_default_str();
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
  serve->add_option("--cluster", flags.cluster,
                    "the cluster name ingest is filed under when the caller's credentials name none "
                    "(the in-process --watch collector's too; docs/sources.md)")
      ->check([](const std::string& v) {
        return auth::ValidClusterName(v) ? std::string() : std::string("a name of 1 to 253 printable characters");
      });
  serve->add_option("--redaction-policy", flags.redaction_policy,
                    "what to redact before anything is stored: a JSON policy file (docs/security.md), "
                    "\"none\" to store events as sent; default: the built-in policy");
  serve->add_option("--seal-key", flags.seal_key,
                    "encrypt the sealed (redacted) values with this key file: 64 hex digits, kept outside the data directory");
  serve->add_option("--denied-window", flags.denied_window_seconds,
                    "seconds of refused requests (401/403/429) aggregated into each annals.denied entry")
      ->check(CLI::Range(0.05, 86400.0))
      ->capture_default_str();
  serve->add_option("--memory-budget", flags.memory_budget,
                    "bytes for the on-disk indexes' caches and unwritten keys, and the cold objects read back (e.g. 1GiB, 512MiB)")
      ->transform(CLI::AsSizeValue(false))
      ->capture_default_str();
  serve->add_option("--cold-after", flags.cold_after_seconds,
                    "seconds (of log time) after which a deleted object's history leaves memory for disk")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  serve->add_option("--scrub-rate", flags.scrub_bytes_per_second,
                    "bytes/s the background scrub reads, checking every entry and tile against the signed "
                    "tree after each start and daily (e.g. 50MiB); 0 = no scrub")
      ->transform(CLI::AsSizeValue(false))
      ->capture_default_str();
  serve->add_option("--segment-compression", flags.segment_compression_level,
                    "zstd level (1-19) at which sealed log segments are compressed in the background, "
                    "at idle CPU priority; 0 = keep them plain (compressed ones stay readable)")
      ->check(CLI::Range(0, 19))
      ->capture_default_str();
  serve->add_option("--segment-entries", flags.max_segment_entries,
                    "entries per log segment (a multiple of 256); a segment is sealed, and can be "
                    "compressed, once full")
      ->check([](const std::string& v) -> std::string {
        auto n = annals::ParseDecimal(v);
        return n && *n >= 256 && *n % 256 == 0 ? "" : "must be a positive multiple of 256";
      })
      ->capture_default_str();
  serve->add_option("--disk-reserve", flags.disk_reserve,
                    "refuse ingest while less than this is free in the data directory's file system "
                    "(at most 1/32 of it), keeping half of it in DATA/reserve for a start on a full "
                    "disk; 0 = off")
      ->transform(CLI::AsSizeValue(false))
      ->capture_default_str();
  serve->add_flag("--accept-lost-checkpoints", flags.accept_lost_checkpoints,
                  "start although the log holds entries and no signed checkpoint (checkpoints.log lost): "
                  "sign the log as it is now; recorded in DATA/log/accepted-losses");
  serve->add_option("--snapshot-every", flags.snapshot_every,
                    "write a state snapshot once this many entries were projected since the last, "
                    "and a body image of every object (state at T reads them) every this many entries")
      ->capture_default_str();
  serve->add_option("--snapshot-interval", flags.snapshot_interval,
                    "or once this many seconds passed since the last (and an entry came)")
      ->capture_default_str();
  serve->add_option("--request-timeout", flags.request_timeout, "seconds a client has to send a whole request")->capture_default_str();
  serve->add_flag("--demo", flags.demo,
                  "load 93 real public Kubernetes audit events at start (demo/SOURCES.md) to try the questions, "
                  "the console and verify on; loading them again stores nothing new");
  serve->add_option("--witness-policy", flags.witness_policy,
                    "a tlog-policy file (docs/witness.md): ask its witnesses to cosign each checkpoint and "
                    "serve one only once their cosignatures meet its quorum");
  double witness_timeout = 5;
  std::string witness_wait = "10";
  serve->add_option("--witness-wait", witness_wait,
                    "seconds /log/checkpoint may stay behind the newest signed checkpoint for want of the "
                    "quorum before that one is served anyway (counted in annals_checkpoints_unwitnessed_total); "
                    "\"forever\" to never serve an unwitnessed checkpoint")
      ->check([](const std::string& v) -> std::string {
        if (v == "forever") return "";
        try {
          size_t used = 0;
          const double d = std::stod(v, &used);
          if (used == v.size() && d >= 0) return "";
        } catch (...) {
        }
        return "want a number of seconds or forever";
      })
      ->capture_default_str();
  serve->add_option("--witness-timeout", witness_timeout, "seconds each witness has to answer a request")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();

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
  std::string bundle_path;
  verify->add_option("--bundle", bundle_path, "an evidence bundle (annals export) to check offline");
  std::string verify_policy;
  verify->add_option("--witness-policy", verify_policy,
                     "a tlog-policy file: the checkpoint must carry its quorum of witness cosignatures "
                     "(with --url or --bundle; its log line gives the key when --key is not given)");
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
  std::string s_cluster;  // every question's cluster= (docs/sources.md "Clusters")
  state_cmd->add_option("--cluster", s_cluster, "one cluster's objects (default: every cluster's)");
  add_url(state_cmd);
  auto* whois = app.add_subcommand("whois", "the pod that held IP at T");
  whois->add_option("ip", ip)->required();
  whois->add_option("--at", at, "RFC 3339 or relative time")->required();
  whois->add_option("-o,--output", output, "table or json")->capture_default_str();
  whois->add_option("--cluster", s_cluster, "one cluster's pods (default: every cluster's)");
  add_url(whois);
  auto* history = app.add_subcommand("history", "who did what to KIND/NAME");
  history->add_option("object", object, "KIND/NAME")->required();
  history->add_option("-n,--namespace", ns, "namespace");
  history->add_flag("--children", children, "include what the object owns");
  history->add_option("--since", since, "from this time");
  history->add_option("--until", until, "up to this time");
  history->add_option("--verbs", verbs, "verbs to include (e.g. get,list)");
  history->add_option("-o,--output", output, "table or json")->capture_default_str();
  history->add_option("--cluster", s_cluster, "one cluster's events (default: every cluster's)");
  add_url(history);
  std::string s_user, s_verb, s_resource, s_name, s_from, s_to, s_code, s_limit;
  std::string export_out, export_vkey;
  std::vector<uint64_t> export_indexes;
  auto add_export = [&](CLI::App* c) {
    c->add_option("--export", export_out, "write the answer's entries as an evidence bundle (tar) to FILE");
    c->add_option("--log-key", export_vkey, "the log's verifier key (with --export): the checkpoint is checked first");
  };
  add_export(history);
  auto* export_cmd = app.add_subcommand(
      "export", "an evidence bundle: entries with inclusion proofs and the signed checkpoint, in one tar");
  std::string export_from, export_to;
  export_cmd->add_option("--index", export_indexes, "entry indexes (repeatable, or comma-separated)")
      ->delimiter(',');
  export_cmd->add_option("--from", export_from, "every event from this time (RFC 3339 or -2h) ...");
  export_cmd->add_option("--to", export_to, "... up to this time");
  export_cmd->add_option("--out", export_out, "the bundle file to write")->required();
  export_cmd->add_option("--log-key", export_vkey, "the log's verifier key")->required();
  add_client(export_cmd);
  std::string ct_dir, ct_keys;
  auto* ct_import = app.add_subcommand(
      "import-cloudtrail-digests",
      "import CloudTrail log files as far as CloudTrail's signed digests vouch for them (docs/sources.md)");
  ct_import->add_option("dir", ct_dir, "a copy of the trail's bucket, each digest with its signature in <digest>.sig")
      ->required();
  ct_import->add_option("--public-keys", ct_keys, "the JSON of `aws cloudtrail list-public-keys`")->required();
  add_client(ct_import);
  auto* search = app.add_subcommand("search", "search and group audit events");
  add_export(search);
  search->add_option("--user", s_user);
  search->add_option("--verb", s_verb);
  search->add_option("--resource", s_resource);
  search->add_option("-n,--namespace", ns);
  search->add_option("--name", s_name);
  search->add_option("--code", s_code);
  search->add_option("--from", s_from);
  search->add_option("--to", s_to);
  search->add_option("--limit", s_limit);
  // The normalized view across Kubernetes and cloud audit records (docs/sources.md).
  std::string s_cloud, s_account, s_result, s_service, s_format;
  search->add_option("--actor", s_user, "who (same as --user)");
  search->add_option("--action", s_verb, "what was done (same as --verb)");
  search->add_option("--target", s_name, "the resource acted on (same as --name)");
  search->add_option("--cloud", s_cloud, "aws, gcp, azure or kubernetes");
  search->add_option("--account", s_account, "cloud account, project or subscription");
  search->add_option("--cluster", s_cluster);
  search->add_option("--result", s_result, "success or failure (cloud records)");
  search->add_option("--service", s_service, "a cloud service, e.g. ec2.amazonaws.com");
  search->add_option("--format", s_format, "ocsf: the events as OCSF API Activity (class 6003)");
  search->add_option("--group-by", group_by,
                     "user|verb|resource|namespace|code|source_ip|user_agent|hour|day|actor|action|service|cloud|"
                     "account|cluster|result");
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
  watch->add_option("--cluster", s_cluster, "one cluster's changes");
  add_url(watch);
  auto* enrich = app.add_subcommand("enrich", "add workload identity to flow JSON lines (stdin -> stdout)");
  enrich->add_option("--cluster", s_cluster, "the cluster the flows are of (default: any)");
  add_url(enrich);

  uint64_t sealed_index = 0;
  std::string sealed_path, erase_reason, reveal_vkey;
  auto* reveal = app.add_subcommand("reveal", "a redacted value (admin), checked against the entry's commitment");
  reveal->add_option("--index", sealed_index, "the entry")->required();
  reveal->add_option("--path", sealed_path, "JSON Pointer of the value in the entry, e.g. /requestObject/data/password")
      ->required();
  reveal->add_option("--log-key", reveal_vkey, "the log's verifier key: also check the entry is in a signed checkpoint");
  add_client(reveal);
  auto* erase = app.add_subcommand("erase", "delete a redacted value for good (admin); the erasure is recorded");
  erase->add_option("--index", sealed_index, "the entry")->required();
  erase->add_option("--path", sealed_path, "JSON Pointer of the value in the entry")->required();
  erase->add_option("--reason", erase_reason, "why (recorded in the ledger)")->required();
  add_client(erase);

  std::string witness_listen = "127.0.0.1:7071", witness_key;
  std::vector<std::string> witness_logs;
  auto* witness_cmd = app.add_subcommand("witness", "cosign other logs' checkpoints (C2SP tlog-witness; docs/witness.md)");
  witness_cmd->add_option("--data", data, "where each log's latest cosigned checkpoint is kept")->capture_default_str();
  witness_cmd->add_option("--listen", witness_listen, "host:port")->capture_default_str();
  witness_cmd->add_option("--key", witness_key, "the witness's private key (annals keygen)")->required();
  witness_cmd->add_option("--log", witness_logs, "a log's verifier key; its name is the log's origin (repeatable)");
  auto* rebuild = app.add_subcommand("rebuild", "rebuild every index and projection from the log (server stopped)");
  rebuild->add_option("--data", data, "data directory")->capture_default_str();
  uint64_t rebuild_budget = uint64_t{1} << 30;
  rebuild->add_option("--memory-budget", rebuild_budget, "bytes for the indexes' caches and unwritten keys")
      ->transform(CLI::AsSizeValue(false));
  double rebuild_cold_after = 3600;
  rebuild->add_option("--cold-after", rebuild_cold_after, "as serve's (the same value gives the same snapshot)")
      ->check(CLI::NonNegativeNumber);
  uint64_t rebuild_snapshot_every = 1000000;
  rebuild->add_option("--snapshot-every", rebuild_snapshot_every,
                      "as serve's: a body image every this many entries (the same value gives the same images)")
      ->capture_default_str();

  CLI11_PARSE(app, argc, argv);
  if (witness_cmd->parsed()) return RunWitness(data, witness_listen, witness_key, witness_logs);
  if (rebuild->parsed()) return Rebuild(data, rebuild_budget, rebuild_cold_after, rebuild_snapshot_every);

  // The server of a client command, from its flags, the environment and
  // the config file.
  client::ServerTarget target;
  const bool remote_verify = verify->parsed() && !cf.url.empty() && bundle_path.empty();
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
    param(&q, "cluster", s_cluster);
    if (output == "json") return Query(target, q);
    return Query(target, q, [](const nlohmann::json& j) {
      std::vector<std::vector<std::string>> rows;
      bool clusters = false;
      for (const auto& o : j["objects"]) clusters |= o.contains("cluster");
      for (const auto& o : j["objects"]) {
        rows.push_back({o.value("resource", ""), o.value("namespace", ""), o.value("name", ""),
                        o.value("state", ""), o.value("since", ""), std::to_string(o.value("index", 0))});
        if (clusters) rows.back().insert(rows.back().begin(), o.value("cluster", ""));
      }
      std::vector<std::string> head = {"RESOURCE", "NAMESPACE", "NAME", "STATE", "SINCE", "INDEX"};
      if (clusters) head.insert(head.begin(), "CLUSTER");
      return client::FormatTable(head, rows);
    });
  }
  if (whois->parsed()) {
    std::string q = std::string(api::paths::kPodsByIpPrefix) + UrlEncode(ip);
    param(&q, "at", at);
    param(&q, "cluster", s_cluster);
    if (output == "json") return Query(target, q);
    return Query(target, q, client::FormatWhois);
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
    param(&q, "cluster", s_cluster);
    if (!export_out.empty()) {
      auto c = Connect(target);
      if (!c.ok()) return Fail(c.status());
      auto idx = client::IndexesOfAnswer(c->get(), q);
      if (!idx.ok()) return Fail(idx.status());
      return ExportTo(target, export_vkey, *idx, export_out);
    }
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
    param(&q, "cloud", s_cloud);
    param(&q, "account", s_account);
    param(&q, "cluster", s_cluster);
    param(&q, "result", s_result);
    param(&q, "service", s_service);
    param(&q, "format", s_format);
    if (!s_format.empty() && s_format != "ocsf") return Fail("--format takes ocsf");
    if (s_format == "ocsf") return Query(target, q);
    if (!export_out.empty()) {
      if (!group_by.empty()) return Fail("--export takes events, not --group-by counts");
      auto c = Connect(target);
      if (!c.ok()) return Fail(c.status());
      auto idx = client::IndexesOfAnswer(c->get(), q);
      if (!idx.ok()) return Fail(idx.status());
      return ExportTo(target, export_vkey, *idx, export_out);
    }
    if (output == "json") return Query(target, q);
    return Query(target, q, [](const nlohmann::json& j) {
      std::vector<std::vector<std::string>> rows;
      if (j.contains("groups")) {
        for (const auto& g : j["groups"]) rows.push_back({g.value("key", ""), std::to_string(g.value("count", 0))});
        return client::FormatTable({j.value("group_by", "KEY"), "COUNT"}, rows);
      }
      // Cloud records: their service in RESOURCE, their result in CODE, and
      // a SOURCE column once any answer holds one.
      bool clouds = false;
      for (const auto& e : j["events"]) clouds |= e.contains("cloud");
      for (const auto& e : j["events"]) {
        std::vector<std::string> row;
        if (clouds) row.push_back(e.value("cloud", "kubernetes"));
        for (std::string cell :
             {e.value("time", ""), e.value("verb", ""),
              e.value("user", "") + (e.contains("impersonated_user") && e["impersonated_user"].is_string()
                                         ? " (as " + e["impersonated_user"].get<std::string>() + ")"
                                         : ""),
              e.value("resource", ""), e.value("namespace", ""), e.value("name", ""),
              e.contains("cloud") ? e.value("result", "") : std::to_string(e.value("code", 0)),
              std::to_string(e.value("index", 0))})
          row.push_back(std::move(cell));
        rows.push_back(std::move(row));
      }
      std::vector<std::string> head = {"TIME", "VERB", "USER", "RESOURCE", "NAMESPACE", "NAME", "CODE", "INDEX"};
      if (clouds) head.insert(head.begin(), "SOURCE");
      return client::FormatTable(head, rows);
    });
  }
  if (watch->parsed()) {
    std::string q = api::paths::kWatch;
    param(&q, "from", w_from);
    event_filters(&q);
    param(&q, "stage", w_stage);
    param(&q, "type", w_type);
    param(&q, "selector", selector);
    param(&q, "cluster", s_cluster);
    return Watch(target, q, w_max);
  }
  if (enrich->parsed()) {
    auto c = Connect(target);
    if (!c.ok()) return Fail(c.status());
    std::string body, line;
    size_t n = 0;
    auto flush = [&]() -> int {
      if (body.empty()) return 0;
      std::string path = api::paths::kEnrichFlows;
      param(&path, "cluster", s_cluster);
      auto r = (*c)->Post(path, body, "application/x-ndjson");
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

  if (serve->parsed()) {
    flags.data_dir = data;
    flags.archive_retain_seconds = *annals::ParseDurationSeconds(archive_retain);
    flags.witness_wait = witness_wait == "forever"
                             ? std::chrono::milliseconds(-1)
                             : std::chrono::milliseconds(static_cast<int64_t>(std::stod(witness_wait) * 1000));
    flags.witness_timeout = std::chrono::milliseconds(static_cast<int64_t>(witness_timeout * 1000));
    return Serve(key_file, std::move(flags));
  }
  if (collect->parsed()) return Collect(target, collect_state, collect_flags);
  if (keygen->parsed()) return Keygen(name, out);
  if (key_show->parsed()) return KeyShow(data);
  if (verify->parsed()) {
    if (!bundle_path.empty()) return VerifyBundleFile(bundle_path, vkey, verify_policy);
    if (remote_verify) return VerifyRemote(target, vkey, state, verify_policy);
    if (!verify_policy.empty()) return Fail("--witness-policy goes with --url or --bundle");
    if (verify_data->count() == 0)
      return Fail("verify what? --data DIR (a data directory) or --url URL (a served log)");
    return VerifyLocal(data, vkey);
  }
  if (append->parsed()) return Append(target, batch);
  if (ct_import->parsed()) {
    auto text = ReadFileToString(ct_keys);
    if (!text.ok()) return Fail(text.status());
    auto keys = ingest::ParseCloudTrailPublicKeys(*text);
    if (!keys.ok()) return Fail(keys.status());
    auto c = Connect(target);
    if (!c.ok()) return Fail(c.status());
    auto r = client::ImportCloudTrailDigests(c->get(), ct_dir, *keys);
    if (!r.ok()) return Fail(r.status());
    for (const auto& line : r->lines) std::printf("%s\n", line.c_str());
    return r->all_valid() ? 0 : 1;
  }
  if (export_cmd->parsed()) {
    if (!export_from.empty() || !export_to.empty()) {
      std::string q = api::paths::kEvents;
      param(&q, "from", export_from);
      param(&q, "to", export_to);
      auto c = Connect(target);
      if (!c.ok()) return Fail(c.status());
      auto idx = client::IndexesOfAnswer(c->get(), q);
      if (!idx.ok()) return Fail(idx.status());
      export_indexes.insert(export_indexes.end(), idx->begin(), idx->end());
    }
    if (export_indexes.empty()) return Fail("export what? --index I,J,... or --from T --to T");
    return ExportTo(target, export_vkey, export_indexes, export_out);
  }
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
  if (reveal->parsed()) {
    auto c = Connect(target);
    if (!c.ok()) return Fail(c.status());
    auto r = client::Reveal(c->get(), sealed_index, sealed_path, reveal_vkey);
    if (!r.ok()) return Fail(r.status());
    std::printf("%s\n", r->value.c_str());
    std::fprintf(stderr, "opens the commitment %s of entry %llu%s\n", r->commitment.c_str(),
                 static_cast<unsigned long long>(sealed_index),
                 r->in_signed_checkpoint
                     ? (", which is in the log's signed checkpoint of size " + std::to_string(r->checkpoint_size)).c_str()
                     : " (give --log-key to check the entry against a signed checkpoint too)");
    return 0;
  }
  if (erase->parsed()) {
    auto c = Connect(target);
    if (!c.ok()) return Fail(c.status());
    auto e = client::Erase(c->get(), sealed_index, sealed_path, erase_reason);
    if (!e.ok()) return Fail(e.status());
    std::printf("erased; recorded as entry %llu\n", static_cast<unsigned long long>(*e));
    return 0;
  }
  if (cons->parsed())
    return Proof(target, std::string(api::paths::kConsistencyProof) + "?first=" + std::to_string(first) +
                          "&second=" + std::to_string(second));
  return 0;
}
