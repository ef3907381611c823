// Api: the HTTP handlers. Routes a request by path (see paths.h) to the
// ledger's read path, proofs and ingest. Stateless apart from metrics;
// thread-safe. Does not own the ledger.
#ifndef ANNALS_API_API_H_
#define ANNALS_API_API_H_

#include "api/http.h"
#include "auth/authorizer.h"
#include "auth/denials.h"
#include "auth/limiter.h"
#include "common/metrics.h"
#include "ingest/cloud_audit.h"
#include "ingest/ingestor.h"
#include "ledger/ledger.h"
#include "state/questions.h"
#include "stream/change_feed.h"

namespace annals::api {

// How far the projections are: until ready, /readyz and the questions
// answer 503 with this progress (the log, health and ingest answer at once).
struct Readiness {
  bool ready = true;
  uint64_t applied = 0, target = 0;
  double entries_per_second = 0;
  bool rebuilding_index = false;
  // Hot and cold objects (docs/state.md): histories in the cold store, the
  // bytes of those read back and cached, and how many reads went to disk.
  uint64_t cold_objects = 0, cold_cache_bytes = 0, cold_loads = 0;
  // Body images on disk, and the bodies state answers took from them and
  // from the log (docs/state.md "State at T").
  uint64_t body_images = 0, bodies_from_images = 0, bodies_from_log = 0;
  // Empty, or why writes are refused or failing for want of space: /readyz
  // answers 503 with it (the questions are still answered).
  std::string storage;
  uint64_t disk_free_bytes = 0, disk_floor_bytes = 0;
  // What the derived stores hold in memory and will write (the guard
  // refuses ingest below the floor plus this).
  uint64_t disk_pending_bytes = 0;
  // Entries projected from their metadata alone: their blob was damaged or
  // missing (docs/faults.md "Blobs").
  uint64_t unreadable_payloads = 0;
  // Whether ingest is admitted: the dedup index has caught up with the log
  // (entries it covers, of those to cover); if its catch-up failed, why.
  bool ingest_ready = true;
  uint64_t dedup_applied = 0, dedup_target = 0;
  std::string ingest;
};

// A RocksDB-backed index's flushes and compactions since it was opened:
// CPU and bytes read and written ("events", "dedup", "cold").
struct IndexWork {
  std::string index;
  uint64_t cpu_nanos = 0, bytes_read = 0, bytes_written = 0;
};

class Api {
 public:
  // questions may be null (no projections): the question endpoints 503.
  Api(ledger::Ledger* ledger, ingest::Ingestor* ingestor, Metrics* metrics,
      const state::Questions* questions = nullptr)
      : ledger_(ledger), ingestor_(ingestor), metrics_(*metrics), questions_(questions) {}
  void Handle(HttpRequest&& req, Responder respond);
  // Enables /v1/watch (and the feed's lines in /metrics). Not owned.
  void SetChangeFeed(stream::ChangeFeed* feed) { feed_ = feed; }
  // Turns on authentication and authorization (docs/security.md): every
  // endpoint class needs its role; a namespace-limited reader is confined
  // to its namespaces; and every answered question is first appended to
  // the ledger as an "annals.read" entry (self-audit). Without it, every
  // caller may do everything (the loopback default). Call before serving.
  void EnableAuth(auth::Authorizer* authorizer) { authz_ = authorizer; }
  // Per-caller rate and in-flight limits (429 beyond them); health checks
  // are exempt. A caller is its user, or its address if anonymous.
  void EnableLimits(auth::Limiter* limiter) { limiter_ = limiter; }
  // Where refused requests (401, 403, 429) are noted, to be recorded in
  // the ledger a window at a time (auth/denials.h). Not owned.
  void SetDenialLog(auth::DenialLog* denials) { denials_ = denials; }
  // Enables /v1/sealed (reveal) and /v1/erase over the sealed values of
  // redaction. Not owned.
  void SetSealedStore(redact::SealedStore* sealed) { sealed_ = sealed; }
  // Where /readyz, the questions and /metrics learn how far the projections
  // are. Without it they are always ready. Call before serving.
  void SetReadiness(std::function<Readiness()> fn) { readiness_ = std::move(fn); }
  // Where /metrics learns the indexes' background work (read at each
  // scrape only: RocksDB's statistics are formatted text, too dear for the
  // readiness check every question makes).
  void SetIndexWork(std::function<std::vector<IndexWork>()> fn) { index_work_ = std::move(fn); }
  // The cluster ingest is filed under when the caller's credentials name
  // none and the request's ?cluster= does not either (serve --cluster).
  void SetDefaultCluster(std::string cluster) { default_cluster_ = std::move(cluster); }
  // GET /v1/witnesses answers fn()'s JSON (serve --witness-policy);
  // without it, {"policy": false}.
  void SetWitnesses(std::function<std::string()> fn) { witnesses_ = std::move(fn); }

 private:
  // Handle, once the caller is known: checks its role and answers.
  void Serve(HttpRequest&& req, const Target& t, const auth::Caller& caller, Responder respond);
  HttpResponse Checkpoint();
  HttpResponse Tile(std::string_view rel);
  // ?payload=base64: the payload's bytes as they are (`payload_base64`),
  // not parsed (evidence bundles carry blob payloads byte for byte).
  HttpResponse Entry(std::string_view index, const Target& t);
  HttpResponse InclusionProof(const Target& t);
  HttpResponse ConsistencyProof(const Target& t);
  // JSON lines, each made an item by `parse(line, receive time, "line N")`;
  // all or nothing.
  using LineParser = std::function<StatusOr<ingest::IngestItem>(std::string_view, const std::string&,
                                                                const std::string&)>;
  void IngestLines(HttpRequest&& req, const std::string& source, const LineParser& parse,
                   Responder respond);
  // perms: the caller's, when auth is on (a cloud record needs its
  // source's ingest role); nullptr otherwise.
  void IngestEvents(HttpRequest&& req, const auth::Permissions* perms, Responder respond);
  void IngestK8sAudit(HttpRequest&& req, Responder respond);
  void IngestK8sWatch(HttpRequest&& req, Responder respond);
  // A cloud audit body (ingest/cloud_audit.h), gzip allowed.
  void IngestCloud(HttpRequest&& req, ingest::CloudFormat format, Responder respond);
  // Submits items whose payloads point into *body; answers once durable.
  // Each item is first filed under `cluster` (ingest::BindCluster).
  void SubmitAndRespond(std::shared_ptr<std::string> body, std::string source,
                        std::vector<ingest::IngestItem> items, const std::string& cluster, Responder respond);
  HttpResponse MetricsPage();
  // The commitment a request names: ?commitment=C, or the string at JSON
  // Pointer `path` in entry `index`'s payload (*text: the commitment;
  // *stored, if given and named by entry: the digest of its payload).
  StatusOr<Hash> NamedCommitment(const std::string& commitment, const std::string& index, const std::string& path,
                                 std::string* text, Hash* stored) const;
  // GET /v1/sealed: a redacted value and its salt, recorded as a read.
  void Reveal(const HttpRequest& req, const Target& t, const auth::Caller& caller, Responder respond);
  // POST /v1/erase (by index and path): appends an annals.erasure entry,
  // then deletes the value and the entry's received-payload digest.
  void Erase(const HttpRequest& req, const auth::Caller& caller, Responder respond);
  // The console's page and files (no role: they hold no data; the page's
  // questions need the caller's roles like any client's).
  HttpResponse Console(const HttpRequest& req, std::string_view path);
  // The questions. `p` confines a namespace-limited reader; *count is set
  // to the number of answers returned (objects, pods, events, flows).
  HttpResponse StateAt(const Target& t, const auth::Permissions& p, size_t* count);
  HttpResponse PodByIp(std::string_view ip, const Target& t, const auth::Permissions& p, size_t* count);
  HttpResponse History(const Target& t, const auth::Permissions& p, size_t* count);
  HttpResponse Events(const Target& t, const auth::Permissions& p, size_t* count);
  // cluster: only that cluster's pods ("" any).
  HttpResponse EnrichFlows(const HttpRequest& req, const std::string& cluster, const auth::Permissions& p,
                           size_t* count);
  // Self-audit: appends who asked what and how many answers they got, and
  // responds with `answer` once that is durable (503 if it cannot be).
  void NoteDenial(const HttpRequest& req, std::string_view path, const auth::Caller& caller, const char* reason);
  void AuditReadAndRespond(const HttpRequest& req, const auth::Caller& caller, size_t count,
                           HttpResponse answer, Responder respond);
  // /v1/watch: a streamed answer; a namespace-limited reader is confined
  // to one of its namespaces, and (with auth on) the subscription is
  // recorded like any other question.
  void Watch(const HttpRequest& req, const Target& t, const auth::Caller& caller, Responder respond);

  ledger::Ledger* ledger_;
  ingest::Ingestor* ingestor_;
  Metrics& metrics_;
  const state::Questions* questions_;
  stream::ChangeFeed* feed_ = nullptr;
  auth::Authorizer* authz_ = nullptr;
  auth::Limiter* limiter_ = nullptr;
  auth::DenialLog* denials_ = nullptr;
  redact::SealedStore* sealed_ = nullptr;
  std::string default_cluster_;
  std::function<Readiness()> readiness_;
  std::function<std::vector<IndexWork>()> index_work_;
  std::function<std::string()> witnesses_;
};

}  // namespace annals::api

#endif  // ANNALS_API_API_H_
