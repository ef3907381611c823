// The watch half of the state projection: "k8s.watch" entries (the watch
// collector, docs/state.md "Watch entries") as object versions, merged with
// the versions audit events give by uid and resourceVersion.
#include <simdjson.h>

#include <algorithm>
#include <charconv>
#include <functional>
#include <mutex>
#include <numeric>

#include "state/state_store.h"
#include "state/k8s_object.h"

namespace annals::state {

namespace {

}  // namespace

uint64_t StateStore::NoteResourceVersion(uint32_t id, const std::string& rv, bool* seen) {
  *seen = false;
  if (rv.empty()) return 0;
  Object& o = objects_[id];
  // resourceVersions are opaque to clients, but every API server backed by
  // etcd hands out decimal revisions; only those are compared. A canonical
  // decimal above 0 is kept as a number in its version (so that the same
  // number written otherwise, "007", is not taken for it).
  uint64_t n = 0;
  auto [p, ec] = std::from_chars(rv.data(), rv.data() + rv.size(), n);
  if (ec == std::errc() && p == rv.data() + rv.size() && n > 0 && rv[0] != '0') {
    // Above every number seen: new, without a look at the versions.
    if (n <= o.max_rv)
      *seen = std::any_of(o.versions.rbegin(), o.versions.rend(), [n](const Version& v) { return v.rv == n; });
    o.max_rv = std::max(o.max_rv, n);
    return n;
  }
  if (std::find(o.text_rvs.begin(), o.text_rvs.end(), rv) != o.text_rvs.end()) {
    *seen = true;
  } else {
    o.text_rvs.insert(std::upper_bound(o.text_rvs.begin(), o.text_rvs.end(), rv), rv);
  }
  return 0;
}

void StateStore::OrderByResourceVersion(uint32_t id, uint64_t added) {
  Object& o = objects_[id];
  // The usual case: the version just added has the highest resourceVersion
  // (none above it; equal ones bound nothing) and the latest time. It
  // bounds no earlier version below its own time, and the earlier ones
  // already agree (the loop below leaves them so): no change. This keeps
  // an object's n-th watch event O(1) instead of O(n^2).
  if (!o.versions.empty() && o.versions.back().index == added && o.versions.back().rv != 0 &&
      o.versions.back().rv == o.max_rv &&
      (o.versions.size() == 1 || o.versions[o.versions.size() - 2].time < o.versions.back().time))
    return;
  // A watch version must come before every version of a higher
  // resourceVersion. One sweep from the highest resourceVersion down, with
  // the earliest time seen above (a version moved earlier bounds the lower
  // ones by its new time): O(n log n), not a fixpoint of O(n^2) passes.
  std::vector<std::pair<uint64_t, size_t>> by_rv;  // (rv, position), numeric rvs only
  by_rv.reserve(o.versions.size());
  for (size_t i = 0; i < o.versions.size(); ++i)
    if (o.versions[i].rv != 0) by_rv.emplace_back(o.versions[i].rv, i);
  std::sort(by_rv.begin(), by_rv.end(), std::greater<>());
  bool changed = false;
  Micros limit = kNever;  // the earliest time among the higher resourceVersions
  for (size_t group = 0; group < by_rv.size();) {
    size_t end = group;
    while (end < by_rv.size() && by_rv[end].first == by_rv[group].first) ++end;  // equal rvs bound nothing
    for (size_t k = group; k < end; ++k) {
      Version& w = o.versions[by_rv[k].second];
      if (limit != kNever && w.time >= limit && w.watch) {
        w.time = limit - 1;
        changed = true;
      }
    }
    for (size_t k = group; k < end; ++k) limit = std::min(limit, o.versions[by_rv[k].second].time);
    group = end;
  }
  if (!changed) return;
  std::vector<size_t> order(o.versions.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    const Version& x = o.versions[a];
    const Version& y = o.versions[b];
    return x.time != y.time ? x.time < y.time : x.index < y.index;
  });
  std::vector<Version> versions;
  std::vector<Object::PodFacts> pod;
  for (size_t k : order) {
    versions.push_back(o.versions[k]);
    if (k < o.pod.size()) pod.push_back(o.pod[k]);
  }
  o.versions = std::move(versions);
  if (!o.pod.empty()) {
    o.pod = std::move(pod);
    RecomputeIntervals(id);
  }
}

Status StateStore::ApplyWatch(uint64_t index, std::string_view meta, std::string_view payload) {
  thread_local simdjson::dom::parser parser;
  simdjson::dom::element m, w;
  if (parser.parse(meta.data(), meta.size()).get(m) != simdjson::SUCCESS) return OkStatus();
  if (m["watch"].get(w) != simdjson::SUCCESS) return OkStatus();
  const std::string event(StringMember(w, "event"));
  if (event != "ADDED" && event != "MODIFIED" && event != "DELETED") return OkStatus();
  const std::string resource(StringMember(w, "resource"));
  const bool tombstone = event == "DELETED" && StringMember(w, "observed") == "relist";
  // The receive time: the watch carries no time of its own.
  const Micros t = ParseRfc3339(StringMember(m, "rt")).value_or(0);
  auto facts = ReadObjectFacts(payload, StringMember(w, "kind"));
  if (!facts.ok() || facts->kind == "Status") return OkStatus();
  Presence p = Presence::kPresent;
  if (event == "DELETED") p = Presence::kGone;
  else if (facts->deleting) p = Presence::kTerminating;

  // The cluster the entry was filed under (ingest::BindCluster), "" if none.
  const std::string_view cluster = StringMember(m, "cluster");
  std::unique_lock lock(mu_);
  bool created = false;
  const uint32_t id =
      ObjectFor(cluster.empty() ? 0 : strings_.Intern(cluster), strings_.Intern(resource), *facts, &created);
  Thaw(id);
  // A tombstone repeats the last resourceVersion known; it is a deletion,
  // not that version again, and orders after everything known.
  Version v = VersionOf(id, t, index, p, *facts);
  LinkObject(id, *facts, v);
  if (!tombstone) {
    bool seen = false;
    v.rv = NoteResourceVersion(id, facts->resource_version, &seen);
    if (seen) {  // the same version is already in (from an audit event or a relist)
      NoteGone(id);  // brought back to look: it goes again
      return OkStatus();
    }
  }
  v.watch = true;
  objects_[id].watched = true;
  AddVersion(id, v, &*facts);
  OrderByResourceVersion(id, index);
  NoteGone(id);
  FreezeOld(index);
  return OkStatus();
}

}  // namespace annals::state
