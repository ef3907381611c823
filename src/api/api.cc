#include "api/api.h"

#include <nlohmann/json.hpp>

#include "api/paths.h"
#include "api/watch.h"
#include "stream/watch_format.h"
#include "checkpoint/checkpoint.h"
#include "common/bytes.h"
#include "common/time_util.h"
#include "ingest/classify.h"
#include "ingest/json_lines.h"
#include "ingest/k8s_audit.h"
#include "ingest/k8s_watch.h"
#include "ledger/entry.h"
#include "merkle/merkle.h"

namespace annals::api {

using nlohmann::json;

namespace {

HttpResponse JsonResponse(const json& j, int status = 200) {
  HttpResponse r;
  r.status = status;
  r.body = j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
  return r;
}

std::vector<std::string> B64Hashes(const std::vector<Hash>& hs) {
  std::vector<std::string> out;
  out.reserve(hs.size());
  for (const auto& h : hs) out.push_back(Base64Encode(HashBytes(h)));
  return out;
}

StatusOr<uint64_t> UintParam(const Target& t, std::string_view name) {
  const std::string* v = t.Param(name);
  if (!v) return InvalidArgumentError("missing query parameter " + std::string(name));
  auto n = ParseDecimal(*v);
  if (!n) return InvalidArgumentError("query parameter " + std::string(name) + " is not a decimal integer: " + *v);
  return *n;
}

}  // namespace

void Api::Handle(HttpRequest&& req, Responder respond) {
  auto target = ParseTarget(req.target);
  if (!target.ok()) return respond(ErrorResponse(target.status()));
  const std::string& path = target->path;
  const bool get = req.method == "GET" || req.method == "HEAD";
  metrics_.Add("annals_http_requests_total", "method", req.method);

  if (path.starts_with("/v1/ingest/")) {
    if (req.method != "POST") return respond(ErrorResponse(405, "use POST"));
    if (path == paths::kIngestEvents) return IngestEvents(std::move(req), std::move(respond));
    if (path == paths::kIngestK8sAudit) return IngestK8sAudit(std::move(req), std::move(respond));
    if (path == paths::kIngestK8sWatch) return IngestK8sWatch(std::move(req), std::move(respond));
    return respond(ErrorResponse(404, "no such ingest endpoint: " + path));
  }
  if (path == paths::kEnrichFlows) {
    if (req.method != "POST") return respond(ErrorResponse(405, "use POST"));
    return respond(EnrichFlows(req));
  }
  if (!get) return respond(ErrorResponse(405, "use GET"));
  if (path == paths::kState) return respond(StateAt(*target));
  if (path.starts_with(paths::kPodsByIpPrefix)) {
    // Clients may percent-encode an IPv6 address's colons (client::UrlEncode does).
    auto ip = PercentDecode(std::string_view(path).substr(std::string_view(paths::kPodsByIpPrefix).size()));
    if (!ip.ok()) return respond(ErrorResponse(ip.status()));
    return respond(PodByIp(*ip, *target));
  }
  if (path == paths::kHistory) return respond(History(*target));
  if (path == paths::kEvents) return respond(Events(*target));
  if (path == paths::kWatch) return Watch(req, *target, std::move(respond));
  if (path == paths::kCheckpoint) return respond(Checkpoint());
  if (path.starts_with(paths::kTilePrefix))
    return respond(Tile(std::string_view(path).substr(std::string_view(paths::kLogRoot).size())));
  if (path.starts_with(paths::kEntriesPrefix))
    return respond(Entry(std::string_view(path).substr(std::string_view(paths::kEntriesPrefix).size())));
  if (path == paths::kInclusionProof) return respond(InclusionProof(*target));
  if (path == paths::kConsistencyProof) return respond(ConsistencyProof(*target));
  if (path == paths::kHealthz) return respond(HttpResponse{200, "text/plain", "ok\n", {}, {}});
  if (path == paths::kReadyz) return respond(HttpResponse{200, "text/plain", "ready\n", {}, {}});
  if (path == paths::kMetrics) return respond(MetricsPage());
  respond(ErrorResponse(404, "not found: " + path));
}

HttpResponse Api::Checkpoint() {
  HttpResponse r;
  r.content_type = "text/plain; charset=utf-8";
  r.body = ledger_->Checkpoint();
  r.headers.emplace_back("Cache-Control", "no-cache");
  return r;
}

HttpResponse Api::Tile(std::string_view rel) {
  bool immutable = false;
  auto data = ledger_->ReadTilePath(rel, &immutable);
  if (!data.ok()) {
    if (data.status().code() == StatusCode::kInvalidArgument)
      return ErrorResponse(400, "bad tile path: " + data.status().message());
    return ErrorResponse(data.status());
  }
  HttpResponse r;
  r.content_type = "application/octet-stream";
  r.body = std::move(*data);
  r.headers.emplace_back("Cache-Control", immutable ? "public, max-age=31536000, immutable"
                                                    : "no-cache");
  return r;
}

HttpResponse Api::Entry(std::string_view index_text) {
  auto index = ParseDecimal(index_text);
  if (!index) return ErrorResponse(400, "entry index is not a decimal integer");
  if (*index >= ledger_->DurableSize()) return ErrorResponse(404, "no entry " + std::string(index_text));
  auto raw = ledger_->ReadEntry(*index);
  if (!raw.ok()) return ErrorResponse(raw.status());
  json j;
  j["index"] = *index;
  j["leaf_hash"] = Base64Encode(HashBytes(merkle::HashLeaf(*raw)));
  j["entry"] = Base64Encode(*raw);
  auto dec = ledger::DecodeEntry(*raw);
  if (dec.ok()) {
    j["meta"] = json::parse(dec->meta, nullptr, false);
    std::string payload;
    if (dec->external) {
      auto blob = ledger_->GetBlob(dec->payload_digest);
      if (!blob.ok()) return ErrorResponse(blob.status());
      payload = std::move(*blob);
      j["payload_sha256"] = HexEncode(HashBytes(dec->payload_digest));
    } else {
      payload.assign(dec->payload);
    }
    json parsed = json::parse(payload, nullptr, false);
    if (!parsed.is_discarded()) j["event"] = std::move(parsed);
    else j["payload_base64"] = Base64Encode(payload);
  }
  // Receipt: the latest checkpoint and an inclusion proof against it.
  std::string note = ledger_->Checkpoint();
  uint64_t cp_size = ledger_->CheckpointSize();
  j["checkpoint"] = note;
  if (*index < cp_size) {
    auto proof = ledger_->InclusionProof(*index, cp_size);
    if (!proof.ok()) return ErrorResponse(proof.status());
    j["inclusion_proof"] = {{"index", *index}, {"tree_size", cp_size}, {"hashes", B64Hashes(*proof)}};
  } else {
    j["inclusion_proof"] = nullptr;  // not yet covered by a checkpoint
  }
  return JsonResponse(j);
}

HttpResponse Api::InclusionProof(const Target& t) {
  auto index = UintParam(t, "index");
  if (!index.ok()) return ErrorResponse(index.status());
  auto size = UintParam(t, "tree_size");
  if (!size.ok()) return ErrorResponse(size.status());
  auto proof = ledger_->InclusionProof(*index, *size);
  if (!proof.ok()) return ErrorResponse(proof.status());
  return JsonResponse({{"index", *index}, {"tree_size", *size}, {"hashes", B64Hashes(*proof)}});
}

HttpResponse Api::ConsistencyProof(const Target& t) {
  auto first = UintParam(t, "first");
  if (!first.ok()) return ErrorResponse(first.status());
  auto second = UintParam(t, "second");
  if (!second.ok()) return ErrorResponse(second.status());
  auto proof = ledger_->ConsistencyProof(*first, *second);
  if (!proof.ok()) return ErrorResponse(proof.status());
  return JsonResponse({{"first", *first}, {"second", *second}, {"hashes", B64Hashes(*proof)}});
}

void Api::IngestEvents(HttpRequest&& req, Responder respond) {
  const std::string source = "events";
  auto body = std::make_shared<std::string>(std::move(req.body));
  auto lines = ingest::SplitLines(*body);
  if (lines.empty()) {
    metrics_.Add("annals_events_rejected_total", "source", source);
    return respond(ErrorResponse(400, "body holds no JSON lines"));
  }
  const std::string now = ingest::NowRfc3339();
  std::vector<ingest::IngestItem> items;
  items.reserve(lines.size());
  for (auto [line, line_no] : lines) {
    auto item = ingest::ClassifyJsonLine(line, source, now, "line " + std::to_string(line_no));
    if (!item.ok()) {
      metrics_.Add("annals_events_rejected_total", "source", source, lines.size());
      return respond(ErrorResponse(item.status()));
    }
    items.push_back(std::move(*item));
  }
  SubmitAndRespond(std::move(body), source, std::move(items), std::move(respond));
}

void Api::IngestK8sAudit(HttpRequest&& req, Responder respond) {
  const std::string source = "k8s-audit";
  auto body = std::make_shared<std::string>(std::move(req.body));
  auto events = ingest::ParseAuditBody(*body);
  if (!events.ok()) {
    metrics_.Add("annals_events_rejected_total", "source", source);
    return respond(ErrorResponse(events.status()));
  }
  const std::string now = ingest::NowRfc3339();
  std::vector<ingest::IngestItem> items;
  items.reserve(events->size());
  for (const auto& ev : *events)
    items.push_back({ingest::AuditMeta(ev, source, now), ev.raw, ev.DedupKey()});
  SubmitAndRespond(std::move(body), source, std::move(items), std::move(respond));
}

// Watch records from a remote collector (`annals collect --url`): JSON
// lines as ingest::WatchRecordLine writes them. All or nothing.
void Api::IngestK8sWatch(HttpRequest&& req, Responder respond) {
  const std::string source = "k8s-watch";
  auto body = std::make_shared<std::string>(std::move(req.body));
  auto lines = ingest::SplitLines(*body);
  if (lines.empty()) {
    metrics_.Add("annals_events_rejected_total", "source", source);
    return respond(ErrorResponse(400, "body holds no JSON lines"));
  }
  const std::string now = ingest::NowRfc3339();
  std::vector<ingest::IngestItem> items;
  items.reserve(lines.size());
  for (auto [line, line_no] : lines) {
    auto rec = ingest::ParseWatchRecordLine(line, "line " + std::to_string(line_no));
    if (!rec.ok()) {
      metrics_.Add("annals_events_rejected_total", "source", source, lines.size());
      return respond(ErrorResponse(rec.status()));
    }
    items.push_back(ingest::WatchItem(*rec, source, now));
  }
  SubmitAndRespond(std::move(body), source, std::move(items), std::move(respond));
}

void Api::SubmitAndRespond(std::shared_ptr<std::string> body, std::string source,
                           std::vector<ingest::IngestItem> items, Responder respond) {
  const size_t n = items.size();
  ingestor_->Submit(source, std::move(items),
                    [body, n, respond](StatusOr<ingest::IngestResult> r) {
                      if (!r.ok()) return respond(ErrorResponse(r.status()));
                      json j{{"count", n}, {"stored", r->stored}, {"duplicates", r->duplicates}};
                      if (r->conflicts) j["conflicts"] = r->conflicts;
                      if (r->first_index >= 0) j["first_index"] = r->first_index;
                      else j["first_index"] = nullptr;
                      respond(JsonResponse(j));
                    });
}

namespace {

StatusOr<Micros> TimeParam(const Target& t, std::string_view name, Micros fallback) {
  const std::string* v = t.Param(name);
  if (!v || v->empty()) return fallback;
  auto m = ParseQueryTime(*v, NowMicros());
  if (!m) return InvalidArgumentError(std::string(name) + " is not an RFC 3339 or relative time: " + *v);
  return *m;
}

std::string StrParam(const Target& t, std::string_view name) {
  const std::string* v = t.Param(name);
  return v ? *v : "";
}

bool WantProof(const Target& t) {
  const std::string* v = t.Param("proof");
  return v && (*v == "true" || *v == "1");
}

}  // namespace

#define ANNALS_NEED_QUESTIONS() \
  if (!questions_) return ErrorResponse(503, "projections are not enabled on this server")

HttpResponse Api::StateAt(const Target& t) {
  ANNALS_NEED_QUESTIONS();
  auto at = TimeParam(t, "at", NowMicros());
  if (!at.ok()) return ErrorResponse(at.status());
  state::StateQuery q{*at, StrParam(t, "kind"), StrParam(t, "namespace"), StrParam(t, "selector")};
  std::vector<uint64_t> evidence;
  auto body = questions_->State(q, WantProof(t) ? &evidence : nullptr);
  if (!body.ok()) return ErrorResponse(body.status());
  HttpResponse r;
  if (WantProof(t)) {
    // Splice the receipt in before the closing brace.
    body->pop_back();
    *body += ",\"receipt\":" + questions_->Receipt(evidence).dump() + "}";
  }
  r.body = std::move(*body);
  r.body += "\n";
  return r;
}

HttpResponse Api::PodByIp(std::string_view ip, const Target& t) {
  ANNALS_NEED_QUESTIONS();
  auto at = TimeParam(t, "at", NowMicros());
  if (!at.ok()) return ErrorResponse(at.status());
  json nearest;
  auto j = questions_->WhoIs(ip, *at, &nearest);
  if (!j.ok()) {
    HttpResponse r = ErrorResponse(j.status());
    if (j.status().code() == StatusCode::kNotFound) {
      json e{{"error", j.status().message()}, {"nearest", nearest}};
      r.body = e.dump() + "\n";
    }
    return r;
  }
  if (WantProof(t)) (*j)["receipt"] = questions_->Receipt((*j)["evidence"].get<std::vector<uint64_t>>());
  return JsonResponse(*j);
}

HttpResponse Api::History(const Target& t) {
  ANNALS_NEED_QUESTIONS();
  state::HistoryQuery q;
  q.kind = StrParam(t, "kind");
  q.namespace_ = StrParam(t, "namespace");
  q.name = StrParam(t, "name");
  if (q.kind.empty() || q.name.empty()) return ErrorResponse(400, "kind and name are required");
  std::string c = StrParam(t, "children");
  q.children = c == "true" || c == "1";
  std::string verbs = StrParam(t, "verbs");
  for (size_t pos = 0; !verbs.empty() && pos != std::string::npos;) {
    size_t comma = verbs.find(',', pos);
    std::string v = verbs.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    if (!v.empty()) q.verbs.push_back(v);
    pos = comma == std::string::npos ? comma : comma + 1;
  }
  auto since = TimeParam(t, "since", std::numeric_limits<int64_t>::min());
  if (!since.ok()) return ErrorResponse(since.status());
  auto until = TimeParam(t, "until", kNever);
  if (!until.ok()) return ErrorResponse(until.status());
  q.since = *since;
  q.until = *until;
  auto j = questions_->History(q);
  if (!j.ok()) return ErrorResponse(j.status());
  if (WantProof(t)) {
    std::vector<uint64_t> ev;
    for (const auto& e : (*j)["events"]) ev.push_back(e["index"].get<uint64_t>());
    (*j)["receipt"] = questions_->Receipt(ev);
  }
  return JsonResponse(*j);
}

HttpResponse Api::Events(const Target& t) {
  ANNALS_NEED_QUESTIONS();
  state::EventQuery q;
  auto from = TimeParam(t, "from", std::numeric_limits<int64_t>::min());
  if (!from.ok()) return ErrorResponse(from.status());
  auto to = TimeParam(t, "to", kNever);
  if (!to.ok()) return ErrorResponse(to.status());
  q.from = *from;
  q.to = *to;
  q.user = StrParam(t, "user");
  q.verb = StrParam(t, "verb");
  q.resource = StrParam(t, "resource");
  q.namespace_ = StrParam(t, "namespace");
  q.name = StrParam(t, "name");
  q.stage = StrParam(t, "stage");
  q.q = StrParam(t, "q");
  q.group_by = StrParam(t, "group_by");
  if (auto* c = t.Param("code")) {
    auto n = ParseDecimal(*c);
    if (!n || *n > 999) return ErrorResponse(400, "code must be an HTTP status code");
    q.code = static_cast<int>(*n);
  }
  if (auto* l = t.Param("limit")) {
    auto n = ParseDecimal(*l);
    if (!n || *n == 0 || *n > 10000) return ErrorResponse(400, "limit must be 1..10000");
    q.limit = *n;
  }
  if (auto* c = t.Param("cursor")) {
    auto n = ParseDecimal(*c);
    if (!n) return ErrorResponse(400, "cursor must be a ledger index");
    q.cursor = *n;
  }
  auto j = questions_->Events(q);
  if (!j.ok()) return ErrorResponse(j.status());
  if (StrParam(t, "format") == "jsonl" && j->contains("events")) {
    HttpResponse r;
    r.content_type = "application/x-ndjson";
    for (const auto& e : (*j)["events"]) r.body += e.dump() + "\n";
    return r;
  }
  return JsonResponse(*j);
}

HttpResponse Api::EnrichFlows(const HttpRequest& req) {
  ANNALS_NEED_QUESTIONS();
  HttpResponse r;
  r.content_type = "application/x-ndjson";
  Status s = questions_->EnrichFlows(req.body, &r.body);
  if (!s.ok()) return ErrorResponse(400, s.message());
  return r;
}

void Api::Watch(const HttpRequest& req, const Target& t, Responder respond) {
  if (!feed_) return respond(ErrorResponse(503, "subscriptions are not enabled on this server"));
  auto o = ParseWatchRequest(t, req, feed_->next());
  if (!o.ok()) return respond(ErrorResponse(o.status()));
  auto session = std::make_shared<WatchSession>(feed_, &metrics_, std::move(*o));
  HttpResponse r;
  r.content_type = stream::kWatchContentType;
  r.headers.emplace_back("Cache-Control", "no-cache");
  r.headers.emplace_back("X-Accel-Buffering", "no");  // proxies: do not buffer the stream
  r.stream = [session](std::shared_ptr<ResponseStream> s) { session->Start(std::move(s)); };
  respond(std::move(r));
}

HttpResponse Api::MetricsPage() {
  metrics_.Set("annals_log_entries", ledger_->DurableSize());
  metrics_.Set("annals_tree_size", ledger_->IntegratedSize());
  metrics_.Set("annals_checkpoint_size", ledger_->CheckpointSize());
  HttpResponse r;
  r.content_type = "text/plain; version=0.0.4";
  r.body = metrics_.Render();
  if (feed_) r.body += feed_->RenderMetrics();
  return r;
}

}  // namespace annals::api
