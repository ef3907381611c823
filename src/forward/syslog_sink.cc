#include "forward/syslog_sink.h"

#include <unistd.h>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <optional>

#include "forward/forward_format.h"

namespace annals::forward {

namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

// PRINTUSASCII without the characters RFC 5424 reserves in SD-NAMEs.
std::string Token(std::string_view s, size_t max) {
  std::string out;
  for (char c : s) {
    if (out.size() == max) break;
    out += (c > 32 && c < 127) ? c : '_';
  }
  return out.empty() ? "-" : out;
}

// PARAM-VALUE: '"', '\' and ']' are escaped with '\'.
std::string ParamValue(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\' || c == ']') out += '\\';
    out += c;
  }
  return out;
}

}  // namespace

StatusOr<SyslogTarget> ParseSyslogUrl(std::string_view url) {
  SyslogTarget t;
  if (url.starts_with("syslog+tcp://")) {
    url.remove_prefix(13);
  } else if (url.starts_with("syslog+tls://")) {
    url.remove_prefix(13);
    t.tls = true;
  } else {
    return InvalidArgumentError("--forward wants syslog+tcp://HOST:PORT or syslog+tls://HOST:PORT, got " +
                                std::string(url));
  }
  while (url.ends_with('/')) url.remove_suffix(1);
  size_t colon = url.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == url.size())
    return InvalidArgumentError("syslog URL needs HOST:PORT");
  t.host = std::string(url.substr(0, colon));
  if (t.host.size() > 2 && t.host.front() == '[' && t.host.back() == ']') t.host = t.host.substr(1, t.host.size() - 2);
  t.port = std::string(url.substr(colon + 1));
  for (char c : t.port)
    if (c < '0' || c > '9') return InvalidArgumentError("syslog URL port is not a number: " + t.port);
  return t;
}

std::string FormatSyslog(const stream::Change& c, uint64_t checkpoint_size, std::string_view hostname,
                         std::string_view origin, int pid) {
  std::string m = "<" + std::to_string(kSyslogPri) + ">1 ";
  m += c.time ? FormatRfc3339(c.time) : "-";
  m += ' ';
  m += Token(hostname, 255);
  m += ' ';
  m += kSyslogAppName;
  m += ' ';
  m += std::to_string(pid);
  m += ' ';
  m += Token(c.type, 32);
  m += std::string(" [") + kSyslogSdId + " index=\"" + std::to_string(c.index) + "\" tree_size=\"" +
       std::to_string(checkpoint_size) + "\" origin=\"" + ParamValue(origin) + "\"] ";
  m.append(c.data());
  return std::to_string(m.size()) + " " + m;
}

struct SyslogSink::Conn {
  net::io_context ioc;
  std::optional<net::ssl::context> ssl_ctx;
  std::optional<tcp::socket> plain;
  std::optional<net::ssl::stream<tcp::socket>> tls;
};

SyslogSink::SyslogSink(SyslogTarget target, std::string origin, std::string ca_file)
    : target_(std::move(target)), origin_(std::move(origin)), ca_file_(std::move(ca_file)) {
  char h[256] = {0};
  if (::gethostname(h, sizeof(h) - 1) == 0) hostname_ = h;
}

SyslogSink::~SyslogSink() = default;

std::string SyslogSink::target() const {
  return std::string(target_.tls ? "syslog+tls://" : "syslog+tcp://") + target_.host + ":" + target_.port;
}

Status SyslogSink::Send(const std::vector<std::shared_ptr<const stream::Change>>& changes,
                        uint64_t checkpoint_size) {
  boost::system::error_code ec;
  if (!conn_) {
    auto c = std::make_unique<Conn>();
    tcp::resolver resolver(c->ioc);
    auto eps = resolver.resolve(target_.host, target_.port, ec);
    if (ec) return UnavailableError("resolve " + target_.host + ": " + ec.message());
    if (target_.tls) {
      c->ssl_ctx.emplace(net::ssl::context::tls_client);
      if (ca_file_.empty()) c->ssl_ctx->set_default_verify_paths(ec);
      else c->ssl_ctx->load_verify_file(ca_file_, ec);
      if (ec) return InvalidArgumentError("TLS trust anchors: " + ec.message());
      c->ssl_ctx->set_verify_mode(net::ssl::verify_peer);
      c->tls.emplace(c->ioc, *c->ssl_ctx);
      c->tls->set_verify_callback(net::ssl::host_name_verification(target_.host));
      SSL_set_tlsext_host_name(c->tls->native_handle(), target_.host.c_str());
      net::connect(c->tls->next_layer(), eps, ec);
      if (!ec) c->tls->handshake(net::ssl::stream_base::client, ec);
    } else {
      c->plain.emplace(c->ioc);
      net::connect(*c->plain, eps, ec);
    }
    if (ec) return UnavailableError("connect to " + target() + ": " + ec.message());
    conn_ = std::move(c);
  }
  if (conn_->plain) {
    // A peer that went away shows as readable (EOF); writing would still
    // succeed once, into the void.
    conn_->plain->non_blocking(true);
    char b;
    conn_->plain->read_some(net::buffer(&b, 1), ec);
    conn_->plain->non_blocking(false);
    if (ec != net::error::would_block) {
      conn_.reset();
      return UnavailableError("connection to " + target() + " closed by the peer");
    }
    ec = {};
  }
  std::string out;
  for (const auto& c : changes) out += FormatSyslog(*c, checkpoint_size, hostname_, origin_, ::getpid());
  if (conn_->tls) net::write(*conn_->tls, net::buffer(out), ec);
  else net::write(*conn_->plain, net::buffer(out), ec);
  if (ec) {
    conn_.reset();
    return UnavailableError("write to " + target() + ": " + ec.message());
  }
  return OkStatus();
}

}  // namespace annals::forward
