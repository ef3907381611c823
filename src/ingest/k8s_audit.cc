#include "ingest/k8s_audit.h"

#include <simdjson.h>

#include <algorithm>

#include "common/bytes.h"
#include "json/json_members.h"
#include "json/json_parse.h"
#include "json/json_scan.h"
#include "json/json_write.h"
#include "redact/redactor.h"

namespace annals::ingest {

using json_util::StringMember;

StatusOr<AuditEvent> AuditEventFromDom(const simdjson::dom::element& doc, std::string_view raw,
                                       std::string_view what) {
  auto bad = [&](const std::string& why) {
    return InvalidArgumentError(std::string(what) + ": " + why);
  };
  simdjson::dom::object obj;
  if (doc.get_object().get(obj) != simdjson::SUCCESS) return bad("not a JSON object");
  std::string_view kind, api_version, audit_id, stage, level, verb, user, stage_ts, ts, ip, ua;
  bool has_kind = false, has_api = false, has_user = false, has_ref = false, has_code = false,
       has_ips = false;
  simdjson::dom::element ref;
  int64_t code = 0;
  // The first of repeated keys counts, as with a lookup by name.
  json_util::ScanMembers(obj,
              {{"kind", &kind, &has_kind},
               {"apiVersion", &api_version, &has_api},
               {"auditID", &audit_id},
               {"stage", &stage},
               {"level", &level},
               {"verb", &verb},
               {"stageTimestamp", &stage_ts},
               {"timestamp", &ts},  // v1beta1
               {"userAgent", &ua}},
              [&](std::string_view k, simdjson::dom::element v) {
                if (k == "user" && !has_user) {
                  has_user = true;
                  if (v["username"].get_string().get(user) != simdjson::SUCCESS) user = {};
                } else if (k == "objectRef" && !has_ref) {
                  has_ref = true;
                  ref = v;
                } else if (k == "responseStatus" && !has_code) {
                  has_code = true;
                  if (v["code"].get_int64().get(code) != simdjson::SUCCESS) code = 0;
                } else if (k == "sourceIPs" && !has_ips) {
                  has_ips = true;
                  simdjson::dom::array ips;
                  if (v.get_array().get(ips) == simdjson::SUCCESS) {
                    for (auto first : ips) {
                      if (first.get_string().get(ip) != simdjson::SUCCESS) ip = {};
                      break;
                    }
                  }
                }
              });
  // A kind or apiVersion that is not a string is treated as absent.
  if (has_kind && kind != "Event")
    return bad("kind is \"" + std::string(kind) + "\", not an audit Event");
  if (has_api && !api_version.starts_with("audit.k8s.io/"))
    return bad("apiVersion \"" + std::string(api_version) + "\" is not audit.k8s.io");
  if (audit_id.empty()) return bad("not an audit Event: no auditID");
  if (stage.empty()) return bad("not an audit Event: no stage");
  AuditEvent ev;
  ev.raw = raw;
  ev.audit_id = std::string(audit_id);
  ev.stage = std::string(stage);
  ev.level = std::string(level);
  ev.verb = std::string(verb);
  ev.user = std::string(user);
  if (has_ref && ref.is_object()) {
    ev.resource = StringMember(ref, "resource");
    ev.subresource = StringMember(ref, "subresource");
    ev.api_group = StringMember(ref, "apiGroup");
    ev.namespace_ = StringMember(ref, "namespace");
    ev.name = StringMember(ref, "name");
  }
  ev.code = static_cast<int>(code);
  ev.stage_timestamp = std::string(stage_ts.empty() ? ts : stage_ts);
  ev.source_ip = std::string(ip);
  ev.user_agent = std::string(ua);
  return ev;
}

StatusOr<AuditEvent> ParseAuditEvent(std::string_view json, std::string_view what) {
  json = TrimJsonSpace(json);
  simdjson::dom::parser& parser = json_util::JsonParser();
  simdjson::dom::element doc;
  auto err = parser.parse(json.data(), json.size()).get(doc);
  if (err) return InvalidArgumentError(std::string(what) + ": " + json_util::JsonErrorMessage(err));
  RETURN_IF_ERROR(json_util::CheckUniqueKeys(doc, what));
  return AuditEventFromDom(doc, json, what);
}

StatusOr<std::vector<AuditEvent>> ParseAuditBody(std::string_view received, size_t readable,
                                                 const redact::Redactor* redactor) {
  std::string_view body = TrimJsonSpace(received);
  if (body.empty()) return InvalidArgumentError("empty body");
  // Bytes readable from the trimmed body's start.
  const size_t lead = static_cast<size_t>(body.data() - received.data());
  readable = readable > lead ? readable - lead : 0;
  simdjson::dom::parser& parser = json_util::JsonParser();
  simdjson::dom::element doc;
  auto err = parser.parse(body.data(), body.size(), !json_util::JsonPadded(body, readable)).get(doc);
  if (err) return InvalidArgumentError("body: " + json_util::JsonErrorMessage(err));
  if (!doc.is_object()) return InvalidArgumentError("body: not a JSON object");
  std::string_view kind;
  if (doc["kind"].get_string().get(kind) != simdjson::SUCCESS) kind = "";
  simdjson::dom::array items;
  const bool is_list = kind == "EventList" ||
                       (kind.empty() && doc["items"].get_array().get(items) == simdjson::SUCCESS);
  // Every object's keys are checked. With a redactor that does not apply
  // to every event anyway, the same walk looks at each event's names and
  // strings for its triggers (Redactor::MayApply), item by item.
  const bool look_for = redactor && !redactor->always();
  std::vector<bool> looked;
  if (!look_for) {
    RETURN_IF_ERROR(json_util::CheckUniqueKeys(doc, "body"));
  } else {
    auto look = [redactor](std::string_view s) { return redactor->Triggers(s); };
    bool found = false;
    if (!is_list || doc["items"].get_array().get(items) != simdjson::SUCCESS) {
      RETURN_IF_ERROR(json_util::CheckUniqueKeys(doc, "body", look, &found));
      looked.push_back(found);
    } else {
      RETURN_IF_ERROR(json_util::CheckUniqueMembers(doc, "body"));
      for (auto field : simdjson::dom::object(doc))
        if (field.key != "items") RETURN_IF_ERROR(json_util::CheckUniqueKeys(field.value, "body"));
      for (simdjson::dom::element item : items) {
        RETURN_IF_ERROR(json_util::CheckUniqueKeys(item, "body", look, &found));
        looked.push_back(found);
      }
    }
  }
  auto may_redact = [&](size_t k) { return !look_for || looked.at(k); };
  if (!is_list) {
    ASSIGN_OR_RETURN(AuditEvent ev, AuditEventFromDom(doc, body, "body"));
    ev.may_redact = may_redact(0);
    return std::vector<AuditEvent>{std::move(ev)};
  }
  std::string_view api;
  if (doc["apiVersion"].get_string().get(api) == simdjson::SUCCESS &&
      !api.starts_with("audit.k8s.io/"))
    return InvalidArgumentError("EventList apiVersion \"" + std::string(api) + "\" is not audit.k8s.io");
  if (doc["items"].get_array().get(items) != simdjson::SUCCESS)
    return InvalidArgumentError("EventList has no items array");
  ASSIGN_OR_RETURN(auto raws, json_util::RawArrayMember(body, "items", readable));
  if (raws.size() != items.size())
    return InvalidArgumentError("EventList items could not be located exactly");
  std::vector<AuditEvent> out;
  out.reserve(raws.size());
  size_t k = 0;
  for (simdjson::dom::element item : items) {
    ASSIGN_OR_RETURN(AuditEvent ev, AuditEventFromDom(item, raws[k], "items[" + std::to_string(k) + "]"));
    ev.may_redact = may_redact(k);
    out.push_back(std::move(ev));
    ++k;
  }
  return out;
}

namespace {

// Metadata version 2: what annals adds (source, receive time) and what
// names the event (type, dedup key). The fields it indexes are the
// payload's own (state::ReadAuditFields reads them); version 1 repeated
// them here, 225 bytes an event on average.
std::string MetaWithKey(std::string_view key, std::string_view source, std::string_view receive_time) {
  std::string m;
  m.reserve(128 + key.size());
  m += R"({"v":2,"src":)";
  json_util::AppendJsonString(&m, source);
  m += R"(,"rt":)";
  json_util::AppendJsonString(&m, receive_time);
  m += R"(,"ct":"application/json","type":"k8s.audit","key":)";
  json_util::AppendJsonString(&m, key);
  m += "}";
  return m;
}

}  // namespace

std::string AuditMetaV1(const AuditEvent& e, std::string_view source, std::string_view receive_time) {
  std::string m = MetaWithKey(e.DedupKey(), source, receive_time);
  m.replace(0, 6, R"({"v":1)");
  m.pop_back();  // the closing brace
  m += R"(,"audit":{)";
  auto field = [&m](std::string_view name, std::string_view value, bool optional = false) {
    json_util::AppendJsonMember(&m, name, value, optional);
  };
  field("stage", e.stage);
  field("verb", e.verb);
  field("user", e.user);
  field("resource", e.resource);
  field("subresource", e.subresource, true);
  field("group", e.api_group, true);
  field("namespace", e.namespace_);
  field("name", e.name);
  m += R"(,"code":)" + std::to_string(e.code);
  field("level", e.level);
  field("time", e.stage_timestamp);
  field("ip", e.source_ip, true);
  field("ua", std::string_view(e.user_agent).substr(0, 256), true);
  m += "}}";
  return m;
}

std::string AuditMeta(const AuditEvent& e, std::string_view source, std::string_view receive_time) {
  return MetaWithKey(e.DedupKey(), source, receive_time);
}

IngestItem AuditItem(const AuditEvent& e, std::string_view source, std::string_view receive_time) {
  IngestItem item;
  item.key = e.DedupKey();
  item.meta = MetaWithKey(item.key, source, receive_time);
  item.payload = e.raw;
  item.may_redact = e.may_redact;
  return item;
}

}  // namespace annals::ingest
