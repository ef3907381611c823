// End-to-end tests of Kubernetes audit ingest with the real `annals` binary
// and every real audit event of the shared corpus: Falco's trace files
// (audit.k8s.io/v1beta1 and v1, some without kind/apiVersion), audit2rbac's
// v1 JSON lines, KHI's OSS event (test/testdata, JSON of the corpus YAML)
// and the 16,563 complete rows of PerfSPEC's CSV rebuilt as Metadata-level
// v1 events. They go in through every door: the webhook endpoint (EventLists
// of 1, 400 and all, and single-Event bodies), a rotated audit log file that
// the server follows across SIGKILLs, and the TCP connector fed by `nc`.
// Each time the log must hold exactly one "k8s.audit" entry per distinct
// (auditID, stage) pair, counted here from the raw files, whose payload is
// byte-identical to the event's source bytes (for a pair that Falco reuses
// with other bytes, the other event is kept as a "k8s.audit.conflict"
// entry, also verbatim); sending it all again stores nothing. Hostile
// bodies must be turned away with a reason and leave the log as it was.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "checkpoint/note.h"
#include "client/http_client.h"
#include "common/bytes.h"
#include "ledger/entry.h"
#include "testutil/log_client.h"
#include "testutil/server_process.h"
#include "testutil/test_macros.h"

namespace annals {
namespace {

using client::HttpClient;
using client::HttpResult;
using nlohmann::json;
using testutil::Metric;
using testutil::ReadFile;
using testutil::ServeOptions;
using testutil::ServerProcess;
using testutil::TempDir;

constexpr auto kWait = std::chrono::seconds(60);
constexpr char kAuditPath[] = "/v1/ingest/k8s-audit";

#ifndef ANNALS_TESTDATA_DIR
#error "ANNALS_TESTDATA_DIR must be defined (test/testdata)"
#endif

// ---------------------------------------------------------------------------
// The corpus, read here independently of the server's parsers.

// One audit event as the ledger must store it.
struct CorpusEvent {
  std::string bytes;   // a line without its newline, or a rebuilt event
  std::string origin;  // "falco/x.json:1", "perfspec:17", ... for messages
  std::string key;     // auditID "/" stage
};

struct Corpus {
  std::vector<CorpusEvent> events;  // Falco, audit2rbac, KHI, PerfSPEC
  size_t falco = 0, audit2rbac = 0, khi = 0, perfspec = 0;
  // Whole Falco files with exactly one event (name, bytes as on disk).
  std::vector<std::pair<std::string, std::string>> falco_single_files;
  std::string falco_multi_file;   // create_configmap_sensitive_values.json
  std::string falco_not_an_event; // fal_01_003.json: {"kind": 0}
  size_t perfspec_rows = 0;       // CSV rows, complete or not
  std::string perfspec_truncated; // the cut-off last row, rebuilt: no stage
};

std::vector<std::string_view> NonBlankLines(std::string_view text) {
  std::vector<std::string_view> out;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    out.push_back(line);
  }
  return out;
}

// auditID "/" stage of one JSON event, "" if it has no such strings.
std::string KeyOf(std::string_view event) {
  json j = json::parse(event, nullptr, false);
  if (!j.is_object() || !j.contains("auditID") || !j["auditID"].is_string() ||
      !j.contains("stage") || !j["stage"].is_string())
    return "";
  return j["auditID"].get<std::string>() + "/" + j["stage"].get<std::string>();
}

// RFC 4180 CSV: quoted fields with "" escapes; a last row without newline.
std::vector<std::vector<std::string>> ParseCsv(std::string_view s) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> row;
  std::string field;
  bool quoted = false, any = false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    any = true;
    if (quoted) {
      if (c == '"' && i + 1 < s.size() && s[i + 1] == '"') {
        field.push_back('"');
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        field.push_back(c);
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      row.push_back(std::move(field));
      field.clear();
    } else if (c == '\n') {
      if (!field.empty() && field.back() == '\r') field.pop_back();
      row.push_back(std::move(field));
      field.clear();
      rows.push_back(std::move(row));
      row.clear();
      any = false;
    } else {
      field.push_back(c);
    }
  }
  if (any) {
    row.push_back(std::move(field));
    rows.push_back(std::move(row));
  }
  return rows;
}

std::string Q(std::string_view s) { return json(std::string(s)).dump(); }

// A Metadata-level audit.k8s.io/v1 Event from one PerfSPEC CSV row. Columns
// (SOURCES.md): host, requestReceivedTimestamp, user.username, verb,
// objectRef.resource, objectRef.subresource, objectRef.name,
// responseObject.metadata.name, requestURI, auditID, stage,
// responseStatus.code, responseObject.metadata.uid,
// ownerReferences[0].uid, details.uid. A short row leaves out what it lacks.
std::string RebuildPerfSpecEvent(const std::vector<std::string>& c) {
  auto col = [&](size_t i) -> std::string { return i < c.size() ? c[i] : ""; };
  std::string e = R"({"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata")";
  if (!col(9).empty()) e += R"(,"auditID":)" + Q(col(9));
  if (!col(10).empty()) e += R"(,"stage":)" + Q(col(10));
  e += R"(,"requestURI":)" + Q(col(8)) + R"(,"verb":)" + Q(col(3));
  e += R"(,"user":{"username":)" + Q(col(2)) + "}";
  std::string ref;
  for (auto [name, i] : {std::pair{"resource", 4}, {"subresource", 5}, {"name", 6}}) {
    if (col(i).empty()) continue;
    ref += (ref.empty() ? "" : ",") + Q(name) + ":" + Q(col(i));
  }
  if (!ref.empty()) e += R"(,"objectRef":{)" + ref + "}";
  if (!col(11).empty()) e += R"(,"responseStatus":{"metadata":{},"code":)" + col(11) + "}";
  std::string meta;
  if (!col(7).empty()) meta += R"("name":)" + Q(col(7));
  if (!col(12).empty()) meta += std::string(meta.empty() ? "" : ",") + R"("uid":)" + Q(col(12));
  if (!col(13).empty())
    meta += std::string(meta.empty() ? "" : ",") + R"("ownerReferences":[{"uid":)" + Q(col(13)) + "}]";
  if (!meta.empty() || !col(14).empty()) {
    e += R"(,"responseObject":{"metadata":{)" + meta + "}";
    if (!col(14).empty()) e += R"(,"details":{"uid":)" + Q(col(14)) + "}";
    e += "}";
  }
  e += R"(,"requestReceivedTimestamp":)" + Q(col(1)) + R"(,"stageTimestamp":)" + Q(col(1));
  // The Logstash host column is a JSON text; it rides along as an annotation.
  e += R"(,"annotations":{"perfspec.logstash/host":)" + Q(col(0)) + "}}";
  return e;
}

const Corpus& TheCorpus() {
  static const Corpus* corpus = [] {
    auto* c = new Corpus;
    const std::string dir = testutil::CorpusDir() + "/k8s-audit";
    std::vector<std::string> falco;
    for (const auto& e : std::filesystem::directory_iterator(dir + "/falco"))
      if (e.path().extension() == ".json") falco.push_back(e.path().filename().string());
    std::sort(falco.begin(), falco.end());
    for (const auto& name : falco) {
      auto text = ReadFile(dir + "/falco/" + name);
      if (!text.ok()) continue;
      size_t n = 0, line_no = 0;
      for (auto line : NonBlankLines(*text)) {
        ++line_no;
        std::string key = KeyOf(line);
        if (key.empty()) {
          c->falco_not_an_event = std::string(line);
          continue;
        }
        c->events.push_back({std::string(line), "falco/" + name + ":" + std::to_string(line_no), key});
        ++c->falco;
        ++n;
      }
      if (n == 1) c->falco_single_files.emplace_back(name, *text);
      if (n > 1) c->falco_multi_file = *text;
    }
    if (auto text = ReadFile(dir + "/audit2rbac-demo.jsonl"); text.ok()) {
      size_t line_no = 0;
      for (auto line : NonBlankLines(*text)) {
        ++line_no;
        c->events.push_back({std::string(line), "audit2rbac:" + std::to_string(line_no), KeyOf(line)});
        ++c->audit2rbac;
      }
    }
    if (auto text = ReadFile(std::string(ANNALS_TESTDATA_DIR) + "/khi-oss-audit-event.json"); text.ok()) {
      for (auto line : NonBlankLines(*text)) {
        c->events.push_back({std::string(line), "khi-oss-audit-event", KeyOf(line)});
        ++c->khi;
      }
    }
    if (auto text = ReadFile(dir + "/perfspec-kubernetes-event-dataset/audit-logs.csv"); text.ok()) {
      size_t row_no = 0;
      for (const auto& row : ParseCsv(*text)) {
        ++row_no;
        ++c->perfspec_rows;
        if (row.size() < 15) {
          c->perfspec_truncated = RebuildPerfSpecEvent(row);
          continue;
        }
        c->events.push_back({RebuildPerfSpecEvent(row), "perfspec:" + std::to_string(row_no),
                             row[9] + "/" + row[10]});
        ++c->perfspec;
      }
    }
    return c;
  }();
  return *corpus;
}

size_t DistinctKeys(const std::vector<const CorpusEvent*>& evs) {
  std::set<std::string_view> keys;
  for (const auto* e : evs) keys.insert(e->key);
  return keys.size();
}

// Distinct (key, bytes): what the server stores. A retry is byte-identical;
// an event that reuses a key with other bytes is kept as a marked conflict.
size_t DistinctEvents(const std::vector<const CorpusEvent*>& evs) {
  std::set<std::pair<std::string_view, std::string_view>> ids;
  for (const auto* e : evs) ids.emplace(e->key, e->bytes);
  return ids.size();
}

std::vector<const CorpusEvent*> AllEvents() {
  std::vector<const CorpusEvent*> out;
  for (const auto& e : TheCorpus().events) out.push_back(&e);
  return out;
}

// ---------------------------------------------------------------------------
// Talking to the server.

struct Answer {
  uint64_t count = 0, stored = 0, duplicates = 0, conflicts = 0;
  std::optional<uint64_t> first_index;
};

// POSTs a webhook body; OK only for a 200 with a well-formed, consistent answer.
StatusOr<Answer> PostAudit(HttpClient* http, std::string_view body) {
  ASSIGN_OR_RETURN(HttpResult r, http->Post(kAuditPath, body));
  if (r.status != 200)
    return UnavailableError("POST " + std::string(kAuditPath) + ": HTTP " + std::to_string(r.status) +
                            " " + r.body);
  json j = json::parse(r.body, nullptr, false);
  auto num = [&](const char* k) { return j.is_object() && j.contains(k) && j[k].is_number_unsigned(); };
  if (!num("count") || !num("stored") || !num("duplicates") || !j.contains("first_index") ||
      !(j["first_index"].is_null() || num("first_index")))
    return DataLossError("answer is not {count, stored, duplicates, first_index}: " + r.body);
  Answer a;
  a.count = j["count"].get<uint64_t>();
  a.stored = j["stored"].get<uint64_t>();
  a.duplicates = j["duplicates"].get<uint64_t>();
  if (!j["first_index"].is_null()) a.first_index = j["first_index"].get<uint64_t>();
  if (j.contains("conflicts")) {
    if (!num("conflicts")) return DataLossError("conflicts is not a count: " + r.body);
    a.conflicts = j["conflicts"].get<uint64_t>();
  }
  if (a.conflicts > a.stored ||
      a.stored + a.duplicates != a.count || a.first_index.has_value() != (a.stored > 0))
    return DataLossError("inconsistent answer: " + r.body);
  return a;
}

// Metric() that fails the test (and returns ~0) when /metrics cannot be read.
uint64_t M(HttpClient* http, std::string_view series) {
  auto n = Metric(http, series);
  EXPECT_OK(n);
  return n.ok() ? *n : ~0ull;
}

uint64_t LogEntries(HttpClient* http) { return M(http, "annals_log_entries"); }

// Polls `series` until it reaches `want` (or passes it); returns the last value.
uint64_t WaitForMetric(HttpClient* http, std::string_view series, uint64_t want,
                       std::chrono::seconds timeout = kWait) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  uint64_t v = 0;
  for (;;) {
    auto m = Metric(http, series);
    if (m.ok()) v = *m;
    if ((m.ok() && v >= want) || std::chrono::steady_clock::now() >= deadline) return v;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

std::string EventList(const std::vector<const CorpusEvent*>& evs, size_t begin, size_t end,
                      std::string_view api_version, std::string_view sep) {
  std::string body = R"({"kind":"EventList","apiVersion":")" + std::string(api_version) +
                     R"(","metadata":{},"items":[)";
  for (size_t i = begin; i < end; ++i) {
    body += i == begin ? "" : ",";
    body += sep;
    body += evs[i]->bytes;
  }
  body += sep;
  body += "]}";
  return body;
}

// Posts evs[offset..] and then evs[..offset) in EventLists of `batch` items
// from `posters` threads. Adds up the answers; every answer must
// be a consistent 200 for exactly its items.
struct Totals {
  uint64_t stored = 0, duplicates = 0, conflicts = 0;
};

Totals PostInBatches(const std::string& url, const std::vector<const CorpusEvent*>& evs, size_t batch,
                     size_t offset, int posters) {
  std::vector<std::pair<size_t, size_t>> ranges;
  for (size_t b = offset; b < evs.size(); b += batch) ranges.emplace_back(b, std::min(evs.size(), b + batch));
  for (size_t b = 0; b < offset; b += batch) ranges.emplace_back(b, std::min(offset, b + batch));
  std::atomic<size_t> next{0};
  std::atomic<uint64_t> st{0}, dup{0}, con{0};
  std::mutex mu;
  std::vector<std::string> errors;
  auto work = [&](int t) {
    auto http = HttpClient::Create(url);
    if (!http.ok()) {
      std::lock_guard lock(mu);
      errors.push_back(http.status().ToString());
      return;
    }
    for (size_t r; (r = next.fetch_add(1)) < ranges.size();) {
      auto [b, e] = ranges[r];
      std::string body = EventList(evs, b, e, (r % 2) ? "audit.k8s.io/v1beta1" : "audit.k8s.io/v1",
                                   batch >= 1000 ? "\n  " : "");
      auto a = PostAudit(http->get(), body);
      if (!a.ok() || a->count != e - b) {
        std::lock_guard lock(mu);
        errors.push_back("items " + std::to_string(b) + ".." + std::to_string(e) + ": " +
                         (a.ok() ? "count " + std::to_string(a->count) : a.status().ToString()));
        if (!a.ok()) return;
        continue;
      }
      st += a->stored;
      dup += a->duplicates;
      con += a->conflicts;
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < posters; ++t) threads.emplace_back(work, t);
  for (auto& t : threads) t.join();
  for (size_t i = 0; i < errors.size() && i < 5; ++i) ADD_FAILURE() << errors[i];
  EXPECT_TRUE(errors.empty()) << errors.size() << " failed posts";
  return Totals{st, dup, con};
}

// Does the metadata "key" name the event `key` (auditID "/" stage)? The
// server's key spells the pair its own way ("audit:<len>:<auditID>/<stage>");
// this checks what any spelling must: it ends with the pair.
bool MetaKeyNames(std::string_view meta_key, std::string_view key) {
  return meta_key.size() > key.size() && meta_key.ends_with(key) &&
         meta_key[meta_key.size() - key.size() - 1] == ':';
}

// Checks that the log of `server` holds exactly what `sent` must leave:
// per distinct (auditID, stage) one "k8s.audit" entry from `source` whose
// payload is byte-identical to the first event sent with that pair (or,
// unless `first_wins`, to any of them: concurrent senders race), and per
// other byte variant of a pair one "k8s.audit.conflict" entry holding it;
// nothing else, nothing twice.
void ExpectLogHoldsExactly(const ServerProcess& server, const std::vector<const CorpusEvent*>& sent,
                           std::string_view source, bool first_wins) {
  std::map<std::string_view, std::vector<const CorpusEvent*>> by_key;
  for (const auto* e : sent) by_key[e->key].push_back(e);
  const uint64_t pairs = by_key.size();
  const uint64_t n = DistinctEvents(sent);

  ASSERT_OK_AND_ASSIGN(auto http, HttpClient::Create(server.url()));
  EXPECT_EQ(LogEntries(http.get()), n) << "stored entries vs distinct events";
  ASSERT_OK_AND_ASSIGN(auto verifier, note::Verifier::FromVerifierKey(server.verifier_key()));
  ASSERT_OK_AND_ASSIGN(auto cp, testutil::WaitForCheckpoint(http.get(), *verifier, n, kWait));
  ASSERT_EQ(cp.cp.size, n) << "the signed checkpoint covers more than was sent";
  ASSERT_OK_AND_ASSIGN(auto entries, testutil::FetchEntries(http.get(), 0, n, n));
  ASSERT_EQ(entries.size(), n);

  std::map<std::string, std::string> audit;       // pair -> payload of its k8s.audit entry
  std::set<std::pair<std::string, std::string>> stored;  // (pair, payload)
  uint64_t conflicts = 0;
  size_t bad = 0;
  auto report = [&](uint64_t i, const std::string& what) {
    if (++bad <= 5) ADD_FAILURE() << "entry " << i << ": " << what;
  };
  for (uint64_t i = 0; i < n; ++i) {
    auto d = ledger::DecodeEntry(entries[i]);
    if (!d.ok()) {
      report(i, "does not decode: " + d.status().ToString());
      continue;
    }
    if (d->external) {
      report(i, "payload stored outside the entry (all corpus events fit inline)");
      continue;
    }
    json meta = json::parse(d->meta, nullptr, false);
    const std::string type = meta.is_object() ? meta.value("type", "") : "";
    if ((type != "k8s.audit" && type != "k8s.audit.conflict") || meta.value("src", "") != source ||
        !meta.contains("key") || !meta["key"].is_string()) {
      report(i, "metadata is not a k8s.audit entry from " + std::string(source) + ": " +
                    std::string(d->meta));
      continue;
    }
    // Which event is it? Its own bytes say, read independently.
    const std::string key = KeyOf(d->payload);
    auto it = by_key.find(key);
    if (it == by_key.end()) {
      report(i, "holds an event that was never sent (" + key + ")");
      continue;
    }
    if (!MetaKeyNames(meta["key"].get<std::string>(), key))
      report(i, "metadata key " + meta["key"].get<std::string>() + " does not name its payload " + key);
    bool sent_bytes = false;
    for (const auto* e : it->second) sent_bytes = sent_bytes || d->payload == e->bytes;
    if (!sent_bytes) {
      report(i, "payload is not byte-identical to any event sent as " + key + " (first: " +
                    it->second.front()->origin + ")");
      continue;
    }
    if (!stored.emplace(key, std::string(d->payload)).second) {
      report(i, "event " + key + " stored twice with the same bytes");
      continue;
    }
    if (type == "k8s.audit.conflict") {
      ++conflicts;
      continue;
    }
    if (!audit.emplace(key, std::string(d->payload)).second) {
      report(i, "a second k8s.audit entry for " + key);
      continue;
    }
    if (first_wins && d->payload != it->second.front()->bytes)
      report(i, "the k8s.audit entry of " + key + " is not the first sent (" +
                    it->second.front()->origin + ")");
  }
  EXPECT_EQ(bad, 0u) << "entries that do not match what was sent";
  EXPECT_EQ(audit.size(), pairs) << "k8s.audit entries vs distinct (auditID, stage) pairs";
  EXPECT_EQ(conflicts, n - pairs) << "conflict entries vs other byte variants of a pair";
  EXPECT_EQ(stored.size(), n);
}

ServeOptions Options(const TempDir& dir, std::vector<std::string> extra = {}) {
  ServeOptions o;
  o.redaction_policy = "none";  // byte-for-byte checks
  o.data_dir = dir.Sub("data");
  o.checkpoint_interval_ms = 100;
  o.extra_args = std::move(extra);
  return o;
}

// ---------------------------------------------------------------------------

TEST(AuditCorpus, CountsAreThoseOfTheRawFiles) {
  const Corpus& c = TheCorpus();
  // 47 Falco files: 45 hold one event, create_configmap_sensitive_values.json
  // six, fal_01_003.json is {"kind": 0} (no event); audit2rbac 37, KHI 1;
  // the PerfSPEC CSV has 16,564 rows, the last cut off inside its auditID
  // (no stage column), leaving 16,563 events.
  EXPECT_EQ(c.falco, 51u);
  EXPECT_EQ(c.falco_single_files.size(), 45u);
  EXPECT_EQ(NonBlankLines(c.falco_multi_file).size(), 6u);
  EXPECT_EQ(c.falco_not_an_event, R"({"kind": 0})");
  EXPECT_EQ(c.audit2rbac, 37u);
  EXPECT_EQ(c.khi, 1u);
  EXPECT_EQ(c.perfspec_rows, 16564u);
  EXPECT_EQ(c.perfspec, 16563u);
  EXPECT_FALSE(c.perfspec_truncated.empty());
  EXPECT_EQ(KeyOf(c.perfspec_truncated), "");
  for (const auto& e : c.events) {
    ASSERT_FALSE(e.key.empty()) << e.origin;
    ASSERT_EQ(e.bytes.find('\n'), std::string::npos) << e.origin;
    ASSERT_TRUE(json::accept(e.bytes)) << e.origin;
  }
  // Falco reuses two auditIDs (same request, different users): 2 pairs
  // occur twice with different bytes; no event occurs twice byte for byte.
  EXPECT_EQ(DistinctKeys(AllEvents()), c.events.size() - 2);
  EXPECT_EQ(DistinctEvents(AllEvents()), c.events.size());
  std::printf("corpus: %zu events (falco %zu, audit2rbac %zu, khi %zu, perfspec %zu), "
              "%zu distinct (auditID, stage) pairs, %zu distinct events\n",
              c.events.size(), c.falco, c.audit2rbac, c.khi, c.perfspec, DistinctKeys(AllEvents()),
              DistinctEvents(AllEvents()));
}

// Webhook EventLists: the corpus is posted whole in lists of `batch`, then
// again in lists of `again` (boundaries shifted by `offset`), and again
// after a restart: the second and third time nothing is stored.
void EventListScenario(size_t batch, int posters, size_t again, size_t offset) {
  TempDir dir;
  ServerProcess server(Options(dir));
  ASSERT_OK(server.Start());
  const auto evs = AllEvents();
  const uint64_t pairs = DistinctKeys(evs), distinct = DistinctEvents(evs);

  Totals t = PostInBatches(server.url(), evs, batch, 0, posters);
  EXPECT_EQ(t.stored, distinct);
  EXPECT_EQ(t.duplicates, evs.size() - distinct);
  EXPECT_EQ(t.conflicts, distinct - pairs);
  ASSERT_NO_FATAL_FAILURE(ExpectLogHoldsExactly(server, evs, "k8s-audit", posters == 1));

  t = PostInBatches(server.url(), evs, again, offset, 1);
  EXPECT_EQ(t.stored, 0u) << "the second posting stored events again";
  EXPECT_EQ(t.duplicates, evs.size());
  ASSERT_OK_AND_ASSIGN(auto http, HttpClient::Create(server.url()));
  EXPECT_EQ(LogEntries(http.get()), distinct);
  // Survives a restart: the dedup index still knows every event.
  ASSERT_OK(server.Restart());
  t = PostInBatches(server.url(), evs, again, 0, 1);
  EXPECT_EQ(t.stored, 0u) << "the dedup index forgot events across a restart";
  ASSERT_OK_AND_ASSIGN(http, HttpClient::Create(server.url()));
  EXPECT_EQ(LogEntries(http.get()), distinct);
}

TEST(AuditIngest, EventListsOfOneFromSixteenPostersStoreEachPairOnce) {
  EventListScenario(/*batch=*/1, /*posters=*/16, /*again=*/1u << 30, 0);
}

TEST(AuditIngest, EventListsOf400StoreEachPairOnceByteForByte) {
  EventListScenario(/*batch=*/400, /*posters=*/1, /*again=*/400, /*offset=*/200);
}

TEST(AuditIngest, OneEventListOfTheWholeCorpusStoresEachPairOnce) {
  EventListScenario(/*batch=*/1u << 30, /*posters=*/1, /*again=*/1u << 30, 0);
}

// A single Event as the body, padded with whitespace as a sender might:
// the stored payload is the body trimmed. Falco's v1beta1 events and those
// with no kind/apiVersion are accepted alike.
TEST(AuditIngest, SingleEventBodiesAreStoredTrimmed) {
  const Corpus& c = TheCorpus();
  TempDir dir;
  ServerProcess server(Options(dir));
  ASSERT_OK(server.Start());
  ASSERT_OK_AND_ASSIGN(auto http, HttpClient::Create(server.url()));

  std::vector<const CorpusEvent*> sent;
  uint64_t stored = 0;
  for (const auto& e : c.events) {
    if (e.origin.starts_with("perfspec")) continue;
    sent.push_back(&e);
  }
  // Whole Falco files exactly as on disk (trailing newline and all).
  std::set<std::string> whole;
  for (const auto& [name, text] : c.falco_single_files) {
    ASSERT_OK_AND_ASSIGN(Answer a, PostAudit(http.get(), text));
    EXPECT_EQ(a.count, 1u) << name;
    stored += a.stored;
    whole.insert("falco/" + name);
  }
  // The 6-event file is not one JSON document: rejected whole.
  ASSERT_OK_AND_ASSIGN(HttpResult r, http->Post(kAuditPath, c.falco_multi_file));
  EXPECT_EQ(r.status, 400) << r.body;
  // The rest one by one, padded.
  for (const auto* e : sent) {
    if (whole.count(e->origin.substr(0, e->origin.rfind(':')))) continue;
    ASSERT_OK_AND_ASSIGN(Answer a, PostAudit(http.get(), " \n\t" + e->bytes + "\r\n \n"));
    EXPECT_EQ(a.count, 1u) << e->origin;
    stored += a.stored;
  }
  EXPECT_EQ(stored, DistinctEvents(sent));
  ASSERT_NO_FATAL_FAILURE(ExpectLogHoldsExactly(server, sent, "k8s-audit", true));
}

// ---------------------------------------------------------------------------
// The audit log file, rotated as the kube-apiserver rotates it.

void AppendToFile(const std::string& path, std::string_view data) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0) << path << ": " << std::strerror(errno);
  while (!data.empty()) {
    ssize_t k = ::write(fd, data.data(), data.size());
    ASSERT_GT(k, 0) << std::strerror(errno);
    data.remove_prefix(static_cast<size_t>(k));
  }
  ::close(fd);
}

std::string Lines(const std::vector<const CorpusEvent*>& evs, size_t begin, size_t end) {
  std::string out;
  for (size_t i = begin; i < end; ++i) {
    out += evs[i]->bytes;
    out += '\n';
  }
  return out;
}

TEST(AuditIngest, RotatedAuditLogIsFollowedAcrossSigkillWithNothingLostOrRepeated) {
  TempDir dir;
  const std::string log = dir.Sub("audit.log");
  ServerProcess server(Options(dir, {"--tail", log}));
  ASSERT_OK(server.Start());  // before the file exists, as on a fresh node
  const auto evs = AllEvents();
  const size_t n = evs.size();
  const size_t a = n * 4 / 10, b = n / 2, cc = n * 6 / 10, d = n * 8 / 10;

  // 1. The apiserver writes the first 40% in pieces, then half of the next
  // line; annals is killed half-way through, while it reads, and the
  // apiserver writes on.
  {
    ASSERT_OK_AND_ASSIGN(auto http, HttpClient::Create(server.url()));
    constexpr size_t kPieces = 40;
    uint64_t killed_at = 0;
    for (size_t p = 0; p < kPieces; ++p) {
      ASSERT_NO_FATAL_FAILURE(AppendToFile(log, Lines(evs, a * p / kPieces, a * (p + 1) / kPieces)));
      if (!server.running()) continue;
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
      const uint64_t now = M(http.get(), "annals_log_entries");
      if (now >= a / 3) {
        server.Kill();
        killed_at = now;
      }
    }
    ASSERT_FALSE(server.running()) << "the tailer never got a third of the way";
    std::printf("tail: SIGKILL with %llu of %zu lines written so far in the log\n",
                static_cast<unsigned long long>(killed_at), a);
  }
  const std::string next = evs[a]->bytes + "\n";
  ASSERT_NO_FATAL_FAILURE(AppendToFile(log, next.substr(0, next.size() / 2)));

  // 2. While it is down the apiserver writes on, rotates, and starts anew.
  ASSERT_NO_FATAL_FAILURE(AppendToFile(log, next.substr(next.size() / 2) + Lines(evs, a + 1, b)));
  ASSERT_EQ(std::rename(log.c_str(), dir.Sub("audit-2026-01-02T15-04-05.000.log").c_str()), 0);
  ASSERT_NO_FATAL_FAILURE(AppendToFile(log, Lines(evs, b, cc)));
  ASSERT_OK(server.Start());
  ASSERT_OK_AND_ASSIGN(auto http, HttpClient::Create(server.url()));
  std::vector<const CorpusEvent*> prefix(evs.begin(), evs.begin() + cc);
  EXPECT_EQ(WaitForMetric(http.get(), "annals_log_entries", DistinctEvents(prefix)), DistinctEvents(prefix));

  // 3. A rotation while it runs: the renamed file is finished first.
  ASSERT_NO_FATAL_FAILURE(AppendToFile(log, Lines(evs, cc, d)));
  ASSERT_EQ(std::rename(log.c_str(), dir.Sub("audit-2026-01-02T15-04-06.000.log").c_str()), 0);
  ASSERT_NO_FATAL_FAILURE(AppendToFile(log, Lines(evs, d, n)));
  const uint64_t distinct = DistinctEvents(evs);
  EXPECT_EQ(WaitForMetric(http.get(), "annals_log_entries", distinct), distinct);
  std::this_thread::sleep_for(std::chrono::milliseconds(400));  // > 3 tail polls
  ASSERT_NO_FATAL_FAILURE(ExpectLogHoldsExactly(server, evs, "audit-log", true));

  // 4. Killed once more with everything read: the saved position is at the
  // end, so the restarted tailer reads (and so repeats) nothing.
  server.Kill();
  ASSERT_OK(server.Start());
  ASSERT_OK_AND_ASSIGN(http, HttpClient::Create(server.url()));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_EQ(M(http.get(), "annals_events_received_total{source=\"audit-log\"}"), 0u)
      << "the tailer re-read lines it had already made durable";
  EXPECT_EQ(LogEntries(http.get()), distinct);
  EXPECT_EQ(M(http.get(), "annals_bad_lines_total{source=\"audit-log\"}"), 0u);
}

// ---------------------------------------------------------------------------
// The TCP connector, fed by netcat.

using testutil::FreePort;

int RunNc(uint16_t port, const std::string& file) {
  std::string cmd = "nc -q1 127.0.0.1 " + std::to_string(port) + " < '" + file + "' > /dev/null";
  int st = std::system(cmd.c_str());
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

TEST(AuditIngest, TcpConnectorStoresTheCorpusSentThroughNc) {
  if (std::system("command -v nc > /dev/null 2>&1") != 0) GTEST_SKIP() << "nc is not installed";
  TempDir dir;
  const uint16_t port = FreePort();
  ASSERT_NE(port, 0);
  ServerProcess server(Options(dir, {"--tcp-listen", "127.0.0.1:" + std::to_string(port)}));
  ASSERT_OK(server.Start());
  ASSERT_OK_AND_ASSIGN(auto http, HttpClient::Create(server.url()));
  const auto evs = AllEvents();

  // The stream: every event a line, some with CRLF, some blank lines, and
  // two bad lines (a truncated event; one with invalid UTF-8) placed before
  // the good events they were made from, which must win.
  std::string stream;
  const std::string& victim1 = evs[100]->bytes;
  std::string victim2 = evs[5000]->bytes;
  victim2.insert(victim2.find("\"verb\":\"") + 8, "\xff\xfe");
  stream += victim1.substr(0, victim1.size() / 2) + "\n";
  stream += victim2 + "\n";
  for (size_t i = 0; i < evs.size(); ++i) {
    stream += evs[i]->bytes;
    stream += i % 1000 == 7 ? "\r\n" : "\n";
    if (i % 3000 == 11) stream += "\n  \n";
  }
  const std::string file = dir.Sub("stream.jsonl");
  ASSERT_OK(testutil::OverwriteFile(file, stream));

  ASSERT_EQ(RunNc(port, file), 0);
  const uint64_t distinct = DistinctEvents(evs);
  EXPECT_EQ(WaitForMetric(http.get(), "annals_log_entries", distinct), distinct);
  EXPECT_EQ(M(http.get(), "annals_bad_lines_total{source=\"tcp\"}"), 2u);
  ASSERT_NO_FATAL_FAILURE(ExpectLogHoldsExactly(server, evs, "tcp", true));

  // Twice more at once on two connections: all duplicates.
  std::thread other([&] { EXPECT_EQ(RunNc(port, file), 0); });
  EXPECT_EQ(RunNc(port, file), 0);
  other.join();
  const std::string received = "annals_events_received_total{source=\"tcp\"}";
  EXPECT_EQ(WaitForMetric(http.get(), received, 3 * evs.size()), 3 * evs.size());
  EXPECT_EQ(M(http.get(), "annals_events_deduplicated_total{source=\"tcp\"}"),
            3 * evs.size() - distinct);
  EXPECT_EQ(LogEntries(http.get()), distinct);
}

// serve --cluster files what the stream sources take under it too: lines
// followed with --tail and lines sent to the TCP connector.
TEST(AuditIngest, TailAndTcpLinesAreFiledUnderTheServersCluster) {
  if (std::system("command -v nc > /dev/null 2>&1") != 0) GTEST_SKIP() << "nc is not installed";
  TempDir dir;
  const uint16_t port = FreePort();
  const std::string log = dir.Sub("audit.log");
  ServerProcess server(
      Options(dir, {"--tcp-listen", "127.0.0.1:" + std::to_string(port), "--tail", log, "--cluster", "edge-2"}));
  ASSERT_OK(server.Start());
  ASSERT_OK_AND_ASSIGN(auto http, HttpClient::Create(server.url()));
  const auto evs = AllEvents();
  ASSERT_NO_FATAL_FAILURE(AppendToFile(log, Lines(evs, 0, 5)));
  const std::string file = dir.Sub("stream.jsonl");
  ASSERT_OK(testutil::OverwriteFile(file, Lines(evs, 5, 10)));
  ASSERT_EQ(RunNc(port, file), 0);
  ASSERT_EQ(WaitForMetric(http.get(), "annals_log_entries", 10), 10u);
  ASSERT_OK_AND_ASSIGN(auto entries, testutil::FetchEntries(http.get(), 0, 10, 10));
  std::map<std::string, size_t> sources;
  for (const auto& e : entries) {
    ASSERT_OK_AND_ASSIGN(auto d, ledger::DecodeEntry(e));
    const json meta = json::parse(d.meta);
    ++sources[meta.value("src", "")];
    EXPECT_EQ(meta.value("cluster", ""), "edge-2") << d.meta;
    EXPECT_TRUE(meta.value("key", "").starts_with("cluster:6:edge-2/")) << d.meta;
  }
  EXPECT_EQ(sources, (std::map<std::string, size_t>{{"audit-log", 5}, {"tcp", 5}}));
}

// ---------------------------------------------------------------------------
// Hostile bodies.

// Sends a POST whose body is `body` (Content-Length, or chunked in 1 MiB
// chunks) over a raw socket, reading while it writes, and returns what the
// server answered (status line, headers and body) once it closes or 30 s pass.
std::string RawPost(const std::string& url, std::string_view body, bool chunked) {
  int fd = testutil::ConnectLoopback(testutil::PortOfUrl(url));
  if (fd < 0) return "connect failed";
  ::fcntl(fd, F_SETFL, O_NONBLOCK);
  std::string out = "POST " + std::string(kAuditPath) + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" +
                    "Content-Type: application/json\r\n";
  if (chunked) {
    out += "Transfer-Encoding: chunked\r\n\r\n";
  } else {
    out += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n";
  }
  size_t body_sent = 0;
  std::string pending = out, answer;
  bool writing = true;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    if (writing && pending.empty()) {
      if (body_sent == body.size()) {
        if (chunked) pending = "0\r\n\r\n";
        body_sent = body.size() + 1;
      } else if (body_sent < body.size()) {
        size_t k = std::min<size_t>(1 << 20, body.size() - body_sent);
        if (chunked) {
          char hex[32];
          std::snprintf(hex, sizeof(hex), "%zx\r\n", k);
          pending = hex + std::string(body.substr(body_sent, k)) + "\r\n";
        } else {
          pending = std::string(body.substr(body_sent, k));
        }
        body_sent += k;
      } else {
        writing = false;
      }
    }
    pollfd p{fd, static_cast<short>(POLLIN | (writing ? POLLOUT : 0)), 0};
    if (::poll(&p, 1, 100) < 0 && errno != EINTR) break;
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
      char buf[65536];
      ssize_t k = ::recv(fd, buf, sizeof(buf), 0);
      if (k > 0) {
        answer.append(buf, static_cast<size_t>(k));
        continue;
      }
      if (k == 0 || (errno != EAGAIN && errno != EINTR)) break;
    }
    if (writing && (p.revents & POLLOUT)) {
      ssize_t k = ::send(fd, pending.data(), pending.size(), MSG_NOSIGNAL);
      if (k > 0) pending.erase(0, static_cast<size_t>(k));
      else if (errno != EAGAIN && errno != EINTR) writing = false;  // the server hung up
    }
  }
  ::close(fd);
  return answer;
}

TEST(AuditIngest, HostileBodiesAreRejectedWithAReasonAndStoreNothing) {
  const Corpus& c = TheCorpus();
  TempDir dir;
  ServerProcess server(Options(dir));
  ASSERT_OK(server.Start());
  ASSERT_OK_AND_ASSIGN(auto http, HttpClient::Create(server.url()));
  const auto evs = AllEvents();
  // A log that is not empty: the first 400 events.
  ASSERT_OK_AND_ASSIGN(Answer first, PostAudit(http.get(), EventList(evs, 0, 400, "audit.k8s.io/v1", "")));
  const uint64_t size = LogEntries(http.get());
  ASSERT_EQ(size, first.stored);

  const std::string objects = testutil::CorpusDir() + "/k8s-objects";
  ASSERT_OK_AND_ASSIGN(std::string pod_list, ReadFile(objects + "/kubeclient/pod_list.json"));
  ASSERT_OK_AND_ASSIGN(std::string core_event_list, ReadFile(objects + "/kubeclient/event_list.json"));
  ASSERT_OK_AND_ASSIGN(std::string core_event, ReadFile(objects + "/k9s/ev.json"));
  ASSERT_OK_AND_ASSIGN(std::string pod, ReadFile(objects + "/k9s/po.json"));

  // New events (not yet in the log) to build hostile bodies from, so that
  // anything half-accepted would show in the log size.
  std::vector<const CorpusEvent*> fresh(evs.begin() + 1000, evs.begin() + 1400);
  const std::string ev = fresh[0]->bytes;
  auto with_bad_item = [&](size_t at, std::string_view item) {
    std::string body = R"({"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[)";
    for (size_t i = 0; i < fresh.size(); ++i) {
      if (i) body += ",";
      body += i == at ? std::string(item) : fresh[i]->bytes;
    }
    return body + "]}";
  };
  auto insert_after = [](std::string s, std::string_view marker, std::string_view what) {
    size_t at = s.find(marker);
    return at == std::string::npos ? std::string() : s.insert(at + marker.size(), what);
  };
  std::string deep = "{\"deep\":" + std::string(100000, '[') + std::string(100000, ']') + "," + ev.substr(1);
  std::string depth65 = "{\"deep\":" + std::string(64, '[') + std::string(64, ']') + "," + ev.substr(1);

  struct Case {
    std::string name, body, reason;  // reason: a part of the error text
  };
  const std::vector<Case> cases = {
      {"empty body", "", "empty"},
      {"whitespace only", " \r\n\t ", "empty"},
      {"truncated event", ev.substr(0, ev.size() / 2), "invalid JSON"},
      {"truncated EventList", EventList(fresh, 0, 10, "audit.k8s.io/v1", "").substr(0, 3000), "invalid JSON"},
      {"trailing garbage", ev + " {}", "invalid JSON"},
      {"two events, one per line (Falco's 6-event file)", c.falco_multi_file, "invalid JSON"},
      {"not an object", "[" + ev + "]", "not a JSON object"},
      {"Falco {\"kind\": 0}", c.falco_not_an_event, "auditID"},
      {"wrong kind: a real PodList", pod_list, "PodList"},
      {"wrong apiVersion: a real core/v1 EventList", core_event_list, "apiVersion"},
      {"wrong apiVersion: a real core/v1 Event", core_event, "apiVersion"},
      {"EventList whose items is an object", R"({"kind":"EventList","items":{}})", "items"},
      {"EventList without items", R"({"kind":"EventList","apiVersion":"audit.k8s.io/v1"})", "items"},
      {"nested 100,000 deep", deep, "deep"},
      {"nested 65 deep", depth65, "deep"},
      {"invalid UTF-8 (0xff)", insert_after(ev, "\"verb\":\"", "\xff"), "UTF-8"},
      {"invalid UTF-8 (overlong /)", insert_after(ev, "\"verb\":\"", "\xc0\xaf"), "UTF-8"},
      {"invalid UTF-8 (cut multibyte)", insert_after(ev, "\"verb\":\"", "\xe2\x82"), "UTF-8"},
      {"NUL byte inside a string", insert_after(ev, "\"verb\":\"", std::string(1, '\0')), "invalid JSON"},
      {"EventList with the truncated PerfSPEC row (no stage) as item 200",
       with_bad_item(200, c.perfspec_truncated), "items[200]"},
      {"EventList with a number as item 7", with_bad_item(7, "42"), "items[7]"},
      {"EventList with a real Pod as item 399", with_bad_item(399, pod), "items[399]"},
      {"EventList with an invalid UTF-8 item", with_bad_item(3, insert_after(fresh[3]->bytes, "\"verb\":\"", "\xff")),
       "UTF-8"},
      {"EventList with a truncated last item", with_bad_item(399, fresh[399]->bytes.substr(0, 50)),
       "invalid JSON"},
      // Parser differentials: simdjson's lookups read the first of repeated
      // keys, most JSON parsers the last, so the index and the stored bytes
      // would tell different stories.
      {"duplicate key: verb twice", insert_after(ev, "{", "\"verb\":\"delete\","), "more than once"},
      {"duplicate key inside user", insert_after(ev, "\"user\":{", "\"username\":\"mallory\","), "more than once"},
      {"EventList with a duplicate key in item 5",
       with_bad_item(5, insert_after(fresh[5]->bytes, "{", "\"auditID\":\"x\",")), "more than once"},
      {"EventList with two items arrays", R"({"kind":"EventList","items":[],"items":[)" + ev + "]}",
       "more than once"},
  };
  uint64_t rejected = 0;
  for (const auto& tc : cases) {
    SCOPED_TRACE(tc.name);
    ASSERT_FALSE(tc.body.empty() && tc.name != "empty body") << "bad test case";
    ASSERT_OK_AND_ASSIGN(HttpResult r, http->Post(kAuditPath, tc.body));
    EXPECT_EQ(r.status, 400) << r.body.substr(0, 300);
    json j = json::parse(r.body, nullptr, false);
    ASSERT_TRUE(j.is_object() && j.contains("error") && j["error"].is_string()) << r.body.substr(0, 300);
    const std::string reason = j["error"].get<std::string>();
    EXPECT_NE(reason.find(tc.reason), std::string::npos) << "reason: " << reason;
    EXPECT_LT(reason.size(), 1000u) << "the reason should be one clear line";
    EXPECT_EQ(LogEntries(http.get()), size);
    ++rejected;
  }
  EXPECT_EQ(M(http.get(), "annals_events_rejected_total{source=\"k8s-audit\"}"), rejected);

  // An item named through an escaped member name ("it\u0065ms" is "items"):
  // whatever the server makes of it, a stored payload must be the event its
  // metadata names.
  {
    const std::string body = R"({"kind":"EventList","it\u0065ms":[)" + fresh[10]->bytes +
                             R"(],"items":[)" + fresh[11]->bytes + "]}";
    ASSERT_OK_AND_ASSIGN(HttpResult r, http->Post(kAuditPath, body));
    if (r.status == 200) {
      ASSERT_OK_AND_ASSIGN(auto entry_json, http->Get("/v1/entries/" + std::to_string(size)));
      json j = json::parse(entry_json.body, nullptr, false);
      ASSERT_TRUE(j.is_object() && j.contains("entry")) << entry_json.body.substr(0, 300);
      auto raw = Base64Decode(j["entry"].get<std::string>());
      ASSERT_TRUE(raw.has_value());
      ASSERT_OK_AND_ASSIGN(auto d, ledger::DecodeEntry(*raw));
      json meta = json::parse(d.meta, nullptr, false);
      EXPECT_TRUE(MetaKeyNames(meta.value("key", ""), KeyOf(d.payload)))
          << "metadata key " << meta.value("key", "") << " names another event than the payload "
          << KeyOf(d.payload);
      EXPECT_EQ(d.payload, fresh[10]->bytes) << "simdjson reads the first \"items\"";
    } else {
      EXPECT_EQ(r.status, 400) << r.body;
      EXPECT_EQ(LogEntries(http.get()), size);
    }
  }
  const uint64_t size2 = LogEntries(http.get());

  // 100 MB, over the default --max-body of 16 MiB: 413 before the body is read.
  std::string huge = R"({"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[)";
  for (size_t i = 0; huge.size() < (100u << 20); ++i) {
    if (i) huge += ",";
    huge += evs[i % evs.size()]->bytes;
  }
  huge += "]}";
  for (bool chunked : {false, true}) {
    SCOPED_TRACE(chunked ? "100 MB chunked" : "100 MB with Content-Length");
    std::string answer = RawPost(server.url(), huge, chunked);
    EXPECT_TRUE(answer.starts_with("HTTP/1.1 413")) << answer.substr(0, 300);
    EXPECT_NE(answer.find("exceeds the limit"), std::string::npos) << answer.substr(0, 300);
    EXPECT_EQ(LogEntries(http.get()), size2);
  }

  // Still serving, and the events of the hostile bodies are not known to
  // the dedup index: posted cleanly now, all of them are stored (but for
  // the one the escaped-name case may have stored).
  ASSERT_OK_AND_ASSIGN(http, HttpClient::Create(server.url()));
  ASSERT_OK_AND_ASSIGN(Answer a, PostAudit(http.get(), EventList(fresh, 0, fresh.size(), "audit.k8s.io/v1", "")));
  EXPECT_EQ(a.stored, DistinctKeys(fresh) - (size2 - size));
  EXPECT_EQ(LogEntries(http.get()), size + DistinctKeys(fresh));
}

}  // namespace
}  // namespace annals
