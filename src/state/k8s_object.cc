#include "state/k8s_object.h"

#include <arpa/inet.h>
#include <simdjson.h>

#include <algorithm>
#include <cctype>
#include <cstring>

#include "json/json_scan.h"


namespace annals::state {

namespace {

// Dotted-quad IPv4 as inet_pton(AF_INET) takes it: four decimal octets of at
// most 255, no leading zeros, nothing else. Flow enrichment parses two
// addresses a flow, so this skips the copy and the library call.
bool ParseIpv4(std::string_view s, uint8_t out[4]) {
  size_t i = 0;
  for (int octet = 0; octet < 4; ++octet) {
    if (octet > 0) {
      if (i >= s.size() || s[i] != '.') return false;
      ++i;
    }
    const size_t start = i;
    unsigned value = 0;
    while (i < s.size() && i - start < 3 && s[i] >= '0' && s[i] <= '9') value = value * 10 + (s[i++] - '0');
    const size_t digits = i - start;
    if (digits == 0 || value > 255 || (digits > 1 && s[start] == '0')) return false;
    out[octet] = static_cast<uint8_t>(value);
  }
  return i == s.size();
}

}  // namespace

std::optional<IpKey> ParseIp(std::string_view s) {
  IpKey k{};
  if (ParseIpv4(s, k.data() + 12)) {
    k[10] = k[11] = 0xff;
    return k;
  }
  if (s.empty() || s.size() > 45 || s.find('\0') != std::string_view::npos) return std::nullopt;
  char buf[64];
  std::memcpy(buf, s.data(), s.size());
  buf[s.size()] = 0;
  in6_addr v6;
  if (::inet_pton(AF_INET6, buf, &v6) == 1) {
    std::memcpy(k.data(), &v6, 16);
    return k;
  }
  return std::nullopt;
}

std::string FormatIp(const IpKey& k) {
  char buf[64];
  static const uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::memcmp(k.data(), kMapped, 12) == 0) {
    ::inet_ntop(AF_INET, k.data() + 12, buf, sizeof(buf));
  } else {
    ::inet_ntop(AF_INET6, k.data(), buf, sizeof(buf));
  }
  return buf;
}

std::string_view RawMember(std::string_view event_json, std::string_view key) {
  return json_util::RawMemberValue(event_json, key);
}

namespace {

std::string Str(simdjson::dom::element e, const char* key) {
  std::string_view v;
  if (e[key].get_string().get(v) == simdjson::SUCCESS) return std::string(v);
  return "";
}

void StringMap(simdjson::dom::element e, const char* key,
               std::vector<std::pair<std::string, std::string>>* out) {
  simdjson::dom::object obj;
  if (e[key].get_object().get(obj) != simdjson::SUCCESS) return;
  for (auto [k, v] : obj) {
    std::string_view sv;
    if (v.get_string().get(sv) == simdjson::SUCCESS) out->emplace_back(std::string(k), std::string(sv));
  }
  std::sort(out->begin(), out->end());
}

}  // namespace

std::string_view ObjectOfEntry(std::string_view meta, std::string_view payload) {
  if (meta.find(R"("type":"k8s.watch")") != std::string_view::npos) return payload;
  return RawMember(payload, "responseObject");
}

StatusOr<ObjectFacts> ReadObjectFacts(std::string_view json, std::string_view kind_hint) {
  thread_local simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(json.data(), json.size()).get(doc) != simdjson::SUCCESS || !doc.is_object())
    return InvalidArgumentError("object is not valid JSON");
  ObjectFacts f;
  f.kind = Str(doc, "kind");
  if (f.kind.empty()) f.kind = std::string(kind_hint);
  f.api_version = Str(doc, "apiVersion");
  simdjson::dom::element md;
  if (doc["metadata"].get(md) != simdjson::SUCCESS || !md.is_object())
    return NotFoundError("object has no metadata");
  f.uid = Str(md, "uid");
  if (f.uid.empty()) return NotFoundError("object has no metadata.uid");
  f.name = Str(md, "name");
  f.namespace_ = Str(md, "namespace");
  f.resource_version = Str(md, "resourceVersion");
  simdjson::dom::element x;
  f.deleting = md["deletionTimestamp"].get(x) == simdjson::SUCCESS && !x.is_null();
  simdjson::dom::array fin;
  f.has_finalizers = md["finalizers"].get_array().get(fin) == simdjson::SUCCESS && fin.size() > 0;
  int64_t g;
  if (md["deletionGracePeriodSeconds"].get_int64().get(g) == simdjson::SUCCESS) f.grace_seconds = g;
  simdjson::dom::array owners;
  if (md["ownerReferences"].get_array().get(owners) == simdjson::SUCCESS) {
    for (auto o : owners) {
      OwnerRef r{Str(o, "kind"), Str(o, "name"), Str(o, "uid"), false};
      bool c;
      if (o["controller"].get_bool().get(c) == simdjson::SUCCESS) r.controller = c;
      if (!r.uid.empty()) f.owners.push_back(std::move(r));
    }
  }
  StringMap(md, "labels", &f.labels);
  // One annotation is read: copying them all (kubectl's last-applied
  // configuration is a copy of the object) cost more than the rest. A
  // repeated key: the greatest value, as when they were sorted.
  simdjson::dom::object ann;
  if (md["annotations"].get_object().get(ann) == simdjson::SUCCESS) {
    bool found = false;
    for (auto [k, v] : ann) {
      std::string_view sv;
      if (k != "meta.helm.sh/release-name" || v.get_string().get(sv) != simdjson::SUCCESS) continue;
      if (!found || sv > f.helm_release) f.helm_release = std::string(sv);
      found = true;
    }
  }
  simdjson::dom::element spec, status;
  const bool has_spec = doc["spec"].get(spec) == simdjson::SUCCESS && spec.is_object();
  const bool has_status = doc["status"].get(status) == simdjson::SUCCESS && status.is_object();
  if (f.kind == "Pod") {
    if (has_spec) {
      bool hn;
      if (spec["hostNetwork"].get_bool().get(hn) == simdjson::SUCCESS) f.host_network = hn;
      f.node_name = Str(spec, "nodeName");
      f.service_account = Str(spec, "serviceAccountName");
      if (f.service_account.empty()) f.service_account = Str(spec, "serviceAccount");
    }
    if (has_status) {
      f.phase = Str(status, "phase");
      simdjson::dom::array ips;
      if (status["podIPs"].get_array().get(ips) == simdjson::SUCCESS) {
        for (auto e : ips)
          if (auto ip = ParseIp(Str(e, "ip"))) f.pod_ips.push_back(*ip);
      }
      if (f.pod_ips.empty())
        if (auto ip = ParseIp(Str(status, "podIP"))) f.pod_ips.push_back(*ip);
    }
  } else if (f.kind == "Service" && has_spec) {
    StringMap(spec, "selector", &f.selector);
  } else if (f.kind == "Namespace" && has_spec) {
    // A Namespace's finalizers live in spec.finalizers: deleted, it stays
    // Terminating until the namespace controller has emptied it.
    simdjson::dom::array sfin;
    if (spec["finalizers"].get_array().get(sfin) == simdjson::SUCCESS && sfin.size() > 0)
      f.has_finalizers = true;
  }
  return f;
}

std::string_view StringMember(simdjson::dom::element e, const char* key) {
  std::string_view v;
  if (e[key].get_string().get(v) != simdjson::SUCCESS) return {};
  return v;
}

bool IsWriteVerb(std::string_view verb) {
  return verb == "create" || verb == "update" || verb == "patch" || verb == "delete";
}

}  // namespace annals::state
