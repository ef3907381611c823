// StateStore: the projection of the log into Kubernetes object versions,
// pod-IP intervals, provenance and an event table for search. Derived and
// rebuildable: it holds ledger indexes and small facts; object bodies stay
// in the log and are read back by index when an answer needs them.
//
// The event table of search, group-by and history lives on disk
// (index::EventIndex): Apply hands each audit event's row and name links to
// the caller's EventBatch, which the Projector commits.
//
// Rules (docs/state.md): an audit event at stage ResponseComplete with a 2xx
// code, verb create/update/patch/delete and a responseObject that is the
// object (not a Status) gives a version at its stageTimestamp, keyed by
// metadata.uid. A delete ends the object when it is really gone: with
// finalizers or a grace period it is Terminating until a later event shows
// it gone. Events at Metadata level add provenance but no version.
//
// Thread-safe: one writer (Apply), many readers; a shared mutex.
#ifndef ANNALS_STATE_STATE_STORE_H_
#define ANNALS_STATE_STATE_STORE_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "common/mutex.h"
#include "common/status.h"
#include "common/time_util.h"
#include "index/event_row.h"
#include "state/cold_store.h"
#include "state/ip_index.h"

namespace simdjson::dom {
class element;
}
#include "state/k8s_object.h"

namespace annals::state {

enum class Presence : uint8_t { kPresent = 0, kTerminating = 1, kGone = 2 };
std::string_view PresenceName(Presence p);

// Facts of one object version that questions need without reading the
// body back from the log (flow enrichment renders from them alone).
struct Version {
  Micros time = 0;
  uint64_t index = 0;  // the ledger entry that made it so
  uint32_t owner = 0;     // controller ownerReference: StateStore::owner_ref(id); 0 none
  uint32_t labels = 0;    // metadata.labels: StateStore::label_set(id); 0 none
  uint32_t selector = 0;  // Services: spec.selector, a label set; 0 none (selects nothing)
  uint64_t rv = 0;        // metadata.resourceVersion if a canonical decimal above 0 (etcd's); else 0
  Presence presence = Presence::kPresent;
  bool watch = false;  // made by a watch entry (its time is when it was received)
};

// A set of (key, value) string ids, sorted, keys unique.
using LabelSet = std::vector<std::pair<uint32_t, uint32_t>>;

// An ownerReference: kind and name interned, uid as given.
struct OwnerLink {
  uint32_t kind = 0, name = 0;
  std::string uid;
};

// Interned strings (ids are dense, 0 = "").
class Strings {
 public:
  Strings() { Intern(""); }
  uint32_t Intern(std::string_view s);
  // 0xffffffff if unknown.
  uint32_t Find(std::string_view s) const;
  const std::string& Get(uint32_t id) const { return strings_[id]; }
  size_t size() const { return strings_.size(); }
  // Appends s with the next id; false if s is already interned (a
  // snapshot must not hold a string twice).
  bool AddUnique(std::string_view s);

 private:
  // The slot holding s, or the empty slot where it goes.
  size_t SlotOf(std::string_view s, uint64_t hash) const;
  uint32_t Add(std::string_view s, size_t slot, uint64_t hash);
  std::vector<std::string> strings_;
  // An open-addressing table (at most half full) over strings_: a slot is
  // 0 if empty, else the high 32 bits of its string's hash beside its
  // id + 1, so a probe reads a string only when the hashes agree (a node
  // map's lookup chased three pointers, and held every string twice).
  std::vector<uint64_t> slots_;
};

struct Object {
  uint32_t resource = 0, ns = 0, name = 0;  // interned
  // The cluster its entries were filed under (interned; 0: none named). Two
  // clusters' objects never meet: uids, names, owners, Helm instances and
  // Service selection are looked up within one cluster.
  uint32_t cluster = 0;
  std::string uid;
  std::vector<Version> versions;  // sorted by (time, index)
  // Pods: facts per version, parallel to versions.
  struct PodFacts {
    std::vector<IpKey> ips;
    uint32_t service_account = 0, node = 0;  // interned
    bool holds_ip = false;  // running, not hostNetwork, not terminal
  };
  std::vector<PodFacts> pod;
  std::vector<IpKey> ips_ever;
  std::vector<IpInterval> intervals;
  uint64_t max_rv = 0;  // the highest Version::rv
  // resourceVersions seen that are not canonical decimals (Version::rv 0):
  // the watch merge's duplicate test for servers not backed by etcd.
  std::vector<std::string> text_rvs;
  bool watched = false;  // has watch versions

  // Cold (docs/state.md "Hot and cold objects"): 0 while the history is
  // here; else the generation of its body in the ColdStore, and only
  // resource, ns, name, uid, first_time and last are kept here (the
  // vectors above are empty).
  uint64_t cold = 0;
  Micros first_time = 0;  // cold: the time of its first version
  Version last;           // cold: its last version (gone)
  // Cold: its history while the store's cache holds it, else null. Read
  // and published through std::atomic_ref (readers under the shared lock
  // find it without the cache's lock); cleared only under the exclusive one.
  mutable const Object* loaded = nullptr;

  // Last version at or before t, or nullptr; presence kGone means absent.
  // Not for a cold object (StateStore::VersionAt).
  const Version* At(Micros t) const;
};

class StateStore {
 public:
  StateStore();

  // Applies one ledger entry (its decoded meta and payload). Entries must
  // come in index order; anything that is not an audit or watch event is
  // ignored. An audit event's row and name links go to *rows, if given
  // (nullptr: the event index has them already).
  Status Apply(uint64_t index, std::string_view meta, std::string_view payload, index::EventBatch* rows);
  // Only the event index's part of Apply: the entry's row and name links,
  // derived from the entry alone (the same as Apply gives), for an event
  // index that is behind the projection.
  static Status EventRows(uint64_t index, std::string_view meta, std::string_view payload,
                          index::EventBatch* rows);
  // Entries [0, applied()) have been applied.
  uint64_t applied() const;
  // The latest version time applied (log time; the minimum before any).
  Micros max_time() const;
  // The ledger indexes of the last version of every object that exists
  // (present or terminating), ascending: what a body image holds. Takes
  // the lock shared.
  std::vector<uint64_t> LiveVersionIndexes() const;
  void SetApplied(uint64_t n);

  // The whole projection as a snapshot body (docs/format/state-snapshot.md),
  // handed to sink in pieces of about 1 MiB; takes the lock shared. The
  // bytes depend only on the store's contents (containers without an order
  // are written sorted), so equal stores give equal bodies.
  Status EncodeSnapshot(const std::function<Status(std::string_view)>& sink) const;
  // Makes this store what the snapshot body describes. InvalidArgument,
  // naming what is wrong, if any byte is malformed or any id points
  // nowhere; the store is left as it was then. For a new store only.
  Status DecodeSnapshot(std::string_view body);

  // Hot and cold objects (docs/state.md): with a cold store, applying an
  // entry moves to it every object whose last version is gone and more
  // than `after` older than the latest version time seen, and a later
  // version of one brings it back. Which objects are cold depends only on
  // the log and `after`, so a store replayed from the log and one loaded
  // from a snapshot encode alike. Bodies read back are kept in a cache of
  // about cache_bytes. Set before anything is applied; cold must outlive
  // the store.
  void set_cold(ColdStore* cold, Micros after, size_t cache_bytes);
  // Writes the bodies moved out since the last call to the cold store and
  // trims the cache (takes the lock exclusive when there is work). A
  // failed write stays pending and is tried again by the next call.
  Status CommitCold();
  // Before a snapshot of the store as it is (nothing applies meanwhile):
  // commits and syncs the cold store, so that everything the snapshot
  // names is durable, and hands over the bodies that objects brought back
  // left behind, to DeleteCold once the snapshot is durable (or
  // KeepCold if it was not written).
  Status SyncCold(std::vector<std::pair<uint32_t, uint64_t>>* garbage);
  void DeleteCold(const std::vector<std::pair<uint32_t, uint64_t>>& garbage);
  void KeepCold(const std::vector<std::pair<uint32_t, uint64_t>>& garbage);
  // A cold body could not be read (damaged or missing): some answers lack
  // it until the projection is rebuilt (Reset and a replay of the log).
  bool damaged() const { return damaged_.load(std::memory_order_acquire); }
  std::string damage() const;
  // Empties the store and the cold store, for a replay from the start.
  Status Reset();
  // Reads every body of the cold store, checking its checksums; a damaged
  // one marks the store damaged (damaged()). Unavailable if *stop.
  Status VerifyCold(const std::atomic<bool>* stop) const;
  // Objects in the cold store, the bytes of bodies read back now in the
  // cache, and how many were read from disk.
  struct ColdStats {
    uint64_t cold = 0, cached_bytes = 0, loads = 0;
  };
  ColdStats cold_stats() const;

  // All readers take this lock (shared) around the accessors below.
  std::shared_mutex& mutex() const { return mu_; }

  // --- Accessors; caller holds mutex() shared. ---
  const Strings& strings() const { return strings_; }
  // The object with its history (a cold one's is read back from the cold
  // store, and stays valid while the caller holds the lock).
  const Object& object(uint32_t id) const {
    const Object& o = objects_[id];
    return o.cold ? Loaded(id) : o;
  }
  // The object's resource, ns, name, cluster and uid, without reading a cold
  // object's history (which this one lacks).
  const Object& names(uint32_t id) const { return objects_[id]; }
  // The object's version at t (Object::At); reads a cold object's history
  // only if t falls within its life.
  const Version* VersionAt(uint32_t id, Micros t) const;
  size_t object_count() const { return objects_.size(); }
  // Object ids whose resource/namespace match (0 = any).
  std::vector<uint32_t> Objects(uint32_t resource, uint32_t ns, bool any_ns) const;
  // The object of cluster (an interned id) with uid, or -1.
  int64_t FindUid(uint32_t cluster, std::string_view uid) const;
  // Objects of cluster that ever had this (resource, namespace, name), oldest first.
  std::vector<uint32_t> ByName(uint32_t cluster, uint32_t resource, uint32_t ns, uint32_t name) const;
  // Objects of cluster that ever named `owner_uid` in their ownerReferences.
  std::vector<uint32_t> Children(uint32_t cluster, std::string_view owner_uid) const;
  // Objects of cluster labelled app.kubernetes.io/instance=release or
  // annotated meta.helm.sh/release-name=release in namespace ns.
  std::vector<uint32_t> Instance(uint32_t cluster, uint32_t ns, std::string_view release) const;
  // The clusters objects were filed under (interned ids, sorted; 0 is the
  // objects of no named cluster).
  const std::vector<uint32_t>& clusters() const { return clusters_; }
  // The interval in which some pod held ip at t (nullptr if none), and the
  // nearest intervals before and after t.
  const IpInterval* PodByIp(const IpKey& ip, Micros t, const IpInterval** before,
                            const IpInterval** after) const {
    return ip_index_.Lookup(ip, t, before, after);
  }
  // What PodByIp(ip, ...) reads, for callers that prefetch: the address's
  // hash slot, then its intervals (nullptr if never indexed).
  void PrefetchIpSlot(const IpKey& ip) const { ip_index_.Prefetch(ip); }
  const std::vector<IpInterval>* IpIntervals(const IpKey& ip) const { return ip_index_.Find(ip); }
  const LabelSet& label_set(uint32_t id) const { return label_sets_[id]; }
  const OwnerLink& owner_ref(uint32_t id) const { return owner_refs_[id]; }
  uint32_t pods_id() const { return pods_id_; }
  uint32_t services_id() const { return services_id_; }
  // How many Service versions of namespace ns are at or before t: the
  // Services that select a pod at t are the same for two times with the
  // same count, as long as late_generation(ns) has not moved (a Service
  // version is only ever added after the namespace's latest, or it bumps it).
  uint64_t ServiceEpoch(uint32_t ns, Micros t) const;
  // Moves whenever a version arrives that can change a workload of
  // namespace ns rendered earlier: a Service version earlier than the
  // namespace's latest (Service epochs renumber), or a non-pod version with
  // a time at or before the latest pod version's of its namespace (an owner
  // chain as of that pod's time); a cluster-scoped one moves every
  // namespace's (owners may be cluster-scoped).
  uint64_t late_generation(uint32_t ns) const;
  // Services of namespace ns any version of which had (key, value) in its
  // selector, in creation order (nullptr if none): the candidates to
  // select a pod with that label.
  const std::vector<uint32_t>* ServicesSelectingOn(uint32_t ns, uint32_t key, uint32_t value) const;
  // The owner chain of an object version as of `at` (Pod -> ReplicaSet ->
  // Deployment, Job -> CronJob): each link's ownerReference and the owner's
  // version at `at` (nullptr, and the chain ends, if the ledger has none).
  struct OwnerStep {
    const OwnerLink* link;
    const Version* version;
  };
  // Owners are looked up in the version's object's cluster.
  std::vector<OwnerStep> Owners(uint32_t cluster, const Version& v, Micros at) const;
  // Services of cluster and namespace ns present at `at` whose selector
  // matches labels, in creation order: (object id, version).
  std::vector<std::pair<uint32_t, const Version*>> SelectingServices(uint32_t cluster, uint32_t ns,
                                                                    const LabelSet& labels, Micros at) const;

 private:
  struct NameKey {
    uint32_t resource, ns, name;
    uint32_t cluster = 0;
    bool operator==(const NameKey&) const = default;
  };
  struct NameKeyHash {
    size_t operator()(const NameKey& k) const {
      return (uint64_t{k.resource} * 0x9E3779B97F4A7C15ull) ^ (uint64_t{k.ns} << 32) ^ k.name ^
             (uint64_t{k.name} << 17) ^ (uint64_t{k.cluster} * 0xC2B2AE3D27D4EB4Full);
    }
  };
  // The key of a uid (or a Helm release) within a cluster: the uid itself
  // for objects of no named cluster, else the cluster's name, NUL, the uid
  // (cluster names are printable; ingest refuses others).
  std::string ScopedKey(uint32_t cluster, std::string_view uid) const;
  // Notes that cluster has objects (clusters_).
  void NoteCluster(uint32_t cluster);

  // Apply and EventRows: rows for the event index (if rows), versions for
  // store's projection (if store).
  static Status ApplyEntry(StateStore* store, uint64_t index, std::string_view meta, std::string_view payload,
                           index::EventBatch* rows);
  // A cloud audit record's row, from its entry's metadata `meta`.
  static Status CloudRow(uint64_t index, const simdjson::dom::element& meta, index::EventBatch* rows);
  // An audit event's version (facts: of its responseObject).
  Status ApplyAuditVersion(uint64_t index, Micros t, std::string_view cluster, std::string_view verb,
                           std::string_view resource, std::string_view key_ns, std::string_view name,
                           const StatusOr<ObjectFacts>& facts);
  void AddVersion(uint32_t id, const Version& v, const ObjectFacts* facts);
  // The object with facts.uid (made, filed under `resource`, if new).
  uint32_t ObjectFor(uint32_t cluster, uint32_t resource, const ObjectFacts& facts, bool* created);
  // Files object `id` (hot) under its owners and app instance from facts,
  // whose version is v (not added yet): skipped when its newest version
  // already had the same owner and labels (most versions of an object).
  void LinkObject(uint32_t id, const ObjectFacts& facts, const Version& v);
  // A version at (t, index) with the facts enrichment and whois need, interned.
  // Object `id`'s newest version, if any, hints the ids: most versions
  // have their predecessor's owner, labels and selector.
  Version VersionOf(uint32_t id, Micros t, uint64_t index, Presence p, const ObjectFacts& facts);
  // Watch entries ("k8s.watch"; state_store_watch.cc): authoritative
  // versions merged with audit versions by uid and resourceVersion.
  Status ApplyWatch(uint64_t index, std::string_view meta, std::string_view payload);
  // Remembers that object `id` had resourceVersion rv (max_rv, text_rvs)
  // and returns its Version::rv; *seen says whether a version of the object
  // already had it.
  uint64_t NoteResourceVersion(uint32_t id, const std::string& rv, bool* seen);
  // Moves watch versions (whose time is when they were received, not when
  // they happened) before any version of the object with a greater
  // resourceVersion.
  // After version `added` joined object id: moves watch versions so that
  // time order agrees with resourceVersion order. Nothing to do, in O(1),
  // when the new version is both the newest and the highest.
  void OrderByResourceVersion(uint32_t id, uint64_t added);
  void RecomputeIntervals(uint32_t id);
  // The same result when a version was just inserted at position k: the
  // steps before it stand, so only versions k.. are stepped again.
  void RecomputeIntervalsFrom(uint32_t id, size_t k);
  // Cold objects (see set_cold).
  const Object& Loaded(uint32_t id) const;
  void Thaw(uint32_t id);
  void Freeze(uint32_t id, uint64_t generation);
  // Freezes what the entry at `index` made old enough (writer lock held).
  void FreezeOld(uint64_t index);
  void NoteGone(uint32_t id);
  void MarkDamaged(const std::string& why) const;
  void TrimCacheLocked();
  // The snapshot's encoding of one object (state_snapshot.cc); decoding
  // checks every id against this store's tables.
  std::string EncodeObject(const Object& o) const;
  Status DecodeObject(std::string_view body, Object* o) const;
  // Takes s's contents (DecodeSnapshot, Reset); keeps the cold settings.
  void AdoptLocked(StateStore& s);
  // The same result when the object's newest version was just appended:
  // only the open intervals and the new version are looked at.
  void ExtendIntervals(uint32_t id);
  // Files one of o's intervals under its address and in o.ips_ever.
  void IndexInterval(Object& o, const IpInterval& iv);
  // hint: an id that may be the answer, checked first (0: none).
  uint32_t InternLabels(const std::vector<std::pair<std::string, std::string>>& labels, uint32_t hint = 0);
  uint32_t InternOwner(const std::vector<OwnerRef>& owners, uint32_t hint = 0);

  mutable std::shared_mutex mu_;
  uint64_t applied_ = 0;
  Strings strings_;
  std::vector<Object> objects_;
  // Objects by (cluster, uid): an open-addressing table (at most half
  // full) of the high 32 bits of the key's hash beside id + 1 (0: empty),
  // checked against objects_[id]. A node map keyed by uid held every uid
  // twice and took three dependent loads a lookup.
  std::vector<uint64_t> uid_slots_ = std::vector<uint64_t>(64, 0);  // a power of two
  size_t uid_count_ = 0;
  static uint64_t UidHash(uint32_t cluster, std::string_view uid);
  // The slot of (cluster, uid), or the empty slot where it goes.
  size_t UidSlot(uint32_t cluster, std::string_view uid, uint64_t hash) const;
  // Files objects_[id] under its (cluster, uid), which none has yet.
  void FileUid(uint32_t id, size_t slot, uint64_t hash);
  std::vector<uint32_t> clusters_;
  std::unordered_map<NameKey, std::vector<uint32_t>, NameKeyHash> by_name_;
  std::map<std::pair<uint32_t, uint32_t>, std::vector<uint32_t>> by_resource_ns_;
  std::unordered_map<std::string, std::unordered_set<uint32_t>> children_;  // ScopedKey(cluster, owner uid)
  std::map<std::pair<uint32_t, std::string>, std::unordered_set<uint32_t>> instances_;  // (ns, ScopedKey(cluster, release))
  IpIndex ip_index_;
  uint32_t pods_id_ = 0, services_id_ = 0;
  std::vector<LabelSet> label_sets_;  // [0] is the empty set
  std::unordered_map<std::string, uint32_t> label_set_ids_;  // packed ids -> id
  std::vector<OwnerLink> owner_refs_;  // [0] is "none"
  std::unordered_map<std::string, uint32_t> owner_ref_ids_;  // uid NUL kind NUL name -> id
  struct NamespaceEpochs {
    std::vector<Micros> service_times;  // sorted
    Micros max_pod_time = std::numeric_limits<Micros>::min();
    uint64_t late_generation = 0;
  };
  std::unordered_map<uint32_t, NamespaceEpochs> ns_epochs_;
  std::unordered_map<NameKey, std::vector<uint32_t>, NameKeyHash> services_by_selector_;  // (ns, key, value)
  Micros max_pod_time_ = std::numeric_limits<Micros>::min();
  uint64_t late_generation_ = 0;  // cluster-scoped late versions
  // Cold objects.
  ColdStore* cold_ = nullptr;
  Micros cold_after_ = 0;
  size_t cache_budget_ = 0;
  Micros max_time_ = std::numeric_limits<Micros>::min();  // the latest version time applied
  // Hot objects whose last version is gone, by that version's time (a
  // min-heap; entries may be stale and are checked when popped).
  std::vector<std::pair<Micros, uint32_t>> gone_;
  std::vector<std::pair<uint32_t, uint64_t>> garbage_;  // bodies left by objects brought back
  bool frozen_pending_ = false;  // bodies put since the last commit (their objects stay cached)
  std::atomic<uint64_t> cold_count_{0};  // written under mu_ (exclusive), read without it
  // Histories read back (or just frozen), in shards by id so that readers
  // on several threads do not queue on one lock. Entries are freed only
  // under mu_ held exclusive (TrimCacheLocked, Thaw, AdoptLocked).
  // A cache line (or more) each: two readers locking neighbouring shards
  // must not bounce one line between their cores.
  struct alignas(64) CacheShard {
    Mutex mu;
    std::unordered_map<uint32_t, std::unique_ptr<Object>> map GUARDED_BY(mu);
    std::vector<uint32_t> order GUARDED_BY(mu);  // oldest first; may name ids no longer cached
    size_t bytes GUARDED_BY(mu) = 0;
    uint64_t loads GUARDED_BY(mu) = 0;
  };
  static constexpr size_t kCacheShards = 16;
  CacheShard& ShardOf(uint32_t id) const { return cache_[id % kCacheShards]; }
  mutable std::array<CacheShard, kCacheShards> cache_;
  mutable Mutex damage_mu_;
  mutable std::string damage_ GUARDED_BY(damage_mu_);
  mutable std::atomic<bool> damaged_{false};
  mutable std::atomic<bool> over_budget_{false};  // a shard went over its share; the next CommitCold trims
};

}  // namespace annals::state

#endif  // ANNALS_STATE_STATE_STORE_H_
