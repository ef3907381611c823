// Questions: the answers annals gives from its projections (SPEC.md
// "Questions"): state at T, pod by IP at T, flow enrichment, provenance
// (history) and search with group-by. Every answer names the ledger indexes
// it rests on; bodies are read back from the log by index.
//
// Thread-safe (reads the StateStore under its shared lock). Does not own the
// ledger or the store.
#ifndef ANNALS_STATE_QUESTIONS_H_
#define ANNALS_STATE_QUESTIONS_H_

#include <array>
#include <cstdint>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "common/time_util.h"
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
  Questions(ledger::Ledger* ledger, const StateStore* store) : ledger_(ledger), store_(store) {}

  // JSON text: {"at":..,"count":N,"objects":[...]} with each object's body
  // spliced in as stored (no re-encoding: whole-cluster answers are large).
  StatusOr<std::string> State(const StateQuery& q, std::vector<uint64_t>* evidence) const;
  // NotFound (with nearest intervals in *nearest) when no pod held the IP.
  StatusOr<nlohmann::json> WhoIs(std::string_view ip, Micros at, nlohmann::json* nearest) const;
  StatusOr<nlohmann::json> History(const HistoryQuery& q) const;
  StatusOr<nlohmann::json> Events(const EventQuery& q) const;
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
  // The payload of the entry at index (from the blob store if external).
  StatusOr<std::string> PayloadAt(uint64_t index) const;

  // Flow enrichment. A flow line on its way through: parsed, then each end's
  // address resolved to the pod version that held it (and that version's
  // render-cache set), then written out. EnrichFlows takes a batch of lines
  // through these steps one step at a time, each step prefetching what the
  // next one reads, so that the memory reads of different flows overlap
  // instead of each waiting for the one before.
  struct FlowEnd {
    std::optional<IpKey> ip;
    const std::vector<IpInterval>* intervals = nullptr;  // ip's, if indexed
    const IpInterval* held = nullptr;  // when a pod held ip at the flow's time
    const Version* version = nullptr;  // that pod's version at the flow's time
    uint64_t epoch = 0, generation = 0;  // its render-cache key, with version->index
    size_t set = 0;                      // its render-cache set (first slot)
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
  void AppendFlow(const Flow& f, std::string* out) const;
  // Appends the workload of e's pod version, or null.
  void AppendWorkload(const FlowEnd& e, Micros t, std::string* out) const;
  // The workload JSON of pod version v with the Services that select it at
  // t, from the projection alone (no log reads).
  std::string RenderWorkload(uint32_t pod, const Version& v, Micros t) const;

  ledger::Ledger* ledger_;
  const StateStore* store_;

  // Rendered workloads, keyed by (the pod version's ledger index, the
  // namespace's Service epoch at the flow's time): a version never changes,
  // and the Services selecting it are the same within one epoch. An entry
  // is used only while the store's late generation is the one it was
  // rendered under. Four-way set associative (a set is four adjacent
  // slots, newest first; a new key evicts the oldest, and a hit writes
  // nothing, so that threads reading one set do not bounce its cache
  // lines): a lookup reads one set and one string, no nodes to chase.
  // Allocated at the first enrichment; bounded (kCacheSlots slots plus
  // their strings). Sets are
  // guarded by kCacheLocks striped mutexes, so that concurrent enrichments
  // rarely meet on a lock.
  struct CacheSlot {
    uint64_t index = 0, epoch = 0, generation = 0;
    bool used = false;
    std::string text;
  };
  struct alignas(64) CacheLock {
    std::mutex mu;
  };
  static constexpr size_t kCacheWays = 4;
  static constexpr size_t kCacheSlots = size_t{1} << 20;
  static constexpr size_t kCacheLocks = 4096;
  std::mutex& CacheLockFor(size_t set) const { return cache_locks_[(set / kCacheWays) % kCacheLocks].mu; }
  // The way of e's set holding e's workload, or -1; caller holds its lock.
  int CachedWay(const FlowEnd& e) const;
  mutable std::once_flag cache_once_;
  mutable std::vector<CacheSlot> cache_;
  mutable std::array<CacheLock, kCacheLocks> cache_locks_;
};

}  // namespace annals::state

#endif  // ANNALS_STATE_QUESTIONS_H_
