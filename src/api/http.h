// Wire-level request and response types shared by the listener (server/)
// and the handlers (api/). Plain values, thread-compatible.
#ifndef ANNALS_API_HTTP_H_
#define ANNALS_API_HTTP_H_

#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace annals::api {

struct HttpRequest {
  std::string method;
  std::string target;  // path and query, as sent
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::string remote;  // peer address
  // Set by a TLS listener that verified a client certificate against its
  // client CA: the certificate's subject CN and O values. Empty otherwise.
  std::string tls_user;
  std::vector<std::string> tls_groups;

  // Value of the first header named `name` (case-insensitive), or "".
  std::string Header(std::string_view name) const;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

// Called exactly once per request, from any thread.
using Responder = std::function<void(HttpResponse)>;
using Handler = std::function<void(HttpRequest&&, Responder)>;

// The one table from canonical status codes to HTTP statuses.
int HttpStatusFor(StatusCode code);
// {"error":"<message>"} with the mapped status.
HttpResponse ErrorResponse(const Status& s);
HttpResponse ErrorResponse(int http_status, std::string_view message);

// Splits "path?query" and decodes query parameters (percent-decoding).
struct Target {
  std::string path;
  std::vector<std::pair<std::string, std::string>> params;
  // First value of `name`, or nullptr.
  const std::string* Param(std::string_view name) const;
};
StatusOr<Target> ParseTarget(std::string_view target);
// Decodes %XX escapes (and '+' as a space, as in a query string).
StatusOr<std::string> PercentDecode(std::string_view s);

}  // namespace annals::api

#endif  // ANNALS_API_HTTP_H_
