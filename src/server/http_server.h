// HttpServer: an HTTP/1.1 listener on Boost.Beast with keep-alive, request
// size limits and asynchronous handlers (a handler may answer later, from
// any thread, e.g. once an append is durable).
//
// Thread-safe. Owns its io threads; Stop() closes the listener and waits.
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
};

class HttpServer {
 public:
  HttpServer(HttpServerOptions options, Handler handler);
  ~HttpServer();
  // Binds and starts serving. Returns the bound port.
  StatusOr<uint16_t> Start();
  void Stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};


}  // namespace annals::server

#endif  // ANNALS_SERVER_HTTP_SERVER_H_
