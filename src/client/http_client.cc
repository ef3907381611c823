#include "client/http_client.h"

#include <poll.h>
#include <sys/socket.h>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <limits>
#include <mutex>
#include <optional>

namespace annals::client {

namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

namespace {

// One connection, plain or TLS.
struct Conn {
  std::optional<beast::tcp_stream> plain;
  std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> tls;

  beast::tcp_stream& lowest() { return tls ? beast::get_lowest_layer(*tls) : *plain; }
  // f(stream) on whichever stream this is.
  template <class F>
  auto With(F&& f) {
    return tls ? f(*tls) : f(*plain);
  }
  ~Conn() {
    beast::error_code ec;
    // Closes without a TLS close_notify: nothing is waited for.
    lowest().socket().shutdown(tcp::socket::shutdown_both, ec);
  }
};

bool IsIpLiteral(const std::string& host) {
  beast::error_code ec;
  net::ip::make_address(host, ec);
  return !ec;
}

}  // namespace

struct HttpClient::Impl {
  std::string host, port, prefix;
  std::string host_header;  // host[:port] as the URL had it
  std::unique_ptr<ssl::context> tls;  // null for http://
  std::string token;
  net::io_context ioc;
  std::unique_ptr<Conn> conn;  // the kept-alive connection, if any
  // conn's socket, for Abort() from another thread; set and cleared (and
  // the socket closed) under abort_mu, so Abort never touches a reused fd.
  std::mutex abort_mu;
  int live_fd = -1;
  void SetConn(std::unique_ptr<Conn> c) {
    std::lock_guard lock(abort_mu);
    live_fd = c ? c->lowest().socket().native_handle() : -1;
    conn = std::move(c);
  }

  StatusOr<std::unique_ptr<Conn>> Connect(int receive_buffer);
  template <class Req>
  void Authorize(Req& req) const {
    req.set(http::field::host, host_header);
    req.set(http::field::user_agent, "annals-client");
    if (!token.empty()) req.set(http::field::authorization, "Bearer " + token);
  }
};

StatusOr<std::unique_ptr<Conn>> HttpClient::Impl::Connect(int receive_buffer) {
  beast::error_code ec;
  tcp::resolver resolver(ioc);
  auto results = resolver.resolve(host, port, ec);
  if (ec) return UnavailableError("cannot resolve " + host + ": " + ec.message());
  auto c = std::make_unique<Conn>();
  if (tls) c->tls = std::make_unique<beast::ssl_stream<beast::tcp_stream>>(ioc, *tls);
  else c->plain.emplace(ioc);
  if (receive_buffer > 0) {
    // Before connect, so the window is small from the handshake on.
    c->lowest().socket().open(results.begin()->endpoint().protocol(), ec);
    if (!ec) c->lowest().socket().set_option(net::socket_base::receive_buffer_size(receive_buffer), ec);
    if (ec) return UnavailableError("socket: " + ec.message());
  }
  c->lowest().connect(results, ec);
  if (ec) return UnavailableError("cannot connect to " + host + ":" + port + ": " + ec.message());
  c->lowest().socket().set_option(tcp::no_delay(true));
  if (c->tls) {
    // SNI for names only (RFC 6066 leaves IP addresses out); the
    // certificate is checked against the name or the address either way.
    if (!IsIpLiteral(host) && !SSL_set_tlsext_host_name(c->tls->native_handle(), host.c_str()))
      return InternalError("cannot set the TLS server name");
    c->tls->set_verify_callback(ssl::host_name_verification(host));
    c->tls->handshake(ssl::stream_base::client, ec);
    if (ec) return UnavailableError("TLS handshake with " + host + ":" + port + ": " + ec.message());
  }
  return c;
}

HttpClient::HttpClient() : impl_(new Impl) {}
HttpClient::~HttpClient() = default;

StatusOr<std::unique_ptr<HttpClient>> HttpClient::Create(std::string_view url, ClientAuth auth) {
  bool https = false;
  if (url.starts_with("https://")) {
    https = true;
    url.remove_prefix(8);
  } else if (url.starts_with("http://")) {
    url.remove_prefix(7);
  } else {
    return InvalidArgumentError("URL must start with http:// or https:// (got " + std::string(url) + ")");
  }
  auto slash = url.find('/');
  std::string_view hostport = url.substr(0, slash);
  std::string prefix = slash == std::string_view::npos ? "" : std::string(url.substr(slash));
  while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
  std::unique_ptr<HttpClient> c(new HttpClient());
  Impl& im = *c->impl_;
  im.host_header = std::string(hostport);
  std::string_view host = hostport, port = https ? "443" : "80";
  if (!hostport.empty() && hostport[0] == '[') {
    auto close = hostport.find(']');
    if (close == std::string_view::npos) return InvalidArgumentError("bad IPv6 address in URL");
    host = hostport.substr(1, close - 1);
    if (close + 1 < hostport.size()) {
      if (hostport[close + 1] != ':') return InvalidArgumentError("bad IPv6 address in URL");
      port = hostport.substr(close + 2);
    }
  } else if (auto colon = hostport.rfind(':'); colon != std::string_view::npos) {
    host = hostport.substr(0, colon);
    port = hostport.substr(colon + 1);
  }
  if (host.empty()) return InvalidArgumentError("URL has no host");
  if (port.empty()) return InvalidArgumentError("URL has an empty port");
  im.host = std::string(host);
  im.port = std::string(port);
  im.prefix = prefix;
  im.token = std::move(auth.token);
  if (auth.cert_pem.empty() != auth.key_pem.empty())
    return InvalidArgumentError("a client certificate needs its key, and a key its certificate");
  if (!https) {
    if (!auth.cert_pem.empty() || !auth.ca_pem.empty())
      return InvalidArgumentError("a CA bundle or client certificate needs an https:// URL");
    return c;
  }
  im.tls = std::make_unique<ssl::context>(ssl::context::tls_client);
  ssl::context& ctx = *im.tls;
  SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_2_VERSION);
  beast::error_code ec;
  ctx.set_verify_mode(ssl::verify_peer);
  if (!auth.ca_pem.empty()) {
    ctx.add_certificate_authority(net::buffer(auth.ca_pem), ec);
    if (ec) return InvalidArgumentError("bad CA certificate: " + ec.message());
  } else {
    ctx.set_default_verify_paths(ec);
    if (ec) return InvalidArgumentError("cannot load the system's CA certificates: " + ec.message());
  }
  if (!auth.cert_pem.empty()) {
    ctx.use_certificate_chain(net::buffer(auth.cert_pem), ec);
    if (ec) return InvalidArgumentError("bad client certificate: " + ec.message());
    ctx.use_private_key(net::buffer(auth.key_pem), ssl::context::pem, ec);
    if (ec) return InvalidArgumentError("bad client key: " + ec.message());
    if (SSL_CTX_check_private_key(ctx.native_handle()) != 1)
      return InvalidArgumentError("the client key does not match the client certificate");
  }
  return c;
}

StatusOr<HttpResult> HttpClient::Get(std::string_view path) { return Do("GET", path, "", ""); }
StatusOr<HttpResult> HttpClient::Post(std::string_view path, std::string_view body,
                                      std::string_view ct) {
  return Do("POST", path, body, ct);
}

StatusOr<HttpResult> HttpClient::Send(std::string_view method, std::string_view path,
                                      const HttpHeaders& headers, std::string_view body) {
  return Do(method, path, body, "", headers);
}

void HttpClient::Abort() {
  std::lock_guard lock(impl_->abort_mu);
  if (impl_->live_fd >= 0) ::shutdown(impl_->live_fd, SHUT_RDWR);
}

const std::string& HttpClient::host_header() const { return impl_->host_header; }
const std::string& HttpClient::path_prefix() const { return impl_->prefix; }

StatusOr<HttpResult> HttpClient::Do(std::string_view method, std::string_view path,
                                    std::string_view body, std::string_view ct,
                                    const HttpHeaders& headers) {
  const bool head = method == "HEAD";
  for (int attempt = 0; attempt < 2; ++attempt) {
    beast::error_code ec;
    // An idle keep-alive connection that is readable has been closed by the
    // server (nothing else is sent unasked): drop it before writing, so a
    // POST is not sent into a dead connection (curl checks the same way).
    if (impl_->conn) {
      pollfd p{impl_->conn->lowest().socket().native_handle(), POLLIN, 0};
      if (::poll(&p, 1, 0) != 0) impl_->SetConn(nullptr);
    }
    const bool fresh = !impl_->conn;
    if (fresh) {
      ASSIGN_OR_RETURN(auto c, impl_->Connect(0));
      impl_->SetConn(std::move(c));
    }
    http::request<http::string_body> req{
        http::string_to_verb(std::string(method)), impl_->prefix + std::string(path), 11};
    impl_->Authorize(req);
    if (!ct.empty()) req.set(http::field::content_type, std::string(ct));
    for (const auto& [k, v] : headers) req.set(k, v);
    req.body() = std::string(body);
    req.keep_alive(true);
    req.prepare_payload();
    bool sent = false, keep_alive = true;
    std::optional<HttpResult> out = impl_->conn->With([&](auto& stream) -> std::optional<HttpResult> {
      http::write(stream, req, ec);
      sent = !ec;
      if (ec) return std::nullopt;
      beast::flat_buffer buf;
      http::response_parser<http::string_body> parser;
      parser.body_limit(1ull << 32);
      parser.skip(head);  // a HEAD answer has a Content-Length but no body
      http::read(stream, buf, parser, ec);
      if (ec) return std::nullopt;
      auto res = parser.release();
      HttpResult r;
      r.status = res.result_int();
      r.body = std::move(res.body());
      r.content_type = std::string(res[http::field::content_type]);
      r.cache_control = std::string(res[http::field::cache_control]);
      r.etag = std::string(res[http::field::etag]);
      keep_alive = res.keep_alive();
      return r;
    });
    if (out) {
      if (!keep_alive) impl_->SetConn(nullptr);
      return std::move(*out);
    }
    impl_->SetConn(nullptr);
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
  ASSIGN_OR_RETURN(std::unique_ptr<Conn> conn, impl_->Connect(receive_buffer));
  http::request<http::empty_body> req{http::verb::get, impl_->prefix + std::string(path), 11};
  impl_->Authorize(req);
  req.set(http::field::accept, "text/event-stream");
  for (const auto& [k, v] : headers) req.set(k, v);
  return conn->With([&](auto& stream) -> Status {
    beast::error_code ec;
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
        if (ec == http::error::end_of_stream || ec == net::error::eof || ec == ssl::error::stream_truncated)
          break;
        return UnavailableError("stream " + std::string(path) + ": " + ec.message());
      }
      std::string_view got(chunk, sizeof(chunk) - parser.get().body().size);
      if (got.empty()) continue;
      if (status != 200) {
        error_body.append(got);
        continue;
      }
      if (!on_data(got)) return OkStatus();  // ~Conn closes the connection
    }
    if (status != 200)
      return FailedPreconditionError("server answered " + std::to_string(status) + ": " + error_body);
    return OkStatus();
  });
}

}  // namespace annals::client
