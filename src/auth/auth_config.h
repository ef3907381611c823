// The auth files' parsers (docs/security.md): the roles config (JSON,
// `--auth-config`) and the bearer-token file (`--tokens`, SHA-256 hashes
// only), and the role arithmetic on them: which roles and namespaces a
// caller with a user name and groups holds.
//
// Pure functions on bytes (no I/O, no Boost): also linked into the fuzz
// build. Thread-compatible values.
#ifndef ANNALS_AUTH_AUTH_CONFIG_H_
#define ANNALS_AUTH_AUTH_CONFIG_H_

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/status.h"

namespace annals::auth {

// Roles are bits; a caller may hold several.
enum Role : uint8_t {
  kIngest = 1,  // may write (POST /v1/ingest/...)
  kRead = 2,    // may ask the questions (state, whois, history, events, enrich)
  kVerify = 4,  // the C2SP read path: checkpoint, tiles, entries, proofs
  kAdmin = 8,   // everything, /metrics included
};
StatusOr<Role> ParseRole(std::string_view name);
std::string RoleNames(uint8_t roles);  // "ingest,read" ...

// What one group or user is bound to. `namespaces` limits the read role
// granted by this binding; empty = every namespace. A role written
// "ingest:<source>" grants ingest for that source only ("k8s-audit": the
// webhook, "events": /v1/ingest/events, "tcp": the TCP connector); it is
// listed in ingest_sources, not in roles.
struct Binding {
  uint8_t roles = 0;
  std::vector<std::string> namespaces;
  std::vector<std::string> ingest_sources;
  // The cluster what this caller ingests is filed under ("" = none named
  // here): the webhook of cluster A and of cluster B post with different
  // credentials, and their events are told apart (docs/sources.md "Clusters").
  std::string cluster;
};

struct AuthConfig {
  std::string tokens_file;        // "" = no bearer tokens
  uint8_t anonymous = 0;          // roles of a caller without credentials
  Binding authenticated;          // what every authenticated caller holds
  std::map<std::string, Binding> groups, users;
};

// {"tokens": FILE, "anonymous": [roles], "authenticated": [roles] or
//  {"roles": [...], "namespaces": [...]}, "groups": {NAME: binding},
//  "users": {NAME: binding}} where a binding is [roles] or
//  {"roles": [...], "namespaces": [...], "cluster": NAME}. Unknown keys and
//  roles are errors.
StatusOr<AuthConfig> ParseAuthConfig(std::string_view json_text);

// The default with no --auth-config: authenticated callers are admins,
// anonymous ones may verify.
AuthConfig DefaultAuthConfig();

struct TokenIdentity {
  std::string user;
  std::vector<std::string> groups;
};
// Lines "<sha256 hex of the token> <user> [group,group...]"; blank lines
// and lines starting with '#' are skipped. Keyed by lowercase hex.
StatusOr<std::unordered_map<std::string, TokenIdentity>> ParseTokensFile(std::string_view text);

// What a caller may do.
struct Permissions {
  uint8_t roles = 0;
  bool all_namespaces = false;       // for kRead
  std::set<std::string> namespaces;  // for kRead when !all_namespaces
  std::set<std::string> ingest_sources;  // ingest for these sources only
  // The cluster this caller's ingest is filed under: its user binding's,
  // else that of the first of its groups (in the order given) that names
  // one; "" when none does.
  std::string cluster;

  bool Has(Role r) const { return (roles & (r | kAdmin)) != 0; }
  bool MayIngest(std::string_view source) const {
    return Has(kIngest) || ingest_sources.count(std::string(source)) > 0;
  }
  bool Limited() const { return Has(kRead) && !(roles & kAdmin) && !all_namespaces; }
  bool MayReadNamespace(std::string_view ns) const {
    if (!Has(kRead)) return false;
    if ((roles & kAdmin) || all_namespaces) return true;
    return namespaces.count(std::string(ns)) > 0;
  }
};
// A cluster name: 1 to 253 bytes, none a control character or a space
// (kubeconfig names such as EKS ARNs and gke_project_zone_name pass).
bool ValidClusterName(std::string_view name);

Permissions Resolve(const AuthConfig& config, std::string_view user,
                    const std::vector<std::string>& groups, bool authenticated);

}  // namespace annals::auth

#endif  // ANNALS_AUTH_AUTH_CONFIG_H_
