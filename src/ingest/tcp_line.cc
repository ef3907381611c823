#include "ingest/tcp_line.h"
#include "common/log.h"
#include "common/thread_util.h"

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>

#include <algorithm>
#include <array>
#include <cstdio>
#include <mutex>
#include <optional>
#include <thread>

#include "common/net_util.h"
#include "ingest/line_batch.h"

namespace annals::ingest {

namespace net = boost::asio;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;
using SslSocket = ssl::stream<tcp::socket>;

namespace {

constexpr char kSource[] = "tcp";

// Stream: tcp::socket, or SslSocket (TLS, then the same line loop).
template <class Stream>
class Connection : public std::enable_shared_from_this<Connection<Stream>> {
  static constexpr bool kTls = std::is_same_v<Stream, SslSocket>;
  using std::enable_shared_from_this<Connection<Stream>>::shared_from_this;

 public:
  Connection(tcp::socket s, Ingestor* ingestor, Metrics* metrics, size_t max_line, std::string cluster)
    requires(!kTls)
      : socket_(std::move(s)), ingestor_(ingestor), metrics_(metrics), max_line_(max_line),
        cluster_(std::move(cluster)) {
    SetOrigin();
  }
  Connection(tcp::socket s, std::shared_ptr<ssl::context> ctx, TcpLineListener::Admit admit,
             Ingestor* ingestor, Metrics* metrics, size_t max_line, std::string cluster)
    requires(kTls)
      : ctx_(std::move(ctx)), admit_(std::move(admit)), socket_(std::move(s), *ctx_),
        ingestor_(ingestor), metrics_(metrics), max_line_(max_line), cluster_(std::move(cluster)) {
    SetOrigin();
  }
  void Start() {
    if constexpr (kTls) {
      // A client that does not finish its handshake in 10 s is dropped.
      auto timer = std::make_shared<net::steady_timer>(socket_.get_executor(), std::chrono::seconds(10));
      timer->async_wait([self = shared_from_this()](boost::system::error_code ec) {
        if (!ec && !self->handshaken_) {
          boost::system::error_code ignored;
          self->socket_.lowest_layer().close(ignored);
        }
      });
      socket_.async_handshake(ssl::stream_base::server,
                              [self = shared_from_this(), timer](boost::system::error_code ec) {
                                self->handshaken_ = true;
                                timer->cancel();
                                if (ec) {
                                  // No certificate, another CA's, or no TLS at
                                  // all: an anonymous peer, refused, and asked
                                  // about so that the refusal is on the record.
                                  self->metrics_->Add("annals_tcp_refused_total", "reason", "handshake");
                                  std::string none;
                                  if (self->admit_) self->admit_("", {}, self->remote_, &none);
                                  return;
                                }
                                std::string user;
                                std::vector<std::string> groups;
                                tls::PeerIdentity(self->socket_.native_handle(), &user, &groups);
                                std::string bound;
                                if (self->admit_ && !self->admit_(user, groups, self->remote_, &bound)) {
                                  self->metrics_->Add("annals_tcp_refused_total", "reason", "forbidden");
                                  log::Warning("tcp %s: %s may not ingest, closed",
                                               self->origin_.c_str(), user.c_str());
                                  boost::system::error_code ignored;
                                  self->socket_.lowest_layer().close(ignored);
                                  return;
                                }
                                if (!bound.empty()) self->cluster_ = bound;  // the caller's, over the listener's
                                self->Read();
                              });
    } else {
      Read();
    }
  }

 private:
  void SetOrigin() {
    boost::system::error_code ec;
    auto ep = socket_.lowest_layer().remote_endpoint(ec);
    if (!ec) remote_ = ep.address().to_string();
    origin_ = ec ? "connection" : remote_ + ":" + std::to_string(ep.port());
  }

  void Read() {
    socket_.async_read_some(net::buffer(buf_), [self = shared_from_this()](
                                                   boost::system::error_code ec, size_t n) {
      self->OnRead(ec, n);
    });
  }

  void OnRead(boost::system::error_code ec, size_t n) {
    const bool eof = ec == net::error::eof || ec == ssl::error::stream_truncated;
    if (ec && !eof) return;  // connection reset: what was admitted is kept
    std::string_view in(buf_.data(), n);
    while (!in.empty()) {
      if (discarding_) {
        auto nl = in.find('\n');
        if (nl == std::string_view::npos) return Read();
        in.remove_prefix(nl + 1);
        discarding_ = false;
        ++line_no_;
        continue;
      }
      auto nl = in.rfind('\n');
      if (nl == std::string_view::npos) {
        partial_.append(in);
        in = {};
      } else {
        complete_.append(partial_);
        partial_.clear();
        complete_.append(in.substr(0, nl + 1));
        partial_.assign(in.substr(nl + 1));
        in = {};
      }
      if (partial_.size() > max_line_) {
        metrics_->Add("annals_bad_lines_total", "source", kSource);
        log::Warning("tcp %s: line %llu: longer than %zu bytes, skipped",
                     origin_.c_str(), static_cast<unsigned long long>(line_no_ + LinesIn(complete_)),
                     max_line_);
        partial_.clear();
        discarding_ = true;
      }
    }
    if (eof && !partial_.empty()) {
      // A last line without '\n' at end of stream is still a line.
      complete_.append(partial_);
      complete_.push_back('\n');
      partial_.clear();
    }
    if (complete_.empty()) {
      if (eof) return;
      return Read();
    }
    uint64_t lines = LinesIn(complete_);
    LineBatch batch = MakeLineBatch(std::move(complete_), line_no_ + 1, kSource, origin_, metrics_, "", 0, cluster_);
    complete_.clear();
    line_no_ += lines;
    Submit(std::move(batch), eof);
  }

  static uint64_t LinesIn(const std::string& s) {
    return static_cast<uint64_t>(std::count(s.begin(), s.end(), '\n'));
  }

  void Submit(LineBatch batch, bool eof) {
    if (batch.items.empty()) {
      if (!eof) Read();
      return;
    }
    auto shared = std::make_shared<LineBatch>(std::move(batch));
    auto items = shared->items;
    ingestor_->Submit(kSource, std::move(items),
                      [self = shared_from_this(), shared, eof](StatusOr<IngestResult> r) {
                        net::post(self->socket_.get_executor(), [self, shared, eof, r] {
                          if (!r.ok()) {
                            // Never drop: the stream has no acknowledgement,
                            // so hold the connection and try again.
                            log::Warning("tcp %s: append failed (%s); retrying",
                                         self->origin_.c_str(), r.status().message().c_str());
                            self->Retry(shared, eof);
                            return;
                          }
                          if (!eof) self->Read();
                        });
                      });
  }

  void Retry(std::shared_ptr<LineBatch> batch, bool eof) {
    auto timer = std::make_shared<net::steady_timer>(socket_.get_executor(),
                                                     std::chrono::milliseconds(200));
    timer->async_wait([self = shared_from_this(), batch, eof, timer](boost::system::error_code) {
      self->Submit(std::move(*batch), eof);
    });
  }

  std::shared_ptr<ssl::context> ctx_;  // kept alive across a reload
  TcpLineListener::Admit admit_;
  bool handshaken_ = false;
  Stream socket_;
  Ingestor* ingestor_;
  Metrics* metrics_;
  size_t max_line_;
  std::string cluster_;  // what its lines are filed under
  std::string remote_;  // the peer's address
  std::string origin_;  // address:port, for log lines
  std::array<char, 1 << 16> buf_;
  std::string partial_, complete_;
  bool discarding_ = false;
  uint64_t line_no_ = 0;
};

}  // namespace

struct TcpLineListener::Impl {
  std::string listen;
  Ingestor* ingestor;
  Metrics* metrics;
  size_t max_line;
  std::string cluster;
  net::io_context ioc;
  std::optional<tcp::acceptor> acceptor;
  std::thread thread;
  std::optional<tls::TlsFiles> tls_files;
  Admit admit;
  std::mutex tls_mu;
  std::shared_ptr<ssl::context> tls;

  void Accept() {
    acceptor->async_accept([this](boost::system::error_code ec, tcp::socket s) {
      if (ec == net::error::operation_aborted) return;
      if (!ec) {
        std::shared_ptr<ssl::context> ctx;
        {
          std::lock_guard lock(tls_mu);
          ctx = tls;
        }
        if (ctx)
          std::make_shared<Connection<SslSocket>>(std::move(s), std::move(ctx), admit, ingestor, metrics, max_line,
                                                 cluster)
              ->Start();
        else
          std::make_shared<Connection<tcp::socket>>(std::move(s), ingestor, metrics, max_line, cluster)->Start();
      }
      Accept();
    });
  }
};

TcpLineListener::TcpLineListener(std::string listen, Ingestor* ingestor, Metrics* metrics,
                                 size_t max_line, std::string cluster)
    : impl_(new Impl) {
  impl_->cluster = std::move(cluster);
  impl_->listen = std::move(listen);
  impl_->ingestor = ingestor;
  impl_->metrics = metrics;
  impl_->max_line = max_line;
}

TcpLineListener::~TcpLineListener() { Stop(); }

Status TcpLineListener::EnableTls(tls::TlsFiles files, Admit admit) {
  files.require_client_cert = !files.client_ca.empty();
  impl_->tls_files = std::move(files);
  impl_->admit = std::move(admit);
  return ReloadTls();
}

Status TcpLineListener::ReloadTls() {
  if (!impl_->tls_files) return FailedPreconditionError("TLS is not configured");
  ASSIGN_OR_RETURN(auto ctx, tls::MakeServerContext(*impl_->tls_files));
  std::lock_guard lock(impl_->tls_mu);
  impl_->tls = std::move(ctx);
  return OkStatus();
}

StatusOr<uint16_t> TcpLineListener::Start() {
  ASSIGN_OR_RETURN(auto hp, SplitHostPort(impl_->listen));
  boost::system::error_code ec;
  auto addr = net::ip::make_address(hp.first, ec);
  if (ec) return InvalidArgumentError("bad --tcp-listen address " + hp.first);
  tcp::endpoint ep(addr, hp.second);
  auto& acc = impl_->acceptor.emplace(impl_->ioc);
  acc.open(ep.protocol(), ec);
  if (!ec) acc.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acc.bind(ep, ec);
  if (!ec) acc.listen(net::socket_base::max_listen_connections, ec);
  if (ec) return UnavailableError("tcp listen on " + impl_->listen + ": " + ec.message());
  uint16_t bound = acc.local_endpoint().port();
  impl_->Accept();
  impl_->thread = std::thread([this] {
    SetThreadName("annals-tcp");
    impl_->ioc.run();
  });
  return bound;
}

void TcpLineListener::Stop() {
  if (!impl_ || !impl_->thread.joinable()) return;
  impl_->ioc.stop();
  impl_->thread.join();
}

}  // namespace annals::ingest
