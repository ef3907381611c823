#include "state/questions.h"

#include <algorithm>
#include <map>
#include <mutex>
#include <set>

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
      const Version* v = store_->VersionAt(id, q.at);
      if (!v || v->presence == Presence::kGone) continue;
      if (!sel.empty() && !sel.Matches(store_->label_set(v->labels), S)) continue;
      live.emplace_back(id, v);
    }
    std::sort(live.begin(), live.end(), [&](const auto& a, const auto& b) {
      const Object& x = store_->names(a.first);
      const Object& y = store_->names(b.first);
      return std::tie(S.Get(x.resource), S.Get(x.ns), S.Get(x.name), a.first) <
             std::tie(S.Get(y.resource), S.Get(y.ns), S.Get(y.name), b.first);
    });
    std::string raw;
    for (const auto& [id, v] : live) {
      const Object& o = store_->names(id);
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

json Questions::OwnerChain(const Version& v, Micros at, std::vector<uint64_t>* evidence) const {
  json chain = json::array();
  const Strings& S = store_->strings();
  for (const StateStore::OwnerStep& step : store_->Owners(v, at)) {
    json link{{"kind", S.Get(step.link->kind)}, {"name", S.Get(step.link->name)}, {"uid", step.link->uid}};
    if (step.version) {
      link["index"] = step.version->index;
      if (evidence) evidence->push_back(step.version->index);
    }
    chain.push_back(std::move(link));
  }
  return chain;
}

StatusOr<json> Questions::WhoIs(std::string_view ip_text, Micros at, json* nearest) const {
  auto ip = ParseIp(ip_text);
  if (!ip) return InvalidArgumentError("not an IP address: " + std::string(ip_text));
  std::shared_lock lock(store_->mutex());
  const IpInterval *before = nullptr, *after = nullptr;
  const IpInterval* iv = store_->PodByIp(*ip, at, &before, &after);
  auto describe = [&](const IpInterval* x) -> json {
    if (!x) return nullptr;
    const Object& o = store_->names(x->pod);
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
  for (const auto& [id, sv] : store_->SelectingServices(pod.ns, store_->label_set(v->labels), at)) {
    const Object& o = store_->names(id);
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
