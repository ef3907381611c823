// HttpClient: a small blocking HTTP/1.1 client over one keep-alive
// connection (Boost.Beast), for the CLI, the remote verifier and tests.
// Thread-compatible: use one per thread.
#ifndef ANNALS_CLIENT_HTTP_CLIENT_H_
#define ANNALS_CLIENT_HTTP_CLIENT_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <utility>
#include <vector>
#include <string>
#include <string_view>

#include "common/status.h"

namespace annals::client {

struct HttpResult {
  int status = 0;
  std::string body;
  std::string content_type;
  std::string cache_control;
};

class HttpClient {
 public:
  // base_url: "http://host:port" with an optional path prefix.
  static StatusOr<std::unique_ptr<HttpClient>> Create(std::string_view base_url);
  ~HttpClient();
  // Reconnects once if the kept-alive connection was closed.
  StatusOr<HttpResult> Get(std::string_view path);
  StatusOr<HttpResult> Post(std::string_view path, std::string_view body,
                            std::string_view content_type = "application/json");
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
                          std::string_view content_type);
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace annals::client

#endif  // ANNALS_CLIENT_HTTP_CLIENT_H_
