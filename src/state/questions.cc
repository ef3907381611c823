#include "state/questions.h"

#include <simdjson.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <set>

#include "common/bytes.h"
#include "ingest/k8s_audit.h"
#include "ledger/entry.h"
#include "merkle/merkle.h"

namespace annals::state {

using nlohmann::json;

namespace {

constexpr uint32_t kUnknown = 0xffffffffu;

json Parse(std::string_view s) { return json::parse(s, nullptr, false); }

std::string Time(Micros t) { return FormatRfc3339(t); }

bool LabelsMatch(const std::vector<std::pair<std::string, std::string>>& selector,
                 const std::vector<std::pair<std::string, std::string>>& labels) {
  if (selector.empty()) return false;  // a Service without selector selects nothing
  for (const auto& [k, v] : selector) {
    auto it = std::find_if(labels.begin(), labels.end(), [&](const auto& l) { return l.first == k; });
    if (it == labels.end() || it->second != v) return false;
  }
  return true;
}

std::vector<std::pair<std::string, std::string>> LabelsOf(const json& body) {
  std::vector<std::pair<std::string, std::string>> out;
  auto md = body.find("metadata");
  if (md == body.end() || !md->is_object()) return out;
  auto l = md->find("labels");
  if (l == md->end() || !l->is_object()) return out;
  for (auto& [k, v] : l->items())
    if (v.is_string()) out.emplace_back(k, v.get<std::string>());
  std::sort(out.begin(), out.end());
  return out;
}

std::string JStr(const json& j, const char* a, const char* b = nullptr) {
  auto it = j.find(a);
  if (it == j.end()) return "";
  if (!b) return it->is_string() ? it->get<std::string>() : "";
  if (!it->is_object()) return "";
  auto it2 = it->find(b);
  return it2 != it->end() && it2->is_string() ? it2->get<std::string>() : "";
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

bool LabelSelector::Matches(const json& labels) const {
  for (const auto& r : reqs_) {
    const bool has = labels.is_object() && labels.contains(r.key);
    std::string v = has && labels[r.key].is_string() ? labels[r.key].get<std::string>() : "";
    switch (r.op) {
      case Req::kEq: if (!has || v != r.value) return false; break;
      case Req::kNe: if (has && v == r.value) return false; break;
      case Req::kExists: if (!has) return false; break;
      case Req::kNotExists: if (has) return false; break;
    }
  }
  return true;
}

StatusOr<std::string> Questions::PayloadAt(uint64_t index) const {
  ASSIGN_OR_RETURN(std::string raw, ledger_->ReadEntry(index));
  ASSIGN_OR_RETURN(auto d, ledger::DecodeEntry(raw));
  if (d.external) return ledger_->GetBlob(d.payload_digest);
  return std::string(d.payload);
}

StatusOr<json> Questions::EventAt(uint64_t index) const {
  ASSIGN_OR_RETURN(std::string payload, PayloadAt(index));
  json j = Parse(payload);
  if (j.is_discarded()) return DataLossError("entry " + std::to_string(index) + " is not JSON");
  return j;
}

StatusOr<json> Questions::BodyAt(uint64_t index) const {
  ASSIGN_OR_RETURN(std::string raw, ledger_->ReadEntry(index));
  ASSIGN_OR_RETURN(auto d, ledger::DecodeEntry(raw));
  std::string payload;
  if (d.external) {
    ASSIGN_OR_RETURN(payload, ledger_->GetBlob(d.payload_digest));
  } else {
    payload = std::string(d.payload);
  }
  std::string_view obj = ObjectOfEntry(d.meta, payload);
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
    resource = S.Find(ResourceFor(q.kind));
    none |= resource == kUnknown;
  }
  if (!q.namespace_.empty()) {
    ns = S.Find(q.namespace_);
    none |= ns == kUnknown;
  }
  std::string out = "{\"at\":\"" + Time(q.at) + "\",\"objects\":[";
  size_t count = 0;
  if (!none) {
    std::vector<uint32_t> ids = store_->Objects(resource, ns, q.namespace_.empty());
    std::sort(ids.begin(), ids.end(), [&](uint32_t a, uint32_t b) {
      const Object& x = store_->object(a);
      const Object& y = store_->object(b);
      return std::tie(S.Get(x.resource), S.Get(x.ns), S.Get(x.name), a) <
             std::tie(S.Get(y.resource), S.Get(y.ns), S.Get(y.name), b);
    });
    std::string raw;
    for (uint32_t id : ids) {
      const Object& o = store_->object(id);
      const Version* v = o.At(q.at);
      if (!v || v->presence == Presence::kGone) continue;
      auto entry = ledger_->ReadEntry(v->index);
      if (!entry.ok()) return entry.status();
      auto d = ledger::DecodeEntry(*entry);
      if (!d.ok()) return d.status();
      std::string_view payload = d->payload;
      if (d->external) {
        auto blob = ledger_->GetBlob(d->payload_digest);
        if (!blob.ok()) return blob.status();
        raw = std::move(*blob);
        payload = raw;
      }
      std::string_view body = ObjectOfEntry(d->meta, payload);
      if (!sel.empty()) {
        json b = Parse(body);
        json labels = b.is_object() && b.contains("metadata") ? b["metadata"].value("labels", json::object())
                                                              : json::object();
        if (!sel.Matches(labels)) continue;
      }
      if (count++) out += ',';
      out += "{\"resource\":";
      ingest::AppendJsonString(&out, S.Get(o.resource));
      out += ",\"namespace\":";
      ingest::AppendJsonString(&out, S.Get(o.ns));
      out += ",\"name\":";
      ingest::AppendJsonString(&out, S.Get(o.name));
      out += ",\"uid\":";
      ingest::AppendJsonString(&out, o.uid);
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

Questions::PodCard Questions::Card(uint32_t pod, const Version& v) const {
  {
    std::lock_guard lock(cache_mu_);
    auto it = cards_.find(v.index);
    if (it != cards_.end()) return it->second;
  }
  PodCard c;
  const Object& o = store_->object(pod);
  c.ns = store_->strings().Get(o.ns);
  c.name = store_->strings().Get(o.name);
  c.uid = o.uid;
  auto body = BodyAt(v.index);
  if (body.ok() && body->is_object()) {
    c.labels = LabelsOf(*body);
    if (body->contains("spec")) {
      c.service_account = JStr((*body)["spec"], "serviceAccountName");
      c.node = JStr((*body)["spec"], "nodeName");
    }
    std::vector<uint64_t> ev;
    json chain = OwnerChain(*body, v.time, &ev);
    c.owner = chain.empty() ? json() : chain.back();
  }
  std::lock_guard lock(cache_mu_);
  if (cards_.size() > 1000000) cards_.clear();
  return cards_.emplace(v.index, std::move(c)).first->second;
}

std::vector<std::pair<std::string, std::string>> Questions::Selector(uint64_t index) const {
  {
    std::lock_guard lock(cache_mu_);
    auto it = selectors_.find(index);
    if (it != selectors_.end()) return it->second;
  }
  std::vector<std::pair<std::string, std::string>> sel;
  auto body = BodyAt(index);
  if (body.ok() && body->is_object() && body->contains("spec")) {
    auto s = (*body)["spec"].find("selector");
    if (s != (*body)["spec"].end() && s->is_object())
      for (auto& [k, v] : s->items())
        if (v.is_string()) sel.emplace_back(k, v.get<std::string>());
  }
  std::sort(sel.begin(), sel.end());
  std::lock_guard lock(cache_mu_);
  if (selectors_.size() > 1000000) selectors_.clear();
  return selectors_.emplace(index, std::move(sel)).first->second;
}

json Questions::OwnerChain(const json& body, Micros at, std::vector<uint64_t>* evidence) const {
  json chain = json::array();
  const json* cur = &body;
  json holder;
  for (int depth = 0; depth < 8; ++depth) {
    if (!cur->is_object() || !cur->contains("metadata")) break;
    const json& md = (*cur)["metadata"];
    auto refs = md.find("ownerReferences");
    if (refs == md.end() || !refs->is_array() || refs->empty()) break;
    const json* ref = &(*refs)[0];
    for (const auto& r : *refs)
      if (r.value("controller", false)) ref = &r;
    json link{{"kind", ref->value("kind", "")}, {"name", ref->value("name", "")}, {"uid", ref->value("uid", "")}};
    int64_t id = store_->FindUid(link["uid"].get<std::string>());
    if (id < 0) {
      chain.push_back(link);
      break;
    }
    const Version* v = store_->object(static_cast<uint32_t>(id)).At(at);
    if (!v) {
      chain.push_back(link);
      break;
    }
    link["index"] = v->index;
    if (evidence) evidence->push_back(v->index);
    chain.push_back(link);
    auto b = BodyAt(v->index);
    if (!b.ok()) break;
    holder = std::move(*b);
    cur = &holder;
  }
  return chain;
}

json Questions::SelectingServices(uint32_t ns, const json& labels_json, Micros at,
                                  std::vector<uint64_t>* evidence) const {
  json out = json::array();
  uint32_t svc = store_->strings().Find("services");
  if (svc == kUnknown) return out;
  std::vector<std::pair<std::string, std::string>> labels;
  if (labels_json.is_object())
    for (auto& [k, v] : labels_json.items())
      if (v.is_string()) labels.emplace_back(k, v.get<std::string>());
  std::sort(labels.begin(), labels.end());
  for (uint32_t id : store_->Objects(svc, ns, false)) {
    const Object& o = store_->object(id);
    const Version* v = o.At(at);
    if (!v || v->presence == Presence::kGone) continue;
    if (!LabelsMatch(Selector(v->index), labels)) continue;
    out.push_back({{"name", store_->strings().Get(o.name)}, {"uid", o.uid}, {"index", v->index}});
    if (evidence) evidence->push_back(v->index);
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
  j["owners"] = OwnerChain(body, at, &evidence);
  j["services"] = SelectingServices(pod.ns, labels, at, &evidence);
  j["interval"] = describe(iv);
  j["version_index"] = v->index;
  std::sort(evidence.begin(), evidence.end());
  evidence.erase(std::unique(evidence.begin(), evidence.end()), evidence.end());
  j["evidence"] = evidence;
  return j;
}

std::string Questions::FlowWorkload(std::string_view ip_text, Micros t) const {
  auto ip = ParseIp(ip_text);
  if (!ip) return "null";
  const IpInterval* iv = store_->PodByIp(*ip, t, nullptr, nullptr);
  if (!iv) return "null";
  const Object& pod = store_->object(iv->pod);
  const Version* v = pod.At(t);
  if (!v) return "null";
  const PodCard c = Card(iv->pod, *v);
  json services = json::array();
  uint32_t svc = store_->strings().Find("services");
  if (svc != kUnknown) {
    for (uint32_t id : store_->Objects(svc, pod.ns, false)) {
      const Object& o = store_->object(id);
      const Version* sv = o.At(t);
      if (!sv || sv->presence == Presence::kGone) continue;
      if (LabelsMatch(Selector(sv->index), c.labels)) services.push_back(store_->strings().Get(o.name));
    }
  }
  json labels = json::object();
  for (const auto& [k, val] : c.labels) labels[k] = val;
  json w{{"namespace", c.ns}, {"pod", c.name}, {"uid", c.uid}, {"owner", c.owner},
         {"labels", labels}, {"service_account", c.service_account}, {"services", services},
         {"index", v->index}};
  return w.dump();
}

StatusOr<std::string> Questions::EnrichFlow(std::string_view line) const {
  thread_local simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(line.data(), line.size()).get(doc) != simdjson::SUCCESS || !doc.is_object())
    return InvalidArgumentError("flow is not a JSON object");
  std::string_view t, src, dst;
  simdjson::dom::element flow;
  if (doc["flow"].get(flow) == simdjson::SUCCESS && flow.is_object()) {
    if (flow["time"].get_string().get(t)) t = {};
    if (flow["IP"]["source"].get_string().get(src)) src = {};
    if (flow["IP"]["destination"].get_string().get(dst)) dst = {};
  } else {
    if (doc["time"].get_string().get(t)) t = {};
    if (doc["src_ip"].get_string().get(src)) src = {};
    if (doc["dst_ip"].get_string().get(dst)) dst = {};
  }
  auto when = ParseRfc3339(t);
  if (!when) return InvalidArgumentError("flow has no RFC 3339 time");
  std::string s, d;
  {
    std::shared_lock lock(store_->mutex());
    s = FlowWorkload(src, *when);
    d = FlowWorkload(dst, *when);
  }
  std::string out(line);
  while (!out.empty() && out.back() != '}') out.pop_back();
  out.pop_back();
  size_t last = out.find_last_not_of(" \t\r\n");
  const bool empty_obj = last != std::string::npos && out[last] == '{';
  out += empty_obj ? "" : ",";
  out += "\"src_workload\":" + s + ",\"dst_workload\":" + d + "}";
  return out;
}

StatusOr<json> Questions::History(const HistoryQuery& q) const {
  std::vector<uint64_t> indexes;
  {
    std::shared_lock lock(store_->mutex());
    const Strings& S = store_->strings();
    uint32_t resource = S.Find(ResourceFor(q.kind));
    uint32_t ns = S.Find(q.namespace_);
    uint32_t name = S.Find(q.name);
    if (resource == kUnknown || ns == kUnknown || name == kUnknown)
      return NotFoundError("the ledger holds nothing about " + q.kind + "/" + q.name +
                           (q.namespace_.empty() ? "" : " in namespace " + q.namespace_));
    if (auto* ev = store_->EventsFor(resource, ns, name)) indexes = *ev;
    if (q.children) {
      std::set<uint32_t> seen;
      std::vector<uint32_t> work = store_->ByName(resource, ns, name);
      for (uint32_t id : store_->Instance(ns, q.name)) work.push_back(id);
      while (!work.empty()) {
        uint32_t id = work.back();
        work.pop_back();
        if (!seen.insert(id).second) continue;
        const Object& o = store_->object(id);
        if (auto* ev = store_->EventsFor(o.resource, o.ns, o.name))
          indexes.insert(indexes.end(), ev->begin(), ev->end());
        for (uint32_t c : store_->Children(o.uid)) work.push_back(c);
      }
    }
  }
  std::sort(indexes.begin(), indexes.end());
  indexes.erase(std::unique(indexes.begin(), indexes.end()), indexes.end());
  static const std::set<std::string> kReads = {"get", "list", "watch"};
  json rows = json::array();
  for (uint64_t i : indexes) {
    ASSIGN_OR_RETURN(json ev, EventAt(i));
    const std::string stage = ev.value("stage", "");
    if (stage != "ResponseComplete" && stage != "Panic") continue;
    const std::string verb = ev.value("verb", "");
    if (q.verbs.empty()) {
      if (kReads.count(verb)) continue;
    } else if (std::find(q.verbs.begin(), q.verbs.end(), verb) == q.verbs.end()) {
      continue;
    }
    std::string ts = ev.value("stageTimestamp", ev.value("timestamp", ""));
    Micros t = ParseRfc3339(ts).value_or(0);
    if (t < q.since || t > q.until) continue;
    json ref = ev.value("objectRef", json::object());
    json user = ev.value("user", json::object());
    json row{{"index", i},
             {"time", ts},
             {"verb", verb},
             {"resource", ref.value("resource", "")},
             {"subresource", ref.value("subresource", "")},
             {"namespace", ref.value("namespace", "")},
             {"name", ref.value("name", "")},
             {"user", {{"username", user.value("username", "")},
                       {"groups", user.value("groups", json::array())},
                       {"uid", user.value("uid", "")}}},
             {"impersonated_user", ev.contains("impersonatedUser") ? ev["impersonatedUser"] : json()},
             {"source_ips", ev.value("sourceIPs", json::array())},
             {"user_agent", ev.value("userAgent", "")},
             {"code", ev.contains("responseStatus") ? ev["responseStatus"].value("code", 0) : 0}};
    std::string uid = ref.value("uid", "");
    if (ev.contains("responseObject") && ev["responseObject"].is_object()) {
      const json& obj = ev["responseObject"];
      if (obj.contains("metadata")) uid = obj["metadata"].value("uid", uid);
      if (row["name"].get<std::string>().empty() && obj.contains("metadata"))
        row["name"] = obj["metadata"].value("name", "");
      // What changed: a JSON Patch from the previous version of this uid.
      std::shared_lock lock(store_->mutex());
      int64_t id = store_->FindUid(uid);
      if (id >= 0) {
        const Object& o = store_->object(static_cast<uint32_t>(id));
        auto it = std::find_if(o.versions.begin(), o.versions.end(),
                               [i](const Version& v) { return v.index == i; });
        if (it != o.versions.end() && it != o.versions.begin()) {
          uint64_t prev_index = (it - 1)->index;
          lock.unlock();
          auto prev = BodyAt(prev_index);
          if (prev.ok() && prev->is_object()) {
            row["changes"] = WhatChanged(*prev, obj);
            row["previous_index"] = prev_index;
          }
        } else if (it == o.versions.begin()) {
          row["changes"] = json::array({json{{"op", "add"}, {"path", "/"}}});  // created
        }
      }
    }
    row["uid"] = uid;
    rows.push_back(std::move(row));
  }
  // Newest last: by event time, then by ledger index.
  std::stable_sort(rows.begin(), rows.end(), [](const json& a, const json& b) {
    auto ta = ParseRfc3339(a["time"].get<std::string>()).value_or(0);
    auto tb = ParseRfc3339(b["time"].get<std::string>()).value_or(0);
    return ta != tb ? ta < tb : a["index"].get<uint64_t>() < b["index"].get<uint64_t>();
  });
  return json{{"kind", q.kind}, {"namespace", q.namespace_}, {"name", q.name}, {"count", rows.size()},
              {"events", rows}};
}

StatusOr<json> Questions::Events(const EventQuery& q) const {
  std::shared_lock lock(store_->mutex());
  const Strings& S = store_->strings();
  auto want = [&](const std::string& v, uint32_t* id) {
    if (v.empty()) {
      *id = kUnknown - 1;  // no filter
      return true;
    }
    *id = S.Find(v);
    return *id != kUnknown;
  };
  uint32_t user, verb, resource, ns, name, stage;
  const bool possible = want(q.user, &user) & want(q.verb, &verb) & want(q.resource.empty() ? "" : ResourceFor(q.resource), &resource) &
                        want(q.namespace_, &ns) & want(q.name, &name) & want(q.stage, &stage);
  const uint32_t kAny = kUnknown - 1;
  const auto& rows = store_->events();
  auto begin = std::lower_bound(rows.begin(), rows.end(), q.cursor,
                                [](const EventRow& r, uint64_t c) { return r.index < c; });
  std::map<std::string, uint64_t> groups;
  json list = json::array();
  uint64_t next = 0, matched = 0;
  auto field = [&](const EventRow& r) -> std::string {
    const std::string& g = q.group_by;
    if (g == "user") return S.Get(r.user);
    if (g == "verb") return S.Get(r.verb);
    if (g == "resource") return S.Get(r.resource);
    if (g == "namespace") return S.Get(r.ns);
    if (g == "code") return std::to_string(r.code);
    if (g == "source_ip") return S.Get(r.ip);
    if (g == "user_agent") return S.Get(r.ua);
    if (g == "hour") return Time(r.time).substr(0, 13) + ":00:00Z";
    if (g == "day") return Time(r.time).substr(0, 10);
    return "";
  };
  static const std::set<std::string> kGroups = {"user", "verb", "resource", "namespace", "code",
                                                "source_ip", "user_agent", "hour", "day"};
  if (!q.group_by.empty() && !kGroups.count(q.group_by))
    return InvalidArgumentError("group_by must be one of user, verb, resource, namespace, code, source_ip, user_agent, hour, day");
  if (possible) {
    for (auto it = begin; it != rows.end(); ++it) {
      const EventRow& r = *it;
      if (r.time < q.from || r.time > q.to) continue;
      if ((user != kAny && r.user != user) || (verb != kAny && r.verb != verb) ||
          (resource != kAny && r.resource != resource) || (ns != kAny && r.ns != ns) ||
          (name != kAny && r.name != name) || (stage != kAny && r.stage != stage))
        continue;
      if (q.code && r.code != q.code) continue;
      if (!q.q.empty() && S.Get(r.name).find(q.q) == std::string::npos &&
          S.Get(r.user).find(q.q) == std::string::npos && S.Get(r.ns).find(q.q) == std::string::npos)
        continue;
      ++matched;
      if (!q.group_by.empty()) {
        ++groups[field(r)];
        continue;
      }
      if (list.size() == q.limit) {
        next = r.index;
        break;
      }
      list.push_back({{"index", r.index}, {"time", Time(r.time)}, {"verb", S.Get(r.verb)},
                      {"user", S.Get(r.user)}, {"resource", S.Get(r.resource)},
                      {"subresource", S.Get(r.subresource)}, {"namespace", S.Get(r.ns)},
                      {"name", S.Get(r.name)}, {"code", r.code}, {"stage", S.Get(r.stage)},
                      {"source_ip", S.Get(r.ip)}, {"user_agent", S.Get(r.ua)}});
    }
  }
  if (!q.group_by.empty()) {
    std::vector<std::pair<std::string, uint64_t>> g(groups.begin(), groups.end());
    std::sort(g.begin(), g.end(), [](auto& a, auto& b) { return a.second != b.second ? a.second > b.second : a.first < b.first; });
    json out = json::array();
    for (auto& [k, n] : g) out.push_back({{"key", k}, {"count", n}});
    return json{{"group_by", q.group_by}, {"total", matched}, {"groups", out}};
  }
  json j{{"count", list.size()}, {"events", list}};
  j["next_cursor"] = next ? json(next) : json();
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
    auto leaf = ledger_->ReadEntry(i);
    json hashes = json::array();
    for (const auto& h : *p) hashes.push_back(Base64Encode(HashBytes(h)));
    proofs[std::to_string(i)] = {{"leaf_hash", leaf.ok() ? Base64Encode(HashBytes(merkle::HashLeaf(*leaf))) : ""},
                                 {"hashes", hashes}};
  }
  return json{{"checkpoint", note}, {"tree_size", size}, {"inclusion_proofs", proofs}};
}

}  // namespace annals::state
