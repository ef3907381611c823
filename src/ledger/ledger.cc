#include "ledger/ledger.h"
#include "common/thread_util.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include <future>

#include "checkpoint/checkpoint.h"
#include "common/bytes.h"
#include "common/file_util.h"
#include "common/log.h"
#include "common/time_util.h"
#include "merkle/merkle.h"
#include "merkle/tile.h"

namespace annals::ledger {

namespace {

// Now, in Unix seconds.
double UnixSeconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

constexpr uint64_t kReintegrateChunk = 4096;

}  // namespace

StatusOr<std::string> LoadOrCreateKey(const std::string& path, const std::string& origin) {
  if (FileExists(path)) {
    ASSIGN_OR_RETURN(std::string key, ReadFileToString(path));
    while (!key.empty() && (key.back() == '\n' || key.back() == '\r')) key.pop_back();
    return key;
  }
  ASSIGN_OR_RETURN(std::string key, note::GeneratePrivateKey(origin));
  RETURN_IF_ERROR(MakeDirs(DirName(path)));
  RETURN_IF_ERROR(WriteFileAtomic(path, key + "\n", 0600));
  return key;
}

Ledger::Ledger(LedgerOptions options)
    : options_(std::move(options)),
      blobs_(options_.data_dir + "/blobs", options_.env),
      tiles_(options_.data_dir + "/log", options_.env) {}

StatusOr<std::unique_ptr<Ledger>> Ledger::Open(const LedgerOptions& options) {
  if (options.data_dir.empty()) return InvalidArgumentError("no data directory given");
  if (options.env == nullptr) return InvalidArgumentError("no env given");
  RETURN_IF_ERROR(options.env->CreateDirs(options.data_dir));
  ::chmod(options.data_dir.c_str(), 0700);
  std::unique_ptr<Ledger> l(new Ledger(options));
  // Two writers on one directory would interleave segments: refuse.
  const std::string lock_path = options.data_dir + "/LOCK";
  l->lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (l->lock_fd_ < 0) return ErrnoError("open " + lock_path, errno);
  if (::flock(l->lock_fd_, LOCK_EX | LOCK_NB) != 0)
    return FailedPreconditionError(options.data_dir + " is in use by another annals process");
  std::string skey = options.private_key;
  if (skey.empty()) {
    ASSIGN_OR_RETURN(skey, LoadOrCreateKey(options.data_dir + "/key", options.origin));
  }
  ASSIGN_OR_RETURN(l->signer_, note::Signer::FromPrivateKey(skey));
  RETURN_IF_ERROR(l->Recover());
  l->writer_ = std::thread([p = l.get()] {
    SetThreadName("annals-writer");
    p->WriterLoop();
  });
  l->completer_ = std::thread([p = l.get()] {
    SetThreadName("annals-complete");
    p->CompleterLoop();
  });
  l->integrator_ = std::thread([p = l.get()] {
    SetThreadName("annals-integrat");
    p->IntegratorLoop();
  });
  l->publisher_ = std::thread([p = l.get()] {
    SetThreadName("annals-publish");
    p->PublisherLoop();
  });
  if (l->Checkpoint().empty()) RETURN_IF_ERROR(l->PublishNow());
  if (options.scrub_bytes_per_second > 0)
    l->scrubber_ = std::thread([p = l.get()] {
      SetThreadName("annals-scrub");
      p->ScrubLoop();
    });
  if (options.segment_compression_level > 0)
    l->compressor_ = std::thread([p = l.get()] {
      SetThreadName("annals-compress");
      p->CompressLoop();
    });
  return l;
}

Status Ledger::Recover() {
  const std::string log_dir = options_.data_dir + "/log";
  ASSIGN_OR_RETURN(checkpoints_,
                   CheckpointLog::Open(log_dir, &recovery_.checkpoint_log_cut, options_.env));
  uint64_t cp_size = 0;
  Hash cp_root = merkle::EmptyRoot();
  if (!checkpoints_->latest().empty()) {
    ASSIGN_OR_RETURN(auto verifier, note::Verifier::FromVerifierKey(signer_->VerifierKey()));
    auto opened = note::OpenNote(checkpoints_->latest(), *verifier);
    if (!opened.ok())
      return DataLossError("latest stored checkpoint does not verify with this log's key: " +
                           opened.status().message());
    ASSIGN_OR_RETURN(auto cp, checkpoint::Parse(opened->text));
    if (cp.origin != signer_->name())
      return FailedPreconditionError("stored checkpoint origin " + cp.origin +
                                     " differs from the key's name " + signer_->name());
    cp_size = cp.size;
    cp_root = cp.root;
  }
  log::SegmentLogOptions lo;
  lo.dir = options_.data_dir + "/segments";
  lo.env = options_.env;
  lo.max_segment_entries = options_.max_segment_entries;
  lo.fetch_archived = options_.fetch_archived_segment;
  lo.cache_window_bytes = options_.segment_cache_window_bytes;
  ASSIGN_OR_RETURN(log_, log::SegmentLog::Open(lo, cp_size, &recovery_.log));
  const uint64_t n = log_->size();
  if (checkpoints_->latest().empty() && n > 0) {
    // Open() signs a checkpoint before any entry can be appended, so a log
    // with entries and none is one whose checkpoints were lost. Signing it
    // now could sign a smaller tree than one already published (a rollback
    // that clients holding the larger one would take for a fork).
    if (!options_.accept_lost_checkpoints)
      return FailedPreconditionError(
          "the log holds " + std::to_string(n) + " entries but " + log_dir + "/" + kCheckpointLogName +
          " holds no signed checkpoint: it was lost or emptied, and entries may be missing too. "
          "Restore it from a backup, or start with --accept-lost-checkpoints to sign the log as "
          "it is now (clients that saw a larger tree will see a rollback); docs/faults.md");
    recovery_.lost_checkpoints_accepted = n;
    RETURN_IF_ERROR(RecordAcceptedLoss(log_dir, n));
  }

  auto reintegrate = [&](uint64_t from) -> Status {
    for (uint64_t b = from; b < n; b += kReintegrateChunk) {
      uint64_t e = std::min(n, b + kReintegrateChunk);
      std::vector<Hash> hashes;
      hashes.reserve(e - b);
      RETURN_IF_ERROR(log_->ReadRange(b, e, [&](uint64_t, std::string_view d) {
        hashes.push_back(merkle::HashLeaf(d));
        return OkStatus();
      }));
      // A full disk: the tiles stay in memory until a publish writes them.
      if (Status s = tiles_.Integrate(hashes); !s.ok() && s.code() != StatusCode::kResourceExhausted) return s;
    }
    recovery_.reintegrated += n - from;
    return OkStatus();
  };

  // Trust stored tiles only below the last signed checkpoint (checked
  // against its root below); everything after it is re-hashed from the
  // segments, so a damaged tile can never feed a future signed root.
  ASSIGN_OR_RETURN(uint64_t covered, tiles_.Load(cp_size));
  RETURN_IF_ERROR(reintegrate(covered));
  auto root_ok = [&]() -> bool {
    auto r = merkle::RootHash(cp_size, tiles_.Reader());
    return r.ok() && *r == cp_root;
  };
  if (!root_ok()) {
    // Stored tiles disagree with the signed checkpoint: rebuild them all
    // from the segments, which are the source of truth.
    recovery_.tiles_rebuilt = true;
    ASSIGN_OR_RETURN(covered, tiles_.Load(0));
    RETURN_IF_ERROR(reintegrate(0));
    if (!root_ok())
      return DataLossError("log entries do not hash to the root of the published checkpoint at size " +
                           std::to_string(cp_size) + "; run `annals verify` to locate the damage");
  }
  MutexLock lock(&pub_mu_);  // before the threads start; for the analysis
  signed_ = checkpoints_->latest();
  signed_size_ = cp_size;
  published_at_ = UnixSeconds();
  published_ = signed_;
  published_size_ = cp_size;
  // With witnessing, the served checkpoint (the copy beside the log) may be
  // an older, witnessed one: serve it again if it is this log's and on
  // this tree, so that a restart does not serve what witnesses never saw.
  if (const std::string& copy = checkpoints_->copy(); !copy.empty() && copy != signed_) {
    ASSIGN_OR_RETURN(auto verifier, note::Verifier::FromVerifierKey(signer_->VerifierKey()));
    auto opened = note::OpenNote(copy, *verifier);
    auto cp = opened.ok() ? checkpoint::Parse(opened->text) : StatusOr<checkpoint::Checkpoint>(opened.status());
    if (opened.ok() && opened->signatures.size() > 1 && cp.ok() && cp->origin == signer_->name() &&
        cp->size <= cp_size) {
      auto root = merkle::RootHash(cp->size, tiles_.Reader());
      if (root.ok() && *root == cp->root) {
        published_ = copy;
        published_size_ = cp->size;
      }
    }
  }
  return OkStatus();
}

Status Ledger::RecordAcceptedLoss(const std::string& log_dir, uint64_t entries) {
  // One line per decision, appended and synced before anything is signed.
  const std::string path = log_dir + "/" + kAcceptedLossesName;
  std::string old;
  if (options_.env->FileExists(path)) {
    ASSIGN_OR_RETURN(old, env::ReadFileToString(options_.env, path));
  }
  char line[160];
  std::snprintf(line, sizeof line, "%s no signed checkpoint for %llu entries; signing them as found\n",
                FormatRfc3339(NowMicros()).c_str(), static_cast<unsigned long long>(entries));
  return env::WriteFileAtomic(options_.env, path, old + line, 0600);
}

Ledger::~Ledger() {
  scrub_stop_.store(true);
  {
    MutexLock lock(&scrub_mu_);
    scrub_cv_.NotifyAll();
  }
  if (scrubber_.joinable()) scrubber_.join();
  if (compressor_.joinable()) compressor_.join();
  {
    MutexLock lock(&mu_);
    stopping_ = true;
  }
  writer_cv_.NotifyAll();
  integrator_cv_.NotifyAll();
  space_cv_.NotifyAll();
  if (writer_.joinable()) writer_.join();
  if (completer_.joinable()) completer_.join();
  if (integrator_.joinable()) integrator_.join();
  {
    MutexLock lock(&pub_mu_);
    integrator_done_ = true;
  }
  pub_cv_.NotifyAll();
  if (publisher_.joinable()) publisher_.join();
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

StatusOr<std::string> Ledger::EntryBlob(const Hash& digest) const {
  auto blob = blobs_.Get(digest);
  // The entry names it, so a missing blob is lost data, not a wrong name.
  if (blob.status().code() == StatusCode::kNotFound)
    return DataLossError("payload blob missing: " + blob.status().message());
  return blob;
}

StatusOr<std::string_view> Ledger::PayloadOf(const DecodedEntry& entry, std::string* blob) const {
  if (!entry.external) return entry.payload;
  ASSIGN_OR_RETURN(*blob, EntryBlob(entry.payload_digest));
  return std::string_view(*blob);
}

StatusOr<Ledger::Event> Ledger::ReadEvent(uint64_t index) const {
  ASSIGN_OR_RETURN(std::string raw, ReadEntry(index));
  ASSIGN_OR_RETURN(DecodedEntry d, DecodeEntry(raw));
  Event e;
  e.meta.assign(d.meta);
  e.external = d.external;
  e.payload_digest = d.payload_digest;
  if (d.external) {
    ASSIGN_OR_RETURN(e.payload, EntryBlob(d.payload_digest));
  } else {
    e.payload.assign(d.payload);
  }
  return e;
}

Status Ledger::AppendAsync(std::vector<std::string> entries, AppendCallback done) {
  size_t bytes = 0;
  for (const auto& e : entries) {
    if (e.empty() || e.size() > 65535)
      return InvalidArgumentError("entry of " + std::to_string(e.size()) +
                                  " bytes: entries are 1..65535 bytes");
    bytes += e.size() + 8;
  }
  if (entries.empty()) return InvalidArgumentError("no entries");
  MutexLock lock(&mu_);
  if (!failed_.ok())
    return UnavailableError("log is failed: " + failed_.message() +
                            "; appends resume once it is reopened (docs/faults.md)");
  if (stopping_) return UnavailableError("ledger is shutting down");
  if (queued_bytes_ + bytes > options_.max_queued_bytes && queued_bytes_ > 0)
    return ResourceExhaustedError("append queue full (" + std::to_string(queued_bytes_) +
                                  " bytes waiting for disk)");
  queued_bytes_ += bytes;
  queue_.push_back({std::move(entries), std::move(done), bytes});
  lock.Unlock();
  writer_cv_.NotifyOne();
  return OkStatus();
}

StatusOr<uint64_t> Ledger::Append(std::vector<std::string> entries) {
  std::promise<StatusOr<uint64_t>> p;
  auto f = p.get_future();
  for (;;) {
    // A copy: a refused AppendAsync consumes its argument, and we retry.
    Status s = AppendAsync(entries, [&p](StatusOr<uint64_t> r) { p.set_value(std::move(r)); });
    if (s.ok()) break;
    if (s.code() != StatusCode::kResourceExhausted) return s;
    // Blocking callers wait for space instead of failing.
    MutexLock lock(&mu_);
    space_cv_.WaitFor(&lock, std::chrono::milliseconds(10));
  }
  return f.get();
}

void Ledger::SetSyncBeside(std::function<Status()> fn) {
  sync_beside_ = std::make_unique<SideCall>("annals-sync2", std::move(fn));
}

void Ledger::WriterLoop() {
  for (;;) {
    std::deque<Request> batch;
    {
      MutexLock lock(&mu_);
      while (queue_.empty() && !stopping_) writer_cv_.Wait(&lock);
      if (queue_.empty() && stopping_) break;
      batch.swap(queue_);
      for (const auto& r : batch) queued_bytes_ -= r.bytes;
    }
    space_cv_.NotifyAll();
    Status s;
    {
      MutexLock lock(&mu_);
      s = failed_;
    }
    const bool failed_before = !s.ok();
    const uint64_t first = log_->size();
    // The sync beside the log's runs while the batch is written and synced.
    const bool beside = s.ok() && sync_beside_ != nullptr;
    if (beside) sync_beside_->Start();
    for (auto& r : batch) {
      if (!s.ok()) break;
      s = log_->Append(r.entries);
    }
    if (s.ok()) s = log_->Sync();
    bool beside_failed = false;
    if (beside) {
      Status b = sync_beside_->Wait();
      if (s.ok() && !b.ok()) {
        s = b;
        beside_failed = true;
      }
    }
    if (!s.ok()) {
      // Retry in place only when the log says it may (a full disk, the
      // batch's bytes cut) and none of the batch became durable (a segment
      // roll syncs part of a batch; those entries must reach the tree).
      const bool retryable = !failed_before && log_->write_error().ok() &&
                             log_->size() == first && s.code() == StatusCode::kResourceExhausted;
      if (!retryable) Fail(s);
      if (retryable) NoteNoSpace(&append_no_space_, s);
      // Out of space and still writable: try again later. Otherwise the
      // ledger refuses appends until reopened, and says so whichever
      // thread saw the failure first (AppendAsync, or here when the failure
      // came between AppendAsync and this batch).
      const Status result =
          retryable ? ResourceExhaustedError("append failed, out of space: " + s.message())
          : failed_before
              ? UnavailableError("log is failed: " + s.message() +
                                 "; appends resume once it is reopened (docs/faults.md)")
              : UnavailableError("append failed: " + s.message());
      // A segment roll in the middle of the batch synced what came before
      // it: those entries are durable. Requests wholly among them are
      // acknowledged and integrated; one cut by the failure is told exactly
      // which of its entries are kept (a retry finds them as duplicates by
      // their key); the others failed whole. (The part of a cut request
      // that is durable is integrated on reopen, when the log after the
      // last checkpoint is re-hashed.)
      const uint64_t durable = log_->size();
      std::vector<std::string> kept;
      size_t kept_bytes = 0;
      {
        MutexLock lock(&mu_);
        uint64_t idx = first;
        for (auto& r : batch) {
          const uint64_t n = r.entries.size();
          if (idx + n <= durable) {
            // Durable, so hashed into the tree; acknowledged only if what
            // had to be synced beside the log was too.
            if (beside_failed)
              completions_.emplace_back(
                  std::move(r.done),
                  UnavailableError("the entries are in the log, but what must be durable with them (the "
                                   "sealed values of redaction) could not be synced: " + result.message()));
            else
              completions_.emplace_back(std::move(r.done), idx);
            kept_bytes += r.bytes;
            for (auto& e : r.entries) kept.push_back(std::move(e));
          } else if (idx < durable) {
            completions_.emplace_back(
                std::move(r.done),
                UnavailableError("append failed after the first " + std::to_string(durable - idx) + " of the " +
                                 std::to_string(n) + " entries of this request became durable (log indexes " +
                                 std::to_string(idx) + ".." + std::to_string(durable - 1) +
                                 "): they are kept, and on a retry events with a dedup key (an audit "
                                 "event's auditID and stage) are found as duplicates; " + result.message()));
          } else {
            completions_.emplace_back(std::move(r.done), result);
          }
          idx += n;
        }
        if (!kept.empty()) {
          to_integrate_.push_back(std::move(kept));
          integrate_bytes_ += kept_bytes;
          integrator_cv_.NotifyOne();
          durable_cv_.NotifyAll();
        }
      }
      completer_cv_.NotifyOne();
      continue;
    }
    NoteNoSpace(&append_no_space_, OkStatus());
    uint64_t idx = first;
    std::vector<std::string> all;
    size_t bytes = 0;
    {
      MutexLock lock(&mu_);
      for (auto& r : batch) {
        completions_.emplace_back(std::move(r.done), idx);
        idx += r.entries.size();
        bytes += r.bytes;
        if (all.empty()) {
          all = std::move(r.entries);
        } else {
          for (auto& e : r.entries) all.push_back(std::move(e));
        }
      }
      durable_cv_.NotifyAll();  // under mu_: WaitForDurable cannot miss it
    }
    completer_cv_.NotifyOne();
    {
      MutexLock lock(&mu_);
      to_integrate_.push_back(std::move(all));
      integrate_bytes_ += bytes;
      integrator_cv_.NotifyOne();
      // Hashing is slower than the disk at times: do not let durable but
      // unintegrated entries pile up in memory without bound.
      while (integrate_bytes_ > options_.max_queued_bytes && !stopping_) space_cv_.Wait(&lock);
    }
  }
  {
    MutexLock lock(&mu_);
    writer_done_ = true;
  }
  durable_cv_.NotifyAll();
  integrator_cv_.NotifyAll();
  completer_cv_.NotifyAll();
}

Status Ledger::WriteError() const {
  MutexLock lock(&mu_);
  return failed_;
}

void Ledger::NoteNoSpace(std::string* which, const Status& s) {
  MutexLock lock(&mu_);
  const bool was = !append_no_space_.empty() || !publish_no_space_.empty();
  *which = s.ok() ? std::string() : s.message();
  const bool is = !append_no_space_.empty() || !publish_no_space_.empty();
  if (is && !was) log::Error("ledger out of space: %s; writes are retried as space returns", s.message().c_str());
  if (was && !is) log::Info("ledger: space is back, the log, its tiles and checkpoints are written again");
}

std::string Ledger::OutOfSpace() const {
  MutexLock lock(&mu_);
  return !append_no_space_.empty() ? append_no_space_ : publish_no_space_;
}

void Ledger::Fail(const Status& s) {
  MutexLock lock(&mu_);
  if (failed_.ok()) {
    failed_ = s;
    log::Error("ledger refuses appends until reopened: %s", s.message().c_str());
  }
}

uint64_t Ledger::WaitForDurable(uint64_t size, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  MutexLock lock(&mu_);
  while (log_->size() <= size && !writer_done_)
    if (!durable_cv_.WaitUntil(&lock, deadline)) break;
  return log_->size();
}

void Ledger::CompleterLoop() {
  for (;;) {
    std::deque<std::pair<AppendCallback, StatusOr<uint64_t>>> work;
    {
      MutexLock lock(&mu_);
      while (completions_.empty() && !writer_done_) completer_cv_.Wait(&lock);
      if (completions_.empty()) break;
      work.swap(completions_);
    }
    for (auto& [done, result] : work) done(std::move(result));
  }
}

void Ledger::IntegratorLoop() {
  for (;;) {
    std::vector<std::string> entries;
    {
      MutexLock lock(&mu_);
      while (to_integrate_.empty() && !writer_done_) integrator_cv_.Wait(&lock);
      if (to_integrate_.empty()) break;
      entries = std::move(to_integrate_.front());
      to_integrate_.pop_front();
    }
    size_t bytes = 0;
    for (const auto& e : entries) bytes += e.size() + 8;
    std::vector<Hash> hashes;
    hashes.reserve(entries.size());
    for (const auto& e : entries) hashes.push_back(merkle::HashLeaf(e));
    Status s = tiles_.Integrate(hashes);
    {
      MutexLock lock(&mu_);
      integrate_bytes_ -= std::min(integrate_bytes_, bytes);
    }
    // Out of space: the tree grew, its completed tiles wait in memory for
    // the publisher's next Sync. Anything else stops appends.
    if (!s.ok() && s.code() == StatusCode::kResourceExhausted) {
      NoteNoSpace(&publish_no_space_, s);
    } else if (!s.ok()) {
      Fail(s);
    }
    space_cv_.NotifyAll();
    { MutexLock l(&pub_mu_); }  // no lost wake-up: the publisher checks tiles_ under pub_mu_
    pub_cv_.NotifyAll();
  }
}

void Ledger::PublisherLoop() {
  auto last = std::chrono::steady_clock::now() - options_.checkpoint_interval;
  for (;;) {
    {
      MutexLock lock(&pub_mu_);
      while (!integrator_done_ && publish_requests_ <= publish_served_ && !PublishPending()) pub_cv_.Wait(&lock);
      if (publish_requests_ == publish_served_ && !integrator_done_) {
        // Batch appends for at most one interval after the previous checkpoint.
        const auto deadline = last + options_.checkpoint_interval;
        while (!integrator_done_ && publish_requests_ <= publish_served_)
          if (!pub_cv_.WaitUntil(&lock, deadline)) break;
      }
    }
    uint64_t served_upto;
    {
      MutexLock lock(&pub_mu_);
      served_upto = publish_requests_;
    }
    Status s = SignAndPersist();
    // A tile or checkpoint that could not be written for want of space is
    // tried again an interval later (nothing was signed or served). Any
    // other failure stops the ledger: after a failed fdatasync nothing it
    // wrote can be trusted.
    if (s.code() == StatusCode::kResourceExhausted) {
      NoteNoSpace(&publish_no_space_, s);
    } else if (!s.ok()) {
      Fail(s);
    } else {
      NoteNoSpace(&publish_no_space_, OkStatus());
    }
    last = std::chrono::steady_clock::now();
    bool done;
    {
      MutexLock lock(&pub_mu_);
      publish_served_ = served_upto;
      publish_status_ = s;
      done = integrator_done_;
    }
    pub_cv_.NotifyAll();
    if (done) break;
  }
}

bool Ledger::PublishPending() const {
  return tiles_.size() > signed_size_ || published_size_ < signed_size_ || (witnessing_ && unwitnessed_);
}

Status Ledger::SignAndPersist() {
  MutexLock sign_lock(&sign_mu_);
  uint64_t size;
  Hash root;
  tiles_.Snapshot(&size, &root);
  CheckpointWitnessing* witnessing;
  bool grow;
  {
    MutexLock lock(&pub_mu_);
    if (size < signed_size_) return InternalError("tree shrank below the signed checkpoint");
    witnessing = witnessing_;
    grow = signed_.empty() || size > signed_size_;
    if (!grow && published_size_ == signed_size_ && !(witnessing && unwitnessed_)) return OkStatus();
  }
  if (grow) {
    // The tiles under the new checkpoint reach the disk first: on start,
    // stored tiles are trusted up to the last checkpoint (Recover).
    RETURN_IF_ERROR(tiles_.Sync());
    checkpoint::Checkpoint cp{signer_->name(), size, root, {}};
    ASSIGN_OR_RETURN(std::string note, signer_->SignNote(cp.Marshal()));
    // Persist before publishing (or asking a witness): a checkpoint is never
    // shown unless it is on disk, so no restart can sign a different tree at
    // a size already shown.
    RETURN_IF_ERROR(checkpoints_->Append(note, /*copy=*/witnessing == nullptr));
    MutexLock lock(&pub_mu_);
    signed_ = std::move(note);
    signed_size_ = size;
    unwitnessed_ = witnessing != nullptr;
  }
  std::string to_sign;
  uint64_t to_sign_size;
  {
    MutexLock lock(&pub_mu_);
    to_sign = signed_;
    to_sign_size = signed_size_;
  }
  std::string served = to_sign;
  if (witnessing) {
    // Outside pub_mu_: readers keep the checkpoint served so far meanwhile.
    served = witnessing->Cosign(to_sign, to_sign_size);
    if (served.empty()) return OkStatus();
    checkpoints_->WriteCopy(served);
  } else if (!grow) {
    checkpoints_->WriteCopy(served);  // a witnessed copy from before, replaced
  }
  MutexLock lock(&pub_mu_);
  if (published_ != served) published_at_ = UnixSeconds();
  published_ = std::move(served);
  published_size_ = to_sign_size;
  if (signed_size_ == to_sign_size) unwitnessed_ = false;
  return OkStatus();
}

void Ledger::SetWitnessing(CheckpointWitnessing* w) {
  MutexLock sign_lock(&sign_mu_);  // no Cosign in flight
  MutexLock lock(&pub_mu_);
  witnessing_ = w;
  unwitnessed_ = w != nullptr;
  pub_cv_.NotifyAll();
}

double Ledger::CheckpointTime() const {
  MutexLock lock(&pub_mu_);
  return published_at_;
}

uint64_t Ledger::SignedSize() const {
  MutexLock lock(&pub_mu_);
  return signed_size_;
}

Status Ledger::PublishNow() {
  MutexLock lock(&pub_mu_);
  uint64_t ticket = ++publish_requests_;
  pub_cv_.NotifyAll();
  while (publish_served_ < ticket && !integrator_done_) pub_cv_.Wait(&lock);
  return publish_status_;
}

bool Ledger::WaitForCheckpoint(uint64_t size, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  MutexLock lock(&pub_mu_);
  while (published_size_ < size)
    if (!pub_cv_.WaitUntil(&lock, deadline)) return published_size_ >= size;
  return true;
}

std::string Ledger::Checkpoint() const {
  MutexLock lock(&pub_mu_);
  return published_;
}

uint64_t Ledger::CheckpointSize() const {
  MutexLock lock(&pub_mu_);
  return published_size_;
}

StatusOr<std::string> Ledger::ReadTilePath(std::string_view path, bool* immutable) const {
  ASSIGN_OR_RETURN(merkle::TilePath tp, merkle::ParseTilePath(path));
  *immutable = tp.width == merkle::kTileWidth;
  if (!tp.entries) return tiles_.ReadTile(tp.level, tp.index, tp.width);
  const uint64_t begin = tp.index * merkle::kTileWidth;
  const uint64_t end = begin + tp.width;
  if (end > tiles_.size() || end < begin) return NotFoundError("entry bundle beyond the tree");
  std::string out;
  RETURN_IF_ERROR(log_->ReadRange(begin, end, [&](uint64_t, std::string_view d) {
    PutBigEndian16(&out, static_cast<uint16_t>(d.size()));
    out.append(d);
    return OkStatus();
  }));
  return out;
}

StatusOr<std::vector<Hash>> Ledger::InclusionProof(uint64_t index, uint64_t tree_size) const {
  if (tree_size > tiles_.size())
    return OutOfRangeError("tree_size " + std::to_string(tree_size) + " is beyond the tree (" +
                           std::to_string(tiles_.size()) + ")");
  if (index >= tree_size)
    return OutOfRangeError("index " + std::to_string(index) + " is not below tree_size " +
                           std::to_string(tree_size));
  return merkle::InclusionProof(index, tree_size, tiles_.Reader());
}

StatusOr<Hash> Ledger::LeafHash(uint64_t index) const {
  if (index >= tiles_.size())
    return OutOfRangeError("index " + std::to_string(index) + " is beyond the tree (" + std::to_string(tiles_.size()) +
                           ")");
  return tiles_.Reader()(0, index);
}

StatusOr<std::vector<Hash>> Ledger::ConsistencyProof(uint64_t first, uint64_t second) const {
  if (second > tiles_.size())
    return OutOfRangeError("second " + std::to_string(second) + " is beyond the tree (" +
                           std::to_string(tiles_.size()) + ")");
  if (first > second)
    return InvalidArgumentError("first " + std::to_string(first) + " is larger than second " +
                                std::to_string(second));
  return merkle::ConsistencyProof(first, second, tiles_.Reader());
}

StatusOr<Hash> Ledger::RootAt(uint64_t tree_size) const {
  if (tree_size > tiles_.size()) return OutOfRangeError("tree_size beyond the tree");
  return merkle::RootHash(tree_size, tiles_.Reader());
}

}  // namespace annals::ledger
