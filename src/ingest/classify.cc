#include "ingest/classify.h"

#include <simdjson.h>

#include "ingest/cloud_audit.h"
#include "ingest/json_lines.h"
#include "ingest/k8s_audit.h"
#include "json/json_parse.h"
#include "json/json_write.h"

namespace annals::ingest {

StatusOr<IngestItem> ClassifyJsonLine(std::string_view line, std::string_view source,
                                      std::string_view receive_time, std::string_view what) {
  simdjson::dom::parser& parser = json_util::JsonParser();
  simdjson::dom::element doc;
  auto err = parser.parse(line.data(), line.size()).get(doc);
  if (err) return InvalidArgumentError(std::string(what) + ": " + json_util::JsonErrorMessage(err));
  if (!doc.is_object()) return InvalidArgumentError(std::string(what) + ": not a JSON object");
  RETURN_IF_ERROR(json_util::CheckUniqueKeys(doc, what));
  IngestItem item;
  item.payload = line;
  // An audit Event: has auditID and stage, and does not say it is something else.
  // An object with an auditID is held to the audit Event rules (a stream
  // skips it as a bad line if it breaks them, as the webhook rejects it).
  simdjson::dom::element audit_id;
  if (doc["auditID"].get(audit_id) == simdjson::SUCCESS) {
    ASSIGN_OR_RETURN(AuditEvent ev, AuditEventFromDom(doc, line, what));
    return AuditItem(ev, source == "events" ? std::string_view("k8s-audit") : source, receive_time);
  }
  // A cloud audit record (CloudTrail, its EventBridge form, a GCP LogEntry,
  // an Azure Activity record): held to its format's rules like an audit
  // Event. Posted to /v1/ingest/events it is filed under its format's
  // source, as if posted to that format's endpoint.
  if (auto cloud = CloudRecordFromDom(doc, line, what); cloud.ok()) {
    std::string_view src = source;
    if (source == "events") {
      src = cloud->facts.cloud == "aws"   ? CloudSourceName(CloudFormat::kAwsCloudTrail)
            : cloud->facts.cloud == "gcp" ? CloudSourceName(CloudFormat::kGcpAudit)
                                          : CloudSourceName(CloudFormat::kAzureActivity);
    }
    return CloudItem(*cloud, src, receive_time);
  } else if (cloud.status().code() != StatusCode::kNotFound) {
    return cloud.status();
  }
  // A CloudEvent (JSON format): specversion, id, source, type.
  std::string_view spec, id, ce_source, type;
  if (doc["specversion"].get_string().get(spec) == simdjson::SUCCESS &&
      doc["id"].get_string().get(id) == simdjson::SUCCESS &&
      doc["source"].get_string().get(ce_source) == simdjson::SUCCESS &&
      doc["type"].get_string().get(type) == simdjson::SUCCESS) {
    if (id.empty() || ce_source.empty())
      return InvalidArgumentError(std::string(what) + ": CloudEvent with empty id or source");
    std::string m = R"({"v":1,"src":)";
    json_util::AppendJsonString(&m, source);
    m += R"(,"rt":)";
    json_util::AppendJsonString(&m, receive_time);
    m += R"(,"ct":"application/cloudevents+json","type":)";
    json_util::AppendJsonString(&m, type);
    m += R"(,"ce":{"source":)";
    json_util::AppendJsonString(&m, ce_source);
    m += R"(,"id":)";
    json_util::AppendJsonString(&m, id);
    std::string_view t;
    if (doc["time"].get_string().get(t) == simdjson::SUCCESS) {
      m += R"(,"time":)";
      json_util::AppendJsonString(&m, t);
    }
    m += "}";
    // Length-prefixed so that no (source, id) pair can collide with another.
    item.key = "ce:" + std::to_string(ce_source.size()) + ":" + std::string(ce_source) + std::string(id);
    m += R"(,"key":)";
    json_util::AppendJsonString(&m, item.key);
    m += "}";
    item.meta = std::move(m);
    return item;
  }
  item.meta = MakeMeta(source, receive_time);
  return item;
}

}  // namespace annals::ingest
