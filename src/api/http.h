// Wire-level request and response types shared by the listener (server/)
// and the handlers (api/). Plain values, thread-compatible.
#ifndef ANNALS_API_HTTP_H_
#define ANNALS_API_HTTP_H_

#include <functional>
#include <memory>
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
  // Set by the API before an ingest handler runs: the cluster what this
  // request ingests is filed under ("" = none; docs/sources.md "Clusters").
  std::string cluster;

  // Value of the first header named `name` (case-insensitive), or "".
  std::string Header(std::string_view name) const;
};

// The writing end of a streamed response (Server-Sent Events): the server
// has sent the status and headers; the body follows in chunks for as long
// as the handler writes. Thread-safe; callbacks run on the connection's
// thread.
class ResponseStream {
 public:
  virtual ~ResponseStream() = default;
  // Sends the pieces, in order, after everything written before. One Write
  // at a time: call the next one from (or after) `done`. done(false) when
  // the connection failed or was closed.
  virtual void Write(std::vector<std::shared_ptr<const std::string>> pieces,
                     std::function<void(bool ok)> done) = 0;
  // Runs fn on the connection's thread.
  virtual void Post(std::function<void()> fn) = 0;
  // `fn` runs once when the peer goes away or the connection ends.
  virtual void OnClose(std::function<void()> fn) = 0;
  // Ends the response after the pending write and closes the connection.
  virtual void Close() = 0;
  // Closes the connection now (a pending write fails).
  virtual void Abort() = 0;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  // If set, the response is streamed: the server sends status and headers
  // (chunked, no length; body is ignored), then hands the stream to this.
  std::function<void(std::shared_ptr<ResponseStream>)> stream;
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
