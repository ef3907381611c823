#include "state/questions.h"

#include <simdjson.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "kube/resources.h"
#include "common/bytes.h"
#include "ingest/json_lines.h"
#include "json/json_parse.h"
#include "json/json_write.h"
#include "ledger/entry.h"
#include "merkle/merkle.h"

namespace annals::state {

using nlohmann::json;

namespace {

constexpr uint32_t kUnknown = 0xffffffffu;

json Parse(std::string_view s) { return json::parse(s, nullptr, false); }

std::string Time(Micros t) { return FormatRfc3339(t); }

// A Service without selector selects nothing.
bool Selects(const LabelSet& selector, const LabelSet& labels) {
  return !selector.empty() && std::includes(labels.begin(), labels.end(), selector.begin(), selector.end());
}

}  // namespace

json WhatChanged(const json& before, const json& after) {
  json kept = json::array();
  for (auto& op : json::diff(before, after)) {
    std::string path = op.value("path", "");
    if (path.starts_with("/metadata/resourceVersion") || path.starts_with("/metadata/managedFields"))
      continue;
    kept.push_back(op);
  }
  return kept;
}

StatusOr<LabelSelector> LabelSelector::Parse(std::string_view s) {
  LabelSelector sel;
  while (!s.empty()) {
    auto comma = s.find(',');
    std::string_view term = s.substr(0, comma);
    s = comma == std::string_view::npos ? std::string_view() : s.substr(comma + 1);
    while (!term.empty() && term.front() == ' ') term.remove_prefix(1);
    while (!term.empty() && term.back() == ' ') term.remove_suffix(1);
    if (term.empty()) continue;
    Req r;
    if (auto p = term.find("!="); p != std::string_view::npos) {
      r = {std::string(term.substr(0, p)), std::string(term.substr(p + 2)), Req::kNe};
    } else if (auto p2 = term.find("=="); p2 != std::string_view::npos) {
      r = {std::string(term.substr(0, p2)), std::string(term.substr(p2 + 2)), Req::kEq};
    } else if (auto p3 = term.find('='); p3 != std::string_view::npos) {
      r = {std::string(term.substr(0, p3)), std::string(term.substr(p3 + 1)), Req::kEq};
    } else if (term.front() == '!') {
      r = {std::string(term.substr(1)), "", Req::kNotExists};
    } else {
      r = {std::string(term), "", Req::kExists};
    }
    if (r.key.empty()) return InvalidArgumentError("bad label selector term: " + std::string(term));
    sel.reqs_.push_back(std::move(r));
  }
  return sel;
}

bool LabelSelector::Req::Holds(const std::string* v) const {
  switch (op) {
    case kEq: return v && *v == value;
    case kNe: return !v || *v != value;
    case kExists: return v != nullptr;
    case kNotExists: return v == nullptr;
  }
  return false;
}

bool LabelSelector::Matches(const LabelSet& labels, const Strings& strings) const {
  for (const auto& r : reqs_) {
    const std::string* value = nullptr;
    for (const auto& [k, v] : labels) {
      if (strings.Get(k) == r.key) {
        value = &strings.Get(v);
        break;
      }
    }
    if (!r.Holds(value)) return false;
  }
  return true;
}

bool LabelSelector::Matches(const json& labels) const {
  for (const auto& r : reqs_) {
    std::string value;
    const std::string* found = nullptr;
    if (labels.is_object()) {
      auto it = labels.find(r.key);
      if (it != labels.end() && it->is_string()) {
        value = it->get<std::string>();
        found = &value;
      }
    }
    if (!r.Holds(found)) return false;
  }
  return true;
}

StatusOr<std::string> Questions::PayloadAt(uint64_t index) const {
  ASSIGN_OR_RETURN(auto e, ledger_->ReadEvent(index));
  return std::move(e.payload);
}

StatusOr<json> Questions::EventAt(uint64_t index) const {
  ASSIGN_OR_RETURN(std::string payload, PayloadAt(index));
  json j = Parse(payload);
  if (j.is_discarded()) return DataLossError("entry " + std::to_string(index) + " is not JSON");
  return j;
}

StatusOr<json> Questions::BodyAt(uint64_t index) const {
  ASSIGN_OR_RETURN(auto e, ledger_->ReadEvent(index));
  std::string_view obj = ObjectOfEntry(e.meta, e.payload);
  if (obj.empty()) return json();  // gone by a Status answer: no body
  json j = Parse(obj);
  if (j.is_discarded()) return DataLossError("entry " + std::to_string(index) + ": bad responseObject");
  return j;
}

StatusOr<std::string> Questions::State(const StateQuery& q, std::vector<uint64_t>* evidence) const {
  LabelSelector sel;
  if (!q.selector.empty()) {
    ASSIGN_OR_RETURN(sel, LabelSelector::Parse(q.selector));
  }
  std::shared_lock lock(store_->mutex());
  const Strings& S = store_->strings();
  uint32_t resource = 0, ns = 0;
  bool none = false;
  if (!q.kind.empty()) {
    resource = S.Find(kube::ResourceFor(q.kind));
    none |= resource == kUnknown;
  }
  if (!q.namespace_.empty()) {
    ns = S.Find(q.namespace_);
    none |= ns == kUnknown;
  }
  std::string out = "{\"at\":\"" + Time(q.at) + "\",\"objects\":[";
  size_t count = 0;
  if (!none) {
    // What existed at T (and matches the selector, from the projected
    // labels), then sorted: most objects ever seen are gone by T.
    std::vector<std::pair<uint32_t, const Version*>> live;
    for (uint32_t id : store_->Objects(resource, ns, q.namespace_.empty())) {
      const Version* v = store_->object(id).At(q.at);
      if (!v || v->presence == Presence::kGone) continue;
      if (!sel.empty() && !sel.Matches(store_->label_set(v->labels), S)) continue;
      live.emplace_back(id, v);
    }
    std::sort(live.begin(), live.end(), [&](const auto& a, const auto& b) {
      const Object& x = store_->object(a.first);
      const Object& y = store_->object(b.first);
      return std::tie(S.Get(x.resource), S.Get(x.ns), S.Get(x.name), a.first) <
             std::tie(S.Get(y.resource), S.Get(y.ns), S.Get(y.name), b.first);
    });
    std::string raw;
    for (const auto& [id, v] : live) {
      const Object& o = store_->object(id);
      auto entry = ledger_->ReadEntry(v->index);
      if (!entry.ok()) return entry.status();
      auto d = ledger::DecodeEntry(*entry);
      if (!d.ok()) return d.status();
      ASSIGN_OR_RETURN(std::string_view payload, ledger_->PayloadOf(*d, &raw));
      std::string_view body = ObjectOfEntry(d->meta, payload);
      if (count++) out += ',';
      out += "{\"resource\":";
      json_util::AppendJsonString(&out, S.Get(o.resource));
      out += ",\"namespace\":";
      json_util::AppendJsonString(&out, S.Get(o.ns));
      out += ",\"name\":";
      json_util::AppendJsonString(&out, S.Get(o.name));
      out += ",\"uid\":";
      json_util::AppendJsonString(&out, o.uid);
      out += ",\"state\":\"" + std::string(PresenceName(v->presence)) + "\",\"since\":\"" +
             Time(v->time) + "\",\"index\":" + std::to_string(v->index) + ",\"object\":";
      out.append(body.empty() ? std::string_view("null") : body);
      out += '}';
      if (evidence) evidence->push_back(v->index);
    }
  }
  out += "],\"count\":" + std::to_string(count) + ",\"applied\":" +
         std::to_string(store_->applied()) + "}";
  return out;
}

std::vector<Questions::OwnerStep> Questions::Owners(const Version& v, Micros at) const {
  std::vector<OwnerStep> chain;
  uint32_t ref = v.owner;
  for (int depth = 0; depth < 8 && ref != 0; ++depth) {
    OwnerStep step{&store_->owner_ref(ref), nullptr};
    const int64_t id = store_->FindUid(step.link->uid);
    if (id >= 0) step.version = store_->object(static_cast<uint32_t>(id)).At(at);
    chain.push_back(step);
    if (!step.version) break;
    ref = step.version->owner;
  }
  return chain;
}

json Questions::OwnerChain(const Version& v, Micros at, std::vector<uint64_t>* evidence) const {
  json chain = json::array();
  const Strings& S = store_->strings();
  for (const OwnerStep& step : Owners(v, at)) {
    json link{{"kind", S.Get(step.link->kind)}, {"name", S.Get(step.link->name)}, {"uid", step.link->uid}};
    if (step.version) {
      link["index"] = step.version->index;
      if (evidence) evidence->push_back(step.version->index);
    }
    chain.push_back(std::move(link));
  }
  return chain;
}

std::vector<std::pair<uint32_t, const Version*>> Questions::SelectingServices(uint32_t ns, const LabelSet& labels,
                                                                             Micros at) const {
  std::vector<std::pair<uint32_t, const Version*>> out;
  if (labels.empty()) return out;
  // A Service that selects the pod has a non-empty selector within its
  // labels: it is filed under each of them.
  std::vector<uint32_t> candidates;
  for (const auto& [key, value] : labels)
    if (const auto* ids = store_->ServicesSelectingOn(ns, key, value))
      candidates.insert(candidates.end(), ids->begin(), ids->end());
  std::sort(candidates.begin(), candidates.end());  // creation order
  candidates.erase(std::unique(candidates.begin(), candidates.end()), candidates.end());
  for (uint32_t id : candidates) {
    const Version* v = store_->object(id).At(at);
    if (!v || v->presence == Presence::kGone) continue;
    if (Selects(store_->label_set(v->selector), labels)) out.emplace_back(id, v);
  }
  return out;
}

StatusOr<json> Questions::WhoIs(std::string_view ip_text, Micros at, json* nearest) const {
  auto ip = ParseIp(ip_text);
  if (!ip) return InvalidArgumentError("not an IP address: " + std::string(ip_text));
  std::shared_lock lock(store_->mutex());
  const IpInterval *before = nullptr, *after = nullptr;
  const IpInterval* iv = store_->PodByIp(*ip, at, &before, &after);
  auto describe = [&](const IpInterval* x) -> json {
    if (!x) return nullptr;
    const Object& o = store_->object(x->pod);
    json j{{"namespace", store_->strings().Get(o.ns)},
           {"name", store_->strings().Get(o.name)},
           {"uid", o.uid},
           {"from", Time(x->start)},
           {"from_index", x->start_index}};
    if (x->end != kNever) {
      j["to"] = Time(x->end);
      j["to_index"] = x->end_index;
    } else {
      j["to"] = nullptr;
    }
    return j;
  };
  if (!iv) {
    if (nearest) *nearest = json{{"before", describe(before)}, {"after", describe(after)}};
    return NotFoundError("no pod held " + std::string(ip_text) + " at " + Time(at));
  }
  const Object& pod = store_->object(iv->pod);
  const Version* v = pod.At(at);
  if (!v) return InternalError("interval without version");
  std::vector<uint64_t> evidence{iv->start_index, v->index};
  ASSIGN_OR_RETURN(json body, BodyAt(v->index));
  json md = body.is_object() ? body.value("metadata", json::object()) : json::object();
  json spec = body.is_object() ? body.value("spec", json::object()) : json::object();
  json labels = md.value("labels", json::object());
  json j;
  j["ip"] = FormatIp(*ip);
  j["at"] = Time(at);
  j["pod"] = {{"namespace", store_->strings().Get(pod.ns)},
              {"name", store_->strings().Get(pod.name)},
              {"uid", pod.uid},
              {"labels", labels},
              {"service_account", spec.value("serviceAccountName", spec.value("serviceAccount", ""))},
              {"node", spec.value("nodeName", "")},
              {"phase", body.is_object() && body.contains("status") ? body["status"].value("phase", "") : ""},
              {"state", PresenceName(v->presence)}};
  j["owners"] = OwnerChain(*v, at, &evidence);
  json services = json::array();
  for (const auto& [id, sv] : SelectingServices(pod.ns, store_->label_set(v->labels), at)) {
    const Object& o = store_->object(id);
    services.push_back({{"name", store_->strings().Get(o.name)}, {"uid", o.uid}, {"index", sv->index}});
    evidence.push_back(sv->index);
  }
  j["services"] = std::move(services);
  j["interval"] = describe(iv);
  j["version_index"] = v->index;
  std::sort(evidence.begin(), evidence.end());
  evidence.erase(std::unique(evidence.begin(), evidence.end()), evidence.end());
  j["evidence"] = evidence;
  return j;
}

// {"namespace","pod","uid","owner":{"kind","name","uid"[,"index"]}|null,
//  "labels":{...},"service_account","index","services":[names]}: the top
// owner as of the version's time, the Services as of the flow's.
std::string Questions::RenderWorkload(uint32_t pod, const Version& v, Micros t) const {
  const Strings& S = store_->strings();
  const Object& o = store_->object(pod);
  auto k = static_cast<size_t>(&v - o.versions.data());
  std::string w = "{\"namespace\":";
  json_util::AppendJsonString(&w, S.Get(o.ns));
  w += ",\"pod\":";
  json_util::AppendJsonString(&w, S.Get(o.name));
  w += ",\"uid\":";
  json_util::AppendJsonString(&w, o.uid);
  w += ",\"owner\":";
  const std::vector<OwnerStep> chain = Owners(v, v.time);
  if (chain.empty()) {
    w += "null";
  } else {
    const OwnerStep& top = chain.back();
    w += "{\"kind\":";
    json_util::AppendJsonString(&w, S.Get(top.link->kind));
    w += ",\"name\":";
    json_util::AppendJsonString(&w, S.Get(top.link->name));
    w += ",\"uid\":";
    json_util::AppendJsonString(&w, top.link->uid);
    if (top.version) w += ",\"index\":" + std::to_string(top.version->index);
    w += '}';
  }
  // Labels in key order.
  const LabelSet& labels = store_->label_set(v.labels);
  std::vector<std::pair<std::string_view, std::string_view>> sorted;
  for (const auto& [key, val] : labels) sorted.emplace_back(S.Get(key), S.Get(val));
  std::sort(sorted.begin(), sorted.end());
  w += ",\"labels\":{";
  for (size_t i = 0; i < sorted.size(); ++i) {
    if (i) w += ',';
    json_util::AppendJsonString(&w, sorted[i].first);
    w += ':';
    json_util::AppendJsonString(&w, sorted[i].second);
  }
  w += "},\"service_account\":";
  json_util::AppendJsonString(&w, k < o.pod.size() ? S.Get(o.pod[k].service_account) : std::string());
  w += ",\"index\":" + std::to_string(v.index) + ",\"services\":[";
  bool first = true;
  for (const auto& [id, sv] : SelectingServices(o.ns, labels, t)) {
    if (!first) w += ',';
    first = false;
    json_util::AppendJsonString(&w, S.Get(store_->object(id).name));
  }
  w += "]}";
  return w;
}

void Questions::FindIntervals(FlowEnd* e) const {
  e->intervals = e->ip ? store_->IpIntervals(*e->ip) : nullptr;
}

void Questions::FindHolder(FlowEnd* e, Micros t) const {
  e->held = IpIndex::LookupIn(e->intervals, t, nullptr, nullptr);
}

void Questions::FindVersion(FlowEnd* e, Micros t) const {
  e->version = e->held ? store_->object(e->held->pod).At(t) : nullptr;
  if (e->version) KeyCache(e, t);
}

void Questions::FindVersions(Flow* batch, size_t n) const {
  // Object::At as a branch-free upper bound: keep the last version whose
  // time is at or before t in [from, from + left) while left > 1.
  bool more = false;
  for (size_t k = 0; k < n; ++k)
    for (FlowEnd& e : batch[k].end) {
      e.versions_left = 0;
      if (!e.held) continue;
      const auto& versions = store_->object(e.held->pod).versions;
      e.versions_from = versions.data();
      e.versions_left = versions.size();
      if (e.versions_left > 0) __builtin_prefetch(e.versions_from + e.versions_left / 2);
      more |= e.versions_left > 1;
    }
  while (more) {
    more = false;
    for (size_t k = 0; k < n; ++k)
      for (FlowEnd& e : batch[k].end) {
        if (e.versions_left <= 1) continue;
        const size_t half = e.versions_left / 2;
        if (e.versions_from[half].time <= batch[k].time) e.versions_from += half;
        e.versions_left -= half;
        __builtin_prefetch(e.versions_from + e.versions_left / 2);
        more |= e.versions_left > 1;
      }
  }
  for (size_t k = 0; k < n; ++k)
    for (FlowEnd& e : batch[k].end) {
      e.version = e.versions_left > 0 && e.versions_from->time <= batch[k].time ? e.versions_from : nullptr;
      if (e.version) KeyCache(&e, batch[k].time);
    }
}

void Questions::KeyCache(FlowEnd* e, Micros t) const {
  const uint32_t ns = store_->object(e->held->pod).ns;
  e->epoch = store_->ServiceEpoch(ns, t);
  e->generation = store_->late_generation(ns);
  const uint64_t hash = (e->version->index * 0x9E3779B97F4A7C15ull) ^ (e->epoch * 0xC2B2AE3D27D4EB4Full);
  e->set = static_cast<size_t>(hash >> 40) & (cache_sets_ - 1);  // a power of two
  e->tag = static_cast<uint32_t>(hash) | 1;  // never 0, the empty way
}

int Questions::CachedWay(const FlowEnd& e) const {
  const CacheSet& set = cache_[e.set];
  for (size_t way = 0; way < kCacheWays; ++way) {
    if (set.tag[way].load(std::memory_order_relaxed) != e.tag) continue;
    const CacheEntry* c = set.entry[way].load(std::memory_order_relaxed);
    if (c->index == e.version->index && c->epoch == e.epoch && c->generation == e.generation)
      return static_cast<int>(way);
  }
  return -1;
}

const Questions::CacheEntry* Questions::PeekCache(const FlowEnd& e) const {
  const CacheSet& set = cache_[e.set];
  for (size_t way = 0; way < kCacheWays; ++way)
    if (set.tag[way].load(std::memory_order_relaxed) == e.tag) return set.entry[way].load(std::memory_order_relaxed);
  return nullptr;
}

Questions::CacheEntry* Questions::CacheEntry::Make(const FlowEnd& e, std::string_view text) {
  void* p = ::operator new(sizeof(CacheEntry) + text.size());
  auto* c = new (p) CacheEntry{e.version->index, e.epoch, e.generation, text.size()};
  std::memcpy(static_cast<char*>(p) + sizeof(CacheEntry), text.data(), text.size());
  return c;
}

void Questions::CacheEntry::Free(const CacheEntry* entry) { ::operator delete(const_cast<CacheEntry*>(entry)); }

Questions::~Questions() {
  if (!cache_) return;
  for (size_t i = 0; i < cache_sets_; ++i)
    for (auto& c : cache_[i].entry)
      if (const CacheEntry* entry = c.load(std::memory_order_relaxed)) CacheEntry::Free(entry);
}

// Holds a render-cache set's spin lock. Spins briefly, then yields (a
// holder that lost its core must get it back before it can let go).
class Questions::SetLock {
 public:
  explicit SetLock(std::atomic<uint8_t>& lock) : lock_(lock) {
    for (int spins = 0; lock_.exchange(1, std::memory_order_acquire) != 0;) {
      while (lock_.load(std::memory_order_relaxed) != 0) {
        if (++spins < 64) {
#if defined(__x86_64__) || defined(__i386__)
          __builtin_ia32_pause();
#endif
        } else {
          std::this_thread::yield();
        }
      }
    }
  }
  ~SetLock() { lock_.store(0, std::memory_order_release); }
  SetLock(const SetLock&) = delete;
  SetLock& operator=(const SetLock&) = delete;

 private:
  std::atomic<uint8_t>& lock_;
};

void Questions::InitCache() const {
  std::call_once(cache_once_, [this] { cache_ = std::make_unique<CacheSet[]>(cache_sets_); });
}

void Questions::CollectWorkload(FlowEnd* e, Micros t, std::string* scratch) const {
  e->text_at = scratch->size();
  if (!e->version) {
    *scratch += "null";
    e->text_size = 4;
    return;
  }
  CacheSet& set = cache_[e->set];
  {
    SetLock held(set.lock);
    if (int way = CachedWay(*e); way >= 0) {
      const CacheEntry* c = set.entry[way].load(std::memory_order_relaxed);
      scratch->append(c->text(), c->size);
      e->text_size = c->size;
      return;
    }
  }
  std::string w = RenderWorkload(e->held->pod, *e->version, t);
  *scratch += w;
  e->text_size = w.size();
  CacheEntry* made = CacheEntry::Make(*e, w);
  const CacheEntry* drop = made;  // if another thread rendered it meanwhile
  {
    SetLock held(set.lock);
    if (CachedWay(*e) < 0) {
      drop = set.entry[kCacheWays - 1].load(std::memory_order_relaxed);  // the oldest
      for (size_t way = kCacheWays - 1; way > 0; --way) {
        set.tag[way].store(set.tag[way - 1].load(std::memory_order_relaxed), std::memory_order_relaxed);
        set.entry[way].store(set.entry[way - 1].load(std::memory_order_relaxed), std::memory_order_relaxed);
      }
      set.tag[0].store(e->tag, std::memory_order_relaxed);
      set.entry[0].store(made, std::memory_order_relaxed);
    }
  }
  // Unlinked under the lock, and readers copy only under it: no one holds it.
  if (drop) CacheEntry::Free(drop);
}

Status Questions::ParseFlow(std::string_view line, bool padded, Flow* f) {
  simdjson::dom::parser& parser = json_util::JsonParser();
  simdjson::dom::element doc;
  if (parser.parse(line.data(), line.size(), !padded).get(doc) != simdjson::SUCCESS || !doc.is_object())
    return InvalidArgumentError("flow is not a JSON object");
  std::string_view t, src, dst;
  simdjson::dom::element flow;
  if (doc["flow"].get(flow) == simdjson::SUCCESS && flow.is_object()) {
    if (flow["time"].get_string().get(t)) t = {};
    simdjson::dom::element ip;
    if (flow["IP"].get(ip) == simdjson::SUCCESS) {
      if (ip["source"].get_string().get(src)) src = {};
      if (ip["destination"].get_string().get(dst)) dst = {};
    }
  } else {
    if (doc["time"].get_string().get(t)) t = {};
    if (doc["src_ip"].get_string().get(src)) src = {};
    if (doc["dst_ip"].get_string().get(dst)) dst = {};
  }
  auto when = ParseRfc3339(t);
  if (!when) return InvalidArgumentError("flow has no RFC 3339 time");
  f->time = *when;
  f->end[0] = FlowEnd{ParseIp(src)};
  f->end[1] = FlowEnd{ParseIp(dst)};
  // The line as it came, without its closing brace (it is an object: the
  // last non-space byte is '}').
  size_t end = line.find_last_not_of(" \t\r\n");
  f->head = line.substr(0, end);
  size_t last = f->head.find_last_not_of(" \t\r\n");
  f->empty_object = last != std::string_view::npos && f->head[last] == '{';
  return OkStatus();
}

void Questions::AppendFlow(const Flow& f, std::string_view scratch, std::string* out) const {
  out->append(f.head);
  *out += f.empty_object ? "\"src_workload\":" : ",\"src_workload\":";
  out->append(scratch.substr(f.end[0].text_at, f.end[0].text_size));
  *out += ",\"dst_workload\":";
  out->append(scratch.substr(f.end[1].text_at, f.end[1].text_size));
  *out += "}\n";
}

StatusOr<std::string> Questions::EnrichFlow(std::string_view line) const {
  Flow f;
  RETURN_IF_ERROR(ParseFlow(line, /*padded=*/false, &f));
  InitCache();
  std::string scratch, out;
  out.reserve(line.size() + 768);
  {
    std::shared_lock lock(store_->mutex());
    for (FlowEnd& e : f.end) {
      FindIntervals(&e);
      FindHolder(&e, f.time);
      FindVersion(&e, f.time);
      CollectWorkload(&e, f.time, &scratch);
    }
  }
  AppendFlow(f, scratch, &out);
  out.pop_back();  // one line: no LF
  return out;
}

namespace {

// Prefetches [p, p + bytes), at most 8 cache lines of it.
void Prefetch(const void* p, size_t bytes = 1) {
  const char* c = static_cast<const char*>(p);
  for (size_t off = 0; off < std::min<size_t>(bytes, 8 * 64); off += 64) __builtin_prefetch(c + off);
}

}  // namespace

Status Questions::EnrichFlows(std::string_view body, std::string* out, size_t* count) const {
  // The store lock is taken per batch of lines, not per line (two threads
  // enriching would otherwise bounce its cache line on every flow), and
  // released between batches so that the projector is not held back.
  constexpr size_t kBatch = 32;
  InitCache();
  out->reserve(out->size() + body.size() + body.size() * 2 / 3);  // two workloads of ~450 B a line
  // Lines are parsed as they are found (the search for a line's end has
  // just brought it into the cache). A line followed by at least
  // simdjson's padding of the body's own bytes is parsed where it lies;
  // only the body's last lines are copied first.
  const char* body_end = body.data() + body.size();
  ingest::LineCursor cursor(body);
  Flow batch[kBatch];
  // The batch's workloads, copied out of the cache before any of the
  // batch's answer is written.
  std::string scratch;
  scratch.reserve(kBatch * 2 * 1024);
  if (count) *count = 0;
  for (bool more = true; more;) {
    size_t n = 0;
    Status bad;
    size_t line_no = 0;
    for (std::string_view line; n < kBatch; ++n) {
      if (!cursor.Next(&line, &line_no)) {
        more = false;
        break;
      }
      const bool padded = static_cast<size_t>(body_end - (line.data() + line.size())) >= simdjson::SIMDJSON_PADDING;
      bad = ParseFlow(line, padded, &batch[n]);
      if (!bad.ok()) break;
    }
    {
      std::shared_lock lock(store_->mutex());
      // Each step reads what the one before prefetched: the address's
      // hash slot, its intervals, the pod, each probe of the search of the
      // pod's versions, the cache set, the cache entry.
      for (size_t k = 0; k < n; ++k)
        for (const FlowEnd& e : batch[k].end)
          if (e.ip) store_->PrefetchIpSlot(*e.ip);
      for (size_t k = 0; k < n; ++k)
        for (FlowEnd& e : batch[k].end) {
          FindIntervals(&e);
          if (e.intervals) Prefetch(e.intervals->data(), e.intervals->size() * sizeof(IpInterval));
        }
      for (size_t k = 0; k < n; ++k)
        for (FlowEnd& e : batch[k].end) {
          FindHolder(&e, batch[k].time);
          if (e.held) Prefetch(&store_->object(e.held->pod), sizeof(Object));
        }
      FindVersions(batch, n);
      for (size_t k = 0; k < n; ++k)
        for (const FlowEnd& e : batch[k].end)
          if (e.version) __builtin_prefetch(&cache_[e.set], 1);
      for (size_t k = 0; k < n; ++k)
        for (const FlowEnd& e : batch[k].end)
          if (const CacheEntry* c = e.version ? PeekCache(e) : nullptr) Prefetch(c, 512);  // not read here
      scratch.clear();
      for (size_t k = 0; k < n; ++k)
        for (FlowEnd& e : batch[k].end) CollectWorkload(&e, batch[k].time, &scratch);
    }
    for (size_t k = 0; k < n; ++k) AppendFlow(batch[k], scratch, out);
    if (count) *count += n;
    if (!bad.ok()) return InvalidArgumentError("line " + std::to_string(line_no) + ": " + bad.message());
  }
  return OkStatus();
}

json Questions::Receipt(const std::vector<uint64_t>& indexes) const {
  std::string note = ledger_->Checkpoint();
  auto nl1 = note.find('\n');
  auto nl2 = note.find('\n', nl1 + 1);
  uint64_t size = ParseDecimal(std::string_view(note).substr(nl1 + 1, nl2 - nl1 - 1)).value_or(0);
  json proofs = json::object();
  for (uint64_t i : indexes) {
    if (i >= size) continue;
    auto p = ledger_->InclusionProof(i, size);
    if (!p.ok()) continue;
    auto leaf = ledger_->ReadEntry(i);
    json hashes = json::array();
    for (const auto& h : *p) hashes.push_back(Base64Encode(HashBytes(h)));
    proofs[std::to_string(i)] = {{"leaf_hash", leaf.ok() ? Base64Encode(HashBytes(merkle::HashLeaf(*leaf))) : ""},
                                 {"hashes", hashes}};
  }
  return json{{"checkpoint", note}, {"tree_size", size}, {"inclusion_proofs", proofs}};
}

}  // namespace annals::state
