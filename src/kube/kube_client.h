// KubeClient: the HTTP(S) client for the Kubernetes API server (the watch
// collector's lists and watches, TokenReviews). Also reads kubeconfigs. It
// authenticates as client-go does: a bearer token (static, or a
// token file re-read for every request so a rotated ServiceAccount token is
// picked up), TLS client certificates, and a CA bundle for the server.
// Not supported: exec credential plugins and auth-provider plugins (a
// kubeconfig user with `exec` or `auth-provider` is refused with a clear
// error), HTTP proxies, and impersonation.
//
// One connection per request (lists are rare, a watch holds its connection
// for minutes, and TokenReviews are cached by their caller). Every wait on
// the server is bounded (connecting: 30 s; then `idle` per read, or a
// deadline for the whole exchange): the calls are Beast's asynchronous
// ones run to completion on the calling thread, because its blocking ones
// ignore timeouts. Thread-safe: requests may run concurrently from several
// threads; Abort() stops every request in flight.
#ifndef ANNALS_KUBE_KUBE_CLIENT_H_
#define ANNALS_KUBE_KUBE_CLIENT_H_

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "common/status.h"

namespace annals::kube {

struct KubeConfig {
  std::string cluster_name;     // the context's cluster, as the kubeconfig names it
  std::string server;           // "https://host:port" or "http://host:port"
  std::string token;            // bearer token
  std::string token_file;       // re-read for every request (wins over token)
  std::string ca_pem;           // CA bundle to verify the server with
  std::string client_cert_pem;  // TLS client certificate and key
  std::string client_key_pem;
  bool insecure_skip_tls_verify = false;
  std::string tls_server_name;  // SNI and name check; default: the host
};

// In-cluster: $KUBERNETES_SERVICE_HOST/_PORT, the ServiceAccount token and
// CA under /var/run/secrets/kubernetes.io/serviceaccount (or `sa_dir`).
StatusOr<KubeConfig> InClusterConfig(
    const std::string& sa_dir = "/var/run/secrets/kubernetes.io/serviceaccount");
// A kubeconfig file (YAML): the named context, else current-context.
// Relative file paths resolve against the kubeconfig's directory.
StatusOr<KubeConfig> LoadKubeconfig(const std::string& path, const std::string& context = "");

struct KubeResponse {
  int status = 0;
  std::string body;
};

// "HTTP <status>[: <the metav1.Status body's message>]", for logs.
std::string StatusSummary(int http_status, std::string_view body);

class KubeClient {
 public:
  static StatusOr<std::unique_ptr<KubeClient>> Create(KubeConfig config);
  ~KubeClient();

  // GET path (with query); the whole body, at most max_body bytes.
  StatusOr<KubeResponse> Get(const std::string& path, size_t max_body = size_t{1} << 31);
  // POST body (of content_type) to path; the whole answer, at most
  // max_body bytes, whatever its status. The whole exchange (connect, TLS
  // handshake, request, answer) must be over within `timeout`.
  StatusOr<KubeResponse> Post(const std::string& path, const std::string& body,
                              const std::string& content_type, std::chrono::milliseconds timeout,
                              size_t max_body = size_t{1} << 20);
  // GET path and hand the body to on_data as it arrives (chunked or not)
  // while it returns true. A non-2xx answer is read whole into *error_body
  // and its status returned. 200 is returned when the server ended the
  // body; a dropped connection or `idle` without a byte is an error.
  StatusOr<int> Stream(const std::string& path, std::chrono::seconds idle,
                       const std::function<bool(std::string_view)>& on_data,
                       std::string* error_body);
  // Shuts down every connection in flight and refuses later requests
  // (from any thread; for stopping): their calls return an error.
  void Abort();

  const KubeConfig& config() const { return config_; }

 private:
  explicit KubeClient(KubeConfig config);
  struct Tls;
  // One request. `idle` bounds each wait for the server (connecting: at
  // most 30 s); with a `deadline`, the whole exchange must end by then.
  struct Request {
    const char* method = "GET";
    const std::string& path;
    const std::string* body = nullptr;  // POST
    std::string content_type = "";
    std::chrono::seconds idle{120};
    std::optional<std::chrono::steady_clock::time_point> deadline = std::nullopt;
  };
  // Not a template: one instantiation of Beast's operations for both
  // callers (each instantiation is ~15 CPU-s of every build).
  StatusOr<int> Do(const Request& r, const std::function<bool(std::string_view)>& body_fn,
                   std::string* error_body);
  // Do, with the whole answer (at most max_body bytes) collected.
  StatusOr<KubeResponse> Whole(const Request& r, size_t max_body);
  StatusOr<std::string> BearerToken() const;
  void Register(int fd);
  void Unregister(int fd);

  KubeConfig config_;
  bool tls_ = false;
  std::string host_, port_;
  std::unique_ptr<Tls> tls_ctx_;
  std::mutex mu_;  // guards fds_ and aborted_
  std::set<int> fds_;
  bool aborted_ = false;
};

}  // namespace annals::kube

#endif  // ANNALS_KUBE_KUBE_CLIENT_H_
