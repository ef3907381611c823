// Projector: keeps a StateStore and the event index caught up with the
// ledger. A thread polls the durable size and applies new entries in index
// order (within ~10 ms of their acknowledgement): object versions go to
// the in-memory store, loaded at start from its snapshot, and each audit
// event's row to the on-disk EventIndex, which keeps a durable watermark
// and so only catches up the tail of the log on start. When a catch-up
// returns, the index covers what the store does, except live rows that
// set_live_commit lets wait (WaitForApplied waits for both); within a long
// catch-up the rows go in batches of EventIndex::kCatchUpRows.
//
// A state snapshot (state_snapshot.h), written periodically, lets a start
// replay only the entries after it.
//
// A damaged event index (found on open, by a read, or by the background
// check of every block's checksum after the first catch-up) is wiped and
// rebuilt from the log while the projection keeps serving.
//
// Thread-safe. Owns its threads; does not own the ledger, store or index.
#ifndef ANNALS_STATE_PROJECTOR_H_
#define ANNALS_STATE_PROJECTOR_H_

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"
#include "index/event_index.h"
#include "ledger/ledger.h"
#include "state/body_images.h"
#include "state/state_store.h"

namespace annals::state {

class Projector {
 public:
  // The log's durable size now is the first target /readyz reports.
  Projector(ledger::Ledger* ledger, StateStore* store, index::EventIndex* events)
      : ledger_(ledger), store_(store), events_(events), target_(ledger->DurableSize()) {}
  ~Projector() { Stop(); }

  // Applies everything durable now, in the calling thread. Unavailable if
  // Cancel() or Stop() was called meanwhile (checked between chunks).
  Status CatchUp();
  // Starts the polling thread (and the background check of the index).
  void Start();
  // Stops the threads; a CatchUp in progress returns soon after.
  void Stop();
  // Makes a CatchUp in progress (in any thread) return Unavailable at its next
  // chunk, e.g. on SIGTERM during the start-up catch-up.
  void Cancel() {
    std::lock_guard lock(wait_mu_);
    stop_ = true;
    wait_cv_.notify_all();
  }
  // Blocks until entries [0, n) are applied or the timeout passes.
  bool WaitForApplied(uint64_t n, std::chrono::milliseconds timeout);
  // Called once, from the thread that finishes the first catch-up, with
  // the entries the log held, how many of them it had to replay (the rest
  // came from the snapshot and the event index) and how long it took since
  // the projector was made. Set before Start.
  void OnCaughtUp(std::function<void(uint64_t entries, uint64_t replayed, double seconds)> fn) {
    on_caught_up_ = std::move(fn);
  }
  // Once the first catch-up is done, a call's event rows wait for the next
  // calls' until there are `rows` of them or the oldest is `ms` old (the
  // polling thread calls every 10 ms), so that the index commits a few
  // large batches a second rather than one per group commit of the log.
  // The store, the change feed and /readyz do not wait for them;
  // questions of the event index see an entry up to `ms` later. 0 ms
  // (the default): every call commits what it read. Set before Start.
  void set_live_commit(uint64_t rows, int ms) {
    live_commit_rows_ = std::max<uint64_t>(rows, 1);
    live_commit_ms_ = ms;
  }
  // Prints the catch-up's progress (entries/s, ETA) to stderr every ~2 s.
  void set_report_progress(bool on) { report_ = on; }
  // Has the event index wiped and rebuilt from the log (by the thread).
  void RebuildEvents(const std::string& why);

  // State snapshots (state_snapshot.h) at path: loaded into the new store
  // by the first catch-up if intact and made from this log (else removed,
  // said on stderr, and the log replayed),
  // written by the thread once caught up when every_entries entries or
  // every_seconds (and at least one entry) have passed since the last, and
  // by SaveSnapshot. Set before Start.
  void set_snapshot(std::string path, uint64_t every_entries, double every_seconds) {
    snapshot_path_ = std::move(path);
    snapshot_every_ = every_entries;
    snapshot_seconds_ = every_seconds;
  }
  // Body images (body_images.h): taken by the catch-up (the start's and
  // the thread's) whenever every_entries entries were applied since the
  // last image: the list of bodies is made under the catch-up lock, the
  // image written by a thread of its own once started (so applying and the
  // change feed do not wait for it), else at once. Images queued when the
  // projector stops are not written. Set before Start; images must outlive
  // the projector.
  void set_images(BodyImages* images, uint64_t every_entries) {
    images_ = images;
    image_every_ = std::max<uint64_t>(every_entries, 1);
  }
  // Writes a snapshot of the store now if it has applied entries the last
  // one lacks (no-op without a path). Takes the catch-up lock.
  Status SaveSnapshot();

  // Progress of the catch-up: entries applied to both, and the durable size
  // when it last looked.
  struct Progress {
    uint64_t applied = 0, target = 0;
    double entries_per_second = 0;
    bool rebuilding_events = false;
    // Entries whose payload (a blob) was missing or damaged when projected:
    // applied from their metadata alone. The first one's index, -1 if none.
    uint64_t unreadable_payloads = 0;
    int64_t first_unreadable = -1;
  };
  Progress progress() const;
  // Both the store and the index cover the log as it was at the last look.
  bool caught_up() const { return caught_up_.load(std::memory_order_acquire); }

 private:
  void Run();
  void VerifyIndex();
  Status CatchUpLocked();

  ledger::Ledger* ledger_;
  StateStore* store_;
  index::EventIndex* events_;
  mutable std::mutex mu_;  // guards catch-up (one at a time), the cv and the rates below
  std::condition_variable cv_;
  std::mutex wait_mu_;  // the polling thread's pause between catch-ups (never held long)
  std::condition_variable wait_cv_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> caught_up_{false};
  std::atomic<bool> rebuild_events_{false};
  std::atomic<uint64_t> applied_{0};
  std::atomic<uint64_t> unreadable_{0};
  std::atomic<int64_t> first_unreadable_{-1};
  std::atomic<uint64_t> target_;
  std::atomic<double> rate_{0};
  std::function<void(uint64_t, uint64_t, double)> on_caught_up_;
  bool first_done_ = false;  // guarded by mu_
  uint64_t live_commit_rows_ = 1;
  int live_commit_ms_ = 0;
  // Rows [from, rows_to) made by the last calls, not yet committed;
  // guarded by mu_.
  struct Deferred {
    index::EventBatch batch;
    uint64_t from = 0, rows_to = 0;
    std::optional<std::chrono::steady_clock::time_point> since;
  } deferred_;
  std::atomic<uint64_t> rows_made_{0};  // rows made (committed or deferred) up to here
  uint64_t first_begin_ = UINT64_MAX;  // where the first catch-up began; guarded by mu_
  std::chrono::steady_clock::time_point born_ = std::chrono::steady_clock::now();
  bool report_ = true;
  std::thread thread_, verifier_;
  std::string snapshot_path_;
  uint64_t snapshot_every_ = 0;
  double snapshot_seconds_ = 0;
  uint64_t snapshot_applied_ = 0;  // guarded by mu_
  std::chrono::steady_clock::time_point snapshot_time_ = std::chrono::steady_clock::now();
  bool snapshot_tried_ = false;    // guarded by mu_
  BodyImages* images_ = nullptr;
  uint64_t image_every_ = 0;
  uint64_t image_taken_ = 0;  // applied when an image was last taken; guarded by mu_
  struct ImageJob {
    uint64_t applied = 0;
    Micros time = 0;
    std::vector<uint64_t> indexes;
  };
  std::mutex image_mu_;
  std::condition_variable image_cv_;
  std::deque<ImageJob> image_jobs_;  // guarded by image_mu_
  bool imager_running_ = false;      // guarded by image_mu_
  std::thread imager_;
  void WriteImage(const ImageJob& job);
  void RunImager();
  Status SaveSnapshotLocked();
  Status LoadSnapshotLocked();  // see set_snapshot
  void MaybeWriteImageLocked();
};

}  // namespace annals::state

#endif  // ANNALS_STATE_PROJECTOR_H_
