// Archiver: copies the log to S3-compatible object storage as it grows
// (docs/format/archive.md): every full entry bundle and hash tile, the
// partial ones at each archived checkpoint's edge, every sealed segment in
// its final form, and the checkpoint, so that the bucket is a complete C2SP
// tlog-tiles log that any client verifies with no annals server, and a
// copy of the segments that outlives the machine. Objects are written with
// S3 Object Lock, so that the store itself refuses to delete them before
// their retention ends.
//
// Never in ingest's way: it reads only what the ledger has made durable
// and published, on its own thread (and `parallel` upload threads while a
// batch is in flight); an unreachable store only grows the backlog, which
// /metrics and /readyz report. Progress is kept in <state_dir>/state,
// written after each step, so a restart resumes where it stopped; objects
// of a step that may have been sent before a crash are first looked up
// (HEAD) and skipped when the store holds the same bytes (ETag = MD5), so
// nothing is uploaded twice. An object in the store that differs from the
// local log stops the archiver (DataLoss, reported): something other than
// this log wrote there.
//
// Thread-safe. Does not own the ledger, which must outlive it.
#ifndef ANNALS_ARCHIVE_ARCHIVER_H_
#define ANNALS_ARCHIVE_ARCHIVER_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "archive/s3_client.h"
#include "archive/s3_sign.h"
#include "common/metrics.h"
#include "common/mutex.h"
#include "common/status.h"
#include "ledger/ledger.h"

namespace annals::archive {

struct ArchiverOptions {
  S3Config s3;
  S3Location location;
  LockMode lock_mode = LockMode::kCompliance;
  int64_t retain_seconds = 0;  // 0: objects are written without a lock
  // How often the archived checkpoint catches up with the published one.
  std::chrono::milliseconds interval{30000};
  int parallel = 4;  // concurrent uploads (connections)
  // A request to the store that takes longer is ended (its connection shut
  // down) and the step retried: a store that accepts connections and never
  // answers does not stall the archive, or the server's shutdown.
  std::chrono::milliseconds request_timeout{120000};
  // /readyz answers 503 while more entries than this wait to be archived.
  uint64_t max_backlog_entries = 10'000'000;
  std::string state_dir;  // <data>/archive
  // Local retention: a sealed segment confirmed in the archive loses its
  // local copy once its file is older than local_retain_seconds (>= 0), or
  // while the sealed segments on disk take more than local_retain_bytes
  // (> 0). Reads fetch it back (SegmentFetcher). Neither: all kept.
  int64_t local_retain_seconds = -1;
  uint64_t local_retain_bytes = 0;
};

// What the ledger's segment log reads an archived-only segment with: GET
// <prefix>/annals/segments/<name> over one connection at a time.
// Thread-safe.
StatusOr<std::function<StatusOr<std::string>(const std::string& name)>> SegmentFetcher(const S3Config& config,
                                                                                      const S3Location& location);

struct ArchiveProgress {
  std::string target;
  uint64_t archived_size = 0;   // the size of the checkpoint in the bucket
  uint64_t full_through = 0;    // entries whose full bundles and tiles are in the bucket
  uint64_t next_segment = 0;    // first entry of the next segment to upload
  uint64_t backlog_entries = 0; // published but not yet archived
  uint64_t objects = 0, bytes = 0, skipped = 0, errors = 0;
  uint64_t dropped_segments = 0;  // local copies dropped by retention
  std::string last_error;  // of the last failed step, "" once a round succeeds
  bool stopped_on_mismatch = false;
};

class Archiver {
 public:
  // Checks the options, loads the state (a state for another target starts
  // over), and starts the thread.
  static StatusOr<std::unique_ptr<Archiver>> Start(ArchiverOptions options, ledger::Ledger* ledger,
                                                   Metrics* metrics);
  ~Archiver();
  // Stops the thread; an upload in flight finishes or fails first.
  void Stop();
  ArchiveProgress progress() const;
  // "" or why /readyz should answer 503: the backlog is beyond its bound,
  // or the archiver stopped on an object that differs.
  std::string Unready() const;
  // Wakes the thread for a round now (tests; SIGHUP-like nudges).
  void Nudge();

 private:
  struct Upload {
    std::string key;
    const char* kind;  // the metric label: bundle, tile, checkpoint, segment
    std::function<StatusOr<std::string>()> bytes;
  };
  Archiver(ArchiverOptions options, ledger::Ledger* ledger, Metrics* metrics);
  void Loop();
  // Ends requests older than request_timeout; on Stop, all of them.
  void Watchdog();
  // Brings the bucket up to the published checkpoint, then the segments.
  Status Round();
  Status UploadAll(const std::vector<Upload>& uploads);
  // Local retention: drops what is past it and confirmed in the archive.
  Status Retain(uint64_t archived_through);
  Status UploadOne(S3Client* client, const Upload& upload);
  Status SaveState() EXCLUDES(mu_);
  // Notes the blobs (payloads over 64 KiB, docs/format/entry.md) that the
  // entries of an entry bundle refer to, and uploads them (annals/blobs/
  // <sha256 hex>, once: content-addressed, looked up first).
  void NoteBlobs(std::string_view bundle) EXCLUDES(blobs_mu_);
  Status UploadBlobs() EXCLUDES(blobs_mu_);
  Upload TileUpload(bool entries, uint64_t level, uint64_t index, uint64_t width);
  void Publish() EXCLUDES(mu_);  // gauges

  const ArchiverOptions options_;
  ledger::Ledger* ledger_;
  Metrics* metrics_;
  std::vector<std::unique_ptr<S3Client>> clients_;  // one per upload thread
  // After a start or a failed step, objects are looked up before upload.
  std::atomic<bool> check_existing_{true};
  std::atomic<bool> stop_{false};
  std::atomic<bool> loop_done_{false};  // Loop() has returned

  mutable Mutex mu_;
  CondVar cv_;
  bool nudged_ GUARDED_BY(mu_) = false;
  ArchiveState state_ GUARDED_BY(mu_);
  ArchiveProgress progress_ GUARDED_BY(mu_);
  std::thread thread_, watchdog_;
  Mutex blobs_mu_;
  std::vector<Hash> blobs_ GUARDED_BY(blobs_mu_);
};

}  // namespace annals::archive

#endif  // ANNALS_ARCHIVE_ARCHIVER_H_
