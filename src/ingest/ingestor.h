// Ingestor: the one admission path from every source (webhook, events,
// TCP lines, file tail) into the ledger. Deduplicates: an item whose key
// and payload bytes were both seen before is a retry and is stored once. An
// item that reuses a stored key with different bytes (a client-chosen
// Audit-ID, a forged copy) is not a retry: it is kept, marked as a conflict
// (meta type "k8s.audit.conflict", "cloud.audit.conflict"), and the first
// stays the event.
// Stores large
// payloads as blobs, appends, and reports back only once everything it was
// given is durable: new events by their own append, duplicates by the
// earlier append that holds them (which may still be in flight).
//
// Thread-safe. Does not own the ledger or the index; both must outlive it.
// Its destructor waits until every append it handed the ledger has called
// back (the ledger must still be running then), so no callback ever runs
// on a destroyed Ingestor.
#ifndef ANNALS_INGEST_INGESTOR_H_
#define ANNALS_INGEST_INGESTOR_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/mutex.h"
#include "common/metrics.h"
#include "common/status.h"
#include "index/dedup_index.h"
#include "ledger/ledger.h"
#include "redact/redactor.h"
#include "redact/sealed_store.h"

namespace annals::ingest {

struct IngestItem {
  std::string meta;          // entry metadata JSON
  std::string_view payload;  // original bytes; must outlive Submit's callback
  std::string key;           // dedup key; empty = never deduplicated
  // False: the parser looked at the payload for the redactor's triggers
  // and found none (Redactor::MayApply), so redaction skips it.
  bool may_redact = true;
};

// Files an item under a cluster (docs/sources.md "Clusters"): its
// metadata gains "cluster" (second, after "v") and its dedup key becomes
// "cluster:<byte length>:<cluster>/<key>", so the same event from two
// clusters is two events. Nothing changes for cluster "". The metadata
// must be one the ingest parsers wrote (it starts {"v":1 or {"v":2 and holds the
// key as they wrote it); Internal otherwise.
Status BindCluster(std::string_view cluster, IngestItem* item);

struct IngestResult {
  uint64_t stored = 0;
  uint64_t duplicates = 0;
  uint64_t conflicts = 0;  // stored, but marked: same key, different bytes
  int64_t first_index = -1;  // of the stored ones, -1 if none
};

class Ingestor {
 public:
  using Done = std::function<void(StatusOr<IngestResult>)>;

  // Catches the dedup index up with the log before returning.
  static StatusOr<std::unique_ptr<Ingestor>> Open(ledger::Ledger* ledger, index::DedupIndex* dedup,
                                                  Metrics* metrics);
  // Returns at once; the dedup index catches up with the log on a thread
  // of its own (annals-dedupcu) while the server already listens and its
  // projections catch up beside it. Until it is done, what is submitted is
  // held (in order, up to kMaxHeldBytes of payload; beyond that refused
  // with Unavailable) and admitted as soon as it is: a retry must be known
  // before it is admitted. A failed catch-up fails what is held and every
  // later Submit with its reason.
  static std::unique_ptr<Ingestor> OpenCatchingUp(ledger::Ledger* ledger, index::DedupIndex* dedup,
                                                  Metrics* metrics);
  static constexpr size_t kMaxHeldBytes = size_t{256} << 20;
  struct CatchUpProgress {
    bool done = false;
    Status status;  // of a catch-up that ended
    uint64_t applied = 0, target = 0;  // entries of the log the index covers, and to cover
  };
  CatchUpProgress catch_up() const;
  // Waits for the catch-up to end; its status.
  Status WaitForCatchUp();
  // Stops a catch-up in progress at its next chunk; what is held fails
  // with Unavailable. For shutdown.
  void Cancel();
  // All or nothing per call. `done` runs once, on some internal thread.
  void Submit(const std::string& source, std::vector<IngestItem> items, Done done);
  // A check every Submit passes first (the disk guard): a non-empty answer
  // refuses the whole request with ResourceExhausted and that message,
  // counted in annals_events_rejected_total. Set before the first Submit;
  // called from any thread.
  void SetRefusal(std::function<std::string()> refusal) { refusal_ = std::move(refusal); }
  // Redaction at ingest (docs/security.md "Secrets"): every item to store
  // (not the server's own "annals" entries) has the values the policy names
  // replaced by commitments before it is encoded, the redaction recorded in
  // its metadata; the values are written to `sealed` before the entries are
  // handed to the ledger, and synced beside them by the ledger's writer
  // before they are acknowledged (the server sets Ledger::SetSyncBeside to
  // sealed->Sync()). Deduplication still compares what was received: a
  // retry of a redacted event is recognised through the sealed store's
  // digest of it. Set before the first Submit; neither is owned.
  // What ingest parsers look for triggers of (nullptr: no redaction).
  const redact::Redactor* redactor() const { return redactor_ && sealed_ ? redactor_ : nullptr; }
  void SetRedaction(const redact::Redactor* redactor, redact::SealedStore* sealed) {
    redactor_ = redactor;
    sealed_ = sealed;
  }
  // Blocking form.
  StatusOr<IngestResult> SubmitAndWait(const std::string& source, std::vector<IngestItem> items);
  // Waits until every append handed to the ledger so far has called back.
  void Drain();
  ~Ingestor();

  // Extracts the dedup key recorded in an entry's metadata ("key").
  static std::string KeyFromMeta(std::string_view meta);
  // Conflict marking of entry metadata (see the class comment).
  static std::string MarkConflict(std::string_view meta);
  static bool IsConflict(std::string_view meta);
  // Dedup index keys (docs/format/dedup-index.md): "K" + SHA-256(key)
  // names the first item with that key (value: its log index);
  // "C" + SHA-256(key || 0x00 || payload digest) names a conflicting item.
  using IndexKey = std::array<char, 33>;
  static IndexKey KeyIndexKey(std::string_view key);
  static IndexKey ConflictIndexKey(std::string_view key, const Hash& payload_digest);

 private:
  struct Pending;  // one in-flight append
  struct Inflight {
    std::shared_ptr<Pending> pending;
    // The bytes of the item that claimed the key: alive while this record
    // is (it is erased before its Submit's callback runs).
    std::string_view payload;
  };
  // A key a request reserved in inflight_: the index record its append
  // writes once durable.
  struct Claim {
    IndexKey key;     // the index key ("K" or "C" record)
    size_t item;      // of the item that claimed it, in the request
    size_t position;  // of that item's entry in the append (set by Encode)
  };
  // One request on its way through Admit, Encode and Commit.
  struct Admission;
  Ingestor(ledger::Ledger* ledger, index::DedupIndex* dedup, Metrics* metrics)
      : ledger_(ledger), dedup_(dedup), metrics_(metrics) {}
  Status CatchUp();
  void MarkCatchingUp();
  void RunCatchUp();
  // Submit once the dedup index is caught up.
  void Process(const std::string& source, std::vector<IngestItem> items, Done done);
  // Ends the catch-up with s: what was held is processed (s ok) or fails.
  void EndCatchUp(const Status& s);
  // Submit in three steps. When one fails, Submit rolls back in one place
  // (Release, then the request fails with nothing of it queued).
  //
  // Admit (under mu_): each item's fate (new, conflict or duplicate, and
  // the in-flight appends its duplicates wait on); reserves the keys of the
  // items to store in inflight_ for a->pending (its claims; those made
  // before a failure stay reserved until Release).
  Status Admit(const std::vector<IngestItem>& items, Admission* a);
  // Encode (no lock): the entries of the items to store, conflicts marked,
  // large payloads stored as blobs first (under the digest the entry
  // carries); each claim gets its entry's position.
  Status Encode(const std::string& source, std::vector<IngestItem>* items, Admission* a,
                std::vector<std::string>* entries);
  // Redaction of the items to store (in Encode): their payloads and
  // metadata replaced, the redacted bytes kept in a; the values sealed.
  Status Redact(const std::string& source, std::vector<IngestItem>* items, Admission* a);
  // Commit: hands the entries to the ledger. *done then runs once they and
  // every append a duplicate waits on are durable; the append's callback
  // records the claims in the index and releases them. If the ledger
  // refuses the entries: their status, nothing queued, *done not taken.
  Status Commit(const std::string& source, std::vector<std::string> entries, Admission* a, Done* done);
  // Drops the reservations that p's claims still hold in inflight_.
  void Release(const Pending& p);
  void AppendDone();
  // Whether the entry a "K" record names (index_value) holds exactly these
  // payload bytes (read back from the log; a blob by its digest).
  StatusOr<bool> HoldsPayload(std::string_view index_value, std::string_view payload) const;

  ledger::Ledger* ledger_;
  index::DedupIndex* dedup_;
  Metrics* metrics_;
  std::function<std::string()> refusal_;
  const redact::Redactor* redactor_ = nullptr;
  redact::SealedStore* sealed_ = nullptr;
  Mutex mu_;  // also orders admission
  // An index key's digest bytes are already uniformly spread.
  struct IndexKeyHash {
    size_t operator()(const IndexKey& k) const {
      size_t h;
      std::memcpy(&h, k.data() + 1, sizeof(h));
      return h;
    }
  };
  std::unordered_map<IndexKey, Inflight, IndexKeyHash> inflight_ GUARDED_BY(mu_);
  // Set once an index write failed: the watermark then stays where it was,
  // so the next start catches the index up from the log.
  std::atomic<bool> index_failed_{false};
  // Appends handed to the ledger whose callbacks have not finished.
  Mutex drain_mu_;
  CondVar drain_cv_;
  uint64_t appends_in_flight_ GUARDED_BY(drain_mu_) = 0;
  // The catch-up (OpenCatchingUp) and what waits for it.
  struct Held {
    std::string source;
    std::vector<IngestItem> items;
    Done done;
  };
  mutable Mutex catch_up_mu_;
  CondVar catch_up_cv_;
  bool caught_up_ GUARDED_BY(catch_up_mu_) = true;
  Status catch_up_status_ GUARDED_BY(catch_up_mu_);
  std::vector<Held> held_ GUARDED_BY(catch_up_mu_);
  size_t held_bytes_ GUARDED_BY(catch_up_mu_) = 0;
  std::atomic<bool> cancel_{false};
  std::atomic<uint64_t> catch_up_applied_{0}, catch_up_target_{0};
  std::thread catch_up_thread_;
};

}  // namespace annals::ingest

#endif  // ANNALS_INGEST_INGESTOR_H_
