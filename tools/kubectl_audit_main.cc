// kubectl-audit: a kubectl plugin (`kubectl audit KIND/NAME`) printing who
// did what to an application instance and, with --children, what it owns,
// as recorded in an annals ledger. Newest last.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "client/http_client.h"
#include "client/table.h"
#include "state/k8s_object.h"

namespace {

int Fail(const std::string& msg) {
  std::fprintf(stderr, "kubectl-audit: %s\n", msg.c_str());
  return 1;
}

// ~/.config/annals/config.yaml: a line "server: URL" (other keys ignored).
std::string ServerFromConfig() {
  const char* home = std::getenv("HOME");
  if (!home) return "";
  std::ifstream in(std::string(home) + "/.config/annals/config.yaml");
  std::string line;
  while (std::getline(in, line)) {
    auto pos = line.find("server:");
    if (pos == std::string::npos || line.find_first_not_of(" \t") != pos) continue;
    std::string v = line.substr(pos + 7);
    v.erase(0, v.find_first_not_of(" \t\"'"));
    while (!v.empty() && (v.back() == ' ' || v.back() == '"' || v.back() == '\'' || v.back() == '\r'))
      v.pop_back();
    return v;
  }
  return "";
}

bool ClusterScoped(const std::string& resource) {
  static const std::set<std::string> kCluster = {
      "namespaces", "nodes", "clusterroles", "clusterrolebindings", "persistentvolumes",
      "storageclasses", "customresourcedefinitions", "priorityclasses", "ingressclasses",
      "mutatingwebhookconfigurations", "validatingwebhookconfigurations"};
  return kCluster.count(resource) > 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"kubectl audit: who did what to a Kubernetes object, from the annals ledger"};
  std::string object, ns, since, until, output = "table", server, verbs;
  bool children = false;
  app.add_option("object", object, "KIND/NAME, e.g. deployment/web")->required();
  app.add_option("-n,--namespace", ns, "namespace (default: default, none for cluster-scoped kinds)");
  app.add_flag("--children", children, "include what the object owns and its Helm release");
  app.add_option("--since", since, "from this time (RFC 3339 or -15m)");
  app.add_option("--until", until, "up to this time");
  app.add_option("--verbs", verbs, "verbs to include, e.g. get,list (reads are left out by default)");
  app.add_option("-o,--output", output, "table or json")->check(CLI::IsMember({"table", "json"}));
  app.add_option("--server", server, "annals URL (else $ANNALS_URL, else ~/.config/annals/config.yaml)");
  CLI11_PARSE(app, argc, argv);

  if (server.empty())
    if (const char* e = std::getenv("ANNALS_URL")) server = e;
  if (server.empty()) server = ServerFromConfig();
  if (server.empty())
    return Fail("no annals server: pass --server, set ANNALS_URL or write server: URL in ~/.config/annals/config.yaml");
  auto slash = object.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 == object.size())
    return Fail("expected KIND/NAME, got \"" + object + "\"");
  std::string kind = object.substr(0, slash), name = object.substr(slash + 1);
  std::string resource = annals::state::ResourceFor(kind);
  if (ns.empty() && !ClusterScoped(resource)) ns = "default";

  using annals::client::UrlEncode;
  std::string q = "/v1/history?kind=" + UrlEncode(resource) + "&name=" + UrlEncode(name);
  if (!ns.empty()) q += "&namespace=" + UrlEncode(ns);
  if (children) q += "&children=true";
  if (!since.empty()) q += "&since=" + UrlEncode(since);
  if (!until.empty()) q += "&until=" + UrlEncode(until);
  if (!verbs.empty()) q += "&verbs=" + UrlEncode(verbs);

  auto client = annals::client::HttpClient::Create(server);
  if (!client.ok()) return Fail(client.status().message());
  auto r = (*client)->Get(q);
  if (!r.ok()) return Fail("cannot reach annals at " + server + ": " + r.status().message());
  auto j = nlohmann::json::parse(r->body, nullptr, false);
  if (r->status != 200) {
    std::string msg = j.is_object() && j.contains("error") ? j["error"].get<std::string>() : r->body;
    return Fail(msg);
  }
  if (j.is_discarded()) return Fail("annals answered with invalid JSON");
  if (output == "json") {
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  std::fputs(annals::client::FormatHistory(j).c_str(), stdout);
  return 0;
}
