#include "api/api.h"

#include "common/thread_util.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <tuple>

#include "api/paths.h"
#include "api/watch.h"
#include "stream/watch_format.h"
#include "checkpoint/checkpoint.h"
#include "common/bytes.h"
#include "common/sha256.h"
#include "common/time_util.h"
#include "ingest/classify.h"
#include "ingest/cloud_audit.h"
#include "ingest/json_lines.h"
#include "ingest/k8s_audit.h"
#include "ingest/k8s_watch.h"
#include "json/json_parse.h"
#include "ledger/entry.h"
#include "merkle/merkle.h"
#include "redact/redactor.h"
#include "state/ocsf.h"
#include "ui/console.h"

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

// The questions' flags and enumerations, checked before any is read: a
// typo is a 400, never a silently different answer.
Status CheckFlags(const Target& t) {
  for (const char* name : {"proof", "children"}) {
    const std::string* v = t.Param(name);
    if (v && !v->empty() && *v != "true" && *v != "false" && *v != "1" && *v != "0")
      return InvalidArgumentError(std::string(name) + " must be true or false, not \"" + *v + "\"");
  }
  if (const std::string* f = t.Param("format");
      f && !f->empty() && *f != "json" && *f != "jsonl" && !(*f == "ocsf" && t.path == paths::kEvents))
    return InvalidArgumentError("format must be json or jsonl (or, for events, ocsf), not \"" + *f + "\"");
  return OkStatus();
}

StatusOr<uint64_t> UintParam(const Target& t, std::string_view name) {
  const std::string* v = t.Param(name);
  if (!v) return InvalidArgumentError("missing query parameter " + std::string(name));
  auto n = ParseDecimal(*v);
  if (!n) return InvalidArgumentError("query parameter " + std::string(name) + " is not a decimal integer: " + *v);
  return *n;
}

// The most a gzipped cloud audit body may inflate to (a CloudTrail
// delivery file is a few MB; this bounds what a small hostile body costs).
constexpr size_t kMaxInflatedBody = 64u << 20;

std::string StrParam(const Target& t, std::string_view name) {
  const std::string* v = t.Param(name);
  return v ? *v : "";
}

}  // namespace

namespace {

// The role an endpoint class needs (0: none, e.g. health checks).
uint8_t RequiredRole(std::string_view path) {
  if (path.starts_with("/v1/ingest/")) return auth::kIngest;
  if (path == paths::kEnrichFlows || path == paths::kState || path.starts_with(paths::kPodsByIpPrefix) ||
      path == paths::kHistory || path == paths::kEvents || path == paths::kWatch || path == paths::kClusters)
    return auth::kRead;
  if (path == paths::kCheckpoint || path.starts_with(paths::kTilePrefix) ||
      path.starts_with(paths::kEntriesPrefix) || path == paths::kInclusionProof ||
      path == paths::kConsistencyProof || path == paths::kWitnesses)
    return auth::kVerify;
  if (path == paths::kMetrics || path == paths::kSealed || path == paths::kErase) return auth::kAdmin;
  return 0;
}

// The endpoint class a refused request aimed at, for its record.
std::string EndpointClass(std::string_view path) {
  switch (RequiredRole(path)) {
    case auth::kIngest: return "ingest";
    case auth::kRead: return "read";
    case auth::kVerify: return "verify";
    case auth::kAdmin: return "admin";
    default: return "other";
  }
}

HttpResponse Unauthenticated(std::string_view why) {
  HttpResponse r = ErrorResponse(401, why);
  r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"annals\"");
  return r;
}

std::string Join(const std::set<std::string>& s) {
  std::string out;
  for (const auto& x : s) out += (out.empty() ? "" : ",") + x;
  return out;
}

// The namespace a namespace-limited reader's query is confined to: the one
// asked for if allowed, else its only namespace; PermissionDenied if it
// asks for another or must choose among several.
StatusOr<std::string> ScopedNamespace(const auth::Permissions& p, std::string requested) {
  if (!p.Limited()) return requested;
  if (requested.empty()) {
    if (p.namespaces.size() == 1) return *p.namespaces.begin();
    return PermissionDeniedError("you may read namespaces " + Join(p.namespaces) +
                                 " only: name one with namespace=");
  }
  if (!p.MayReadNamespace(requested)) return PermissionDeniedError("you may not read namespace " + requested);
  return requested;
}

// Drops the events of namespaces a limited reader may not read from an
// answer's "events" (and recounts them); returns how many are left.
size_t KeepReadableEvents(const auth::Permissions& p, json* j) {
  if (p.Limited()) {
    json kept = json::array();
    for (auto& e : (*j)["events"])
      if (p.MayReadNamespace(e.value("namespace", ""))) kept.push_back(std::move(e));
    (*j)["events"] = std::move(kept);
    (*j)["count"] = (*j)["events"].size();
  }
  return (*j)["events"].size();
}

}  // namespace

void Api::Handle(HttpRequest&& req, Responder respond) {
  auto target = ParseTarget(req.target);
  if (!target.ok()) return respond(ErrorResponse(target.status()));
  metrics_.Add("annals_http_requests_total", "method", req.method);
  if (!authz_) {
    auth::Caller caller;
    caller.method = "none";
    caller.perms.roles = auth::kAdmin;  // no authorizer: the loopback default
    return Serve(std::move(req), *target, caller, std::move(respond));
  }
  // Usually answered at once, on this thread. A bearer token that needs a
  // TokenReview is answered on one of the authorizer's review threads, and
  // the request is served there: the listener's threads never wait for the
  // Kubernetes API server.
  auto shared = std::make_shared<HttpRequest>(std::move(req));
  const std::string authorization = shared->Header("Authorization");
  authz_->AuthenticateAsync(
      shared->tls_user, shared->tls_groups, authorization,
      [this, shared, target = std::move(*target), respond = std::move(respond)](StatusOr<auth::Caller> c) mutable {
        if (!c.ok()) {
          metrics_.Add("annals_http_denied_total", "reason", "unauthenticated");
          NoteDenial(*shared, target.path, auth::Caller{}, "unauthenticated");
          return respond(Unauthenticated(c.status().message()));
        }
        Serve(std::move(*shared), target, *c, std::move(respond));
      });
}

void Api::Serve(HttpRequest&& req, const Target& t, const auth::Caller& caller, Responder respond) {
  const std::string& path = t.path;
  const bool get = req.method == "GET" || req.method == "HEAD";
  if (authz_) {
    const uint8_t need = RequiredRole(path);
    bool allowed = !need || caller.perms.Has(static_cast<auth::Role>(need));
    if (!allowed && need == auth::kIngest) {
      // Per-source ingest roles: the webhook is "k8s-audit", /v1/ingest/events "events",
      // the watch collector's /v1/ingest/k8s-watch "k8s-watch".
      allowed = (path == paths::kIngestK8sAudit && caller.perms.MayIngest("k8s-audit")) ||
                (path == paths::kIngestEvents && caller.perms.MayIngest("events")) ||
                (path == paths::kIngestK8sWatch && caller.perms.MayIngest("k8s-watch")) ||
                (path == paths::kIngestAwsCloudTrail && caller.perms.MayIngest("aws-cloudtrail")) ||
                (path == paths::kIngestGcpAudit && caller.perms.MayIngest("gcp-audit")) ||
                (path == paths::kIngestAzureActivity && caller.perms.MayIngest("azure-activity"));
    }
    if (!allowed) {
      if (!caller.authenticated()) {
        metrics_.Add("annals_http_denied_total", "reason", "unauthenticated");
        NoteDenial(req, path, caller, "unauthenticated");
        return respond(Unauthenticated("authentication required (" + auth::RoleNames(need) + " role)"));
      }
      metrics_.Add("annals_http_denied_total", "reason", "forbidden");
      NoteDenial(req, path, caller, "forbidden");
      return respond(ErrorResponse(403, caller.user + " (" + caller.method + ") lacks the " +
                                            auth::RoleNames(need) + " role"));
    }
  }
  const auth::Permissions& perms = caller.perms;
  if (limiter_ && limiter_->enabled() && path != paths::kHealthz && path != paths::kReadyz) {
    std::string key = caller.user.empty() ? "addr:" + req.remote : "user:" + caller.user;
    auto v = limiter_->Acquire(key);
    if (v != auth::Limiter::Verdict::kOk) {
      const bool rate = v == auth::Limiter::Verdict::kRate;
      metrics_.Add("annals_http_denied_total", "reason", rate ? "rate" : "inflight");
      NoteDenial(req, path, caller, rate ? "rate" : "inflight");
      HttpResponse r = ErrorResponse(429, rate ? "too many requests from this caller"
                                               : "too many requests in flight from this caller");
      r.headers.emplace_back("Retry-After", "1");
      return respond(std::move(r));
    }
    respond = [limiter = limiter_, key = std::move(key), inner = std::move(respond)](HttpResponse r) {
      limiter->Release(key);
      inner(std::move(r));
    };
  }

  if (path.starts_with("/v1/ingest/")) {
    if (req.method != "POST") return respond(ErrorResponse(405, "use POST"));
    // The cluster this request's events are filed under: the caller's
    // credentials' if they name one (a ?cluster= may only repeat it), else
    // ?cluster=, else the server's --cluster.
    const std::string asked = StrParam(t, "cluster");
    if (!caller.perms.cluster.empty() && !asked.empty() && asked != caller.perms.cluster)
      return respond(ErrorResponse(403, caller.user + " ingests for cluster " + caller.perms.cluster + ", not " + asked));
    if (!asked.empty() && !auth::ValidClusterName(asked))
      return respond(ErrorResponse(400, "cluster must be a name of 1 to 253 printable characters"));
    req.cluster = !caller.perms.cluster.empty() ? caller.perms.cluster : !asked.empty() ? asked : default_cluster_;
    if (path == paths::kIngestEvents)
      return IngestEvents(std::move(req), authz_ ? &caller.perms : nullptr, std::move(respond));
    if (path == paths::kIngestK8sAudit) return IngestK8sAudit(std::move(req), std::move(respond));
    if (path == paths::kIngestK8sWatch) return IngestK8sWatch(std::move(req), std::move(respond));
    if (path == paths::kIngestAwsCloudTrail)
      return IngestCloud(std::move(req), ingest::CloudFormat::kAwsCloudTrail, std::move(respond));
    if (path == paths::kIngestGcpAudit)
      return IngestCloud(std::move(req), ingest::CloudFormat::kGcpAudit, std::move(respond));
    if (path == paths::kIngestAzureActivity)
      return IngestCloud(std::move(req), ingest::CloudFormat::kAzureActivity, std::move(respond));
    return respond(ErrorResponse(404, "no such ingest endpoint: " + path));
  }
  // The questions: answered, then (with auth on) recorded before the answer leaves.
  const bool question = path == paths::kEnrichFlows || path == paths::kState ||
                        path.starts_with(paths::kPodsByIpPrefix) || path == paths::kHistory ||
                        path == paths::kEvents || path == paths::kClusters;
  if (question || path == paths::kReadyz) {
    const Readiness r = readiness_ ? readiness_() : Readiness{};
    if (!r.ready) {
      json p{{"applied", r.applied}, {"target", r.target}, {"entries_per_second", r.entries_per_second},
             {"rebuilding_index", r.rebuilding_index}};
      if (r.entries_per_second > 0 && r.target > r.applied)
        p["eta_seconds"] = static_cast<double>(r.target - r.applied) / r.entries_per_second;
      HttpResponse resp = ErrorResponse(503, "catching up with the log: " + std::to_string(r.applied) + " of " +
                                                 std::to_string(r.target) + " entries projected");
      auto body = json::parse(resp.body, nullptr, false);
      if (body.is_object()) {
        body["progress"] = p;
        resp.body = body.dump() + "\n";
      }
      resp.headers.emplace_back("Retry-After", "1");
      return respond(std::move(resp));
    }
  }
  if (path == paths::kSealed) {
    if (!get) return respond(ErrorResponse(405, "use GET"));
    return Reveal(req, t, caller, std::move(respond));
  }
  if (path == paths::kErase) {
    if (req.method != "POST") return respond(ErrorResponse(405, "use POST"));
    return Erase(req, caller, std::move(respond));
  }
  size_t count = 0;
  std::optional<HttpResponse> answer;
  if (question) {
    if (Status f = CheckFlags(t); !f.ok()) return respond(ErrorResponse(f));
  }
  if (path == paths::kEnrichFlows) {
    if (req.method != "POST") return respond(ErrorResponse(405, "use POST"));
    answer = EnrichFlows(req, StrParam(t, "cluster"), perms, &count);
  } else if (!get) {
    return respond(ErrorResponse(405, "use GET"));
  } else if (path == paths::kState) {
    answer = StateAt(t, perms, &count);
  } else if (path.starts_with(paths::kPodsByIpPrefix)) {
    // Clients may percent-encode an IPv6 address's colons (client::UrlEncode does).
    auto ip = PercentDecode(std::string_view(path).substr(std::string_view(paths::kPodsByIpPrefix).size()));
    if (!ip.ok()) return respond(ErrorResponse(ip.status()));
    answer = PodByIp(*ip, t, perms, &count);
  } else if (path == paths::kHistory) {
    answer = History(t, perms, &count);
  } else if (path == paths::kEvents) {
    answer = Events(t, perms, &count);
  } else if (path == paths::kClusters) {
    if (!questions_) return respond(ErrorResponse(503, "projections are not enabled on this server"));
    json j = questions_->Clusters();
    count = j["clusters"].size();
    answer = JsonResponse(j);
  } else if (path == paths::kWatch) {
    return Watch(req, t, caller, std::move(respond));
  }
  if (answer) {
    // Damage found while answering (a cold object unreadable) makes the
    // projection not ready: the answer may lack what could not be read.
    if (readiness_ && !readiness_().ready) {
      HttpResponse resp = ErrorResponse(503, "the projection is being rebuilt from the log");
      resp.headers.emplace_back("Retry-After", "1");
      return respond(std::move(resp));
    }
    if (!authz_) return respond(std::move(*answer));
    return AuditReadAndRespond(req, caller, count, std::move(*answer), std::move(respond));
  }
  if (path == paths::kCheckpoint) return respond(Checkpoint());
  if (path.starts_with(paths::kTilePrefix))
    return respond(Tile(std::string_view(path).substr(std::string_view(paths::kLogRoot).size())));
  if (path.starts_with(paths::kEntriesPrefix))
    return respond(Entry(std::string_view(path).substr(std::string_view(paths::kEntriesPrefix).size()), t));
  if (path == paths::kInclusionProof) return respond(InclusionProof(t));
  if (path == paths::kConsistencyProof) return respond(ConsistencyProof(t));
  if (path == paths::kWitnesses) {
    HttpResponse r;
    r.content_type = "application/json";
    r.body = witnesses_ ? witnesses_() : "{\"policy\":false,\"witnesses\":[]}\n";
    return respond(std::move(r));
  }
  if (path == paths::kHealthz) {
    // A ledger that refuses appends after a storage failure recovers only
    // by reopening: fail the liveness probe so that it is restarted.
    if (Status w = ledger_->WriteError(); !w.ok())
      return respond(ErrorResponse(503, "ledger refuses appends until restarted: " + w.message()));
    return respond(HttpResponse{200, "text/plain", "ok\n", {}, {}});
  }
  if (path == paths::kReadyz) {
    if (readiness_) {
      const Readiness r = readiness_();
      if (!r.ingest_ready) {
        // Ingest is held (or, if the catch-up failed, refused) until the
        // dedup index knows every event of the log.
        HttpResponse resp = ErrorResponse(
            503, !r.ingest.empty() ? r.ingest
                                   : "the dedup index is catching up with the log: " + std::to_string(r.dedup_applied) +
                                         " of " + std::to_string(r.dedup_target) + " entries; ingest waits for it");
        auto body = json::parse(resp.body, nullptr, false);
        if (body.is_object()) {
          body["progress"] = json{{"dedup_applied", r.dedup_applied}, {"dedup_target", r.dedup_target}};
          resp.body = body.dump() + "\n";
        }
        resp.headers.emplace_back("Retry-After", "1");
        return respond(std::move(resp));
      }
      if (!r.storage.empty()) {
        HttpResponse resp = ErrorResponse(503, r.storage);
        resp.headers.emplace_back("Retry-After", "5");
        return respond(std::move(resp));
      }
    }
    return respond(HttpResponse{200, "text/plain", "ready\n", {}, {}});
  }
  if (path == paths::kMetrics) return respond(MetricsPage());
  if (path == paths::kUi || path.starts_with(paths::kUiRoot)) return respond(Console(req, path));
  respond(ErrorResponse(404, "not found: " + path));
}

HttpResponse Api::Console(const HttpRequest& req, std::string_view path) {
  HttpResponse r;
  if (path == paths::kUi) {
    r.status = 308;
    r.content_type = "text/plain";
    r.body = "/ui/\n";
    r.headers.emplace_back("Location", "/ui/");
    return r;
  }
  if (path.starts_with(paths::kUiAssetsPrefix)) {
    const ui::Asset* a = ui::FindAsset(path.substr(std::string_view(paths::kUiAssetsPrefix).size()));
    if (!a || a->path == "index.html") return ErrorResponse(404, "no such console file: " + std::string(path));
    r.headers.emplace_back("ETag", std::string(a->etag));
    if (req.Header("If-None-Match") == a->etag) {
      r.status = 304;
    } else {
      r.content_type = std::string(a->content_type);
      r.body = std::string(a->body);
    }
  } else {
    r.content_type = "text/html; charset=utf-8";
    r.body = ui::RenderPage(ledger_->signer().VerifierKey());
  }
  // Revalidated on every load: a new binary's page never runs with the old one's scripts.
  r.headers.emplace_back("Cache-Control", "no-cache");
  for (const auto& [name, value] : ui::SecurityHeaders()) r.headers.emplace_back(name, value);
  return r;
}

StatusOr<Hash> Api::NamedCommitment(const std::string& commitment, const std::string& index_text,
                                    const std::string& path, std::string* text, Hash* stored) const {
  if (!commitment.empty()) {
    if (!index_text.empty() || !path.empty())
      return InvalidArgumentError("name a value by commitment, or by index and path, not both");
    *text = commitment;
    return redact::ParseCommitment(commitment);
  }
  auto index = ParseDecimal(index_text);
  if (!index || path.empty()) return InvalidArgumentError("name a value by commitment=C, or by index=N and path=P");
  if (*index >= ledger_->DurableSize()) return NotFoundError("no entry " + index_text);
  ASSIGN_OR_RETURN(std::string raw, ledger_->ReadEntry(*index));
  ASSIGN_OR_RETURN(auto dec, ledger::DecodeEntry(raw));
  // Only an entry redacted here holds commitments of its own (another may
  // hold a copy of one, as text).
  if (dec.meta.find("\"redacted\":{") == std::string_view::npos)
    return InvalidArgumentError("entry " + index_text + " was not redacted");
  std::string blob;
  ASSIGN_OR_RETURN(std::string_view payload, ledger_->PayloadOf(dec, &blob));
  if (stored) *stored = Sha256(payload);
  json doc = json::parse(payload, nullptr, false);
  if (doc.is_discarded()) return InvalidArgumentError("entry " + index_text + " is not JSON");
  json::json_pointer ptr;
  try {
    ptr = json::json_pointer(path);
  } catch (const json::exception&) {
    return InvalidArgumentError("path is not a JSON Pointer (RFC 6901): " + path);
  }
  if (!doc.contains(ptr)) return NotFoundError("entry " + index_text + " has nothing at " + path);
  const json& v = doc.at(ptr);
  if (!v.is_string()) return InvalidArgumentError("entry " + index_text + " holds no commitment at " + path);
  *text = v.get<std::string>();
  auto mac = redact::ParseCommitment(*text);
  if (!mac.ok()) return InvalidArgumentError("entry " + index_text + " holds no commitment at " + path);
  return mac;
}

void Api::Reveal(const HttpRequest& req, const Target& t, const auth::Caller& caller, Responder respond) {
  if (!sealed_) return respond(ErrorResponse(404, "redaction is off on this server"));
  std::string commitment;
  auto mac = NamedCommitment(StrParam(t, "commitment"), StrParam(t, "index"), StrParam(t, "path"), &commitment,
                             nullptr);
  if (!mac.ok()) return respond(ErrorResponse(mac.status()));
  auto opened = sealed_->Get(*mac);
  if (!opened.ok()) return respond(ErrorResponse(opened.status()));
  json j{{"commitment", commitment},
         {"value", opened->value},
         {"salt", Base64Encode(std::string_view(reinterpret_cast<const char*>(opened->salt.data()), 32))},
         {"hmac", "HMAC-SHA256(key = salt, message = value)"}};
  if (auto idx = ParseDecimal(StrParam(t, "index"))) {
    j["index"] = *idx;
    j["path"] = StrParam(t, "path");
  }
  HttpResponse r;
  r.content_type = "application/json";
  r.body = j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
  r.headers.emplace_back("Cache-Control", "no-store");
  if (!authz_) return respond(std::move(r));
  AuditReadAndRespond(req, caller, 1, std::move(r), std::move(respond));
}

void Api::Erase(const HttpRequest& req, const auth::Caller& caller, Responder respond) {
  if (!sealed_) return respond(ErrorResponse(404, "redaction is off on this server"));
  json body = json::parse(req.body, nullptr, false);
  if (!body.is_object()) return respond(ErrorResponse(400, "the body must be a JSON object"));
  auto str = [&](const char* k) -> std::string {
    if (!body.contains(k)) return "";
    const json& v = body[k];
    if (v.is_string()) return v.get<std::string>();
    if (v.is_number_unsigned()) return std::to_string(v.get<uint64_t>());
    return "\x01";  // neither: refused below
  };
  const std::string reason = str("reason");
  if (reason.empty() || reason == "\x01") return respond(ErrorResponse(400, "an erasure needs a reason"));
  // By entry and path: the erasure also forgets the digest of the event as
  // received (kept to recognise retries), which would otherwise let
  // guesses of the value be tested against it.
  if (str("index").empty() || str("path").empty())
    return respond(ErrorResponse(400, "name the value to erase by index and path"));
  std::string commitment;
  Hash stored{};
  auto mac = NamedCommitment("", str("index"), str("path"), &commitment, &stored);
  if (!mac.ok()) return respond(ErrorResponse(mac.status()));
  // Refused before anything is appended when there is nothing to erase.
  if (auto opened = sealed_->Get(*mac); !opened.ok()) return respond(ErrorResponse(opened.status()));
  const std::string now = ingest::NowRfc3339();
  json rec{{"time", now},     {"user", caller.user},     {"auth", caller.method}, {"remote", req.remote},
           {"commitment", commitment}, {"reason", reason}};
  if (auto idx = ParseDecimal(str("index"))) {
    rec["index"] = *idx;
    rec["path"] = str("path");
  }
  json meta{{"v", 1}, {"src", "annals"}, {"rt", now}, {"ct", "application/json"}, {"type", "annals.erasure"},
            {"erasure", {{"commitment", commitment}, {"user", caller.user}}}};
  auto payload = std::make_shared<std::string>(rec.dump(-1, ' ', false, json::error_handler_t::replace));
  std::vector<ingest::IngestItem> items;
  items.push_back({meta.dump(-1, ' ', false, json::error_handler_t::replace), *payload, ""});
  // The record first: a crash after it and before the deletion leaves a
  // value to erase again, never a deletion nobody can account for.
  auto r = ingestor_->SubmitAndWait("annals", std::move(items));
  if (!r.ok()) return respond(ErrorResponse(503, "cannot record the erasure in the ledger: " + r.status().message()));
  const uint64_t entry = static_cast<uint64_t>(r->first_index);
  if (Status s = sealed_->Erase(*mac, entry, stored); !s.ok()) return respond(ErrorResponse(s));
  metrics_.Add("annals_sealed_erased_total", "result", "erased");
  HttpResponse out;
  out.content_type = "application/json";
  out.body = json{{"erased", commitment}, {"entry", entry}}.dump() + "\n";
  respond(std::move(out));
}

void Api::NoteDenial(const HttpRequest& req, std::string_view path, const auth::Caller& caller,
                     const char* reason) {
  if (!denials_) return;
  auth::Denial d;
  d.user = caller.user;
  d.method = caller.method.empty() ? "none" : caller.method;
  d.remote = req.remote;
  d.reason = reason;
  d.endpoint = EndpointClass(path);
  d.target = req.method + " " + req.target;
  denials_->Note(d);
}

void Api::AuditReadAndRespond(const HttpRequest& req, const auth::Caller& caller, size_t count,
                              HttpResponse answer, Responder respond) {
  const std::string now = ingest::NowRfc3339();
  json rec{{"time", now},
           {"user", caller.user},
           {"groups", caller.groups},
           {"auth", caller.method},
           {"remote", req.remote},
           {"method", req.method},
           {"target", req.target},
           {"status", answer.status},
           {"count", count}};
  if (req.method == "POST") rec["body_sha256"] = HexEncode(HashBytes(Sha256(req.body)));
  auto payload = std::make_shared<std::string>(rec.dump(-1, ' ', false, json::error_handler_t::replace));
  json meta{{"v", 1}, {"src", "annals"}, {"rt", now}, {"ct", "application/json"}, {"type", "annals.read"},
            {"read", {{"user", caller.user}, {"target", req.target}, {"count", count}}}};
  std::string meta_text = meta.dump(-1, ' ', false, json::error_handler_t::replace);
  if (meta_text.size() > 4096) {  // an enormous query string: the payload keeps it whole
    meta["read"].erase("target");
    meta_text = meta.dump(-1, ' ', false, json::error_handler_t::replace);
  }
  std::vector<ingest::IngestItem> items;
  items.push_back({std::move(meta_text), *payload, ""});
  auto shared = std::make_shared<HttpResponse>(std::move(answer));
  ingestor_->Submit("annals", std::move(items),
                    [this, payload, shared, respond](StatusOr<ingest::IngestResult> r) {
                      if (!r.ok()) {
                        metrics_.Add("annals_self_audit_total", "result", "failed");
                        return respond(ErrorResponse(503, "cannot record this read in the ledger: " +
                                                              r.status().message()));
                      }
                      metrics_.Add("annals_self_audit_total", "result", "recorded");
                      respond(std::move(*shared));
                    });
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

HttpResponse Api::Entry(std::string_view index_text, const Target& t) {
  auto index = ParseDecimal(index_text);
  if (!index) return ErrorResponse(400, "entry index is not a decimal integer");
  bool raw_payload = false;
  if (const std::string* p = t.Param("payload")) {
    if (*p != "base64") return ErrorResponse(400, "payload must be base64");
    raw_payload = true;
  }
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
    std::string blob;
    auto payload = ledger_->PayloadOf(*dec, &blob);
    if (!payload.ok()) return ErrorResponse(payload.status());
    if (dec->external) j["payload_sha256"] = HexEncode(HashBytes(dec->payload_digest));
    json parsed = raw_payload ? json(json::value_t::discarded) : json::parse(*payload, nullptr, false);
    if (!parsed.is_discarded()) j["event"] = std::move(parsed);
    else j["payload_base64"] = Base64Encode(*payload);
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

void Api::IngestLines(HttpRequest&& req, const std::string& source, const LineParser& parse,
                      Responder respond) {
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
    auto item = parse(line, now, "line " + std::to_string(line_no));
    if (!item.ok()) {
      metrics_.Add("annals_events_rejected_total", "source", source, lines.size());
      return respond(ErrorResponse(item.status()));
    }
    items.push_back(std::move(*item));
  }
  SubmitAndRespond(std::move(body), source, std::move(items), req.cluster, std::move(respond));
}

void Api::IngestEvents(HttpRequest&& req, const auth::Permissions* perms, Responder respond) {
  IngestLines(std::move(req), "events",
              [perms](std::string_view line, const std::string& now,
                      const std::string& what) -> StatusOr<ingest::IngestItem> {
                ASSIGN_OR_RETURN(ingest::IngestItem item, ingest::ClassifyJsonLine(line, "events", now, what));
                // A cloud record posted here is filed under its format's
                // source: only a caller who may ingest that source may.
                if (perms) {
                  for (auto f : {ingest::CloudFormat::kAwsCloudTrail, ingest::CloudFormat::kGcpAudit,
                                 ingest::CloudFormat::kAzureActivity}) {
                    const std::string src(ingest::CloudSourceName(f));
                    if (item.meta.find("\"src\":\"" + src + "\"") != std::string::npos && !perms->MayIngest(src))
                      return PermissionDeniedError(what + ": a " + src + " record needs the ingest:" + src + " role");
                  }
                }
                return item;
              },
              std::move(respond));
}

void Api::IngestK8sAudit(HttpRequest&& req, Responder respond) {
  const std::string source = "k8s-audit";
  auto body = std::make_shared<std::string>(std::move(req.body));
  const int64_t t0 = ThreadCpuNanos();
  auto events = ingest::ParseAuditBody(*body, body->capacity(), ingestor_->redactor());
  if (!events.ok()) {
    metrics_.Add("annals_events_rejected_total", "source", source);
    return respond(ErrorResponse(events.status()));
  }
  const int64_t t1 = ThreadCpuNanos();
  const std::string now = ingest::NowRfc3339();
  std::vector<ingest::IngestItem> items;
  items.reserve(events->size());
  for (const auto& ev : *events)
    items.push_back(ingest::AuditItem(ev, source, now));
  const int64_t t2 = ThreadCpuNanos();
  metrics_.AddNanos("annals_ingest_cpu_seconds_total", "stage", "parse", t1 - t0);
  metrics_.AddNanos("annals_ingest_cpu_seconds_total", "stage", "meta", t2 - t1);
  SubmitAndRespond(std::move(body), source, std::move(items), req.cluster, std::move(respond));
}

// Watch records from a remote collector (`annals collect --url`): JSON
// lines as ingest::WatchRecordLine writes them. All or nothing.
void Api::IngestK8sWatch(HttpRequest&& req, Responder respond) {
  IngestLines(std::move(req), "k8s-watch",
              [](std::string_view line, const std::string& now,
                 const std::string& what) -> StatusOr<ingest::IngestItem> {
                ASSIGN_OR_RETURN(auto rec, ingest::ParseWatchRecordLine(line, what));
                return ingest::WatchItem(rec, "k8s-watch", now);
              },
              std::move(respond));
}

void Api::IngestCloud(HttpRequest&& req, ingest::CloudFormat format, Responder respond) {
  const std::string source(ingest::CloudSourceName(format));
  auto reject = [&](const Status& st) {
    metrics_.Add("annals_events_rejected_total", "source", source);
    respond(ErrorResponse(st));
  };
  auto body = std::make_shared<std::string>(std::move(req.body));
  const std::string encoding = req.Header("Content-Encoding");
  if (!encoding.empty() && encoding != "gzip" && encoding != "identity")
    return respond(ErrorResponse(415, "Content-Encoding \"" + encoding + "\" is not supported: use gzip or none"));
  // CloudTrail writes its files gzipped: such a file is taken as it is,
  // whether or not the request says Content-Encoding: gzip.
  if (encoding == "gzip" || ingest::IsGzip(*body)) {
    auto inflated = std::make_shared<std::string>();
    if (Status st = ingest::Gunzip(*body, kMaxInflatedBody, inflated.get()); !st.ok()) return reject(st);
    inflated->reserve(inflated->size() + json_util::kJsonPadding);
    body = std::move(inflated);
  }
  const int64_t t0 = ThreadCpuNanos();
  auto records = ingest::ParseCloudBody(format, *body, body->capacity());
  if (!records.ok()) return reject(records.status());
  const int64_t t1 = ThreadCpuNanos();
  const std::string now = ingest::NowRfc3339();
  std::vector<ingest::IngestItem> items;
  items.reserve(records->size());
  for (const auto& r : *records) items.push_back(ingest::CloudItem(r, source, now));
  metrics_.AddNanos("annals_ingest_cpu_seconds_total", "stage", "parse", t1 - t0);
  metrics_.AddNanos("annals_ingest_cpu_seconds_total", "stage", "meta", ThreadCpuNanos() - t1);
  SubmitAndRespond(std::move(body), source, std::move(items), req.cluster, std::move(respond));
}

void Api::SubmitAndRespond(std::shared_ptr<std::string> body, std::string source,
                           std::vector<ingest::IngestItem> items, const std::string& cluster, Responder respond) {
  for (auto& item : items)
    if (Status st = ingest::BindCluster(cluster, &item); !st.ok()) return respond(ErrorResponse(st));
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

bool WantProof(const Target& t) {
  const std::string* v = t.Param("proof");
  return v && (*v == "true" || *v == "1");
}

}  // namespace

#define ANNALS_NEED_QUESTIONS() \
  if (!questions_) return ErrorResponse(503, "projections are not enabled on this server")

HttpResponse Api::StateAt(const Target& t, const auth::Permissions& p, size_t* count) {
  ANNALS_NEED_QUESTIONS();
  auto at = TimeParam(t, "at", NowMicros());
  if (!at.ok()) return ErrorResponse(at.status());
  auto ns = ScopedNamespace(p, StrParam(t, "namespace"));
  if (!ns.ok()) return ErrorResponse(ns.status());
  state::StateQuery q;
  q.at = *at;
  q.kind = StrParam(t, "kind");
  q.namespace_ = *ns;
  q.selector = StrParam(t, "selector");
  q.cluster = StrParam(t, "cluster");
  if (auto* l = t.Param("limit")) {
    auto n = ParseDecimal(*l);
    if (!n || *n == 0 || *n > 100000) return ErrorResponse(400, "limit must be 1..100000");
    q.limit = *n;
  }
  q.cursor = StrParam(t, "cursor");
  if (auto* b = t.Param("bodies")) {
    if (*b != "true" && *b != "false") return ErrorResponse(400, "bodies must be true or false");
    q.bodies = *b == "true";
  }
  std::vector<uint64_t> evidence;
  auto body = questions_->State(q, WantProof(t) ? &evidence : nullptr);
  if (!body.ok()) return ErrorResponse(body.status());
  json parsed;
  if (p.Limited()) {
    // Belt and braces: keep only objects of namespaces the caller may read.
    parsed = json::parse(*body, nullptr, false);
    if (parsed.is_discarded()) return ErrorResponse(500, "state answer is not JSON");
    json kept = json::array();
    evidence.clear();
    for (auto& o : parsed["objects"])
      if (p.MayReadNamespace(o.value("namespace", ""))) {
        evidence.push_back(o.value("index", uint64_t{0}));
        kept.push_back(std::move(o));
      }
    parsed["count"] = kept.size();
    parsed["objects"] = std::move(kept);
    *body = parsed.dump(-1, ' ', false, json::error_handler_t::replace);
    *count = parsed["count"].get<size_t>();
  } else {
    // The count follows the objects (nothing after it can hold "count":);
    // no need to parse it all.
    size_t pos = body->rfind("\"count\":");
    if (pos != std::string::npos) *count = ParseDecimal(std::string_view(*body).substr(
        pos + 8, body->find(',', pos) - pos - 8)).value_or(0);
  }
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

HttpResponse Api::PodByIp(std::string_view ip, const Target& t, const auth::Permissions& p,
                          size_t* count) {
  ANNALS_NEED_QUESTIONS();
  auto at = TimeParam(t, "at", NowMicros());
  if (!at.ok()) return ErrorResponse(at.status());
  json nearest;
  auto j = questions_->WhoIs(ip, *at, &nearest, StrParam(t, "cluster"));
  if (p.Limited()) {
    // Another namespace's pod is, to this caller, no pod at all.
    for (const char* side : {"before", "after"})
      if (nearest.is_object() && nearest[side].is_object() &&
          !p.MayReadNamespace(nearest[side].value("namespace", "")))
        nearest[side] = nullptr;
    if (j.ok()) {
      // Each cluster's pod, kept if readable; the first kept answers.
      std::vector<json> kept;
      json others = j->contains("other_clusters") ? (*j)["other_clusters"] : json::array();
      j->erase("other_clusters");
      if (p.MayReadNamespace((*j)["pod"].value("namespace", ""))) kept.push_back(std::move(*j));
      for (auto& a : others)
        if (p.MayReadNamespace(a["pod"].value("namespace", ""))) kept.push_back(std::move(a));
      if (kept.empty()) {
        j = NotFoundError("no pod of namespaces you may read held " + std::string(ip) + " at that time");
      } else {
        json answer = std::move(kept[0]);
        std::vector<uint64_t> evidence;
        for (size_t i = 0; i < kept.size(); ++i) {
          for (const auto& e : kept[i]["evidence"]) evidence.push_back(e.get<uint64_t>());
          if (i > 0) answer["other_clusters"].push_back(std::move(kept[i]));
        }
        std::sort(evidence.begin(), evidence.end());
        evidence.erase(std::unique(evidence.begin(), evidence.end()), evidence.end());
        answer["evidence"] = evidence;
        *j = std::move(answer);
      }
    }
  }
  if (!j.ok()) {
    HttpResponse r = ErrorResponse(j.status());
    if (j.status().code() == StatusCode::kNotFound) {
      json e{{"error", j.status().message()}, {"nearest", nearest}};
      r.body = e.dump() + "\n";
    }
    return r;
  }
  if (WantProof(t)) (*j)["receipt"] = questions_->Receipt((*j)["evidence"].get<std::vector<uint64_t>>());
  *count = 1;
  return JsonResponse(*j);
}

HttpResponse Api::History(const Target& t, const auth::Permissions& p, size_t* count) {
  ANNALS_NEED_QUESTIONS();
  state::HistoryQuery q;
  q.kind = StrParam(t, "kind");
  auto ns = ScopedNamespace(p, StrParam(t, "namespace"));
  if (!ns.ok()) return ErrorResponse(ns.status());
  q.namespace_ = *ns;
  q.name = StrParam(t, "name");
  q.cluster = StrParam(t, "cluster");
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
  *count = KeepReadableEvents(p, &*j);
  if (WantProof(t)) {
    std::vector<uint64_t> ev;
    for (const auto& e : (*j)["events"]) ev.push_back(e["index"].get<uint64_t>());
    (*j)["receipt"] = questions_->Receipt(ev);
  }
  return JsonResponse(*j);
}

HttpResponse Api::Events(const Target& t, const auth::Permissions& p, size_t* count) {
  ANNALS_NEED_QUESTIONS();
  state::EventQuery q;
  auto from = TimeParam(t, "from", std::numeric_limits<int64_t>::min());
  if (!from.ok()) return ErrorResponse(from.status());
  auto to = TimeParam(t, "to", kNever);
  if (!to.ok()) return ErrorResponse(to.status());
  q.from = *from;
  q.to = *to;
  // The normalized view's names (docs/sources.md) are the same filters:
  // actor is user, action is verb, target is name.
  for (const auto& [field, alias, out] : {std::tuple{"user", "actor", &q.user}, std::tuple{"verb", "action", &q.verb},
                                          std::tuple{"name", "target", &q.name}}) {
    const std::string a = StrParam(t, field), b = StrParam(t, alias);
    if (!a.empty() && !b.empty() && a != b)
      return ErrorResponse(400, std::string(field) + " and " + alias + " name the same field: give one");
    *out = a.empty() ? b : a;
  }
  q.resource = StrParam(t, "resource");
  q.service = StrParam(t, "service");
  q.cloud = StrParam(t, "cloud");
  q.account = StrParam(t, "account");
  q.cluster = StrParam(t, "cluster");
  q.result = StrParam(t, "result");
  auto ns = ScopedNamespace(p, StrParam(t, "namespace"));
  if (!ns.ok()) return ErrorResponse(ns.status());
  q.namespace_ = *ns;
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
  if (j->contains("events")) {
    *count = KeepReadableEvents(p, &*j);
    if (WantProof(t)) {
      std::vector<uint64_t> ev;
      for (const auto& e : (*j)["events"]) ev.push_back(e["index"].get<uint64_t>());
      (*j)["receipt"] = questions_->Receipt(ev);
    }
  } else if (j->contains("groups")) {
    *count = (*j)["groups"].size();
  }
  if (StrParam(t, "format") == "ocsf") {
    if (!j->contains("events")) return ErrorResponse(400, "format=ocsf answers events, not group_by counts");
    for (auto& e : (*j)["events"]) e = state::OcsfApiActivity(e);
  }
  if (StrParam(t, "format") == "jsonl" && j->contains("events")) {
    HttpResponse r;
    r.content_type = "application/x-ndjson";
    for (const auto& e : (*j)["events"]) r.body += e.dump() + "\n";
    return r;
  }
  return JsonResponse(*j);
}

HttpResponse Api::EnrichFlows(const HttpRequest& req, const std::string& cluster, const auth::Permissions& p,
                              size_t* count) {
  ANNALS_NEED_QUESTIONS();
  HttpResponse r;
  r.content_type = "application/x-ndjson";
  if (!p.Limited()) {
    // The fast path: the whole body under one hold of the store's lock.
    Status s = questions_->EnrichFlows(req.body, &r.body, count, cluster);
    if (!s.ok()) return ErrorResponse(400, s.message());
    return r;
  }
  for (auto [line, line_no] : ingest::SplitLines(req.body)) {
    auto out = questions_->EnrichFlow(line, cluster);
    if (!out.ok())
      return ErrorResponse(400, "line " + std::to_string(line_no) + ": " + out.status().message());
    {
      // A workload in a namespace the caller may not read stays unnamed.
      json j = json::parse(*out, nullptr, false);
      if (j.is_discarded()) return ErrorResponse(500, "enriched flow is not JSON");
      for (const char* side : {"src_workload", "dst_workload"})
        if (j[side].is_object() && !p.MayReadNamespace(j[side].value("namespace", ""))) j[side] = nullptr;
      *out = j.dump(-1, ' ', false, json::error_handler_t::replace);
    }
    ++*count;
    r.body += *out;
    r.body += '\n';
  }
  return r;
}

void Api::Watch(const HttpRequest& req, const Target& t, const auth::Caller& caller, Responder respond) {
  if (!feed_) return respond(ErrorResponse(503, "subscriptions are not enabled on this server"));
  auto o = ParseWatchRequest(t, req, feed_->next(), ledger_->DurableSize());
  if (!o.ok()) return respond(ErrorResponse(o.status()));
  auto ns = ScopedNamespace(caller.perms, o->filter.namespace_);
  if (!ns.ok()) return respond(ErrorResponse(ns.status()));
  o->filter.namespace_ = *ns;
  auto session = std::make_shared<WatchSession>(feed_, &metrics_, std::move(*o));
  HttpResponse r;
  r.content_type = stream::kWatchContentType;
  r.headers.emplace_back("Cache-Control", "no-cache");
  r.headers.emplace_back("X-Accel-Buffering", "no");  // proxies: do not buffer the stream
  r.stream = [session](std::shared_ptr<ResponseStream> s) { session->Start(std::move(s)); };
  if (!authz_) return respond(std::move(r));
  AuditReadAndRespond(req, caller, 0, std::move(r), std::move(respond));
}

HttpResponse Api::MetricsPage() {
  metrics_.Set("annals_log_entries", ledger_->DurableSize());
  metrics_.Set("annals_tree_size", ledger_->IntegratedSize());
  metrics_.Set("annals_checkpoint_size", ledger_->CheckpointSize());
  // Ahead of annals_checkpoint_size while witnesses have not cosigned it.
  metrics_.Set("annals_checkpoint_signed_size", ledger_->SignedSize());
  // When the served checkpoint was published (Unix seconds): its age is
  // what the "checkpoint stale" alert watches (deploy/prometheus/).
  metrics_.SetDouble("annals_checkpoint_timestamp_seconds", ledger_->CheckpointTime());
  const ledger::ScrubReport scrub = ledger_->scrub_report();
  metrics_.SetCounter("annals_log_scrub_passes_total", scrub.passes);
  metrics_.Set("annals_log_scrub_entries", scrub.entries);
  metrics_.SetCounter("annals_log_scrub_tiles_repaired_total", scrub.tiles_repaired);
  metrics_.Set("annals_log_damaged", scrub.bad_entry >= 0 ? 1 : 0);
  // Segments on disk: plain ones (the open one and sealed ones waiting for
  // the compressor) and compressed ones, with what those held uncompressed.
  const auto segs = ledger_->SegmentFootprint();
  metrics_.Set("annals_log_plain_segments", segs.plain_segments);
  metrics_.Set("annals_log_plain_segment_bytes", segs.plain_bytes);
  metrics_.Set("annals_log_compressed_segments", segs.compressed_segments);
  metrics_.Set("annals_log_compressed_segment_bytes", segs.compressed_bytes);
  metrics_.Set("annals_log_compressed_segment_uncompressed_bytes", segs.compressed_image_bytes);
  metrics_.Set("annals_log_archived_only_segments", segs.archived_segments);
  if (readiness_) {
    const Readiness rd = readiness_();
    metrics_.Set("annals_projection_ready", rd.ready ? 1 : 0);
    metrics_.Set("annals_ingest_ready", rd.ingest_ready ? 1 : 0);
    metrics_.Set("annals_dedup_index_applied", rd.dedup_applied);
    metrics_.Set("annals_dedup_index_target", rd.dedup_target);
    metrics_.Set("annals_projection_applied", rd.applied);
    metrics_.Set("annals_projection_target", rd.target);
    metrics_.Set("annals_projection_rebuilding_index", rd.rebuilding_index ? 1 : 0);
    metrics_.Set("annals_state_cold_objects", rd.cold_objects);
    metrics_.Set("annals_state_cold_cache_bytes", rd.cold_cache_bytes);
    metrics_.SetCounter("annals_state_cold_loads_total", rd.cold_loads);
    metrics_.Set("annals_state_body_images", rd.body_images);
    metrics_.SetCounter("annals_state_bodies_from_images_total", rd.bodies_from_images);
    metrics_.SetCounter("annals_state_bodies_from_log_total", rd.bodies_from_log);
    metrics_.Set("annals_disk_free_bytes", rd.disk_free_bytes);
    metrics_.Set("annals_projection_unreadable_payloads", rd.unreadable_payloads);
    metrics_.Set("annals_disk_floor_bytes", rd.disk_floor_bytes);
    metrics_.Set("annals_disk_pending_index_bytes", rd.disk_pending_bytes);
    metrics_.Set("annals_disk_writes_refused", rd.storage.empty() ? 0 : 1);
  }
  if (index_work_) {
    for (const IndexWork& w : index_work_()) {
      metrics_.SetCounter("annals_index_background_cpu_seconds_total", "index", w.index, w.cpu_nanos, true);
      metrics_.SetCounter("annals_index_background_read_bytes_total", "index", w.index, w.bytes_read);
      metrics_.SetCounter("annals_index_background_written_bytes_total", "index", w.index, w.bytes_written);
    }
  }
  HttpResponse r;
  r.content_type = "text/plain; version=0.0.4";
  r.body = metrics_.Render();
  if (feed_) r.body += feed_->RenderMetrics();
  return r;
}

}  // namespace annals::api
