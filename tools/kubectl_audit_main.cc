// kubectl-audit: a kubectl plugin (`kubectl audit KIND/NAME`) printing who
// did what to an application instance and, with --children, what it owns,
// as recorded in an annals ledger. Newest last.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>

#include "api/paths.h"
#include "client/client_options.h"
#include "client/http_client.h"
#include "client/table.h"
#include "kube/resources.h"

namespace {

int Fail(const std::string& msg) {
  std::fprintf(stderr, "kubectl-audit: %s\n", msg.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"kubectl audit: who did what to a Kubernetes object, from the annals ledger"};
  std::string object, ns, since, until, output = "table", verbs;
  bool children = false;
  app.add_option("object", object, "KIND/NAME, e.g. deployment/web")->required();
  app.add_option("-n,--namespace", ns, "namespace (default: every namespace that has a KIND/NAME)");
  app.add_flag("--children", children, "include what the object owns and its Helm release");
  app.add_option("--since", since, "from this time (RFC 3339 or -15m)");
  app.add_option("--until", until, "up to this time");
  app.add_option("--verbs", verbs, "verbs to include, e.g. get,list (reads are left out by default)");
  app.add_option("-o,--output", output, "table or json")->check(CLI::IsMember({"table", "json"}));
  annals::client::ClientFlags cf;
  std::string kubeconfig, context;
  app.add_option("--server,--url", cf.url,
                 "annals URL (else $ANNALS_URL, else server: in ~/.config/annals/config.yaml, else http://127.0.0.1:7070)");
  app.add_option("--cacert", cf.cacert, "PEM CA bundle to verify an https:// annals with (default: the system's)");
  app.add_option("--cert,--client-certificate", cf.cert, "PEM client certificate for annals");
  app.add_option("--key,--client-key", cf.key, "PEM private key of --cert");
  app.add_option("--token", cf.token, "bearer token for annals (else $ANNALS_TOKEN)");
  app.add_option("--token-file", cf.token_file, "file holding the bearer token");
  app.add_option("--config", cf.config, "annals client config (default $ANNALS_CONFIG, else ~/.config/annals/config.yaml)");
  app.add_option("--kubeconfig", kubeconfig,
                 "kubeconfig whose user credentials to present to an https:// annals when no other is named");
  app.add_option("--context", context, "kubeconfig context (default: its current-context)");
  std::string cluster;
  bool all_clusters = false;
  app.add_option("--cluster", cluster,
                 "the cluster annals filed the events under (default: the kubeconfig context's cluster, if annals "
                 "has objects filed under that name; else every cluster)");
  app.add_flag("--all-clusters", all_clusters, "every cluster's events, each row naming its cluster");
  CLI11_PARSE(app, argc, argv);

  auto target = annals::client::ResolveServer(cf);
  if (!target.ok()) return Fail(target.status().message());
  // An https:// annals that trusts the cluster's identities (its TokenReview
  // or the cluster CA's client certificates) takes the kubeconfig's user.
  if (target->auth.token.empty() && target->auth.cert_pem.empty() && target->url.rfind("https://", 0) == 0) {
    auto kc = annals::client::KubeconfigCredentials(kubeconfig, context);
    if (kc.ok()) {
      target->auth.token = kc->token;
      target->auth.cert_pem = kc->cert_pem;
      target->auth.key_pem = kc->key_pem;
    } else if (!kubeconfig.empty() || !context.empty()) {
      return Fail(kc.status().message());
    }
  }
  const std::string& server = target->url;
  auto slash = object.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 == object.size())
    return Fail("expected KIND/NAME, got \"" + object + "\"");
  std::string kind = object.substr(0, slash), name = object.substr(slash + 1);
  std::string resource = annals::kube::ResourceFor(kind);

  using annals::client::UrlEncode;
  std::string q = std::string(annals::api::paths::kHistory) + "?kind=" + UrlEncode(resource) + "&name=" + UrlEncode(name);
  if (!ns.empty()) q += "&namespace=" + UrlEncode(ns);
  if (children) q += "&children=true";
  if (!since.empty()) q += "&since=" + UrlEncode(since);
  if (!until.empty()) q += "&until=" + UrlEncode(until);
  if (!verbs.empty()) q += "&verbs=" + UrlEncode(verbs);

  auto client = annals::client::HttpClient::Create(server, target->auth);
  if (!client.ok()) return Fail(client.status().message());
  if (all_clusters && !cluster.empty()) return Fail("--cluster and --all-clusters exclude each other");
  if (cluster.empty() && !all_clusters) {
    // The kubeconfig's cluster, when annals knows it (a single-cluster
    // annals files nothing under a name: every event is that cluster's).
    auto named = annals::client::KubeconfigCluster(kubeconfig, context);
    if (!named.ok() && (!kubeconfig.empty() || !context.empty())) return Fail(named.status().message());
    if (named.ok() && !named->empty()) {
      auto known = (*client)->Get(annals::api::paths::kClusters);
      if (!known.ok()) return Fail("cannot reach annals at " + server + ": " + known.status().message());
      auto k = nlohmann::json::parse(known->body, nullptr, false);
      if (known->status == 200 && k.is_object() && k["clusters"].is_array())
        for (const auto& c : k["clusters"])
          if (c == *named) cluster = *named;
    }
  }
  if (!cluster.empty()) q += "&cluster=" + UrlEncode(cluster);
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
