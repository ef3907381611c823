// Cloud audit records as the clouds export them (docs/sources.md): AWS
// CloudTrail (a delivery file {"Records":[...]}, a single record, or the
// EventBridge form), GCP Cloud Audit Logs (LogEntry JSON: one, an array or
// JSON lines) and the Azure Activity Log ({"records":[...]} as diagnostic
// settings export it). Each record is kept byte for byte as an entry's
// payload, deduplicated by the cloud's own event id, and read into one
// normalized set of facts (CloudFacts) that the entry's metadata carries.
// Thread-safe (per-thread parser).
#ifndef ANNALS_INGEST_CLOUD_AUDIT_H_
#define ANNALS_INGEST_CLOUD_AUDIT_H_

#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "ingest/ingestor.h"

namespace simdjson::dom {
class element;
}

namespace annals::ingest {

enum class CloudFormat { kAwsCloudTrail, kGcpAudit, kAzureActivity };

// The ingest source (and endpoint suffix) of each format:
// "aws-cloudtrail", "gcp-audit", "azure-activity".
std::string_view CloudSourceName(CloudFormat f);

// One record in the normalized view, the same fields for every cloud
// (docs/sources.md has the field each comes from). Strings are "" where the
// record does not say.
struct CloudFacts {
  std::string cloud;       // "aws", "gcp", "azure"
  std::string id;          // the cloud's own event id (eventID, insertId, ...)
  std::string time;        // as the record gives it (RFC 3339)
  std::string account;     // AWS account, GCP project, Azure subscription
  std::string region;      // AWS region, GCP location, Azure location
  std::string cluster;     // the Kubernetes cluster the record is about, if it names one
  std::string actor;       // who: ARN, principal e-mail, UPN
  std::string actor_type;  // IAMUser, AssumedRole, User, ServicePrincipal...
  std::string role;        // the identity the actor acted as (role assumed, delegation), if any
  std::string service;     // ec2.amazonaws.com, container.googleapis.com, MICROSOFT.COMPUTE
  std::string operation;   // RunInstances, google.container.v1.ClusterManager.CreateCluster
  std::string target;      // resource ARN, resource name, resource id
  std::string ip;          // source IP
  std::string ua;          // user agent
  std::string result;      // "success" or "failure" (Azure: also "start", "accept", as its resultType)
  std::string error;       // error code or status code, when it failed
  int read_only = -1;      // 1 read-only, 0 mutating, -1 the record does not say
};

struct CloudRecord {
  std::string_view raw;  // the record's bytes exactly as received
  std::string key;       // dedup key (DedupKey below)
  CloudFacts facts;
};

// A request body of the given format. All or nothing: the first bad
// record fails the whole body with a reason naming it ("Records[3]: no
// eventID"). `readable`: bytes readable from body.data() (with
// json_util::kJsonPadding past the end the body is parsed where it is).
// The records' raw views point into `body`.
StatusOr<std::vector<CloudRecord>> ParseCloudBody(CloudFormat f, std::string_view body, size_t readable = 0);

// One parsed record of a line source (--tail, --tcp-listen,
// /v1/ingest/events): a CloudTrail record (eventVersion, eventID) or its
// EventBridge form, a GCP LogEntry (insertId,
// logName), or an Azure Activity record (time, operationName, resourceId).
// NotFound if `doc` looks like none of them; InvalidArgument if it looks
// like one but breaks its rules.
StatusOr<CloudRecord> CloudRecordFromDom(const simdjson::dom::element& doc, std::string_view raw,
                                         std::string_view what);

// Dedup keys, length-prefixed where they join parts:
//   aws:<eventID>
//   gcp:<len(logName)>:<logName><insertId>
//   azure:<eventDataId>, or, when the record has none,
//   azure:<len>:<time><len>:<resourceId><len>:<operationName><len>:<correlationId><resultType>
// (a diagnostic-settings record carries no id of its own).

// The entry metadata (docs/format/entry.md "Cloud audit record") and the
// ingest item (payload = r.raw, key = r.key).
std::string CloudMeta(const CloudRecord& r, std::string_view source, std::string_view receive_time);
IngestItem CloudItem(const CloudRecord& r, std::string_view source, std::string_view receive_time);

// A gzip body (CloudTrail writes its files gzipped): inflated into *out.
// InvalidArgument for a damaged or truncated stream, or one that inflates
// past `limit` bytes. Whether a body is gzip: its first two bytes 1f 8b.
bool IsGzip(std::string_view body);
Status Gunzip(std::string_view gz, size_t limit, std::string* out);

}  // namespace annals::ingest

#endif  // ANNALS_INGEST_CLOUD_AUDIT_H_
