#include "redact/policy.h"

#include <nlohmann/json.hpp>

#include "common/bytes.h"
#include "common/sha256.h"
#include "json/json_parse.h"

namespace annals::redact {

namespace {

using nlohmann::json;

StatusOr<std::vector<std::string>> Strings(const json& j, const std::string& what) {
  if (!j.is_array()) return InvalidArgumentError("redaction policy: " + what + " must be an array of strings");
  std::vector<std::string> out;
  for (const auto& x : j) {
    if (!x.is_string() || x.get<std::string>().empty())
      return InvalidArgumentError("redaction policy: " + what + " must hold non-empty strings");
    out.push_back(x.get<std::string>());
  }
  return out;
}

Status CheckPath(const std::string& p, const std::string& what) {
  if (p.empty() || p.front() == '/' || p.back() == '/' || p.find("//") != std::string::npos)
    return InvalidArgumentError("redaction policy: " + what + " path \"" + p +
                                "\" must be member names joined by '/', e.g. \"data/*\"");
  return OkStatus();
}

}  // namespace

std::string Policy::Version() const {
  json j{{"name", name}, {"annotations", annotations}, {"keys", keys}, {"credential_names", credential_names}};
  json k = json::array();
  for (const auto& r : kinds) k.push_back({{"kind", r.kind}, {"resource", r.resource}, {"paths", r.paths}});
  j["kinds"] = k;
  return name + "@" + HexEncode(HashBytes(Sha256(j.dump()))).substr(0, 16);
}

Policy DefaultPolicy() {
  Policy p;
  p.kinds = {
      {"Secret", "secrets", {"data/*", "stringData/*"}},
      {"TokenRequest", "serviceaccounts/token", {"status/token"}},
      {"TokenReview", "tokenreviews", {"spec/token"}},
  };
  p.annotations = {"kubectl.kubernetes.io/last-applied-configuration"};
  p.keys = {"authorization", "proxy-authorization", "cookie",       "set-cookie",    "x-api-key",
            "x-auth-token",  "password",            "passwd",       "client_secret", "clientsecret",
            "access_token",  "refresh_token",       "id_token",     "private_key",   "secret_access_key"};
  p.credential_names = {"password", "passwd", "secret", "token", "apikey", "api_key", "api-key",
                        "private_key", "privatekey", "private-key", "credential", "access_key"};
  return p;
}

StatusOr<Policy> ParsePolicy(std::string_view text) {
  // Depth first: the JSON library recurses.
  if (Status d = json_util::CheckJsonDepth(text, "redaction policy"); !d.ok())
    return InvalidArgumentError("redaction policy: " + d.message());
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return InvalidArgumentError("redaction policy: not a JSON object");
  Policy p;
  bool defaults = true;
  if (j.contains("defaults")) {
    if (!j["defaults"].is_boolean()) return InvalidArgumentError("redaction policy: defaults must be true or false");
    defaults = j["defaults"].get<bool>();
  }
  if (defaults) p = DefaultPolicy();
  for (const auto& [k, v] : j.items()) {
    if (k == "defaults") continue;
    if (k == "name") {
      if (!v.is_string() || v.get<std::string>().empty() || v.get<std::string>().find('@') != std::string::npos)
        return InvalidArgumentError("redaction policy: name must be a non-empty string without '@'");
      p.name = v.get<std::string>();
    } else if (k == "annotations" || k == "keys" || k == "credential_names") {
      ASSIGN_OR_RETURN(auto list, Strings(v, k));
      auto& into = k == "annotations" ? p.annotations : k == "keys" ? p.keys : p.credential_names;
      for (auto& s : list) {
        if (k != "annotations")
          for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        if (k == "annotations" && s.find('*') != std::string::npos && s.find('*') != s.size() - 1)
          return InvalidArgumentError("redaction policy: annotation \"" + s + "\": '*' only at the end");
        into.push_back(std::move(s));
      }
    } else if (k == "kinds") {
      if (!v.is_array()) return InvalidArgumentError("redaction policy: kinds must be an array");
      for (const auto& r : v) {
        if (!r.is_object()) return InvalidArgumentError("redaction policy: each of kinds must be an object");
        KindRule rule;
        for (const auto& [rk, rv] : r.items()) {
          if (rk == "kind" || rk == "resource") {
            if (!rv.is_string()) return InvalidArgumentError("redaction policy: kinds[]." + rk + " must be a string");
            (rk == "kind" ? rule.kind : rule.resource) = rv.get<std::string>();
          } else if (rk == "paths") {
            ASSIGN_OR_RETURN(rule.paths, Strings(rv, "kinds[].paths"));
          } else {
            return InvalidArgumentError("redaction policy: unknown member kinds[]." + rk);
          }
        }
        if (rule.kind.empty() && rule.resource.empty())
          return InvalidArgumentError("redaction policy: each of kinds needs a kind or a resource");
        if (!rule.resource.empty() && (rule.resource.front() == '/' || rule.resource.back() == '/'))
          return InvalidArgumentError("redaction policy: kinds[] resource \"" + rule.resource +
                                      "\" must be RESOURCE or RESOURCE/SUBRESOURCE");
        if (rule.paths.empty()) return InvalidArgumentError("redaction policy: kinds[] " + rule.kind + " has no paths");
        for (const auto& path : rule.paths) RETURN_IF_ERROR(CheckPath(path, "kinds[] " + rule.kind));
        p.kinds.push_back(std::move(rule));
      }
    } else {
      return InvalidArgumentError("redaction policy: unknown member " + k);
    }
  }
  return p;
}

}  // namespace annals::redact
