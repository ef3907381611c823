// Feeds arbitrary bytes to ReadObjectFacts, ReadMemberFacts and
// ReadAuditFields (the projection's reading of every object and audit
// event in the log, On-Demand in one pass). They may not crash; and on any
// text simdjson's DOM accepts as a JSON object, what they read must be what
// a lookup by name in the DOM finds (each name's first occurrence), for
// every fact and field the state engine keeps.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <simdjson.h>

#include "common/bytes.h"
#include "state/k8s_object.h"
#include "fuzz_check.h"

namespace {

using namespace annals;
using simdjson::dom::element;

std::string Str(element e, const char* key) {
  std::string_view v;
  return e[key].get_string().get(v) == simdjson::SUCCESS ? std::string(v) : std::string();
}

std::vector<std::pair<std::string, std::string>> StringMap(element e, const char* key) {
  std::vector<std::pair<std::string, std::string>> out;
  simdjson::dom::object obj;
  if (e[key].get_object().get(obj) != simdjson::SUCCESS) return out;
  for (auto [k, v] : obj) {
    std::string_view sv;
    if (v.get_string().get(sv) == simdjson::SUCCESS) out.emplace_back(std::string(k), std::string(sv));
  }
  std::sort(out.begin(), out.end());
  return out;
}

bool NonEmptyArray(element e, const char* key) {
  simdjson::dom::array a;
  return e[key].get_array().get(a) == simdjson::SUCCESS && a.size() > 0;
}

// What the DOM says of doc, checked against f (facts read from the same text).
void Compare(element doc, const StatusOr<state::ObjectFacts>& f) {
  if (!doc.is_object()) {
    CHECK(!f.ok());
    return;
  }
  element md;
  if (doc["metadata"].get(md) != simdjson::SUCCESS || !md.is_object() || Str(md, "uid").empty()) {
    CHECK(f.status().code() == StatusCode::kNotFound);
    return;
  }
  CHECK(f.ok());
  std::string kind = Str(doc, "kind");
  CHECK(f->kind == kind);
  CHECK(f->api_version == Str(doc, "apiVersion"));
  CHECK(f->uid == Str(md, "uid") && f->name == Str(md, "name") && f->namespace_ == Str(md, "namespace"));
  CHECK(f->resource_version == Str(md, "resourceVersion"));
  element x;
  CHECK(f->deleting == (md["deletionTimestamp"].get(x) == simdjson::SUCCESS && !x.is_null()));
  int64_t g = -1;
  if (md["deletionGracePeriodSeconds"].get_int64().get(g) != simdjson::SUCCESS) g = -1;
  CHECK(f->grace_seconds == g);
  size_t owners = 0;
  simdjson::dom::array refs;
  if (md["ownerReferences"].get_array().get(refs) == simdjson::SUCCESS) {
    for (element o : refs) {
      const std::string uid = Str(o, "uid");
      if (uid.empty()) continue;
      CHECK(owners < f->owners.size());
      const state::OwnerRef& r = f->owners[owners++];
      bool c = false;
      if (o["controller"].get_bool().get(c) != simdjson::SUCCESS) c = false;
      CHECK(r.uid == uid && r.kind == Str(o, "kind") && r.name == Str(o, "name") && r.controller == c);
    }
  }
  CHECK(owners == f->owners.size());
  CHECK(f->labels == StringMap(md, "labels"));
  std::string helm;
  for (const auto& [k, v] : StringMap(md, "annotations"))
    if (k == "meta.helm.sh/release-name") helm = v;
  CHECK(f->helm_release == helm);
  element spec, status;
  const bool has_spec = doc["spec"].get(spec) == simdjson::SUCCESS && spec.is_object();
  const bool has_status = doc["status"].get(status) == simdjson::SUCCESS && status.is_object();
  bool finalizers = NonEmptyArray(md, "finalizers");
  if (kind == "Namespace" && has_spec && NonEmptyArray(spec, "finalizers")) finalizers = true;
  CHECK(f->has_finalizers == finalizers);
  if (kind == "Pod" && has_spec) {
    bool hn = false;
    if (spec["hostNetwork"].get_bool().get(hn) != simdjson::SUCCESS) hn = false;
    CHECK(f->host_network == hn && f->node_name == Str(spec, "nodeName"));
    std::string sa = Str(spec, "serviceAccountName");
    if (sa.empty()) sa = Str(spec, "serviceAccount");
    CHECK(f->service_account == sa);
  }
  if (kind == "Pod" && has_status) {
    CHECK(f->phase == Str(status, "phase"));
    std::vector<state::IpKey> ips;
    simdjson::dom::array list;
    if (status["podIPs"].get_array().get(list) == simdjson::SUCCESS)
      for (element e : list)
        if (auto ip = state::ParseIp(Str(e, "ip"))) ips.push_back(*ip);
    if (ips.empty())
      if (auto ip = state::ParseIp(Str(status, "podIP"))) ips.push_back(*ip);
    CHECK(f->pod_ips == ips);
  }
  CHECK(f->selector == (kind == "Service" && has_spec ? StringMap(spec, "selector")
                                                       : std::vector<std::pair<std::string, std::string>>()));
}

// The audit event fields of doc (a JSON object) by DOM lookups, checked
// against a, and the written object against w.
void CompareAudit(element doc, const state::AuditFields& a, const state::WrittenObject& w) {
  CHECK(a.stage == Str(doc, "stage") && a.verb == Str(doc, "verb") && a.level == Str(doc, "level"));
  element x;
  CHECK(a.user == (doc["user"].get(x) == simdjson::SUCCESS ? Str(x, "username") : std::string()));
  CHECK(a.as == (doc["impersonatedUser"].get(x) == simdjson::SUCCESS ? Str(x, "username") : std::string()));
  element ref;
  const bool has_ref = doc["objectRef"].get(ref) == simdjson::SUCCESS;
  CHECK(a.resource == (has_ref ? Str(ref, "resource") : ""));
  CHECK(a.subresource == (has_ref ? Str(ref, "subresource") : ""));
  CHECK(a.api_group == (has_ref ? Str(ref, "apiGroup") : ""));
  CHECK(a.namespace_ == (has_ref ? Str(ref, "namespace") : ""));
  CHECK(a.name == (has_ref ? Str(ref, "name") : ""));
  int64_t code = 0;
  if (doc["responseStatus"].get(x) != simdjson::SUCCESS || x["code"].get_int64().get(code) != simdjson::SUCCESS)
    code = 0;
  CHECK(a.code == code);
  std::string time = Str(doc, "stageTimestamp");
  if (time.empty()) time = Str(doc, "timestamp");
  CHECK(a.time == time);
  std::string ip;
  simdjson::dom::array ips;
  if (doc["sourceIPs"].get_array().get(ips) == simdjson::SUCCESS && ips.size() > 0) {
    std::string_view v;
    if (ips.at(0).get_string().get(v) == simdjson::SUCCESS) ip = std::string(v);
  }
  CHECK(a.ip == ip);
  const std::string ua = Str(doc, "userAgent");
  CHECK(a.ua == ClipUtf8(ua, 256));
  element response;
  if (state::WroteObject(a.stage, a.verb, a.code) && doc["responseObject"].get(response) == simdjson::SUCCESS) {
    CHECK(w.present);
    Compare(response, w.facts);
  } else {
    CHECK(!w.present);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto facts = state::ReadObjectFacts(text);
  bool present = false;
  auto member = state::ReadMemberFacts(text, "responseObject", &present);
  CHECK(present || member.status().code() == StatusCode::kNotFound);

  state::AuditFields audit;
  state::WrittenObject written;
  const Status read = state::ReadAuditFields(text, &audit, &written);

  simdjson::dom::parser parser;
  element doc;
  if (parser.parse(text.data(), text.size()).get(doc) != simdjson::SUCCESS) return 0;
  CHECK(read.ok() == doc.is_object());
  if (doc.is_object()) CompareAudit(doc, audit, written);
  Compare(doc, facts);
  element response;
  if (doc.is_object() && doc["responseObject"].get(response) == simdjson::SUCCESS) {
    CHECK(present);
    Compare(response, member);
  } else if (doc.is_object()) {
    CHECK(!present);
  }
  return 0;
}
