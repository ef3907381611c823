#include <gtest/gtest.h>

#include "common/file_util.h"
#include "forward/forward_cursor.h"
#include "forward/nats_sink.h"
#include "forward/syslog_sink.h"

namespace annals::forward {
namespace {

stream::Change MakeChange(uint64_t index, std::string data) {
  stream::Change c;
  c.index = index;
  c.type = "k8s.audit";
  c.resource = "pods";
  c.namespace_ = "kube-system";
  c.name = "coredns-5d78c9869d-abc.x";
  c.time = 1700000000123456;
  c.frame = "id: " + std::to_string(index) + "\ndata: ";
  c.data_begin = c.frame.size();
  c.frame += data;
  c.data_size = data.size();
  c.frame += "\n\n";
  return c;
}

TEST(ForwardCursorTest, RoundTripsAndRejectsGarbage) {
  EXPECT_EQ(*ParseCursor(EncodeCursor(42, "syslog+tcp://h:1")), 42u);
  EXPECT_EQ(EncodeCursor(7, "a b\nc"), "v1 next=7 target=a_b_c\n");
  for (const char* bad : {"", "v1 next=7\n", "v1 next=x target=a\n", "v2 next=1 target=a\n",
                          "v1 next=1 target=a", "v1 next=99999999999999999999999 target=a\n"})
    EXPECT_FALSE(ParseCursor(bad).ok()) << bad;
}

TEST(ForwardCursorTest, MissingFileIsZeroAndACorruptFileIsAnError) {
  char tmpl[] = "/tmp/annals-cursor-XXXXXX";
  std::string dir = ::mkdtemp(tmpl);
  ForwardCursor c(dir + "/forward/x.pos", "t");
  EXPECT_EQ(*c.Load(), 0u);
  ASSERT_TRUE(c.Save(1234).ok());
  EXPECT_EQ(*c.Load(), 1234u);
  ASSERT_TRUE(WriteFileAtomic(dir + "/forward/x.pos", "garbage").ok());
  EXPECT_EQ(c.Load().status().code(), StatusCode::kDataLoss);
}

TEST(SyslogFormatTest, Rfc5424WithOctetCountingAndStructuredData) {
  auto c = MakeChange(5, R"({"index":5})");
  std::string m = FormatSyslog(c, 9, "node 1", "annals.local/lo\"g]", 77);
  const std::string body =
      "<110>1 2023-11-14T22:13:20.123456Z node_1 annals 77 k8s.audit [annals@32473 index=\"5\" "
      "tree_size=\"9\" origin=\"annals.local/lo\\\"g\\]\"] {\"index\":5}";
  EXPECT_EQ(m, std::to_string(body.size()) + " " + body);
}

TEST(SyslogUrlTest, ParsesTcpAndTlsAndRejectsTheRest) {
  auto t = ParseSyslogUrl("syslog+tls://logs.example:6514");
  ASSERT_TRUE(t.ok());
  EXPECT_TRUE(t->tls);
  EXPECT_EQ(t->host, "logs.example");
  EXPECT_EQ(t->port, "6514");
  EXPECT_EQ(ParseSyslogUrl("syslog+tcp://[::1]:514")->host, "::1");
  for (const char* bad : {"syslog://h:1", "syslog+udp://h:1", "syslog+tcp://h", "syslog+tcp://:1",
                          "syslog+tcp://h:", "syslog+tcp://h:1x"})
    EXPECT_FALSE(ParseSyslogUrl(bad).ok()) << bad;
}

TEST(NatsSubjectTest, TokensAreSafe) {
  auto c = MakeChange(1, "{}");
  EXPECT_EQ(NatsSubject(NatsLogName("annals.local/log"), c),
            "annals.annals_local_log.pods.kube-system.coredns-5d78c9869d-abc_x");
  c.namespace_.clear();
  c.name = "a b*>";
  c.resource.clear();
  c.type = "com.example.thing";
  EXPECT_EQ(NatsSubject("l", c), "annals.l.com_example_thing._.a_b__");
}

}  // namespace
}  // namespace annals::forward
