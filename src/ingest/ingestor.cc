#include "ingest/ingestor.h"

#include <simdjson.h>

#include <atomic>
#include <cstdio>
#include <future>
#include <unordered_set>

#include "ledger/entry.h"

namespace annals::ingest {

struct Ingestor::Pending {
  std::mutex mu;
  bool done = false;
  Status status;
  std::vector<std::function<void(const Status&)>> waiters;

  void Complete(const Status& s) {
    std::vector<std::function<void(const Status&)>> w;
    {
      std::lock_guard lock(mu);
      done = true;
      status = s;
      w.swap(waiters);
    }
    for (auto& f : w) f(s);
  }
  void OnDone(std::function<void(const Status&)> f) {
    std::unique_lock lock(mu);
    if (!done) {
      waiters.push_back(std::move(f));
      return;
    }
    Status s = status;
    lock.unlock();
    f(s);
  }
};

namespace {

// Collects the outcome of one Submit: its own append and the earlier
// appends its duplicates depend on.
struct Join {
  std::atomic<int> left{0};
  std::mutex mu;
  Status err;
  IngestResult result;
  Ingestor::Done done;

  void Part(const Status& s, int64_t first_index = -1) {
    {
      std::lock_guard lock(mu);
      if (!s.ok() && err.ok()) err = s;
      if (first_index >= 0) result.first_index = first_index;
    }
    if (left.fetch_sub(1) == 1) Finish();
  }
  void Finish() {
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

std::string Ingestor::KeyFromMeta(std::string_view meta) {
  thread_local simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(meta.data(), meta.size()).get(doc) != simdjson::SUCCESS) return "";
  std::string_view key;
  if (doc["key"].get_string().get(key) != simdjson::SUCCESS) return "";
  return std::string(key);
}

std::string Ingestor::MarkConflict(std::string_view meta) {
  std::string m(meta);
  constexpr std::string_view kAudit = R"("type":"k8s.audit")";
  auto pos = m.find(kAudit);
  if (pos != std::string::npos) {
    m.replace(pos, kAudit.size(), R"("type":"k8s.audit.conflict")");
  } else if (!m.empty() && m.back() == '}') {
    m.pop_back();
    m += R"(,"conflict":true})";
  }
  return m;
}

bool Ingestor::IsConflict(std::string_view meta) {
  return meta.find(R"("type":"k8s.audit.conflict")") != std::string_view::npos ||
         meta.find(R"("conflict":true)") != std::string_view::npos;
}

std::string Ingestor::Identity(std::string_view key, const Hash& digest) {
  // Fixed 33-byte index keys: long keys made memtable inserts the largest
  // cost of ingest. SHA-256 keeps them collision-free in practice.
  std::string id = "I";
  id.append(HashBytes(Sha256Parts({key, std::string_view("\0", 1), HashBytes(digest)})));
  return id;
}

std::string Ingestor::KeyIndexKey(std::string_view key) {
  std::string k = "K";
  k.append(HashBytes(Sha256(key)));
  return k;
}

Status Ingestor::CatchUp() {
  const uint64_t end = ledger_->DurableSize();
  uint64_t begin = dedup_->watermark();
  constexpr uint64_t kChunk = 8192;
  while (begin < end) {
    uint64_t stop = std::min(end, begin + kChunk);
    std::vector<std::pair<std::string, uint64_t>> keys;
    RETURN_IF_ERROR(ledger_->ReadEntries(begin, stop, [&](uint64_t i, std::string_view e) {
      auto d = ledger::DecodeEntry(e);
      if (!d.ok()) return d.status();
      std::string k = KeyFromMeta(d->meta);
      if (!k.empty()) {
        keys.emplace_back(Identity(k, d->external ? d->payload_digest : Sha256(d->payload)), i);
        if (!IsConflict(d->meta)) keys.emplace_back(KeyIndexKey(k), i);
      }
      return OkStatus();
    }));
    RETURN_IF_ERROR(dedup_->Record(keys, stop));
    begin = stop;
  }
  return OkStatus();
}

void Ingestor::Submit(const std::string& source, std::vector<IngestItem> items, Done done) {
  metrics_->Add("annals_events_received_total", "source", source, items.size());
  auto pending = std::make_shared<Pending>();
  auto join = std::make_shared<Join>();
  join->done = std::move(done);
  std::vector<std::string> entries;
  std::vector<std::pair<std::string, size_t>> new_keys;  // key, position in entries
  std::vector<std::shared_ptr<Pending>> deps;
  // (item, entry position) of payloads that go to the blob store.
  std::vector<std::pair<size_t, size_t>> blobs;
  uint64_t dups = 0;

  auto release = [this, &new_keys, &pending]() {
    std::lock_guard lock(mu_);
    for (const auto& [k, pos] : new_keys) {
      auto it = inflight_.find(k);
      if (it != inflight_.end() && it->second == pending) inflight_.erase(it);
    }
  };
  auto fail = [&](const Status& s) {
    release();
    pending->Complete(s);
    metrics_->Add("annals_events_rejected_total", "source", source, items.size());
    join->done(s);
  };

  uint64_t conflicts = 0;
  {
    std::lock_guard lock(mu_);
    auto abort_with = [&](const Status& st) {
      for (const auto& [k, pos] : new_keys) inflight_.erase(k);
      new_keys.clear();
      pending->Complete(st);
      join->done(st);
    };
    // Claimed in this batch: exact identities, and logical keys.
    std::unordered_set<std::string> seen;
    for (size_t i = 0; i < items.size(); ++i) {
      IngestItem& it = items[i];
      if (!it.key.empty()) {
        std::string ident = Identity(it.key, Sha256(it.payload));
        if (seen.count(ident)) {
          ++dups;
          continue;
        }
        if (auto f = inflight_.find(ident); f != inflight_.end()) {
          ++dups;
          deps.push_back(f->second);
          continue;
        }
        auto found = dedup_->Lookup(ident);
        if (!found.ok()) return abort_with(found.status());
        if (found->has_value()) {
          ++dups;
          continue;
        }
        // Same key, different bytes: not a retry. Keep it, marked as a
        // conflict, so a reused Audit-ID can neither suppress an event nor
        // pass for the original; the first one stays the audit event.
        std::string key = KeyIndexKey(it.key);
        bool conflict = seen.count(key) || inflight_.count(key);
        if (!conflict) {
          auto k = dedup_->Lookup(key);
          if (!k.ok()) return abort_with(k.status());
          conflict = k->has_value();
        }
        seen.insert(ident);
        inflight_[ident] = pending;
        new_keys.emplace_back(ident, entries.size());
        if (conflict) {
          ++conflicts;
          it.meta = MarkConflict(it.meta);
        } else {
          seen.insert(key);
          inflight_[key] = pending;
          new_keys.emplace_back(key, entries.size());
        }
      }
      bool needs_blob = false;
      auto e = ledger::EncodeEntry(it.meta, it.payload, &needs_blob);
      if (!e.ok()) return abort_with(e.status());
      if (needs_blob) blobs.emplace_back(i, entries.size());
      entries.push_back(std::move(*e));
    }
  }
  if (conflicts) metrics_->Add("annals_events_conflicting_total", "source", source, conflicts);
  for (auto [i, pos] : blobs) {
    // The entry already carries the payload's digest: do not hash it again.
    auto ref = ledger::DecodeEntry(entries[pos]);
    if (!ref.ok()) return fail(ref.status());
    Status s = ledger_->PutBlob(ref->payload_digest, items[i].payload);
    if (!s.ok()) return fail(s);
  }
  join->result.duplicates = dups;
  join->result.conflicts = conflicts;
  join->result.stored = entries.size();
  if (dups) metrics_->Add("annals_events_deduplicated_total", "source", source, dups);
  const int parts = static_cast<int>(deps.size()) + (entries.empty() ? 0 : 1);
  if (parts == 0) {
    join->Finish();
    return;
  }
  join->left.store(parts);
  for (auto& d : deps) d->OnDone([join](const Status& s) { join->Part(s); });
  if (entries.empty()) return;
  const size_t n = entries.size();
  Status s = ledger_->AppendAsync(
      std::move(entries),
      [this, source, n, pending, join, keys = new_keys](StatusOr<uint64_t> first) {
        Status st = first.status();
        if (first.ok()) {
          std::vector<std::pair<std::string, uint64_t>> recs;
          recs.reserve(keys.size());
          for (auto& [k, pos] : keys) recs.emplace_back(k, *first + pos);
          // The entries are durable whatever the index says. After a failed
          // index write the watermark stops, so the next start catches up.
          Status rs = dedup_->Record(recs, index_failed_ ? 0 : *first + n);
          if (!rs.ok()) {
            index_failed_ = true;
            std::fprintf(stderr, "annals: dedup index write failed: %s\n", rs.message().c_str());
          }
          metrics_->Add("annals_events_stored_total", "source", source, n);
        } else {
          metrics_->Add("annals_events_rejected_total", "source", source, n);
        }
        {
          std::lock_guard lock(mu_);
          for (const auto& [k, pos] : keys) {
            auto it = inflight_.find(k);
            if (it != inflight_.end() && it->second == pending) inflight_.erase(it);
          }
        }
        pending->Complete(st);
        join->Part(st, first.ok() ? static_cast<int64_t>(*first) : -1);
      });
  if (!s.ok()) {
    release();
    pending->Complete(s);
    join->Part(s);
  }
}

StatusOr<IngestResult> Ingestor::SubmitAndWait(const std::string& source,
                                               std::vector<IngestItem> items) {
  std::promise<StatusOr<IngestResult>> p;
  auto f = p.get_future();
  Submit(source, std::move(items), [&p](StatusOr<IngestResult> r) { p.set_value(std::move(r)); });
  return f.get();
}

}  // namespace annals::ingest
