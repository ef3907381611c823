// Instance: one running `annals serve`, the owner of its parts. Start
// builds them from the options in dependency order (ledger, indexes,
// ingestor, projection, questions, change feed, forwarders, auth, the HTTP
// listener, the TCP connector, tailers, the watch collector) and starts
// them; Stop takes them down in the reverse order after draining:
//
//   1. no new work: the projection's catch-up is cancelled, the collector,
//      reviews in flight, the HTTP listener (requests it already took are
//      answered, up to a bound), the TCP connector and the tailers stop;
//   2. every append already handed to the ledger is acknowledged or failed
//      (Ingestor::Drain), so no callback runs on a part that is gone;
//   3. the forwarders, the change feed and the projection stop and the
//      state snapshot is saved;
//   4. the parts are destroyed, the ledger last but one (after the
//      ingestor that appends to it), the indexes last.
//
// annals_main.cc parses flags into InstanceOptions and waits for signals.
// Not thread-safe: one thread starts, reloads and stops it.
#ifndef ANNALS_SERVER_INSTANCE_H_
#define ANNALS_SERVER_INSTANCE_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "watch/collector.h"

namespace annals::server {

struct InstanceOptions {
  std::string data_dir;
  // The cluster ingest is filed under when the caller's credentials name
  // none (docs/sources.md "Clusters"): HTTP ingest and the in-process watch
  // collector. "" = none.
  std::string cluster;
  std::string listen = "127.0.0.1:7070";
  std::string private_key;  // note-format private key text; "" = the data directory's own
  std::string origin;
  int checkpoint_interval_ms = 1000;
  uint64_t max_body = 16u << 20;
  std::string tcp_listen;
  std::vector<std::string> tails;
  // Loads the demo's events (server/demo.h) at start: real public audit
  // events to try the questions on. Deduplicated, so a second start with
  // --demo stores nothing new.
  bool demo = false;
  watch::WatchFlags watch;
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
  // Redaction at ingest (docs/security.md "Secrets"): "" = the built-in
  // policy, a JSON policy file, or "none" (off). The sealed values go to
  // DATA/sealed, encrypted when seal_key names a key file.
  std::string redaction_policy;
  std::string seal_key;
  // With auth on: refused requests are recorded a window at a time
  // (auth/denials.h).
  double denied_window_seconds = 60;
  uint64_t memory_budget = uint64_t{1} << 30;
  // Objects gone for longer than this (in log time) leave memory for the
  // cold store (docs/state.md "Hot and cold objects").
  double cold_after_seconds = 3600;
  // ledger::LedgerOptions::segment_compression_level and max_segment_entries.
  int segment_compression_level = 3;
  uint64_t max_segment_entries = 1 << 16;
  // The log scrub's pace (ledger::LedgerOptions::scrub_bytes_per_second).
  uint64_t scrub_bytes_per_second = uint64_t{50} << 20;
  // ledger::LedgerOptions::accept_lost_checkpoints.
  bool accept_lost_checkpoints = false;
  // The disk guard's floor (server/disk_guard.h): ingest is refused while
  // less is free in the data directory's file system; 0 turns it off.
  uint64_t disk_reserve = uint64_t{64} << 20;
  // The archive to S3-compatible object storage (docs/operations.md
  // "Archive"): "" = none, else s3://BUCKET[/PREFIX].
  std::string archive;
  std::string s3_endpoint, s3_region, s3_ca, s3_credentials;
  std::string archive_lock = "compliance";
  int64_t archive_retain_seconds = 0;
  int archive_parallel = 4;
  double archive_interval_seconds = 30;
  uint64_t archive_max_backlog = 10'000'000;
  // archive::ArchiverOptions::local_retain_*: "" (keep all), a duration
  // ("30d") or a size ("500GiB").
  std::string local_retain;
  // Witnessed checkpoints (docs/witness.md): a tlog-policy file, "" = none;
  // how long /log/checkpoint may wait for the quorum (negative: for ever)
  // and each witness request's bound.
  std::string witness_policy;
  std::chrono::milliseconds witness_wait{10000};
  std::chrono::milliseconds witness_timeout{5000};
  uint64_t snapshot_every = 1000000;
  double snapshot_interval = 600;
  // How long Stop lets requests already taken finish.
  std::chrono::milliseconds drain_timeout{10000};

  // Called once everything listens, before the projection starts catching
  // up (so a "ready" line never precedes it); and when the projection has
  // caught up with the log (entries in it, how many replayed, seconds).
  std::function<void(const class Instance&)> on_serving;
  std::function<void(uint64_t, uint64_t, double)> on_ready;
};

class Instance {
 public:
  // Builds and starts every part; on failure stops what it had started and
  // says which part failed.
  static StatusOr<std::unique_ptr<Instance>> Start(InstanceOptions options);
  ~Instance();  // Stop()

  // Drains and stops (see the header comment). Idempotent.
  void Stop();
  // Re-reads the TLS certificate and key of the listener and the TCP
  // connector (SIGHUP).
  Status ReloadTls();

  bool tls() const;
  std::string host() const;  // as given to --listen
  uint16_t port() const;
  uint16_t tcp_port() const;  // 0 without --tcp-listen
  uint64_t entries() const;   // durable entries now
  std::string verifier_key() const;

 private:
  struct Parts;
  explicit Instance(InstanceOptions options);
  Status Build();

  InstanceOptions options_;
  std::unique_ptr<Parts> parts_;
  bool stopped_ = false;
};

struct RebuildReport {
  uint64_t entries = 0;  // in the log
  double seconds = 0;
  size_t objects = 0;  // in the state projection
};
// `annals rebuild`: every derived structure of a data directory (the dedup
// index, the event index, the state snapshot, the cold objects and the
// body images, one every snapshot_every entries) made anew from the log,
// with no server running. A progress bar on a terminal.
StatusOr<RebuildReport> RebuildDerived(const std::string& data_dir, uint64_t memory_budget,
                                       double cold_after_seconds = 3600, uint64_t snapshot_every = 1000000);

}  // namespace annals::server

#endif  // ANNALS_SERVER_INSTANCE_H_
