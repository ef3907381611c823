#include "client/sse.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace annals::client {
namespace {

std::vector<SseEvent> ParseAll(const std::vector<std::string>& pieces, SseParser* p) {
  std::vector<SseEvent> out;
  for (const auto& piece : pieces)
    p->Feed(piece, [&](const SseEvent& e) {
      out.push_back(e);
      return true;
    });
  return out;
}

TEST(SseParserTest, EventsSplitAnywhereAreReassembled) {
  const std::string text = ": hello\nretry: 1000\n\nid: 7\ndata: {\"a\":1}\n\nid: 8\nevent: error\ndata: x\ndata: y\n\n";
  for (size_t cut = 0; cut <= text.size(); ++cut) {
    SseParser p;
    auto evs = ParseAll({text.substr(0, cut), text.substr(cut)}, &p);
    ASSERT_EQ(evs.size(), 2u) << cut;
    EXPECT_EQ(evs[0].id, "7");
    EXPECT_EQ(evs[0].data, "{\"a\":1}");
    EXPECT_EQ(evs[0].event, "");
    EXPECT_EQ(evs[1].id, "8");
    EXPECT_EQ(evs[1].event, "error");
    EXPECT_EQ(evs[1].data, "x\ny");
    EXPECT_EQ(p.last_event_id(), "8");
    EXPECT_EQ(p.comments(), 1u);
  }
}

TEST(SseParserTest, CrLfAndLoneCrEndLines) {
  SseParser p;
  auto evs = ParseAll({"id: 1\r\ndata: a\r\n\r\nid: 2\rdata: b\r\r", "data:c\n\n"}, &p);
  ASSERT_EQ(evs.size(), 3u);
  EXPECT_EQ(evs[0].data, "a");
  EXPECT_EQ(evs[1].data, "b");
  EXPECT_EQ(evs[2].data, "c");
  EXPECT_EQ(evs[2].id, "2");  // carried over
}

TEST(SseParserTest, CrLfSplitBetweenPiecesIsOneLineEnd) {
  SseParser p;
  auto evs = ParseAll({"data: a\r", "\n\r", "\n"}, &p);
  ASSERT_EQ(evs.size(), 1u);
  EXPECT_EQ(evs[0].data, "a");
}

TEST(SseParserTest, MalformedLinesAreIgnoredNotFatal) {
  SseParser p;
  auto evs = ParseAll({"bogus\nid\n:\ndata\n\n\n\nevent: x\n\ndata: after\n\n", std::string("id: a\0b\ndata: z\n\n", sizeof("id: a\0b\ndata: z\n\n") - 1)}, &p);
  ASSERT_EQ(evs.size(), 3u);
  EXPECT_EQ(evs[0].data, "");  // "data" without colon: empty value
  EXPECT_EQ(evs[1].data, "after");
  EXPECT_EQ(evs[1].event, "");  // the event name without data was dropped
  EXPECT_EQ(evs[2].id, "");     // an id containing NUL is ignored
  EXPECT_FALSE(p.error());
}

TEST(SseParserTest, AnEndlessLineIsAnError) {
  SseParser p;
  std::string big(1 << 20, 'x');
  bool ok = true;
  for (size_t i = 0; ok && i < SseParser::kMaxLine / big.size() + 2; ++i)
    ok = p.Feed(big, [](const SseEvent&) { return true; });
  EXPECT_FALSE(ok);
  EXPECT_TRUE(p.error());
  EXPECT_FALSE(p.Feed("\n\n", [](const SseEvent&) { return true; }));
}

TEST(SseParserTest, StopsWhenTheCallbackSaysSo) {
  SseParser p;
  int n = 0;
  EXPECT_FALSE(p.Feed("data: 1\n\ndata: 2\n\n", [&](const SseEvent&) { return ++n < 1; }));
  EXPECT_EQ(n, 1);
}

}  // namespace
}  // namespace annals::client
