#include "ingest/cloud_audit.h"

#include <simdjson.h>
#include <zlib.h>

#include <algorithm>

#include "common/bytes.h"
#include "common/time_util.h"
#include "ingest/json_lines.h"
#include "json/json_parse.h"
#include "json/json_scan.h"
#include "json/json_write.h"

namespace annals::ingest {

namespace {

using simdjson::dom::element;
using Found = simdjson::simdjson_result<element>;

std::string_view Str(Found r) {
  std::string_view v;
  if (r.get_string().get(v) == simdjson::SUCCESS) return v;
  return {};
}

bool IEndsWith(std::string_view s, std::string_view suffix) {
  if (s.size() < suffix.size()) return false;
  s = s.substr(s.size() - suffix.size());
  for (size_t i = 0; i < s.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(s[i])) != std::tolower(static_cast<unsigned char>(suffix[i])))
      return false;
  return true;
}

// The segment after `/<name>/` in an Azure resource id (names compared
// without case, as Azure does), or "".
std::string_view AzureSegment(std::string_view id, std::string_view name) {
  std::string lower(id);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const std::string needle = "/" + std::string(name) + "/";
  const size_t at = lower.find(needle);
  if (at == std::string::npos) return {};
  std::string_view rest = id.substr(at + needle.size());
  return rest.substr(0, rest.find('/'));
}

void AppendLengthPrefixed(std::string* k, std::string_view part) {
  k->append(std::to_string(part.size())).append(":").append(part);
}

Status Bad(std::string_view what, std::string_view why) {
  return InvalidArgumentError(std::string(what) + ": " + std::string(why));
}

// The longest dedup key taken: ids are short; a longer one is refused
// rather than stored under a key the metadata could not hold whole.
constexpr size_t kMaxKey = 4096;

// A record's time must read as RFC 3339 (search finds records by it).
Status CheckTime(std::string_view what, const char* member, std::string_view time) {
  if (!ParseRfc3339(time)) return Bad(what, std::string(member) + " is not an RFC 3339 time: " + std::string(time.substr(0, 64)));
  return OkStatus();
}

// The finished record: its key not over kMaxKey.
StatusOr<CloudRecord> Checked(CloudRecord r, std::string_view what) {
  if (r.key.size() > kMaxKey) return Bad(what, "its event id is longer than " + std::to_string(kMaxKey) + " bytes");
  return r;
}

// A required non-empty string member.
Status Need(const element& o, const char* key, std::string_view what, std::string_view* out) {
  *out = Str(o[key]);
  if (out->empty()) return Bad(what, std::string("no ") + key);
  return OkStatus();
}

// --- AWS CloudTrail --------------------------------------------------------

// A CloudTrail record `r` (the event itself, or the detail of its
// EventBridge form `raw`).
StatusOr<CloudRecord> AwsRecord(const element& r, std::string_view raw, std::string_view what) {
  if (!r.is_object()) return Bad(what, "not a JSON object");
  std::string_view id, time;
  RETURN_IF_ERROR(Need(r, "eventID", what, &id));
  RETURN_IF_ERROR(Need(r, "eventTime", what, &time));
  RETURN_IF_ERROR(CheckTime(what, "eventTime", time));
  // An Insights event names the API it is about in insightDetails.
  std::string_view source = Str(r["eventSource"]), name = Str(r["eventName"]);
  if (source.empty()) source = Str(r["insightDetails"]["eventSource"]);
  if (name.empty()) name = Str(r["insightDetails"]["eventName"]);
  CloudRecord out;
  out.raw = raw;
  out.key = "aws:" + std::string(id);
  CloudFacts& f = out.facts;
  f.cloud = "aws";
  f.id = id;
  f.time = time;
  f.service = source;
  f.operation = name;
  const Found ui = r["userIdentity"];
  f.account = Str(r["recipientAccountId"]);
  if (f.account.empty()) f.account = Str(ui["accountId"]);
  f.region = Str(r["awsRegion"]);
  f.actor_type = Str(ui["type"]);
  for (const char* k : {"arn", "invokedBy", "principalId", "userName"}) {
    f.actor = Str(ui[k]);
    if (!f.actor.empty()) break;
  }
  f.role = Str(ui["sessionContext"]["sessionIssuer"]["arn"]);
  simdjson::dom::array resources;
  if (r["resources"].get_array().get(resources) == simdjson::SUCCESS) {
    for (element res : resources) {
      f.target = Str(res["ARN"]);
      if (!f.target.empty()) break;
    }
  }
  f.ip = Str(r["sourceIPAddress"]);
  f.ua = Str(r["userAgent"]);
  f.error = Str(r["errorCode"]);
  f.result = f.error.empty() ? "success" : "failure";
  bool ro = false;
  if (r["readOnly"].get_bool().get(ro) == simdjson::SUCCESS) f.read_only = ro ? 1 : 0;
  return Checked(std::move(out), what);
}

// The EventBridge form: {"detail-type": ..., "detail": {CloudTrail record}}.
bool IsEventBridge(const element& doc) {
  element detail;
  return !Str(doc["detail-type"]).empty() && doc["detail"].get(detail) == simdjson::SUCCESS && detail.is_object();
}

StatusOr<CloudRecord> AwsDocument(const element& doc, std::string_view raw, std::string_view what) {
  if (IsEventBridge(doc)) return AwsRecord(doc["detail"].value_unsafe(), raw, std::string(what) + ".detail");
  return AwsRecord(doc, raw, what);
}

// --- GCP Cloud Audit Logs ---------------------------------------------------

StatusOr<CloudRecord> GcpRecord(const element& e, std::string_view raw, std::string_view what) {
  if (!e.is_object()) return Bad(what, "not a JSON object");
  std::string_view insert_id, log_name, time;
  RETURN_IF_ERROR(Need(e, "insertId", what, &insert_id));
  RETURN_IF_ERROR(Need(e, "logName", what, &log_name));
  RETURN_IF_ERROR(Need(e, "timestamp", what, &time));
  RETURN_IF_ERROR(CheckTime(what, "timestamp", time));
  CloudRecord out;
  out.raw = raw;
  out.key = "gcp:";
  AppendLengthPrefixed(&out.key, log_name);
  out.key += insert_id;
  CloudFacts& f = out.facts;
  f.cloud = "gcp";
  f.id = insert_id;
  f.time = time;
  const Found labels = e["resource"]["labels"];
  f.account = Str(labels["project_id"]);
  if (f.account.empty() && log_name.starts_with("projects/")) {
    std::string_view p = log_name.substr(9);
    f.account = p.substr(0, p.find('/'));
  }
  for (const char* k : {"location", "zone", "region"}) {
    f.region = Str(labels[k]);
    if (!f.region.empty()) break;
  }
  f.cluster = Str(labels["cluster_name"]);
  const Found pp = e["protoPayload"];
  const Found authn = pp["authenticationInfo"];
  f.actor = Str(authn["principalEmail"]);
  if (f.actor.empty()) f.actor = Str(authn["principalSubject"]);
  // Acting through a service account: the account is the identity used,
  // the first principal of the delegation chain the one who acted.
  simdjson::dom::array chain;
  if (authn["serviceAccountDelegationInfo"].get_array().get(chain) == simdjson::SUCCESS) {
    for (element d : chain) {
      std::string_view first = Str(d["firstPartyPrincipal"]["principalEmail"]);
      if (!first.empty() && !f.actor.empty()) {
        f.role = f.actor;
        f.actor = first;
      }
      break;
    }
  }
  if (f.actor.ends_with(".gserviceaccount.com")) f.actor_type = "ServiceAccount";
  else if (f.actor.starts_with("system:")) f.actor_type = "KubernetesSystem";
  else if (f.actor.find('@') != std::string::npos) f.actor_type = "User";
  f.service = Str(pp["serviceName"]);
  f.operation = Str(pp["methodName"]);
  f.target = Str(pp["resourceName"]);
  f.ip = Str(pp["requestMetadata"]["callerIp"]);
  f.ua = Str(pp["requestMetadata"]["callerSuppliedUserAgent"]);
  int64_t code = 0;
  if (pp["status"]["code"].get_int64().get(code) == simdjson::SUCCESS && code != 0) {
    f.result = "failure";
    f.error = std::to_string(code);
  } else {
    f.result = "success";
  }
  std::string_view permission_type;
  simdjson::dom::array authz;
  if (pp["authorizationInfo"].get_array().get(authz) == simdjson::SUCCESS) {
    for (element a : authz) {
      permission_type = Str(a["permissionType"]);
      break;
    }
  }
  if (permission_type.ends_with("_READ")) f.read_only = 1;
  else if (permission_type.ends_with("_WRITE")) f.read_only = 0;
  else if (IEndsWith(log_name, "%2Factivity") || IEndsWith(log_name, "/activity")) f.read_only = 0;
  return Checked(std::move(out), what);
}

// --- Azure Activity Log -------------------------------------------------------

StatusOr<CloudRecord> AzureRecord(const element& e, std::string_view raw, std::string_view what) {
  if (!e.is_object()) return Bad(what, "not a JSON object");
  std::string_view time, resource_id;
  RETURN_IF_ERROR(Need(e, "time", what, &time));
  RETURN_IF_ERROR(Need(e, "resourceId", what, &resource_id));
  RETURN_IF_ERROR(CheckTime(what, "time", time));
  // A string in diagnostic-settings exports, {"value": ...} in the REST form.
  std::string_view operation = Str(e["operationName"]);
  if (operation.empty()) operation = Str(e["operationName"]["value"]);
  if (operation.empty()) return Bad(what, "no operationName");
  std::string_view result_type = Str(e["resultType"]);
  if (result_type.empty()) result_type = Str(e["status"]["value"]);
  const std::string_view correlation = Str(e["correlationId"]);
  const std::string_view event_data_id = Str(e["eventDataId"]);
  CloudRecord out;
  out.raw = raw;
  out.key = "azure:";
  if (!event_data_id.empty()) {
    out.key += event_data_id;
  } else {
    for (std::string_view part : {time, resource_id, operation, correlation}) AppendLengthPrefixed(&out.key, part);
    out.key += result_type;
  }
  CloudFacts& f = out.facts;
  f.cloud = "azure";
  f.id = event_data_id.empty() ? correlation : event_data_id;
  f.time = time;
  f.account = AzureSegment(resource_id, "subscriptions");
  f.region = Str(e["location"]);
  f.cluster = AzureSegment(resource_id, "managedclusters");
  const Found claims = e["identity"]["claims"];
  for (const char* k : {"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name",
                        "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn", "upn", "name"}) {
    f.actor = Str(claims[k]);
    if (!f.actor.empty()) break;
  }
  if (f.actor.empty()) f.actor = Str(e["caller"]);
  if (f.actor.empty()) f.actor = Str(claims["appid"]);
  const Found evidence = e["identity"]["authorization"]["evidence"];
  f.actor_type = Str(evidence["principalType"]);
  f.role = Str(evidence["role"]);
  f.operation = operation;
  f.service = operation.substr(0, operation.find('/'));
  f.target = resource_id;
  f.ip = Str(e["callerIpAddress"]);
  std::string r(result_type);
  for (char& c : r) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (r == "success" || r == "succeeded") f.result = "success";
  else if (r == "failure" || r == "failed") f.result = "failure";
  else f.result = r;
  if (f.result == "failure") f.error = Str(e["resultSignature"]);
  if (IEndsWith(operation, "/read")) f.read_only = 1;
  else if (IEndsWith(operation, "/write") || IEndsWith(operation, "/delete") || IEndsWith(operation, "/action"))
    f.read_only = 0;
  return Checked(std::move(out), what);
}

// --- bodies -------------------------------------------------------------------

using RecordFn = StatusOr<CloudRecord> (*)(const element&, std::string_view, std::string_view);

// The records of the array member `key` of the object body `doc` (text `body`).
Status ArrayRecords(const element& doc, std::string_view body, size_t readable, const char* key, RecordFn fn,
                    std::vector<CloudRecord>* out) {
  simdjson::dom::array arr;
  if (doc[key].get_array().get(arr) != simdjson::SUCCESS)
    return InvalidArgumentError(std::string("body: ") + key + " is not an array");
  ASSIGN_OR_RETURN(auto raws, json_util::RawArrayMember(body, key, readable));
  if (raws.size() != arr.size()) return InvalidArgumentError(std::string("body: ") + key + " could not be located exactly");
  out->reserve(raws.size());
  size_t k = 0;
  for (element item : arr) {
    ASSIGN_OR_RETURN(CloudRecord r, fn(item, raws[k], std::string(key) + "[" + std::to_string(k) + "]"));
    out->push_back(std::move(r));
    ++k;
  }
  return OkStatus();
}

// GCP bodies that are JSON lines: each line one LogEntry.
StatusOr<std::vector<CloudRecord>> GcpLines(std::string_view body) {
  std::vector<CloudRecord> out;
  LineCursor lines(body);
  std::string_view line;
  size_t line_no = 0;
  while (lines.Next(&line, &line_no)) {
    const std::string what = "line " + std::to_string(line_no);
    simdjson::dom::parser& parser = json_util::JsonParser();
    element doc;
    if (auto err = parser.parse(line.data(), line.size()).get(doc))
      return InvalidArgumentError(what + ": " + json_util::JsonErrorMessage(err));
    RETURN_IF_ERROR(json_util::CheckUniqueKeys(doc, what));
    ASSIGN_OR_RETURN(CloudRecord r, GcpRecord(doc, line, what));
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace

std::string_view CloudSourceName(CloudFormat f) {
  switch (f) {
    case CloudFormat::kAwsCloudTrail: return "aws-cloudtrail";
    case CloudFormat::kGcpAudit: return "gcp-audit";
    case CloudFormat::kAzureActivity: return "azure-activity";
  }
  return "";
}

StatusOr<std::vector<CloudRecord>> ParseCloudBody(CloudFormat f, std::string_view received, size_t readable) {
  std::string_view body = TrimJsonSpace(received);
  if (body.empty()) return InvalidArgumentError("empty body");
  const size_t lead = static_cast<size_t>(body.data() - received.data());
  readable = readable > lead ? readable - lead : 0;
  simdjson::dom::parser& parser = json_util::JsonParser();
  element doc;
  auto err = parser.parse(body.data(), body.size(), !json_util::JsonPadded(body, readable)).get(doc);
  if (err) {
    // GCP exports JSON lines: a body that is not one document but whose
    // first line is one is read line by line.
    if (f == CloudFormat::kGcpAudit) {
      LineCursor lines(body);
      std::string_view first;
      size_t n = 0;
      if (lines.Next(&first, &n) && first.size() < body.size()) {
        element probe;
        if (!parser.parse(first.data(), first.size()).get(probe)) return GcpLines(body);
      }
    }
    return InvalidArgumentError("body: " + json_util::JsonErrorMessage(err));
  }
  RETURN_IF_ERROR(json_util::CheckUniqueKeys(doc, "body"));
  std::vector<CloudRecord> out;
  switch (f) {
    case CloudFormat::kAwsCloudTrail: {
      if (!doc.is_object()) return InvalidArgumentError("body: not a JSON object");
      element records;
      if (doc["Records"].get(records) == simdjson::SUCCESS) {
        RETURN_IF_ERROR(ArrayRecords(doc, body, readable, "Records", AwsRecord, &out));
        return out;
      }
      if (!IsEventBridge(doc) && Str(doc["eventID"]).empty())
        return InvalidArgumentError(
            "body: not a CloudTrail delivery file ({\"Records\":[...]}), record (eventID) or EventBridge event "
            "(detail-type, detail)");
      ASSIGN_OR_RETURN(CloudRecord r, AwsDocument(doc, body, "body"));
      out.push_back(std::move(r));
      return out;
    }
    case CloudFormat::kGcpAudit: {
      if (doc.is_array()) {
        simdjson::dom::array arr = doc.get_array().value_unsafe();
        ASSIGN_OR_RETURN(auto raws, json_util::RawArrayElements(body, readable));
        if (raws.size() != arr.size()) return InvalidArgumentError("body: the array could not be located exactly");
        size_t k = 0;
        for (element item : arr) {
          ASSIGN_OR_RETURN(CloudRecord r, GcpRecord(item, raws[k], "[" + std::to_string(k) + "]"));
          out.push_back(std::move(r));
          ++k;
        }
        return out;
      }
      if (!doc.is_object()) return InvalidArgumentError("body: not a LogEntry, an array or JSON lines");
      element entries;
      if (doc["insertId"].error() && doc["entries"].get(entries) == simdjson::SUCCESS) {
        // The Logging API's {"entries": [...]} (entries.list, entries.write).
        RETURN_IF_ERROR(ArrayRecords(doc, body, readable, "entries", GcpRecord, &out));
        return out;
      }
      ASSIGN_OR_RETURN(CloudRecord r, GcpRecord(doc, body, "body"));
      out.push_back(std::move(r));
      return out;
    }
    case CloudFormat::kAzureActivity: {
      if (!doc.is_object()) return InvalidArgumentError("body: not a JSON object");
      element records;
      if (doc["records"].get(records) == simdjson::SUCCESS) {
        RETURN_IF_ERROR(ArrayRecords(doc, body, readable, "records", AzureRecord, &out));
        return out;
      }
      ASSIGN_OR_RETURN(CloudRecord r, AzureRecord(doc, body, "body"));
      out.push_back(std::move(r));
      return out;
    }
  }
  return InvalidArgumentError("unknown cloud format");
}

StatusOr<CloudRecord> CloudRecordFromDom(const element& doc, std::string_view raw, std::string_view what) {
  if (!doc.is_object()) return NotFoundError("not a JSON object");
  // Recognised by members of the right type only: a log line that merely
  // shares a name (a numeric "time") stays a generic event.
  auto is_string = [&doc](const char* k) { return doc[k].get_string().error() == simdjson::SUCCESS; };
  if (IsEventBridge(doc) && doc["detail"]["eventID"].get_string().error() == simdjson::SUCCESS)
    return AwsDocument(doc, raw, what);
  if (is_string("eventVersion") && is_string("eventID")) return AwsRecord(doc, raw, what);
  if (is_string("insertId") && is_string("logName")) return GcpRecord(doc, raw, what);
  if (is_string("time") && is_string("resourceId") &&
      (is_string("operationName") || doc["operationName"]["value"].get_string().error() == simdjson::SUCCESS))
    return AzureRecord(doc, raw, what);
  return NotFoundError("not a cloud audit record");
}

std::string CloudMeta(const CloudRecord& r, std::string_view source, std::string_view receive_time) {
  const CloudFacts& f = r.facts;
  std::string m;
  m.reserve(512);
  m += R"({"v":1,"src":)";
  json_util::AppendJsonString(&m, source);
  m += R"(,"rt":)";
  json_util::AppendJsonString(&m, receive_time);
  m += R"(,"ct":"application/json","type":"cloud.audit","key":)";
  json_util::AppendJsonString(&m, r.key);  // whole: at most kMaxKey bytes
  m += R"(,"cloud":{)";
  auto field = [&m](std::string_view name, std::string_view value, bool optional = false) {
    json_util::AppendJsonMember(&m, name, ClipUtf8(value, 1024), optional);
  };
  field("provider", f.cloud);
  field("id", f.id);
  field("time", f.time);
  field("account", f.account);
  field("region", f.region, true);
  field("cluster", f.cluster, true);
  field("actor", f.actor);
  field("actor_type", f.actor_type, true);
  field("role", f.role, true);
  field("service", f.service);
  field("op", f.operation);
  field("target", f.target, true);
  field("ip", f.ip, true);
  json_util::AppendJsonMember(&m, "ua", ClipUtf8(f.ua, 256), true);
  field("result", f.result);
  field("error", f.error, true);
  if (f.read_only >= 0) m += f.read_only ? R"(,"ro":true)" : R"(,"ro":false)";
  m += "}}";
  return m;
}

IngestItem CloudItem(const CloudRecord& r, std::string_view source, std::string_view receive_time) {
  IngestItem item;
  item.key = r.key;
  item.meta = CloudMeta(r, source, receive_time);
  item.payload = r.raw;
  return item;
}

bool IsGzip(std::string_view body) {
  return body.size() >= 2 && static_cast<unsigned char>(body[0]) == 0x1f &&
         static_cast<unsigned char>(body[1]) == 0x8b;
}

Status Gunzip(std::string_view gz, size_t limit, std::string* out) {
  out->clear();
  z_stream zs{};
  if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) return InternalError("gzip: inflateInit2 failed");
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(gz.data()));
  zs.avail_in = static_cast<uInt>(std::min<size_t>(gz.size(), UINT32_MAX));
  Status st = OkStatus();
  char buf[64 * 1024];
  for (;;) {
    zs.next_out = reinterpret_cast<Bytef*>(buf);
    zs.avail_out = sizeof(buf);
    const int rc = inflate(&zs, Z_NO_FLUSH);
    const size_t produced = sizeof(buf) - zs.avail_out;
    if (out->size() + produced > limit) {
      st = InvalidArgumentError("gzip: the body inflates past " + std::to_string(limit) + " bytes");
      break;
    }
    out->append(buf, produced);
    if (rc == Z_STREAM_END) {
      // Concatenated gzip members (as `cat a.gz b.gz` makes) are one stream.
      if (zs.avail_in == 0) break;
      if (inflateReset(&zs) != Z_OK) {
        st = InvalidArgumentError("gzip: damaged stream");
        break;
      }
      continue;
    }
    if (rc == Z_OK) continue;
    if (rc == Z_BUF_ERROR && zs.avail_in == 0) {
      st = InvalidArgumentError("gzip: the body is truncated");
      break;
    }
    st = InvalidArgumentError(std::string("gzip: damaged stream") + (zs.msg ? std::string(" (") + zs.msg + ")" : ""));
    break;
  }
  inflateEnd(&zs);
  if (!st.ok()) out->clear();
  return st;
}

}  // namespace annals::ingest
