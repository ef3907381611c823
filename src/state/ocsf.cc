#include "state/ocsf.h"

#include <array>
#include <cctype>
#include <string>

#include "common/time_util.h"

namespace annals::state {

using nlohmann::json;

namespace {

bool StartsWithWord(std::string_view s, std::string_view word) {
  if (s.size() < word.size()) return false;
  for (size_t i = 0; i < word.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(s[i])) != word[i]) return false;
  // "Get" in "GetObject", not in "Getaway": the next letter starts a word.
  return s.size() == word.size() || !std::islower(static_cast<unsigned char>(s[word.size()]));
}

constexpr std::array<const char*, 5> kActivityNames = {"Unknown", "Create", "Read", "Update", "Delete"};

}  // namespace

int OcsfActivity(std::string_view verb, bool cloud) {
  if (!cloud) {
    if (verb == "create") return 1;
    if (verb == "get" || verb == "list" || verb == "watch") return 2;
    if (verb == "update" || verb == "patch") return 3;
    if (verb == "delete" || verb == "deletecollection") return 4;
    return 99;
  }
  // The operation's last segment: after a '/' (Azure) or a '.' (GCP).
  const size_t cut = verb.find_last_of("/.");
  const std::string_view op = cut == std::string_view::npos ? verb : verb.substr(cut + 1);
  for (std::string_view w : {"create", "run", "put", "add", "insert", "register", "import", "allocate"})
    if (StartsWithWord(op, w)) return 1;
  for (std::string_view w : {"get", "list", "describe", "lookup", "read", "search", "head", "batchget"})
    if (StartsWithWord(op, w)) return 2;
  for (std::string_view w : {"update", "modify", "set", "patch", "write", "attach", "detach", "associate", "enable",
                             "disable", "start", "stop", "reboot", "tag", "untag", "change"})
    if (StartsWithWord(op, w)) return 3;
  for (std::string_view w : {"delete", "terminate", "remove", "deregister", "release", "revoke", "destroy"})
    if (StartsWithWord(op, w)) return 4;
  return 99;
}

json OcsfApiActivity(const json& e) {
  const bool cloud = e.contains("cloud");
  const std::string verb = e.value("verb", "");
  const int activity = OcsfActivity(verb, cloud);
  const std::string time = e.value("time", "");
  json o{{"class_uid", 6003},
         {"class_name", "API Activity"},
         {"category_uid", 6},
         {"category_name", "Application Activity"},
         {"activity_id", activity},
         {"activity_name", activity == 99 ? "Other" : kActivityNames[static_cast<size_t>(activity)]},
         {"type_uid", 600300 + activity},
         {"severity_id", 1},
         {"severity", "Informational"},
         {"time", ParseRfc3339(time).value_or(0) / 1000},
         {"metadata",
          {{"version", "1.3.0"},
           {"product", {{"name", "annals"}, {"vendor_name", "annals"}}},
           {"uid", std::to_string(e.value("index", uint64_t{0}))},
           {"log_name", cloud ? e.value("cloud", "") : "kubernetes"}}},
         {"actor", {{"user", {{"name", e.value("user", "")}}}}},
         {"api", {{"operation", verb}, {"service", {{"name", e.value("resource", "")}}}}}};
  // Status: a cloud record's result; a Kubernetes event's HTTP code.
  int status = 0;
  if (cloud) {
    const std::string r = e.value("result", "");
    status = r == "success" ? 1 : r == "failure" ? 2 : 0;
  } else if (int code = e.value("code", 0); code > 0) {
    status = code < 400 ? 1 : 2;
    o["http_response"] = {{"code", code}};
  }
  o["status_id"] = status;
  o["status"] = status == 1 ? "Success" : status == 2 ? "Failure" : "Unknown";
  if (e.contains("impersonated_user") && e["impersonated_user"].is_string())
    o["actor"]["invoked_by"] = e["impersonated_user"];
  if (const std::string ip = e.value("source_ip", ""); !ip.empty()) o["src_endpoint"] = {{"ip", ip}};
  if (const std::string ua = e.value("user_agent", ""); !ua.empty()) o["http_request"] = {{"user_agent", ua}};
  json resource{{"name", e.value("name", "")}, {"type", e.value("resource", "")}};
  if (const std::string ns = e.value("namespace", ""); !ns.empty()) resource["namespace"] = ns;
  o["resources"] = json::array({resource});
  if (cloud) {
    o["cloud"] = {{"provider", e.value("cloud", "")}, {"account", {{"uid", e.value("account", "")}}}};
  }
  if (e.contains("cluster")) o["unmapped"] = {{"cluster", e["cluster"]}};
  return o;
}

}  // namespace annals::state
