#include "auth/auth_config.h"

#include "common/bytes.h"

#include <nlohmann/json.hpp>

namespace annals::auth {

using nlohmann::json;

StatusOr<Role> ParseRole(std::string_view name) {
  if (name == "ingest") return kIngest;
  if (name == "read") return kRead;
  if (name == "verify") return kVerify;
  if (name == "admin") return kAdmin;
  return InvalidArgumentError("unknown role \"" + std::string(name) +
                              "\" (roles: ingest, read, verify, admin)");
}

std::string RoleNames(uint8_t roles) {
  std::string out;
  for (auto [bit, name] : {std::pair{kIngest, "ingest"}, {kRead, "read"}, {kVerify, "verify"},
                           {kAdmin, "admin"}}) {
    if (!(roles & bit)) continue;
    if (!out.empty()) out += ',';
    out += name;
  }
  return out;
}

namespace {

// sources: where "ingest:<source>" roles go; null = not allowed here.
StatusOr<uint8_t> RoleList(const json& j, const std::string& where,
                           std::vector<std::string>* sources = nullptr) {
  if (!j.is_array()) return InvalidArgumentError(where + ": roles must be a list of strings");
  uint8_t roles = 0;
  for (const auto& r : j) {
    if (!r.is_string()) return InvalidArgumentError(where + ": roles must be a list of strings");
    const std::string& name = r.get_ref<const std::string&>();
    if (name.starts_with("ingest:")) {
      std::string source = name.substr(7);
      if (!sources) return InvalidArgumentError(where + ": per-source ingest roles are not allowed here");
      if (source != "k8s-audit" && source != "events" && source != "tcp" && source != "k8s-watch" &&
          source != "aws-cloudtrail" && source != "gcp-audit" && source != "azure-activity")
        return InvalidArgumentError(where + ": unknown ingest source \"" + source +
                                    "\" (sources: k8s-audit, k8s-watch, events, tcp, aws-cloudtrail, gcp-audit, "
                                    "azure-activity)");
      sources->push_back(std::move(source));
      continue;
    }
    auto role = ParseRole(name);
    if (!role.ok()) return InvalidArgumentError(where + ": " + role.status().message());
    roles |= *role;
  }
  return roles;
}

StatusOr<Binding> ParseBinding(const json& j, const std::string& where) {
  Binding b;
  if (j.is_array()) {
    ASSIGN_OR_RETURN(b.roles, RoleList(j, where, &b.ingest_sources));
    return b;
  }
  if (!j.is_object()) return InvalidArgumentError(where + ": a binding is a list of roles or {\"roles\",\"namespaces\"}");
  for (const auto& [k, v] : j.items()) {
    if (k == "roles") {
      ASSIGN_OR_RETURN(b.roles, RoleList(v, where, &b.ingest_sources));
    } else if (k == "namespaces") {
      if (!v.is_array()) return InvalidArgumentError(where + ": namespaces must be a list of strings");
      for (const auto& n : v) {
        if (!n.is_string() || n.get_ref<const std::string&>().empty())
          return InvalidArgumentError(where + ": namespaces must be non-empty strings");
        b.namespaces.push_back(n.get<std::string>());
      }
      if (b.namespaces.empty())
        return InvalidArgumentError(where + ": an empty namespaces list would allow none; leave it out to allow all");
    } else if (k == "cluster") {
      if (!v.is_string() || !ValidClusterName(v.get_ref<const std::string&>()))
        return InvalidArgumentError(where + ": cluster must be a name of 1 to 253 printable characters");
      b.cluster = v.get<std::string>();
    } else {
      return InvalidArgumentError(where + ": unknown key \"" + k + "\"");
    }
  }
  return b;
}

}  // namespace

StatusOr<AuthConfig> ParseAuthConfig(std::string_view text) {
  json j = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return InvalidArgumentError("auth config is not a JSON object");
  AuthConfig c;
  for (const auto& [k, v] : j.items()) {
    if (k == "tokens") {
      if (!v.is_string()) return InvalidArgumentError("tokens must be a file path");
      c.tokens_file = v.get<std::string>();
    } else if (k == "anonymous") {
      ASSIGN_OR_RETURN(c.anonymous, RoleList(v, "anonymous"));
    } else if (k == "authenticated") {
      ASSIGN_OR_RETURN(c.authenticated, ParseBinding(v, "authenticated"));
    } else if (k == "groups" || k == "users") {
      if (!v.is_object()) return InvalidArgumentError(k + " must be an object of name: binding");
      auto& dst = k == "groups" ? c.groups : c.users;
      for (const auto& [name, b] : v.items()) {
        ASSIGN_OR_RETURN(dst[name], ParseBinding(b, k + "." + name));
      }
    } else {
      return InvalidArgumentError("auth config: unknown key \"" + k + "\"");
    }
  }
  return c;
}

AuthConfig DefaultAuthConfig() {
  AuthConfig c;
  c.anonymous = kVerify;
  c.authenticated.roles = kAdmin;
  return c;
}

StatusOr<std::unordered_map<std::string, TokenIdentity>> ParseTokensFile(std::string_view text) {
  std::unordered_map<std::string, TokenIdentity> out;
  size_t line_no = 0;
  while (!text.empty()) {
    ++line_no;
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    auto f = SplitFields(line);
    if (f.empty() || f[0].front() == '#') continue;
    const std::string where = "tokens line " + std::to_string(line_no);
    if (f.size() < 2 || f.size() > 3)
      return InvalidArgumentError(where + ": want \"<sha256 hex> <user> [group,group...]\"");
    std::string hash(f[0]);
    if (hash.starts_with("sha256:")) hash.erase(0, 7);
    if (hash.size() != 64) return InvalidArgumentError(where + ": the token hash must be 64 hex digits (SHA-256)");
    for (char& ch : hash) {
      if (ch >= 'A' && ch <= 'F') ch = static_cast<char>(ch - 'A' + 'a');
      if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f')))
        return InvalidArgumentError(where + ": the token hash must be 64 hex digits (SHA-256)");
    }
    TokenIdentity id;
    id.user = std::string(f[1]);
    if (f.size() == 3) {
      std::string_view g = f[2];
      while (!g.empty()) {
        size_t comma = g.find(',');
        std::string_view one = g.substr(0, comma);
        if (one.empty()) return InvalidArgumentError(where + ": empty group name");
        id.groups.emplace_back(one);
        g.remove_prefix(comma == std::string_view::npos ? g.size() : comma + 1);
        if (comma != std::string_view::npos && g.empty()) return InvalidArgumentError(where + ": empty group name");
      }
    }
    if (!out.emplace(hash, std::move(id)).second)
      return InvalidArgumentError(where + ": the same token hash appears twice");
  }
  return out;
}

bool ValidClusterName(std::string_view name) {
  if (name.empty() || name.size() > 253) return false;
  // Well-formed UTF-8 (the name goes into JSON metadata as it is), no
  // control character or space.
  for (size_t i = 0; i < name.size();) {
    const unsigned char c = static_cast<unsigned char>(name[i]);
    if (c < 0x80) {
      if (c <= 0x20 || c == 0x7f) return false;
      ++i;
      continue;
    }
    const size_t n = c >= 0xf0 && c <= 0xf4 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c <= 0xdf ? 2 : 0;
    if (n == 0 || c > 0xf4 || i + n > name.size()) return false;
    uint32_t cp = c & (n == 2 ? 0x1f : n == 3 ? 0x0f : 0x07);
    for (size_t k = 1; k < n; ++k) {
      const unsigned char cc = static_cast<unsigned char>(name[i + k]);
      if ((cc & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
      return false;
    i += n;
  }
  return true;
}

Permissions Resolve(const AuthConfig& config, std::string_view user,
                    const std::vector<std::string>& groups, bool authenticated) {
  Permissions p;
  auto apply = [&p](const Binding& b) {
    p.roles |= b.roles;
    if (b.roles & kRead) {
      if (b.namespaces.empty()) p.all_namespaces = true;
      else p.namespaces.insert(b.namespaces.begin(), b.namespaces.end());
    }
    p.ingest_sources.insert(b.ingest_sources.begin(), b.ingest_sources.end());
  };
  apply(Binding{config.anonymous, {}, {}, {}});
  if (!authenticated) return p;
  apply(config.authenticated);
  if (auto it = config.users.find(std::string(user)); it != config.users.end()) {
    apply(it->second);
    p.cluster = it->second.cluster;
  }
  for (const auto& g : groups)
    if (auto it = config.groups.find(g); it != config.groups.end()) {
      apply(it->second);
      if (p.cluster.empty()) p.cluster = it->second.cluster;
    }
  if (p.cluster.empty()) p.cluster = config.authenticated.cluster;
  if (p.all_namespaces) p.namespaces.clear();
  return p;
}

}  // namespace annals::auth
