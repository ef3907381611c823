// HttpServer: an HTTP/1.1 listener on Boost.Beast with keep-alive, request
// size limits and asynchronous handlers (a handler may answer later, from
// any thread, e.g. once an append is durable).
//
// Thread-safe. Owns its io threads. Stop() closes the listener, answers new
// requests on open connections with 503, waits (up to drain_timeout_ms) for
// the requests already handed to the handler to be answered, then stops the
// threads. A responder called after that is harmless while the HttpServer
// exists; the HttpServer must outlive every responder it handed out.
#ifndef ANNALS_SERVER_HTTP_SERVER_H_
#define ANNALS_SERVER_HTTP_SERVER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "api/http.h"
#include "common/net_util.h"
#include "common/status.h"

namespace annals::server {

using api::Handler;
using api::HttpRequest;
using api::HttpResponse;
using api::Responder;

struct HttpServerOptions {
  std::string listen = "127.0.0.1:7070";  // host:port; port 0 picks one
  int threads = 2;
  uint64_t max_body_bytes = 16u << 20;
  uint32_t max_header_bytes = 16 << 10;
  int idle_timeout_seconds = 60;
  // TLS (PEM files): both cert and key, or neither for plain HTTP. TLS 1.2
  // and later only. With client_ca, client certificates are verified
  // against it (a bad or expired one fails the handshake; none at all is
  // allowed, the caller may still bring a bearer token) and a verified
  // certificate's CN and O reach the handler as tls_user/tls_groups.
  std::string tls_cert, tls_key, client_ca;
  int handshake_timeout_seconds = 10;
  // How long Stop waits for requests already being handled to be answered.
  int drain_timeout_ms = 10000;
  // Open connections at most; at the limit, or out of file descriptors,
  // the connection idle the longest is closed for the new one. 0: half the
  // process's descriptor limit (RLIMIT_NOFILE), at least 16.
  uint64_t max_connections = 0;
};

class HttpServer {
 public:
  HttpServer(HttpServerOptions options, Handler handler);
  ~HttpServer();
  // Binds and starts serving. Returns the bound port.
  StatusOr<uint16_t> Start();
  void Stop();
  // Re-reads the TLS certificate, key and client CA (e.g. on SIGHUP):
  // new connections use them, established ones keep theirs. On error the
  // previous ones stay in use.
  Status ReloadTls();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};


}  // namespace annals::server

#endif  // ANNALS_SERVER_HTTP_SERVER_H_
