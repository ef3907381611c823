// Questions: the answers annals gives from its projections (SPEC.md
// "Questions"). State at T and pod by IP at T come from the StateStore,
// with each object's body read back from the log (or blob store) by index.
// Flow enrichment comes from the StateStore alone, through a render cache
// (no log reads). Provenance (history) and search with group-by are in
// questions_events.cc: history takes the ledger indexes from the on-disk
// event index (names, children and previous versions from the StateStore;
// for an object only the watch collector saw, its versions) and reads each
// event from the log; search and group-by read only event index rows and
// per-hour counts. Answers name the ledger indexes they rest on, except
// group-by counts.
//
// Thread-safe (reads the StateStore under its shared lock). Does not own the
// ledger, the store or the event index.
#ifndef ANNALS_STATE_QUESTIONS_H_
#define ANNALS_STATE_QUESTIONS_H_

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "common/time_util.h"
#include "index/event_index.h"
#include "ledger/ledger.h"
#include "state/state_store.h"

namespace annals::state {

// Equality-based label selector: "a=b,c==d,e!=f,g,!h".
class LabelSelector {
 public:
  static StatusOr<LabelSelector> Parse(std::string_view s);
  // labels: a projected label set (StateStore::label_set).
  bool Matches(const LabelSet& labels, const Strings& strings) const;
  // labels: an object's metadata.labels as JSON (null or not an object: none).
  bool Matches(const nlohmann::json& labels) const;
  bool empty() const { return reqs_.empty(); }

 private:
  struct Req {
    std::string key, value;
    enum Op { kEq, kNe, kExists, kNotExists } op;
    // Does a label value (nullptr: the key is absent) satisfy this?
    bool Holds(const std::string* value) const;
  };
  std::vector<Req> reqs_;
};

// What changed from one version of an object to the next: a JSON Patch
// (RFC 6902) without the bookkeeping paths (resourceVersion, managedFields).
nlohmann::json WhatChanged(const nlohmann::json& before, const nlohmann::json& after);

struct StateQuery {
  Micros at = 0;
  std::string kind;       // "" = all
  std::string namespace_; // "" = all
  std::string selector;
};

struct HistoryQuery {
  std::string kind, namespace_, name;
  bool children = false;
  std::vector<std::string> verbs;  // empty: writes only (create/update/patch/delete...)
  Micros since = std::numeric_limits<int64_t>::min(), until = kNever;
};

struct EventQuery {
  Micros from = std::numeric_limits<int64_t>::min(), to = kNever;
  std::string user, verb, resource, namespace_, name, stage, q, group_by;
  int code = 0;
  uint64_t limit = 100;
  uint64_t cursor = 0;  // continue with ledger indexes > cursor - 1 (0 = start)
};

class Questions {
 public:
  // cache_sets: the flow-enrichment render cache's size in sets of
  // kCacheWays workloads (a power of two; tests make it small).
  // events: the event index search and history read (may be nullptr
  // where neither is asked, as in flow enrichment alone).
  Questions(ledger::Ledger* ledger, const StateStore* store, const index::EventIndex* events,
            size_t cache_sets = size_t{1} << 18)
      : ledger_(ledger), store_(store), events_(events), cache_sets_(std::bit_ceil(std::max<size_t>(cache_sets, 1))) {}
  ~Questions();
  Questions(const Questions&) = delete;
  Questions& operator=(const Questions&) = delete;

  // JSON text: {"at":..,"objects":[...],"count":N,"applied":A} with each
  // object's body spliced in as stored (no re-encoding: whole-cluster
  // answers are large).
  StatusOr<std::string> State(const StateQuery& q, std::vector<uint64_t>* evidence) const;
  // NotFound (with nearest intervals in *nearest) when no pod held the IP.
  StatusOr<nlohmann::json> WhoIs(std::string_view ip, Micros at, nlohmann::json* nearest) const;
  StatusOr<nlohmann::json> History(const HistoryQuery& q) const;
  StatusOr<nlohmann::json> Events(const EventQuery& q) const;
  // Called, on the asking thread, when a question finds the event index
  // damaged (a block failing its checksum); the question answers
  // Unavailable and the caller rebuilds the index from the log.
  void OnIndexDamaged(std::function<void(const std::string&)> fn) { on_index_damaged_ = std::move(fn); }
  // One flow line in, the same line out with src_workload/dst_workload.
  StatusOr<std::string> EnrichFlow(std::string_view line) const;
  // Every line of a JSON-lines body (blank lines skipped) enriched and
  // appended to *out, one LF-terminated line each; *count (if given) is
  // the number of lines written. InvalidArgument naming the line at the
  // first bad one (*out then holds the lines before it).
  Status EnrichFlows(std::string_view body, std::string* out, size_t* count = nullptr) const;

  // Receipt for evidence: the current checkpoint and an inclusion proof
  // for each index it covers.
  nlohmann::json Receipt(const std::vector<uint64_t>& indexes) const;

  // The object body at ledger index (the event's responseObject).
  StatusOr<nlohmann::json> BodyAt(uint64_t index) const;

 private:
  // Caller holds the store lock (shared).
  nlohmann::json Workload(uint32_t pod, Micros at, const Version& v) const;
  // The owner chain of an object version as of `at` (Pod -> ReplicaSet ->
  // Deployment, Job -> CronJob): each link's ownerReference and the owner's
  // version at `at` (nullptr, and the chain ends, if the ledger has none).
  struct OwnerStep {
    const OwnerLink* link;
    const Version* version;
  };
  std::vector<OwnerStep> Owners(const Version& v, Micros at) const;
  nlohmann::json OwnerChain(const Version& v, Micros at, std::vector<uint64_t>* evidence) const;
  // Services of namespace ns present at `at` whose selector matches labels,
  // in creation order: (object id, version).
  std::vector<std::pair<uint32_t, const Version*>> SelectingServices(uint32_t ns, const LabelSet& labels,
                                                                    Micros at) const;
  StatusOr<nlohmann::json> EventAt(uint64_t index) const;
  // A history row for a k8s.watch entry (null for any other entry).
  StatusOr<nlohmann::json> WatchRowAt(uint64_t index) const;
  // The payload of the entry at index (from the blob store if external).
  StatusOr<std::string> PayloadAt(uint64_t index) const;

  // Flow enrichment. A flow line on its way through: parsed, then each end's
  // address resolved to the pod version that held it (and that version's
  // render-cache set and entry), its workload copied out of the cache (or
  // rendered), then the line written out. EnrichFlows takes a batch of
  // lines through these steps one step at a time, each step prefetching
  // what the next one reads, so that the memory reads of different flows
  // overlap instead of each waiting for the one before.
  struct CacheEntry;
  struct FlowEnd {
    std::optional<IpKey> ip;
    const std::vector<IpInterval>* intervals = nullptr;  // ip's, if indexed
    const IpInterval* held = nullptr;  // when a pod held ip at the flow's time
    const Version* version = nullptr;  // that pod's version at the flow's time
    // The pod's versions still in question while a batch searches them:
    // [versions_from, versions_from + versions_left).
    const Version* versions_from = nullptr;
    size_t versions_left = 0;
    uint64_t epoch = 0, generation = 0;  // its render-cache key, with version->index
    size_t set = 0;                      // its render-cache set
    uint32_t tag = 0;                    // its tag in that set
    size_t text_at = 0, text_size = 0;   // its workload in the batch's scratch
  };
  struct Flow {
    std::string_view head;  // the line without its closing brace
    bool empty_object = false;
    Micros time = 0;
    FlowEnd end[2];  // source, destination
  };
  // padded: the SIMDJSON_PADDING bytes after line are readable (parsed in place).
  static Status ParseFlow(std::string_view line, bool padded, Flow* f);
  // Caller holds the store lock (shared) for these, called in this order.
  void FindIntervals(FlowEnd* e) const;
  void FindHolder(FlowEnd* e, Micros t) const;
  void FindVersion(FlowEnd* e, Micros t) const;
  // FindVersion for a batch: the binary searches of all its ends advance
  // one probe at a time, each probe prefetched a round before it is read.
  void FindVersions(Flow* batch, size_t n) const;
  // e's render-cache key, set and tag (e->version set).
  void KeyCache(FlowEnd* e, Micros t) const;
  // The cache entry e's set names for e's tag, not yet checked (to
  // prefetch; it may be freed before it is read).
  const CacheEntry* PeekCache(const FlowEnd& e) const;
  // Appends e's workload (from the cache, else rendered and cached), or
  // null, to *scratch and notes where it is in e.
  void CollectWorkload(FlowEnd* e, Micros t, std::string* scratch) const;
  void AppendFlow(const Flow& f, std::string_view scratch, std::string* out) const;
  // The workload JSON of pod version v with the Services that select it at
  // t, from the projection alone (no log reads).
  std::string RenderWorkload(uint32_t pod, const Version& v, Micros t) const;

  ledger::Ledger* ledger_;
  const StateStore* store_;
  const index::EventIndex* events_;
  std::function<void(const std::string&)> on_index_damaged_;
  // s, or for DataLoss from the event index: Unavailable, after telling
  // on_index_damaged_ (the log itself is intact; the index is rebuilt).
  Status IndexRead(Status s) const;

  // Rendered workloads, keyed by (the pod version's ledger index, the
  // namespace's Service epoch at the flow's time): a version never changes,
  // and the Services selecting it are the same within one epoch. An entry
  // is used only while the store's late generation is the one it was
  // rendered under. Four-way set associative: a set is one cache line
  // holding a spin lock and, newest first, four ways' tags (32 bits of the
  // key's hash) and entries (key and text in one allocation, immutable
  // once made); a new key evicts the oldest. A lookup reads one set line
  // and one entry, both prefetched a step earlier; a hit writes only the
  // lock byte. The lock is held to copy an entry's text out (so an entry
  // unlinked under it is no one's) and is taken before the batch writes
  // its answer, so that its fence waits for few stores. Allocated at the first
  // enrichment; bounded (cache_sets_ sets of kCacheWays entries).
  struct CacheEntry {
    uint64_t index, epoch, generation;
    size_t size;
    const char* text() const { return reinterpret_cast<const char*>(this + 1); }
    static CacheEntry* Make(const FlowEnd& e, std::string_view text);
    static void Free(const CacheEntry* entry);
  };
  static constexpr size_t kCacheWays = 4;
  struct alignas(64) CacheSet {
    std::atomic<uint8_t> lock{0};
    std::atomic<uint32_t> tag[kCacheWays] = {};  // 0: an empty way
    std::atomic<const CacheEntry*> entry[kCacheWays] = {};
  };
  static_assert(sizeof(CacheSet) == 64);
  class SetLock;
  // Allocates the cache at the first enrichment.
  void InitCache() const;
  // The way of e's set holding e's workload, or -1; caller holds its lock.
  int CachedWay(const FlowEnd& e) const;
  const size_t cache_sets_;
  mutable std::once_flag cache_once_;
  mutable std::unique_ptr<CacheSet[]> cache_;
};

}  // namespace annals::state

#endif  // ANNALS_STATE_QUESTIONS_H_
