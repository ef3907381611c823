// Running out of file descriptors (issue: with `ulimit -n 256` and 400 idle
// connections the server spun at 100% CPU and new clients hung). The real
// server is started with a soft limit of 256 descriptors, 400 connections
// are opened to it and left idle; it must not spin, must keep answering
// health checks and ingest on new connections, and must close the oldest
// idle connections to make room.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "client/http_client.h"
#include "testutil/log_client.h"
#include "testutil/server_process.h"
#include "testutil/test_macros.h"

namespace annals {
namespace {

// The CPU seconds (user + system) the process has used.
double CpuSeconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // Fields after the command name (which may hold spaces) start past ')'.
  std::istringstream rest(stat.substr(stat.rfind(')') + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

// Whether the server closed the connection (a read returns 0 or an error).
bool ClosedByPeer(int fd) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, 0) <= 0) return false;
  char c;
  return ::recv(fd, &c, 1, MSG_DONTWAIT) <= 0;
}

TEST(Descriptors, FourHundredIdleConnectionsUnder256DescriptorsNeitherSpinNorLockOutNewCallers) {
  testutil::TempDir tmp;
  testutil::ServeOptions o;
  o.data_dir = tmp.Sub("data");
  o.listen = "127.0.0.1:0";
  testutil::ServerProcess server(o);
  // The child inherits the soft limit at fork; the test's own is restored.
  rlimit saved{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &saved), 0);
  ASSERT_GE(saved.rlim_cur, 1024u) << "the test itself needs over 400 descriptors";
  rlimit low = saved;
  low.rlim_cur = 256;
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &low), 0);
  Status started = server.Start();
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &saved), 0);
  ASSERT_OK(started);
  const uint16_t port = testutil::PortOfUrl(server.url());

  std::vector<int> idle;
  for (int i = 0; i < 400; ++i) {
    int fd = testutil::ConnectLoopback(port);
    if (fd >= 0) idle.push_back(fd);
  }
  EXPECT_GE(idle.size(), 300u);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));

  // Not spinning: over two seconds it uses well under one core.
  const double before = CpuSeconds(server.pid());
  std::this_thread::sleep_for(std::chrono::seconds(2));
  const double used = CpuSeconds(server.pid()) - before;
  EXPECT_LT(used, 0.5) << "the server used " << used << " s of CPU in 2 s with idle connections";

  // New callers are served: health and ingest, each on a fresh connection.
  const auto corpus = testutil::CorpusAuditLines();
  ASSERT_FALSE(corpus.empty());
  for (int i = 0; i < 5; ++i) {
    ASSERT_OK_AND_ASSIGN(auto http, client::HttpClient::Create(server.url()));
    const auto t0 = std::chrono::steady_clock::now();
    ASSERT_OK_AND_ASSIGN(auto health, http->Get("/healthz"));
    EXPECT_EQ(health.status, 200) << health.body;
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(3));
    ASSERT_OK(testutil::PostEvents(http.get(), {testutil::UniqueVariant(corpus[i], "fd" + std::to_string(i))})
                  .status());
  }
  // Room was made by closing the oldest idle connections.
  size_t closed = 0;
  for (int fd : idle) closed += ClosedByPeer(fd);
  EXPECT_GT(closed, 0u);
  EXPECT_TRUE(ClosedByPeer(idle.front())) << "the oldest idle connection is the first to go";
  for (int fd : idle) ::close(fd);
  ASSERT_OK(server.Stop());
  EXPECT_NE(server.StderrText().find("http: "), std::string::npos) << server.StderrText();
}

}  // namespace
}  // namespace annals
