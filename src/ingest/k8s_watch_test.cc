#include "ingest/k8s_watch.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "ingest/classify.h"
#include "ingest/json_lines.h"
#include "ingest/k8s_audit.h"
#include "json/json_scan.h"

namespace annals::ingest {
namespace {

std::string Corpus(const std::string& rel) {
  std::ifstream in(std::string(ANNALS_CORPUS_DIR) + "/k8s-objects/" + rel);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(WatchFrame, KubeclientRecordedStreamParses) {
  LineSplitter s(1 << 20);
  ASSERT_TRUE(s.Feed(Corpus("kubeclient/watch_stream.json")));
  auto lines = s.Lines();
  ASSERT_EQ(lines.size(), 3u);
  const char* types[] = {"ADDED", "MODIFIED", "DELETED"};
  const char* rvs[] = {"1389", "1390", "1398"};
  for (size_t i = 0; i < 3; ++i) {
    auto f = ParseWatchFrame(lines[i]);
    ASSERT_TRUE(f.ok()) << f.status().message();
    EXPECT_EQ(WatchEventTypeName(f->type), types[i]);
    EXPECT_EQ(f->head.uid, "e75f2c07-b047-11e4-89e4-525400c903c1");
    EXPECT_EQ(f->head.resource_version, rvs[i]);
    EXPECT_EQ(f->head.kind, "Pod");
    // The object's bytes exactly as sent.
    EXPECT_TRUE(f->object.starts_with(R"({"kind":"Pod","apiVersion":"v1",)"));
    EXPECT_TRUE(f->object.ends_with(R"("host":"127.0.0.1"}})") || f->object.ends_with(R"("phase":"Pending"}})"));
    EXPECT_EQ(lines[i].substr(lines[i].size() - f->object.size() - 1, f->object.size()), f->object);
  }
}

// The object's bytes are found from the frame's end when "object" is its
// last member; whatever the member order, spacing or escaping, they must be
// what a scan from the start finds. A duplicated "object" is refused.
TEST(WatchFrame, ObjectBytesAreTheSameFromEitherEnd) {
  const std::string pod = R"({"kind":"Pod","apiVersion":"v1","metadata":{"name":"a}","uid":"u1","resourceVersion":"7"}})";
  const std::string frames[] = {
      R"({"type":"ADDED","object":)" + pod + "}",
      R"({"type":"ADDED","object":)" + pod + " }\r\n",
      R"( { "type" : "ADDED" , "object" : )" + pod + "\n}",
      R"({"object":)" + pod + R"(,"type":"ADDED"})",
      R"({"type":"ADDED","obj\u0065ct":)" + pod + "}",
  };
  EXPECT_FALSE(ParseWatchFrame(
                   R"({"type":"ADDED","object":{"kind":"Pod","apiVersion":"v1","metadata":{"name":"dup","uid":"u0","resourceVersion":"6"}},"object":)" +
                   pod + "}")
                   .ok());
  for (const std::string& frame : frames) {
    SCOPED_TRACE(frame);
    auto f = ParseWatchFrame(frame);
    ASSERT_TRUE(f.ok()) << f.status().message();
    EXPECT_EQ(f->object, json_util::RawMemberValue(frame, "object"));
    EXPECT_EQ(f->head.uid, f->object == pod ? "u1" : "u0");
  }
}

TEST(WatchFrame, ErrorFrameCarriesTheStatus) {
  std::string status = Corpus("kubeclient/pods_410.json");
  auto f = ParseWatchFrame(R"({"type":"ERROR","object":)" + status + "}");
  ASSERT_TRUE(f.ok()) << f.status().message();
  EXPECT_EQ(f->type, WatchEventType::kError);
  EXPECT_EQ(f->error_code, 410);
  EXPECT_EQ(f->error_reason, "Expired");
}

TEST(WatchFrame, BookmarkNeedsAResourceVersion) {
  auto ok = ParseWatchFrame(R"({"type":"BOOKMARK","object":{"kind":"Pod","apiVersion":"v1","metadata":{"resourceVersion":"12746"}}})");
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->head.resource_version, "12746");
  EXPECT_FALSE(ParseWatchFrame(R"({"type":"BOOKMARK","object":{"metadata":{}}})").ok());
}

TEST(WatchFrame, MalformedFramesAreRejectedWithAReason) {
  const char* bad[] = {
      "",
      "{",
      "[]",
      R"("ADDED")",
      R"({"object":{"metadata":{"uid":"u","resourceVersion":"1"}}})",
      R"({"type":"ADDED"})",
      R"({"type":"ADDED","object":[]})",
      R"({"type":"ADDED","object":{"kind":"Pod"}})",
      R"({"type":"ADDED","object":{"metadata":{"resourceVersion":"1"}}})",
      R"({"type":"ADDED","object":{"metadata":{"uid":"u"}}})",
      R"({"type":"ADDED","object":{"metadata":{"uid":"u","resourceVersion":"1"}})",
      R"({"type":"UPSERTED","object":{"metadata":{"uid":"u","resourceVersion":"1"}}})",
      R"({"type":7,"object":{"metadata":{"uid":"u","resourceVersion":"1"}}})",
      "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"uid\":\"\xff\",\"resourceVersion\":\"1\"}}}",
      // Repeated keys: which one counts differs between parsers.
      R"({"type":"ADDED","type":"DELETED","object":{"metadata":{"uid":"u","resourceVersion":"1"}}})",
      R"({"type":"ADDED","object":{"metadata":{"uid":"u","uid":"v","resourceVersion":"1"}}})",
  };
  for (const char* b : bad) {
    auto f = ParseWatchFrame(b);
    EXPECT_FALSE(f.ok()) << b;
    if (!f.ok()) {
      EXPECT_NE(f.status().message().find("watch frame"), std::string::npos) << b;
    }
  }
  std::string deep = R"({"type":"ADDED","object":{"metadata":{"uid":"u","resourceVersion":"1"},"x":)";
  deep += std::string(200, '[') + std::string(200, ']') + "}}";
  EXPECT_FALSE(ParseWatchFrame(deep).ok());
}

TEST(JsonLines, ObjectsWithARepeatedKeyAreRefusedOnEveryLinePath) {
  const std::string dup = R"({"auditID":"a","stage":"ResponseComplete","verb":"create","verb":"delete"})";
  Status v = ValidateJsonObject(dup, "line 1");
  EXPECT_FALSE(v.ok());
  EXPECT_NE(v.message().find("more than once"), std::string::npos) << v.message();
  auto c = ClassifyJsonLine(dup, "tcp", "2024-01-01T00:00:00Z", "line 1");
  EXPECT_FALSE(c.ok());
  auto a = ParseAuditEvent(dup, "line 1");
  EXPECT_FALSE(a.ok());
  auto r = ParseWatchRecordLine(
      R"({"type":"ADDED","object":{"metadata":{"uid":"u","resourceVersion":"1","resourceVersion":"2"}}})", "record");
  EXPECT_FALSE(r.ok());
  EXPECT_FALSE(ReadObjectHead(R"({"metadata":{"uid":"u","uid":"v","resourceVersion":"1"}})").ok());
  // Without the repetition, each is accepted.
  EXPECT_TRUE(ValidateJsonObject(R"({"verb":"create","user":{"verb":1}})", "line 1").ok());
}

TEST(LineSplitter, HoldsAnUnfinishedLineAndRefusesEndlessOnes) {
  LineSplitter s(16);
  ASSERT_TRUE(s.Feed("{\"a\":1}\r\n\n{\"b\""));
  auto lines = s.Lines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0], "{\"a\":1}");
  s.Consume();
  EXPECT_EQ(s.pending_bytes(), 4u);
  ASSERT_TRUE(s.Feed(":2}\n"));
  ASSERT_EQ(s.Lines().size(), 1u);
  EXPECT_EQ(s.Lines()[0], "{\"b\":2}");
  s.Consume();
  EXPECT_FALSE(s.Feed(std::string(17, 'x')));
}

TEST(LineSplitter, TakeLinesHandsOverTheCompleteLinesAtTheirOffsets) {
  LineSplitter s(1 << 20);
  const std::string first = "{\"a\":1}\n" + std::string(100, ' ') + "{\"b\":2}\n{\"c\"";
  ASSERT_TRUE(s.Feed(first));
  const char* base = s.data();
  auto lines = s.Lines();
  ASSERT_EQ(lines.size(), 2u);
  std::string spare;
  spare.reserve(4096);
  const char* spare_bytes = spare.data();
  std::string taken = s.TakeLines(std::move(spare));
  EXPECT_EQ(taken, first.substr(0, first.rfind('\n') + 1));
  EXPECT_EQ(std::string_view(taken.data() + (lines[1].data() - base), lines[1].size()), "{\"b\":2}");
  EXPECT_EQ(s.pending_bytes(), 4u);  // the unfinished line, now in the spare buffer
  EXPECT_EQ(s.data(), spare_bytes);
  ASSERT_TRUE(s.Feed(":3}\n"));
  ASSERT_EQ(s.Lines().size(), 1u);
  EXPECT_EQ(s.Lines()[0], "{\"c\":3}");
  // Nothing complete: nothing taken, the unfinished line stays.
  s.Consume();
  ASSERT_TRUE(s.Feed("{\"d\""));
  EXPECT_EQ(s.TakeLines(std::string()), "");
  EXPECT_EQ(s.pending_bytes(), 4u);
}

TEST(WatchRecord, LineRoundTripsAndKeysNameTheVersion) {
  std::string obj = R"({"kind":"Pod","metadata":{"name":"a","namespace":"ns","uid":"u1","resourceVersion":"42"}})";
  WatchRecord r;
  r.type = WatchRecord::kModified;
  r.version = "v1";
  r.resource = "pods";
  r.kind = "Pod";
  r.object = obj;
  r.head = *ReadObjectHead(obj);
  EXPECT_EQ(WatchKey(r), "watch:/pods:u1:42");
  std::string line = WatchRecordLine(r);
  auto back = ParseWatchRecordLine(line, "line 1");
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(back->object, obj);
  EXPECT_EQ(WatchMeta(*back, "k8s-watch", "2024-05-01T12:00:00Z"),
            WatchMeta(r, "k8s-watch", "2024-05-01T12:00:00Z"));
  r.type = WatchRecord::kDeleted;
  r.observed = "relist";
  EXPECT_EQ(WatchKey(r), "watch:/pods:u1:42:gone");
  r.group = "apps";
  r.resource = "deployments";
  r.type = WatchRecord::kRelist;
  r.observed.clear();
  EXPECT_EQ(WatchKey(r), "watch-relist:apps/deployments:42");
}

TEST(WatchRecord, BadLinesAreRejected) {
  const char* bad[] = {
      R"({"type":"ADDED","version":"v1","resource":"pods"})",
      R"({"type":"ADDED","version":"v1","object":{"metadata":{"uid":"u","resourceVersion":"1"}}})",
      R"({"type":"ADDED","version":"v1","resource":"po:ds","object":{"metadata":{"uid":"u","resourceVersion":"1"}}})",
      R"({"type":"ADDED","version":"v1","resource":"pods","observed":"guess","object":{"metadata":{"uid":"u","resourceVersion":"1"}}})",
      R"({"type":"BOOKMARK","version":"v1","resource":"pods","object":{"metadata":{"uid":"u","resourceVersion":"1"}}})",
      R"({"type":"RELIST","version":"v1","resource":"pods","object":{}})",
      R"({"type":"DELETED","version":"v1","resource":"pods","object":{"metadata":{"uid":"u"}}})",
  };
  for (const char* b : bad) EXPECT_FALSE(ParseWatchRecordLine(b, "line 1").ok()) << b;
}

}  // namespace
}  // namespace annals::ingest
