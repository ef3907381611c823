// FakeApiServer: test/fake_apiserver/fake_kube_apiserver.py as a child
// process on a loopback port — a small Kubernetes API server speaking the
// real wire protocol (lists, watches, TokenReviews), scripted through its
// unauthenticated /control endpoints. Used by the watch collector's and
// the TokenReview authentication's integration tests.
//
// Thread-compatible.
#ifndef ANNALS_TEST_TESTUTIL_FAKE_APISERVER_H_
#define ANNALS_TEST_TESTUTIL_FAKE_APISERVER_H_

#include <sys/types.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "client/http_client.h"

namespace annals::testutil {

class FakeApiServer {
 public:
  // token: the bearer token the fake accepts from its clients. gone_body:
  // a file whose bytes answer its HTTP 410s ("" for a metav1.Status).
  // tls_cert/tls_key (PEM files): also serve the API over TLS, on tls_port().
  explicit FakeApiServer(const std::string& token, const std::string& gone_body = "",
                         const std::string& tls_cert = "", const std::string& tls_key = "");
  // Kills the fake.
  ~FakeApiServer();
  FakeApiServer(const FakeApiServer&) = delete;
  FakeApiServer& operator=(const FakeApiServer&) = delete;

  int port() const { return port_; }  // 0 if it did not start
  int tls_port() const { return tls_port_; }  // 0 without TLS
  const std::string& url() const { return url_; }
  // POST /control/<what> with `body`; its JSON answer (expects 200).
  nlohmann::json Control(const std::string& what, const nlohmann::json& body);
  // Appends an event to `path`'s history; the new resourceVersion.
  std::string Apply(const std::string& type, const nlohmann::json& object,
                    const std::string& path = "/api/v1/pods");
  // GET /control/stats: the request counters.
  nlohmann::json Stats();
  // SIGKILL now: its port refuses connections from then on.
  void Kill();

 private:
  pid_t pid_ = -1;
  int port_ = 0, tls_port_ = 0;
  std::string url_;
  std::unique_ptr<client::HttpClient> http_;
};

// A kubeconfig at `path` for the fake on `port` whose user authenticates
// with `user_auth`: "token: TOKEN" or "tokenFile: PATH"; with `ca_file`,
// over https, trusting that CA. Returns path.
std::string WriteFakeKubeconfig(const std::string& path, int port, const std::string& user_auth,
                                const std::string& ca_file = "");

}  // namespace annals::testutil

#endif  // ANNALS_TEST_TESTUTIL_FAKE_APISERVER_H_
