// /v1/watch end to end: the real `annals` binary, real sockets, the real
// Kubernetes audit corpus (k8s-audit/audit2rbac-demo.jsonl and
// k8s-audit/falco/*.json). A subscriber receives exactly the ingested
// events in order; one that drops its connection resumes with
// Last-Event-ID with no gap and no duplicate; namespace and label-selector
// filters return exactly what this test computes from the raw files; a
// subscriber that stops reading is cut off with a reason while ingest goes
// on; `annals watch` resumes by itself across a server restart.
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "client/http_client.h"
#include "client/sse.h"
#include "client/table.h"
#include "testutil/server_process.h"
#include "testutil/test_macros.h"

namespace annals {
namespace {

using nlohmann::json;
using testutil::ServeOptions;
using testutil::ServerProcess;
using testutil::TempDir;

std::string Slurp(const std::string& path) {
  auto text = testutil::ReadFile(path);
  EXPECT_TRUE(text.ok()) << path;
  return text.ok() ? *text : "";
}

struct RawEvent {
  std::string bytes;
  json j;
};

// The audit events of the corpus in a fixed order, the first of each
// (auditID, stage) only, so each one posted is stored once, at the index
// equal to its position.
std::vector<RawEvent> LoadCorpus() {
  const std::string dir = testutil::CorpusDir() + "/k8s-audit";
  std::vector<RawEvent> out;
  std::set<std::pair<std::string, std::string>> seen;
  auto add = [&](const std::string& bytes) {
    json j = json::parse(bytes, nullptr, false);
    if (!j.is_object() || !j.contains("auditID") || !j.contains("stage")) return;
    if (!seen.insert({j["auditID"].get<std::string>(), j["stage"].get<std::string>()}).second) return;
    out.push_back({bytes, std::move(j)});
  };
  std::stringstream a2r(Slurp(dir + "/audit2rbac-demo.jsonl"));
  for (std::string l; std::getline(a2r, l);)
    if (!l.empty()) add(l);
  std::vector<std::string> files;
  for (const auto& f : std::filesystem::directory_iterator(dir + "/falco"))
    if (f.path().extension() == ".json") files.push_back(f.path().string());
  std::sort(files.begin(), files.end());
  for (const auto& f : files) {
    std::string text = Slurp(f);
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
    if (json::accept(text)) {
      add(text);
    } else {
      std::stringstream ss(text);
      for (std::string l; std::getline(ss, l);)
        if (!l.empty()) add(l);
    }
  }
  return out;
}

// n distinct events shaped like the corpus (auditID made unique).
std::vector<RawEvent> Copies(const std::vector<RawEvent>& corpus, size_t n, const std::string& tag) {
  std::vector<RawEvent> out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    json j = corpus[i % corpus.size()].j;
    j["auditID"] = j["auditID"].get<std::string>() + "-" + tag + std::to_string(i);
    out.push_back({j.dump(), j});
  }
  return out;
}

Status Post(client::HttpClient* http, const std::vector<RawEvent>& evs, size_t begin, size_t end) {
  std::string body = R"({"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[)";
  for (size_t i = begin; i < end; ++i) {
    if (i > begin) body += ",";
    body += evs[i].bytes;
  }
  body += "]}";
  ASSIGN_OR_RETURN(auto r, http->Post("/v1/ingest/k8s-audit", body));
  if (r.status != 200) return InternalError("ingest: " + std::to_string(r.status) + " " + r.body);
  return OkStatus();
}

Status PostAll(const std::string& url, const std::vector<RawEvent>& evs, size_t batch) {
  ASSIGN_OR_RETURN(auto http, client::HttpClient::Create(url));
  for (size_t i = 0; i < evs.size(); i += batch)
    RETURN_IF_ERROR(Post(http.get(), evs, i, std::min(evs.size(), i + batch)));
  return OkStatus();
}

struct Got {
  uint64_t id;
  json data;
};

// Reads url+path (with Last-Event-ID if last_id is set) until on_event
// returns false or the stream ends. Error events go to *errors.
Status Subscribe(const std::string& url, const std::string& path, const std::string& last_id,
                 const std::function<bool(const Got&)>& on_event,
                 std::vector<json>* errors = nullptr, uint64_t* comments = nullptr,
                 int receive_buffer = 0) {
  ASSIGN_OR_RETURN(auto http, client::HttpClient::Create(url));
  client::SseParser parser;
  std::vector<std::pair<std::string, std::string>> headers;
  if (!last_id.empty()) headers.emplace_back("Last-Event-ID", last_id);
  Status bad;
  Status s = http->GetStream(path, headers, [&](std::string_view data) {
    bool go = parser.Feed(data, [&](const client::SseEvent& ev) {
      json d = json::parse(ev.data, nullptr, false);
      if (d.is_discarded()) {
        bad = InternalError("data is not JSON: " + ev.data.substr(0, 200));
        return false;
      }
      if (ev.event == "error") {
        if (errors) errors->push_back(d);
        return true;
      }
      if (ev.event != "") {
        bad = InternalError("unexpected event type " + ev.event);
        return false;
      }
      Got g{std::stoull(ev.id), std::move(d)};
      if (g.data["index"].get<uint64_t>() != g.id) {
        bad = InternalError("id and index differ");
        return false;
      }
      return on_event(g);
    });
    if (comments) *comments = parser.comments();
    return go;
  }, receive_buffer);
  if (!bad.ok()) return bad;
  return s;
}

// The object of an event as annals describes it: the responseObject if it
// has metadata.uid and is not a Status, else the requestObject if it has
// metadata.uid; null if neither.
const json* ObjectOf(const json& e) {
  for (const char* k : {"responseObject", "requestObject"}) {
    if (!e.contains(k)) continue;
    const json& o = e[k];
    if (!o.is_object() || !o.contains("metadata") || !o["metadata"].is_object() ||
        !o["metadata"].contains("uid") || o.value("kind", "") == "Status")
      continue;
    return &o;
  }
  return nullptr;
}

std::string NamespaceOf(const json& e) {
  std::string ns = e.contains("objectRef") ? e["objectRef"].value("namespace", "") : "";
  if (ns.empty())
    if (const json* o = ObjectOf(e)) ns = o->at("metadata").value("namespace", "");
  return ns;
}

json LabelsOf(const json& e) {
  const json* o = ObjectOf(e);
  if (!o) return json();
  return o->at("metadata").value("labels", json::object());
}

class WatchTest : public ::testing::Test {
 protected:
  void StartServer(std::vector<std::string> extra = {}, std::string listen = "127.0.0.1:0") {
    ServeOptions o;
    o.redaction_policy = "none";  // byte-for-byte checks
    o.data_dir = dir_.Sub("data");
    o.checkpoint_interval_ms = 100;
    o.extra_args = std::move(extra);
    o.listen = std::move(listen);
    server_ = std::make_unique<ServerProcess>(o);
    ASSERT_OK(server_->Start());
  }
  std::string Metrics() {
    auto http = client::HttpClient::Create(server_->url());
    auto r = (*http)->Get("/metrics");
    return r.ok() ? r->body : "";
  }

  TempDir dir_;
  std::unique_ptr<ServerProcess> server_;
};

TEST_F(WatchTest, SubscriberReceivesExactlyTheCorpusInOrder) {
  const auto corpus = LoadCorpus();
  ASSERT_GT(corpus.size(), 60u);
  StartServer();
  std::vector<Got> got;
  std::thread sub([&] {
    EXPECT_OK(Subscribe(server_->url(), "/v1/watch?from=0", "", [&](const Got& g) {
      got.push_back(g);
      return got.size() < corpus.size();
    }));
  });
  ASSERT_OK(PostAll(server_->url(), corpus, 7));
  sub.join();
  ASSERT_EQ(got.size(), corpus.size());
  size_t with_object = 0, with_changes = 0, request_kinds = 0;
  for (size_t i = 0; i < corpus.size(); ++i) {
    const json& d = got[i].data;
    ASSERT_EQ(got[i].id, i);
    const json& raw = corpus[i].j;
    EXPECT_EQ(d["event"], raw) << i;  // the decoded event, as posted
    EXPECT_EQ(d["type"], "k8s.audit");
    const json& c = d["change"];
    EXPECT_EQ(c["verb"], raw.value("verb", "")) << i;
    EXPECT_EQ(c["user"], raw["user"].value("username", "")) << i;
    EXPECT_EQ(c["stage"], raw.value("stage", "")) << i;
    EXPECT_EQ(c["namespace"], NamespaceOf(raw)) << i;
    if (const json* o = ObjectOf(raw)) {
      ++with_object;
      EXPECT_EQ(c["uid"], o->at("metadata")["uid"]) << i;
      EXPECT_EQ(c["kind"], o->value("kind", "")) << i;
      EXPECT_EQ(c["labels"], LabelsOf(raw)) << i;
    } else {
      EXPECT_EQ(c["uid"], "") << i;
      // A create or update of a resource sent without an answer holding
      // the object (Request level) still names the kind it sent; a
      // subresource's body (DeleteOptions, Eviction...) or a patch does not.
      const std::string verb = raw.value("verb", "");
      const bool sent = (verb == "create" || verb == "update") && !raw["objectRef"].contains("subresource") &&
                        raw.contains("requestObject") && raw["requestObject"].is_object() &&
                        raw["requestObject"].value("kind", "") != "Status";
      if (sent) ++request_kinds;
      EXPECT_EQ(c["kind"], sent ? raw["requestObject"].value("kind", "") : "") << i << ": " << raw.dump();
    }
    if (c.contains("changes")) ++with_changes;
  }
  EXPECT_GT(with_object, 10u);
  EXPECT_GT(with_changes, 0u);  // writes say what changed
  EXPECT_GT(request_kinds, 0u);

  // `annals watch` from the start prints the same, one JSON per line.
  auto r = testutil::RunAnnals({"watch", "--url", server_->url(), "--from", "0", "--max-events",
                                std::to_string(corpus.size())});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::stringstream lines(r.out);
  size_t n = 0;
  for (std::string l; std::getline(lines, l); ++n) {
    json d = json::parse(l);
    EXPECT_EQ(d["index"], n);
    EXPECT_EQ(d["event"], corpus[n].j);
  }
  EXPECT_EQ(n, corpus.size());
}

TEST_F(WatchTest, DroppedSubscriberResumesWithLastEventIdWithoutGapOrDuplicate) {
  const auto evs = Copies(LoadCorpus(), 3000, "resume");
  StartServer();
  std::thread ingest([&] { EXPECT_OK(PostAll(server_->url(), evs, 50)); });
  std::vector<uint64_t> ids;
  std::vector<std::string> audit_ids;
  auto take = [&](const Got& g) {
    ids.push_back(g.id);
    audit_ids.push_back(g.data["event"]["auditID"]);
    return true;
  };
  // Drops the connection after 700 events, in the middle of ingest.
  ASSERT_OK(Subscribe(server_->url(), "/v1/watch?from=0", "", [&](const Got& g) {
    take(g);
    return ids.size() < 700;
  }));
  ASSERT_EQ(ids.size(), 700u);
  // And twice more, each time resuming from the last id it got.
  for (size_t stop : {1500u, static_cast<unsigned>(evs.size())}) {
    std::string last = std::to_string(ids.back());
    ASSERT_OK(Subscribe(server_->url(), "/v1/watch?from=0", last, [&](const Got& g) {
      take(g);
      return ids.size() < stop;
    }));
  }
  ingest.join();
  ASSERT_EQ(ids.size(), evs.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    ASSERT_EQ(ids[i], i);
    ASSERT_EQ(audit_ids[i], evs[i].j["auditID"]);
  }
}

TEST_F(WatchTest, NamespaceAndLabelSelectorFiltersReturnExactlyTheMatchingEvents) {
  auto posted = LoadCorpus();
  // A namespace and a label that some, not all, events have.
  std::map<std::string, size_t> ns_count, label_count;
  for (const auto& e : posted) {
    ++ns_count[NamespaceOf(e.j)];
    json l = LabelsOf(e.j);
    if (l.is_object())
      for (auto& [k, v] : l.items())
        if (v.is_string()) ++label_count[k + "=" + v.get<std::string>()];
  }
  std::string ns, label;
  for (auto& [k, n] : ns_count)
    if (!k.empty() && (ns.empty() || n > ns_count[ns])) ns = k;
  for (auto& [k, n] : label_count)
    if (label.empty() || n > label_count[label]) label = k;
  ASSERT_FALSE(ns.empty());
  ASSERT_FALSE(label.empty());
  ASSERT_LT(ns_count[ns], posted.size());
  ASSERT_LT(label_count[label], posted.size() / 2);
  const std::string lk = label.substr(0, label.find('=')), lv = label.substr(label.find('=') + 1);
  auto in_ns = [&](const json& e) { return NamespaceOf(e) == ns; };
  auto labelled = [&](const json& e) {
    json l = LabelsOf(e);
    return l.is_object() && l.contains(lk) && l[lk] == lv;
  };
  // A last event that matches each filter, so a reader knows where to stop.
  auto marker = [&](const std::function<bool(const json&)>& match, const char* tag) {
    for (const auto& e : posted)
      if (match(e.j)) {
        json j = e.j;
        j["auditID"] = std::string("marker-") + tag;
        return RawEvent{j.dump(), j};
      }
    ADD_FAILURE() << "no event matches " << tag;
    return RawEvent{};
  };
  RawEvent m1 = marker(in_ns, "ns"), m2 = marker(labelled, "label");
  posted.push_back(m1);
  posted.push_back(m2);
  StartServer();
  ASSERT_OK(PostAll(server_->url(), posted, 10));

  auto check = [&](const std::string& query, const std::function<bool(const json&)>& match,
                   uint64_t last) {
    std::vector<uint64_t> want, got;
    for (size_t i = 0; i <= last; ++i)
      if (match(posted[i].j)) want.push_back(i);
    EXPECT_OK(Subscribe(server_->url(), "/v1/watch?from=0&" + query, "", [&](const Got& g) {
      got.push_back(g.id);
      return g.id < last;
    }));
    EXPECT_EQ(got, want) << query;
    EXPECT_GT(want.size(), 1u);
    EXPECT_LT(want.size(), last);
  };
  check("namespace=" + ns, in_ns, posted.size() - 2);
  check("selector=" + client::UrlEncode(label), labelled, posted.size() - 1);
  check("namespace=" + ns + "&selector=" + client::UrlEncode(label),
        [&](const json& e) { return in_ns(e) && labelled(e); }, posted.size() - 1);
}

TEST_F(WatchTest, SlowSubscriberIsCutOffWithAReasonWhileIngestGoesOn) {
  const auto evs = Copies(LoadCorpus(), 20000, "slow");
  StartServer({"--watch-buffer", "64"});
  std::mutex mu;
  std::condition_variable cv;
  bool got_first = false, ingest_done = false;
  std::vector<uint64_t> ids;
  std::vector<json> errors;
  std::thread sub([&] {
    // A small receive buffer: the kernel cannot absorb the whole stream
    // for the reader (loopback buffers autotune up to tens of MB).
    EXPECT_OK(Subscribe(server_->url(), "/v1/watch?from=0", "", [&](const Got& g) {
      if (ids.empty()) {
        // Stop reading until the whole ingest is acknowledged.
        std::unique_lock lock(mu);
        got_first = true;
        cv.notify_all();
        cv.wait(lock, [&] { return ingest_done; });
      }
      ids.push_back(g.id);
      return ids.size() < evs.size();  // not cut off: fail below, do not hang
    }, &errors, nullptr, 64 << 10));
  });
  // The subscriber is live before the bulk of the ingest: it took the
  // first entry from the server's buffer (one that connects late starts
  // behind and catches up from disk, which is not the case under test).
  Status posted = PostAll(server_->url(), {evs.front()}, 1);
  bool first = false;
  if (posted.ok()) {
    std::unique_lock lock(mu);
    first = cv.wait_for(lock, std::chrono::seconds(30), [&] { return got_first; });
  }
  // Ingest does not wait for the subscriber: every request is answered
  // while the subscriber reads nothing.
  if (first) posted = PostAll(server_->url(), {evs.begin() + 1, evs.end()}, 500);
  // Acknowledged is not yet in the feed (its thread applies and frames
  // durable entries a little later): wait until the feed holds them all,
  // so the buffer has moved past the subscriber.
  const std::string head = "annals_feed_next_index " + std::to_string(evs.size()) + "\n";
  for (int i = 0; i < 3000 && posted.ok() && Metrics().find(head) == std::string::npos; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  {
    std::lock_guard lock(mu);
    ingest_done = true;
  }
  cv.notify_all();
  if (!first) (void)server_->Stop();  // ends the subscription, so the thread joins
  sub.join();
  ASSERT_OK(posted);
  ASSERT_TRUE(first) << "the subscriber never got the first entry";
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0]["reason"], "slow");
  ASSERT_FALSE(ids.empty());
  ASSERT_LT(ids.size(), evs.size());  // cut off before the end
  for (size_t i = 0; i < ids.size(); ++i) ASSERT_EQ(ids[i], i);
  EXPECT_NE(Metrics().find("annals_watch_disconnects_total{reason=\"slow\"} 1"), std::string::npos);
  // It resumes where it stopped and gets the rest.
  ASSERT_OK(Subscribe(server_->url(), "/v1/watch?from=0", std::to_string(ids.back()), [&](const Got& g) {
    ids.push_back(g.id);
    return ids.size() < evs.size();
  }));
  ASSERT_EQ(ids.size(), evs.size());
  for (size_t i = 0; i < ids.size(); ++i) ASSERT_EQ(ids[i], i);
}

TEST_F(WatchTest, SubscriberReadingOldEntriesThatNeverReadsIsDisconnected) {
  // 20,000 events in the log, then a subscriber from 0 that sends its
  // request and never reads: its write stays pending (a small receive
  // buffer), it never becomes live, and it used to be kept for ever.
  const auto evs = Copies(LoadCorpus(), 20000, "stuck");
  StartServer();
  ASSERT_OK(PostAll(server_->url(), evs, 500));
  int fd = testutil::ConnectLoopback(testutil::PortOfUrl(server_->url()), /*rcvbuf=*/16 << 10);
  ASSERT_GE(fd, 0);
  const std::string req = "GET /v1/watch?from=0 HTTP/1.1\r\nHost: a\r\n\r\n";
  ASSERT_EQ(::send(fd, req.data(), req.size(), MSG_NOSIGNAL), static_cast<ssize_t>(req.size()));
  // Disconnected after 30 s of a pending write (the feed's ticks look).
  const std::string stuck = "annals_watch_disconnects_total{reason=\"stuck\"} 1";
  bool cut = false;
  for (int i = 0; i < 600 && !cut; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    cut = Metrics().find(stuck) != std::string::npos;
  }
  EXPECT_TRUE(cut) << "a subscriber that never reads was not disconnected in 60 s";
  ::close(fd);
  // Everyone else is served meanwhile.
  ASSERT_OK(PostAll(server_->url(), Copies(LoadCorpus(), 10, "after"), 10));
}

TEST_F(WatchTest, WatchCommandResumesByItselfAcrossAServerRestart) {
  const auto evs = Copies(LoadCorpus(), 400, "cli");
  const uint16_t port = testutil::FreePort();
  ASSERT_NE(port, 0);
  StartServer({}, "127.0.0.1:" + std::to_string(port));
  ASSERT_OK(PostAll(server_->url(), {evs.begin(), evs.begin() + 200}, 50));
  testutil::CommandResult r;
  std::thread cli([&] {
    r = testutil::RunAnnals({"watch", "--url", server_->url(), "--from", "0", "--max-events",
                             std::to_string(evs.size())},
                            "", std::chrono::seconds(60));
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  ASSERT_OK(server_->Restart(/*kill=*/true));
  ASSERT_OK(PostAll(server_->url(), {evs.begin() + 200, evs.end()}, 50));
  cli.join();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("resuming after id"), std::string::npos) << r.err;
  std::stringstream lines(r.out);
  size_t n = 0;
  for (std::string l; std::getline(lines, l); ++n) {
    json d = json::parse(l);
    ASSERT_EQ(d["index"], n);
    ASSERT_EQ(d["event"]["auditID"], evs[n].j["auditID"]);
  }
  EXPECT_EQ(n, evs.size());
}

TEST_F(WatchTest, HeartbeatsKeepAnIdleStreamAliveAndBadRequestsGet400) {
  StartServer();
  uint64_t comments = 0;
  auto start = std::chrono::steady_clock::now();
  std::thread sub([&] {
    EXPECT_OK(Subscribe(server_->url(), "/v1/watch?heartbeat=1", "", [&](const Got&) { return false; }, nullptr,
              &comments));
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(2600));
  // One event ends the subscriber; by then it has seen heartbeat comments.
  ASSERT_OK(PostAll(server_->url(), Copies(LoadCorpus(), 1, "hb"), 1));
  sub.join();
  EXPECT_GE(comments, 2u);  // the opening comment and at least one heartbeat
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));

  auto http = client::HttpClient::Create(server_->url());
  ASSERT_OK(http);
  for (const char* q : {"/v1/watch?from=abc", "/v1/watch?selector=%3D%3D", "/v1/watch?nmespace=x",
                        "/v1/watch?code=abc", "/v1/watch?heartbeat=0",
                        // Label selectors as Kubernetes would refuse them.
                        "/v1/watch?from=999999999", "/v1/watch?selector=%28%28", "/v1/watch?selector=a%20in%20%28b",
                        "/v1/watch?selector=a%3Db%3Dc", "/v1/state?selector=%28%28",
                        "/v1/state?selector=a%20in%20%28b", "/v1/state?selector=a%3Db%3Dc",
                        // Flags and formats: a typo is not a different answer.
                        "/v1/state?proof=yes", "/v1/history?kind=pods&name=x&children=maybe",
                        "/v1/events?format=csv"}) {
    auto r = (*http)->Get(q);
    ASSERT_OK(r);
    EXPECT_EQ(r->status, 400) << q;
    EXPECT_NE(r->body.find("error"), std::string::npos) << q;
    if (std::string_view(q).find("selector=") != std::string_view::npos) {
      EXPECT_NE(r->body.find("bad label selector"), std::string::npos) << q << ": " << r->body;
    }
  }
  // A set-based selector is taken.
  auto in = (*http)->Get("/v1/state?selector=app%20in%20%28a%2Cb%29");
  ASSERT_OK(in);
  EXPECT_EQ(in->status, 200) << in->body.substr(0, 200);
  std::vector<json> errors;
  Status s = Subscribe(server_->url(), "/v1/watch", "not-a-number", [](const Got&) { return false; });
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition) << s.ToString();
}

}  // namespace
}  // namespace annals
