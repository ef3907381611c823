// FlowEnricher: POST /v1/enrich/flows (SPEC.md "Flow enrichment",
// docs/state.md). Each flow line gets src_workload and dst_workload: the
// pod that held each address at the flow's time, its top owner, labels,
// service account and the Services selecting it, from the StateStore alone
// (no log reads), through a render cache of workload fragments per pod
// version. Batches of lines go through the lookups one step at a time,
// each step prefetching what the next reads.
//
// Thread-safe (reads the StateStore under its shared lock; the cache has a
// spin lock per set). Does not own the store.
#ifndef ANNALS_STATE_FLOW_ENRICHER_H_
#define ANNALS_STATE_FLOW_ENRICHER_H_

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "common/time_util.h"
#include "state/state_store.h"

namespace annals::state {

class FlowEnricher {
 public:
  // cache_sets: the render cache's size in sets of kCacheWays workloads
  // (a power of two; tests make it small).
  explicit FlowEnricher(const StateStore* store, size_t cache_sets = size_t{1} << 18)
      : store_(store), cache_sets_(std::bit_ceil(std::max<size_t>(cache_sets, 1))) {}
  ~FlowEnricher();
  FlowEnricher(const FlowEnricher&) = delete;
  FlowEnricher& operator=(const FlowEnricher&) = delete;

  // One flow line in, the same line out with src_workload/dst_workload.
  // cluster: only that cluster's pods ("" any: the latest-starting holder
  // of the address, whichever cluster's; its workload names its cluster).
  StatusOr<std::string> EnrichFlow(std::string_view line, std::string_view cluster = {}) const;
  // Every line of a JSON-lines body (blank lines skipped) enriched and
  // appended to *out, one LF-terminated line each; *count (if given) is
  // the number of lines written. InvalidArgument naming the line at the
  // first bad one (*out then holds the lines before it).
  Status EnrichFlows(std::string_view body, std::string* out, size_t* count = nullptr,
                     std::string_view cluster = {}) const;

 private:
  // A flow line on its way through: parsed, then each end's address
  // resolved to the pod version that held it (and that version's
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
    const Object* object = nullptr;    // that pod (loaded once, if cold)
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
  // cluster: kAnyCluster, or the interned id whose pods alone count.
  void FindHolder(FlowEnd* e, Micros t, uint32_t cluster) const;
  static constexpr uint32_t kAnyCluster = 0xffffffffu;
  // The id of cluster ("" kAnyCluster; unknown: an id no object has);
  // caller holds the store lock.
  uint32_t ClusterId(std::string_view cluster) const;
  void FindVersion(FlowEnd* e, Micros t) const;
  // FindVersion for a batch whose held ends have their object set: the
  // binary searches of all its ends advance one probe at a time, each
  // probe prefetched a round before it is read.
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

  const StateStore* store_;

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

#endif  // ANNALS_STATE_FLOW_ENRICHER_H_
