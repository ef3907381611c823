// Feeds arbitrary bytes to ingest::ParseAuditBody, the parser of webhook
// bodies (an audit EventList or one Event). It may reject anything, but must
// not crash, and what it accepts must be what the ledger stores verbatim:
// each event's raw bytes are a view into the input, carry no surrounding
// whitespace, and parse on their own as the same event (same auditID and
// stage), so a stored payload can never belong to another event's metadata.
// The same bytes in a buffer with room behind them (as the HTTP server
// hands bodies over: parsed in place, not copied) give the same answer.
// Given the redactor, the parse accepts the same and marks each event as
// the redactor's own look at its bytes would (Redactor::MayApply).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "ingest/k8s_audit.h"
#include "json/json_parse.h"
#include "redact/policy.h"
#include "redact/redactor.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  auto events = annals::ingest::ParseAuditBody(input);
  std::string roomy(input);
  roomy.reserve(size + annals::json_util::kJsonPadding);
  auto in_place = annals::ingest::ParseAuditBody(roomy, roomy.capacity());
  if (in_place.ok() != events.ok()) std::abort();
  if (!events.ok() && in_place.status().message() != events.status().message()) std::abort();
  if (events.ok()) {
    if (in_place->size() != events->size()) std::abort();
    for (size_t i = 0; i < events->size(); ++i) {
      const auto& a = (*events)[i];
      const auto& b = (*in_place)[i];
      if (a.raw != b.raw || a.audit_id != b.audit_id || a.stage != b.stage || a.user != b.user) std::abort();
      if (b.raw.data() < roomy.data() || b.raw.data() + b.raw.size() > roomy.data() + roomy.size())
        std::abort();  // in place: a view into the roomy copy
    }
  }
  // With the redactor's look folded into the key check: the same events
  // accepted, each marked as the redactor's look at its bytes says.
  static const annals::redact::Redactor* redactor = new annals::redact::Redactor(annals::redact::DefaultPolicy());
  auto looked = annals::ingest::ParseAuditBody(roomy, roomy.capacity(), redactor);
  if (looked.ok() != events.ok()) std::abort();
  if (looked.ok()) {
    if (looked->size() != events->size()) std::abort();
    for (const auto& ev : *looked)
      if (ev.may_redact != redactor->MayApply(ev.raw)) std::abort();
  }
  if (!events.ok()) {
    if (events.status().message().empty()) std::abort();  // a rejection names its reason
    return 0;
  }
  if (events->empty()) return 0;
  for (const auto& ev : *events) {
    const char* b = ev.raw.data();
    if (ev.raw.empty() || b < input.data() || b + ev.raw.size() > input.data() + input.size())
      std::abort();  // not a view into the body
    if (input.find(ev.raw) == std::string_view::npos) std::abort();
    const char first = ev.raw.front(), last = ev.raw.back();
    if (first != '{' || last != '}') std::abort();  // an object, trimmed
    if (ev.audit_id.empty() || ev.stage.empty()) std::abort();
    auto again = annals::ingest::ParseAuditEvent(ev.raw, "raw");
    if (!again.ok()) std::abort();
    if (again->audit_id != ev.audit_id || again->stage != ev.stage || again->raw != ev.raw)
      std::abort();
  }
  return 0;
}
