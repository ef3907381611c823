// Parsing of Kubernetes audit events (audit.k8s.io/v1 and v1beta1) as the
// kube-apiserver sends them: an EventList from the webhook backend, one
// Event per line from the log backend. Keeps each event's original bytes
// and extracts the fields the ledger indexes. Thread-safe (per-thread
// parser).
#ifndef ANNALS_INGEST_K8S_AUDIT_H_
#define ANNALS_INGEST_K8S_AUDIT_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "ingest/ingestor.h"

namespace simdjson::dom {
class element;
}

namespace annals::ingest {

struct AuditEvent {
  std::string_view raw;  // the event's JSON exactly as received
  std::string audit_id;
  std::string stage;
  std::string level;
  std::string verb;
  std::string user;
  std::string resource;
  std::string subresource;
  std::string api_group;
  std::string namespace_;
  std::string name;
  int code = 0;  // responseStatus.code, 0 when absent
  std::string stage_timestamp;
  std::string source_ip;   // sourceIPs[0]
  std::string user_agent;
  // False when the parse found none of the redactor's triggers in it
  // (Redactor::MayApply on the parsed document): redaction skips it.
  bool may_redact = true;

  // "audit:<len(auditID)>:<auditID>/<stage>": the apiserver emits each
  // stage of a request once, so this pair names an event across webhook
  // retries (length-prefixed: no two pairs share a key). The Ingestor
  // deduplicates on this key together with the payload's digest.
  std::string DedupKey() const {
    const std::string n = std::to_string(audit_id.size());
    std::string k;
    k.reserve(8 + n.size() + audit_id.size() + stage.size());
    k.append("audit:").append(n).append(":").append(audit_id).append("/").append(stage);
    return k;
  }
};

// Is this object an audit Event? (kind "Event" or absent, apiVersion
// audit.k8s.io/* or absent, auditID and stage strings present.)
// `what` prefixes error messages ("item 3").
StatusOr<AuditEvent> ParseAuditEvent(std::string_view json, std::string_view what);

// Same, from an already parsed document whose text is `raw`.
StatusOr<AuditEvent> AuditEventFromDom(const simdjson::dom::element& doc, std::string_view raw,
                                       std::string_view what);

// A webhook body: an EventList or a single Event. All or nothing: the first
// bad item fails the whole body with a reason naming it.
// `readable`: how many bytes from body.data() may be read (a std::string's
// capacity); with json_util::kJsonPadding past the end the body is parsed
// where it is, not copied.
// `redactor`: each event's may_redact is its look at the parsed event
// (else true).
StatusOr<std::vector<AuditEvent>> ParseAuditBody(std::string_view body, size_t readable = 0,
                                                 const redact::Redactor* redactor = nullptr);

// The entry metadata for an audit event (docs/format/entry.md, version 2).
std::string AuditMeta(const AuditEvent& e, std::string_view source, std::string_view receive_time);
// The version 1 metadata the ingest wrote before (the indexed fields
// repeated in an "audit" object): logs written then hold it. Not written
// any more; the tests and apply_bench compare the readers on both.
std::string AuditMetaV1(const AuditEvent& e, std::string_view source, std::string_view receive_time);
// The ingest item for an event (meta, payload = e.raw, key = e.DedupKey()),
// the key built once for both.
IngestItem AuditItem(const AuditEvent& e, std::string_view source, std::string_view receive_time);

}  // namespace annals::ingest

#endif  // ANNALS_INGEST_K8S_AUDIT_H_
