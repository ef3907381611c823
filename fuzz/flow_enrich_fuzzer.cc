// Feeds arbitrary request bodies to flow enrichment (POST /v1/enrich/flows),
// over a store that knows two pods (one IPv4, one IPv6) and a Service
// selecting them. EnrichFlows parses the lines where they lie in the body
// when simdjson's padding fits after them (the body here is exactly the
// input's bytes), and takes them through the lookup in prefetching batches.
// It may not crash; what it accepts must hold up: one answer line per input
// line, each a JSON object, equal to what EnrichFlow gives that line alone;
// what it refuses names the line.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include <simdjson.h>

#include "ingest/json_lines.h"
#include "json/json_parse.h"
#include "ingest/k8s_audit.h"
#include "state/questions.h"
#include "state/state_store.h"
#include "fuzz_check.h"


namespace {

using nlohmann::json;
using namespace annals;

void Apply(state::StateStore* store, uint64_t index, const std::string& resource, const json& obj) {
  const std::string t = "2024-03-01T10:00:00Z";
  json ev = {{"kind", "Event"},
             {"apiVersion", "audit.k8s.io/v1"},
             {"level", "RequestResponse"},
             {"auditID", "00000000-0000-4000-8000-00000000000" + std::to_string(index)},
             {"stage", "ResponseComplete"},
             {"requestURI", "/api/v1/namespaces/shop/" + resource},
             {"verb", "create"},
             {"user", {{"username", "admin"}}},
             {"objectRef", {{"resource", resource}, {"namespace", "shop"}, {"name", obj["metadata"]["name"]}}},
             {"responseStatus", {{"code", 201}}},
             {"responseObject", obj},
             {"requestReceivedTimestamp", t},
             {"stageTimestamp", t}};
  const std::string payload = ev.dump();
  auto parsed = ingest::ParseAuditEvent(payload, "seed event");
  CHECK(parsed.ok());
  CHECK(store->Apply(index, ingest::AuditMeta(*parsed, "k8s-audit", t), payload, nullptr).ok());
}

json Pod(const std::string& name, const std::string& ip) {
  return {{"kind", "Pod"},
          {"apiVersion", "v1"},
          {"metadata", {{"name", name}, {"namespace", "shop"}, {"uid", "uid-" + name}, {"labels", {{"app", "cart"}}}}},
          {"spec", {{"serviceAccountName", "cart-sa"}, {"nodeName", "kind-worker"}}},
          {"status", {{"phase", "Running"}, {"podIP", ip}, {"podIPs", {{{"ip", ip}}}}}}};
}

const state::Questions& Store() {
  static state::StateStore* store = [] {
    auto* s = new state::StateStore();
    Apply(s, 0, "pods", Pod("cart-1", "10.244.1.2"));
    Apply(s, 1, "pods", Pod("cart-3", "fd00::3"));
    Apply(s, 2, "services",
          {{"kind", "Service"},
           {"apiVersion", "v1"},
           {"metadata", {{"name", "cart"}, {"namespace", "shop"}, {"uid", "uid-svc"}}},
           {"spec", {{"selector", {{"app", "cart"}}}}}});
    return s;
  }();
  static state::Questions* questions = new state::Questions(nullptr, store, nullptr);
  return *questions;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const state::Questions& q = Store();
  // The body exactly as received: no byte after it is readable.
  std::string_view body(reinterpret_cast<const char*>(data), size);
  std::string out;
  size_t count = 0;
  Status s = q.EnrichFlows(body, &out, &count);
  const auto lines = ingest::SplitLines(body);
  if (!s.ok()) {
    CHECK(s.code() == StatusCode::kInvalidArgument);
    CHECK(s.message().rfind("line ", 0) == 0);
    return 0;
  }
  CHECK(count == lines.size());
  std::string want;
  for (auto [line, line_no] : lines) {
    auto one = q.EnrichFlow(line);
    CHECK(one.ok());
    // One JSON object whose own keys are unique (the flow's deeper objects
    // pass through as they came).
    simdjson::dom::element doc;
    CHECK(json_util::JsonParser().parse(one->data(), one->size()).get(doc) == simdjson::SUCCESS);
    CHECK(doc.is_object());
    CHECK(json_util::CheckUniqueMembers(doc, "enriched flow").ok());
    want += *one;
    want += '\n';
  }
  CHECK(out == want);
  return 0;
}
