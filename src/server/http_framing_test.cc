// How the listener reads request bodies: only the chunked transfer coding
// is decoded (anything else is 501, never compressed bytes handed over as
// the body), and `Expect: 100-continue` is answered before the body is
// sent. Raw sockets, so that the bytes on the wire are the test's own.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <string>

#include "server/http_server.h"

namespace annals::server {
namespace {

class Raw {
 public:
  explicit Raw(uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ok_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  }
  ~Raw() { ::close(fd_); }
  bool ok() const { return ok_; }
  void Send(const std::string& s) { ASSERT_EQ(::send(fd_, s.data(), s.size(), MSG_NOSIGNAL), ssize_t(s.size())); }
  // What arrives within `ms` (until `until` is seen, or the peer closes).
  std::string Receive(int ms, const std::string& until) {
    std::string got;
    while (got.find(until) == std::string::npos) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, ms) <= 0) break;
      char buf[4096];
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) break;
      got.append(buf, static_cast<size_t>(n));
    }
    return got;
  }

 private:
  int fd_ = -1;
  bool ok_ = false;
};

class HttpFramingTest : public testing::Test {
 protected:
  void SetUp() override {
    HttpServerOptions o;
    o.listen = "127.0.0.1:0";
    server_ = std::make_unique<HttpServer>(o, [this](api::HttpRequest&& req, api::Responder r) {
      taken_.fetch_add(1);
      api::HttpResponse resp;
      resp.body = "body:" + req.body;
      r(std::move(resp));
    });
    auto port = server_->Start();
    ASSERT_TRUE(port.ok()) << port.status().ToString();
    port_ = *port;
  }
  void TearDown() override { server_->Stop(); }
  std::unique_ptr<HttpServer> server_;
  uint16_t port_ = 0;
  std::atomic<int> taken_{0};
};

TEST_F(HttpFramingTest, ChunkedBodiesAreDecoded) {
  Raw c(port_);
  ASSERT_TRUE(c.ok());
  c.Send("POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n");
  std::string r = c.Receive(5000, "body:hello");
  EXPECT_TRUE(r.starts_with("HTTP/1.1 200")) << r;
  EXPECT_NE(r.find("body:hello"), std::string::npos) << r;
}

TEST_F(HttpFramingTest, OtherTransferCodingsAre501AndReachNoHandler) {
  for (const char* te : {"gzip, chunked", "gzip", "deflate,chunked", "chunked, chunked"}) {
    SCOPED_TRACE(te);
    Raw c(port_);
    ASSERT_TRUE(c.ok());
    c.Send(std::string("POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ") + te +
           "\r\n\r\n5\r\nhello\r\n0\r\n\r\n");
    std::string r = c.Receive(5000, "}");
    EXPECT_TRUE(r.starts_with("HTTP/1.1 501")) << r;
    EXPECT_NE(r.find("not supported"), std::string::npos) << r;
  }
  EXPECT_EQ(taken_.load(), 0);
}

TEST_F(HttpFramingTest, ExpectContinueIsAnsweredBeforeTheBodyIsSent) {
  Raw c(port_);
  ASSERT_TRUE(c.ok());
  const std::string body(2 << 20, 'b');
  c.Send("POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\nExpect: 100-continue\r\n\r\n");
  std::string interim = c.Receive(2000, "\r\n\r\n");
  EXPECT_EQ(interim, "HTTP/1.1 100 Continue\r\n\r\n");
  c.Send(body);
  std::string r = c.Receive(10000, "bbbbbbbbbb");
  EXPECT_TRUE(r.starts_with("HTTP/1.1 200")) << r.substr(0, 200);
  EXPECT_EQ(taken_.load(), 1);
}

TEST_F(HttpFramingTest, AnUnknownExpectationIs417) {
  Raw c(port_);
  ASSERT_TRUE(c.ok());
  c.Send("POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nExpect: teapot\r\n\r\nx");
  std::string r = c.Receive(5000, "}");
  EXPECT_TRUE(r.starts_with("HTTP/1.1 417")) << r;
  EXPECT_EQ(taken_.load(), 0);
}

}  // namespace
}  // namespace annals::server
