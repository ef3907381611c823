#include "server/http_server.h"

#include <nlohmann/json.hpp>
#include "common/log.h"
#include "common/thread_util.h"

#include <strings.h>
#include <sys/resource.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <list>
#include <mutex>
#include <optional>
#include <thread>

#include "common/bytes.h"
#include "json/json_parse.h"
#include "tls/tls_context.h"

namespace annals::server {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
namespace ssl = net::ssl;
using SslStream = beast::ssl_stream<beast::tcp_stream>;


namespace {

// The requests handed to the handler and not yet answered (their response
// written or their stream started), so Stop can let them finish; shared
// with the sessions, which may outlive the count's owner by a little.
// A request's hold on its connection, given to the handler inside the
// Responder. The first answer takes the connection out; Stop takes out what
// is left once the io threads are gone, so a Responder that outlives the
// server (kept by a handler thread, or never called) holds nothing of it.
struct Pending {
  std::mutex mu;
  std::shared_ptr<void> session;  // a Session<Stream>; null once answered or released
};

// A connection that can be closed to free its descriptor.
struct Sheddable {
  virtual ~Sheddable() = default;
  virtual void Shed() = 0;
};

// A connection's place on the idle list; its fields are guarded by
// Inflight::idle_mu.
struct IdleTicket {
  std::weak_ptr<Sheddable> who;
  bool listed = false;
};

struct Inflight {
  // Open connections, and those waiting for a request (oldest first): when
  // descriptors run short the oldest idle one is closed for a new caller.
  std::atomic<uint64_t> open{0};
  std::mutex idle_mu;
  std::list<std::shared_ptr<IdleTicket>> idle;
  // Closes the connection that has waited longest for a request; false if
  // none waits.
  bool ShedOldestIdle() {
    for (;;) {
      std::shared_ptr<Sheddable> victim;
      {
        std::lock_guard lock(idle_mu);
        if (idle.empty()) return false;
        std::shared_ptr<IdleTicket> t = std::move(idle.front());
        idle.pop_front();
        t->listed = false;
        victim = t->who.lock();
      }
      if (victim) {
        victim->Shed();
        return true;
      }
    }
  }

  std::mutex mu;
  std::condition_variable cv;
  uint64_t n = 0;
  bool draining = false;  // new requests get 503 and the connection closes
  std::vector<std::weak_ptr<Pending>> pending;  // pruned as it grows

  void Track(const std::shared_ptr<Pending>& p) {
    std::lock_guard lock(mu);
    if (pending.size() >= 64 && pending.size() % 64 == 0)
      std::erase_if(pending, [](const auto& w) { return w.expired(); });
    pending.push_back(p);
  }
  // The sessions still held by unanswered Responders; the caller drops them.
  std::vector<std::shared_ptr<void>> Release() {
    std::vector<std::weak_ptr<Pending>> all;
    {
      std::lock_guard lock(mu);
      all.swap(pending);
    }
    // Locking each one also waits for a Responder that is posting its
    // answer right now (see OnRead).
    std::vector<std::shared_ptr<void>> out;
    for (auto& w : all)
      if (auto p = w.lock()) {
        std::lock_guard lock(p->mu);
        if (p->session) out.push_back(std::move(p->session));
      }
    return out;
  }
};

// One connection; Stream is beast::tcp_stream (plain HTTP) or SslStream.
template <class Stream>
class Session : public Sheddable, public std::enable_shared_from_this<Session<Stream>> {
  static constexpr bool kTls = std::is_same_v<Stream, SslStream>;

 public:
  Session(tcp::socket socket, const HttpServerOptions& opts, const Handler& handler,
          std::shared_ptr<Inflight> inflight)
    requires(!kTls)
      : stream_(std::move(socket)), opts_(opts), handler_(handler), inflight_(std::move(inflight)) {
    // Without room, Beast reads bodies 512 bytes per recvmsg.
    buffer_.reserve(64 << 10);
    inflight_->open.fetch_add(1);
  }
  Session(tcp::socket socket, std::shared_ptr<ssl::context> ctx, const HttpServerOptions& opts,
          const Handler& handler, std::shared_ptr<Inflight> inflight)
    requires(kTls)
      : ctx_(std::move(ctx)), stream_(std::move(socket), *ctx_), opts_(opts), handler_(handler),
        inflight_(std::move(inflight)) {
    buffer_.reserve(64 << 10);
    inflight_->open.fetch_add(1);
  }
  ~Session() {
    NotIdle();
    Answered();
    inflight_->open.fetch_sub(1);
  }

  // From any thread: the connection is closed on its strand.
  void Shed() override {
    net::post(stream_.get_executor(), [self = this->shared_from_this()] {
      beast::error_code ec;
      self->Tcp().socket().close(ec);
    });
  }

  void Run() {
    net::dispatch(stream_.get_executor(), [self = this->shared_from_this()] {
      if constexpr (kTls) self->Handshake();
      else self->Read();
    });
  }

 private:
  beast::tcp_stream& Tcp() { return beast::get_lowest_layer(stream_); }

  void Handshake() {
    Tcp().expires_after(std::chrono::seconds(opts_.handshake_timeout_seconds));
    stream_.async_handshake(ssl::stream_base::server,
                            [self = this->shared_from_this()](beast::error_code ec) {
                              if (ec) return self->Close();
                              tls::PeerIdentity(self->stream_.native_handle(), &self->tls_user_,
                                           &self->tls_groups_);
                              self->Read();
                            });
  }

  void Read() {
    parser_.emplace();
    parser_->body_limit(opts_.max_body_bytes);
    parser_->header_limit(opts_.max_header_bytes);
    // The whole request (headers and body) must arrive within the timeout:
    // a slow sender (slowloris) is cut off.
    Tcp().expires_after(std::chrono::seconds(opts_.idle_timeout_seconds));
    Idle();
    http::async_read_header(stream_, buffer_, *parser_, [self = this->shared_from_this()](beast::error_code ec, size_t) {
      self->NotIdle();
      self->OnHeader(ec);
    });
  }

  // Waiting for a request: may be shed (Inflight::ShedOldestIdle).
  void Idle() {
    std::lock_guard lock(inflight_->idle_mu);
    if (!ticket_) {
      ticket_ = std::make_shared<IdleTicket>();
      ticket_->who = this->weak_from_this();
    }
    if (ticket_->listed) return;
    inflight_->idle.push_back(ticket_);
    idle_it_ = std::prev(inflight_->idle.end());
    ticket_->listed = true;
  }
  void NotIdle() {
    std::lock_guard lock(inflight_->idle_mu);
    if (ticket_ && ticket_->listed) {
      inflight_->idle.erase(idle_it_);
      ticket_->listed = false;
    }
  }

  // Between the headers and the body: refuse what the body cannot be read
  // as, and answer `Expect: 100-continue` (curl waits a second for it before
  // a body over 1 MB).
  void OnHeader(beast::error_code ec) {
    if (ec) return OnRead(ec);
    const auto& h = parser_->get();
    auto refuse = [&](int status, std::string error) {
      keep_alive_ = false;
      HttpResponse r;
      r.status = status;
      r.body = nlohmann::json{{"error", std::move(error)}}.dump() + "\n";
      Write(std::move(r));
    };
    if (auto te = h.find(http::field::transfer_encoding); te != h.end()) {
      // Only chunked is decoded: "gzip, chunked" would hand the handler
      // compressed bytes as if they were the body.
      if (!beast::iequals(Trimmed(te->value()), "chunked"))
        return refuse(501, "Transfer-Encoding \"" + std::string(te->value()) +
                               "\" is not supported: send the body as it is, or chunked");
    }
    if (auto ex = h.find(http::field::expect); ex != h.end()) {
      if (!beast::iequals(Trimmed(ex->value()), "100-continue"))
        return refuse(417, "Expect \"" + std::string(ex->value()) + "\" is not supported");
      static const std::string k100 = "HTTP/1.1 100 Continue\r\n\r\n";
      return net::async_write(stream_, net::buffer(k100), [self = this->shared_from_this()](beast::error_code e, size_t) {
        if (e) return self->Close();
        self->ReadBody();
      });
    }
    ReadBody();
  }

  void ReadBody() {
    // Room behind the body for JSON parsers that read past its end, so
    // they parse it where it is (json_util::kJsonPadding).
    if (auto n = parser_->content_length(); n && *n <= opts_.max_body_bytes)
      parser_->get().body().reserve(static_cast<size_t>(*n) + json_util::kJsonPadding);
    http::async_read(stream_, buffer_, *parser_,
                     [self = this->shared_from_this()](beast::error_code ec, size_t) { self->OnRead(ec); });
  }

  static beast::string_view Trimmed(beast::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
  }

  void OnRead(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == net::error::eof) return Close();
    if (ec == ssl::error::stream_truncated || ec.category() == net::error::get_ssl_category())
      return Close();
    if (ec) {
      HttpResponse r;
      if (ec == http::error::body_limit) {
        r.status = 413;
        r.body = R"({"error":"request body exceeds the limit of )" +
                 std::to_string(opts_.max_body_bytes) + R"( bytes"})";
      } else if (ec == http::error::header_limit) {
        r.status = 431;
        r.body = R"({"error":"request headers too large"})";
      } else if (ec == beast::error::timeout || ec == net::error::operation_aborted) {
        return Close();
      } else {
        r.status = 400;
        r.body = R"({"error":"malformed HTTP request"})";
      }
      keep_alive_ = false;
      return Write(std::move(r));
    }
    auto msg = parser_->release();
    keep_alive_ = msg.keep_alive();
    if (!Handing()) {
      keep_alive_ = false;
      HttpResponse r;
      r.status = 503;
      r.body = R"({"error":"the server is shutting down"})";
      return Write(std::move(r));
    }
    HttpRequest req;
    req.method = std::string(msg.method_string());
    req.target = std::string(msg.target());
    for (const auto& f : msg) req.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
    req.body = std::move(msg.body());
    beast::error_code ec2;
    auto ep = Tcp().socket().remote_endpoint(ec2);
    if (!ec2) req.remote = ep.address().to_string();
    req.tls_user = tls_user_;
    req.tls_groups = tls_groups_;
    Tcp().expires_never();
    auto pending = std::make_shared<Pending>();
    pending->session = this->shared_from_this();
    inflight_->Track(pending);
    handler_(std::move(req), [pending](HttpResponse resp) {
      // The post happens under pending->mu: Stop's Release takes that lock
      // before the io_context goes, so no executor copy made here can
      // outlive it (the answer may be written, and Stop return, while this
      // thread is still inside net::post).
      std::lock_guard lock(pending->mu);
      auto self = std::static_pointer_cast<Session>(std::move(pending->session));
      pending->session.reset();
      if (!self) return;  // answered already, or the server has stopped
      auto* s = self.get();
      net::post(s->stream_.get_executor(),
                [self = std::move(self), resp = std::move(resp)]() mutable { self->Write(std::move(resp)); });
    });
  }

  void Write(HttpResponse r) {
    if (r.stream) return StartStream(std::move(r));
    auto res = std::make_shared<http::response<http::string_body>>();
    res->version(11);
    res->result(static_cast<http::status>(r.status));
    res->set(http::field::server, "annals");
    res->set(http::field::content_type, r.content_type);
    for (auto& [k, v] : r.headers) res->set(k, v);
    res->body() = std::move(r.body);
    res->keep_alive(keep_alive_);
    res->prepare_payload();
    Tcp().expires_after(std::chrono::seconds(opts_.idle_timeout_seconds));
    http::async_write(stream_, *res,
                      [self = this->shared_from_this(), res](beast::error_code ec, size_t) {
                        self->Answered();
                        if (ec || !self->keep_alive_) return self->Close();
                        self->Read();
                      });
  }

  // A request goes to the handler: counted until it is answered. False
  // once the server is draining.
  bool Handing() {
    std::lock_guard lock(inflight_->mu);
    if (inflight_->draining) return false;
    ++inflight_->n;
    counted_ = true;
    return true;
  }
  void Answered() {
    if (!counted_) return;
    counted_ = false;
    std::lock_guard lock(inflight_->mu);
    if (--inflight_->n == 0) inflight_->cv.notify_all();
  }

  // A streamed response (see api::ResponseStream): chunked, and the
  // connection is the stream's until it ends (no keep-alive after it).
  // Writes go through stream_, so a TLS session streams encrypted.
  class ChunkStream : public api::ResponseStream {
   public:
    // Weak: the session lives as long as its pending peer-close read, so a
    // handler holding the stream never keeps a finished connection alive.
    explicit ChunkStream(std::weak_ptr<Session> s) : s_(std::move(s)) {}
    void Write(std::vector<std::shared_ptr<const std::string>> pieces,
               std::function<void(bool)> done) override {
      auto s = s_.lock();
      if (!s) return done(false);
      net::post(s->stream_.get_executor(), [s, pieces = std::move(pieces),
                                            done = std::move(done)]() mutable {
        if (s->stream_closed_) return done(false);
        size_t n = 0;
        for (const auto& p : pieces) n += p->size();
        if (n == 0) return done(true);  // an empty chunk would end the body
        char hex[24];
        int hl = std::snprintf(hex, sizeof(hex), "%zx\r\n", n);
        auto head = std::make_shared<std::string>(hex, hl);
        std::vector<net::const_buffer> bufs;
        bufs.reserve(pieces.size() + 2);
        bufs.push_back(net::buffer(*head));
        for (const auto& p : pieces) bufs.push_back(net::buffer(*p));
        bufs.push_back(net::buffer("\r\n", 2));
        net::async_write(s->stream_, bufs,
                         [s, head, pieces = std::move(pieces), done = std::move(done)](
                             beast::error_code ec, size_t) {
                           if (ec) s->EndStream();
                           done(!ec);
                         });
      });
    }
    void Post(std::function<void()> fn) override {
      if (auto s = s_.lock()) net::post(s->stream_.get_executor(), std::move(fn));
    }
    void OnClose(std::function<void()> fn) override {
      auto s = s_.lock();
      if (!s) return fn();
      net::post(s->stream_.get_executor(), [s, fn = std::move(fn)]() mutable {
        if (s->stream_closed_) return fn();
        s->on_stream_close_ = std::move(fn);
      });
    }
    void Close() override {
      auto s = s_.lock();
      if (!s) return;
      net::post(s->stream_.get_executor(), [s] {
        if (s->stream_closed_) return;
        static const std::string kLast = "0\r\n\r\n";
        net::async_write(s->stream_, net::buffer(kLast),
                         [s](beast::error_code, size_t) { s->EndStream(); });
      });
    }
    void Abort() override {
      if (auto s = s_.lock()) net::post(s->stream_.get_executor(), [s] { s->EndStream(); });
    }

   private:
    std::weak_ptr<Session> s_;
  };

  void StartStream(HttpResponse r) {
    auto res = std::make_shared<http::response<http::empty_body>>();
    res->version(11);
    res->result(static_cast<http::status>(r.status));
    res->set(http::field::server, "annals");
    res->set(http::field::content_type, r.content_type);
    for (auto& [k, v] : r.headers) res->set(k, v);
    res->keep_alive(false);
    res->chunked(true);
    auto sr = std::make_shared<http::response_serializer<http::empty_body>>(*res);
    Tcp().expires_never();
    http::async_write_header(
        stream_, *sr,
        [self = this->shared_from_this(), res, sr, start = std::move(r.stream)](beast::error_code ec, size_t) {
          self->Answered();  // a stream runs until it ends or the server stops
          if (ec) return self->EndStream();
          self->WatchForPeerClose();
          start(std::make_shared<ChunkStream>(self));
        });
  }

  // The client sends nothing more on a stream: any read completion (data,
  // EOF or error) means it is gone or misbehaving.
  void WatchForPeerClose() {
    stream_.async_read_some(
        net::buffer(peer_byte_, 1), [self = this->shared_from_this()](beast::error_code ec, size_t) {
          if (!ec) return self->WatchForPeerClose();
          self->EndStream();
        });
  }

  void EndStream() {
    if (stream_closed_) return;
    stream_closed_ = true;
    beast::error_code ec;
    Tcp().socket().shutdown(tcp::socket::shutdown_both, ec);
    Tcp().socket().close(ec);
    if (auto fn = std::move(on_stream_close_)) fn();
  }

  void Close() {
    beast::error_code ec;
    Tcp().socket().shutdown(tcp::socket::shutdown_send, ec);
  }

  std::shared_ptr<ssl::context> ctx_;  // kept alive across a reload
  Stream stream_;
  std::string tls_user_;
  std::vector<std::string> tls_groups_;
  beast::flat_buffer buffer_;
  const HttpServerOptions& opts_;
  const Handler& handler_;
  std::optional<http::request_parser<http::string_body>> parser_;
  bool keep_alive_ = true;
  std::shared_ptr<Inflight> inflight_;
  bool counted_ = false;  // this connection's request is in inflight_
  std::shared_ptr<IdleTicket> ticket_;  // on inflight_->idle at idle_it_ while listed
  std::list<std::shared_ptr<IdleTicket>>::iterator idle_it_;
  // Streamed responses only; touched on the connection's strand.
  bool stream_closed_ = false;
  std::function<void()> on_stream_close_;
  char peer_byte_[1];
};

}  // namespace

struct HttpServer::Impl {
  HttpServerOptions opts;
  Handler handler;
  std::mutex tls_mu;
  std::shared_ptr<ssl::context> tls;  // null: plain HTTP

  std::shared_ptr<ssl::context> Tls() {
    std::lock_guard lock(tls_mu);
    return tls;
  }

  net::io_context ioc;
  std::optional<tcp::acceptor> acceptor;
  std::vector<std::thread> threads;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work;
  std::shared_ptr<Inflight> inflight = std::make_shared<Inflight>();

  std::optional<net::steady_timer> retry_timer;
  uint64_t max_connections = 0;
  std::chrono::steady_clock::time_point last_warning{};

  void Warn(const char* what) {
    const auto now = std::chrono::steady_clock::now();
    if (now - last_warning < std::chrono::seconds(10)) return;
    last_warning = now;
    log::Warning("http: %s (%llu connections open, at most %llu)", what,
                 static_cast<unsigned long long>(inflight->open.load()),
                 static_cast<unsigned long long>(max_connections));
  }

  void Accept() {
    acceptor->async_accept(net::make_strand(ioc), [this](beast::error_code ec, tcp::socket s) {
      if (ec == net::error::operation_aborted) return;
      if (ec == net::error::no_descriptors || ec.value() == ENFILE || ec == net::error::no_buffer_space ||
          ec == net::error::no_memory) {
        // Out of descriptors: the pending connection stays queued. Free one
        // (the oldest idle connection) and try again a little later; an
        // immediate retry would fail the same way, at 100% CPU.
        Warn("out of file descriptors: closing the oldest idle connection");
        inflight->ShedOldestIdle();
        retry_timer->expires_after(std::chrono::milliseconds(50));
        retry_timer->async_wait([this](beast::error_code e) {
          if (!e) Accept();
        });
        return;
      }
      bool refuse = false;
      if (!ec && inflight->open.load() >= max_connections) {
        if (inflight->ShedOldestIdle()) {
          Warn("connection limit reached: closing the oldest idle connection");
        } else {
          // Every connection is busy with a request: this one waits its
          // turn nowhere. Closed at once (the caller retries), never left
          // hanging.
          Warn("connection limit reached and no idle connection to close: refusing a connection");
          refuse = true;
        }
      }
      if (refuse) {
        beast::error_code ignored;
        s.close(ignored);
      } else if (!ec) {
        s.set_option(tcp::no_delay(true));
        if (auto ctx = Tls())
          std::make_shared<Session<SslStream>>(std::move(s), std::move(ctx), opts, handler, inflight)->Run();
        else
          std::make_shared<Session<beast::tcp_stream>>(std::move(s), opts, handler, inflight)->Run();
      }
      Accept();
    });
  }
};

HttpServer::HttpServer(HttpServerOptions options, Handler handler) : impl_(new Impl) {
  impl_->opts = std::move(options);
  impl_->handler = std::move(handler);
}

HttpServer::~HttpServer() { Stop(); }

Status HttpServer::ReloadTls() {
  if (impl_->opts.tls_cert.empty()) return FailedPreconditionError("TLS is not configured");
  const auto& o = impl_->opts;
  ASSIGN_OR_RETURN(auto ctx, tls::MakeServerContext({o.tls_cert, o.tls_key, o.client_ca, false}));
  std::lock_guard lock(impl_->tls_mu);
  impl_->tls = std::move(ctx);
  return OkStatus();
}

StatusOr<uint16_t> HttpServer::Start() {
  if (impl_->opts.tls_cert.empty() != impl_->opts.tls_key.empty())
    return InvalidArgumentError("TLS needs both a certificate and a key");
  if (!impl_->opts.client_ca.empty() && impl_->opts.tls_cert.empty())
    return InvalidArgumentError("client certificates need TLS (a certificate and a key)");
  if (!impl_->opts.tls_cert.empty()) RETURN_IF_ERROR(ReloadTls());
  ASSIGN_OR_RETURN(auto hp, SplitHostPort(impl_->opts.listen));
  beast::error_code ec;
  auto addr = net::ip::make_address(hp.first, ec);
  if (ec) return InvalidArgumentError("bad listen address " + hp.first + ": " + ec.message());
  tcp::endpoint ep(addr, hp.second);
  auto& acc = impl_->acceptor.emplace(impl_->ioc);
  acc.open(ep.protocol(), ec);
  if (!ec) acc.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acc.bind(ep, ec);
  if (!ec) acc.listen(net::socket_base::max_listen_connections, ec);
  if (ec) return UnavailableError("listen on " + impl_->opts.listen + ": " + ec.message());
  uint16_t port = acc.local_endpoint().port();
  impl_->max_connections = impl_->opts.max_connections;
  if (impl_->max_connections == 0) {
    // Half the descriptors: the rest stay for the log's segments, the
    // indexes' table files, blobs and outgoing connections.
    rlimit rl{};
    const uint64_t limit = ::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY ? rl.rlim_cur : 65536;
    impl_->max_connections = std::max<uint64_t>(16, limit / 2);
  }
  impl_->retry_timer.emplace(impl_->ioc);
  impl_->Accept();
  impl_->work.emplace(impl_->ioc.get_executor());
  for (int i = 0; i < std::max(1, impl_->opts.threads); ++i)
    impl_->threads.emplace_back([this] {
      SetThreadName("annals-http");
      impl_->ioc.run();
    });
  return port;
}

void HttpServer::Stop() {
  if (!impl_ || impl_->threads.empty()) return;
  net::post(impl_->ioc, [this] {
    beast::error_code ec;
    if (impl_->acceptor) impl_->acceptor->close(ec);
    if (impl_->retry_timer) impl_->retry_timer->cancel();
  });
  // Drain: requests already handed to the handler are answered (an ingest
  // request once its events are durable); new ones get 503.
  {
    Inflight& in = *impl_->inflight;
    std::unique_lock lock(in.mu);
    in.draining = true;
    if (!in.cv.wait_for(lock, std::chrono::milliseconds(impl_->opts.drain_timeout_ms),
                        [&in] { return in.n == 0; }))
      log::Warning("http: %llu requests still unanswered after %d ms; closing them",
                   static_cast<unsigned long long>(in.n), impl_->opts.drain_timeout_ms);
  }
  impl_->work.reset();
  impl_->ioc.stop();
  for (auto& t : impl_->threads) t.join();
  impl_->threads.clear();
  // Connections whose Responder is still out are closed now, while the
  // io_context they belong to still exists.
  impl_->inflight->Release().clear();
}

}  // namespace annals::server
