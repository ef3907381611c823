// Ledger: the facade over one data directory. Sequences appends into the
// segment log with group commit, integrates them into the Merkle tree and
// tiles, and signs and persists checkpoints.
//
// Life of an append: AppendAsync() queues entries -> the writer thread
// takes everything queued, writes it with pwrite() and one fdatasync(),
// then hands each caller's callback its first index (acknowledgement, run
// on the completer thread) and the entries to the integrator thread, which
// hashes them into the tree and tiles (the writer waits while more than
// max_queued_bytes are waiting to be hashed) -> once the tree has grown and
// checkpoint_interval has passed since the previous checkpoint, the
// publisher thread syncs the tiles, signs a checkpoint over the integrated
// tree, persists it (fdatasync), then serves it.
//
// Storage faults (docs/faults.md): a failed fdatasync anywhere, or any
// other failed write, fails the appends it concerns and makes the ledger
// refuse every later append (Unavailable) until it is reopened; nothing is
// acknowledged that was not made durable. A segment write that fails for
// want of space fails its batch with ResourceExhausted and leaves the
// ledger writable: appends succeed again once there is space.
//
// Open() takes an exclusive flock on <data_dir>/LOCK, recovers the
// checkpoints, segments and tiles, and on first start publishes a size-0
// checkpoint. Thread-safe. Owns its threads (writer, completer,
// integrator, publisher, and with scrub_bytes_per_second the scrubber); the
// destructor stops the scrub, refuses new appends, drains the queue and
// publishes a final checkpoint.
#ifndef ANNALS_LEDGER_LEDGER_H_
#define ANNALS_LEDGER_LEDGER_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "checkpoint/note.h"
#include "common/mutex.h"
#include "common/side_call.h"
#include "common/sha256.h"
#include "common/status.h"
#include "env/env.h"
#include "ledger/entry.h"
#include "ledger/blob_store.h"
#include "ledger/checkpoint_log.h"
#include "ledger/tile_store.h"
#include "log/segment_log.h"

namespace annals::ledger {

struct LedgerOptions {
  std::string data_dir;
  // Where the log, tiles, blobs and checkpoints are stored (the LOCK and key
  // files are always local). Not owned; must outlive the ledger.
  env::Env* env = env::Env::Default();
  // Signing key in note form; if empty, <data_dir>/key is used, and created
  // (0600) with origin `origin` when missing.
  std::string private_key;
  std::string origin = "annals.local/log";
  std::chrono::milliseconds checkpoint_interval{500};
  // Backpressure: appends beyond this many queued bytes are refused.
  size_t max_queued_bytes = 256u << 20;
  uint64_t max_segment_entries = 1 << 16;
  // log::SegmentLogOptions::cache_window_bytes (0: the page cache keeps
  // everything written). `annals serve` uses 32 MiB.
  uint64_t segment_cache_window_bytes = 0;
  // zstd level at which a background thread, at idle priority, compresses
  // each sealed segment (docs/format/segment.md); 0: segments stay plain
  // (compressed ones stay readable). `annals serve` uses 3.
  int segment_compression_level = 0;
  // Segments the compressor takes per second at most, in bytes before
  // compression (0: no bound).
  uint64_t compression_bytes_per_second = uint64_t{64} << 20;
  // The background scrub (Scrub): bytes of entries read per second; 0: no
  // scrub thread (Scrub may still be called).
  uint64_t scrub_bytes_per_second = 0;
  // The background scrub's first pass waits for StartScrub() (at most
  // ten minutes): a server starts it once its indexes have caught up
  // from the log, which needs the start's CPU more.
  bool scrub_waits_for_start = false;
  // A log that holds entries but no signed checkpoint (checkpoints.log lost
  // or emptied) is refused: signing it again could sign a smaller tree than
  // one already published. True is the operator's decision to sign what is
  // there; it is recorded in <data_dir>/log/accepted-losses.
  bool accept_lost_checkpoints = false;
  // How a segment whose local copy was dropped (DropLocalSegment) is read
  // back from the archive (log::SegmentLogOptions::fetch_archived).
  std::function<StatusOr<std::string>(const std::string& name)> fetch_archived_segment;
};

// What a scrub of the log found (Ledger::Scrub).
struct ScrubReport {
  uint64_t passes = 0;         // whole passes finished
  uint64_t entries = 0;        // entries checked in the current or last pass
  uint64_t tiles = 0;          // full tiles checked, all levels
  uint64_t tiles_repaired = 0;  // full tiles rewritten from the entries, ever
  // The first damaged entry found (a bad record, or bytes that do not hash
  // to the signed tree), -1 if none; and what is wrong.
  int64_t bad_entry = -1;
  std::string damage;
};

struct Recovery {
  log::RecoveryReport log;
  std::string checkpoint_log_cut;
  uint64_t reintegrated = 0;  // leaves re-hashed from segments on start
  bool tiles_rebuilt = false;
  // Entries found with no signed checkpoint, signed anyway because the
  // operator accepted it (LedgerOptions::accept_lost_checkpoints); 0 if not.
  uint64_t lost_checkpoints_accepted = 0;
};

// What the publisher asks before it serves a signed checkpoint: gathers
// witnesses' cosignatures on it (client/cosigning.h).
class CheckpointWitnessing {
 public:
  virtual ~CheckpointWitnessing() = default;
  // note: the newest signed checkpoint, of `size` entries, already durable;
  // asked again each checkpoint interval while it is not served. Returns
  // the note to serve (note with cosignature lines appended, or note
  // itself), or "" to keep serving the one before.
  virtual std::string Cosign(const std::string& note, uint64_t size) = 0;
};

class Ledger {
 public:
  using AppendCallback = std::function<void(StatusOr<uint64_t> first_index)>;

  static StatusOr<std::unique_ptr<Ledger>> Open(const LedgerOptions& options);
  ~Ledger();

  // Queues entries (each 1..65535 bytes, see entry_format.h) to be appended
  // in order and contiguously. `done` runs on the completer thread, in index
  // order, once they are durable (or failed: ResourceExhausted when the
  // disk was full, else Unavailable); a slow one delays the
  // acknowledgements after it, not the next group commit. ResourceExhausted
  // if max_queued_bytes are already waiting, Unavailable after a write
  // failure that cannot be retried (until reopened) or once the ledger is
  // stopping.
  Status AppendAsync(std::vector<std::string> entries, AppendCallback done);
  // Blocking form: waits for queue space instead of failing with
  // ResourceExhausted; returns the first index.
  StatusOr<uint64_t> Append(std::vector<std::string> entries);
  // `fn` runs, on a thread of its own, while the writer writes and syncs
  // each batch of appended entries; the batch is acknowledged only once
  // both are done, and fails (like a failed fdatasync) if fn fails. What
  // must be durable whenever the entries are acknowledged (the sealed
  // values of redaction, written before their entries' AppendAsync) is
  // synced here, once per group commit, beside the log's own fdatasync.
  // Set before the first append.
  void SetSyncBeside(std::function<Status()> fn);
  // Stores a large payload before the entry that references it is appended.
  Status PutBlob(const Hash& digest, std::string_view payload) { return blobs_.Put(digest, payload); }
  StatusOr<std::string> GetBlob(const Hash& digest) const { return blobs_.Get(digest); }
  // The payload of a decoded entry: its own bytes, or for an external one
  // the blob with its digest, read into *blob. The view lives as long as
  // the entry's bytes and *blob do.
  StatusOr<std::string_view> PayloadOf(const DecodedEntry& entry, std::string* blob) const;
  // Entry `index` read, decoded and its payload resolved, owned.
  struct Event {
    std::string meta, payload;
    bool external = false;  // the payload came from the blob store
    Hash payload_digest{};  // when external
  };
  StatusOr<Event> ReadEvent(uint64_t index) const;

  uint64_t DurableSize() const { return log_->size(); }
  // OK, or the storage failure after which the ledger refuses appends until
  // it is reopened (docs/faults.md). /healthz reports it, so that a
  // supervisor restarts the process.
  Status WriteError() const;
  // Empty, or why the last write of the log, its tiles or a checkpoint
  // failed for want of space (ENOSPC, EDQUOT). Not sticky: appends retry
  // in place and the tiles and checkpoint are written by the next publish
  // once there is room, which clears it.
  std::string OutOfSpace() const;
  // Blocks until DurableSize() > size, the ledger stops, or timeout passes;
  // returns DurableSize(). For readers that follow the log (subscriptions).
  uint64_t WaitForDurable(uint64_t size, std::chrono::milliseconds timeout);
  uint64_t IntegratedSize() const { return tiles_.size(); }
  // The newest published checkpoint: the newest signed one, or with
  // witnessing (SetWitnessing) the newest one witnessing let through, its
  // cosignatures appended.
  std::string Checkpoint() const;
  uint64_t CheckpointSize() const;
  // The newest signed checkpoint's size (>= CheckpointSize()).
  uint64_t SignedSize() const;
  // When the served checkpoint was published, in Unix seconds (at Open:
  // when the ledger opened).
  double CheckpointTime() const;
  // From now on each signed checkpoint is served only as w->Cosign returns
  // it (docs/witness.md). w must outlive the ledger or be unset (nullptr)
  // first; Cosign runs on the publisher thread.
  void SetWitnessing(CheckpointWitnessing* w);
  // Signs and publishes a checkpoint over everything integrated now;
  // returns once it is durable and served.
  Status PublishNow();
  // Blocks until the published checkpoint covers `size` or timeout.
  bool WaitForCheckpoint(uint64_t size, std::chrono::milliseconds timeout);

  StatusOr<std::string> ReadEntry(uint64_t index) const { return log_->Read(index); }
  // Calls fn(index, entry) for durable entries [begin, end), in order.
  Status ReadEntries(uint64_t begin, uint64_t end,
                     const std::function<Status(uint64_t, std::string_view)>& fn) const {
    return log_->ReadRange(begin, end, fn);
  }
  // Hash tile or entry bundle by C2SP path relative to the log root
  // ("tile/0/x001/234.p/7"); sets *immutable for full tiles.
  StatusOr<std::string> ReadTilePath(std::string_view path, bool* immutable) const;
  StatusOr<std::vector<Hash>> InclusionProof(uint64_t index, uint64_t tree_size) const;
  // The Merkle leaf hash of entry index, from the level-0 tiles (no entry
  // read: a receipt for a thousand entries of compressed segments would
  // otherwise expand a frame for each).
  StatusOr<Hash> LeafHash(uint64_t index) const;
  StatusOr<std::vector<Hash>> ConsistencyProof(uint64_t first, uint64_t second) const;
  StatusOr<Hash> RootAt(uint64_t tree_size) const;

  // Checks the whole log under the published checkpoint against itself and
  // that checkpoint: every record's CRC (sealed segments are not read at
  // open), every full tile's hashes against the entries (level 0) or the
  // tiles below. A tile that differs is rewritten when the entries, put in
  // its place, give the checkpoint's signed root (the tile was damaged); an
  // entry that does not is damage reported in *report (never "repaired").
  // Reads at most bytes_per_second (0: unbounded); Unavailable once *stop.
  Status Scrub(uint64_t bytes_per_second, const std::atomic<bool>* stop, ScrubReport* report);
  // The background scrub's findings so far.
  ScrubReport scrub_report() const;
  // Lets the background scrub begin (LedgerOptions::scrub_waits_for_start).
  void StartScrub();
  // The segments' bytes on disk, plain and compressed.
  log::SegmentLog::Footprint SegmentFootprint() const { return log_->footprint(); }
  // The sealed segments and their files, checked (for the archiver).
  std::vector<log::SegmentLog::SealedSegment> SealedSegments() const { return log_->Sealed(); }
  StatusOr<std::string> ReadSealedSegment(uint64_t first_index, bool* compressed) const {
    return log_->ReadSealed(first_index, compressed);
  }
  int segment_compression_level() const { return options_.segment_compression_level; }
  // Local retention (docs/operations.md "Archive"): drops the local copy of
  // a compressed sealed segment the caller confirmed is in the archive.
  Status DropLocalSegment(uint64_t first_index) { return log_->DropLocal(first_index); }
  uint64_t LocalBegin() const { return log_->LocalBegin(); }

  const note::Signer& signer() const { return *signer_; }
  const Recovery& recovery() const { return recovery_; }
  const std::string& data_dir() const { return options_.data_dir; }

 private:
  struct Request {
    std::vector<std::string> entries;
    AppendCallback done;
    size_t bytes = 0;
  };
  explicit Ledger(LedgerOptions options);
  Status Recover();
  Status RecordAcceptedLoss(const std::string& log_dir, uint64_t entries);
  // The blob an entry names; DataLoss if it is missing or damaged.
  StatusOr<std::string> EntryBlob(const Hash& digest) const;
  // Sets *which (append_no_space_ or publish_no_space_) to s's message, or
  // clears it for OK; logs the transitions of OutOfSpace().
  void NoteNoSpace(std::string* which, const Status& s) EXCLUDES(mu_);
  void WriterLoop();
  void CompleterLoop();
  void IntegratorLoop();
  void PublisherLoop();
  Status SignAndPersist();
  // Makes s the sticky write error (if none is set yet).
  void Fail(const Status& s);
  void ScrubLoop();
  // Compresses sealed segments as they appear, at idle CPU priority.
  void CompressLoop();
  // The published checkpoint's size and root.
  Status PublishedTree(uint64_t* size, Hash* root) const;
  // Whether the publisher has something to do: a grown tree to sign, or a
  // signed checkpoint not yet served.
  bool PublishPending() const REQUIRES(pub_mu_);

  const LedgerOptions options_;
  std::unique_ptr<note::Signer> signer_;
  std::unique_ptr<log::SegmentLog> log_;
  std::unique_ptr<CheckpointLog> checkpoints_;
  BlobStore blobs_;
  TileStore tiles_;
  Recovery recovery_;

  std::unique_ptr<SideCall> sync_beside_;  // SetSyncBeside
  mutable Mutex mu_;
  CondVar writer_cv_, integrator_cv_, space_cv_;
  CondVar durable_cv_;  // notified after each successful Sync
  std::deque<Request> queue_ GUARDED_BY(mu_);
  size_t queued_bytes_ GUARDED_BY(mu_) = 0;
  std::deque<std::vector<std::string>> to_integrate_ GUARDED_BY(mu_);
  size_t integrate_bytes_ GUARDED_BY(mu_) = 0;  // bytes in to_integrate_; bounded like the queue
  // Acknowledgements run on their own thread so that callers' work (index
  // writes, HTTP answers) never delays the next group commit.
  CondVar completer_cv_;
  std::deque<std::pair<AppendCallback, StatusOr<uint64_t>>> completions_ GUARDED_BY(mu_);
  bool stopping_ GUARDED_BY(mu_) = false;
  bool writer_done_ GUARDED_BY(mu_) = false;
  Status failed_ GUARDED_BY(mu_);  // sticky: every later append is refused
  // OutOfSpace(): the appends' and the publisher's (tiles, checkpoint).
  std::string append_no_space_ GUARDED_BY(mu_);
  std::string publish_no_space_ GUARDED_BY(mu_);

  mutable Mutex pub_mu_;
  CondVar pub_cv_;
  std::string published_ GUARDED_BY(pub_mu_);  // served
  uint64_t published_size_ GUARDED_BY(pub_mu_) = 0;
  double published_at_ GUARDED_BY(pub_mu_) = 0;  // Unix seconds
  std::string signed_ GUARDED_BY(pub_mu_);  // newest signed and persisted
  uint64_t signed_size_ GUARDED_BY(pub_mu_) = 0;
  CheckpointWitnessing* witnessing_ GUARDED_BY(pub_mu_) = nullptr;
  bool unwitnessed_ GUARDED_BY(pub_mu_) = false;  // signed_ not yet passed through witnessing_
  bool integrator_done_ GUARDED_BY(pub_mu_) = false;
  uint64_t publish_requests_ GUARDED_BY(pub_mu_) = 0;
  uint64_t publish_served_ GUARDED_BY(pub_mu_) = 0;
  Status publish_status_ GUARDED_BY(pub_mu_);
  Mutex sign_mu_;  // serializes SignAndPersist

  mutable Mutex scrub_mu_;
  CondVar scrub_cv_;
  ScrubReport scrub_ GUARDED_BY(scrub_mu_);
  bool scrub_started_ GUARDED_BY(scrub_mu_) = false;
  // Stops the scrub and the compressor (both wait on scrub_cv_).
  std::atomic<bool> scrub_stop_{false};

  std::thread writer_, completer_, integrator_, publisher_, scrubber_, compressor_;
  int lock_fd_ = -1;  // flock on <data_dir>/LOCK: one process per data directory
};

// Reads or creates the key file for a data directory.
StatusOr<std::string> LoadOrCreateKey(const std::string& path, const std::string& origin);

}  // namespace annals::ledger

#endif  // ANNALS_LEDGER_LEDGER_H_
