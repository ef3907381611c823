// Redaction policy: which values of an event are replaced by commitments
// before anything is durable (docs/security.md "Secrets"). Built-in
// defaults, or a JSON file (`serve --redaction-policy FILE`) that adds to
// them or replaces them. Pure: no I/O; the parser takes untrusted bytes
// (fuzz/redaction_policy_fuzzer.cc).
#ifndef ANNALS_REDACT_POLICY_H_
#define ANNALS_REDACT_POLICY_H_

#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace annals::redact {

// Values of a kind of Kubernetes object, wherever such an object appears
// (an audit event's requestObject/responseObject, a watch event's object,
// a list's items), and of the request and response of an audit event on
// `resource` (patches carry no kind: a merge patch is read like the object,
// a JSON Patch's operations on these paths have their `value` redacted).
struct KindRule {
  std::string kind;      // "Secret"
  std::string resource;  // "secrets", "serviceaccounts/token"; "" = by kind only
  // Member paths below the object, "/"-separated; "*" is every member of
  // an object (or element of an array): "data/*", "status/token".
  std::vector<std::string> paths;
};

struct Policy {
  std::string name = "default";
  std::vector<KindRule> kinds;
  // Annotation keys (metadata.annotations) whose values are redacted;
  // exact, or a prefix ending in '*'.
  std::vector<std::string> annotations;
  // Member names (case-insensitive, exact) whose string values are
  // redacted wherever they appear: headers, cloud request parameters.
  std::vector<std::string> keys;
  // {"name": N, "value": V} pairs (env variables, HTTP headers of probes):
  // V is redacted when N contains one of these (case-insensitive).
  std::vector<std::string> credential_names;

  // "<name>@<first 16 hex of SHA-256 of the canonical policy>": recorded
  // in each redacted entry's metadata.
  std::string Version() const;
  bool empty() const { return kinds.empty() && annotations.empty() && keys.empty() && credential_names.empty(); }
};

// Secret data and stringData, TokenRequest and TokenReview tokens, the
// last-applied-configuration annotation, Authorization-like headers and
// credential-named keys, and env values whose names look like credentials.
Policy DefaultPolicy();

// A policy file (JSON):
//   {"name": "...", "defaults": true|false,
//    "kinds": [{"kind": "ConfigMap", "resource": "configmaps", "paths": ["data/*", "binaryData/*"]}],
//    "annotations": ["example.com/token"], "keys": ["x-vault-token"],
//    "credential_names": ["dsn"]}
// With "defaults": true (the default) the built-in rules are kept and
// these added. Unknown members, empty strings and malformed paths are
// errors naming the member.
StatusOr<Policy> ParsePolicy(std::string_view json);

}  // namespace annals::redact

#endif  // ANNALS_REDACT_POLICY_H_
