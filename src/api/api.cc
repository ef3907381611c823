#include "api/api.h"

#include <nlohmann/json.hpp>

#include "api/paths.h"
#include "checkpoint/checkpoint.h"
#include "common/bytes.h"
#include "ingest/classify.h"
#include "ingest/json_lines.h"
#include "ingest/k8s_audit.h"
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
    return respond(ErrorResponse(404, "no such ingest endpoint: " + path));
  }
  if (!get) return respond(ErrorResponse(405, "use GET"));
  if (path == paths::kCheckpoint) return respond(Checkpoint());
  if (path.starts_with(paths::kTilePrefix))
    return respond(Tile(std::string_view(path).substr(std::string_view(paths::kLogRoot).size())));
  if (path.starts_with(paths::kEntriesPrefix))
    return respond(Entry(std::string_view(path).substr(std::string_view(paths::kEntriesPrefix).size())));
  if (path == paths::kInclusionProof) return respond(InclusionProof(*target));
  if (path == paths::kConsistencyProof) return respond(ConsistencyProof(*target));
  if (path == paths::kHealthz) return respond(HttpResponse{200, "text/plain", "ok\n", {}});
  if (path == paths::kReadyz) return respond(HttpResponse{200, "text/plain", "ready\n", {}});
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

void Api::SubmitAndRespond(std::shared_ptr<std::string> body, std::string source,
                           std::vector<ingest::IngestItem> items, Responder respond) {
  const size_t n = items.size();
  ingestor_->Submit(source, std::move(items),
                    [body, n, respond](StatusOr<ingest::IngestResult> r) {
                      if (!r.ok()) return respond(ErrorResponse(r.status()));
                      json j{{"count", n}, {"stored", r->stored}, {"duplicates", r->duplicates}};
                      if (r->first_index >= 0) j["first_index"] = r->first_index;
                      else j["first_index"] = nullptr;
                      respond(JsonResponse(j));
                    });
}

HttpResponse Api::MetricsPage() {
  metrics_.Set("annals_log_entries", ledger_->DurableSize());
  metrics_.Set("annals_tree_size", ledger_->IntegratedSize());
  metrics_.Set("annals_checkpoint_size", ledger_->CheckpointSize());
  HttpResponse r;
  r.content_type = "text/plain; version=0.0.4";
  r.body = metrics_.Render();
  return r;
}

}  // namespace annals::api
