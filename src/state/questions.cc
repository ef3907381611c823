#include "state/questions.h"

#include "state/body_images.h"

#include <algorithm>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <tuple>

#include "kube/resources.h"
#include "common/bytes.h"
#include "json/json_write.h"
#include "ledger/entry.h"
#include "merkle/merkle.h"

namespace annals::state {

using nlohmann::json;

namespace {

constexpr uint32_t kUnknown = 0xffffffffu;

json Parse(std::string_view s) { return json::parse(s, nullptr, false); }

std::string Time(Micros t) { return FormatRfc3339(t); }

}  // namespace

std::string EncodeStateCursor(std::string_view r, std::string_view n, std::string_view m, std::string_view u,
                              std::string_view cluster) {
  std::string raw;
  bool first = true;
  for (std::string_view part : {r, n, m, u}) {
    if (!first) raw += '\0';
    first = false;
    raw += part;
  }
  if (!cluster.empty()) {
    raw += '\0';
    raw += cluster;
  }
  std::string b = Base64Encode(raw);
  while (!b.empty() && b.back() == '=') b.pop_back();
  for (char& c : b) c = c == '+' ? '-' : c == '/' ? '_' : c;
  return b;
}

std::optional<StateCursor> DecodeStateCursor(
    std::string_view cursor) {
  std::string b(cursor);
  for (char& c : b) {
    if (c == '+' || c == '/' || c == '=') return std::nullopt;
    c = c == '-' ? '+' : c == '_' ? '/' : c;
  }
  while (b.size() % 4) b += '=';
  auto raw = Base64Decode(b);
  if (!raw) return std::nullopt;
  std::string parts[5];
  size_t k = 0;
  for (char c : *raw) {
    if (c == '\0') {
      if (++k == 5) return std::nullopt;
    } else {
      parts[k] += c;
    }
  }
  if (k != 3 && k != 4) return std::nullopt;
  if (k == 4 && parts[4].empty()) return std::nullopt;  // the encoder leaves an empty cluster out
  return StateCursor{parts[0], parts[1], parts[2], parts[3], parts[4]};
}

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

namespace {

bool NameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
         c == '.';
}
bool Alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }

// A label value: empty, or up to 63 of [A-Za-z0-9-_.], alphanumeric at
// both ends. (A key's name part is the same, but not empty.)
bool LabelValue(std::string_view v) {
  if (v.empty()) return true;
  if (v.size() > 63 || !Alnum(v.front()) || !Alnum(v.back())) return false;
  for (char c : v)
    if (!NameChar(c)) return false;
  return true;
}

// [prefix/]name: prefix a DNS subdomain (lowercase, <= 253), name a
// non-empty label value.
bool QualifiedName(std::string_view k) {
  std::string_view name = k;
  if (auto slash = k.find('/'); slash != std::string_view::npos) {
    std::string_view prefix = k.substr(0, slash);
    name = k.substr(slash + 1);
    if (prefix.empty() || prefix.size() > 253) return false;
    for (char c : prefix)
      if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.')) return false;
    if (!Alnum(prefix.front()) || !Alnum(prefix.back())) return false;
  }
  return !name.empty() && LabelValue(name);
}

}  // namespace

StatusOr<LabelSelector> LabelSelector::Parse(std::string_view s) {
  LabelSelector sel;
  size_t i = 0;
  const std::string whole(s);
  auto bad = [&](const std::string& why) {
    return InvalidArgumentError("bad label selector \"" + whole + "\": " + why);
  };
  auto skip = [&] {
    while (i < s.size() && s[i] == ' ') ++i;
  };
  // A word: up to a space or an operator character.
  auto word = [&] {
    const size_t b = i;
    while (i < s.size() && s[i] != ' ' && s[i] != ',' && s[i] != '=' && s[i] != '!' && s[i] != '(' &&
           s[i] != ')')
      ++i;
    return s.substr(b, i - b);
  };
  skip();
  if (i == s.size()) return sel;
  for (;;) {
    skip();
    Req r;
    bool negated = false;
    if (i < s.size() && s[i] == '!') {
      negated = true;
      ++i;
      skip();
    }
    std::string_view key = word();
    if (key.empty()) return bad(i < s.size() ? "a key expected at \"" + std::string(s.substr(i)) + "\"" : "a key expected at the end");
    if (!QualifiedName(key)) return bad("\"" + std::string(key) + "\" is not a label key");
    r.key = std::string(key);
    skip();
    if (negated) {
      r.op = Req::kNotExists;
    } else if (i == s.size() || s[i] == ',') {
      r.op = Req::kExists;
    } else if (s.compare(i, 2, "!=") == 0 || s.compare(i, 2, "==") == 0 || s[i] == '=') {
      r.op = s[i] == '!' ? Req::kNe : Req::kEq;
      i += (s[i] == '=' && (i + 1 >= s.size() || s[i + 1] != '=')) ? 1 : 2;
      skip();
      std::string_view value = word();
      if (i < s.size() && s[i] != ',' && s[i] != ' ')
        return bad("unexpected \"" + std::string(1, s[i]) + "\" in the value of " + r.key);
      if (!LabelValue(value)) return bad("\"" + std::string(value) + "\" is not a label value");
      r.value = std::string(value);
    } else {
      std::string_view op = word();
      if (op != "in" && op != "notin")
        return bad("after " + r.key + ": want =, ==, !=, in, notin, or a comma; got \"" +
                   std::string(op.empty() ? s.substr(i, 1) : op) + "\"");
      r.op = op == "in" ? Req::kIn : Req::kNotIn;
      skip();
      if (i == s.size() || s[i] != '(') return bad("\"" + std::string(op) + "\" wants a list in parentheses");
      ++i;
      for (;;) {
        skip();
        std::string_view value = word();
        if (!LabelValue(value)) return bad("\"" + std::string(value) + "\" is not a label value");
        r.values.emplace_back(value);
        skip();
        if (i < s.size() && s[i] == ',') {
          ++i;
          continue;
        }
        if (i < s.size() && s[i] == ')') {
          ++i;
          break;
        }
        return bad("unclosed \"(\" in the values of " + r.key);
      }
    }
    sel.reqs_.push_back(std::move(r));
    skip();
    if (i == s.size()) break;
    if (s[i] != ',') return bad("a comma expected at \"" + std::string(s.substr(i)) + "\"");
    ++i;
  }
  return sel;
}

bool LabelSelector::Req::Holds(const std::string* v) const {
  switch (op) {
    case kEq: return v && *v == value;
    case kNe: return !v || *v != value;
    case kExists: return v != nullptr;
    case kNotExists: return v == nullptr;
    case kIn: return v && std::find(values.begin(), values.end(), *v) != values.end();
    case kNotIn: return !v || std::find(values.begin(), values.end(), *v) == values.end();
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

StatusOr<json> Questions::EventAt(uint64_t index, std::string* cluster) const {
  ASSIGN_OR_RETURN(auto e, ledger_->ReadEvent(index));
  cluster->clear();
  json meta = Parse(e.meta);
  if (meta.is_object() && meta.contains("cluster") && meta["cluster"].is_string())
    *cluster = meta["cluster"].get<std::string>();
  const std::string& payload = e.payload;
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
  uint32_t cluster = 0;
  if (!q.cluster.empty()) {
    cluster = S.Find(q.cluster);
    none |= cluster == kUnknown;
  }
  std::string out = "{\"at\":\"" + Time(q.at) + "\",\"objects\":[";
  size_t count = 0, total = 0;
  std::string next;
  if (!none) {
    // What existed at T (and matches the selector, from the projected
    // labels), then sorted: most objects ever seen are gone by T.
    std::vector<std::pair<uint32_t, const Version*>> live;
    for (uint32_t id : store_->Objects(resource, ns, q.namespace_.empty())) {
      if (!q.cluster.empty() && store_->names(id).cluster != cluster) continue;
      const Version* v = store_->VersionAt(id, q.at);
      if (!v || v->presence == Presence::kGone) continue;
      if (!sel.empty() && !sel.Matches(store_->label_set(v->labels), S)) continue;
      live.emplace_back(id, v);
    }
    auto key = [&](uint32_t id) {
      const Object& o = store_->names(id);
      return std::tie(S.Get(o.resource), S.Get(o.ns), S.Get(o.name), o.uid, S.Get(o.cluster));
    };
    std::sort(live.begin(), live.end(), [&](const auto& a, const auto& b) { return key(a.first) < key(b.first); });
    total = live.size();
    auto begin = live.begin();
    if (!q.cursor.empty()) {
      auto after = DecodeStateCursor(q.cursor);
      if (!after) return InvalidArgumentError("cursor is not one this server gave");
      const auto& [r, n, m, u, c] = *after;
      auto want = std::tie(r, n, m, u, c);
      begin = std::upper_bound(live.begin(), live.end(), want,
                               [&](const auto& w, const auto& e) { return w < key(e.first); });
    }
    auto end = q.limit && uint64_t(live.end() - begin) > q.limit ? begin + q.limit : live.end();
    if (end != live.end()) {
      const Object& o = store_->names(std::prev(end)->first);
      next = EncodeStateCursor(S.Get(o.resource), S.Get(o.ns), S.Get(o.name), o.uid, S.Get(o.cluster));
    }
    // The bodies: from the body image for T where it has them (one pass
    // over it), the rest from the log, both in ledger order: sealed
    // segments are compressed 256 entries to a frame, and a reader
    // decompresses each frame once for a run of reads inside it, where the
    // answer's order would decompress one frame per object.
    std::vector<std::string> bodies;
    if (q.bodies) {
      bodies.resize(end - begin);
      std::vector<std::pair<uint64_t, size_t>> order;
      order.reserve(end - begin);
      for (auto it = begin; it != end; ++it) order.emplace_back(it->second->index, it - begin);
      std::sort(order.begin(), order.end());
      std::vector<uint64_t> indexes(order.size());
      for (size_t k = 0; k < order.size(); ++k) indexes[k] = order[k].first;
      std::vector<bool> have(order.size(), false);
      size_t hits = 0;
      if (images_ && !evidence)
        hits = images_->Lookup(q.at, indexes, [&](size_t k, std::string_view body) {
          bodies[order[k].second].assign(body);
          have[k] = true;
        });
      bodies_from_images_.fetch_add(hits, std::memory_order_relaxed);
      bodies_from_log_.fetch_add(order.size() - hits, std::memory_order_relaxed);
      for (size_t k = 0; k < order.size(); ++k) {
        if (have[k]) continue;
        ASSIGN_OR_RETURN(bodies[order[k].second], ReadObjectBody(*ledger_, order[k].first));
      }
    }
    for (auto it = begin; it != end; ++it) {
      const auto& [id, v] = *it;
      const Object& o = store_->names(id);
      std::string_view body = q.bodies ? std::string_view(bodies[it - begin]) : std::string_view();
      if (count++) out += ',';
      out += '{';
      if (o.cluster != 0) {
        out += "\"cluster\":";
        json_util::AppendJsonString(&out, S.Get(o.cluster));
        out += ',';
      }
      out += "\"resource\":";
      json_util::AppendJsonString(&out, S.Get(o.resource));
      out += ",\"namespace\":";
      json_util::AppendJsonString(&out, S.Get(o.ns));
      out += ",\"name\":";
      json_util::AppendJsonString(&out, S.Get(o.name));
      out += ",\"uid\":";
      json_util::AppendJsonString(&out, o.uid);
      out += ",\"state\":\"" + std::string(PresenceName(v->presence)) + "\",\"since\":\"" +
             Time(v->time) + "\",\"index\":" + std::to_string(v->index);
      if (q.bodies) {
        out += ",\"object\":";
        out.append(body.empty() ? std::string_view("null") : body);
      }
      out += '}';
      if (evidence) evidence->push_back(v->index);
    }
  }
  // Entries both the store and the event index cover (the index's live
  // rows can trail the store by Projector::set_live_commit's interval).
  const uint64_t applied = events_ ? std::min(store_->applied(), events_->watermark()) : store_->applied();
  out += "],\"count\":" + std::to_string(count) + ",\"total\":" + std::to_string(total) + ",\"applied\":" +
         std::to_string(applied);
  if (!next.empty()) {
    out += ",\"next_cursor\":";
    json_util::AppendJsonString(&out, next);
  }
  out += '}';
  return out;
}

json Questions::OwnerChain(uint32_t cluster, const Version& v, Micros at, std::vector<uint64_t>* evidence) const {
  json chain = json::array();
  const Strings& S = store_->strings();
  for (const StateStore::OwnerStep& step : store_->Owners(cluster, v, at)) {
    json link{{"kind", S.Get(step.link->kind)}, {"name", S.Get(step.link->name)}, {"uid", step.link->uid}};
    if (step.version) {
      link["index"] = step.version->index;
      if (evidence) evidence->push_back(step.version->index);
    }
    chain.push_back(std::move(link));
  }
  return chain;
}

namespace {

// An interval as answers show it (null for none).
json DescribeInterval(const StateStore& store, const IpInterval* x) {
  if (!x) return nullptr;
  const Strings& S = store.strings();
  const Object& o = store.names(x->pod);
  json j;
  if (o.cluster != 0) j["cluster"] = S.Get(o.cluster);
  j["namespace"] = S.Get(o.ns);
  j["name"] = S.Get(o.name);
  j["uid"] = o.uid;
  j["from"] = Time(x->start);
  j["from_index"] = x->start_index;
  if (x->end != kNever) {
    j["to"] = Time(x->end);
    j["to_index"] = x->end_index;
  } else {
    j["to"] = nullptr;
  }
  return j;
}

}  // namespace

StatusOr<json> Questions::WhoIs(std::string_view ip_text, Micros at, json* nearest, std::string_view cluster) const {
  auto ip = ParseIp(ip_text);
  if (!ip) return InvalidArgumentError("not an IP address: " + std::string(ip_text));
  std::shared_lock lock(store_->mutex());
  const Strings& S = store_->strings();
  auto describe = [&](const IpInterval* x) { return DescribeInterval(*store_, x); };
  // The pods that held the address at `at`: one per cluster.
  std::vector<const IpInterval*> held;
  const IpInterval *before = nullptr, *after = nullptr;
  if (cluster.empty() && store_->clusters().size() <= 1) {
    if (const IpInterval* iv = store_->PodByIp(*ip, at, &before, &after)) held.push_back(iv);
  } else {
    std::vector<uint32_t> wanted;
    if (!cluster.empty()) {
      const uint32_t c = S.Find(cluster);
      if (c != kUnknown) wanted.push_back(c);
    } else {
      wanted = store_->clusters();
      std::sort(wanted.begin(), wanted.end(), [&](uint32_t a, uint32_t b) { return S.Get(a) < S.Get(b); });
    }
    const std::vector<IpInterval>* list = store_->IpIntervals(*ip);
    for (uint32_t c : wanted) {
      const IpInterval *b = nullptr, *a = nullptr;
      const IpInterval* iv = IpIndex::LookupInIf(
          list, at, [&](const IpInterval& x) { return store_->names(x.pod).cluster == c; }, &b, &a);
      if (iv) held.push_back(iv);
      if (b && (!before || b->end > before->end)) before = b;
      if (a && (!after || a->start < after->start)) after = a;
    }
  }
  if (held.empty()) {
    if (nearest) *nearest = json{{"before", describe(before)}, {"after", describe(after)}};
    return NotFoundError("no pod " + (cluster.empty() ? std::string() : "of cluster " + std::string(cluster) + " ") +
                         "held " + std::string(ip_text) + " at " + Time(at));
  }
  json answer;
  std::vector<uint64_t> evidence;
  for (const IpInterval* iv : held) {
    ASSIGN_OR_RETURN(json j, PodAnswer(*ip, at, *iv));
    for (const auto& e : j["evidence"]) evidence.push_back(e.get<uint64_t>());
    if (answer.is_null()) {
      answer = std::move(j);
    } else {
      answer["other_clusters"].push_back(std::move(j));
    }
  }
  std::sort(evidence.begin(), evidence.end());
  evidence.erase(std::unique(evidence.begin(), evidence.end()), evidence.end());
  answer["evidence"] = evidence;
  return answer;
}

StatusOr<json> Questions::PodAnswer(const IpKey& ip, Micros at, const IpInterval& iv) const {
  const Strings& S = store_->strings();
  const Object& pod = store_->object(iv.pod);
  const Version* v = pod.At(at);
  if (!v) return InternalError("interval without version");
  std::vector<uint64_t> evidence{iv.start_index, v->index};
  ASSIGN_OR_RETURN(json body, BodyAt(v->index));
  json md = body.is_object() ? body.value("metadata", json::object()) : json::object();
  json spec = body.is_object() ? body.value("spec", json::object()) : json::object();
  json labels = md.value("labels", json::object());
  json j;
  if (pod.cluster != 0) j["cluster"] = S.Get(pod.cluster);
  j["ip"] = FormatIp(ip);
  j["at"] = Time(at);
  j["pod"] = {{"namespace", S.Get(pod.ns)},
              {"name", S.Get(pod.name)},
              {"uid", pod.uid},
              {"labels", labels},
              {"service_account", spec.value("serviceAccountName", spec.value("serviceAccount", ""))},
              {"node", spec.value("nodeName", "")},
              {"phase", body.is_object() && body.contains("status") ? body["status"].value("phase", "") : ""},
              {"state", PresenceName(v->presence)}};
  if (pod.cluster != 0) j["pod"]["cluster"] = S.Get(pod.cluster);
  j["owners"] = OwnerChain(pod.cluster, *v, at, &evidence);
  json services = json::array();
  for (const auto& [id, sv] : store_->SelectingServices(pod.cluster, pod.ns, store_->label_set(v->labels), at)) {
    const Object& o = store_->names(id);
    services.push_back({{"name", S.Get(o.name)}, {"uid", o.uid}, {"index", sv->index}});
    evidence.push_back(sv->index);
  }
  j["services"] = std::move(services);
  j["interval"] = DescribeInterval(*store_, &iv);
  j["version_index"] = v->index;
  std::sort(evidence.begin(), evidence.end());
  evidence.erase(std::unique(evidence.begin(), evidence.end()), evidence.end());
  j["evidence"] = evidence;
  return j;
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
    auto leaf = ledger_->LeafHash(i);
    json hashes = json::array();
    for (const auto& h : *p) hashes.push_back(Base64Encode(HashBytes(h)));
    proofs[std::to_string(i)] = {{"leaf_hash", leaf.ok() ? Base64Encode(HashBytes(*leaf)) : ""},
                                 {"hashes", hashes}};
  }
  return json{{"checkpoint", note}, {"tree_size", size}, {"inclusion_proofs", proofs}};
}

}  // namespace annals::state
