#include "ingest/k8s_audit.h"

#include <simdjson.h>

#include <array>
#include <cstring>

#include "ingest/json_lines.h"
#include "ingest/json_members.h"

namespace annals::ingest {

namespace {

size_t SkipWs(std::string_view s, size_t i) {
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) ++i;
  return i;
}

// End of the string starting at s[i] == '"'. Strings are most of an
// event's bytes: memchr finds each candidate quote, and a quote preceded by
// an odd run of backslashes is escaped.
size_t SkipString(std::string_view s, size_t i) {
  const char* base = s.data();
  size_t j = i + 1;
  while (j < s.size()) {
    const void* q = std::memchr(base + j, '"', s.size() - j);
    if (q == nullptr) return s.size();
    const size_t k = static_cast<size_t>(static_cast<const char*>(q) - base);
    size_t backslashes = 0;  // stops at s[i], the opening quote
    while (base[k - 1 - backslashes] == '\\') ++backslashes;
    if (backslashes % 2 == 0) return k + 1;
    j = k + 1;
  }
  return s.size();
}

// The bytes SkipValue stops at inside an object or array.
constexpr std::array<bool, 256> kStructural = [] {
  std::array<bool, 256> t{};
  for (unsigned char c : std::string_view("\"{}[]")) t[c] = true;
  return t;
}();

// End of the JSON value starting at s[i] (s is valid JSON).
size_t SkipValue(std::string_view s, size_t i) {
  if (i >= s.size()) return i;
  if (s[i] == '"') return SkipString(s, i);
  if (s[i] == '{' || s[i] == '[') {
    int depth = 0;
    for (; i < s.size(); ++i) {
      const char c = s[i];
      if (!kStructural[static_cast<unsigned char>(c)]) continue;
      if (c == '"') {
        i = SkipString(s, i) - 1;
      } else if (c == '{' || c == '[') {
        ++depth;
      } else if (c == '}' || c == ']') {
        if (--depth == 0) return i + 1;
      }
    }
    return s.size();
  }
  while (i < s.size() && s[i] != ',' && s[i] != '}' && s[i] != ']' && s[i] != ' ' &&
         s[i] != '\n' && s[i] != '\r' && s[i] != '\t')
    ++i;
  return i;
}

// Does the member name `raw` (as written, escapes and all) name `key`?
// simdjson looks members up by their decoded names, so the raw scan below
// must too, or "it\u0065ms" would be taken for another member than the
// parser's "items". `key` is ASCII: an escape for anything else cannot match.
bool KeyEquals(std::string_view raw, std::string_view key) {
  if (raw.find('\\') == std::string_view::npos) return raw == key;
  std::string dec;
  for (size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] != '\\') {
      dec.push_back(raw[i]);
      continue;
    }
    if (++i >= raw.size()) return false;
    switch (raw[i]) {
      case 'b': dec.push_back('\b'); break;
      case 'f': dec.push_back('\f'); break;
      case 'n': dec.push_back('\n'); break;
      case 'r': dec.push_back('\r'); break;
      case 't': dec.push_back('\t'); break;
      case 'u': {
        if (i + 4 >= raw.size()) return false;
        unsigned v = 0;
        for (size_t k = i + 1; k <= i + 4; ++k) {
          const char h = raw[k];
          const int d = h >= '0' && h <= '9'   ? h - '0'
                        : h >= 'a' && h <= 'f' ? h - 'a' + 10
                        : h >= 'A' && h <= 'F' ? h - 'A' + 10
                                               : -1;
          if (d < 0) return false;
          v = v * 16 + static_cast<unsigned>(d);
        }
        if (v >= 0x80) return false;
        dec.push_back(static_cast<char>(v));
        i += 4;
        break;
      }
      default: dec.push_back(raw[i]);  // '"', '\\', '/'
    }
  }
  return dec == key;
}

std::string Str(simdjson::dom::element e, const char* key) {
  std::string_view v;
  if (e[key].get_string().get(v) == simdjson::SUCCESS) return std::string(v);
  return "";
}

}  // namespace

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
  ScanMembers(obj,
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
    ev.resource = Str(ref, "resource");
    ev.subresource = Str(ref, "subresource");
    ev.api_group = Str(ref, "apiGroup");
    ev.namespace_ = Str(ref, "namespace");
    ev.name = Str(ref, "name");
  }
  ev.code = static_cast<int>(code);
  ev.stage_timestamp = std::string(stage_ts.empty() ? ts : stage_ts);
  ev.source_ip = std::string(ip);
  ev.user_agent = std::string(ua);
  return ev;
}

namespace {

std::string_view Trim(std::string_view s) {
  size_t a = SkipWs(s, 0);
  size_t b = s.size();
  while (b > a && (s[b - 1] == ' ' || s[b - 1] == '\n' || s[b - 1] == '\r' || s[b - 1] == '\t')) --b;
  return s.substr(a, b - a);
}

}  // namespace

namespace {

// True if any of the 8 bytes of w is below 0x20, '"' or '\\' (the bytes
// a JSON string must escape), by the usual SWAR bit tricks: a byte b has
// (b - n) & ~b & 0x80 set when b < n (for n <= 0x80), and x ^ c is zero
// exactly where x holds c.
inline bool NeedsEscape8(uint64_t w) {
  constexpr uint64_t kOnes = 0x0101010101010101ull;
  constexpr uint64_t kHigh = 0x8080808080808080ull;
  const uint64_t below = (w - kOnes * 0x20) & ~w;
  const uint64_t q = w ^ (kOnes * '"');
  const uint64_t bs = w ^ (kOnes * '\\');
  const uint64_t zero_q = (q - kOnes) & ~q;
  const uint64_t zero_bs = (bs - kOnes) & ~bs;
  return ((below | zero_q | zero_bs) & kHigh) != 0;
}

}  // namespace

void AppendJsonString(std::string* out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->reserve(out->size() + s.size() + 2);
  out->push_back('"');
  size_t run = 0;  // start of the pending run of bytes that need no escape
  size_t i = 0;
  while (i < s.size()) {
    // Eight bytes at a time while none needs escaping (the usual case:
    // names, verbs, timestamps).
    while (i + 8 <= s.size()) {
      uint64_t w;
      std::memcpy(&w, s.data() + i, 8);
      if (NeedsEscape8(w)) break;
      i += 8;
    }
    if (i >= s.size()) break;
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') {
      ++i;
      continue;
    }
    out->append(s.data() + run, i - run);
    run = ++i;
    switch (c) {
      case '"': *out += "\\\""; break;
      case '\\': *out += "\\\\"; break;
      case '\n': *out += "\\n"; break;
      case '\r': *out += "\\r"; break;
      case '\t': *out += "\\t"; break;
      default:
        *out += "\\u00";
        out->push_back(kHex[c >> 4]);
        out->push_back(kHex[c & 15]);
    }
  }
  out->append(s.data() + run, s.size() - run);
  out->push_back('"');
}

void AppendJsonMember(std::string* out, std::string_view name, std::string_view value, bool optional) {
  if (optional && value.empty()) return;
  if (!out->empty() && out->back() != '{') *out += ',';
  AppendJsonString(out, name);
  *out += ':';
  AppendJsonString(out, value);
}

std::string_view RawMemberValue(std::string_view s, std::string_view key, size_t members) {
  size_t i = SkipWs(s, 0);
  if (i >= s.size() || s[i] != '{') return {};
  i = SkipWs(s, i + 1);
  for (size_t member = 1; i < s.size() && s[i] == '"'; ++member) {
    size_t kend = SkipString(s, i);
    std::string_view k = s.substr(i + 1, kend - i - 2);
    i = SkipWs(s, kend);
    if (i >= s.size() || s[i] != ':') return {};
    i = SkipWs(s, i + 1);
    if (member == members && KeyEquals(k, key)) {
      // The last member: its value ends where the object does.
      const size_t close = s.find_last_of('}');
      if (close == std::string_view::npos || close < i) return {};
      const size_t vend = s.find_last_not_of(" \t\r\n", close - 1) + 1;
      return s.substr(i, vend - i);
    }
    size_t vend = SkipValue(s, i);
    if (KeyEquals(k, key)) return s.substr(i, vend - i);
    i = SkipWs(s, vend);
    if (i < s.size() && s[i] == ',') i = SkipWs(s, i + 1);
  }
  return {};
}

StatusOr<std::vector<std::string_view>> RawArrayMember(std::string_view s, std::string_view key) {
  std::string_view v = RawMemberValue(s, key);
  if (v.empty()) return NotFoundError("no " + std::string(key));
  if (v[0] != '[') return InvalidArgumentError(std::string(key) + " is not an array");
  std::vector<std::string_view> out;
  size_t j = SkipWs(v, 1);
  while (j < v.size() && v[j] != ']') {
    size_t e = SkipValue(v, j);
    out.push_back(v.substr(j, e - j));
    j = SkipWs(v, e);
    if (j < v.size() && v[j] == ',') j = SkipWs(v, j + 1);
  }
  return out;
}

StatusOr<AuditEvent> ParseAuditEvent(std::string_view json, std::string_view what) {
  json = Trim(json);
  simdjson::dom::parser& parser = JsonParser();
  simdjson::dom::element doc;
  auto err = parser.parse(json.data(), json.size()).get(doc);
  if (err) return InvalidArgumentError(std::string(what) + ": " + JsonErrorMessage(err));
  return AuditEventFromDom(doc, json, what);
}

StatusOr<std::vector<AuditEvent>> ParseAuditBody(std::string_view body) {
  body = Trim(body);
  if (body.empty()) return InvalidArgumentError("empty body");
  simdjson::dom::parser& parser = JsonParser();
  simdjson::dom::element doc;
  auto err = parser.parse(body.data(), body.size()).get(doc);
  if (err) return InvalidArgumentError("body: " + JsonErrorMessage(err));
  if (!doc.is_object()) return InvalidArgumentError("body: not a JSON object");
  std::string_view kind;
  if (doc["kind"].get_string().get(kind) != simdjson::SUCCESS) kind = "";
  simdjson::dom::array items;
  const bool is_list = kind == "EventList" ||
                       (kind.empty() && doc["items"].get_array().get(items) == simdjson::SUCCESS);
  if (!is_list) {
    ASSIGN_OR_RETURN(AuditEvent ev, AuditEventFromDom(doc, body, "body"));
    return std::vector<AuditEvent>{std::move(ev)};
  }
  std::string_view api;
  if (doc["apiVersion"].get_string().get(api) == simdjson::SUCCESS &&
      !api.starts_with("audit.k8s.io/"))
    return InvalidArgumentError("EventList apiVersion \"" + std::string(api) + "\" is not audit.k8s.io");
  if (doc["items"].get_array().get(items) != simdjson::SUCCESS)
    return InvalidArgumentError("EventList has no items array");
  ASSIGN_OR_RETURN(auto raws, RawArrayMember(body, "items"));
  if (raws.size() != items.size())
    return InvalidArgumentError("EventList items could not be located exactly");
  std::vector<AuditEvent> out;
  out.reserve(raws.size());
  size_t k = 0;
  for (simdjson::dom::element item : items) {
    ASSIGN_OR_RETURN(AuditEvent ev, AuditEventFromDom(item, raws[k], "items[" + std::to_string(k) + "]"));
    out.push_back(std::move(ev));
    ++k;
  }
  return out;
}

namespace {

std::string MetaWithKey(const AuditEvent& e, std::string_view key, std::string_view source,
                        std::string_view receive_time) {
  std::string m;
  m.reserve(384 + e.user_agent.size());
  m += R"({"v":1,"src":)";
  AppendJsonString(&m, source);
  m += R"(,"rt":)";
  AppendJsonString(&m, receive_time);
  m += R"(,"ct":"application/json","type":"k8s.audit","key":)";
  AppendJsonString(&m, key);
  m += R"(,"audit":{)";
  auto field = [&m](std::string_view name, std::string_view value, bool optional = false) {
    AppendJsonMember(&m, name, value, optional);
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

}  // namespace

std::string AuditMeta(const AuditEvent& e, std::string_view source, std::string_view receive_time) {
  return MetaWithKey(e, e.DedupKey(), source, receive_time);
}

IngestItem AuditItem(const AuditEvent& e, std::string_view source, std::string_view receive_time) {
  IngestItem item;
  item.key = e.DedupKey();
  item.meta = MetaWithKey(e, item.key, source, receive_time);
  item.payload = e.raw;
  return item;
}

}  // namespace annals::ingest
