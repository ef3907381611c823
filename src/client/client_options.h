// Where a client command (annals state/whois/history/search/watch/append/
// enrich/proof/verify --url/collect, kubectl audit) finds its server and
// its credentials. Each setting comes from the first of: the command's
// flag, the environment ($ANNALS_URL, $ANNALS_TOKEN), the client config
// file (YAML; $ANNALS_CONFIG, else ~/.config/annals/config.yaml; a missing
// file is no error):
//
//   server: https://annals.example.com:7070
//   cacert: ca.crt          # trust anchors for the server's certificate
//   cert: alice.crt         # client certificate (CN = user, O = groups)
//   key: alice.key
//   token-file: token       # or token: ...
//
// Relative paths in the file are relative to its directory. Without a
// server anywhere the URL is http://127.0.0.1:7070 (`make run`'s).
// docs/security.md "Clients".
#ifndef ANNALS_CLIENT_CLIENT_OPTIONS_H_
#define ANNALS_CLIENT_CLIENT_OPTIONS_H_

#include <string>

#include "client/http_client.h"
#include "common/status.h"

namespace annals::client {

constexpr char kDefaultServerUrl[] = "http://127.0.0.1:7070";

// The flags every client command takes; empty = not given.
struct ClientFlags {
  std::string url;
  std::string cacert, cert, key;  // PEM files
  std::string token, token_file;
  std::string config;  // the config file; "" = $ANNALS_CONFIG or the default
};

struct ServerTarget {
  std::string url;
  ClientAuth auth;  // files read, token file read and trimmed
};

// InvalidArgument for a config file that is not YAML or has an unknown key,
// and for a file named anywhere that cannot be read.
StatusOr<ServerTarget> ResolveServer(const ClientFlags& flags);

// The credentials of the kubeconfig's user in `context` (default: its
// current-context): its token, token file or client certificate, not its
// CA (that is the API server's, not annals'). kubeconfig "" = the first
// file of $KUBECONFIG, else ~/.kube/config. For kubectl audit, which uses
// them when nothing else names a credential and the server is https://.
StatusOr<ClientAuth> KubeconfigCredentials(const std::string& kubeconfig, const std::string& context);
// The name the kubeconfig gives the cluster of `context` (default: its
// current-context); the same files as KubeconfigCredentials. kubectl audit
// asks annals about that cluster when annals has objects filed under it.
StatusOr<std::string> KubeconfigCluster(const std::string& kubeconfig, const std::string& context);

}  // namespace annals::client

#endif  // ANNALS_CLIENT_CLIENT_OPTIONS_H_
