// Facts about one Kubernetes object read from its JSON (an audit event's
// responseObject), as the state engine needs them. Pure, thread-safe.
#ifndef ANNALS_STATE_K8S_OBJECT_H_
#define ANNALS_STATE_K8S_OBJECT_H_

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <simdjson.h>

#include "common/status.h"
#include "common/time_util.h"

namespace annals::state {

// An IP address as 16 bytes (IPv4 mapped into ::ffff:0:0/96).
using IpKey = std::array<uint8_t, 16>;
std::optional<IpKey> ParseIp(std::string_view s);
std::string FormatIp(const IpKey& ip);

struct OwnerRef {
  std::string kind, name, uid;
  bool controller = false;
};

struct ObjectFacts {
  std::string kind, api_version, uid, name, namespace_, resource_version;
  bool deleting = false;           // metadata.deletionTimestamp set
  bool has_finalizers = false;
  int64_t grace_seconds = -1;      // metadata.deletionGracePeriodSeconds, -1 absent
  std::vector<OwnerRef> owners;
  std::vector<std::pair<std::string, std::string>> labels;
  std::string helm_release;        // meta.helm.sh/release-name annotation
  // Pods only.
  std::vector<IpKey> pod_ips;      // status.podIPs (or podIP)
  std::string phase, node_name, service_account;
  bool host_network = false;
  // Services only: spec.selector.
  std::vector<std::pair<std::string, std::string>> selector;
};

// Parses an object's JSON. NotFound if it has no metadata.uid. kind_hint
// stands in for a missing "kind" (items of a List carry none).
StatusOr<ObjectFacts> ReadObjectFacts(std::string_view object_json, std::string_view kind_hint = {});

// The facts of the object that is the top-level member `member` of the
// JSON object text event_json (an audit event's "responseObject"), found
// and read in one pass. *present says whether the member is there at all
// (NotFound if not; any value, null too, counts).
StatusOr<ObjectFacts> ReadMemberFacts(std::string_view event_json, std::string_view member, bool* present);

// The fields of a Kubernetes audit event that the state engine and the
// change feed read. Entry metadata version 1 repeated them in its "audit"
// block; version 2 leaves them to the payload, read here. Views into the
// thread's own parser for this (not json_util's shared one): valid until
// the thread's next ReadAuditFields.
struct AuditFields {
  std::string_view stage, verb, user, resource, subresource, api_group, namespace_, name, level;
  std::string_view time;  // stageTimestamp (timestamp for v1beta1)
  std::string_view ip;    // sourceIPs[0]
  std::string_view ua;    // userAgent, its first 256 bytes (not cutting a UTF-8 sequence)
  std::string_view as;    // impersonatedUser.username
  int64_t code = 0;       // responseStatus.code, 0 when absent
};
// The event's response object, when asked for: read in the same pass if
// the event is a write that succeeded (see WroteObject).
struct WrittenObject {
  bool present = false;  // the event has a responseObject (any value) and is such a write
  StatusOr<ObjectFacts> facts = NotFoundError("no response object");
};
// Reads the audit event text `event` (valid JSON, as stored) in one pass:
// each name's first occurrence counts, as the ingest's parse took it.
// DataLoss if it is not a JSON object. `written` (optional): the facts of
// the responseObject of a write that succeeded.
Status ReadAuditFields(std::string_view event, AuditFields* out, WrittenObject* written = nullptr);
// The same for an audit entry of either metadata version (`meta`, parsed):
// version 2 reads the payload (ReadAuditFields); version 1 takes the fields
// from its "audit" block (views into `meta`) and reads the payload only for
// who the request acted as and the written object. NotFound for a version
// 1 entry without its block: it is not read as an audit event.
Status ReadAuditEntry(simdjson::dom::element meta, std::string_view payload, AuditFields* out,
                      WrittenObject* written = nullptr);
// A ResponseComplete of create, update, patch or delete with a 2xx code:
// its responseObject is the version the write made.
bool WroteObject(std::string_view stage, std::string_view verb, int64_t code);

// The object a version's entry holds: a watch entry's payload is the object
// itself ("k8s.watch" meta), an audit event's is its responseObject.
std::string_view ObjectOfEntry(std::string_view meta, std::string_view payload);

// Extracts the raw JSON text of a top-level member ("responseObject") of an
// audit event, or "" if absent. The event must be valid JSON.
std::string_view RawMember(std::string_view event_json, std::string_view key);

// Canonical resource name for a kind, plural or short name:


// The string member `key` of a parsed object; empty if absent or not a string.
std::string_view StringMember(simdjson::dom::element e, const char* key);

// create, update, patch or delete: the verbs that change an object.
bool IsWriteVerb(std::string_view verb);

}  // namespace annals::state

#endif  // ANNALS_STATE_K8S_OBJECT_H_
