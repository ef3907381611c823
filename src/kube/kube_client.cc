#include "kube/kube_client.h"

#include <sys/socket.h>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cstdlib>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>

#include "common/bytes.h"
#include "common/file_util.h"
#include "kube/yaml.h"

namespace annals::kube {

namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using nlohmann::json;

struct KubeClient::Tls {
  ssl::context ctx{ssl::context::tls_client};
};

namespace {

std::string S(const json& o, const char* key) {
  if (!o.is_object()) return "";
  auto it = o.find(key);
  return it != o.end() && it->is_string() ? it->get<std::string>() : "";
}

// The entry named `name` of a kubeconfig list ("clusters", "users", ...).
const json* Named(const json& root, const char* list, const std::string& name, const char* inner) {
  auto it = root.find(list);
  if (it == root.end() || !it->is_array()) return nullptr;
  for (const auto& e : *it)
    if (S(e, "name") == name && e.contains(inner)) return &e[inner];
  return nullptr;
}

// "<field>-data" (base64) or "<field>" (a path, relative to the kubeconfig).
StatusOr<std::string> DataOrFile(const json& o, const std::string& field, const std::string& dir) {
  std::string data = S(o, (field + "-data").c_str());
  if (!data.empty()) {
    auto d = Base64Decode(data);
    if (!d) return InvalidArgumentError("kubeconfig: " + field + "-data is not base64");
    return *d;
  }
  std::string file = S(o, field.c_str());
  if (file.empty()) return std::string();
  if (file[0] != '/') file = dir + "/" + file;
  auto text = ReadFileToString(file);
  if (!text.ok()) return InvalidArgumentError("kubeconfig: cannot read " + field + " " + file);
  return *text;
}

}  // namespace

std::string StatusSummary(int http_status, std::string_view body) {
  std::string msg = "HTTP " + std::to_string(http_status);
  json j = json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_object())
    if (auto m = j.find("message"); m != j.end() && m->is_string())
      msg += ": " + m->get<std::string>().substr(0, 300);
  return msg;
}

StatusOr<KubeConfig> InClusterConfig(const std::string& sa_dir) {
  const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
  const char* port = std::getenv("KUBERNETES_SERVICE_PORT");
  if (!host || !*host || !port || !*port)
    return FailedPreconditionError(
        "not in a cluster: KUBERNETES_SERVICE_HOST/KUBERNETES_SERVICE_PORT are not set "
        "(use --kubeconfig)");
  KubeConfig c;
  std::string h = host;
  if (h.find(':') != std::string::npos) h = "[" + h + "]";
  c.server = "https://" + h + ":" + port;
  c.token_file = sa_dir + "/token";
  if (!FileExists(c.token_file)) return FailedPreconditionError("no ServiceAccount token at " + c.token_file);
  ASSIGN_OR_RETURN(c.ca_pem, ReadFileToString(sa_dir + "/ca.crt"));
  return c;
}

StatusOr<KubeConfig> LoadKubeconfig(const std::string& path, const std::string& context) {
  ASSIGN_OR_RETURN(std::string text, ReadFileToString(path));
  ASSIGN_OR_RETURN(json root, YamlToJson(text, path));
  if (!root.is_object()) return InvalidArgumentError(path + ": not a kubeconfig (no mapping)");
  std::string ctx_name = context.empty() ? S(root, "current-context") : context;
  if (ctx_name.empty()) return InvalidArgumentError(path + ": no current-context (use --context)");
  const json* ctx = Named(root, "contexts", ctx_name, "context");
  if (!ctx) return InvalidArgumentError(path + ": no context named " + ctx_name);
  const std::string cluster_name = S(*ctx, "cluster"), user_name = S(*ctx, "user");
  const json* cluster = Named(root, "clusters", cluster_name, "cluster");
  if (!cluster) return InvalidArgumentError(path + ": no cluster named " + cluster_name);
  const std::string dir = DirName(path);
  KubeConfig c;
  c.cluster_name = cluster_name;
  c.server = S(*cluster, "server");
  if (c.server.empty()) return InvalidArgumentError(path + ": cluster " + cluster_name + " has no server");
  c.insecure_skip_tls_verify = S(*cluster, "insecure-skip-tls-verify") == "true";
  c.tls_server_name = S(*cluster, "tls-server-name");
  ASSIGN_OR_RETURN(c.ca_pem, DataOrFile(*cluster, "certificate-authority", dir));
  if (!user_name.empty()) {
    const json* user = Named(root, "users", user_name, "user");
    if (!user) return InvalidArgumentError(path + ": no user named " + user_name);
    if (user->contains("exec"))
      return FailedPreconditionError(path + ": user " + user_name +
                                " uses an exec credential plugin, which annals does not run; "
                                "use a token, a token file or a client certificate");
    if (user->contains("auth-provider"))
      return FailedPreconditionError(path + ": user " + user_name +
                                " uses an auth-provider plugin, which annals does not support");
    if (!S(*user, "username").empty())
      return FailedPreconditionError(path + ": basic authentication (username/password) is not supported");
    c.token = S(*user, "token");
    c.token_file = S(*user, "tokenFile");
    if (!c.token_file.empty() && c.token_file[0] != '/') c.token_file = dir + "/" + c.token_file;
    ASSIGN_OR_RETURN(c.client_cert_pem, DataOrFile(*user, "client-certificate", dir));
    ASSIGN_OR_RETURN(c.client_key_pem, DataOrFile(*user, "client-key", dir));
  }
  return c;
}

StatusOr<std::unique_ptr<KubeClient>> KubeClient::Create(KubeConfig config) {
  std::unique_ptr<KubeClient> c(new KubeClient(std::move(config)));
  std::string_view url = c->config_.server;
  if (url.starts_with("https://")) {
    c->tls_ = true;
    url.remove_prefix(8);
  } else if (url.starts_with("http://")) {
    url.remove_prefix(7);
  } else {
    return InvalidArgumentError("API server URL must be http:// or https://: " + c->config_.server);
  }
  url = url.substr(0, url.find('/'));
  std::string_view host = url, port = c->tls_ ? "443" : "80";
  if (!url.empty() && url[0] == '[') {
    auto close = url.find(']');
    if (close == std::string_view::npos) return InvalidArgumentError("bad IPv6 host in " + c->config_.server);
    host = url.substr(1, close - 1);
    if (close + 1 < url.size() && url[close + 1] == ':') port = url.substr(close + 2);
  } else if (auto colon = url.rfind(':'); colon != std::string_view::npos) {
    host = url.substr(0, colon);
    port = url.substr(colon + 1);
  }
  if (host.empty()) return InvalidArgumentError("API server URL has no host: " + c->config_.server);
  c->host_ = std::string(host);
  c->port_ = std::string(port);
  if (c->tls_) {
    c->tls_ctx_ = std::make_unique<Tls>();
    auto& ctx = c->tls_ctx_->ctx;
    boost::system::error_code ec;
    if (c->config_.insecure_skip_tls_verify) {
      ctx.set_verify_mode(ssl::verify_none);
    } else {
      ctx.set_verify_mode(ssl::verify_peer);
      if (!c->config_.ca_pem.empty()) {
        ctx.add_certificate_authority(net::buffer(c->config_.ca_pem), ec);
        if (ec) return InvalidArgumentError("bad CA certificate: " + ec.message());
      } else {
        ctx.set_default_verify_paths(ec);
      }
    }
    if (!c->config_.client_cert_pem.empty()) {
      ctx.use_certificate_chain(net::buffer(c->config_.client_cert_pem), ec);
      if (ec) return InvalidArgumentError("bad client certificate: " + ec.message());
      ctx.use_private_key(net::buffer(c->config_.client_key_pem), ssl::context::pem, ec);
      if (ec) return InvalidArgumentError("bad client key: " + ec.message());
    }
  } else if (!c->config_.client_cert_pem.empty()) {
    return InvalidArgumentError("client certificates need an https:// server");
  }
  return c;
}

KubeClient::KubeClient(KubeConfig config) : config_(std::move(config)) {}
KubeClient::~KubeClient() = default;

StatusOr<std::string> KubeClient::BearerToken() const {
  if (config_.token_file.empty()) return config_.token;
  // Re-read every time: kubelet rotates projected ServiceAccount tokens.
  ASSIGN_OR_RETURN(std::string t, ReadFileToString(config_.token_file));
  while (!t.empty() && (t.back() == '\n' || t.back() == '\r' || t.back() == ' ')) t.pop_back();
  return t;
}

void KubeClient::Register(int fd) {
  std::lock_guard lock(mu_);
  fds_.insert(fd);
  // Aborted before this connection was registered: it must not block.
  if (aborted_) ::shutdown(fd, SHUT_RDWR);
}
void KubeClient::Unregister(int fd) {
  std::lock_guard lock(mu_);
  fds_.erase(fd);
}
void KubeClient::Abort() {
  std::lock_guard lock(mu_);
  aborted_ = true;
  for (int fd : fds_) ::shutdown(fd, SHUT_RDWR);
}

StatusOr<int> KubeClient::Do(const Request& r, const std::function<bool(std::string_view)>& body_fn,
                             std::string* error_body) {
  const std::string what = std::string(r.method) + " " + r.path;
  {
    std::lock_guard lock(mu_);
    if (aborted_) return UnavailableError(what + ": client stopped");
  }
  // Arms the socket's timer before each wait: `idle` from now, or the
  // deadline, whichever comes first.
  auto arm = [&r](beast::tcp_stream& s, std::chrono::steady_clock::duration idle) {
    if (r.deadline) s.expires_at(std::min(*r.deadline, std::chrono::steady_clock::now() + idle));
    else s.expires_after(idle);
  };
  ASSIGN_OR_RETURN(std::string token, BearerToken());
  net::io_context ioc;
  // Runs one asynchronous operation to completion on this thread. Beast's
  // blocking calls ignore the stream's timer; its asynchronous ones end
  // with beast::error::timeout when it expires.
  auto await = [&ioc](auto&& start) {
    beast::error_code out;
    start([&out](beast::error_code e, auto&&...) { out = e; });
    ioc.restart();
    ioc.run();
    return out;
  };
  beast::error_code ec;
  tcp::resolver resolver(ioc);
  auto endpoints = resolver.resolve(host_, port_, ec);
  if (ec) return UnavailableError("cannot resolve " + host_ + ": " + ec.message());
  http::request<http::string_body> req{http::string_to_verb(r.method), r.path, 11};
  req.set(http::field::host, host_);
  req.set(http::field::user_agent, "annals-watch/1");
  req.set(http::field::accept, "application/json");
  if (!token.empty()) req.set(http::field::authorization, "Bearer " + token);
  if (r.body) {
    req.set(http::field::content_type, r.content_type);
    req.body() = *r.body;
  }
  req.keep_alive(false);
  req.prepare_payload();

  auto run = [&](auto& stream, beast::tcp_stream& lowest) -> StatusOr<int> {
    const int fd = lowest.socket().native_handle();
    Register(fd);
    struct Unreg {
      KubeClient* c;
      int fd;
      ~Unreg() { c->Unregister(fd); }
    } unreg{this, fd};
    arm(lowest, r.idle);
    ec = await([&](auto done) { http::async_write(stream, req, std::move(done)); });
    if (ec) return UnavailableError(what + ": " + ec.message());
    beast::flat_buffer buf;
    http::response_parser<http::buffer_body> parser;
    parser.body_limit(std::numeric_limits<std::uint64_t>::max());
    ec = await([&](auto done) { http::async_read_header(stream, buf, parser, std::move(done)); });
    if (ec) return UnavailableError(what + ": " + ec.message());
    const int status = parser.get().result_int();
    const bool ok = status / 100 == 2;
    // Large enough that a stream arriving faster than it is appended is
    // taken in big batches (a read returns what the socket holds).
    constexpr size_t kChunk = 4 << 20;  // pages are touched only as filled
    constexpr size_t kRead = 256 << 10;
    std::unique_ptr<char[]> chunk_buf(new char[kChunk]);
    char* chunk = chunk_buf.get();
    // A watch stream is one HTTP chunk per event: parse every chunk the
    // buffer holds in one go, and wait on the socket (arming its timer)
    // only when the buffer is used up, not once per event.
    parser.eager(true);
    while (!parser.is_done()) {
      parser.get().body().data = chunk;
      parser.get().body().size = kChunk;
      // Parse and read what is there now (up to kChunk) before handing it
      // on: each hand-off is one durable append, so batches follow the load.
      for (;;) {
        if (buf.size() > 0) {
          const size_t used = parser.put(buf.data(), ec);
          buf.consume(used);
          if (ec == http::error::need_buffer) {  // the chunk is full
            ec = {};
            break;
          }
          if (ec == http::error::need_more) ec = {};
          if (ec) return UnavailableError(what + ": bad response (" + ec.message() + ")");
          if (parser.is_done()) break;
        }
        const bool have = parser.get().body().size < kChunk;
        if (have && lowest.socket().available(ec) == 0) break;
        size_t got = 0;
        arm(lowest, r.idle);
        ec = await([&](auto done) {
          stream.async_read_some(buf.prepare(kRead), [&got, done = std::move(done)](beast::error_code e, size_t n) mutable {
            got = n;
            done(e);
          });
        });
        buf.commit(got);
        if (ec == net::error::eof) {
          // The body may end with the connection (no length, not chunked).
          parser.put_eof(ec);
          if (ec) return UnavailableError(what + ": connection dropped (" + ec.message() + ")");
          break;
        }
        if (ec) return UnavailableError(what + ": connection dropped (" + ec.message() + ")");
      }
      const size_t n = kChunk - parser.get().body().size;
      if (!ok) {
        if (error_body && error_body->size() < (1 << 20)) error_body->append(chunk, n);
        continue;
      }
      if (n && !body_fn(std::string_view(chunk, n))) return status;
    }
    return status;
  };

  const auto connect_wait = std::min<std::chrono::steady_clock::duration>(r.idle, std::chrono::seconds(30));
  if (!tls_) {
    beast::tcp_stream stream(ioc);
    arm(stream, connect_wait);
    ec = await([&](auto done) { stream.async_connect(endpoints, std::move(done)); });
    if (ec) return UnavailableError("cannot connect to " + host_ + ":" + port_ + ": " + ec.message());
    auto res = run(stream, stream);
    stream.socket().shutdown(tcp::socket::shutdown_both, ec);
    return res;
  }
  beast::ssl_stream<beast::tcp_stream> stream(ioc, tls_ctx_->ctx);
  const std::string& name = config_.tls_server_name.empty() ? host_ : config_.tls_server_name;
  if (!SSL_set_tlsext_host_name(stream.native_handle(), name.c_str()))
    return InternalError("cannot set TLS server name");
  if (!config_.insecure_skip_tls_verify) {
    stream.set_verify_callback(ssl::host_name_verification(name));
  }
  // The handshake shares the connection's time.
  arm(beast::get_lowest_layer(stream), connect_wait);
  ec = await([&](auto done) { beast::get_lowest_layer(stream).async_connect(endpoints, std::move(done)); });
  if (ec) return UnavailableError("cannot connect to " + host_ + ":" + port_ + ": " + ec.message());
  ec = await([&](auto done) { stream.async_handshake(ssl::stream_base::client, std::move(done)); });
  if (ec) return UnavailableError("TLS handshake with " + host_ + ":" + port_ + ": " + ec.message());
  return run(stream, beast::get_lowest_layer(stream));
}

StatusOr<KubeResponse> KubeClient::Whole(const Request& r, size_t max_body) {
  KubeResponse out;
  bool too_big = false;
  std::string err_body;
  auto status = Do(
      r,
      [&](std::string_view b) {
        if (out.body.size() + b.size() > max_body) {
          too_big = true;
          return false;
        }
        out.body.append(b);
        return true;
      },
      &err_body);
  if (!status.ok()) return status.status();
  if (too_big)
    return ResourceExhaustedError(std::string(r.method) + " " + r.path + ": body larger than " +
                                  std::to_string(max_body));
  out.status = *status;
  if (out.status / 100 != 2) out.body = std::move(err_body);
  return out;
}

StatusOr<KubeResponse> KubeClient::Get(const std::string& path, size_t max_body) {
  return Whole(Request{.path = path}, max_body);
}

StatusOr<KubeResponse> KubeClient::Post(const std::string& path, const std::string& body,
                                        const std::string& content_type, std::chrono::milliseconds timeout,
                                        size_t max_body) {
  return Whole(Request{.method = "POST",
                       .path = path,
                       .body = &body,
                       .content_type = content_type,
                       .idle = std::chrono::ceil<std::chrono::seconds>(timeout),
                       .deadline = std::chrono::steady_clock::now() + timeout},
               max_body);
}

StatusOr<int> KubeClient::Stream(const std::string& path, std::chrono::seconds idle,
                                 const std::function<bool(std::string_view)>& on_data,
                                 std::string* error_body) {
  return Do(Request{.path = path, .idle = idle}, on_data, error_body);
}

}  // namespace annals::kube
