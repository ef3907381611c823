#include "stream/change.h"

#include <simdjson.h>

#include <algorithm>
#include <mutex>
#include <shared_mutex>

#include "ledger/entry.h"
#include "state/k8s_object.h"
#include "stream/watch_format.h"

namespace annals::stream {

using nlohmann::json;

namespace {

// The payload as one line: raw CR and LF can only be white space in valid
// JSON (strings escape them), and an SSE data line may not contain them.
void AppendOneLine(std::string* out, std::string_view json_text) {
  size_t start = out->size();
  out->append(json_text);
  for (size_t i = start; i < out->size(); ++i)
    if ((*out)[i] == '\n' || (*out)[i] == '\r') (*out)[i] = ' ';
}

// The kind of the object a create or update of a resource (not a
// subresource) sends, when the event has no object with a uid to take it
// from (a Request-level create: the apiserver gives the uid in its
// answer). A subresource's body is another kind (DeleteOptions, Eviction,
// Scale, Binding), a patch's a patch: "" for those.
std::string RequestKind(std::string_view payload, const Change& c, std::string_view subresource) {
  if (!subresource.empty() || (c.verb != "create" && c.verb != "update")) return "";
  std::string_view req = state::RawMember(payload, "requestObject");
  if (req.empty()) return "";
  std::string_view kind = state::RawMember(req, "kind");
  if (kind.size() < 2 || kind.front() != '"') return "";
  json k = json::parse(kind, nullptr, false);
  if (!k.is_string() || k.get<std::string>() == "Status") return "";
  return k.get<std::string>();
}

// Fills the object part of c (kind, uid, labels) and *change from the
// event's responseObject (or requestObject); adds what changed for a write
// that made a version in the store.
void DescribeObject(const ChangeSources& src, std::string_view payload, std::string_view subresource, Change* c,
                    json* change) {
  std::string_view obj = state::RawMember(payload, "responseObject");
  auto facts = obj.empty() ? StatusOr<state::ObjectFacts>(NotFoundError("")) : state::ReadObjectFacts(obj);
  bool from_response = facts.ok() && facts->kind != "Status";
  if (!from_response) {
    std::string_view req = state::RawMember(payload, "requestObject");
    if (!req.empty()) facts = state::ReadObjectFacts(req);
  }
  if (!facts.ok() || facts->kind == "Status") {
    c->kind = RequestKind(payload, *c, subresource);
    return;
  }
  c->kind = facts->kind;
  c->uid = facts->uid;
  json labels = json::object();
  for (const auto& [k, v] : facts->labels) labels[k] = v;
  c->labels = std::move(labels);
  if (c->name.empty()) c->name = facts->name;
  if (c->namespace_.empty()) c->namespace_ = facts->namespace_;
  if (!from_response || c->stage != "ResponseComplete" || c->code < 200 || c->code >= 300 ||
      !state::IsWriteVerb(c->verb))
    return;
  // The version this entry made, and the one before it.
  int64_t prev = -1;
  bool found = false;
  {
    std::shared_lock lock(src.store->mutex());
    const uint32_t cluster = src.store->strings().Find(c->cluster);
    if (cluster == 0xffffffffu) return;
    int64_t id = src.store->FindUid(cluster, c->uid);
    if (id < 0) return;
    const auto& versions = src.store->object(static_cast<uint32_t>(id)).versions;
    auto it = std::find_if(versions.begin(), versions.end(),
                           [&](const state::Version& v) { return v.index == c->index; });
    if (it == versions.end()) return;
    found = true;
    (*change)["state"] = std::string(state::PresenceName(it->presence));
    if (it != versions.begin()) prev = static_cast<int64_t>((it - 1)->index);
  }
  if (!found) return;
  if (prev < 0) {
    (*change)["changes"] = json::array({json{{"op", "add"}, {"path", "/"}}});  // created
    return;
  }
  auto before = src.questions->BodyAt(static_cast<uint64_t>(prev));
  json after = json::parse(obj, nullptr, false);
  if (!before.ok() || !before->is_object() || after.is_discarded()) return;
  (*change)["previous_index"] = prev;
  (*change)["changes"] = state::WhatChanged(*before, after);
}

}  // namespace

StatusOr<std::shared_ptr<const Change>> MakeChange(const ChangeSources& src, uint64_t index,
                                                   std::string_view entry) {
  ASSIGN_OR_RETURN(auto dec, ledger::DecodeEntry(entry));
  std::string blob;
  auto read_payload = src.ledger->PayloadOf(dec, &blob);
  std::string_view payload;
  std::string unreadable;  // why the payload (a damaged or missing blob) could not be read
  if (read_payload.ok()) {
    payload = *read_payload;
  } else if (read_payload.status().code() == StatusCode::kDataLoss ||
             read_payload.status().code() == StatusCode::kNotFound) {
    unreadable = read_payload.status().message();
    payload = "null";
  } else {
    return read_payload.status();
  }
  auto c = std::make_shared<Change>();
  c->index = index;
  thread_local simdjson::dom::parser parser;
  simdjson::dom::element m;
  if (parser.parse(dec.meta.data(), dec.meta.size()).get(m) != simdjson::SUCCESS)
    return DataLossError("entry " + std::to_string(index) + ": metadata is not JSON");
  c->type = std::string(state::StringMember(m, "type"));
  c->cluster = std::string(state::StringMember(m, "cluster"));
  c->time = ParseRfc3339(state::StringMember(m, "rt")).value_or(0);
  json change;  // null unless an audit event
  state::AuditFields a;
  const bool audit = c->type == "k8s.audit" && state::ReadAuditEntry(m, payload, &a).ok();
  if (audit) {
    c->verb = a.verb;
    c->user = a.user;
    c->resource = a.resource;
    c->namespace_ = a.namespace_;
    c->name = a.name;
    c->stage = a.stage;
    c->code = static_cast<int>(a.code);
    std::string_view t = a.time;
    if (auto at = ParseRfc3339(t)) c->time = *at;
    change = json::object();
    std::string_view sub = a.subresource;
    DescribeObject(src, payload, sub, c.get(), &change);
    if (!c->cluster.empty()) change["cluster"] = c->cluster;
    change["kind"] = c->kind;
    change["resource"] = c->resource;
    if (!sub.empty()) change["subresource"] = std::string(sub);
    change["namespace"] = c->namespace_;
    change["name"] = c->name;
    change["uid"] = c->uid;
    change["verb"] = c->verb;
    change["user"] = c->user;
    change["stage"] = c->stage;
    change["code"] = c->code;
    change["time"] = std::string(t);
    if (!c->labels.is_null()) change["labels"] = c->labels;
  }
  std::string& f = c->frame;
  f.reserve(payload.size() + 512);
  f += kFieldId;
  f += std::to_string(index);
  f += "\n";
  f += kFieldData;
  c->data_begin = f.size();
  f += "{\"index\":";
  f += std::to_string(index);
  f += ",\"type\":";
  f += json(c->type).dump(-1, ' ', false, json::error_handler_t::replace);
  f += ",\"time\":\"";
  f += FormatRfc3339(c->time);
  f += "\",\"change\":";
  f += change.dump(-1, ' ', false, json::error_handler_t::replace);
  if (!unreadable.empty()) {
    f += ",\"unreadable\":";
    f += json(unreadable).dump(-1, ' ', false, json::error_handler_t::replace);
  }
  f += ",\"event\":";
  AppendOneLine(&f, payload);
  f += "}";
  c->data_size = f.size() - c->data_begin;
  f += kFrameEnd;
  return std::shared_ptr<const Change>(std::move(c));
}

bool ChangeFilter::Matches(const Change& c) const {
  auto eq = [](const std::string& want, const std::string& have) { return want.empty() || want == have; };
  if (!eq(type, c.type) || !eq(user, c.user) || !eq(verb, c.verb) || !eq(resource, c.resource) ||
      !eq(namespace_, c.namespace_) || !eq(name, c.name) || !eq(stage, c.stage) || !eq(cluster, c.cluster))
    return false;
  if (code && code != c.code) return false;
  if (selector && !selector->empty()) {
    if (c.labels.is_null()) return false;
    if (!selector->Matches(c.labels)) return false;
  }
  return true;
}

}  // namespace annals::stream
