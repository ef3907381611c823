#include "server/instance.h"
#include "common/log.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <optional>
#include <shared_mutex>

#include <boost/asio/ip/address.hpp>

#include "api/api.h"
#include "archive/archiver.h"
#include "auth/authorizer.h"
#include "auth/denials.h"
#include "auth/limiter.h"
#include "client/cosigning.h"
#include "common/bytes.h"
#include "common/file_util.h"
#include "common/metrics.h"
#include "common/net_util.h"
#include "common/sha256.h"
#include "common/time_util.h"
#include "forward/forwarder.h"
#include "forward/nats_sink.h"
#include "forward/syslog_sink.h"
#include "index/dedup_index.h"
#include "index/event_index.h"
#include "ingest/file_tail.h"
#include "ingest/ingestor.h"
#include "ingest/tcp_line.h"
#include "redact/policy.h"
#include "redact/redactor.h"
#include "redact/sealed_store.h"
#include "kube/kube_client.h"
#include "kube/token_review.h"
#include "ledger/ledger.h"
#include "ingest/line_batch.h"
#include "server/demo.h"
#include "server/disk_guard.h"
#include "server/http_server.h"
#include "state/cold_objects.h"
#include "state/body_images.h"
#include "state/projector.h"
#include "state/questions.h"
#include "state/state_store.h"
#include "stream/change_feed.h"
#include "watch/collector.h"

namespace annals::server {
namespace {

// How long one TokenReview may take, connecting included. A request whose
// token needs one waits that long at most (on a review thread, not a
// listener thread), then gets 401.
constexpr std::chrono::milliseconds kTokenReviewTimeout{5000};

bool IsLoopbackHost(const std::string& host) {
  boost::system::error_code ec;
  auto a = boost::asio::ip::make_address(host, ec);
  return !ec && a.is_loopback();
}

// Where the state projection's snapshot lives (state_snapshot.h).
std::string SnapshotPath(const std::string& data) { return data + "/index/state/projection.snap"; }

// Where the objects gone cold live (state/cold_objects.h).
std::string ColdPath(const std::string& data) { return data + "/index/objects"; }
// Where the body images live (body_images.h).
std::string ImagesPath(const std::string& data) { return data + "/index/state/images"; }

// --memory-budget, shared (docs/state.md "Memory"): the event index's
// block cache a quarter and its memtables an eighth (at most 64 MiB); the
// cold objects' block cache an eighth and the cache of bodies read back a
// quarter; the dedup index's two runs an eighth.
index::EventIndexOptions EventIndexOptionsFor(uint64_t budget) {
  index::EventIndexOptions o;
  o.block_cache_bytes = budget / 4;
  o.write_buffer_bytes = std::min<uint64_t>(budget / 8, uint64_t{64} << 20);
  return o;
}
// A run costs ~64 bytes a key (arena record and hash slots) and there are
// two (the open one and the one being written): an eighth of the budget is
// budget / 1024 keys a run, 1M at the default 1 GiB, as a catch-up's runs.
// The runs were 128K keys: each spans the whole hashed key space, so
// universal compaction rewrites a key about log2(index / run) times, and
// that was the dedup index's 1.2-1.8 us of CPU per event in 30-second
// ingest runs, over twice the event index's compactions
// (docs/performance.md).
index::DedupIndexOptions DedupIndexOptionsFor(uint64_t budget) {
  index::DedupIndexOptions o;
  o.run_keys = std::clamp<uint64_t>(budget / 1024, o.run_keys, o.catch_up_run_keys);
  return o;
}

// DATA/forward/<kind>-<first 16 hex of SHA-256(target)>.pos: a new target
// starts from the beginning of the log.
std::string CursorPath(const std::string& data, const forward::Sink& sink) {
  return data + "/forward/" + sink.kind() + "-" +
         HexEncode(HashBytes(Sha256(sink.target()))).substr(0, 16) + ".pos";
}

}  // namespace

// Declared in the order they are built: destroyed in the reverse.
struct Instance::Parts {
  Metrics metrics;
  std::unique_ptr<auth::Authorizer> authorizer;
  std::unique_ptr<kube::TokenReviewer> token_reviewer;
  std::unique_ptr<DiskGuard> disk;
  // The ledger's publisher calls it: destroyed after the ledger.
  std::unique_ptr<client::Cosigning> cosigning;
  std::unique_ptr<ledger::Ledger> ledger;
  std::unique_ptr<archive::Archiver> archiver;
  std::unique_ptr<index::DedupIndex> dedup;
  // Used by the ingestor: destroyed after it.
  std::unique_ptr<redact::Redactor> redactor;
  std::unique_ptr<redact::SealedStore> sealed;
  std::unique_ptr<ingest::Ingestor> ingestor;
  std::unique_ptr<index::EventIndex> events;
  std::unique_ptr<state::ColdObjects> cold;
  std::unique_ptr<state::BodyImages> images;
  std::unique_ptr<state::StateStore> store;
  std::unique_ptr<state::Projector> projector;
  std::unique_ptr<state::Questions> questions;
  std::unique_ptr<api::Api> api;
  std::unique_ptr<stream::ChangeFeed> feed;
  std::vector<std::unique_ptr<forward::Forwarder>> forwarders;
  std::unique_ptr<auth::Limiter> limiter;
  std::unique_ptr<auth::DenialLog> denials;
  std::unique_ptr<HttpServer> http;
  uint16_t port = 0;
  std::unique_ptr<ingest::TcpLineListener> tcp;
  uint16_t tcp_port = 0;
  std::vector<std::unique_ptr<ingest::FileTailer>> tailers;
  std::unique_ptr<kube::KubeClient> kube;
  std::unique_ptr<watch::IngestorSink> watch_sink;
  std::unique_ptr<watch::Collector> collector;
};

Instance::Instance(InstanceOptions options) : options_(std::move(options)), parts_(new Parts) {}

Instance::~Instance() { Stop(); }

StatusOr<std::unique_ptr<Instance>> Instance::Start(InstanceOptions options) {
  std::unique_ptr<Instance> in(new Instance(std::move(options)));
  Status s = in->Build();
  if (!s.ok()) {
    in->Stop();
    return s;
  }
  return in;
}

Status Instance::Build() {
  const InstanceOptions& o = options_;
  Parts& p = *parts_;
  const std::string& data = o.data_dir;

  ASSIGN_OR_RETURN(auto listen_hp, SplitHostPort(o.listen));
  const bool tls = !o.tls_cert.empty();
  if (!tls && !o.insecure_listen && !IsLoopbackHost(listen_hp.first))
    return InvalidArgumentError("refusing plain HTTP on " + o.listen +
                                ": give --tls-cert and --tls-key, or --insecure-listen to accept the risk");
  const bool auth_on = !o.client_ca.empty() || !o.tokens.empty() || !o.auth_config.empty() ||
                       !o.token_review.empty();
  if (!IsLoopbackHost(listen_hp.first) && !auth_on)
    log::Warning("warning: no --client-ca, --tokens, --token-review or --auth-config: "
                         "every caller that reaches %s may write and read", o.listen.c_str());
  if (o.token_review.empty() && !o.token_review_audiences.empty())
    return InvalidArgumentError("--token-review-audience needs --token-review");
  // The default roles make every authenticated caller an admin: with
  // TokenReview, that would be every ServiceAccount in the cluster.
  if (!o.token_review.empty() && o.auth_config.empty())
    return InvalidArgumentError("--token-review needs --auth-config: without it every ServiceAccount in the "
                                "cluster would be an admin");
  if (auth_on) {
    auth::AuthConfig ac = auth::DefaultAuthConfig();
    if (!o.auth_config.empty()) {
      ASSIGN_OR_RETURN(std::string text, ReadFileToString(o.auth_config));
      auto parsed = auth::ParseAuthConfig(text);
      if (!parsed.ok()) return InvalidArgumentError(o.auth_config + ": " + parsed.status().message());
      ac = std::move(*parsed);
      // A relative tokens path is relative to the config file.
      if (!ac.tokens_file.empty() && ac.tokens_file.front() != '/')
        ac.tokens_file = DirName(o.auth_config) + "/" + ac.tokens_file;
    }
    ASSIGN_OR_RETURN(p.authorizer, auth::Authorizer::Create(std::move(ac), o.tokens));
  }
  if (!o.token_review.empty()) {
    auto cfg = o.token_review == "in-cluster" ? kube::InClusterConfig() : kube::LoadKubeconfig(o.token_review);
    if (!cfg.ok())
      return InvalidArgumentError(
          "--token-review: " + cfg.status().message() +
          (o.token_review == "in-cluster" ? "; outside a cluster, give --token-review KUBECONFIG" : ""));
    auto client = kube::KubeClient::Create(std::move(*cfg));
    if (!client.ok()) return InvalidArgumentError("--token-review: " + client.status().message());
    p.token_reviewer =
        std::make_unique<kube::TokenReviewer>(std::move(*client), o.token_review_audiences, kTokenReviewTimeout);
  }

  // Before anything writes: a start on a full disk releases the reserve
  // file so that the indexes can open (docs/faults.md "A full disk").
  RETURN_IF_ERROR(MakeDirs(data));
  p.disk = std::make_unique<DiskGuard>(data, o.disk_reserve);
  p.disk->Check(/*at_start=*/true);

  ledger::LedgerOptions lo;
  lo.data_dir = data;
  lo.origin = o.origin;
  lo.checkpoint_interval = std::chrono::milliseconds(o.checkpoint_interval_ms);
  lo.private_key = o.private_key;
  lo.scrub_bytes_per_second = o.scrub_bytes_per_second;
  lo.scrub_waits_for_start = true;  // started once caught up (OnCaughtUp below)
  lo.segment_compression_level = o.segment_compression_level;
  lo.segment_cache_window_bytes = uint64_t{32} << 20;  // docs/performance.md, "The page cache"
  lo.max_segment_entries = o.max_segment_entries;
  lo.accept_lost_checkpoints = o.accept_lost_checkpoints;
  archive::ArchiverOptions archive_options;
  if (!o.archive.empty()) {
    archive::ArchiverOptions& ao = archive_options;
    ASSIGN_OR_RETURN(ao.location, archive::ParseS3Url(o.archive));
    if (o.s3_endpoint.empty()) return InvalidArgumentError("--archive needs --s3-endpoint URL");
    ao.s3.endpoint = o.s3_endpoint;
    ao.s3.region = archive::RegionOr(o.s3_region);
    auto creds = archive::LoadCredentials(o.s3_credentials);
    if (!creds.ok()) return InvalidArgumentError("--archive: " + creds.status().message());
    ao.s3.credentials = *creds;
    if (!o.s3_ca.empty()) {
      ASSIGN_OR_RETURN(ao.s3.tls.ca_pem, ReadFileToString(o.s3_ca));
    }
    ASSIGN_OR_RETURN(ao.lock_mode, archive::ParseLockMode(o.archive_lock));
    ao.retain_seconds = o.archive_retain_seconds;
    ao.parallel = o.archive_parallel;
    ao.interval = std::chrono::milliseconds(static_cast<int64_t>(o.archive_interval_seconds * 1000));
    ao.max_backlog_entries = o.archive_max_backlog;
    ao.state_dir = data + "/archive";
    if (!o.local_retain.empty()) {
      if (auto secs = ParseDurationSeconds(o.local_retain)) {
        ao.local_retain_seconds = *secs;
      } else if (auto bytes = ParseByteSize(o.local_retain); bytes && *bytes > 0) {
        ao.local_retain_bytes = *bytes;
      } else {
        return InvalidArgumentError("--local-retain wants a duration (30d) or a size (500GiB), got " + o.local_retain);
      }
    }
    // Segments whose local copy retention dropped are read from here.
    ASSIGN_OR_RETURN(lo.fetch_archived_segment, archive::SegmentFetcher(ao.s3, ao.location));
  } else if (!o.local_retain.empty()) {
    return InvalidArgumentError("--local-retain needs --archive: only what is in the archive is dropped");
  }
  std::optional<witness::Policy> witness_policy;
  if (!o.witness_policy.empty()) {
    ASSIGN_OR_RETURN(std::string text, ReadFileToString(o.witness_policy));
    auto parsed = witness::Policy::Parse(text);
    if (!parsed.ok()) return InvalidArgumentError("--witness-policy " + o.witness_policy + ": " + parsed.status().message());
    witness_policy = std::move(*parsed);
  }
  auto ledger = ledger::Ledger::Open(lo);
  if (!ledger.ok()) return UnavailableError("cannot open ledger in " + data + ": " + ledger.status().message());
  p.ledger = std::move(*ledger);
  if (witness_policy) {
    client::CosigningOptions co;
    co.wait = o.witness_wait;
    co.request_timeout = o.witness_timeout;
    auto c = client::Cosigning::Create(std::move(*witness_policy), p.ledger.get(), &p.metrics, co);
    if (!c.ok()) return InvalidArgumentError("--witness-policy " + o.witness_policy + ": " + c.status().message());
    p.cosigning = std::move(*c);
    p.ledger->SetWitnessing(p.cosigning.get());
  }
  const auto& rec = p.ledger->recovery();
  if (!rec.log.reason.empty())
    log::Warning("recovery: cut %llu bytes of torn log tail (%s)",
                 static_cast<unsigned long long>(rec.log.truncated_bytes), rec.log.reason.c_str());
  if (!rec.checkpoint_log_cut.empty())
    log::Warning("recovery: cut torn checkpoint log tail (%s)", rec.checkpoint_log_cut.c_str());
  if (rec.tiles_rebuilt) log::Info("recovery: rebuilt all tiles from the log");
  if (!o.archive.empty()) {
    auto a = archive::Archiver::Start(std::move(archive_options), p.ledger.get(), &p.metrics);
    if (!a.ok()) return Status(a.status().code(), "--archive: " + a.status().message());
    p.archiver = std::move(*a);
  }
  if (rec.lost_checkpoints_accepted > 0)
    log::Error("recovery: --accept-lost-checkpoints: the log's %llu entries had no signed checkpoint; "
               "signing them as found (recorded in %s/log/%s)",
               static_cast<unsigned long long>(rec.lost_checkpoints_accepted), data.c_str(),
               ledger::kAcceptedLossesName);

  auto dedup = index::DedupIndex::Open(data + "/index/dedup", DedupIndexOptionsFor(o.memory_budget));
  if (!dedup.ok()) return UnavailableError("cannot open the dedup index: " + dedup.status().message());
  p.dedup = std::move(*dedup);
  // Caught up with the log on a thread of its own, beside the projections,
  // while the server listens; ingest is held until it is.
  p.ingestor = ingest::Ingestor::OpenCatchingUp(p.ledger.get(), p.dedup.get(), &p.metrics);
  p.ingestor->SetRefusal([d = p.disk.get()] { return d->Admit(); });
  if (o.redaction_policy != "none") {
    redact::Policy policy = redact::DefaultPolicy();
    if (!o.redaction_policy.empty()) {
      ASSIGN_OR_RETURN(std::string text, ReadFileToString(o.redaction_policy));
      auto parsed = redact::ParsePolicy(text);
      if (!parsed.ok()) return InvalidArgumentError(o.redaction_policy + ": " + parsed.status().message());
      policy = std::move(*parsed);
    }
    std::optional<redact::SealKey> key;
    if (!o.seal_key.empty()) {
      ASSIGN_OR_RETURN(key, redact::ReadSealKey(o.seal_key));
    }
    ASSIGN_OR_RETURN(p.sealed, redact::SealedStore::Open(data + "/sealed", key));
    p.redactor = std::make_unique<redact::Redactor>(std::move(policy));
    p.ingestor->SetRedaction(p.redactor.get(), p.sealed.get());
    p.ledger->SetSyncBeside([sealed = p.sealed.get()] { return sealed->Sync(); });
    log::Info("redaction: policy %s, sealed values in %s/sealed (%s)", p.redactor->version().c_str(), data.c_str(),
              key ? "encrypted with --seal-key" : "not encrypted: give --seal-key to encrypt them");
  }
  p.disk->Run(std::chrono::milliseconds(250));
  std::string wiped;
  auto events = index::EventIndex::Open(data + "/index/events", EventIndexOptionsFor(o.memory_budget), &wiped);
  if (!events.ok()) return UnavailableError("cannot open the event index: " + events.status().message());
  p.events = std::move(*events);
  if (!wiped.empty()) log::Warning("event index %s: rebuilding it from the log", wiped.c_str());
  log::Info("event index covers %llu of the log's %llu entries",
               static_cast<unsigned long long>(p.events->watermark()),
               static_cast<unsigned long long>(p.ledger->DurableSize()));

  // The projection catches up on its own thread while the listener serves:
  // the log, health and ingest at once, the questions once it is ready.
  auto cold = state::ColdObjects::Open(ColdPath(data), o.memory_budget / 8, &wiped);
  if (!cold.ok()) return UnavailableError("cannot open the cold objects: " + cold.status().message());
  p.cold = std::move(*cold);
  if (!wiped.empty()) {
    // The snapshot names bodies that are gone: replay instead.
    log::Warning("cold objects %s: the projection is rebuilt from the log", wiped.c_str());
    if (std::remove(SnapshotPath(data).c_str()) != 0 && errno != ENOENT)
      return UnavailableError("cannot remove " + SnapshotPath(data) + ": " + std::strerror(errno));
  }
  // Ingest is refused before the disk lacks room for what these hold in
  // memory (docs/faults.md "A full disk: the guard and the reserve").
  p.disk->SetPending([dedup = p.dedup.get(), events = p.events.get(), cold = p.cold.get()] {
    return dedup->UnwrittenBytes() + events->UnflushedBytes() + cold->UnflushedBytes();
  });
  auto images = state::BodyImages::Open(ImagesPath(data), p.ledger.get());
  if (!images.ok()) return UnavailableError("cannot open the body images: " + images.status().message());
  p.images = std::move(*images);
  p.store = std::make_unique<state::StateStore>();
  p.store->set_cold(p.cold.get(), static_cast<Micros>(o.cold_after_seconds * 1e6), o.memory_budget / 4);
  p.projector = std::make_unique<state::Projector>(p.ledger.get(), p.store.get(), p.events.get());
  p.projector->set_snapshot(SnapshotPath(data), std::max<uint64_t>(o.snapshot_every, 1), o.snapshot_interval);
  p.projector->set_images(p.images.get(), o.snapshot_every);
  // Live event rows commit in batches of up to 50 ms (docs/state.md).
  p.projector->set_live_commit(32768, 50);
  // Ready once ingest is too: the dedup index caught up beside the
  // projection. The log's scrub waits for both (a start from empty is all
  // CPU); a dedup catch-up that failed lets it begin all the same.
  p.projector->OnCaughtUp([ing = p.ingestor.get(), l = p.ledger.get(), ready = o.on_ready](
                              uint64_t end, uint64_t replayed, double secs) {
    const bool ingest_ready = ing->WaitForCatchUp().ok();
    l->StartScrub();
    if (ingest_ready && ready) ready(end, replayed, secs);
  });
  p.questions = std::make_unique<state::Questions>(p.ledger.get(), p.store.get(), p.events.get());
  p.questions->set_images(p.images.get());
  p.questions->OnIndexDamaged([pr = p.projector.get()](const std::string& why) { pr->RebuildEvents(why); });
  p.api = std::make_unique<api::Api>(p.ledger.get(), p.ingestor.get(), &p.metrics, p.questions.get());
  if (p.cosigning) p.api->SetWitnesses([c = p.cosigning.get()] { return c->StatusJson(); });
  if (p.sealed) p.api->SetSealedStore(p.sealed.get());
  p.api->SetReadiness([pr = p.projector.get(), st = p.store.get(), d = p.disk.get(), l = p.ledger.get(),
                       a = p.archiver.get(), im = p.images.get(), q = p.questions.get(), ing = p.ingestor.get()]() {
    api::Readiness r;
    const auto dc = ing->catch_up();
    r.ingest = dc.done ? dc.status.message() : "";
    r.ingest_ready = dc.done && dc.status.ok();
    r.dedup_applied = dc.applied;
    r.dedup_target = dc.target;
    r.storage = d->Refusal();
    if (r.storage.empty()) {
      if (std::string full = l->OutOfSpace(); !full.empty()) r.storage = "out of space: " + full;
    }
    r.disk_free_bytes = d->last_free();
    r.disk_floor_bytes = d->floor();
    r.disk_pending_bytes = d->last_pending();
    const auto pg = pr->progress();
    r.ready = pr->caught_up() && !st->damaged();
    r.applied = pg.applied;
    r.target = pg.target;
    r.entries_per_second = pg.entries_per_second;
    r.rebuilding_index = pg.rebuilding_events;
    r.unreadable_payloads = pg.unreadable_payloads;
    const auto cs = st->cold_stats();
    r.cold_objects = cs.cold;
    r.cold_cache_bytes = cs.cached_bytes;
    r.cold_loads = cs.loads;
    r.body_images = im->Applied().size();
    r.bodies_from_images = q->bodies_from_images();
    r.bodies_from_log = q->bodies_from_log();
    if (r.storage.empty() && a) r.storage = a->Unready();
    return r;
  });
  p.api->SetIndexWork([dedup = p.dedup.get(), events = p.events.get(), cold = p.cold.get()] {
    std::vector<api::IndexWork> out;
    auto work = [&out](const char* name, const index::BackgroundWork& w) {
      out.push_back({name, w.cpu_nanos, w.bytes_read, w.bytes_written});
    };
    work("events", events->BackgroundWorkDone());
    work("dedup", dedup->BackgroundWorkDone());
    work("cold", cold->BackgroundWorkDone());
    return out;
  });
  stream::ChangeFeedOptions fo;
  fo.buffer_entries = std::max<size_t>(1, o.watch_buffer);
  p.feed = std::make_unique<stream::ChangeFeed>(
      stream::ChangeSources{p.ledger.get(), p.store.get(), p.questions.get()}, p.projector.get(), fo);
  p.feed->Start();
  p.api->SetChangeFeed(p.feed.get());
  p.api->SetDefaultCluster(o.cluster);

  std::vector<std::string> targets = o.forwards;
  if (!o.nats.empty()) targets.push_back(o.nats);
  for (const auto& f : targets) {
    std::unique_ptr<forward::Sink> sink;
    forward::ForwarderOptions fwo;
    if (f.starts_with("syslog+")) {
      ASSIGN_OR_RETURN(auto t, forward::ParseSyslogUrl(f));
      sink = std::make_unique<forward::SyslogSink>(t, p.ledger->signer().name(), o.forward_ca);
      fwo.wait_for_checkpoint = true;
    } else if (f == o.nats) {
      sink = std::make_unique<forward::NatsSink>(f, p.ledger->signer().name());
    } else {
      return InvalidArgumentError("--forward wants syslog+tcp://HOST:PORT or syslog+tls://HOST:PORT, got " + f);
    }
    std::string cursor = CursorPath(data, *sink);
    p.forwarders.push_back(
        std::make_unique<forward::Forwarder>(p.feed.get(), std::move(sink), cursor, &p.metrics, fwo));
    Status s = p.forwarders.back()->Start();
    if (!s.ok()) return UnavailableError("forwarder " + f + ": " + s.message());
  }

  if (p.token_reviewer) {
    auth::TokenReviewOptions ro;
    ro.metrics = &p.metrics;
    p.authorizer->EnableTokenReview(
        [r = p.token_reviewer.get()](std::string_view token) { return r->Review(token); }, std::move(ro));
  }
  if (p.authorizer) {
    p.api->EnableAuth(p.authorizer.get());
    // Refused requests, a window at a time, appended like the reads are.
    auth::DenialLogOptions dopt;
    dopt.window = std::chrono::milliseconds(static_cast<int64_t>(o.denied_window_seconds * 1000));
    p.denials = std::make_unique<auth::DenialLog>(
        dopt, &p.metrics, [in = p.ingestor.get()](std::vector<auth::DenialLog::Record> records) -> Status {
          std::vector<ingest::IngestItem> items;
          for (auto& r : records) items.push_back({std::move(r.meta), r.payload, ""});
          return in->SubmitAndWait("annals", std::move(items)).status();
        });
    p.denials->Start();
    p.api->SetDenialLog(p.denials.get());
  }
  p.limiter = std::make_unique<auth::Limiter>(auth::LimiterOptions{o.rate_limit, o.rate_burst, o.max_inflight});
  if (p.limiter->enabled()) p.api->EnableLimits(p.limiter.get());

  HttpServerOptions so;
  so.listen = o.listen;
  so.max_body_bytes = o.max_body;
  so.tls_cert = o.tls_cert;
  so.tls_key = o.tls_key;
  so.client_ca = o.client_ca;
  so.idle_timeout_seconds = o.request_timeout;
  so.handshake_timeout_seconds = std::min(so.handshake_timeout_seconds, o.request_timeout);
  so.drain_timeout_ms = static_cast<int>(o.drain_timeout.count());
  p.http = std::make_unique<HttpServer>(
      so, [api = p.api.get()](api::HttpRequest&& req, api::Responder r) { api->Handle(std::move(req), std::move(r)); });
  ASSIGN_OR_RETURN(p.port, p.http->Start());

  if (!o.tcp_listen.empty()) {
    p.tcp = std::make_unique<ingest::TcpLineListener>(o.tcp_listen, p.ingestor.get(), &p.metrics, 4u << 20, o.cluster);
    ASSIGN_OR_RETURN(auto thp, SplitHostPort(o.tcp_listen));
    if (tls) {
      ingest::TcpLineListener::Admit admit;
      if (p.authorizer)
        admit = [a = p.authorizer.get(), d = p.denials.get()](const std::string& user,
                                                             const std::vector<std::string>& groups,
                                                             const std::string& remote, std::string* cluster) {
          if (!user.empty()) {
            const auth::Permissions p = auth::Resolve(a->config(), user, groups, true);
            if (p.MayIngest("tcp")) {
              *cluster = p.cluster;
              return true;
            }
          }
          d->Note(auth::Denial{user, user.empty() ? "none" : "tls", remote,
                               user.empty() ? "unauthenticated" : "forbidden", "tcp", "connect"});
          return false;
        };
      RETURN_IF_ERROR(p.tcp->EnableTls({o.tls_cert, o.tls_key, o.client_ca}, std::move(admit)));
    } else if (!o.insecure_listen && !IsLoopbackHost(thp.first)) {
      return InvalidArgumentError("refusing plain TCP on " + o.tcp_listen +
                                  ": give --tls-cert and --tls-key, or --insecure-listen to accept the risk");
    }
    ASSIGN_OR_RETURN(p.tcp_port, p.tcp->Start());
  }
  for (const auto& f : o.tails) {
    p.tailers.push_back(
        std::make_unique<ingest::FileTailer>(f, data + "/tail", p.ingestor.get(), &p.metrics, o.cluster));
    RETURN_IF_ERROR(p.tailers.back()->Start());
  }
  if (o.demo) {
    // As an audit log file's lines, filed under --cluster.
    ingest::LineBatch batch = ingest::MakeLineBatch(std::string(DemoAuditLog()), 1, "audit-log", "the demo",
                                                    &p.metrics, "", 0, o.cluster);
    auto r = p.ingestor->SubmitAndWait("audit-log", batch.items);
    if (!r.ok()) return Status(r.status().code(), "--demo: " + r.status().message());
    // Under a served checkpoint before the first question, so that verify
    // and the console's proofs cover them (the next publish, within an
    // interval; with witnesses, up to a bound).
    p.ledger->WaitForCheckpoint(p.ledger->DurableSize(), std::chrono::seconds(10));
    const std::string url = std::string(tls ? "https://" : "http://") + listen_hp.first + ":" + std::to_string(p.port);
    log::Info("demo: %zu events loaded (%llu new); try the console at %s/ui/", batch.items.size(),
              static_cast<unsigned long long>(r->stored), url.c_str());
  }
  if (o.watch.enabled) {
    ASSIGN_OR_RETURN(p.kube, watch::MakeKubeClient(o.watch));
    ASSIGN_OR_RETURN(auto copts, watch::MakeCollectorOptions(o.watch, data + "/watch"));
    p.watch_sink = std::make_unique<watch::IngestorSink>(p.ingestor.get(), o.cluster);
    p.collector = std::make_unique<watch::Collector>(p.kube.get(), p.watch_sink.get(), &p.metrics, std::move(copts));
    RETURN_IF_ERROR(p.collector->Start());
  }
  if (o.on_serving) o.on_serving(*this);
  p.projector->Start();
  return OkStatus();
}

void Instance::Stop() {
  if (stopped_) return;
  stopped_ = true;
  Parts& p = *parts_;
  // 1. No new work.
  if (p.projector) p.projector->Cancel();
  // A dedup catch-up in progress ends at its next chunk; ingest it held fails.
  if (p.ingestor) p.ingestor->Cancel();  // a catch-up in progress (on any thread) ends at its next chunk
  // Witness requests in flight end; no later checkpoint is served unwitnessed.
  if (p.cosigning) p.cosigning->Stop();
  if (p.collector) p.collector->Stop();
  if (p.token_reviewer) p.token_reviewer->Abort();  // reviews in flight fail now
  if (p.http) p.http->Stop();                        // answers what it took, up to drain_timeout
  // The review threads may still be answering requests (they use the api,
  // the ingestor and the metrics): finish them before those go.
  if (p.authorizer) p.authorizer->Stop();
  if (p.tcp) p.tcp->Stop();
  for (auto& t : p.tailers) t->Stop();
  // What the last window of refusals holds, appended while the ingestor
  // and the ledger still run.
  if (p.denials) p.denials->Stop();
  // 2. Every append already handed to the ledger calls back while the
  // ledger, the listeners (whose responders those callbacks call) and the
  // ingestor still exist.
  if (p.ingestor) p.ingestor->Drain();
  // 3. Consumers of the log.
  for (auto& f : p.forwarders) f->Stop();
  if (p.archiver) p.archiver->Stop();
  if (p.feed) p.feed->Stop();
  if (p.projector) {
    p.projector->Stop();
    // The next start loads this and replays only what comes after it; a
    // start cancelled before it caught up leaves the last one in place.
    if (p.projector->caught_up()) {
      Status ss = p.projector->SaveSnapshot();
      if (!ss.ok()) log::Warning("state snapshot: %s", ss.message().c_str());
    }
  }
  // 4. The disk guard asks the stores what they hold: stopped first.
  if (p.disk) {
    p.disk->SetPending(nullptr);
    p.disk->Stop();
  }
  // 5. Destroyed in the reverse of the order they were built in.
  parts_.reset();
}

Status Instance::ReloadTls() {
  if (!tls()) return FailedPreconditionError("TLS is not configured");
  Status s = parts_->http->ReloadTls();
  if (s.ok() && parts_->tcp) s = parts_->tcp->ReloadTls();
  return s;
}

bool Instance::tls() const { return !options_.tls_cert.empty(); }
std::string Instance::host() const {
  auto hp = SplitHostPort(options_.listen);
  return hp.ok() ? hp->first : options_.listen;
}
uint16_t Instance::port() const { return parts_ ? parts_->port : 0; }
uint16_t Instance::tcp_port() const { return parts_ ? parts_->tcp_port : 0; }
uint64_t Instance::entries() const { return parts_ && parts_->ledger ? parts_->ledger->DurableSize() : 0; }
std::string Instance::verifier_key() const {
  return parts_ && parts_->ledger ? parts_->ledger->signer().VerifierKey() : "";
}

StatusOr<RebuildReport> RebuildDerived(const std::string& data, uint64_t memory_budget, double cold_after_seconds,
                                       uint64_t snapshot_every) {
  ledger::LedgerOptions lo;
  lo.data_dir = data;
  if (!FileExists(data + "/key")) return NotFoundError("no ledger in " + data);
  auto ledger = ledger::Ledger::Open(lo);
  if (!ledger.ok()) return UnavailableError("cannot open ledger in " + data + ": " + ledger.status().message());
  auto t0 = std::chrono::steady_clock::now();
  const std::string dedup_dir = data + "/index/dedup";
  std::error_code ec;
  std::filesystem::remove_all(dedup_dir, ec);
  if (ec) return UnavailableError("cannot remove " + dedup_dir + ": " + ec.message());
  ASSIGN_OR_RETURN(auto dedup, index::DedupIndex::Open(dedup_dir, DedupIndexOptionsFor(memory_budget)));
  Metrics metrics;
  {
    auto ingestor = ingest::Ingestor::Open(ledger->get(), dedup.get(), &metrics);
    if (!ingestor.ok()) return UnavailableError("dedup index: " + ingestor.status().message());
  }
  RETURN_IF_ERROR(dedup->Flush());
  const std::string events_dir = data + "/index/events";
  std::filesystem::remove_all(events_dir, ec);
  if (ec) return UnavailableError("cannot remove " + events_dir + ": " + ec.message());
  ASSIGN_OR_RETURN(auto events, index::EventIndex::Open(events_dir, EventIndexOptionsFor(memory_budget)));
  const std::string snapshot = SnapshotPath(data);
  if (std::remove(snapshot.c_str()) != 0 && errno != ENOENT)
    return UnavailableError("cannot remove " + snapshot + ": " + std::strerror(errno));
  // Emptied by the projector's first catch-up, which starts from entry 0.
  ASSIGN_OR_RETURN(auto cold, state::ColdObjects::Open(ColdPath(data), memory_budget / 8));
  ASSIGN_OR_RETURN(auto images, state::BodyImages::Open(ImagesPath(data), ledger->get()));
  RETURN_IF_ERROR(images->Clear());
  state::StateStore store;
  store.set_cold(cold.get(), static_cast<Micros>(cold_after_seconds * 1e6), memory_budget / 4);
  state::Projector projector(ledger->get(), &store, events.get());
  projector.set_report_progress(true);
  projector.set_snapshot(snapshot, 1, 0);
  projector.set_images(images.get(), snapshot_every);
  Status s = projector.CatchUp();
  if (!s.ok()) return UnavailableError("projection: " + s.message());
  s = projector.SaveSnapshot();
  if (!s.ok()) return UnavailableError("state snapshot: " + s.message());
  RebuildReport r;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.entries = (*ledger)->DurableSize();
  std::shared_lock lock(store.mutex());
  r.objects = store.object_count();
  return r;
}

}  // namespace annals::server
