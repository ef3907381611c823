#include "archive/archiver.h"

#include <pthread.h>
#include <sched.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <mutex>

#include "checkpoint/checkpoint.h"
#include "common/bytes.h"
#include "common/file_util.h"
#include "common/sha256.h"
#include "ledger/entry.h"
#include "common/log.h"
#include "common/time_util.h"
#include "merkle/tile.h"

namespace annals::archive {

namespace {

using merkle::kTileHeight;
using merkle::kTileWidth;

// Full bundles and tiles are uploaded in steps of this many entries, the
// state saved after each: a restart after an outage resumes within one.
constexpr uint64_t kStepEntries = uint64_t{1} << 16;

// The size a signed checkpoint note states.
StatusOr<uint64_t> NoteSize(std::string_view note) {
  const size_t end = note.find("\n\n");
  if (end == std::string_view::npos) return DataLossError("published checkpoint is not a signed note");
  ASSIGN_OR_RETURN(checkpoint::Checkpoint cp, checkpoint::Parse(note.substr(0, end + 1)));
  return cp.size;
}

// Upload threads run at idle CPU priority, like the segment compressor:
// reading bundles back, MD5 and SHA-256 over every byte take only the CPU
// that ingest and the questions leave. Under saturation the backlog grows
// (and is reported) instead of ingest slowing down.
void LowerPriority() {
  sched_param idle{};
  if (pthread_setschedparam(pthread_self(), SCHED_IDLE, &idle) != 0)
    log::Warning("archive: could not lower the upload thread's priority");
}

std::string Padded(uint64_t n) {
  char buf[24];
  std::snprintf(buf, sizeof(buf), "%020llu", static_cast<unsigned long long>(n));
  return buf;
}

}  // namespace

Archiver::Archiver(ArchiverOptions options, ledger::Ledger* ledger, Metrics* metrics)
    : options_(std::move(options)), ledger_(ledger), metrics_(metrics) {}

StatusOr<std::unique_ptr<Archiver>> Archiver::Start(ArchiverOptions options, ledger::Ledger* ledger,
                                                    Metrics* metrics) {
  if (options.parallel < 1 || options.parallel > 64)
    return InvalidArgumentError("archive upload parallelism must be 1..64");
  if (options.retain_seconds < 0) return InvalidArgumentError("archive retention must not be negative");
  options.s3.bucket = options.location.bucket;
  std::unique_ptr<Archiver> a(new Archiver(std::move(options), ledger, metrics));
  const ArchiverOptions& o = a->options_;
  for (int i = 0; i < o.parallel; ++i) {
    ASSIGN_OR_RETURN(auto c, S3Client::Create(o.s3));
    a->clients_.push_back(std::move(c));
  }
  RETURN_IF_ERROR(MakeDirs(o.state_dir));
  ArchiveState st;
  st.target = o.location.Url();
  const std::string path = o.state_dir + "/state";
  if (FileExists(path)) {
    ASSIGN_OR_RETURN(std::string text, ReadFileToString(path));
    ASSIGN_OR_RETURN(ArchiveState loaded, ParseArchiveState(text));
    if (loaded.target == st.target) {
      st = loaded;
    } else {
      log::Warning("archive: state is for %s, not %s: archiving from the start", loaded.target.c_str(),
                   st.target.c_str());
    }
  }
  {
    MutexLock lock(&a->mu_);
    a->state_ = st;
    a->progress_.target = st.target;
    a->progress_.archived_size = st.size;
    a->progress_.full_through = st.full_through;
    a->progress_.next_segment = st.next_segment;
  }
  log::Info("archive: to %s at %s from entry %llu (checkpoint %llu in the bucket)", st.target.c_str(),
            o.s3.endpoint.c_str(), static_cast<unsigned long long>(st.full_through),
            static_cast<unsigned long long>(st.size));
  a->thread_ = std::thread([p = a.get()] { p->Loop(); });
  a->watchdog_ = std::thread([p = a.get()] { p->Watchdog(); });
  return a;
}

Archiver::~Archiver() { Stop(); }

void Archiver::Stop() {
  {
    MutexLock lock(&mu_);
    stop_.store(true);
    cv_.NotifyAll();
  }
  if (thread_.joinable()) thread_.join();
  if (watchdog_.joinable()) watchdog_.join();
}

void Archiver::Watchdog() {
  while (true) {
    const bool stopping = stop_.load();
    const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::steady_clock::now().time_since_epoch())
                            .count();
    for (auto& c : clients_) {
      const int64_t since = c->busy_since_ms();
      if (since == 0) continue;
      if (stopping || now - since > options_.request_timeout.count()) {
        if (!stopping) log::Warning("archive: a request to the store took over %lld ms; ending it",
                                    static_cast<long long>(options_.request_timeout.count()));
        c->Abort();
      }
    }
    if (stopping && loop_done_.load()) return;  // no request can start any more
    MutexLock lock(&mu_);
    cv_.WaitFor(&lock, std::chrono::milliseconds(stopping ? 50 : 1000));
  }
}

void Archiver::Nudge() {
  MutexLock lock(&mu_);
  nudged_ = true;
  cv_.NotifyAll();
}

ArchiveProgress Archiver::progress() const {
  MutexLock lock(&mu_);
  ArchiveProgress p = progress_;
  const uint64_t published = ledger_->CheckpointSize();
  p.backlog_entries = published > p.archived_size ? published - p.archived_size : 0;
  return p;
}

std::string Archiver::Unready() const {
  const ArchiveProgress p = progress();
  if (p.stopped_on_mismatch) return "archive stopped: " + p.last_error;
  if (p.backlog_entries > options_.max_backlog_entries)
    return "archive backlog: " + std::to_string(p.backlog_entries) + " entries not yet in " + p.target +
           " (bound " + std::to_string(options_.max_backlog_entries) + ")" +
           (p.last_error.empty() ? "" : ": " + p.last_error);
  return "";
}

void Archiver::Publish() {
  const ArchiveProgress p = progress();
  metrics_->Set("annals_archive_size", p.archived_size);
  metrics_->Set("annals_archive_full_through", p.full_through);
  metrics_->Set("annals_archive_next_segment", p.next_segment);
  metrics_->Set("annals_archive_backlog_entries", p.backlog_entries);
  metrics_->Set("annals_archive_stopped", p.stopped_on_mismatch ? 1 : 0);
}

void Archiver::Loop() {
  struct Done {
    std::atomic<bool>* flag;
    ~Done() { flag->store(true); }
  } done{&loop_done_};
  LowerPriority();
  auto backoff = std::chrono::milliseconds(500);
  while (!stop_.load()) {
    Status s = Round();
    if (stop_.load()) break;
    std::chrono::milliseconds wait = options_.interval;
    if (s.ok()) {
      check_existing_.store(false);
      backoff = std::chrono::milliseconds(500);
      MutexLock lock(&mu_);
      progress_.last_error.clear();
    } else {
      // Whatever was sent in the failed step may or may not be stored.
      check_existing_.store(true);
      metrics_->Add("annals_archive_errors_total", "code", std::string(StatusCodeName(s.code())));
      bool stop_here = s.code() == StatusCode::kDataLoss;
      {
        MutexLock lock(&mu_);
        ++progress_.errors;
        progress_.last_error = s.message();
        progress_.stopped_on_mismatch = stop_here;
      }
      if (stop_here) {
        log::Error("archive: stopped: %s", s.message().c_str());
        Publish();
        break;
      }
      log::Warning("archive: %s (retrying in %lld ms)", s.message().c_str(),
                   static_cast<long long>(backoff.count()));
      wait = std::min(wait, backoff);
      backoff = std::min(backoff * 2, std::chrono::milliseconds(30000));
    }
    Publish();
    MutexLock lock(&mu_);
    const auto until = std::chrono::steady_clock::now() + wait;
    while (!stop_.load() && !nudged_ && std::chrono::steady_clock::now() < until) cv_.WaitUntil(&lock, until);
    nudged_ = false;
  }
}

Archiver::Upload Archiver::TileUpload(bool entries, uint64_t level, uint64_t index, uint64_t width) {
  const std::string rel = merkle::FormatTilePath({entries, level, index, width});
  return Upload{options_.location.Key(rel), entries ? "bundle" : "tile",
                [this, rel, entries]() -> StatusOr<std::string> {
                  bool immutable = false;
                  ASSIGN_OR_RETURN(std::string bytes, ledger_->ReadTilePath(rel, &immutable));
                  if (entries) NoteBlobs(bytes);
                  return bytes;
                }};
}

Status Archiver::Round() {
  ArchiveState st;
  {
    MutexLock lock(&mu_);
    st = state_;
  }
  const std::string note = ledger_->Checkpoint();
  ASSIGN_OR_RETURN(const uint64_t n, NoteSize(note));

  // 1. Full bundles and tiles, a step at a time.
  const uint64_t full_end = n / kTileWidth * kTileWidth;
  while (st.full_through < full_end) {
    if (stop_.load()) return UnavailableError("archive: stopping");
    const uint64_t a = st.full_through, b = std::min(full_end, a + kStepEntries);
    std::vector<Upload> ups;
    for (uint64_t i = a / kTileWidth; i < b / kTileWidth; ++i) ups.push_back(TileUpload(true, 0, i, kTileWidth));
    for (uint64_t level = 0; (b >> (kTileHeight * level)) >= kTileWidth; ++level) {
      const uint64_t ca = a >> (kTileHeight * level), cb = b >> (kTileHeight * level);
      for (uint64_t i = ca / kTileWidth; i < cb / kTileWidth; ++i) ups.push_back(TileUpload(false, level, i, kTileWidth));
    }
    RETURN_IF_ERROR(UploadAll(ups));
    RETURN_IF_ERROR(UploadBlobs());
    st.full_through = b;
    {
      MutexLock lock(&mu_);
      state_.full_through = b;
      progress_.full_through = b;
    }
    RETURN_IF_ERROR(SaveState());
  }

  // 2. The checkpoint, after the partial bundle and tiles at its edge.
  if (n > st.size) {
    std::vector<Upload> ups;
    if (n % kTileWidth) ups.push_back(TileUpload(true, 0, n / kTileWidth, n % kTileWidth));
    for (uint64_t level = 0; (n >> (kTileHeight * level)) > 0; ++level) {
      const uint64_t count = n >> (kTileHeight * level);
      // A partial tile at a higher level often spans both the archived
      // checkpoint and this one (same width, same hashes, same key): it
      // is in the bucket already, and a second PUT would be a second
      // version of it.
      if (count == (st.size >> (kTileHeight * level))) continue;
      if (count % kTileWidth) ups.push_back(TileUpload(false, level, count / kTileWidth, count % kTileWidth));
    }
    ups.push_back(Upload{options_.location.Key("annals/checkpoints/" + Padded(n)), "checkpoint",
                         [note]() -> StatusOr<std::string> { return note; }});
    RETURN_IF_ERROR(UploadAll(ups));
    RETURN_IF_ERROR(UploadBlobs());
    // `checkpoint` is the one object written again: each archived
    // checkpoint is a new version of it (all kept, and locked, in a
    // versioned bucket); its latest is what readers verify.
    const ObjectLock lock{options_.retain_seconds > 0 ? options_.lock_mode : LockMode::kNone,
                          NowMicros() + options_.retain_seconds * 1000000};
    RETURN_IF_ERROR(clients_[0]->Put(options_.location.Key("checkpoint"), note, lock));
    metrics_->Add("annals_archive_objects_total", "kind", "checkpoint");
    metrics_->Add("annals_archive_bytes_total", "kind", "checkpoint", note.size());
    {
      MutexLock l(&mu_);
      state_.size = n;
      progress_.archived_size = n;
      ++progress_.objects;
      progress_.bytes += note.size();
    }
    RETURN_IF_ERROR(SaveState());
  }

  // 3. Sealed segments in their final form (compressed, when the ledger
  // compresses), oldest first.
  const bool want_compressed = ledger_->segment_compression_level() > 0;
  for (const auto& seg : ledger_->SealedSegments()) {
    if (stop_.load()) return UnavailableError("archive: stopping");
    if (seg.first_index + seg.entries <= st.next_segment) continue;
    if (want_compressed && !seg.compressed) break;  // the compressor has not reached it yet
    const uint64_t first = seg.first_index;
    Upload up{options_.location.Key("annals/segments/" + seg.file_name), "segment",
              [this, first]() -> StatusOr<std::string> {
                bool compressed = false;
                return ledger_->ReadSealedSegment(first, &compressed);
              }};
    RETURN_IF_ERROR(UploadOne(clients_[0].get(), up));
    st.next_segment = seg.first_index + seg.entries;
    {
      MutexLock lock(&mu_);
      state_.next_segment = st.next_segment;
      progress_.next_segment = st.next_segment;
    }
    RETURN_IF_ERROR(SaveState());
  }
  return Retain(st.next_segment);
}

Status Archiver::Retain(uint64_t archived_through) {
  if (options_.local_retain_seconds < 0 && options_.local_retain_bytes == 0) return OkStatus();
  const auto sealed = ledger_->SealedSegments();
  uint64_t local_bytes = 0;
  for (const auto& seg : sealed) local_bytes += seg.file_bytes;
  const int64_t now = NowMicros() / 1000000;
  for (const auto& seg : sealed) {
    if (stop_.load()) return OkStatus();
    // Oldest first, and never a segment not yet in the archive.
    if (seg.first_index + seg.entries > archived_through || !seg.compressed) break;
    bool past = false;
    if (options_.local_retain_seconds >= 0) {
      struct stat st {};
      if (::stat(seg.path.c_str(), &st) == 0 && st.st_mtime + options_.local_retain_seconds <= now) past = true;
    }
    if (options_.local_retain_bytes > 0 && local_bytes > options_.local_retain_bytes) past = true;
    if (!past) break;
    // Confirmed: the store holds exactly the local bytes.
    bool compressed = false;
    ASSIGN_OR_RETURN(std::string bytes, ledger_->ReadSealedSegment(seg.first_index, &compressed));
    const std::string key = options_.location.Key("annals/segments/" + seg.file_name);
    ASSIGN_OR_RETURN(std::optional<std::string> etag, clients_[0]->HeadEtag(key));
    if (!etag || *etag != Md5Hex(bytes))
      return FailedPreconditionError("local retention: " + key + (etag ? " differs from" : " is missing from") +
                                     " the archive; " + seg.file_name + " is kept");
    RETURN_IF_ERROR(ledger_->DropLocalSegment(seg.first_index));
    local_bytes -= seg.file_bytes;
    metrics_->Add("annals_archive_local_segments_dropped_total", "kind", "segment");
    log::Info("archive: dropped the local copy of %s (entries %llu..%llu, in %s)", seg.file_name.c_str(),
              static_cast<unsigned long long>(seg.first_index),
              static_cast<unsigned long long>(seg.first_index + seg.entries - 1), options_.location.Url().c_str());
    MutexLock lock(&mu_);
    ++progress_.dropped_segments;
  }
  return OkStatus();
}

StatusOr<std::function<StatusOr<std::string>(const std::string& name)>> SegmentFetcher(const S3Config& config,
                                                                                      const S3Location& location) {
  S3Config c = config;
  c.bucket = location.bucket;
  ASSIGN_OR_RETURN(std::unique_ptr<S3Client> client, S3Client::Create(c));
  struct Shared {
    std::mutex mu;
    std::unique_ptr<S3Client> client;
  };
  auto shared = std::make_shared<Shared>();
  shared->client = std::move(client);
  return std::function<StatusOr<std::string>(const std::string&)>(
      [shared, location](const std::string& name) -> StatusOr<std::string> {
        std::lock_guard lock(shared->mu);
        return shared->client->Get(location.Key("annals/segments/" + name));
      });
}

Status Archiver::UploadAll(const std::vector<Upload>& uploads) {
  std::atomic<size_t> next{0};
  Mutex err_mu;
  Status first_error;
  auto work = [&](S3Client* client) {
    for (size_t i; (i = next.fetch_add(1)) < uploads.size();) {
      Status s = stop_.load() ? UnavailableError("archive: stopping") : UploadOne(client, uploads[i]);
      if (!s.ok()) {
        MutexLock lock(&err_mu);
        if (first_error.ok()) first_error = s;
        next.store(uploads.size());
        return;
      }
    }
  };
  const size_t threads = std::min<size_t>(clients_.size(), uploads.size());
  std::vector<std::thread> helpers;
  for (size_t t = 1; t < threads; ++t)
    helpers.emplace_back([&work, c = clients_[t].get()] {
      LowerPriority();
      work(c);
    });
  work(clients_[0].get());
  for (auto& h : helpers) h.join();
  MutexLock lock(&err_mu);
  return first_error;
}

Status Archiver::UploadOne(S3Client* client, const Upload& up) {
  ASSIGN_OR_RETURN(std::string body, up.bytes());
  if (check_existing_.load()) {
    ASSIGN_OR_RETURN(std::optional<std::string> etag, client->HeadEtag(up.key));
    if (etag) {
      if (*etag == Md5Hex(body)) {
        MutexLock lock(&mu_);
        ++progress_.skipped;
        return OkStatus();
      }
      return DataLossError("archive object " + up.key + " differs from the local log (ETag " + *etag +
                           ", local MD5 " + Md5Hex(body) + ")");
    }
  }
  const ObjectLock lock{options_.retain_seconds > 0 ? options_.lock_mode : LockMode::kNone,
                        NowMicros() + options_.retain_seconds * 1000000};
  RETURN_IF_ERROR(client->Put(up.key, body, lock));
  metrics_->Add("annals_archive_objects_total", "kind", up.kind);
  metrics_->Add("annals_archive_bytes_total", "kind", up.kind, body.size());
  MutexLock l(&mu_);
  ++progress_.objects;
  progress_.bytes += body.size();
  return OkStatus();
}

void Archiver::NoteBlobs(std::string_view bundle) {
  std::vector<Hash> found;
  while (bundle.size() >= 2) {
    const uint16_t len = GetBigEndian16(bundle.data());
    if (bundle.size() - 2 < len) break;
    auto e = ledger::DecodeEntry(bundle.substr(2, len));
    if (e.ok() && e->external) found.push_back(e->payload_digest);
    bundle.remove_prefix(2 + len);
  }
  if (found.empty()) return;
  MutexLock lock(&blobs_mu_);
  blobs_.insert(blobs_.end(), found.begin(), found.end());
}

Status Archiver::UploadBlobs() {
  std::vector<Hash> todo;
  {
    MutexLock lock(&blobs_mu_);
    todo.swap(blobs_);
  }
  std::sort(todo.begin(), todo.end());
  todo.erase(std::unique(todo.begin(), todo.end()), todo.end());
  for (size_t i = 0; i < todo.size(); ++i) {
    const std::string key = options_.location.Key("annals/blobs/" + HexEncode(HashBytes(todo[i])));
    Status s = [&]() -> Status {
      ASSIGN_OR_RETURN(std::string blob, ledger_->GetBlob(todo[i]));
      if (Sha256(blob) != todo[i]) return DataLossError("blob " + key + " does not hash to its name locally");
      ASSIGN_OR_RETURN(std::optional<std::string> etag, clients_[0]->HeadEtag(key));
      if (etag) {
        if (*etag == Md5Hex(blob)) return OkStatus();
        return DataLossError("archive object " + key + " differs from the local blob");
      }
      const ObjectLock lock{options_.retain_seconds > 0 ? options_.lock_mode : LockMode::kNone,
                            NowMicros() + options_.retain_seconds * 1000000};
      RETURN_IF_ERROR(clients_[0]->Put(key, blob, lock));
      metrics_->Add("annals_archive_objects_total", "kind", "blob");
      metrics_->Add("annals_archive_bytes_total", "kind", "blob", blob.size());
      MutexLock l(&mu_);
      ++progress_.objects;
      progress_.bytes += blob.size();
      return OkStatus();
    }();
    if (!s.ok()) {
      // Kept for the step's retry (which reads its bundles, and so notes
      // them, again anyway).
      MutexLock lock(&blobs_mu_);
      blobs_.insert(blobs_.end(), todo.begin() + static_cast<ptrdiff_t>(i), todo.end());
      return s;
    }
  }
  return OkStatus();
}

Status Archiver::SaveState() {
  std::string text;
  {
    MutexLock lock(&mu_);
    text = state_.Encode();
  }
  return WriteFileAtomic(options_.state_dir + "/state", text, 0644);
}

}  // namespace annals::archive
