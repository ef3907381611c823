// HttpServer::Stop drains: a request the handler already took is answered
// before the io threads stop, a new request on an open connection gets 503,
// and a handler that never answers holds Stop no longer than the bound.
#include "server/http_server.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

#include "client/http_client.h"

namespace annals::server {
namespace {

using namespace std::chrono_literals;

// A handler that answers /slow from another thread after `delay`, /never
// not at all (the responder is kept), anything else at once.
struct Handlers {
  std::chrono::milliseconds delay{300};
  std::mutex mu;
  std::vector<std::thread> threads;
  std::vector<Responder> kept;
  std::atomic<int> taken{0};

  Handler Get() {
    return [this](HttpRequest&& req, Responder r) {
      taken.fetch_add(1);
      if (req.target == "/slow") {
        std::lock_guard lock(mu);
        threads.emplace_back([this, r = std::move(r)] {
          std::this_thread::sleep_for(delay);
          HttpResponse resp;
          resp.body = "durable";
          r(std::move(resp));
        });
        return;
      }
      if (req.target == "/never") {
        std::lock_guard lock(mu);
        kept.push_back(std::move(r));
        return;
      }
      HttpResponse resp;
      resp.body = "fast";
      r(std::move(resp));
    };
  }
  ~Handlers() {
    for (auto& t : threads) t.join();
  }
};

TEST(HttpServerStop, AnswersWhatItTookAndRefusesNewRequests) {
  Handlers h;
  HttpServerOptions o;
  o.listen = "127.0.0.1:0";
  HttpServer server(o, h.Get());
  auto port = server.Start();
  ASSERT_TRUE(port.ok()) << port.status().ToString();
  const std::string url = "http://127.0.0.1:" + std::to_string(*port);

  // A kept-alive connection that has been used once.
  auto idle = client::HttpClient::Create(url);
  ASSERT_TRUE(idle.ok());
  auto first = (*idle)->Get("/fast");
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->body, "fast");

  StatusOr<client::HttpResult> slow = UnavailableError("not answered");
  std::thread asker([&] {
    auto c = client::HttpClient::Create(url);
    if (c.ok()) slow = (*c)->Get("/slow");
  });
  while (h.taken.load() < 2) std::this_thread::sleep_for(1ms);  // the handler has /slow
  std::thread stopper([&] { server.Stop(); });
  std::this_thread::sleep_for(100ms);  // Stop is draining: /slow is not answered yet
  // A new request on the open connection while draining: 503, not dropped.
  auto during = (*idle)->Get("/fast");
  ASSERT_TRUE(during.ok()) << during.status().ToString();
  EXPECT_EQ(during->status, 503);
  EXPECT_NE(during->body.find("shutting down"), std::string::npos) << during->body;
  asker.join();
  stopper.join();
  ASSERT_TRUE(slow.ok()) << slow.status().ToString();
  EXPECT_EQ(slow->status, 200);
  EXPECT_EQ(slow->body, "durable");
  // The listener is closed.
  auto after = client::HttpClient::Create(url);
  EXPECT_TRUE(!after.ok() || !(*after)->Get("/fast").ok());
}

TEST(HttpServerStop, AnUnansweredRequestHoldsStopOnlyForTheBound) {
  Handlers h;
  HttpServerOptions o;
  o.listen = "127.0.0.1:0";
  o.drain_timeout_ms = 200;
  auto server = std::make_unique<HttpServer>(o, h.Get());
  auto port = server->Start();
  ASSERT_TRUE(port.ok());
  std::thread asker([&] {
    auto c = client::HttpClient::Create("http://127.0.0.1:" + std::to_string(*port));
    if (c.ok()) (void)(*c)->Get("/never");  // fails when the server goes
  });
  while (h.taken.load() < 1) std::this_thread::sleep_for(1ms);
  const auto t0 = std::chrono::steady_clock::now();
  server->Stop();
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(took, 190ms);
  EXPECT_LT(took, 5s);
  // A responder that outlives its server holds nothing of it: calling it
  // and then dropping it after the server is gone is harmless (ASan checks).
  server.reset();
  HttpResponse late;
  for (auto& r : h.kept) r(late);
  h.kept.clear();
  asker.join();
}

}  // namespace
}  // namespace annals::server
