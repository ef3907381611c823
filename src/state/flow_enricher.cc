#include "state/flow_enricher.h"

#include <simdjson.h>

#include <algorithm>
#include <cstring>
#include <mutex>
#include <thread>

#include "ingest/json_lines.h"
#include "json/json_parse.h"
#include "json/json_write.h"

namespace annals::state {

// {["cluster",]"namespace","pod","uid","owner":{"kind","name","uid"[,"index"]}|null,
//  "labels":{...},"service_account","index","services":[names]}: the top
// owner as of the version's time, the Services as of the flow's; the
// cluster when the pod's entries were filed under one.
std::string FlowEnricher::RenderWorkload(uint32_t pod, const Version& v, Micros t) const {
  const Strings& S = store_->strings();
  const Object& o = store_->object(pod);
  auto k = static_cast<size_t>(&v - o.versions.data());
  std::string w = "{";
  if (o.cluster != 0) {
    w += "\"cluster\":";
    json_util::AppendJsonString(&w, S.Get(o.cluster));
    w += ',';
  }
  w += "\"namespace\":";
  json_util::AppendJsonString(&w, S.Get(o.ns));
  w += ",\"pod\":";
  json_util::AppendJsonString(&w, S.Get(o.name));
  w += ",\"uid\":";
  json_util::AppendJsonString(&w, o.uid);
  w += ",\"owner\":";
  const std::vector<StateStore::OwnerStep> chain = store_->Owners(o.cluster, v, v.time);
  if (chain.empty()) {
    w += "null";
  } else {
    const StateStore::OwnerStep& top = chain.back();
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
  for (const auto& [id, sv] : store_->SelectingServices(o.cluster, o.ns, labels, t)) {
    if (!first) w += ',';
    first = false;
    json_util::AppendJsonString(&w, S.Get(store_->object(id).name));
  }
  w += "]}";
  return w;
}

void FlowEnricher::FindIntervals(FlowEnd* e) const {
  e->intervals = e->ip ? store_->IpIntervals(*e->ip) : nullptr;
}

void FlowEnricher::FindHolder(FlowEnd* e, Micros t, uint32_t cluster) const {
  if (cluster == kAnyCluster) {
    e->held = IpIndex::LookupIn(e->intervals, t, nullptr, nullptr);
    return;
  }
  e->held = IpIndex::LookupInIf(e->intervals, t, [&](const IpInterval& iv) {
    return store_->names(iv.pod).cluster == cluster;
  });
}

uint32_t FlowEnricher::ClusterId(std::string_view cluster) const {
  if (cluster.empty()) return kAnyCluster;
  const uint32_t id = store_->strings().Find(cluster);
  return id == 0xffffffffu ? kAnyCluster - 1 : id;  // unknown: no object's
}

void FlowEnricher::FindVersion(FlowEnd* e, Micros t) const {
  e->version = e->held ? store_->object(e->held->pod).At(t) : nullptr;
  if (e->version) KeyCache(e, t);
}

void FlowEnricher::FindVersions(Flow* batch, size_t n) const {
  // Object::At as a branch-free upper bound: keep the last version whose
  // time is at or before t in [from, from + left) while left > 1.
  bool more = false;
  for (size_t k = 0; k < n; ++k)
    for (FlowEnd& e : batch[k].end) {
      e.versions_left = 0;
      if (!e.held) continue;
      const auto& versions = e.object->versions;  // set at the pod step
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

void FlowEnricher::KeyCache(FlowEnd* e, Micros t) const {
  const uint32_t ns = store_->names(e->held->pod).ns;  // a cold object's stub has it
  e->epoch = store_->ServiceEpoch(ns, t);
  e->generation = store_->late_generation(ns);
  const uint64_t hash = (e->version->index * 0x9E3779B97F4A7C15ull) ^ (e->epoch * 0xC2B2AE3D27D4EB4Full);
  e->set = static_cast<size_t>(hash >> 40) & (cache_sets_ - 1);  // a power of two
  e->tag = static_cast<uint32_t>(hash) | 1;  // never 0, the empty way
}

int FlowEnricher::CachedWay(const FlowEnd& e) const {
  const CacheSet& set = cache_[e.set];
  for (size_t way = 0; way < kCacheWays; ++way) {
    if (set.tag[way].load(std::memory_order_relaxed) != e.tag) continue;
    const CacheEntry* c = set.entry[way].load(std::memory_order_relaxed);
    if (c->index == e.version->index && c->epoch == e.epoch && c->generation == e.generation)
      return static_cast<int>(way);
  }
  return -1;
}

const FlowEnricher::CacheEntry* FlowEnricher::PeekCache(const FlowEnd& e) const {
  const CacheSet& set = cache_[e.set];
  for (size_t way = 0; way < kCacheWays; ++way)
    if (set.tag[way].load(std::memory_order_relaxed) == e.tag) return set.entry[way].load(std::memory_order_relaxed);
  return nullptr;
}

FlowEnricher::CacheEntry* FlowEnricher::CacheEntry::Make(const FlowEnd& e, std::string_view text) {
  void* p = ::operator new(sizeof(CacheEntry) + text.size());
  auto* c = new (p) CacheEntry{e.version->index, e.epoch, e.generation, text.size()};
  std::memcpy(static_cast<char*>(p) + sizeof(CacheEntry), text.data(), text.size());
  return c;
}

void FlowEnricher::CacheEntry::Free(const CacheEntry* entry) { ::operator delete(const_cast<CacheEntry*>(entry)); }

FlowEnricher::~FlowEnricher() {
  if (!cache_) return;
  for (size_t i = 0; i < cache_sets_; ++i)
    for (auto& c : cache_[i].entry)
      if (const CacheEntry* entry = c.load(std::memory_order_relaxed)) CacheEntry::Free(entry);
}

// Holds a render-cache set's spin lock. Spins briefly, then yields (a
// holder that lost its core must get it back before it can let go).
class FlowEnricher::SetLock {
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

void FlowEnricher::InitCache() const {
  std::call_once(cache_once_, [this] { cache_ = std::make_unique<CacheSet[]>(cache_sets_); });
}

void FlowEnricher::CollectWorkload(FlowEnd* e, Micros t, std::string* scratch) const {
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

Status FlowEnricher::ParseFlow(std::string_view line, bool padded, Flow* f) {
  simdjson::dom::parser& parser = json_util::JsonParser();
  simdjson::dom::element doc;
  if (parser.parse(line.data(), line.size(), !padded).get(doc) != simdjson::SUCCESS || !doc.is_object())
    return InvalidArgumentError("flow is not a JSON object");
  // The objects read below must not repeat a key: which value counts would
  // differ between this reader and the one of the answer.
  RETURN_IF_ERROR(json_util::CheckUniqueMembers(doc, "flow"));
  // The answer adds these: a flow that has them would carry them twice.
  for (const char* added : {"src_workload", "dst_workload"}) {
    simdjson::dom::element had;
    if (doc[added].get(had) == simdjson::SUCCESS)
      return InvalidArgumentError(std::string("flow already has \"") + added + "\": enrich each flow once");
  }
  std::string_view t, src, dst;
  simdjson::dom::element flow;
  if (doc["flow"].get(flow) == simdjson::SUCCESS && flow.is_object()) {
    RETURN_IF_ERROR(json_util::CheckUniqueMembers(flow, "flow"));
    if (flow["time"].get_string().get(t)) t = {};
    simdjson::dom::element ip;
    if (flow["IP"].get(ip) == simdjson::SUCCESS) {
      RETURN_IF_ERROR(json_util::CheckUniqueMembers(ip, "flow"));
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

void FlowEnricher::AppendFlow(const Flow& f, std::string_view scratch, std::string* out) const {
  out->append(f.head);
  *out += f.empty_object ? "\"src_workload\":" : ",\"src_workload\":";
  out->append(scratch.substr(f.end[0].text_at, f.end[0].text_size));
  *out += ",\"dst_workload\":";
  out->append(scratch.substr(f.end[1].text_at, f.end[1].text_size));
  *out += "}\n";
}

StatusOr<std::string> FlowEnricher::EnrichFlow(std::string_view line, std::string_view cluster) const {
  Flow f;
  RETURN_IF_ERROR(ParseFlow(line, /*padded=*/false, &f));
  InitCache();
  std::string scratch, out;
  out.reserve(line.size() + 768);
  {
    std::shared_lock lock(store_->mutex());
    const uint32_t c = ClusterId(cluster);
    for (FlowEnd& e : f.end) {
      FindIntervals(&e);
      FindHolder(&e, f.time, c);
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

Status FlowEnricher::EnrichFlows(std::string_view body, std::string* out, size_t* count,
                                 std::string_view cluster) const {
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
      const uint32_t c = ClusterId(cluster);
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
          FindHolder(&e, batch[k].time, c);
          // A cold pod is found in the store's cache once, here, not at
          // each step that reads it.
          if (e.held) {
            e.object = &store_->object(e.held->pod);
            Prefetch(e.object, sizeof(Object));
          }
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

}  // namespace annals::state
