#include "state/state_store.h"

#include "json/json_members.h"
#include "state/k8s_object.h"

#include <simdjson.h>

#include <algorithm>
#include <mutex>

namespace annals::state {

std::string_view PresenceName(Presence p) {
  switch (p) {
    case Presence::kPresent: return "present";
    case Presence::kTerminating: return "terminating";
    case Presence::kGone: return "gone";
  }
  return "?";
}

size_t Strings::SlotOf(std::string_view s, uint64_t hash) const {
  const size_t mask = slots_.size() - 1;
  const uint64_t tag = hash >> 32;
  for (size_t i = hash & mask;; i = (i + 1) & mask) {
    const uint64_t slot = slots_[i];
    if (slot == 0) return i;
    if ((slot >> 32) == tag && strings_[static_cast<uint32_t>(slot) - 1] == s) return i;
  }
}

uint32_t Strings::Add(std::string_view s, size_t slot, uint64_t hash) {
  const uint32_t id = static_cast<uint32_t>(strings_.size());
  strings_.emplace_back(s);
  slots_[slot] = (hash >> 32) << 32 | (id + 1);
  if (strings_.size() * 2 > slots_.size()) {
    std::vector<uint64_t> old = std::move(slots_);
    slots_.assign(old.size() * 2, 0);
    const size_t mask = slots_.size() - 1;
    for (const uint64_t o : old) {
      if (o == 0) continue;
      size_t i = std::hash<std::string_view>{}(strings_[static_cast<uint32_t>(o) - 1]) & mask;
      while (slots_[i] != 0) i = (i + 1) & mask;
      slots_[i] = o;
    }
  }
  return id;
}

uint32_t Strings::Intern(std::string_view s) {
  if (slots_.empty()) slots_.assign(64, 0);
  const uint64_t hash = std::hash<std::string_view>{}(s);
  const size_t at = SlotOf(s, hash);
  if (slots_[at] != 0) return static_cast<uint32_t>(slots_[at]) - 1;
  return Add(s, at, hash);
}

bool Strings::AddUnique(std::string_view s) {
  if (slots_.empty()) slots_.assign(64, 0);
  const uint64_t hash = std::hash<std::string_view>{}(s);
  const size_t at = SlotOf(s, hash);
  if (slots_[at] != 0) return false;
  Add(s, at, hash);
  return true;
}

uint32_t Strings::Find(std::string_view s) const {
  if (slots_.empty()) return 0xffffffffu;
  const uint64_t slot = slots_[SlotOf(s, std::hash<std::string_view>{}(s))];
  return slot == 0 ? 0xffffffffu : static_cast<uint32_t>(slot) - 1;
}

const Version* Object::At(Micros t) const {
  auto it = std::upper_bound(versions.begin(), versions.end(), t,
                             [](Micros x, const Version& v) { return x < v.time; });
  if (it == versions.begin()) return nullptr;
  return &*(it - 1);
}

StateStore::StateStore() {
  pods_id_ = strings_.Intern("pods");
  services_id_ = strings_.Intern("services");
  label_sets_.emplace_back();
  owner_refs_.emplace_back();
}

uint64_t StateStore::applied() const {
  std::shared_lock lock(mu_);
  return applied_;
}

void StateStore::SetApplied(uint64_t n) {
  std::unique_lock lock(mu_);
  applied_ = n;
}

namespace {

// The addresses a pod version holds (none when gone, hostNetwork, done or
// without an IP).
const std::vector<IpKey>& HeldIps(const Object::PodFacts& pf) {
  static const std::vector<IpKey> kNone;
  return pf.holds_ip ? pf.ips : kNone;
}

}  // namespace

Status StateStore::Apply(uint64_t index, std::string_view meta, std::string_view payload,
                         index::EventBatch* rows) {
  return ApplyEntry(this, index, meta, payload, rows);
}

Status StateStore::EventRows(uint64_t index, std::string_view meta, std::string_view payload,
                             index::EventBatch* rows) {
  return ApplyEntry(nullptr, index, meta, payload, rows);
}

// A cloud audit record's row: its normalized facts (ingest::CloudMeta
// writes them) in the fields search and group-by share with Kubernetes
// events (docs/sources.md "The normalized view").
Status StateStore::CloudRow(uint64_t index, const simdjson::dom::element& meta, index::EventBatch* rows) {
  simdjson::dom::object c;
  if (meta["cloud"].get_object().get(c) != simdjson::SUCCESS) return OkStatus();
  std::string_view provider, time, account, cluster, actor, role, service, op, target, ip, ua, result;
  json_util::ScanMembers(c,
                         {{"provider", &provider},
                          {"time", &time},
                          {"account", &account},
                          {"cluster", &cluster},
                          {"actor", &actor},
                          {"role", &role},
                          {"service", &service},
                          {"op", &op},
                          {"target", &target},
                          {"ip", &ip},
                          {"ua", &ua},
                          {"result", &result}},
                         [](std::string_view, simdjson::dom::element) {});
  index::EventRowView row;
  row.index = index;
  row.time = ParseRfc3339(time).value_or(0);
  row.verb = op;
  row.user = actor;
  row.as = role;
  row.resource = service;
  row.name = target;
  row.ip = ip;
  row.ua = ua;
  row.cloud = provider;
  row.account = account;
  // Filed under a cluster by its credentials, else the one it names.
  const std::string_view bound = StringMember(meta, "cluster");
  row.cluster = bound.empty() ? cluster : bound;
  row.result = result;
  rows->Add(row);
  return OkStatus();
}

Status StateStore::ApplyEntry(StateStore* store, uint64_t index, std::string_view meta, std::string_view payload,
                              index::EventBatch* rows) {
  thread_local simdjson::dom::parser parser;
  simdjson::dom::element m;
  if (parser.parse(meta.data(), meta.size()).get(m) != simdjson::SUCCESS) return OkStatus();
  const std::string_view type = StringMember(m, "type");
  if (type == "k8s.watch") return store ? store->ApplyWatch(index, meta, payload) : OkStatus();
  if (type == "cloud.audit") return rows ? CloudRow(index, m, rows) : OkStatus();
  // The cluster the entry was filed under (ingest::BindCluster), "" if none.
  const std::string_view cluster = StringMember(m, "cluster");
  if (type != "k8s.audit") return OkStatus();
  AuditFields f;
  WrittenObject written;
  if (!ReadAuditEntry(m, payload, &f, &written).ok()) return OkStatus();
  const std::string_view stage = f.stage, verb = f.verb, resource = f.resource, ns = f.namespace_, name = f.name;
  const int64_t code = f.code;
  const Micros t = ParseRfc3339(f.time).value_or(0);
  // Requests to /api/v1/namespaces/NAME carry objectRef.namespace = NAME
  // (the create, a POST to /api/v1/namespaces, does not): a Namespace's
  // events are filed under its cluster-scoped name.
  const std::string_view key_ns = resource == "namespaces" ? std::string_view() : ns;
  const bool has_object = written.present;
  const StatusOr<ObjectFacts>& facts = written.facts;
  const bool named_by_response = facts.ok() && facts->kind != "Status" && facts->name != name;
  if (rows) {
    index::EventRowView row;
    row.index = index;
    row.time = t;
    row.code = static_cast<int32_t>(code);
    row.verb = verb;
    row.user = f.user;
    row.resource = resource;
    row.subresource = f.subresource;
    row.ns = ns;
    row.name = name.empty() && named_by_response ? std::string_view(facts->name) : name;
    row.ip = f.ip;
    row.ua = f.ua;
    row.stage = stage;
    row.as = f.as;
    row.cluster = cluster;
    rows->Add(row);
    if (!name.empty()) rows->AddName(resource, key_ns, name, index);
    // Created with generateName (or named otherwise than the request): file
    // its events under the object's real name too.
    if (named_by_response) rows->AddName(resource, facts->namespace_, facts->name, index);
  }
  if (!has_object || !store) return OkStatus();
  return store->ApplyAuditVersion(index, t, cluster, verb, resource, key_ns, name, facts);
}

std::string StateStore::ScopedKey(uint32_t cluster, std::string_view uid) const {
  if (cluster == 0) return std::string(uid);
  std::string key = strings_.Get(cluster);
  key += '\0';
  key += uid;
  return key;
}

void StateStore::NoteCluster(uint32_t cluster) {
  auto at = std::lower_bound(clusters_.begin(), clusters_.end(), cluster);
  if (at == clusters_.end() || *at != cluster) clusters_.insert(at, cluster);
}

Status StateStore::ApplyAuditVersion(uint64_t index, Micros t, std::string_view cluster, std::string_view verb,
                                     std::string_view resource, std::string_view key_ns, std::string_view name,
                                     const StatusOr<ObjectFacts>& facts) {
  std::unique_lock lock(mu_);
  const uint32_t r_id = strings_.Intern(resource), name_id = strings_.Intern(name);
  const uint32_t c_id = cluster.empty() ? 0 : strings_.Intern(cluster);  // "" is id 0
  if (!facts.ok()) {
    // A delete answered with a Status (no object): the named object is gone.
    if (verb == "delete" && !name.empty()) {
      // The object of that name that existed at t (names are reused).
      int64_t best = -1;
      Micros best_time = 0;
      for (uint32_t id : ByName(c_id, r_id, strings_.Intern(key_ns), name_id)) {
        const Version* v = VersionAt(id, t);
        if (v && v->presence != Presence::kGone && (best < 0 || v->time >= best_time)) {
          best = id;
          best_time = v->time;
        }
      }
      if (best >= 0) {
        Version gone;
        gone.time = t;
        gone.index = index;
        gone.presence = Presence::kGone;
        Thaw(static_cast<uint32_t>(best));
        AddVersion(static_cast<uint32_t>(best), gone, nullptr);
        NoteGone(static_cast<uint32_t>(best));
        FreezeOld(index);
      }
    }
    return OkStatus();
  }
  if (facts->kind == "Status") return OkStatus();
  Presence p = Presence::kPresent;
  if (verb == "delete") {
    p = (facts->has_finalizers || facts->grace_seconds > 0) ? Presence::kTerminating : Presence::kGone;
  } else if (facts->deleting) {
    const bool pod = facts->kind == "Pod";
    p = (!pod && !facts->has_finalizers) ? Presence::kGone : Presence::kTerminating;
  }
  bool created = false;
  const uint32_t id = ObjectFor(c_id, r_id, *facts, &created);
  Thaw(id);
  Version v = VersionOf(id, t, index, p, *facts);
  LinkObject(id, *facts, v);
  bool seen = false;  // an audit version is a version even if a watch saw its resourceVersion
  v.rv = NoteResourceVersion(id, facts->resource_version, &seen);
  AddVersion(id, v, &*facts);
  if (objects_[id].watched) OrderByResourceVersion(id, index);
  NoteGone(id);
  FreezeOld(index);
  return OkStatus();
}

Version StateStore::VersionOf(uint32_t id, Micros t, uint64_t index, Presence p, const ObjectFacts& facts) {
  const std::vector<Version>& versions = objects_[id].versions;
  const Version none;
  const Version& last = versions.empty() ? none : versions.back();
  Version ver;
  ver.time = t;
  ver.index = index;
  ver.presence = p;
  ver.owner = InternOwner(facts.owners, last.owner);
  ver.labels = InternLabels(facts.labels, last.labels);
  if (facts.kind == "Service") ver.selector = InternLabels(facts.selector, last.selector);
  return ver;
}

uint64_t StateStore::UidHash(uint32_t cluster, std::string_view uid) {
  return std::hash<std::string_view>{}(uid) ^ (uint64_t{cluster} * 0x9e3779b97f4a7c15ULL);
}

size_t StateStore::UidSlot(uint32_t cluster, std::string_view uid, uint64_t hash) const {
  const size_t mask = uid_slots_.size() - 1;
  const uint64_t tag = hash >> 32;
  for (size_t i = hash & mask;; i = (i + 1) & mask) {
    const uint64_t slot = uid_slots_[i];
    if (slot == 0) return i;
    if ((slot >> 32) != tag) continue;
    const Object& o = objects_[static_cast<uint32_t>(slot) - 1];
    if (o.cluster == cluster && o.uid == uid) return i;
  }
}

void StateStore::FileUid(uint32_t id, size_t slot, uint64_t hash) {
  uid_slots_[slot] = (hash >> 32) << 32 | (uint64_t{id} + 1);
  if (++uid_count_ * 2 <= uid_slots_.size()) return;
  std::vector<uint64_t> old = std::move(uid_slots_);
  uid_slots_.assign(old.size() * 2, 0);
  const size_t mask = uid_slots_.size() - 1;
  for (const uint64_t o : old) {
    if (o == 0) continue;
    const Object& ob = objects_[static_cast<uint32_t>(o) - 1];
    size_t i = UidHash(ob.cluster, ob.uid) & mask;
    while (uid_slots_[i] != 0) i = (i + 1) & mask;
    uid_slots_[i] = o;
  }
}

uint32_t StateStore::ObjectFor(uint32_t cluster, uint32_t resource, const ObjectFacts& facts, bool* created) {
  uint32_t id;
  const uint64_t hash = UidHash(cluster, facts.uid);
  const size_t slot = UidSlot(cluster, facts.uid, hash);
  *created = uid_slots_[slot] == 0;
  if (*created) {
    id = static_cast<uint32_t>(objects_.size());
    Object o;
    o.resource = resource;
    o.ns = strings_.Intern(facts.namespace_);
    o.name = strings_.Intern(facts.name);
    o.cluster = cluster;
    o.uid = facts.uid;
    objects_.push_back(std::move(o));
    FileUid(id, slot, hash);
    by_name_[{objects_[id].resource, objects_[id].ns, objects_[id].name, cluster}].push_back(id);
    by_resource_ns_[{objects_[id].resource, objects_[id].ns}].push_back(id);
    NoteCluster(cluster);
  } else {
    id = static_cast<uint32_t>(uid_slots_[slot]) - 1;
  }
  return id;
}

void StateStore::LinkObject(uint32_t id, const ObjectFacts& facts, const Version& v) {
  const Object& obj = objects_[id];
  // The newest version's links were filed when it was applied, and they
  // are never taken back: the same single owner (v.owner names the whole
  // reference) and the same labels (no key repeated, so the label set is
  // all of facts.labels) file nothing new. A Helm release is not in the
  // version: always filed.
  if (!obj.versions.empty() && facts.owners.size() <= 1 && facts.helm_release.empty() &&
      obj.versions.back().owner == v.owner && obj.versions.back().labels == v.labels &&
      facts.labels.size() == label_sets_[v.labels].size())
    return;
  const uint32_t cluster = obj.cluster;
  for (const auto& o : facts.owners) children_[ScopedKey(cluster, o.uid)].insert(id);
  for (const auto& [k, val] : facts.labels)
    if (k == "app.kubernetes.io/instance") instances_[{obj.ns, ScopedKey(cluster, val)}].insert(id);
  if (!facts.helm_release.empty()) instances_[{obj.ns, ScopedKey(cluster, facts.helm_release)}].insert(id);
}

uint32_t StateStore::InternLabels(const std::vector<std::pair<std::string, std::string>>& labels, uint32_t hint) {
  if (labels.empty()) return 0;
  LabelSet set;
  set.reserve(labels.size());
  for (const auto& [k, v] : labels) {
    // Key, then value: in one call's arguments the order is the compiler's
    // (gcc and clang differ), and string ids are in the snapshot's bytes.
    const uint32_t key = strings_.Intern(k);
    set.emplace_back(key, strings_.Intern(v));
  }
  std::sort(set.begin(), set.end());
  // One value per key (a JSON object may repeat a key).
  LabelSet unique;
  for (size_t i = 0; i < set.size(); ++i) {
    if (!unique.empty() && unique.back().first == set[i].first) unique.pop_back();
    unique.push_back(set[i]);
  }
  if (hint != 0 && label_sets_[hint] == unique) return hint;  // no key built, no map searched
  std::string key(reinterpret_cast<const char*>(unique.data()), unique.size() * sizeof(unique[0]));
  auto [it, inserted] = label_set_ids_.emplace(std::move(key), static_cast<uint32_t>(label_sets_.size()));
  if (inserted) label_sets_.push_back(std::move(unique));
  return it->second;
}

uint32_t StateStore::InternOwner(const std::vector<OwnerRef>& owners, uint32_t hint) {
  if (owners.empty()) return 0;
  // The controller if there is one (the last one marked), else the first.
  const OwnerRef* ref = &owners[0];
  for (const auto& o : owners)
    if (o.controller) ref = &o;
  if (hint != 0) {
    const OwnerLink& h = owner_refs_[hint];
    if (h.uid == ref->uid && strings_.Get(h.kind) == ref->kind && strings_.Get(h.name) == ref->name) return hint;
  }
  std::string key = ref->uid;
  key += '\0';
  key += ref->kind;
  key += '\0';
  key += ref->name;
  auto [it, inserted] = owner_ref_ids_.emplace(std::move(key), static_cast<uint32_t>(owner_refs_.size()));
  if (inserted) owner_refs_.push_back({strings_.Intern(ref->kind), strings_.Intern(ref->name), ref->uid});
  return it->second;
}

const std::vector<uint32_t>* StateStore::ServicesSelectingOn(uint32_t ns, uint32_t key, uint32_t value) const {
  auto it = services_by_selector_.find({ns, key, value});
  return it == services_by_selector_.end() ? nullptr : &it->second;
}

namespace {

// A Service without selector selects nothing.
bool Selects(const LabelSet& selector, const LabelSet& labels) {
  return !selector.empty() && std::includes(labels.begin(), labels.end(), selector.begin(), selector.end());
}

}  // namespace

std::vector<StateStore::OwnerStep> StateStore::Owners(uint32_t cluster, const Version& v, Micros at) const {
  std::vector<OwnerStep> chain;
  uint32_t ref = v.owner;
  for (int depth = 0; depth < 8 && ref != 0; ++depth) {
    OwnerStep step{&owner_ref(ref), nullptr};
    const int64_t id = FindUid(cluster, step.link->uid);
    if (id >= 0) step.version = VersionAt(static_cast<uint32_t>(id), at);
    chain.push_back(step);
    if (!step.version) break;
    ref = step.version->owner;
  }
  return chain;
}

std::vector<std::pair<uint32_t, const Version*>> StateStore::SelectingServices(uint32_t cluster, uint32_t ns,
                                                                              const LabelSet& labels,
                                                                              Micros at) const {
  std::vector<std::pair<uint32_t, const Version*>> out;
  if (labels.empty()) return out;
  // A Service that selects the pod has a non-empty selector within its
  // labels: it is filed under each of them.
  std::vector<uint32_t> candidates;
  for (const auto& [key, value] : labels)
    if (const auto* ids = ServicesSelectingOn(ns, key, value))
      candidates.insert(candidates.end(), ids->begin(), ids->end());
  std::sort(candidates.begin(), candidates.end());  // creation order
  candidates.erase(std::unique(candidates.begin(), candidates.end()), candidates.end());
  for (uint32_t id : candidates) {
    if (objects_[id].cluster != cluster) continue;  // filed under the namespace in every cluster
    const Version* v = VersionAt(id, at);
    if (!v || v->presence == Presence::kGone) continue;
    if (Selects(label_set(v->selector), labels)) out.emplace_back(id, v);
  }
  return out;
}

uint64_t StateStore::ServiceEpoch(uint32_t ns, Micros t) const {
  auto it = ns_epochs_.find(ns);
  if (it == ns_epochs_.end()) return 0;
  const auto& times = it->second.service_times;
  return static_cast<uint64_t>(std::upper_bound(times.begin(), times.end(), t) - times.begin());
}

uint64_t StateStore::late_generation(uint32_t ns) const {
  auto it = ns_epochs_.find(ns);
  // Both only grow: their sum moves when either does.
  return late_generation_ + (it == ns_epochs_.end() ? 0 : it->second.late_generation);
}

void StateStore::AddVersion(uint32_t id, const Version& v, const ObjectFacts* facts) {
  Object& o = objects_[id];
  max_time_ = std::max(max_time_, v.time);
  auto pos = std::upper_bound(o.versions.begin(), o.versions.end(), v, [](const Version& x, const Version& y) {
    return x.time != y.time ? x.time < y.time : x.index < y.index;
  });
  size_t k = static_cast<size_t>(pos - o.versions.begin());
  o.versions.insert(pos, v);
  if (o.resource != pods_id_) {
    if (o.ns == 0) {  // cluster-scoped
      if (v.time <= max_pod_time_) ++late_generation_;
      return;
    }
    NamespaceEpochs& e = ns_epochs_[o.ns];
    bool late = v.time <= e.max_pod_time;
    if (o.resource == services_id_) {
      auto at = std::upper_bound(e.service_times.begin(), e.service_times.end(), v.time);
      late |= at != e.service_times.end();
      e.service_times.insert(at, v.time);
      for (const auto& [key, value] : label_sets_[v.selector]) {
        auto& ids = services_by_selector_[{o.ns, key, value}];
        if (std::find(ids.begin(), ids.end(), id) == ids.end())
          ids.insert(std::upper_bound(ids.begin(), ids.end(), id), id);
      }
    }
    if (late) ++e.late_generation;
    return;
  }
  max_pod_time_ = std::max(max_pod_time_, v.time);
  Micros& ns_max = ns_epochs_[o.ns].max_pod_time;
  ns_max = std::max(ns_max, v.time);
  Object::PodFacts pf;
  if (facts) {
    pf.ips = facts->pod_ips;
    pf.service_account = strings_.Intern(facts->service_account);
    pf.node = strings_.Intern(facts->node_name);
    pf.holds_ip = v.presence != Presence::kGone && !facts->host_network &&
                  facts->phase != "Succeeded" && facts->phase != "Failed" && !pf.ips.empty();
  }
  o.pod.insert(o.pod.begin() + static_cast<long>(k), pf);
  // The newest version (the usual case) only moves the end of the history:
  // extend it. A version that lands earlier re-derives the history from
  // itself on; from the beginning, for a pod updated thousands of times
  // by several posters whose events interleave, was quadratic.
  if (k + 1 == o.versions.size()) {
    ExtendIntervals(id);
  } else {
    RecomputeIntervalsFrom(id, k);
  }
}

namespace {

// One version's effect on a pod's open intervals: each one whose address
// the version no longer holds closes at it (appended to *closed, in the
// order they were open), and each address it newly holds opens one
// (appended to *open, and to *opened when given).
void StepIntervals(uint32_t id, const Version& v, const std::vector<IpKey>& active,
                   std::vector<IpInterval>* open, std::vector<IpInterval>* closed,
                   std::vector<IpInterval>* opened = nullptr) {
  for (auto it = open->begin(); it != open->end();) {
    if (std::find(active.begin(), active.end(), it->ip) != active.end()) {
      ++it;
      continue;
    }
    it->end = v.time;
    it->end_index = v.index;
    closed->push_back(*it);
    it = open->erase(it);
  }
  for (const IpKey& ip : active) {
    // An address listed twice opens once.
    if (std::any_of(open->begin(), open->end(), [&](const IpInterval& x) { return x.ip == ip; })) continue;
    IpInterval iv;
    iv.ip = ip;
    iv.start = v.time;
    iv.pod = id;
    iv.start_index = v.index;
    open->push_back(iv);
    if (opened) opened->push_back(iv);
  }
}

// Pod id's copy of its interval iv in iv's address list (sorted by start),
// or the list's end. A pod opens an address once per version.
std::vector<IpInterval>::iterator Filed(std::vector<IpInterval>& vec, uint32_t id, const IpInterval& iv) {
  auto it = std::lower_bound(vec.begin(), vec.end(), iv.start,
                             [](const IpInterval& x, Micros s) { return x.start < s; });
  for (; it != vec.end() && it->start == iv.start; ++it)
    if (it->pod == id && it->start_index == iv.start_index) return it;
  return vec.end();
}

}  // namespace

void StateStore::ExtendIntervals(uint32_t id) {
  Object& o = objects_[id];
  // As RecomputeIntervals leaves them: the closed intervals in the order
  // they closed, then the open ones in the order they opened.
  size_t first_open = o.intervals.size();
  while (first_open > 0 && o.intervals[first_open - 1].end == kNever) --first_open;
  std::vector<IpInterval> open(o.intervals.begin() + static_cast<long>(first_open), o.intervals.end());
  o.intervals.resize(first_open);
  std::vector<IpInterval> opened;
  StepIntervals(id, o.versions.back(), HeldIps(o.pod.back()), &open, &o.intervals, &opened);
  // Close the newly closed ones in their addresses' lists too (sorted by
  // start; the end does not move them).
  for (size_t i = first_open; i < o.intervals.size(); ++i) {
    const IpInterval& iv = o.intervals[i];
    auto& vec = ip_index_.Intervals(iv.ip);
    if (auto it = Filed(vec, id, iv); it != vec.end()) {
      it->end = iv.end;
      it->end_index = iv.end_index;
    }
  }
  o.intervals.insert(o.intervals.end(), open.begin(), open.end());
  for (const IpInterval& iv : opened) IndexInterval(o, iv);
}

void StateStore::IndexInterval(Object& o, const IpInterval& iv) {
  auto& vec = ip_index_.Intervals(iv.ip);
  vec.insert(std::upper_bound(vec.begin(), vec.end(), iv.start,
                              [](Micros s, const IpInterval& x) { return s < x.start; }),
             iv);
  if (std::find(o.ips_ever.begin(), o.ips_ever.end(), iv.ip) == o.ips_ever.end()) o.ips_ever.push_back(iv.ip);
}

void StateStore::RecomputeIntervalsFrom(uint32_t id, size_t k) {
  Object& o = objects_[id];
  const Version& at = o.versions[k];
  auto before = [&](Micros t, uint64_t index) { return t != at.time ? t < at.time : index < at.index; };
  // A version with the new one's very key (the same entry twice) would
  // blur which steps come before it: derive everything.
  if (k == 0 || !before(o.versions[k - 1].time, o.versions[k - 1].index)) return RecomputeIntervals(id);
  // Intervals are kept closed in step order, then open: the ones closed by
  // a step before k are a prefix, and stay.
  size_t kept = 0;
  while (kept < o.intervals.size() && o.intervals[kept].end != kNever &&
         before(o.intervals[kept].end, o.intervals[kept].end_index))
    ++kept;
  // Of the rest, those opened before k were open when step k came: open
  // again, in the order they opened (by their opening step, then by their
  // place in its address list). Those opened at k or later go.
  std::vector<IpInterval> open;
  for (size_t i = kept; i < o.intervals.size(); ++i) {
    const IpInterval& iv = o.intervals[i];
    auto& vec = ip_index_.Intervals(iv.ip);
    if (auto it = Filed(vec, id, iv); it != vec.end()) vec.erase(it);
    if (!before(iv.start, iv.start_index)) continue;
    IpInterval again = iv;
    again.end = kNever;
    again.end_index = 0;
    open.push_back(again);
  }
  auto place = [&](const IpInterval& iv) {
    auto step = std::lower_bound(o.versions.begin(), o.versions.begin() + static_cast<long>(k), iv,
                                 [](const Version& v, const IpInterval& x) {
                                   return v.time != x.start ? v.time < x.start : v.index < x.start_index;
                                 });
    const auto& ips = HeldIps(o.pod[static_cast<size_t>(step - o.versions.begin())]);
    return std::find(ips.begin(), ips.end(), iv.ip) - ips.begin();
  };
  std::stable_sort(open.begin(), open.end(), [&](const IpInterval& x, const IpInterval& y) {
    if (x.start != y.start || x.start_index != y.start_index)
      return x.start != y.start ? x.start < y.start : x.start_index < y.start_index;
    return place(x) < place(y);
  });
  o.intervals.resize(kept);
  for (size_t j = k; j < o.versions.size(); ++j)
    StepIntervals(id, o.versions[j], HeldIps(o.pod[j]), &open, &o.intervals);
  o.intervals.insert(o.intervals.end(), open.begin(), open.end());
  for (size_t i = kept; i < o.intervals.size(); ++i) IndexInterval(o, o.intervals[i]);
}

void StateStore::RecomputeIntervals(uint32_t id) {
  Object& o = objects_[id];
  for (const auto& iv : o.intervals) {
    auto& vec = ip_index_.Intervals(iv.ip);
    vec.erase(std::remove_if(vec.begin(), vec.end(), [id](const IpInterval& x) { return x.pod == id; }),
              vec.end());
  }
  o.intervals.clear();
  std::vector<IpInterval> open;
  for (size_t k = 0; k < o.versions.size(); ++k)
    StepIntervals(id, o.versions[k], HeldIps(o.pod[k]), &open, &o.intervals);
  o.intervals.insert(o.intervals.end(), open.begin(), open.end());
  for (const auto& iv : o.intervals) IndexInterval(o, iv);
}

std::vector<uint32_t> StateStore::Objects(uint32_t resource, uint32_t ns, bool any_ns) const {
  std::vector<uint32_t> out;
  if (resource == 0 && any_ns) {
    out.resize(objects_.size());
    for (uint32_t i = 0; i < out.size(); ++i) out[i] = i;
    return out;
  }
  if (resource != 0 && !any_ns) {  // one (resource, namespace): a lookup, not a scan
    auto it = by_resource_ns_.find({resource, ns});
    if (it != by_resource_ns_.end()) out = it->second;
    return out;
  }
  auto from = resource != 0 ? by_resource_ns_.lower_bound({resource, 0}) : by_resource_ns_.begin();
  for (auto it = from; it != by_resource_ns_.end(); ++it) {
    const auto& [key, ids] = *it;
    if (resource != 0 && key.first != resource) break;
    if (!any_ns && key.second != ns) continue;
    out.insert(out.end(), ids.begin(), ids.end());
  }
  return out;
}

int64_t StateStore::FindUid(uint32_t cluster, std::string_view uid) const {
  const uint64_t slot = uid_slots_[UidSlot(cluster, uid, UidHash(cluster, uid))];
  return slot == 0 ? int64_t{-1} : static_cast<int64_t>(static_cast<uint32_t>(slot) - 1);
}

std::vector<uint32_t> StateStore::ByName(uint32_t cluster, uint32_t resource, uint32_t ns, uint32_t name) const {
  auto it = by_name_.find({resource, ns, name, cluster});
  if (it == by_name_.end()) return {};
  return it->second;
}

std::vector<uint32_t> StateStore::Children(uint32_t cluster, std::string_view owner_uid) const {
  auto it = children_.find(ScopedKey(cluster, owner_uid));
  if (it == children_.end()) return {};
  std::vector<uint32_t> out(it->second.begin(), it->second.end());
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<uint32_t> StateStore::Instance(uint32_t cluster, uint32_t ns, std::string_view release) const {
  auto it = instances_.find({ns, ScopedKey(cluster, release)});
  if (it == instances_.end()) return {};
  std::vector<uint32_t> out(it->second.begin(), it->second.end());
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace annals::state

namespace annals::state {

// ---------------------------------------------------------------------------
// Hot and cold objects.

namespace {

size_t BytesOf(const Object& o) {
  size_t n = sizeof(Object) + o.uid.capacity() + o.versions.capacity() * sizeof(Version) +
             o.intervals.capacity() * sizeof(IpInterval) + o.ips_ever.capacity() * sizeof(IpKey) +
             o.pod.capacity() * sizeof(Object::PodFacts);
  for (const auto& pf : o.pod) n += pf.ips.capacity() * sizeof(IpKey);
  return n + 64;  // the cache's node
}

}  // namespace

void StateStore::set_cold(ColdStore* cold, Micros after, size_t cache_bytes) {
  std::unique_lock lock(mu_);
  cold_ = cold;
  cold_after_ = after;
  cache_budget_ = cache_bytes;
}

Micros StateStore::max_time() const {
  std::shared_lock lock(mu_);
  return max_time_;
}

std::vector<uint64_t> StateStore::LiveVersionIndexes() const {
  std::shared_lock lock(mu_);
  std::vector<uint64_t> out;
  for (uint32_t id = 0; id < objects_.size(); ++id) {
    const Version* v = VersionAt(id, std::numeric_limits<Micros>::max());
    if (v && v->presence != Presence::kGone) out.push_back(v->index);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

const Version* StateStore::VersionAt(uint32_t id, Micros t) const {
  const Object& o = objects_[id];
  if (!o.cold) return o.At(t);
  if (t < o.first_time) return nullptr;
  if (t >= o.last.time) return &o.last;  // the last version at or before t: it is the last of all
  return Loaded(id).At(t);
}

void StateStore::MarkDamaged(const std::string& why) const {
  MutexLock l(&damage_mu_);
  if (damage_.empty()) damage_ = why;
  damaged_.store(true, std::memory_order_release);
}

std::string StateStore::damage() const {
  MutexLock l(&damage_mu_);
  return damage_;
}

const Object& StateStore::Loaded(uint32_t id) const {
  const Object& stub = objects_[id];
  if (const Object* o = std::atomic_ref(stub.loaded).load(std::memory_order_acquire)) return *o;
  CacheShard& c = ShardOf(id);
  {
    MutexLock l(&c.mu);
    auto it = c.map.find(id);
    if (it != c.map.end()) return *it->second;
  }
  // Read outside the cache's lock: two readers may read the same body; the
  // first one cached is kept.
  auto body = cold_ ? cold_->Get(id, stub.cold) : StatusOr<std::string>(FailedPreconditionError("no cold store"));
  auto o = std::make_unique<Object>();
  Status s = body.ok() ? DecodeObject(*body, o.get()) : body.status();
  if (!s.ok() && s.code() == StatusCode::kInvalidArgument)
    s = DataLossError("cold object " + std::to_string(id) + "@" + std::to_string(stub.cold) + ": " + s.message());
  if (s.ok() && (o->uid != stub.uid || o->resource != stub.resource || o->cluster != stub.cluster || o->versions.empty() ||
                 o->versions.front().time != stub.first_time || o->versions.back().index != stub.last.index))
    s = DataLossError("cold object " + std::to_string(id) + " is not the one the projection names");
  if (!s.ok()) {
    MarkDamaged(s.message());
    return stub;  // no history: answers lack it until the rebuild
  }
  MutexLock l(&c.mu);
  auto [it, inserted] = c.map.emplace(id, std::move(o));
  if (inserted) {
    std::atomic_ref(stub.loaded).store(it->second.get(), std::memory_order_release);
    c.bytes += BytesOf(*it->second);
    c.order.push_back(id);
    ++c.loads;
    if (c.bytes > cache_budget_ / kCacheShards) over_budget_.store(true, std::memory_order_relaxed);
  }
  return *it->second;
}

void StateStore::Thaw(uint32_t id) {
  Object& o = objects_[id];
  if (!o.cold) return;
  const Object& body = Loaded(id);
  std::unique_ptr<Object> back;
  {
    CacheShard& c = ShardOf(id);
    MutexLock l(&c.mu);
    auto it = c.map.find(id);
    if (it != c.map.end()) {
      c.bytes -= std::min(c.bytes, BytesOf(*it->second));
      back = std::move(it->second);
      c.map.erase(it);
    }
    o.loaded = nullptr;
  }
  if (&body == &o || !back) {  // unreadable (damaged): hot with no history until the rebuild
    o.cold = 0;
    --cold_count_;
    return;
  }
  garbage_.emplace_back(id, o.cold);
  --cold_count_;
  o = std::move(*back);
  o.cold = 0;
}

void StateStore::Freeze(uint32_t id, uint64_t generation) {
  Object& o = objects_[id];
  cold_->Put(id, generation, EncodeObject(o));
  auto body = std::make_unique<Object>(std::move(o));
  Object stub;
  stub.resource = body->resource;
  stub.ns = body->ns;
  stub.name = body->name;
  stub.cluster = body->cluster;
  stub.uid = body->uid;
  stub.cold = generation;
  stub.first_time = body->versions.front().time;
  stub.last = body->versions.back();
  o = std::move(stub);
  ++cold_count_;
  frozen_pending_ = true;
  // Readers find it in the cache until it is committed (and trimmed).
  CacheShard& c = ShardOf(id);
  MutexLock l(&c.mu);
  c.bytes += BytesOf(*body);
  o.loaded = body.get();
  c.map.insert_or_assign(id, std::move(body));
  c.order.push_back(id);
  if (c.bytes > cache_budget_ / kCacheShards) over_budget_.store(true, std::memory_order_relaxed);
}

void StateStore::NoteGone(uint32_t id) {
  if (!cold_) return;
  const Object& o = objects_[id];
  if (o.cold || o.versions.empty() || o.versions.back().presence != Presence::kGone) return;
  gone_.emplace_back(o.versions.back().time, id);
  std::push_heap(gone_.begin(), gone_.end(), std::greater<>());
}

void StateStore::FreezeOld(uint64_t index) {
  if (!cold_ || max_time_ == std::numeric_limits<Micros>::min()) return;
  const Micros horizon = max_time_ - cold_after_;
  while (!gone_.empty() && gone_.front().first < horizon) {
    std::pop_heap(gone_.begin(), gone_.end(), std::greater<>());
    const auto [t, id] = gone_.back();
    gone_.pop_back();
    const Object& o = objects_[id];
    // Stale entries: brought back since, or no longer ending (a later
    // version), or ending at another time (filed again then).
    if (o.cold || o.versions.empty() || o.versions.back().presence != Presence::kGone ||
        o.versions.back().time != t)
      continue;
    Freeze(id, index + 1);  // generation: entries [0, index] applied; never 0
  }
}

Status StateStore::CommitCold() {
  if (!cold_) return OkStatus();
  if (!frozen_pending_ && !over_budget_.load(std::memory_order_relaxed)) return OkStatus();
  std::unique_lock lock(mu_);
  if (frozen_pending_) {
    RETURN_IF_ERROR(cold_->Commit());
    frozen_pending_ = false;
  }
  TrimCacheLocked();
  return OkStatus();
}

void StateStore::TrimCacheLocked() {
  over_budget_.store(false, std::memory_order_relaxed);
  const size_t share = cache_budget_ / kCacheShards;
  for (CacheShard& c : cache_) {
    MutexLock l(&c.mu);
    size_t k = 0;
    while (c.bytes > share && k < c.order.size()) {
      const uint32_t id = c.order[k++];
      auto it = c.map.find(id);
      if (it == c.map.end()) continue;
      c.bytes -= std::min(c.bytes, BytesOf(*it->second));
      objects_[id].loaded = nullptr;
      c.map.erase(it);
    }
    c.order.erase(c.order.begin(), c.order.begin() + static_cast<long>(k));
    // The order list names each cached object at least once; rebuild it
    // when objects brought back left it much longer than the cache.
    if (c.order.size() > 2 * c.map.size() + 64) {
      std::vector<uint32_t> order;
      std::unordered_set<uint32_t> seen;
      for (uint32_t id : c.order)
        if (c.map.count(id) && seen.insert(id).second) order.push_back(id);
      c.order = std::move(order);
    }
  }
}

Status StateStore::SyncCold(std::vector<std::pair<uint32_t, uint64_t>>* garbage) {
  garbage->clear();
  if (!cold_) return OkStatus();
  std::unique_lock lock(mu_);
  RETURN_IF_ERROR(cold_->Sync());
  frozen_pending_ = false;
  garbage->swap(garbage_);
  return OkStatus();
}

void StateStore::DeleteCold(const std::vector<std::pair<uint32_t, uint64_t>>& garbage) {
  if (!cold_ || garbage.empty()) return;
  std::unique_lock lock(mu_);
  for (const auto& [id, gen] : garbage) cold_->Delete(id, gen);
  frozen_pending_ = true;  // committed with the next bodies
}

void StateStore::KeepCold(const std::vector<std::pair<uint32_t, uint64_t>>& garbage) {
  std::unique_lock lock(mu_);
  garbage_.insert(garbage_.end(), garbage.begin(), garbage.end());
}

Status StateStore::Reset() {
  StateStore fresh;
  std::unique_lock lock(mu_);
  if (cold_) RETURN_IF_ERROR(cold_->Wipe());
  AdoptLocked(fresh);
  garbage_.clear();
  frozen_pending_ = false;
  MutexLock l(&damage_mu_);
  damage_.clear();
  damaged_.store(false, std::memory_order_release);
  return OkStatus();
}

Status StateStore::VerifyCold(const std::atomic<bool>* stop) const {
  if (!cold_) return OkStatus();
  Status s = cold_->Verify(stop);
  if (s.code() == StatusCode::kDataLoss) MarkDamaged(s.message());
  return s;
}

StateStore::ColdStats StateStore::cold_stats() const {
  ColdStats st;
  st.cold = cold_count_.load(std::memory_order_relaxed);
  for (CacheShard& c : cache_) {
    MutexLock l(&c.mu);
    st.cached_bytes += c.bytes;
    st.loads += c.loads;
  }
  return st;
}

}  // namespace annals::state
