#include "redact/redactor.h"

#include <simdjson.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif
#include <openssl/crypto.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <nlohmann/json.hpp>

#include "common/bytes.h"
#include "json/json_parse.h"

namespace annals::redact {

namespace {

constexpr int kMaxDepth = 64;
constexpr size_t kMaxListedPaths = 64;

char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

std::string LowerCopy(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = Lower(c);
  return out;
}

constexpr char kB64Url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string Base64UrlNoPad(const uint8_t* p, size_t n) {
  std::string out;
  size_t i = 0;
  for (; i + 3 <= n; i += 3) {
    const uint32_t v = (p[i] << 16) | (p[i + 1] << 8) | p[i + 2];
    for (int s = 18; s >= 0; s -= 6) out.push_back(kB64Url[(v >> s) & 63]);
  }
  if (n - i == 1) {
    const uint32_t v = p[i] << 16;
    out.push_back(kB64Url[(v >> 18) & 63]);
    out.push_back(kB64Url[(v >> 12) & 63]);
  } else if (n - i == 2) {
    const uint32_t v = (p[i] << 16) | (p[i + 1] << 8);
    for (int s = 18; s >= 6; s -= 6) out.push_back(kB64Url[(v >> s) & 63]);
  }
  return out;
}

int B64UrlValue(char c) {
  const char* f = std::strchr(kB64Url, c);
  return (c != 0 && f) ? static_cast<int>(f - kB64Url) : -1;
}

// RFC 6901: '~' -> "~0", '/' -> "~1".
void AppendPointerToken(std::string* out, std::string_view t) {
  out->push_back('/');
  for (char c : t) {
    if (c == '~') out->append("~0");
    else if (c == '/') out->append("~1");
    else out->push_back(c);
  }
}

// The decoded text of a JSON string's contents (between the quotes), for
// keys and the few values rules compare; invalid escapes fail.
bool Unescape(std::string_view in, std::string* out) {
  out->clear();
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c != '\\') {
      out->push_back(c);
      continue;
    }
    if (++i >= in.size()) return false;
    switch (in[i]) {
      case '"': out->push_back('"'); break;
      case '\\': out->push_back('\\'); break;
      case '/': out->push_back('/'); break;
      case 'b': out->push_back('\b'); break;
      case 'f': out->push_back('\f'); break;
      case 'n': out->push_back('\n'); break;
      case 'r': out->push_back('\r'); break;
      case 't': out->push_back('\t'); break;
      case 'u': {
        auto hex4 = [&](size_t at, uint32_t* v) {
          if (at + 4 > in.size()) return false;
          *v = 0;
          for (size_t k = at; k < at + 4; ++k) {
            const char h = in[k];
            *v <<= 4;
            if (h >= '0' && h <= '9') *v |= h - '0';
            else if (h >= 'a' && h <= 'f') *v |= h - 'a' + 10;
            else if (h >= 'A' && h <= 'F') *v |= h - 'A' + 10;
            else return false;
          }
          return true;
        };
        uint32_t cp;
        if (!hex4(i + 1, &cp)) return false;
        i += 4;
        if (cp >= 0xD800 && cp < 0xDC00 && i + 2 < in.size() && in[i + 1] == '\\' && in[i + 2] == 'u') {
          uint32_t lo;
          if (hex4(i + 3, &lo) && lo >= 0xDC00 && lo < 0xE000) {
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            i += 6;
          }
        }
        if (cp < 0x80) {
          out->push_back(static_cast<char>(cp));
        } else if (cp < 0x800) {
          out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
          out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
        } else if (cp < 0x10000) {
          out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
          out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
          out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
        } else {
          out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
          out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
          out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
          out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
        }
        break;
      }
      default: return false;
    }
  }
  return true;
}

std::vector<std::string> SplitPath(const std::string& p) {
  std::vector<std::string> out;
  size_t a = 0;
  while (a <= p.size()) {
    size_t b = p.find('/', a);
    if (b == std::string::npos) b = p.size();
    out.push_back(p.substr(a, b - a));
    a = b + 1;
  }
  return out;
}

}  // namespace

std::string CommitmentOf(const Hash& mac) {
  return std::string(kCommitmentPrefix) + Base64UrlNoPad(mac.data(), mac.size());
}

StatusOr<Hash> ParseCommitment(std::string_view c) {
  if (!c.starts_with(kCommitmentPrefix) || c.size() != kCommitmentPrefix.size() + 43)
    return InvalidArgumentError("not a commitment (\"redacted:v1:\" and 43 base64url characters)");
  c.remove_prefix(kCommitmentPrefix.size());
  Hash h{};
  uint32_t acc = 0;
  int bits = 0;
  size_t n = 0;
  for (char ch : c) {
    const int v = B64UrlValue(ch);
    if (v < 0) return InvalidArgumentError("not a commitment: bad base64url character");
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      if (n < h.size()) h[n++] = static_cast<uint8_t>(acc >> bits);
    }
  }
  if (n != h.size() || (acc & ((1u << bits) - 1)) != 0) return InvalidArgumentError("not a commitment: not 32 bytes");
  return h;
}

Hash MacOf(const Salt& salt, std::string_view value) {
  Hash h{};
  unsigned int len = 0;
  HMAC(EVP_sha256(), salt.data(), static_cast<int>(salt.size()), reinterpret_cast<const uint8_t*>(value.data()),
       value.size(), h.data(), &len);
  return h;
}

bool Verify(std::string_view commitment, std::string_view value, const Salt& salt) {
  auto want = ParseCommitment(commitment);
  if (!want.ok()) return false;
  const Hash got = MacOf(salt, value);
  return CRYPTO_memcmp(got.data(), want->data(), got.size()) == 0;
}

std::string SealedValue::commitment() const { return CommitmentOf(mac); }

// A parsed JSON value with its byte extent in the text. Strings and keys
// are views: into the text, or (escaped ones, decoded) into the Walk's
// storage.
struct Redactor::Node {
  enum Type : uint8_t { kObject, kArray, kString, kOther } type = kOther;
  size_t begin = 0, end = 0;  // [begin, end) in the text
  std::string_view str;       // a string's decoded contents
  // An array's elements; an object's member values, keys[i] naming
  // elements[i]. (Not pairs: a vector of an incomplete type is allowed, a
  // pair of one is not.)
  std::vector<std::string_view> keys;
  std::vector<Node> elements;
  const Node* Member(std::string_view k) const {
    for (size_t i = 0; i < keys.size(); ++i)
      if (keys[i] == k) return &elements[i];
    return nullptr;
  }
};

class Redactor::Walk {
 public:
  // root_kind: the kind of the top-level object when it does not say
  // (a list's items as the watch collector stores them).
  Walk(const Redactor& r, std::string_view text, std::string_view root_kind = {})
      : r_(r), t_(text), root_kind_(root_kind) {}

  Status Parse(Node* root) {
    pos_ = 0;
    RETURN_IF_ERROR(Value(root, 0));
    Ws();
    if (pos_ != t_.size()) return Error("text after the JSON value");
    return OkStatus();
  }

  // Marks what the policy names under `n`, whose place is path_;
  // `pairs`: n is an element of a list of name/value pairs (env, headers).
  void Visit(const Node& n, bool pairs = false) {
    if (n.type == Node::kArray) {
      for (size_t i = 0; i < n.elements.size(); ++i) {
        Push(i);
        Visit(n.elements[i], pairs);
        Pop();
      }
      return;
    }
    if (n.type != Node::kObject) return;
    const Node* kind = n.Member("kind");
    std::string_view k;
    if (kind && kind->type == Node::kString) k = kind->str;
    else if (!kind && path_.empty()) k = root_kind_;
    if (!k.empty()) {
      const Node* items = n.Member("items");
      for (const auto& rule : r_.policy_.kinds) {
        if (rule.kind.empty()) continue;
        if (rule.kind == k) ApplyKindRule(rule, n);
        // A list of them ("SecretList"): its items carry no kind.
        if (items && items->type == Node::kArray && k.size() == rule.kind.size() + 4 && k.starts_with(rule.kind) &&
            k.ends_with("List")) {
          Push("items");
          for (size_t i = 0; i < items->elements.size(); ++i) {
            Push(i);
            ApplyKindRule(rule, items->elements[i]);
            Pop();
          }
          Pop();
        }
      }
    }
    AuditEventRules(n);
    // {"name": N, "value": V} with a credential-like N.
    const Node* name = pairs ? n.Member("name") : nullptr;
    const Node* value = pairs ? n.Member("value") : nullptr;
    if (name && value && name->type == Node::kString && value->type == Node::kString) {
      const std::string lname = LowerCopy(name->str);
      for (const auto& c : r_.policy_.credential_names)
        if (lname.find(c) != std::string::npos) {
          Push("value");
          Mark(*value);
          Pop();
          break;
        }
    }
    for (size_t m = 0; m < n.keys.size(); ++m) {
      const std::string_view key = n.keys[m];
      const Node& v = n.elements[m];
      Push(key);
      if ((v.type == Node::kString || v.type == Node::kArray) && key.size() <= r_.max_key_) {
        lkey_.assign(key);
        for (auto& c : lkey_) c = Lower(c);
        if (std::find(r_.policy_.keys.begin(), r_.policy_.keys.end(), lkey_) != r_.policy_.keys.end()) {
          if (v.type == Node::kString) {
            Mark(v);
          } else {
            for (size_t i = 0; i < v.elements.size(); ++i)
              if (v.elements[i].type == Node::kString) {
                Push(i);
                Mark(v.elements[i]);
                Pop();
              }
          }
          Pop();
          continue;
        }
      }
      if (key == "annotations" && v.type == Node::kObject) {
        for (size_t a = 0; a < v.keys.size(); ++a)
          if (AnnotationMatches(v.keys[a])) {
            Push(v.keys[a]);
            Mark(v.elements[a]);
            Pop();
          }
      }
      bool list_of_pairs = false;
      if (v.type == Node::kArray && !r_.policy_.credential_names.empty() && key.size() <= 11) {
        lkey_.assign(key);
        for (auto& c : lkey_) c = Lower(c);
        list_of_pairs = lkey_ == "env" || lkey_ == "headers" || lkey_ == "httpheaders";
      }
      Visit(v, list_of_pairs);
      Pop();
    }
  }

  std::vector<std::pair<const Node*, std::string>>& marks() { return marks_; }

 private:
  // A step of the path from the root to where the walk is.
  struct Step {
    std::string_view key;
    size_t index = 0;
    bool is_index = false;
  };
  void Push(std::string_view key) { path_.push_back({key, 0, false}); }
  void Push(size_t index) { path_.push_back({{}, index, true}); }
  void Pop() { path_.pop_back(); }

  Status Error(const std::string& what) const {
    return InvalidArgumentError("redaction: malformed JSON at byte " + std::to_string(pos_) + ": " + what);
  }
  void Ws() {
    while (pos_ < t_.size() && (t_[pos_] == ' ' || t_[pos_] == '\t' || t_[pos_] == '\n' || t_[pos_] == '\r'))
      ++pos_;
  }
  Status String(Node* n) {
    n->type = Node::kString;
    n->begin = pos_++;
    const size_t start = pos_;
    for (;;) {
      const void* q = std::memchr(t_.data() + pos_, '"', t_.size() - pos_);
      if (!q) return Error("unterminated string");
      size_t at = static_cast<const char*>(q) - t_.data();
      size_t bs = 0;
      while (at - bs > start && t_[at - bs - 1] == '\\') ++bs;
      pos_ = at + 1;
      if (bs % 2 == 0) break;
    }
    const std::string_view raw = t_.substr(start, pos_ - 1 - start);
    for (unsigned char c : raw)
      if (c < 0x20) return Error("control character in a string");
    if (std::memchr(raw.data(), '\\', raw.size()) != nullptr) {
      decoded_.emplace_back();
      if (!Unescape(raw, &decoded_.back())) return Error("bad escape in a string");
      n->str = decoded_.back();
    } else {
      n->str = raw;
    }
    n->end = pos_;
    return OkStatus();
  }
  // After a member or an element: ',' (false: another follows) or the
  // container's closing byte (true: n ends there).
  StatusOr<bool> Next(Node* n, char close) {
    Ws();
    if (pos_ < t_.size() && t_[pos_] == ',') {
      ++pos_;
      return false;
    }
    if (pos_ < t_.size() && t_[pos_] == close) {
      n->end = ++pos_;
      return true;
    }
    return Error(std::string("',' or '") + close + "' expected");
  }
  Status Value(Node* n, int depth) {
    if (depth > kMaxDepth) return Error("nested more than 64 levels");
    Ws();
    if (pos_ >= t_.size()) return Error("value expected");
    const char c = t_[pos_];
    if (c == '"') return String(n);
    if (c == '{') {
      n->type = Node::kObject;
      n->begin = pos_++;
      Ws();
      if (pos_ < t_.size() && t_[pos_] == '}') {
        n->end = ++pos_;
        return OkStatus();
      }
      for (;;) {
        Ws();
        if (pos_ >= t_.size() || t_[pos_] != '"') return Error("member name expected");
        Node key;
        RETURN_IF_ERROR(String(&key));
        Ws();
        if (pos_ >= t_.size() || t_[pos_] != ':') return Error("':' expected");
        ++pos_;
        n->keys.push_back(key.str);
        n->elements.emplace_back();
        RETURN_IF_ERROR(Value(&n->elements.back(), depth + 1));
        ASSIGN_OR_RETURN(const bool closed, Next(n, '}'));
        if (closed) return OkStatus();
      }
    }
    if (c == '[') {
      n->type = Node::kArray;
      n->begin = pos_++;
      Ws();
      if (pos_ < t_.size() && t_[pos_] == ']') {
        n->end = ++pos_;
        return OkStatus();
      }
      for (;;) {
        n->elements.emplace_back();
        RETURN_IF_ERROR(Value(&n->elements.back(), depth + 1));
        ASSIGN_OR_RETURN(const bool closed, Next(n, ']'));
        if (closed) return OkStatus();
      }
    }
    // true, false, null, a number: the bytes up to the next delimiter.
    n->type = Node::kOther;
    n->begin = pos_;
    while (pos_ < t_.size() && std::strchr(",]} \t\n\r", t_[pos_]) == nullptr) ++pos_;
    n->end = pos_;
    const std::string_view lit = t_.substr(n->begin, n->end - n->begin);
    if (lit == "true" || lit == "false" || lit == "null") return OkStatus();
    // A number (RFC 8259 grammar).
    size_t i = 0;
    auto digits = [&] {
      const size_t s = i;
      while (i < lit.size() && lit[i] >= '0' && lit[i] <= '9') ++i;
      return i > s;
    };
    if (i < lit.size() && lit[i] == '-') ++i;
    if (i < lit.size() && lit[i] == '0') ++i;
    else if (!digits()) return Error("value expected");
    if (i < lit.size() && lit[i] == '.') {
      ++i;
      if (!digits()) return Error("digits expected after '.'");
    }
    if (i < lit.size() && (lit[i] == 'e' || lit[i] == 'E')) {
      ++i;
      if (i < lit.size() && (lit[i] == '+' || lit[i] == '-')) ++i;
      if (!digits()) return Error("digits expected in an exponent");
    }
    if (i != lit.size()) return Error("value expected");
    return OkStatus();
  }

  bool AnnotationMatches(std::string_view key) const {
    for (const auto& a : r_.policy_.annotations) {
      if (!a.empty() && a.back() == '*') {
        if (key.substr(0, a.size() - 1) == std::string_view(a).substr(0, a.size() - 1)) return true;
      } else if (key == a) {
        return true;
      }
    }
    return false;
  }

  // The rule's paths under object n.
  void ApplyKindRule(const KindRule& rule, const Node& n) {
    for (const auto& path : rule.paths) MarkPath(n, SplitPath(path), 0);
  }
  void MarkPath(const Node& n, const std::vector<std::string>& segs, size_t i) {
    if (i == segs.size()) {
      Mark(n);
      return;
    }
    if (segs[i] == "*") {
      if (n.type == Node::kObject) {
        for (size_t m = 0; m < n.keys.size(); ++m) {
          Push(n.keys[m]);
          MarkPath(n.elements[m], segs, i + 1);
          Pop();
        }
      } else if (n.type == Node::kArray) {
        for (size_t e = 0; e < n.elements.size(); ++e) {
          Push(e);
          MarkPath(n.elements[e], segs, i + 1);
          Pop();
        }
      }
      return;
    }
    if (n.type != Node::kObject) return;
    for (size_t m = 0; m < n.keys.size(); ++m)
      if (n.keys[m] == segs[i]) {
        Push(n.keys[m]);
        MarkPath(n.elements[m], segs, i + 1);
        Pop();
      }
  }

  // An audit event on a resource a rule names: its request and response
  // carry the object, or a patch of it (no kind).
  void AuditEventRules(const Node& ev) {
    const Node* ref = ev.Member("objectRef");
    if (!ref || ref->type != Node::kObject || !ev.Member("auditID")) return;
    const Node* res = ref->Member("resource");
    if (!res || res->type != Node::kString) return;
    std::string resource(res->str);
    if (const Node* sub = ref->Member("subresource"); sub && sub->type == Node::kString && !sub->str.empty())
      resource.append("/").append(sub->str);
    for (const auto& rule : r_.policy_.kinds) {
      if (rule.resource.empty() || rule.resource != resource) continue;
      for (const char* which : {"requestObject", "responseObject"}) {
        const Node* obj = ev.Member(which);
        if (!obj) continue;
        Push(which);
        if (obj->type == Node::kObject) {
          ApplyKindRule(rule, *obj);
        } else if (obj->type == Node::kArray) {
          // RFC 6902 JSON Patch: operations on the rule's paths.
          for (size_t i = 0; i < obj->elements.size(); ++i) {
            const Node& op = obj->elements[i];
            if (op.type != Node::kObject) continue;
            const Node* path = op.Member("path");
            const Node* value = op.Member("value");
            if (!path || !value || path->type != Node::kString) continue;
            for (const auto& rp : rule.paths) {
              const std::string top = "/" + rp.substr(0, rp.find('/'));
              // "" replaces the whole object.
              if (path->str.empty() || path->str == top || path->str.starts_with(top + "/")) {
                Push(i);
                Push("value");
                Mark(*value);
                Pop();
                Pop();
                break;
              }
            }
          }
        }
        Pop();
      }
    }
  }

  // Notes n, at path_, to be redacted.
  void Mark(const Node& n) {
    std::string ptr;
    for (const Step& s : path_) {
      if (s.is_index) ptr.append("/").append(std::to_string(s.index));
      else AppendPointerToken(&ptr, s.key);
    }
    marks_.emplace_back(&n, std::move(ptr));
  }

  const Redactor& r_;
  std::string_view t_;
  std::string_view root_kind_;
  size_t pos_ = 0;
  std::deque<std::string> decoded_;  // escaped strings, decoded (stable addresses)
  std::vector<Step> path_;
  std::string lkey_;
  std::vector<std::pair<const Node*, std::string>> marks_;
};

Redactor::Redactor(Policy policy) : policy_(std::move(policy)), version_(policy_.Version()) {
  // As Apply compares them: kinds, resources and annotation keys exactly,
  // member names without regard to case.
  auto add = [&](const std::string& s, bool caseless) {
    if (s.empty() || s.size() > kMaxTrigger) return;
    triggers_.push_back({caseless ? LowerCopy(s) : s, caseless});
    seen_.set(s.size() * 256 + static_cast<unsigned char>(Lower(s[0])));
  };
  for (const auto& k : policy_.kinds) {
    add(k.kind, false);
    if (!k.kind.empty()) add(k.kind + "List", false);
    add(k.resource.substr(0, k.resource.find('/')), false);
  }
  bool prefix = false;
  for (const auto& a : policy_.annotations) {
    if (!a.empty() && a.back() == '*') prefix = true;
    else if (a.size() <= kMaxTrigger) add(a, false);
    else prefix = true;  // too long to look for: any "annotations" sends the event on
  }
  if (prefix) add("annotations", false);
  for (const auto& k : policy_.keys) {
    if (k.size() > kMaxTrigger) always_ = true;  // cannot be looked for cheaply
    add(k, true);
    max_key_ = std::max(max_key_, k.size());
  }
  for (const auto& k : policy_.kinds)
    if (k.kind.size() + 4 > kMaxTrigger || k.resource.substr(0, k.resource.find('/')).size() > kMaxTrigger)
      always_ = true;
  // Name/value pairs: the lists that hold them (a container's env, a
  // probe's httpHeaders, request headers as a list).
  if (!policy_.credential_names.empty())
    for (const char* s : {"env", "headers", "httpHeaders"}) add(s, true);
}

bool Redactor::IsTrigger(std::string_view s) const {
  if (s.empty() || s.size() > kMaxTrigger ||
      !seen_.test(s.size() * 256 + static_cast<unsigned char>(Lower(s[0]))))
    return false;
  for (const auto& t : triggers_) {
    if (t.text.size() != s.size()) continue;
    if (!t.caseless) {
      if (t.text == s) return true;
      continue;
    }
    size_t i = 0;
    while (i < s.size() && Lower(s[i]) == t.text[i]) ++i;
    if (i == s.size()) return true;
  }
  return false;
}

bool Redactor::MayApply(std::string_view t, std::string_view root_kind) const {
  if (always_) return true;
  if (triggers_.empty()) return false;
  if (!root_kind.empty() && IsTrigger(root_kind)) return true;
  // One pass over the bytes, 16 at a time where they hold no backslash:
  // each string's extent and whether it holds an escape; a string is
  // compared only if some trigger has its (length, first letter).
  std::string buf;
  bool in_string = false, escaped = false, pending_backslash = false;
  size_t start = 0;
  bool found = false;
  auto quote = [&](size_t at) {
    if (!in_string) {
      in_string = true;
      escaped = false;
      start = at + 1;
      return;
    }
    in_string = false;
    const std::string_view s = t.substr(start, at - start);
    if (s.empty() || s.size() > 6 * kMaxTrigger) return;
    if (escaped) {
      // Escapes can spell any name ("d\u0061ta", "io\/last-applied"):
      // compare what they decode to, as Apply does. Undecodable: Apply
      // will refuse it and say why.
      found = !Unescape(s, &buf) || IsTrigger(buf);
    } else {
      found = IsTrigger(s);
    }
  };
  auto scalar = [&](size_t i, size_t stop) {
    for (; i < stop && !found; ++i) {
      if (pending_backslash) {
        pending_backslash = false;
        continue;
      }
      if (t[i] == '\\') {
        pending_backslash = true;
        escaped = true;
      } else if (t[i] == '"') {
        quote(i);
      }
    }
  };
  size_t i = 0;
#ifdef __SSE2__
  const __m128i q = _mm_set1_epi8('"'), bs = _mm_set1_epi8('\\');
  for (; i + 16 <= t.size() && !found; i += 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(t.data() + i));
    unsigned quotes = static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, q)));
    const unsigned slashes = static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, bs)));
    if (slashes != 0 || pending_backslash) {
      scalar(i, i + 16);
      continue;
    }
    while (quotes != 0 && !found) {
      quote(i + static_cast<size_t>(__builtin_ctz(quotes)));
      quotes &= quotes - 1;
    }
  }
#endif
  scalar(i, t.size());
  return found;
}

bool Redactor::MayApply(const simdjson::dom::element& doc, std::string_view root_kind) const {
  if (always_) return true;
  if (triggers_.empty()) return false;
  if (!root_kind.empty() && IsTrigger(root_kind)) return true;
  bool found = false;
  // A document with a repeated key stops the walk: say "maybe".
  Status walked = json_util::CheckUniqueKeys(doc, "document", [this](std::string_view s) { return IsTrigger(s); }, &found);
  return found || !walked.ok();
}

StatusOr<Redaction> Redactor::Apply(std::string_view json, const std::function<Salt()>& salt,
                                    std::string_view root_kind) const {
  Node root;
  Walk w(*this, json, root_kind);
  RETURN_IF_ERROR(w.Parse(&root));
  w.Visit(root);
  auto& marks = w.marks();
  Redaction out;
  if (marks.empty()) return out;
  // Document order; a value marked twice (two rules), or inside another
  // marked value, is redacted once, as the outer one.
  std::sort(marks.begin(), marks.end(), [](const auto& a, const auto& b) {
    return a.first->begin != b.first->begin ? a.first->begin < b.first->begin : a.first->end > b.first->end;
  });
  size_t copied = 0;
  for (const auto& [node, ptr] : marks) {
    if (node->begin < copied) continue;
    SealedValue v;
    v.pointer = ptr;
    v.offset = node->begin;
    v.value.assign(json.substr(node->begin, node->end - node->begin));
    if (salt) {
      v.salt = salt();
    } else if (RAND_bytes(v.salt.data(), static_cast<int>(v.salt.size())) != 1) {
      return InternalError("redaction: RAND_bytes failed");
    }
    v.mac = MacOf(v.salt, v.value);
    out.payload.append(json.substr(copied, node->begin - copied));
    out.payload.push_back('"');
    out.payload.append(v.commitment());
    out.payload.push_back('"');
    copied = node->end;
    out.values.push_back(std::move(v));
  }
  out.payload.append(json.substr(copied));
  return out;
}

std::string Redactor::RecordInMeta(std::string_view meta, const Redaction& r) const {
  nlohmann::json rec{{"policy", version_}, {"count", r.values.size()}};
  nlohmann::json paths = nlohmann::json::array();
  for (size_t i = 0; i < r.values.size() && i < kMaxListedPaths; ++i) paths.push_back(r.values[i].pointer);
  rec["paths"] = std::move(paths);
  std::string member = ",\"redacted\":" + rec.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "}";
  std::string out(meta);
  const size_t close = out.rfind('}');
  if (close == std::string::npos) return out;
  // An empty object takes the member without the comma.
  size_t before = close;
  while (before > 0 && (out[before - 1] == ' ' || out[before - 1] == '\n')) --before;
  if (before > 0 && out[before - 1] == '{') member.erase(0, 1);
  out.replace(close, 1, member);
  return out;
}

}  // namespace annals::redact
