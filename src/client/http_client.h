// HttpClient: a small blocking HTTP/1.1 client over one keep-alive
// connection (Boost.Beast), plain or TLS, for the CLI, the kubectl plugin,
// the remote verifier, the watch collector's remote sink and tests. With
// https:// it verifies the server's certificate (against the given CA
// bundle, else the system's) and name, and may present a client
// certificate; a bearer token goes in every request's Authorization
// header. Thread-compatible: use one per thread.
#ifndef ANNALS_CLIENT_HTTP_CLIENT_H_
#define ANNALS_CLIENT_HTTP_CLIENT_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace annals::client {

// How a client proves who it is and whom it trusts (PEM text, not paths:
// client_options.h reads the files).
struct ClientAuth {
  std::string ca_pem;    // trust anchors for https://; "" = the system's
  std::string cert_pem;  // client certificate chain (with key_pem)
  std::string key_pem;
  std::string token;     // bearer token; "" = none
  bool empty() const { return ca_pem.empty() && cert_pem.empty() && key_pem.empty() && token.empty(); }
};

struct HttpResult {
  int status = 0;
  std::string body;
  std::string content_type;
  std::string cache_control;
  std::string etag;  // as sent, quotes included
};

using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

class HttpClient {
 public:
  // base_url: "http://host:port" or "https://host:port" with an optional
  // path prefix ("[::1]" for IPv6). InvalidArgument for another scheme, a
  // client certificate without its key (or over http://), or PEM that does
  // not load.
  static StatusOr<std::unique_ptr<HttpClient>> Create(std::string_view base_url, ClientAuth auth = {});
  ~HttpClient();
  // Reconnects once if the kept-alive connection was closed.
  StatusOr<HttpResult> Get(std::string_view path);
  StatusOr<HttpResult> Post(std::string_view path, std::string_view body,
                            std::string_view content_type = "application/json");
  // Any method with extra request headers (an S3 PUT, HEAD or DELETE);
  // a HEAD reads no body. Like Post, not retried once wholly sent.
  StatusOr<HttpResult> Send(std::string_view method, std::string_view path, const HttpHeaders& headers,
                            std::string_view body = "");
  // Ends the request in flight on another thread, if any, by shutting its
  // connection down: it fails with Unavailable. The next request connects
  // again. The only method that may be called from another thread.
  void Abort();
  // The Host header every request carries ("host[:port]" as the URL had
  // it) and the URL's path prefix: what a request signature covers.
  const std::string& host_header() const;
  const std::string& path_prefix() const;
  // GETs a streamed response (Server-Sent Events) on a new connection and
  // hands each piece of the body to on_data as it arrives. Returns OK when
  // the server ends the body or on_data returns false (the connection is
  // then closed), Unavailable when the connection fails, and
  // FailedPrecondition with the body for a status other than 200.
  // receive_buffer > 0 caps the socket's receive buffer (SO_RCVBUF), as a
  // slow reader on a small machine would have.
  Status GetStream(std::string_view path,
                   const std::vector<std::pair<std::string, std::string>>& headers,
                   const std::function<bool(std::string_view)>& on_data, int receive_buffer = 0);

 private:
  HttpClient();
  StatusOr<HttpResult> Do(std::string_view method, std::string_view path, std::string_view body,
                          std::string_view content_type, const HttpHeaders& headers = {});
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace annals::client

#endif  // ANNALS_CLIENT_HTTP_CLIENT_H_
