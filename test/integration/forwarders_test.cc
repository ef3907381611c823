// Forwarding end to end with real receivers: the real `annals` binary
// forwards to the real rsyslogd (Debian's rsyslog, started here as a
// foreground process on a loopback port, writing to a file). Every entry
// arrives once, parsed (RFC 5424 with octet-counted framing), with its
// ledger index and a checkpoint size that covers it — also across restarts
// of annals and of rsyslogd.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nats/nats.h>

#include <set>

#include "client/http_client.h"
#include "testutil/server_process.h"
#include "testutil/test_macros.h"

namespace annals {
namespace {

using nlohmann::json;
using testutil::ServeOptions;
using testutil::ServerProcess;
using testutil::TempDir;

std::vector<json> CorpusEvents(size_t n, const std::string& tag) {
  std::ifstream in(testutil::CorpusDir() + "/k8s-audit/audit2rbac-demo.jsonl");
  std::vector<json> base;
  for (std::string l; std::getline(in, l);)
    if (!l.empty()) base.push_back(json::parse(l));
  std::vector<json> out;
  for (size_t i = 0; i < n; ++i) {
    json j = base[i % base.size()];
    j["auditID"] = j["auditID"].get<std::string>() + "-" + tag + std::to_string(i);
    out.push_back(j);
  }
  return out;
}

Status Post(const std::string& url, const std::vector<json>& evs) {
  ASSIGN_OR_RETURN(auto http, client::HttpClient::Create(url));
  for (size_t i = 0; i < evs.size(); i += 50) {
    json list{{"kind", "EventList"}, {"apiVersion", "audit.k8s.io/v1"}, {"items", json::array()}};
    for (size_t k = i; k < std::min(evs.size(), i + 50); ++k) list["items"].push_back(evs[k]);
    ASSIGN_OR_RETURN(auto r, http->Post("/v1/ingest/k8s-audit", list.dump()));
    if (r.status != 200) return InternalError("ingest: " + r.body);
  }
  return OkStatus();
}

bool PortAccepts(uint16_t port);

// A receiver started as a child process (argv, stdout and stderr to a
// file), ready once its port accepts connections; SIGTERM on Stop.
class Receiver {
 public:
  Receiver(std::vector<std::string> argv, std::string log, uint16_t port)
      : argv_(std::move(argv)), log_(std::move(log)), port_(port) {}
  ~Receiver() { Stop(); }
  void Start() {
    pid_ = ::fork();
    if (pid_ == 0) {
      int fd = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
      if (fd >= 0) {
        ::dup2(fd, 1);
        ::dup2(fd, 2);
      }
      std::vector<char*> a;
      for (auto& s : argv_) a.push_back(s.data());
      a.push_back(nullptr);
      ::execvp(a[0], a.data());
      ::_exit(127);
    }
    for (int i = 0; i < 200 && !PortAccepts(port_); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    ASSERT_TRUE(PortAccepts(port_)) << argv_[0] << " did not listen on " << port_;
  }
  void Stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    int st;
    ::waitpid(pid_, &st, 0);
    pid_ = -1;
  }

 private:
  std::vector<std::string> argv_;
  std::string log_;
  uint16_t port_;
  pid_t pid_ = -1;
};

// rsyslogd -n (foreground) with imtcp on 127.0.0.1:port, writing
// "MSGID|STRUCTURED-DATA|MSG" lines to a file.
class Rsyslog {
 public:
  // tls: serve TLS (rsyslog's ossl driver) with cert.pem/key.pem in dir.
  Rsyslog(const TempDir& dir, uint16_t port, bool tls = false) : dir_(dir), port_(port) {
    ::mkdir(dir_.Sub("rsyslog-work").c_str(), 0700);
    std::ofstream conf(dir_.Sub("rsyslog.conf"));
    conf << "global(workDirectory=\"" << dir_.Sub("rsyslog-work") << "\" maxMessageSize=\"4m\"";
    if (tls)
      conf << " DefaultNetstreamDriver=\"ossl\" DefaultNetstreamDriverCAFile=\"" << dir_.Sub("cert.pem")
           << "\" DefaultNetstreamDriverCertFile=\"" << dir_.Sub("cert.pem")
           << "\" DefaultNetstreamDriverKeyFile=\"" << dir_.Sub("key.pem") << "\"";
    conf << ")\n"
         << (tls ? "module(load=\"imtcp\" StreamDriver.Name=\"ossl\" StreamDriver.Mode=\"1\" "
                   "StreamDriver.AuthMode=\"anon\")\n"
                 : "module(load=\"imtcp\")\n")
         << "template(name=\"annals\" type=\"string\" string=\"%msgid%|%structured-data%|%msg%\\n\")\n"
         << "ruleset(name=\"annals\") { action(type=\"omfile\" file=\"" << out() << "\" template=\"annals\") }\n"
         << "input(type=\"imtcp\" port=\"" << port_ << "\" address=\"127.0.0.1\" ruleset=\"annals\")\n";
  }
  std::string out() const { return dir_.Sub("syslog.out"); }
  void Start() { proc_.Start(); }
  void Stop() { proc_.Stop(); }

 private:
  const TempDir& dir_;
  uint16_t port_;
  Receiver proc_{{"rsyslogd", "-n", "-f", dir_.Sub("rsyslog.conf"), "-i", dir_.Sub("rsyslog.pid")},
                 dir_.Sub("rsyslog.stderr"), port_};
};

bool PortAccepts(uint16_t port) {
  int fd = testutil::ConnectLoopback(port);
  if (fd >= 0) ::close(fd);
  return fd >= 0;
}

// nats-server -js with its store in a temporary directory.
class NatsServer {
 public:
  NatsServer(const TempDir& dir, uint16_t port)
      : port_(port),
        proc_({"nats-server", "-js", "-sd", dir.Sub("nats-store"), "-a", "127.0.0.1", "-p", std::to_string(port)},
              dir.Sub("nats.log"), port) {}
  std::string url() const { return "nats://127.0.0.1:" + std::to_string(port_); }
  void Start() { proc_.Start(); }
  void Stop() { proc_.Stop(); }

 private:
  uint16_t port_;
  Receiver proc_;
};

// Every message in the stream, read with a new durable pull consumer:
// Nats-Msg-Id -> count, and the stream's message count.
struct NatsView {
  std::map<uint64_t, int> ids;
  std::map<uint64_t, std::string> subjects;
  std::map<uint64_t, json> data;
  uint64_t stream_msgs = 0;
};

NatsView ReadNats(const std::string& url, const std::string& stream, size_t want, const std::string& durable) {
  NatsView v;
  natsConnection* nc = nullptr;
  jsCtx* js = nullptr;
  natsSubscription* sub = nullptr;
  jsErrCode jerr;
  EXPECT_EQ(natsConnection_ConnectTo(&nc, url.c_str()), NATS_OK);
  if (!nc) return v;
  EXPECT_EQ(natsConnection_JetStream(&js, nc, nullptr), NATS_OK);
  for (int i = 0; i < 300; ++i) {  // annals creates the stream on its first publish
    jsStreamInfo* si = nullptr;
    if (js_GetStreamInfo(&si, js, stream.c_str(), nullptr, &jerr) == NATS_OK) {
      v.stream_msgs = si->State.Msgs;
      jsStreamInfo_Destroy(si);
      if (v.stream_msgs >= want) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(js_PullSubscribe(&sub, js, "annals.>", durable.c_str(), nullptr, nullptr, &jerr), NATS_OK);
  size_t got = 0;
  for (int tries = 0; sub && got < v.stream_msgs && tries < 100; ++tries) {
    natsMsgList list{};
    natsStatus s = natsSubscription_Fetch(&list, sub, 500, 2000, &jerr);
    if (s != NATS_OK) continue;
    for (int i = 0; i < list.Count; ++i) {
      natsMsg* m = list.Msgs[i];
      const char* id = nullptr;
      EXPECT_EQ(natsMsgHeader_Get(m, "Nats-Msg-Id", &id), NATS_OK);
      uint64_t idx = id ? std::stoull(id) : uint64_t(-1);
      ++v.ids[idx];
      v.subjects[idx] = natsMsg_GetSubject(m);
      v.data[idx] = json::parse(std::string(natsMsg_GetData(m), natsMsg_GetDataLength(m)), nullptr, false);
      natsMsg_Ack(m, nullptr);
      ++got;
    }
    natsMsgList_Destroy(&list);
  }
  if (sub) natsSubscription_Destroy(sub);
  jsCtx_Destroy(js);
  natsConnection_Destroy(nc);
  return v;
}

void CheckNatsOnce(const NatsView& v, const std::vector<json>& evs) {
  EXPECT_EQ(v.stream_msgs, evs.size());
  ASSERT_EQ(v.ids.size(), evs.size());
  uint64_t i = 0;
  for (const auto& [idx, n] : v.ids) {
    ASSERT_EQ(idx, i) << "gap";
    EXPECT_EQ(n, 1) << "index " << idx << " arrived " << n << " times";
    EXPECT_EQ(v.data.at(idx)["index"], idx);
    EXPECT_EQ(v.data.at(idx)["event"], evs[idx]);
    ++i;
  }
}

struct Line {
  uint64_t index, tree_size;
  json msg;
};

// The lines rsyslogd wrote so far, parsed.
std::vector<Line> ReadLines(const std::string& path) {
  std::vector<Line> out;
  std::ifstream in(path);
  for (std::string l; std::getline(in, l);) {
    size_t a = l.find('|'), b = l.find("]|");
    EXPECT_NE(a, std::string::npos) << l;
    EXPECT_NE(b, std::string::npos) << l;
    if (a == std::string::npos || b == std::string::npos) continue;
    EXPECT_EQ(l.substr(0, a), "k8s.audit");
    std::string sd = l.substr(a + 1, b + 1 - a - 1);
    EXPECT_TRUE(sd.starts_with("[annals@32473 index=\"")) << sd;
    auto field = [&](const std::string& k) {
      size_t p = sd.find(k + "=\"");
      return p == std::string::npos ? uint64_t(-1) : std::stoull(sd.substr(p + k.size() + 2));
    };
    Line x{field("index"), field("tree_size"), json::parse(l.substr(b + 2), nullptr, false)};
    EXPECT_FALSE(x.msg.is_discarded()) << l.substr(0, 300);
    out.push_back(std::move(x));
  }
  return out;
}

std::vector<Line> WaitForLines(const std::string& path, size_t n) {
  std::vector<Line> lines;
  for (int i = 0; i < 300; ++i) {
    lines = ReadLines(path);
    if (lines.size() >= n) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return lines;
}

void CheckExactlyOnce(const std::vector<Line>& lines, const std::vector<json>& evs) {
  ASSERT_EQ(lines.size(), evs.size());
  for (size_t i = 0; i < lines.size(); ++i) {
    ASSERT_EQ(lines[i].index, i);
    EXPECT_GT(lines[i].tree_size, i);  // the checkpoint named covers the entry
    EXPECT_EQ(lines[i].msg["index"], i);
    EXPECT_EQ(lines[i].msg["event"], evs[i]);
  }
}

TEST(ForwardersTest, SyslogGetsEveryEntryOnceAcrossRestartsOfBothSides) {
  TempDir dir;
  const uint16_t port = testutil::FreePort();
  Rsyslog rsyslog(dir, port);
  rsyslog.Start();
  ServeOptions o;
  o.data_dir = dir.Sub("data");
  o.checkpoint_interval_ms = 100;
  o.extra_args = {"--forward", "syslog+tcp://127.0.0.1:" + std::to_string(port)};
  ServerProcess server(o);
  ASSERT_OK(server.Start());
  auto evs = CorpusEvents(300, "a");
  ASSERT_OK(Post(server.url(), evs));
  CheckExactlyOnce(WaitForLines(rsyslog.out(), evs.size()), evs);

  // annals restarts: it goes on from its saved position.
  ASSERT_OK(server.Restart());
  auto more = CorpusEvents(200, "b");
  ASSERT_OK(Post(server.url(), more));
  evs.insert(evs.end(), more.begin(), more.end());
  CheckExactlyOnce(WaitForLines(rsyslog.out(), evs.size()), evs);

  // rsyslogd is down while events come in: they arrive once it is back.
  rsyslog.Stop();
  more = CorpusEvents(200, "c");
  ASSERT_OK(Post(server.url(), more));
  evs.insert(evs.end(), more.begin(), more.end());
  std::this_thread::sleep_for(std::chrono::milliseconds(700));
  rsyslog.Start();
  CheckExactlyOnce(WaitForLines(rsyslog.out(), evs.size()), evs);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_EQ(ReadLines(rsyslog.out()).size(), evs.size());  // nothing twice

  auto http = client::HttpClient::Create(server.url());
  auto m = (*http)->Get("/metrics");
  ASSERT_OK(m);
  EXPECT_NE(m->body.find("annals_consumers{kind=\"syslog\"} 1"), std::string::npos);
  EXPECT_NE(m->body.find("annals_forward_sent_total{kind=\"syslog\"}"), std::string::npos);
}

TEST(ForwardersTest, NatsJetStreamGetsEveryChangeOnceAcrossRestartsOfBothSides) {
  TempDir dir;
  NatsServer nats(dir, testutil::FreePort());
  nats.Start();
  ServeOptions o;
  o.data_dir = dir.Sub("data");
  o.checkpoint_interval_ms = 100;
  o.extra_args = {"--nats", nats.url(), "--origin", "test.example/log"};
  ServerProcess server(o);
  ASSERT_OK(server.Start());
  const std::string stream = "ANNALS_test_example_log";
  auto evs = CorpusEvents(300, "n");
  ASSERT_OK(Post(server.url(), evs));
  NatsView v = ReadNats(nats.url(), stream, evs.size(), "check1");
  CheckNatsOnce(v, evs);
  // Subject: annals.<log>.<resource>.<namespace>.<name>.
  const json& e0 = evs[0];
  EXPECT_EQ(v.subjects[0], "annals.test_example_log." + e0["objectRef"].value("resource", "") + "." +
                               (e0["objectRef"].value("namespace", "").empty() ? "_" : e0["objectRef"].value("namespace", "")) +
                               "." + (e0["objectRef"].value("name", "").empty() ? "_" : e0["objectRef"].value("name", "")));

  // NATS goes down while events come in; they are published once it is back.
  nats.Stop();
  auto more = CorpusEvents(200, "m");
  ASSERT_OK(Post(server.url(), more));
  evs.insert(evs.end(), more.begin(), more.end());
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  nats.Start();
  CheckNatsOnce(ReadNats(nats.url(), stream, evs.size(), "check2"), evs);

  // annals is killed and restarted: it publishes again from its saved
  // position; what it sends twice JetStream drops by Nats-Msg-Id.
  more = CorpusEvents(200, "k");
  ASSERT_OK(Post(server.url(), more));
  evs.insert(evs.end(), more.begin(), more.end());
  ASSERT_OK(server.Restart(/*kill=*/true));
  more = CorpusEvents(100, "r");
  ASSERT_OK(Post(server.url(), more));
  evs.insert(evs.end(), more.begin(), more.end());
  CheckNatsOnce(ReadNats(nats.url(), stream, evs.size(), "check3"), evs);
}

// A self-signed certificate for localhost (and 127.0.0.1) in dir.
void MakeCert(const TempDir& dir, const std::string& name) {
  ASSERT_TRUE(testutil::MakeSelfSignedCert(dir.Sub(name), dir.Sub("key.pem")));
}

TEST(ForwardersTest, SyslogOverTlsVerifiesTheReceiverAndDeliversEverything) {
  TempDir dir;
  MakeCert(dir, "cert.pem");
  const uint16_t port = testutil::FreePort();
  Rsyslog rsyslog(dir, port, /*tls=*/true);
  rsyslog.Start();
  // First with trust anchors that do not include the receiver: nothing goes out.
  TempDir other;
  MakeCert(other, "cert.pem");
  ServeOptions o;
  o.data_dir = dir.Sub("data");
  o.checkpoint_interval_ms = 100;
  o.extra_args = {"--forward", "syslog+tls://localhost:" + std::to_string(port), "--forward-ca",
                  other.Sub("cert.pem")};
  auto evs = CorpusEvents(100, "t");
  {
    ServerProcess server(o);
    ASSERT_OK(server.Start());
    ASSERT_OK(Post(server.url(), evs));
    std::this_thread::sleep_for(std::chrono::milliseconds(1000));
    EXPECT_TRUE(ReadLines(rsyslog.out()).empty());
    EXPECT_NE(server.StderrText().find("certificate verify failed"), std::string::npos) << server.StderrText();
    ASSERT_OK(server.Stop());
  }
  // With the right anchor, everything arrives, from index 0.
  o.extra_args.back() = dir.Sub("cert.pem");
  ServerProcess server(o);
  ASSERT_OK(server.Start());
  CheckExactlyOnce(WaitForLines(rsyslog.out(), evs.size()), evs);
}

TEST(ForwardersTest, BadForwardUrlIsRefusedAtStart) {
  TempDir dir;
  for (const char* bad : {"syslog+udp://127.0.0.1:514", "syslog+tcp://127.0.0.1", "syslog+tcp://h:x"}) {
    auto r = testutil::RunAnnals({"serve", "--data", dir.Sub("d"), "--listen", "127.0.0.1:0", "--forward", bad},
                                 "", std::chrono::seconds(30));
    EXPECT_EQ(r.exit_code, 1) << bad;
    EXPECT_NE(r.err.find("syslog"), std::string::npos) << r.err;
  }
}

}  // namespace
}  // namespace annals
