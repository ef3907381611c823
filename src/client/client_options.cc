#include "client/client_options.h"

#include <cstdlib>
#include <nlohmann/json.hpp>

#include "common/file_util.h"
#include "kube/kube_client.h"
#include "kube/yaml.h"

namespace annals::client {

namespace {

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

std::string Home() { return Env("HOME"); }

StatusOr<std::string> ReadNamed(const std::string& path, const std::string& what) {
  auto text = ReadFileToString(path);
  if (!text.ok()) return InvalidArgumentError("cannot read " + what + " " + path + ": " + text.status().message());
  return text;
}

std::string Trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ' || s.back() == '\t')) s.pop_back();
  return s;
}

}  // namespace

StatusOr<ServerTarget> ResolveServer(const ClientFlags& flags) {
  ClientFlags f = flags;
  if (f.url.empty()) f.url = Env("ANNALS_URL");
  if (f.token.empty() && f.token_file.empty()) f.token = Env("ANNALS_TOKEN");

  std::string config = f.config;
  const bool named = !config.empty() || !Env("ANNALS_CONFIG").empty();
  if (config.empty()) config = Env("ANNALS_CONFIG");
  if (config.empty() && !Home().empty()) config = Home() + "/.config/annals/config.yaml";
  if (!config.empty() && (named || FileExists(config))) {
    ASSIGN_OR_RETURN(std::string text, ReadNamed(config, "client config"));
    ASSIGN_OR_RETURN(nlohmann::json y, kube::YamlToJson(text, config));
    if (!y.is_null() && !y.is_object()) return InvalidArgumentError(config + ": expected a mapping of settings");
    const std::string dir = DirName(config);
    auto path = [&dir](const std::string& p) { return p.empty() || p[0] == '/' ? p : dir + "/" + p; };
    if (y.is_object()) {
      for (const auto& [k, v] : y.items()) {
        if (!v.is_string())
          return InvalidArgumentError(config + ": " + k + " must be a single value");
        const std::string& s = v.get_ref<const std::string&>();
        if (k == "server") {
          if (f.url.empty()) f.url = s;
        } else if (k == "cacert") {
          if (f.cacert.empty()) f.cacert = path(s);
        } else if (k == "cert") {
          if (f.cert.empty()) f.cert = path(s);
        } else if (k == "key") {
          if (f.key.empty()) f.key = path(s);
        } else if (k == "token") {
          if (f.token.empty() && f.token_file.empty()) f.token = s;
        } else if (k == "token-file") {
          if (f.token.empty() && f.token_file.empty()) f.token_file = path(s);
        } else {
          return InvalidArgumentError(config + ": unknown setting \"" + k +
                                      "\" (known: server, cacert, cert, key, token, token-file)");
        }
      }
    }
  }
  ServerTarget t;
  t.url = f.url.empty() ? kDefaultServerUrl : f.url;
  if (!f.cacert.empty()) {
    ASSIGN_OR_RETURN(t.auth.ca_pem, ReadNamed(f.cacert, "CA bundle"));
  }
  if (!f.cert.empty()) {
    ASSIGN_OR_RETURN(t.auth.cert_pem, ReadNamed(f.cert, "client certificate"));
  }
  if (!f.key.empty()) {
    ASSIGN_OR_RETURN(t.auth.key_pem, ReadNamed(f.key, "client key"));
  }
  if (f.cert.empty() != f.key.empty())
    return InvalidArgumentError("--cert and --key go together (a client certificate and its key)");
  if (!f.token_file.empty()) {
    ASSIGN_OR_RETURN(std::string tok, ReadNamed(f.token_file, "token file"));
    t.auth.token = Trimmed(std::move(tok));
    if (t.auth.token.empty()) return InvalidArgumentError("token file " + f.token_file + " is empty");
  } else {
    t.auth.token = f.token;
  }
  return t;
}

namespace {

StatusOr<kube::KubeConfig> LoadUsersKubeconfig(const std::string& kubeconfig, const std::string& context) {
  std::string path = kubeconfig;
  if (path.empty()) {
    std::string env = Env("KUBECONFIG");
    path = env.substr(0, env.find(':'));
  }
  if (path.empty() && !Home().empty()) path = Home() + "/.kube/config";
  if (path.empty()) return NotFoundError("no kubeconfig");
  return kube::LoadKubeconfig(path, context);
}

}  // namespace

StatusOr<std::string> KubeconfigCluster(const std::string& kubeconfig, const std::string& context) {
  ASSIGN_OR_RETURN(kube::KubeConfig kc, LoadUsersKubeconfig(kubeconfig, context));
  return kc.cluster_name;
}

StatusOr<ClientAuth> KubeconfigCredentials(const std::string& kubeconfig, const std::string& context) {
  ASSIGN_OR_RETURN(kube::KubeConfig kc, LoadUsersKubeconfig(kubeconfig, context));
  ClientAuth a;
  a.cert_pem = std::move(kc.client_cert_pem);
  a.key_pem = std::move(kc.client_key_pem);
  if (!kc.token_file.empty()) {
    ASSIGN_OR_RETURN(std::string tok, ReadNamed(kc.token_file, "kubeconfig token file"));
    a.token = Trimmed(std::move(tok));
  } else {
    a.token = std::move(kc.token);
  }
  return a;
}

}  // namespace annals::client
