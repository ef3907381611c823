#include "state/projector.h"
#include "common/log.h"
#include "common/thread_util.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <future>
#include <memory>

#include "common/file_util.h"
#include "common/sha256.h"
#include "ledger/entry.h"
#include "state/state_snapshot.h"

namespace annals::state {

namespace {
constexpr uint64_t kChunk = 4096;
}

Status Projector::CatchUp() {
  std::lock_guard lock(mu_);
  return CatchUpLocked();
}

Status Projector::CatchUpLocked() {
  // How far there is to go, said (in /readyz) before the snapshot loads.
  target_.store(std::max(target_.load(), ledger_->DurableSize()));
  if (!snapshot_tried_) {
    // Whichever thread catches up first (the projector's or the change
    // feed's), off the start path: the listener already serves.
    snapshot_tried_ = true;
    Status s = LoadSnapshotLocked();
    if (!s.ok()) log::Warning("state snapshot: %s", s.message().c_str());
    // A replay from the start: the cold objects of an earlier projection
    // are no one's.
    if (store_->applied() == 0) RETURN_IF_ERROR(store_->Reset());
  }
  if (store_->damaged()) {
    // A cold object could not be read back: the projection is rebuilt from
    // the log (its snapshot names what is gone, so it goes too).
    caught_up_ = false;
    log::Warning("state projection damaged (%s); rebuilding it from the log", store_->damage().c_str());
    if (!snapshot_path_.empty() && std::remove(snapshot_path_.c_str()) != 0 && errno != ENOENT)
      return InternalError("remove " + snapshot_path_ + ": " + std::strerror(errno));
    snapshot_applied_ = 0;
    RETURN_IF_ERROR(store_->Reset());
  }
  if (rebuild_events_.exchange(false)) {
    deferred_ = {};
    RETURN_IF_ERROR(events_->Reset());
    log::Warning("event index wiped; rebuilding it from the log");
  }
  const uint64_t end = ledger_->DurableSize();
  target_.store(end);
  if (events_->watermark() > end) {
    // Only what the log made durable is ever projected: an index ahead of
    // the log was not made from this log.
    log::Warning("event index covers %llu entries, the log %llu: rebuilding it",
                 static_cast<unsigned long long>(events_->watermark()), static_cast<unsigned long long>(end));
    deferred_ = {};
    RETURN_IF_ERROR(events_->Reset());
  }
  // The event rows of [watermark, rows_to), not yet committed. A catch-up
  // commits them in batches of EventIndex::kCatchUpRows; live, the rows of
  // the last calls wait (deferred_) until there are live_commit_rows_ of
  // them or the oldest is live_commit_ms_ old.
  index::EventBatch batch;
  uint64_t rows_to = events_->watermark();
  // Rows handed to a commit, done or in flight.
  uint64_t handed_to = rows_to;
  if (deferred_.rows_to > rows_to && deferred_.from == rows_to) {
    batch = std::move(deferred_.batch);
    rows_to = deferred_.rows_to;
  }
  const auto deferred_since = deferred_.since;
  deferred_ = {};
  uint64_t begin = std::min(store_->applied(), rows_to);
  if (first_begin_ == UINT64_MAX) first_begin_ = begin;
  // A batch of rows is committed on a thread of its own while the next
  // chunks are applied (one in flight): the two halves of a catch-up take
  // about as long each, and there are two cores.
  std::future<Status> in_flight;
  auto settle = [&]() -> Status { return in_flight.valid() ? in_flight.get() : OkStatus(); };
  auto commit = [&]() -> Status {
    if (rows_to > handed_to) {
      RETURN_IF_ERROR(settle());
      in_flight = std::async(std::launch::async,
                             [this, rows = std::make_shared<index::EventBatch>(std::move(batch)), to = rows_to] {
                               SetThreadName("annals-idxwrite");
                               Status c = events_->Commit(*rows, to);
                               // A write that finds the index damaged (a compaction
                               // reading a bad block) is the index's fault, not the
                               // log's: rebuild it.
                               if (c.code() == StatusCode::kDataLoss) RebuildEvents(c.message());
                               return c;
                             });
      handed_to = rows_to;
    }
    batch.clear();
    return OkStatus();
  };
  // Live rows (after the first catch-up) wait for more: each commit writes
  // a fixed share of keys besides the rows (counts, names, hours, the
  // watermark) that land all over the memtable, each a full skip-list
  // search; at one commit per group commit of the log they were most of
  // the index's CPU (docs/performance.md).
  auto defer = [&]() {
    if (live_commit_ms_ <= 0 || !first_done_ || stop_ || rows_to - handed_to >= live_commit_rows_) return false;
    const auto since = deferred_since.value_or(std::chrono::steady_clock::now());
    return std::chrono::steady_clock::now() - since < std::chrono::milliseconds(live_commit_ms_);
  };
  auto t0 = std::chrono::steady_clock::now();
  auto last_report = t0;
  const uint64_t first = begin;
  while (begin < end) {
    // Stopped: rows not committed are dropped (the watermark did not move
    // past them); the next catch-up makes them again from the log.
    if (stop_) {
      (void)settle();
      return UnavailableError("projection stopped at entry " + std::to_string(begin));
    }
    const uint64_t stop = std::min(end, begin + kChunk);
    const uint64_t store_from = store_->applied(), rows_from = rows_to;
    Status read = ledger_->ReadEntries(begin, stop, [&](uint64_t i, std::string_view e) -> Status {
      auto d = ledger::DecodeEntry(e);
      if (!d.ok()) return d.status();
      std::string blob;
      auto read_payload = ledger_->PayloadOf(*d, &blob);
      std::string_view payload;
      if (read_payload.ok()) {
        payload = *read_payload;
      } else if (read_payload.status().code() == StatusCode::kDataLoss ||
                 read_payload.status().code() == StatusCode::kNotFound) {
        // One damaged or missing blob does not stop the projection: the
        // entry counts from its metadata (who, what, when), its object body
        // is unknown, and the damage is reported (docs/faults.md "Blobs").
        unreadable_.fetch_add(1);
        if (first_unreadable_.load() < 0) first_unreadable_.store(static_cast<int64_t>(i));
        log::Error("entry %llu: payload unreadable (%s); projected from its metadata alone; "
                   "`annals verify --data` names it, docs/faults.md says how to repair it",
                   static_cast<unsigned long long>(i), read_payload.status().message().c_str());
        payload = "{}";
      } else {
        return read_payload.status();
      }
      index::EventBatch* rows = i >= rows_from ? &batch : nullptr;
      if (i >= store_from) return store_->Apply(i, d->meta, payload, rows);
      if (rows) return StateStore::EventRows(i, d->meta, payload, rows);
      return OkStatus();
    });
    if (!read.ok()) {
      (void)settle();
      return read;
    }
    if (stop > rows_from) rows_to = stop;
    // At the end of the call the index covers everything the store does,
    // unless the rows wait for more (after the loop).
    if (batch.rows() >= index::EventIndex::kCatchUpRows) RETURN_IF_ERROR(commit());
    if (stop == end && !defer()) RETURN_IF_ERROR(commit());
    if (stop == end) RETURN_IF_ERROR(settle());
    if (stop > store_from) store_->SetApplied(stop);
    // Bodies of objects gone cold, written now (nothing durable names
    // them until a snapshot does); the cache trimmed.
    RETURN_IF_ERROR(store_->CommitCold());
    MaybeWriteImageLocked();
    begin = stop;
    applied_.store(begin);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (secs > 0.5) rate_.store(static_cast<double>(begin - first) / secs);
    if (report_ && std::chrono::steady_clock::now() - last_report > std::chrono::seconds(2)) {
      last_report = std::chrono::steady_clock::now();
      const double rate = rate_.load();
      log::Info("projecting: %llu of %llu entries, %.0f entries/s, %.0f s left",
                   static_cast<unsigned long long>(begin), static_cast<unsigned long long>(end), rate,
                   rate > 0 ? static_cast<double>(end - begin) / rate : 0.0);
    }
  }
  // Rows read by an earlier call, none since: committed once due.
  if (rows_to > handed_to && !defer()) RETURN_IF_ERROR(commit());
  RETURN_IF_ERROR(settle());  // a catch-up returns with the index where the store is, or its rows deferred
  if (rows_to > handed_to) {
    deferred_.batch = std::move(batch);
    deferred_.from = handed_to;
    deferred_.rows_to = rows_to;
    deferred_.since = deferred_since.value_or(std::chrono::steady_clock::now());
  }
  rows_made_.store(rows_to);
  RETURN_IF_ERROR(store_->CommitCold());  // trims what readers brought back
  applied_.store(std::min(store_->applied(), events_->watermark()));
  caught_up_.store(std::min(store_->applied(), rows_to) >= end && !rebuild_events_.load(), std::memory_order_release);
  if (!first_done_ && caught_up_.load()) {
    first_done_ = true;
    if (on_caught_up_)
      on_caught_up_(end, end - std::min(end, first_begin_),
                    std::chrono::duration<double>(std::chrono::steady_clock::now() - born_).count());
  }
  cv_.notify_all();
  // After the start is ready: a start whose snapshot left little to replay
  // writes the image the chunks did not.
  if (caught_up_.load()) MaybeWriteImageLocked();
  return OkStatus();
}

void Projector::MaybeWriteImageLocked() {
  if (!images_) return;
  const uint64_t applied = store_->applied();
  if (applied < std::max(images_->last_applied(), image_taken_) + image_every_) return;
  image_taken_ = applied;  // a failed write is tried again after another image_every_ entries
  // Nothing applies meanwhile (the catch-up lock is held): the indexes are
  // the objects' last versions after exactly `applied` entries.
  ImageJob job{applied, store_->max_time(), store_->LiveVersionIndexes()};
  {
    std::lock_guard lock(image_mu_);
    if (imager_running_) {
      image_jobs_.push_back(std::move(job));
      image_cv_.notify_all();
      return;
    }
  }
  WriteImage(job);
}

void Projector::WriteImage(const ImageJob& job) {
  const auto t0 = std::chrono::steady_clock::now();
  Status s = images_->Write(job.applied, job.time, job.indexes, &stop_);
  if (!s.ok()) {
    if (!stop_) log::Warning("body image after %llu entries: %s", static_cast<unsigned long long>(job.applied), s.message().c_str());
    return;
  }
  log::Info("body image written: %zu objects after %llu entries in %.2fs", job.indexes.size(),
            static_cast<unsigned long long>(job.applied),
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
}

void Projector::RunImager() {
  while (true) {
    ImageJob job;
    {
      std::unique_lock lock(image_mu_);
      image_cv_.wait(lock, [this] { return stop_.load() || !image_jobs_.empty(); });
      if (stop_) {
        image_jobs_.clear();
        imager_running_ = false;
        return;
      }
      job = std::move(image_jobs_.front());
      image_jobs_.pop_front();
    }
    WriteImage(job);
  }
}

void Projector::Start() {
  stop_ = false;
  if (images_) {
    {
      std::lock_guard lock(image_mu_);
      imager_running_ = true;
    }
    imager_ = std::thread([this] {
      SetThreadName("annals-imager");
      RunImager();
    });
  }
  thread_ = std::thread([this] {
    SetThreadName("annals-project");
    Run();
  });
  verifier_ = std::thread([this] {
    SetThreadName("annals-idxcheck");
    VerifyIndex();
  });
}

void Projector::Stop() {
  Cancel();
  {
    std::lock_guard lock(image_mu_);
    image_cv_.notify_all();
  }
  if (imager_.joinable()) imager_.join();
  {
    std::lock_guard lock(image_mu_);
    imager_running_ = false;  // images taken from now on are written at once
  }
  if (thread_.joinable()) thread_.join();
  if (verifier_.joinable()) verifier_.join();
  // Rows deferred by the last live call: committed, so the next start does
  // not make them again from the log (it would, byte for byte, if this
  // fails or the process dies first).
  std::lock_guard lock(mu_);
  if (deferred_.rows_to > deferred_.from && events_->watermark() == deferred_.from) {
    Status s = events_->Commit(deferred_.batch, deferred_.rows_to);
    if (!s.ok()) log::Warning("event index: the last rows were not committed (%s); the next start makes them again", s.message().c_str());
    else applied_.store(std::min(store_->applied(), events_->watermark()));
  }
  deferred_ = {};
}

void Projector::RebuildEvents(const std::string& why) {
  caught_up_ = false;
  if (rebuild_events_.exchange(true)) return;  // already asked for
  log::Warning("event index damaged (%s); rebuilding it from the log", why.c_str());
}

void Projector::VerifyIndex() {
  // Once, off the start path: a flipped byte in a block nobody has read yet
  // is found here rather than by the question that first reads it.
  Status s = events_->VerifyChecksums(&stop_);
  if (s.code() == StatusCode::kDataLoss) RebuildEvents(s.message());
  else if (!s.ok() && !stop_)
    log::Warning("event index check: %s", s.message().c_str());
  // The cold objects likewise: a damaged body marks the store damaged, and
  // the next catch-up replays the projection from the log.
  Status c = store_->VerifyCold(&stop_);
  if (!c.ok() && c.code() != StatusCode::kDataLoss && !stop_)
    log::Warning("cold objects check: %s", c.message().c_str());
}

Status Projector::LoadSnapshotLocked() {
  if (snapshot_path_.empty() || store_->applied() != 0) return OkStatus();
  const auto t0 = std::chrono::steady_clock::now();
  auto h = ReadSnapshotFile(snapshot_path_, store_, [&](const SnapshotHeader& h) -> Status {
    const uint64_t size = ledger_->DurableSize();
    if (h.applied > size)
      return FailedPreconditionError("it covers " + std::to_string(h.applied) + " entries, the log holds " +
                                     std::to_string(size));
    if (h.applied == 0) return OkStatus();
    ASSIGN_OR_RETURN(Hash got, EntryDigest(*ledger_, h.applied - 1));
    if (got != h.last_entry)
      return FailedPreconditionError("entry " + std::to_string(h.applied - 1) + " of the log is not the one it was made after");
    return OkStatus();
  });
  if (h.ok()) {
    snapshot_applied_ = h->applied;
    log::Info("state snapshot loaded: %llu entries in %.2fs",
                 static_cast<unsigned long long>(h->applied),
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    return OkStatus();
  }
  if (h.status().code() == StatusCode::kNotFound) return OkStatus();
  if (h.status().code() == StatusCode::kInternal) return h.status();
  log::Warning("state snapshot not used (%s); projecting from the log", h.status().message().c_str());
  if (std::remove(snapshot_path_.c_str()) != 0)
    return InternalError("remove " + snapshot_path_ + ": " + std::strerror(errno));
  return OkStatus();
}

Status Projector::SaveSnapshot() {
  std::lock_guard lock(mu_);
  return SaveSnapshotLocked();
}

Status Projector::SaveSnapshotLocked() {
  if (snapshot_path_.empty()) return OkStatus();
  const uint64_t applied = store_->applied();
  if (applied <= snapshot_applied_) return OkStatus();
  const auto t0 = std::chrono::steady_clock::now();
  ASSIGN_OR_RETURN(const Hash last, EntryDigest(*ledger_, applied - 1));
  RETURN_IF_ERROR(MakeDirs(DirName(snapshot_path_)));
  // Every cold body the snapshot names is durable before it is; bodies it
  // no longer names go once it is.
  std::vector<std::pair<uint32_t, uint64_t>> garbage;
  RETURN_IF_ERROR(store_->SyncCold(&garbage));
  Status w = WriteSnapshotFile(snapshot_path_, *store_, applied, last);
  if (!w.ok()) {
    store_->KeepCold(garbage);
    return w;
  }
  store_->DeleteCold(garbage);
  snapshot_applied_ = applied;
  snapshot_time_ = std::chrono::steady_clock::now();
  log::Info("state snapshot written: %llu entries in %.2fs", static_cast<unsigned long long>(applied),
               std::chrono::duration<double>(snapshot_time_ - t0).count());
  return OkStatus();
}

void Projector::Run() {
  while (!stop_) {
    Status s = CatchUp();
    if (!s.ok() && !stop_)
      log::Warning("projector: %s", s.message().c_str());
    if (s.ok() && caught_up() && !snapshot_path_.empty()) {
      std::lock_guard lock(mu_);
      const uint64_t fresh = store_->applied() - std::min(store_->applied(), snapshot_applied_);
      const double age = std::chrono::duration<double>(std::chrono::steady_clock::now() - snapshot_time_).count();
      if (fresh > 0 && (fresh >= snapshot_every_ || age >= snapshot_seconds_)) {
        Status w = SaveSnapshotLocked();
        if (!w.ok()) {
          log::Warning("state snapshot: %s", w.message().c_str());
          snapshot_time_ = std::chrono::steady_clock::now();  // try again after another interval
        }
      }
    }
    // Back off after an error, but wake at once for Stop/Cancel.
    std::unique_lock lock(wait_mu_);
    wait_cv_.wait_for(lock, std::chrono::milliseconds(s.ok() ? 10 : 1000), [this] { return stop_.load(); });
  }
}

bool Projector::WaitForApplied(uint64_t n, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (store_->applied() < n || events_->watermark() < n) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, std::chrono::milliseconds(5));
  }
  return true;
}

Projector::Progress Projector::progress() const {
  Progress p;
  p.applied = applied_.load();
  p.target = std::max(target_.load(), p.applied);
  p.entries_per_second = rate_.load();
  p.rebuilding_events =
      rebuild_events_.load() || std::max(rows_made_.load(), events_->watermark()) < store_->applied();
  p.unreadable_payloads = unreadable_.load();
  p.first_unreadable = first_unreadable_.load();
  return p;
}

}  // namespace annals::state
