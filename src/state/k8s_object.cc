#include "state/k8s_object.h"

#include <arpa/inet.h>
#include <simdjson.h>

#include <algorithm>
#include <cctype>
#include <cstring>

#include "common/bytes.h"
#include "common/find_bytes.h"
#include "json/json_members.h"
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

namespace od = simdjson::ondemand;

// On-Demand, in one pass: the members of an object are read in the order
// they come, each name's first occurrence counting (as the DOM's lookup by
// name finds the first), and what is not needed (managedFields, containers,
// conditions: most of an object) is stepped over by the structural index
// without being parsed. The DOM this replaced built a tape of the whole
// object, after a first pass had located it in its event.

// Calls fn(i, value) for each member of object v named names[i] (its first
// occurrence only); false if v is not an object or is malformed.
template <size_t N, typename Fn>
bool ForMembers(od::value v, const std::array<std::string_view, N>& names, Fn&& fn) {
  static_assert(N <= 32);
  od::object obj;
  if (v.get_object().get(obj) != simdjson::SUCCESS) return false;
  uint32_t seen = 0;
  for (auto member : obj) {
    od::field f;
    if (std::move(member).get(f) != simdjson::SUCCESS) return false;
    // The name as written when it has no escapes (nearly always: no copy),
    // else decoded; stage 1 found its closing quote, so the scan ends.
    const char* raw = f.key().raw();
    size_t len = 0;
    while (raw[len] != '"' && raw[len] != '\\') ++len;
    std::string_view name(raw, len);
    if (raw[len] == '\\' && f.unescaped_key().get(name) != simdjson::SUCCESS) return false;
    // Length and first byte first: most names differ there.
    size_t i = 0;
    while (i < N && (names[i].size() != name.size() || names[i][0] != name[0] || names[i] != name)) ++i;
    if (i == N || (seen & (uint32_t{1} << i)) != 0) continue;
    seen |= uint32_t{1} << i;
    fn(i, f.value());
  }
  return true;
}

std::string Str(od::value v) {
  std::string_view s;
  return v.get_string().get(s) == simdjson::SUCCESS ? std::string(s) : std::string();
}

// Every member of object v with a string value (a repeated name each time),
// sorted.
void StringMap(od::value v, std::vector<std::pair<std::string, std::string>>* out) {
  od::object obj;
  if (v.get_object().get(obj) != simdjson::SUCCESS) return;
  for (auto member : obj) {
    od::field f;
    std::string_view k, sv;
    if (std::move(member).get(f) != simdjson::SUCCESS || f.unescaped_key().get(k) != simdjson::SUCCESS) break;
    if (f.value().get_string().get(sv) == simdjson::SUCCESS) out->emplace_back(std::string(k), std::string(sv));
  }
  std::sort(out->begin(), out->end());
}

bool NonEmptyArray(od::value v) {
  od::array a;
  bool empty = true;
  return v.get_array().get(a) == simdjson::SUCCESS && a.is_empty().get(empty) == simdjson::SUCCESS && !empty;
}

OwnerRef ReadOwner(od::value o) {
  OwnerRef r;
  static constexpr std::array<std::string_view, 4> kNames = {"kind", "name", "uid", "controller"};
  ForMembers(o, kNames, [&](size_t i, od::value v) {
    if (i == 0) r.kind = Str(v);
    if (i == 1) r.name = Str(v);
    if (i == 2) r.uid = Str(v);
    bool c;
    if (i == 3 && v.get_bool().get(c) == simdjson::SUCCESS) r.controller = c;
  });
  return r;
}

// The Helm release annotation alone: kubectl's last-applied configuration
// is a copy of the object. A repeated key: the greatest value, as when the
// annotations were sorted.
std::string HelmRelease(od::value v) {
  std::string release;
  od::object ann;
  if (v.get_object().get(ann) != simdjson::SUCCESS) return release;
  bool found = false;
  for (auto member : ann) {
    od::field a;
    std::string_view k, sv;
    if (std::move(member).get(a) != simdjson::SUCCESS || a.unescaped_key().get(k) != simdjson::SUCCESS) break;
    if (k != "meta.helm.sh/release-name" || a.value().get_string().get(sv) != simdjson::SUCCESS) continue;
    if (!found || sv > release) release = std::string(sv);
    found = true;
  }
  return release;
}

// metadata's facts; false if it is not an object.
bool ReadMetadata(od::value md, ObjectFacts* f) {
  static constexpr std::array<std::string_view, 10> kNames = {
      "uid",        "name",    "namespace", "resourceVersion", "deletionTimestamp", "finalizers",
      "deletionGracePeriodSeconds", "ownerReferences", "labels", "annotations"};
  return ForMembers(md, kNames, [&](size_t i, od::value v) {
    switch (i) {
      case 0: f->uid = Str(v); break;
      case 1: f->name = Str(v); break;
      case 2: f->namespace_ = Str(v); break;
      case 3: f->resource_version = Str(v); break;
      case 4: {
        bool null = false;
        f->deleting = !(v.is_null().get(null) == simdjson::SUCCESS && null);
        break;
      }
      case 5: f->has_finalizers = NonEmptyArray(v); break;
      case 6: {
        int64_t g;
        if (v.get_int64().get(g) == simdjson::SUCCESS) f->grace_seconds = g;
        break;
      }
      case 7: {
        od::array owners;
        if (v.get_array().get(owners) != simdjson::SUCCESS) break;
        for (auto item : owners) {
          od::value o;
          if (std::move(item).get(o) != simdjson::SUCCESS) break;
          OwnerRef r = ReadOwner(o);
          if (!r.uid.empty()) f->owners.push_back(std::move(r));
        }
        break;
      }
      case 8: StringMap(v, &f->labels); break;
      case 9: f->helm_release = HelmRelease(v); break;
    }
  });
}

// What spec and status say, read before the kind may be known (members
// come in any order); ReadFacts keeps what the kind has.
struct SpecFacts {
  bool host_network = false, finalizers = false;
  std::string node_name, service_account_name, service_account;
  std::vector<std::pair<std::string, std::string>> selector;
};
struct StatusFacts {
  std::string phase, pod_ip;
  std::vector<IpKey> pod_ips;
};

bool ReadSpec(od::value v, SpecFacts* s) {
  static constexpr std::array<std::string_view, 6> kNames = {"hostNetwork", "nodeName", "serviceAccountName",
                                                             "serviceAccount", "selector", "finalizers"};
  return ForMembers(v, kNames, [&](size_t i, od::value x) {
    bool hn;
    if (i == 0 && x.get_bool().get(hn) == simdjson::SUCCESS) s->host_network = hn;
    if (i == 1) s->node_name = Str(x);
    if (i == 2) s->service_account_name = Str(x);
    if (i == 3) s->service_account = Str(x);
    if (i == 4) StringMap(x, &s->selector);
    if (i == 5) s->finalizers = NonEmptyArray(x);
  });
}

bool ReadStatus(od::value v, StatusFacts* s) {
  static constexpr std::array<std::string_view, 3> kNames = {"phase", "podIP", "podIPs"};
  static constexpr std::array<std::string_view, 1> kIp = {"ip"};
  return ForMembers(v, kNames, [&](size_t i, od::value x) {
    if (i == 0) s->phase = Str(x);
    if (i == 1) s->pod_ip = Str(x);
    od::array ips;
    if (i != 2 || x.get_array().get(ips) != simdjson::SUCCESS) return;
    for (auto item : ips) {
      od::value e;
      if (std::move(item).get(e) != simdjson::SUCCESS) break;
      std::string ip;
      ForMembers(e, kIp, [&](size_t, od::value iv) { ip = Str(iv); });
      if (auto key = ParseIp(ip)) s->pod_ips.push_back(*key);
    }
  });
}

StatusOr<ObjectFacts> ReadFacts(od::value object, std::string_view kind_hint) {
  ObjectFacts f;
  bool has_metadata = false, has_spec = false, has_status = false;
  SpecFacts spec;
  StatusFacts status;
  static constexpr std::array<std::string_view, 5> kNames = {"kind", "apiVersion", "metadata", "spec", "status"};
  const bool is_object = ForMembers(object, kNames, [&](size_t i, od::value v) {
    if (i == 0) f.kind = Str(v);
    if (i == 1) f.api_version = Str(v);
    if (i == 2) has_metadata = ReadMetadata(v, &f);
    if (i == 3) has_spec = ReadSpec(v, &spec);
    if (i == 4) has_status = ReadStatus(v, &status);
  });
  if (!is_object) return InvalidArgumentError("object is not valid JSON");
  if (f.kind.empty()) f.kind = std::string(kind_hint);
  if (!has_metadata) return NotFoundError("object has no metadata");
  if (f.uid.empty()) return NotFoundError("object has no metadata.uid");
  if (f.kind == "Pod") {
    if (has_spec) {
      f.host_network = spec.host_network;
      f.node_name = std::move(spec.node_name);
      f.service_account =
          spec.service_account_name.empty() ? std::move(spec.service_account) : std::move(spec.service_account_name);
    }
    if (has_status) {
      f.phase = std::move(status.phase);
      f.pod_ips = std::move(status.pod_ips);
      if (f.pod_ips.empty())
        if (auto ip = ParseIp(status.pod_ip)) f.pod_ips.push_back(*ip);
    }
  } else if (f.kind == "Service" && has_spec) {
    f.selector = std::move(spec.selector);
  } else if (f.kind == "Namespace" && has_spec) {
    // A Namespace's finalizers live in spec.finalizers: deleted, it stays
    // Terminating until the namespace controller has emptied it.
    if (spec.finalizers) f.has_finalizers = true;
  }
  return f;
}

}  // namespace

std::string_view ObjectOfEntry(std::string_view meta, std::string_view payload) {
  if (meta.find(R"("type":"k8s.watch")") != std::string_view::npos) return payload;
  return RawMember(payload, "responseObject");
}

StatusOr<ObjectFacts> ReadObjectFacts(std::string_view json, std::string_view kind_hint) {
  od::value v;
  if (json_util::Value(json).get(v) != simdjson::SUCCESS) return InvalidArgumentError("object is not valid JSON");
  return ReadFacts(v, kind_hint);
}

StatusOr<ObjectFacts> ReadMemberFacts(std::string_view event_json, std::string_view member, bool* present) {
  od::value v;
  *present = json_util::MemberValue(event_json, member).get(v) == simdjson::SUCCESS;
  if (!*present) return NotFoundError("no " + std::string(member));
  return ReadFacts(v, {});
}

std::string_view StringMember(simdjson::dom::element e, const char* key) {
  std::string_view v;
  if (e[key].get_string().get(v) != simdjson::SUCCESS) return {};
  return v;
}

bool IsWriteVerb(std::string_view verb) {
  return verb == "create" || verb == "update" || verb == "patch" || verb == "delete";
}

bool WroteObject(std::string_view stage, std::string_view verb, int64_t code) {
  return stage == "ResponseComplete" && code >= 200 && code < 300 && IsWriteVerb(verb);
}

Status ReadAuditEntry(simdjson::dom::element meta, std::string_view payload, AuditFields* out,
                      WrittenObject* written) {
  int64_t version = 1;
  if (meta["v"].get_int64().get(version) != simdjson::SUCCESS) version = 1;
  if (version >= 2) return ReadAuditFields(payload, out, written);
  simdjson::dom::object a;
  if (meta["audit"].get_object().get(a) != simdjson::SUCCESS) return NotFoundError("no audit fields");
  *out = AuditFields{};
  // One pass over the block, not a lookup by name for each.
  json_util::ScanMembers(a,
                         {{"stage", &out->stage},
                          {"verb", &out->verb},
                          {"resource", &out->resource},
                          {"namespace", &out->namespace_},
                          {"name", &out->name},
                          {"time", &out->time},
                          {"user", &out->user},
                          {"subresource", &out->subresource},
                          {"group", &out->api_group},
                          {"level", &out->level},
                          {"ip", &out->ip},
                          {"ua", &out->ua}},
                         [&](std::string_view k, simdjson::dom::element v) {
                           if (k == "code" && v.get_int64().get(out->code) != simdjson::SUCCESS) out->code = 0;
                         });
  if (written && WroteObject(out->stage, out->verb, out->code))
    written->facts = ReadMemberFacts(payload, "responseObject", &written->present);
  // Who the request acted as, when impersonated: the payload says so only
  // then, so look for the member before parsing anything (ContainsBytes:
  // memmem, not string_view::find, which stops at every '"').
  static constexpr std::string_view kImpersonated = "\"impersonatedUser\"";
  if (ContainsBytes(payload, kImpersonated)) {
    std::string_view imp = RawMember(payload, "impersonatedUser");
    simdjson::dom::element iu;
    thread_local simdjson::dom::parser imp_parser;
    if (!imp.empty() && imp_parser.parse(imp.data(), imp.size()).get(iu) == simdjson::SUCCESS)
      out->as = StringMember(iu, "username");
  }
  return OkStatus();
}

Status ReadAuditFields(std::string_view event, AuditFields* out, WrittenObject* written) {
  thread_local json_util::PaddedParser parser;
  thread_local od::document doc;
  *out = AuditFields{};
  od::value v;
  if (parser.Value(event, &doc).get(v) != simdjson::SUCCESS) return DataLossError("audit event is not JSON");
  auto str = [](od::value x) {
    std::string_view s;
    return x.get_string().get(s) == simdjson::SUCCESS ? s : std::string_view();
  };
  static constexpr std::array<std::string_view, 1> kUsername = {"username"};
  static constexpr std::array<std::string_view, 5> kRef = {"resource", "subresource", "apiGroup", "namespace", "name"};
  static constexpr std::array<std::string_view, 1> kCode = {"code"};
  static constexpr std::array<std::string_view, 12> kNames = {
      "stage",     "verb",           "level",     "user",      "objectRef",        "responseStatus", "stageTimestamp",
      "timestamp", "sourceIPs",      "userAgent", "impersonatedUser", "responseObject"};
  std::string_view v1beta1_time;
  bool deferred = false;  // a responseObject came before what says whether it was written
  bool have_stage = false, have_verb = false, have_status = false;
  const bool is_object = ForMembers(v, kNames, [&](size_t i, od::value x) {
    switch (i) {
      case 0: out->stage = str(x), have_stage = true; break;
      case 1: out->verb = str(x), have_verb = true; break;
      case 2: out->level = str(x); break;
      case 3: ForMembers(x, kUsername, [&](size_t, od::value u) { out->user = str(u); }); break;
      case 4:
        ForMembers(x, kRef, [&](size_t k, od::value r) {
          std::string_view* slots[] = {&out->resource, &out->subresource, &out->api_group, &out->namespace_, &out->name};
          *slots[k] = str(r);
        });
        break;
      case 5:
        have_status = true;
        ForMembers(x, kCode, [&](size_t, od::value c) {
          if (c.get_int64().get(out->code) != simdjson::SUCCESS) out->code = 0;
        });
        break;
      case 6: out->time = str(x); break;
      case 7: v1beta1_time = str(x); break;
      case 8: {
        od::array ips;
        if (x.get_array().get(ips) != simdjson::SUCCESS) break;
        for (auto first : ips) {
          od::value ip;
          if (std::move(first).get(ip) == simdjson::SUCCESS) out->ip = str(ip);
          break;
        }
        break;
      }
      case 9: out->ua = ClipUtf8(str(x), 256); break;
      case 10: ForMembers(x, kUsername, [&](size_t, od::value u) { out->as = str(u); }); break;
      case 11:
        if (!written) break;
        // Kubernetes writes stage, verb and responseStatus before it; if
        // some event does not, the object is read again below.
        if (!have_stage || !have_verb || !have_status) {
          deferred = true;
        } else if (WroteObject(out->stage, out->verb, out->code)) {
          written->present = true;
          written->facts = ReadFacts(x, {});
        }
        break;
    }
  });
  if (!is_object) return DataLossError("audit event is not a JSON object");
  if (out->time.empty()) out->time = v1beta1_time;
  if (deferred && WroteObject(out->stage, out->verb, out->code))
    written->facts = ReadMemberFacts(event, "responseObject", &written->present);  // json_util's parser: *out stays
  return OkStatus();
}

}  // namespace annals::state
