#include "ingest/ingestor.h"
#include "common/log.h"

#include <simdjson.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <future>

#include "common/bytes.h"
#include "common/find_bytes.h"
#include "common/thread_util.h"
#include "ledger/entry.h"

namespace annals::ingest {

struct Ingestor::Pending {
  // The keys its request reserved in inflight_: written by that request's
  // Admit and Encode before the append is queued, read after.
  std::vector<Claim> claims;
  Mutex mu;
  bool done GUARDED_BY(mu) = false;
  Status status GUARDED_BY(mu);
  std::vector<std::function<void(const Status&)>> waiters GUARDED_BY(mu);

  void Complete(const Status& s) {
    std::vector<std::function<void(const Status&)>> w;
    {
      MutexLock lock(&mu);
      done = true;
      status = s;
      w.swap(waiters);
    }
    for (auto& f : w) f(s);
  }
  void OnDone(std::function<void(const Status&)> f) {
    MutexLock lock(&mu);
    if (!done) {
      waiters.push_back(std::move(f));
      return;
    }
    Status s = status;
    lock.Unlock();
    f(s);
  }
};

namespace {

// Collects the outcome of one Submit: its own append and the earlier
// appends its duplicates depend on.
struct Join {
  std::atomic<int> left{0};
  Mutex mu;
  Status err GUARDED_BY(mu);
  IngestResult result GUARDED_BY(mu);
  Ingestor::Done done;

  void Part(const Status& s, int64_t first_index = -1) {
    {
      MutexLock lock(&mu);
      if (!s.ok() && err.ok()) err = s;
      if (first_index >= 0) result.first_index = first_index;
    }
    if (left.fetch_sub(1) == 1) Finish();
  }
  // After the last Part (or with no parts at all): no one else touches it.
  void Finish() NO_THREAD_SAFETY_ANALYSIS {
    if (err.ok()) done(result);
    else done(err);
  }
};

}  // namespace

StatusOr<std::unique_ptr<Ingestor>> Ingestor::Open(ledger::Ledger* ledger,
                                                   index::DedupIndex* dedup, Metrics* metrics) {
  std::unique_ptr<Ingestor> in(new Ingestor(ledger, dedup, metrics));
  RETURN_IF_ERROR(in->CatchUp());
  return in;
}

std::unique_ptr<Ingestor> Ingestor::OpenCatchingUp(ledger::Ledger* ledger, index::DedupIndex* dedup,
                                                   Metrics* metrics) {
  std::unique_ptr<Ingestor> in(new Ingestor(ledger, dedup, metrics));
  in->MarkCatchingUp();
  in->catch_up_thread_ = std::thread([p = in.get()] {
    SetThreadName("annals-dedupcu");
    p->RunCatchUp();
  });
  return in;
}

void Ingestor::MarkCatchingUp() {
  MutexLock lock(&catch_up_mu_);
  caught_up_ = false;
}

void Ingestor::RunCatchUp() {
  const auto t0 = std::chrono::steady_clock::now();
  const uint64_t from = dedup_->watermark();
  Status s = CatchUp();
  if (s.ok() && catch_up_target_.load() > from)
    log::Info("dedup index caught up: %llu entries in %.2fs",
              static_cast<unsigned long long>(catch_up_target_.load() - from),
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  if (!s.ok() && !cancel_)
    log::Error("cannot catch up the dedup index: %s; ingest is refused until a restart catches it up",
               s.message().c_str());
  EndCatchUp(s);
}

void Ingestor::EndCatchUp(const Status& s) {
  const Status result =
      s.ok() ? s : UnavailableError("the dedup index could not catch up with the log: " + s.message());
  std::vector<Held> held;
  {
    MutexLock lock(&catch_up_mu_);
    caught_up_ = s.ok();
    catch_up_status_ = result;
    held.swap(held_);
    held_bytes_ = 0;
  }
  catch_up_cv_.NotifyAll();
  // In the order they came; each is admitted as if it came now.
  for (Held& h : held) {
    if (s.ok()) {
      Process(h.source, std::move(h.items), std::move(h.done));
    } else {
      metrics_->Add("annals_events_rejected_total", "source", h.source, h.items.size());
      h.done(result);
    }
  }
}

Ingestor::CatchUpProgress Ingestor::catch_up() const {
  CatchUpProgress p;
  {
    MutexLock lock(&catch_up_mu_);
    p.done = caught_up_ || !catch_up_status_.ok();
    p.status = catch_up_status_;
  }
  p.applied = catch_up_applied_.load();
  p.target = std::max(catch_up_target_.load(), p.applied);
  return p;
}

Status Ingestor::WaitForCatchUp() {
  MutexLock lock(&catch_up_mu_);
  while (!caught_up_ && catch_up_status_.ok()) catch_up_cv_.Wait(&lock);
  return catch_up_status_;
}

void Ingestor::Cancel() {
  cancel_ = true;
  if (catch_up_thread_.joinable()) catch_up_thread_.join();
}

std::string Ingestor::KeyFromMeta(std::string_view meta) {
  // On demand: one member of the top level is read, no tree of the whole
  // metadata built (this runs for every entry of a catch-up).
  thread_local simdjson::ondemand::parser parser;
  thread_local std::string padded;
  padded.assign(meta);
  padded.append(simdjson::SIMDJSON_PADDING, '\0');
  simdjson::ondemand::document doc;
  if (parser.iterate(padded.data(), meta.size(), padded.size()).get(doc) != simdjson::SUCCESS) return "";
  std::string_view key;
  if (doc["key"].get_string().get(key) != simdjson::SUCCESS) return "";
  return std::string(key);
}

std::string Ingestor::MarkConflict(std::string_view meta) {
  std::string m(meta);
  constexpr std::string_view kAudit = R"("type":"k8s.audit")";
  constexpr std::string_view kCloud = R"("type":"cloud.audit")";
  auto pos = m.find(kAudit);
  auto cloud = m.find(kCloud);
  if (pos != std::string::npos) {
    m.replace(pos, kAudit.size(), R"("type":"k8s.audit.conflict")");
  } else if (cloud != std::string::npos) {
    m.replace(cloud, kCloud.size(), R"("type":"cloud.audit.conflict")");
  } else if (!m.empty() && m.back() == '}') {
    m.pop_back();
    m += R"(,"conflict":true})";
  }
  return m;
}

bool Ingestor::IsConflict(std::string_view meta) {
  // Most entries are no conflict: one search for the word dismisses them.
  if (!ContainsBytes(meta, "conflict")) return false;
  return ContainsBytes(meta, R"("type":"k8s.audit.conflict")") ||
         ContainsBytes(meta, R"("type":"cloud.audit.conflict")") || ContainsBytes(meta, R"("conflict":true)");
}

namespace {

Ingestor::IndexKey MakeIndexKey(char kind, const Hash& digest) {
  Ingestor::IndexKey k;
  k[0] = kind;
  std::memcpy(k.data() + 1, digest.data(), digest.size());
  return k;
}

std::string_view View(const Ingestor::IndexKey& k) { return {k.data(), k.size()}; }

// Dedup index records on their way to DedupIndex::Record: fixed-size keys
// and values (the log index, big-endian) held here, handed over as views.
class IndexRecords {
 public:
  void Reserve(size_t n) {
    keys_.reserve(n);
    values_.reserve(n);
  }
  void Add(const Ingestor::IndexKey& key, uint64_t index) {
    keys_.push_back(key);
    StoreBigEndian64(values_.emplace_back().data(), index);
  }
  std::vector<std::pair<std::string_view, std::string_view>> Views() const {
    std::vector<std::pair<std::string_view, std::string_view>> out;
    out.reserve(keys_.size());
    for (size_t i = 0; i < keys_.size(); ++i) out.emplace_back(View(keys_[i]), std::string_view(values_[i].data(), 8));
    return out;
  }

 private:
  std::vector<Ingestor::IndexKey> keys_;
  std::vector<std::array<char, 8>> values_;
};

}  // namespace

Ingestor::IndexKey Ingestor::KeyIndexKey(std::string_view key) {
  // Fixed 33-byte index keys: long keys made memtable inserts the largest
  // cost of ingest. SHA-256 keeps them collision-free in practice.
  return MakeIndexKey('K', Sha256(key));
}

Ingestor::IndexKey Ingestor::ConflictIndexKey(std::string_view key, const Hash& digest) {
  return MakeIndexKey('C', Sha256Parts({key, std::string_view("\0", 1), HashBytes(digest)}));
}

Status Ingestor::CatchUp() {
  const uint64_t end = ledger_->DurableSize();
  uint64_t begin = dedup_->watermark();
  catch_up_applied_.store(begin);
  catch_up_target_.store(end);
  constexpr uint64_t kChunk = 8192;
  while (begin < end) {
    if (cancel_) return UnavailableError("the dedup index's catch-up was stopped at entry " + std::to_string(begin));
    uint64_t stop = std::min(end, begin + kChunk);
    IndexRecords records;
    RETURN_IF_ERROR(ledger_->ReadEntries(begin, stop, [&](uint64_t i, std::string_view e) {
      auto d = ledger::DecodeEntry(e);
      if (!d.ok()) return d.status();
      std::string k = KeyFromMeta(d->meta);
      if (!k.empty()) {
        if (IsConflict(d->meta)) {
          const Hash digest = d->external ? d->payload_digest : Sha256(d->payload);
          records.Add(ConflictIndexKey(k, digest), i);
        } else {
          records.Add(KeyIndexKey(k), i);
        }
      }
      return OkStatus();
    }));
    RETURN_IF_ERROR(dedup_->Record(records.Views(), stop, /*catching_up=*/true));
    begin = stop;
    catch_up_applied_.store(begin);
  }
  return OkStatus();
}

StatusOr<bool> Ingestor::HoldsPayload(std::string_view index_value, std::string_view payload) const {
  if (index_value.size() != 8)
    return DataLossError("dedup index: a key record of " + std::to_string(index_value.size()) + " bytes");
  const uint64_t index = GetBigEndian64(index_value.data());
  ASSIGN_OR_RETURN(std::string entry, ledger_->ReadEntry(index));
  ASSIGN_OR_RETURN(auto d, ledger::DecodeEntry(entry));
  if (d.external ? d.payload_digest == Sha256(payload) : d.payload == payload) return true;
  // Stored redacted: what was received is known by its digest only.
  if (!sealed_ || d.meta.find("\"redacted\"") == std::string_view::npos) return false;
  ASSIGN_OR_RETURN(auto received, sealed_->ReceivedDigest(d.external ? d.payload_digest : Sha256(d.payload)));
  return received.has_value() && *received == Sha256(payload);
}

namespace {

enum class Fate : uint8_t { kNew, kConflict, kDuplicate };

}  // namespace

struct Ingestor::Admission {
  std::shared_ptr<Pending> pending;  // its append, and the keys it reserved
  std::vector<Fate> fate;            // per item
  // The appends of other requests that hold its duplicates, in flight.
  std::vector<std::shared_ptr<Pending>> deps;
  uint64_t duplicates = 0;
  uint64_t conflicts = 0;
  std::vector<std::string> redacted;  // payloads redacted in Encode (reserved: views stay valid)
};

void Ingestor::Submit(const std::string& source, std::vector<IngestItem> items, Done done) {
  metrics_->Add("annals_events_received_total", "source", source, items.size());
  if (refusal_) {
    if (std::string why = refusal_(); !why.empty()) {
      metrics_->Add("annals_events_rejected_total", "source", source, items.size());
      done(ResourceExhaustedError(why));
      return;
    }
  }
  {
    MutexLock lock(&catch_up_mu_);
    if (!caught_up_) {
      Status refused = catch_up_status_;
      if (refused.ok()) {
        size_t bytes = 0;
        for (const IngestItem& it : items) bytes += it.payload.size() + it.meta.size();
        if (held_bytes_ + bytes <= kMaxHeldBytes || held_.empty()) {
          held_bytes_ += bytes;
          held_.push_back({source, std::move(items), std::move(done)});
          return;
        }
        refused = UnavailableError("the dedup index is catching up with the log (" +
                                   std::to_string(catch_up_applied_.load()) + " of " +
                                   std::to_string(catch_up_target_.load()) +
                                   " entries) and holds as much ingest as it may meanwhile: retry");
      }
      lock.Unlock();
      metrics_->Add("annals_events_rejected_total", "source", source, items.size());
      done(refused);
      return;
    }
  }
  Process(source, std::move(items), std::move(done));
}

void Ingestor::Process(const std::string& source, std::vector<IngestItem> items, Done done) {
  Admission a;
  a.pending = std::make_shared<Pending>();
  std::vector<std::string> entries;
  const int64_t t0 = ThreadCpuNanos();
  Status s = Admit(items, &a);
  const int64_t t1 = ThreadCpuNanos();
  if (s.ok()) s = Encode(source, &items, &a, &entries);
  const int64_t t2 = ThreadCpuNanos();
  metrics_->AddNanos("annals_ingest_cpu_seconds_total", "stage", "dedup", t1 - t0);
  metrics_->AddNanos("annals_ingest_cpu_seconds_total", "stage", "envelope", t2 - t1);
  if (s.ok()) s = Commit(source, std::move(entries), &a, &done);
  if (s.ok()) return;
  // The one rollback: nothing of this request was queued. Requests that
  // found its keys reserved meanwhile wait on its pending: they fail too.
  Release(*a.pending);
  metrics_->Add("annals_events_rejected_total", "source", source, items.size());
  a.pending->Complete(s);
  done(s);
}

Status Ingestor::Admit(const std::vector<IngestItem>& items, Admission* a) {
  a->fate.assign(items.size(), Fate::kNew);
  std::vector<Claim>& claims = a->pending->claims;
  // Outside the lock: each keyed item's index key. The payload is not
  // hashed: a new key (the common case) needs no digest, and a held one is
  // compared with the bytes that hold it.
  std::vector<IndexKey> keys;  // the keyed items' index keys, in order
  keys.reserve(items.size());
  for (const IngestItem& item : items)
    if (!item.key.empty()) keys.push_back(KeyIndexKey(item.key));
  std::vector<std::string_view> lookup(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) lookup[i] = View(keys[i]);

  MutexLock lock(&mu_);
  // Looked up under the lock: a request that finishes between a lookup
  // and the claims below would otherwise be missed by both.
  ASSIGN_OR_RETURN(auto stored, dedup_->LookupMany(lookup));
  size_t next = 0;
  for (size_t i = 0; i < items.size(); ++i) {
    if (items[i].key.empty()) continue;
    const IndexKey& ikey = keys[next];
    const std::string_view payload = items[i].payload;
    const std::optional<std::string>& found = stored[next++];
    // Who holds the key already: this request (its claim is in inflight_
    // too, with the bytes of its first item), another in flight, or the
    // log (the entry the index names, read back).
    bool held = true;
    bool same = false;
    std::shared_ptr<Pending> holder;
    if (auto f = inflight_.find(ikey); f != inflight_.end()) {
      same = f->second.payload == payload;
      if (f->second.pending != a->pending) holder = f->second.pending;
    } else if (found.has_value()) {
      ASSIGN_OR_RETURN(same, HoldsPayload(*found, payload));
    } else {
      held = false;
    }
    if (!held) {
      inflight_[ikey] = {a->pending, payload};
      claims.push_back({ikey, i, 0});
      continue;
    }
    if (same) {
      ++a->duplicates;
      a->fate[i] = Fate::kDuplicate;
      if (holder) a->deps.push_back(std::move(holder));
      continue;
    }
    // Same key, different bytes: not a retry. Keep it, marked as a
    // conflict, so a reused Audit-ID can neither suppress an event nor
    // pass for the original; the first one stays the audit event. A
    // retried conflict is a duplicate of its own "C" record.
    const IndexKey ckey = ConflictIndexKey(items[i].key, Sha256(payload));
    // Claimed already: by this request (no wait), or by another in flight.
    bool dup = false;
    if (auto f = inflight_.find(ckey); f != inflight_.end()) {
      dup = true;
      if (f->second.pending != a->pending) a->deps.push_back(f->second.pending);
    }
    if (!dup) {
      ASSIGN_OR_RETURN(auto c, dedup_->Lookup(View(ckey)));
      dup = c.has_value();
    }
    if (dup) {
      ++a->duplicates;
      a->fate[i] = Fate::kDuplicate;
      continue;
    }
    ++a->conflicts;
    a->fate[i] = Fate::kConflict;
    inflight_[ckey] = {a->pending, payload};
    claims.push_back({ckey, i, 0});
  }
  return OkStatus();
}

Status Ingestor::Redact(const std::string& source, std::vector<IngestItem>* items, Admission* a) {
  const int64_t t0 = ThreadCpuNanos();
  std::vector<redact::SealedValue> values;
  std::vector<redact::SealedStore::Payload> payloads;
  uint64_t events = 0;
  for (size_t i = 0; i < items->size(); ++i) {
    if (a->fate[i] == Fate::kDuplicate) continue;
    IngestItem& it = (*items)[i];
    if (!it.may_redact) continue;  // the parser looked already
    // A watched list's items carry no kind: the entry's metadata says it.
    std::string_view kind;
    if (ContainsBytes(it.meta, "\"type\":\"k8s.watch\"")) {
      const size_t k = FindBytes(it.meta, "\"kind\":\"");
      if (k != std::string::npos) {
        const size_t from = k + 8, to = it.meta.find('"', from);
        if (to != std::string::npos) kind = std::string_view(it.meta).substr(from, to - from);
      }
    }
    if (!redactor_->MayApply(it.payload, kind)) continue;
    auto r = redactor_->Apply(it.payload, {}, kind);
    if (!r.ok()) return InvalidArgumentError("item " + std::to_string(i) + ": " + r.status().message());
    if (r->values.empty()) continue;
    if (a->redacted.capacity() == 0) a->redacted.reserve(items->size());
    payloads.push_back({Sha256(r->payload), Sha256(it.payload)});
    it.meta = redactor_->RecordInMeta(it.meta, *r);
    a->redacted.push_back(std::move(r->payload));
    it.payload = a->redacted.back();
    for (auto& v : r->values) values.push_back(std::move(v));
    ++events;
  }
  metrics_->AddNanos("annals_ingest_cpu_seconds_total", "stage", "redact", ThreadCpuNanos() - t0);
  if (values.empty()) return OkStatus();
  // Written before any entry that commits to them is queued; synced by the
  // ledger's writer beside those entries, before they are acknowledged
  // (Ledger::SetSyncBeside).
  RETURN_IF_ERROR(sealed_->Put(values, payloads));
  metrics_->Add("annals_redacted_events_total", "source", source, events);
  metrics_->Add("annals_redacted_values_total", "source", source, values.size());
  return OkStatus();
}

Status Ingestor::Encode(const std::string& source, std::vector<IngestItem>* items, Admission* a,
                        std::vector<std::string>* entries) {
  if (redactor_ && sealed_ && source != "annals") RETURN_IF_ERROR(Redact(source, items, a));
  entries->reserve(items->size() - a->duplicates);
  std::vector<size_t> position(items->size());
  for (size_t i = 0; i < items->size(); ++i) {
    if (a->fate[i] == Fate::kDuplicate) continue;
    IngestItem& it = (*items)[i];
    if (a->fate[i] == Fate::kConflict) it.meta = MarkConflict(it.meta);
    bool needs_blob = false;
    Hash digest;
    ASSIGN_OR_RETURN(std::string e, ledger::EncodeEntry(it.meta, it.payload, &needs_blob, &digest));
    if (needs_blob) RETURN_IF_ERROR(ledger_->PutBlob(digest, it.payload));
    position[i] = entries->size();
    entries->push_back(std::move(e));
  }
  for (Claim& c : a->pending->claims) c.position = position[c.item];
  return OkStatus();
}

Status Ingestor::Commit(const std::string& source, std::vector<std::string> entries, Admission* a,
                        Done* done) {
  if (a->conflicts) metrics_->Add("annals_events_conflicting_total", "source", source, a->conflicts);
  if (a->duplicates) metrics_->Add("annals_events_deduplicated_total", "source", source, a->duplicates);
  auto join = std::make_shared<Join>();
  {
    MutexLock lock(&join->mu);  // not shared yet; for the analysis
    join->result.duplicates = a->duplicates;
    join->result.conflicts = a->conflicts;
    join->result.stored = entries.size();
  }
  const int parts = static_cast<int>(a->deps.size()) + (entries.empty() ? 0 : 1);
  join->left.store(parts);
  join->done = std::move(*done);
  if (!entries.empty()) {
    const size_t n = entries.size();
    {
      MutexLock lock(&drain_mu_);
      ++appends_in_flight_;
    }
    Status s = ledger_->AppendAsync(std::move(entries), [this, source, n, pending = a->pending,
                                                         join](StatusOr<uint64_t> first) {
      Status st = first.status();
      if (first.ok()) {
        IndexRecords records;
        records.Reserve(pending->claims.size());
        for (const Claim& c : pending->claims) records.Add(c.key, *first + c.position);
        // The entries are durable whatever the index says. After a failed
        // index write the watermark stops, so the next start catches up.
        const int64_t r0 = ThreadCpuNanos();
        Status rs = dedup_->Record(records.Views(), index_failed_ ? 0 : *first + n);
        metrics_->AddNanos("annals_ingest_cpu_seconds_total", "stage", "dedup-record",
                           ThreadCpuNanos() - r0);
        if (!rs.ok()) {
          index_failed_ = true;
          log::Warning("dedup index write failed: %s", rs.message().c_str());
        }
        metrics_->Add("annals_events_stored_total", "source", source, n);
      } else {
        metrics_->Add("annals_events_rejected_total", "source", source, n);
      }
      Release(*pending);
      pending->Complete(st);
      join->Part(st, first.ok() ? static_cast<int64_t>(*first) : -1);
      AppendDone();
    });
    if (!s.ok()) {
      // Refused: no callback will run, and no one else has seen the join.
      AppendDone();
      *done = std::move(join->done);
      return s;
    }
  }
  if (parts == 0) {
    join->Finish();
    return OkStatus();
  }
  for (auto& d : a->deps) d->OnDone([join](const Status& s) { join->Part(s); });
  return OkStatus();
}

void Ingestor::Release(const Pending& p) {
  MutexLock lock(&mu_);
  for (const Claim& c : p.claims) {
    auto it = inflight_.find(c.key);
    if (it != inflight_.end() && it->second.pending.get() == &p) inflight_.erase(it);
  }
}

void Ingestor::AppendDone() {
  MutexLock lock(&drain_mu_);
  if (--appends_in_flight_ == 0) drain_cv_.NotifyAll();
}

void Ingestor::Drain() {
  MutexLock lock(&drain_mu_);
  while (appends_in_flight_ != 0) drain_cv_.Wait(&lock);
}

Ingestor::~Ingestor() {
  Cancel();
  Drain();
}

StatusOr<IngestResult> Ingestor::SubmitAndWait(const std::string& source,
                                               std::vector<IngestItem> items) {
  std::promise<StatusOr<IngestResult>> p;
  auto f = p.get_future();
  Submit(source, std::move(items), [&p](StatusOr<IngestResult> r) { p.set_value(std::move(r)); });
  return f.get();
}

}  // namespace annals::ingest
