#include "client/http_client.h"

#include <poll.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <limits>
#include <optional>

namespace annals::client {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

struct HttpClient::Impl {
  std::string host, port, prefix;
  net::io_context ioc;
  std::optional<beast::tcp_stream> stream;
};

HttpClient::HttpClient() : impl_(new Impl) {}
HttpClient::~HttpClient() {
  if (impl_->stream) {
    beast::error_code ec;
    impl_->stream->socket().shutdown(tcp::socket::shutdown_both, ec);
  }
}

StatusOr<std::unique_ptr<HttpClient>> HttpClient::Create(std::string_view url) {
  constexpr std::string_view kScheme = "http://";
  if (!url.starts_with(kScheme))
    return InvalidArgumentError("URL must start with http:// (got " + std::string(url) + ")");
  url.remove_prefix(kScheme.size());
  auto slash = url.find('/');
  std::string_view hostport = url.substr(0, slash);
  std::string prefix = slash == std::string_view::npos ? "" : std::string(url.substr(slash));
  while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
  std::unique_ptr<HttpClient> c(new HttpClient());
  auto colon = hostport.rfind(':');
  if (colon == std::string_view::npos) {
    c->impl_->host = std::string(hostport);
    c->impl_->port = "80";
  } else {
    c->impl_->host = std::string(hostport.substr(0, colon));
    c->impl_->port = std::string(hostport.substr(colon + 1));
  }
  if (c->impl_->host.empty()) return InvalidArgumentError("URL has no host");
  c->impl_->prefix = prefix;
  return c;
}

StatusOr<HttpResult> HttpClient::Get(std::string_view path) { return Do("GET", path, "", ""); }
StatusOr<HttpResult> HttpClient::Post(std::string_view path, std::string_view body,
                                      std::string_view ct) {
  return Do("POST", path, body, ct);
}

StatusOr<HttpResult> HttpClient::Do(std::string_view method, std::string_view path,
                                    std::string_view body, std::string_view ct) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    beast::error_code ec;
    // An idle keep-alive connection that is readable has been closed by the
    // server (nothing else is sent unasked): drop it before writing, so a
    // POST is not sent into a dead connection (curl checks the same way).
    if (impl_->stream) {
      pollfd p{impl_->stream->socket().native_handle(), POLLIN, 0};
      if (::poll(&p, 1, 0) != 0) impl_->stream.reset();
    }
    const bool fresh = !impl_->stream.has_value();
    if (fresh) {
      tcp::resolver resolver(impl_->ioc);
      auto results = resolver.resolve(impl_->host, impl_->port, ec);
      if (ec) return UnavailableError("cannot resolve " + impl_->host + ": " + ec.message());
      impl_->stream.emplace(impl_->ioc);
      impl_->stream->connect(results, ec);
      if (ec) {
        impl_->stream.reset();
        return UnavailableError("cannot connect to " + impl_->host + ":" + impl_->port + ": " +
                                ec.message());
      }
      impl_->stream->socket().set_option(tcp::no_delay(true));
    }
    http::request<http::string_body> req{
        http::string_to_verb(std::string(method)), impl_->prefix + std::string(path), 11};
    req.set(http::field::host, impl_->host);
    req.set(http::field::user_agent, "annals-client");
    if (!ct.empty()) req.set(http::field::content_type, std::string(ct));
    req.body() = std::string(body);
    req.keep_alive(true);
    req.prepare_payload();
    http::write(*impl_->stream, req, ec);
    const bool sent = !ec;
    if (!ec) {
      beast::flat_buffer buf;
      http::response_parser<http::string_body> parser;
      parser.body_limit(1ull << 32);
      http::read(*impl_->stream, buf, parser, ec);
      if (!ec) {
        auto res = parser.release();
        HttpResult out;
        out.status = res.result_int();
        out.body = std::move(res.body());
        out.content_type = std::string(res[http::field::content_type]);
        out.cache_control = std::string(res[http::field::cache_control]);
        if (!res.keep_alive()) impl_->stream.reset();
        return out;
      }
    }
    impl_->stream.reset();
    if (fresh) return UnavailableError(std::string(method) + " " + std::string(path) + ": " + ec.message());
    // A reused keep-alive connection the server had closed fails the write,
    // and a request not wholly sent was not processed: retry it once on a
    // new connection. Once a POST is wholly sent the server may have stored
    // it, and lines without a dedup key would be stored twice: not retried.
    if (sent && method != "GET")
      return UnavailableError(std::string(method) + " " + std::string(path) +
                              ": connection lost after the request was sent (it may have been applied): " +
                              ec.message());
  }
  return UnavailableError("connection lost");
}

Status HttpClient::GetStream(std::string_view path,
                             const std::vector<std::pair<std::string, std::string>>& headers,
                             const std::function<bool(std::string_view)>& on_data,
                             int receive_buffer) {
  beast::error_code ec;
  tcp::resolver resolver(impl_->ioc);
  auto results = resolver.resolve(impl_->host, impl_->port, ec);
  if (ec) return UnavailableError("cannot resolve " + impl_->host + ": " + ec.message());
  beast::tcp_stream stream(impl_->ioc);
  if (receive_buffer > 0) {
    // Before connect, so the window is small from the handshake on.
    stream.socket().open(results.begin()->endpoint().protocol(), ec);
    if (!ec) stream.socket().set_option(net::socket_base::receive_buffer_size(receive_buffer), ec);
    if (ec) return UnavailableError("socket: " + ec.message());
  }
  stream.connect(results, ec);
  if (ec) return UnavailableError("cannot connect to " + impl_->host + ":" + impl_->port + ": " + ec.message());
  stream.socket().set_option(tcp::no_delay(true));
  http::request<http::empty_body> req{http::verb::get, impl_->prefix + std::string(path), 11};
  req.set(http::field::host, impl_->host);
  req.set(http::field::user_agent, "annals-client");
  req.set(http::field::accept, "text/event-stream");
  for (const auto& [k, v] : headers) req.set(k, v);
  http::write(stream, req, ec);
  if (ec) return UnavailableError("GET " + std::string(path) + ": " + ec.message());
  beast::flat_buffer buf;
  http::response_parser<http::buffer_body> parser;
  parser.body_limit(std::numeric_limits<std::uint64_t>::max());
  http::read_header(stream, buf, parser, ec);
  if (ec) return UnavailableError("GET " + std::string(path) + ": " + ec.message());
  const int status = parser.get().result_int();
  std::string error_body;
  char chunk[64 << 10];
  while (!parser.is_done()) {
    parser.get().body().data = chunk;
    parser.get().body().size = sizeof(chunk);
    http::read_some(stream, buf, parser, ec);  // returns with what has arrived
    if (ec == http::error::need_buffer) ec = {};
    if (ec) {
      if (ec == http::error::end_of_stream || ec == net::error::eof) break;
      return UnavailableError("stream " + std::string(path) + ": " + ec.message());
    }
    std::string_view got(chunk, sizeof(chunk) - parser.get().body().size);
    if (got.empty()) continue;
    if (status != 200) {
      error_body.append(got);
      continue;
    }
    if (!on_data(got)) {
      stream.socket().shutdown(tcp::socket::shutdown_both, ec);
      return OkStatus();
    }
  }
  if (status != 200)
    return FailedPreconditionError("server answered " + std::to_string(status) + ": " + error_body);
  return OkStatus();
}

}  // namespace annals::client
