// The cloud audit parsers against the real records of the shared corpus
// (../shared/corpus/cloud-audit): every CloudTrail delivery file, the GCP and
// Azure samples. The expected values are read here with nlohmann::json, not
// with the parser under test.
#include "ingest/cloud_audit.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <zlib.h>

#include <filesystem>
#include <functional>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "ingest/classify.h"
#include "ingest/cloudtrail_digest.h"

namespace annals::ingest {
namespace {

using nlohmann::json;

std::string Read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string CloudDir() { return std::string(ANNALS_CORPUS_DIR) + "/cloud-audit"; }

std::vector<std::string> CloudTrailFiles() {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(CloudDir() + "/aws-cloudtrail-invictus-stratus"))
    if (e.path().extension() == ".json") out.push_back(e.path().string());
  std::sort(out.begin(), out.end());
  out.push_back(CloudDir() + "/aws-cloudtrail-records.otel.json");
  return out;
}

std::string J(const json& j, std::initializer_list<const char*> path) {
  const json* at = &j;
  for (const char* k : path) {
    if (!at->is_object() || !at->contains(k)) return "";
    at = &(*at)[k];
  }
  return at->is_string() ? at->get<std::string>() : "";
}

std::string Gzip(std::string_view in) {
  z_stream zs{};
  EXPECT_EQ(deflateInit2(&zs, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::string out(deflateBound(&zs, in.size()) + 64, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&zs, Z_FINISH), Z_STREAM_END);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

TEST(CloudTrail, EveryCorpusRecordIsKeptExactlyWithItsFacts) {
  size_t total = 0;
  std::set<std::string> keys;
  for (const auto& path : CloudTrailFiles()) {
    SCOPED_TRACE(path);
    const std::string body = Read(path);
    const json file = json::parse(body);
    auto records = ParseCloudBody(CloudFormat::kAwsCloudTrail, body);
    ASSERT_TRUE(records.ok()) << records.status().ToString();
    ASSERT_EQ(records->size(), file["Records"].size());
    for (size_t i = 0; i < records->size(); ++i) {
      const CloudRecord& r = (*records)[i];
      const json& want = file["Records"][i];
      // The raw view is one record of the body, the whole record.
      ASSERT_GE(r.raw.data(), body.data());
      ASSERT_LE(r.raw.data() + r.raw.size(), body.data() + body.size());
      EXPECT_EQ(json::parse(r.raw), want);
      EXPECT_EQ(r.raw.front(), '{');
      EXPECT_EQ(r.raw.back(), '}');
      EXPECT_EQ(r.key, "aws:" + want["eventID"].get<std::string>());
      keys.insert(r.key);
      const CloudFacts& f = r.facts;
      EXPECT_EQ(f.cloud, "aws");
      EXPECT_EQ(f.time, want["eventTime"]);
      // An Insights event names the API in insightDetails.
      const json& api = want.contains("eventSource") ? want : want["insightDetails"];
      EXPECT_EQ(f.service, api["eventSource"]);
      EXPECT_EQ(f.operation, api["eventName"]);
      EXPECT_EQ(f.region, J(want, {"awsRegion"}));
      std::string account = J(want, {"recipientAccountId"});
      if (account.empty()) account = J(want, {"userIdentity", "accountId"});
      EXPECT_EQ(f.account, account);
      EXPECT_EQ(f.actor_type, J(want, {"userIdentity", "type"}));
      std::string actor;
      for (const char* k : {"arn", "invokedBy", "principalId", "userName"})
        if (actor.empty()) actor = J(want, {"userIdentity", k});
      EXPECT_EQ(f.actor, actor);
      EXPECT_EQ(f.role, J(want, {"userIdentity", "sessionContext", "sessionIssuer", "arn"}));
      EXPECT_EQ(f.ip, J(want, {"sourceIPAddress"}));
      EXPECT_EQ(f.ua, J(want, {"userAgent"}));
      EXPECT_EQ(f.error, J(want, {"errorCode"}));
      EXPECT_EQ(f.result, want.contains("errorCode") ? "failure" : "success");
      if (want.contains("readOnly")) EXPECT_EQ(f.read_only, want["readOnly"].get<bool>() ? 1 : 0);
      else EXPECT_EQ(f.read_only, -1);
      // The metadata is JSON and says the same.
      const json meta = json::parse(CloudMeta(r, "aws-cloudtrail", "2026-01-01T00:00:00Z"));
      EXPECT_EQ(meta["type"], "cloud.audit");
      EXPECT_EQ(meta["key"], r.key);
      EXPECT_EQ(meta["cloud"]["actor"], actor);
      EXPECT_EQ(meta["cloud"]["op"], api["eventName"]);
    }
    total += records->size();
  }
  EXPECT_EQ(total, 2900u + 7u);
  EXPECT_EQ(keys.size(), total);  // CloudTrail's eventIDs are unique
}

TEST(CloudTrail, GzippedFilesInflateToTheFile) {
  const std::string body = Read(CloudTrailFiles().front());
  const std::string gz = Gzip(body);
  ASSERT_TRUE(IsGzip(gz));
  EXPECT_FALSE(IsGzip(body));
  std::string out;
  ASSERT_TRUE(Gunzip(gz, 1 << 26, &out).ok());
  EXPECT_EQ(out, body);
  // Two members, as `cat a.gz b.gz` makes.
  ASSERT_TRUE(Gunzip(gz + Gzip("xyz"), 1 << 26, &out).ok());
  EXPECT_EQ(out, body + "xyz");
  // Truncated anywhere: refused, nothing returned.
  for (size_t cut : {size_t{1}, size_t{10}, gz.size() / 2, gz.size() - 9, gz.size() - 1}) {
    Status st = Gunzip(std::string_view(gz).substr(0, cut), 1 << 26, &out);
    EXPECT_FALSE(st.ok()) << cut;
    EXPECT_TRUE(out.empty());
  }
  // A flipped byte in the deflate stream or its CRC.
  for (size_t at : {gz.size() / 3, gz.size() - 6}) {
    std::string bad = gz;
    bad[at] ^= 0x40;
    EXPECT_FALSE(Gunzip(bad, 1 << 26, &out).ok()) << at;
  }
  // A bomb: refused at the limit.
  const std::string zeros(4 << 20, '0');
  Status st = Gunzip(Gzip(zeros), 1 << 20, &out);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("inflates past"), std::string::npos);
  // Garbage after a member.
  EXPECT_FALSE(Gunzip(gz + "garbage", 1 << 26, &out).ok());
}

TEST(CloudTrail, SingleRecordAndEventBridgeForms) {
  const json file = json::parse(Read(CloudTrailFiles().front()));
  const std::string one = file["Records"][0].dump();
  const std::string spaced = "  " + one + "\n";
  auto single = ParseCloudBody(CloudFormat::kAwsCloudTrail, spaced);
  ASSERT_TRUE(single.ok()) << single.status().ToString();
  ASSERT_EQ(single->size(), 1u);
  EXPECT_EQ((*single)[0].raw, one);
  // EventBridge: the envelope is kept, the facts and key are the detail's.
  const std::string eb = R"({"version":"0","id":"6a7e8feb-b491-4cf7-a9f1-bf3703467718","detail-type":"AWS API Call via CloudTrail","source":"aws.ec2","account":"123456789012","time":"2023-07-10T12:20:00Z","region":"us-east-1","resources":[],"detail":)" +
                         one + "}";
  auto bridged = ParseCloudBody(CloudFormat::kAwsCloudTrail, eb);
  ASSERT_TRUE(bridged.ok()) << bridged.status().ToString();
  EXPECT_EQ((*bridged)[0].raw, eb);
  EXPECT_EQ((*bridged)[0].key, (*single)[0].key);
  EXPECT_EQ((*bridged)[0].facts.operation, (*single)[0].facts.operation);
  // The line sources recognise both.
  for (const std::string& line : {one, eb}) {
    auto item = ClassifyJsonLine(line, "events", "2026-01-01T00:00:00Z", "line 1");
    ASSERT_TRUE(item.ok()) << item.status().ToString();
    EXPECT_EQ(item->key, (*single)[0].key);
    EXPECT_EQ(json::parse(item->meta)["src"], "aws-cloudtrail");
    auto tail = ClassifyJsonLine(line, "audit-log", "2026-01-01T00:00:00Z", "line 1");
    ASSERT_TRUE(tail.ok());
    EXPECT_EQ(json::parse(tail->meta)["src"], "audit-log");
    EXPECT_EQ(json::parse(tail->meta)["type"], "cloud.audit");
  }
}

TEST(CloudTrail, BadBodiesAreRefusedWithTheirReason) {
  const std::string body = Read(CloudTrailFiles().front());
  struct Case {
    std::string body, want;
  };
  json file = json::parse(body);
  json no_id = file;
  no_id["Records"][2].erase("eventID");
  json not_obj = file;
  not_obj["Records"][1] = 7;
  std::vector<Case> cases = {
      {"", "empty body"},
      {"[]", "not a JSON object"},
      {R"({"Records":{}})", "Records is not an array"},
      {R"({"foo":1})", "not a CloudTrail delivery file"},
      {no_id.dump(), "Records[2]: no eventID"},
      {not_obj.dump(), "Records[1]: not a JSON object"},
      {R"({"Records":[{"eventID":"a","eventID":"b","eventTime":"t","eventSource":"s","eventName":"n"}]})",
       "eventID"},
      {R"({"detail-type":"AWS API Call via CloudTrail","detail":{"eventTime":"t"}})", "body.detail: no eventID"},
  };
  for (size_t cut : {body.size() / 2, body.size() - 2}) cases.push_back({body.substr(0, cut), "body:"});
  for (const auto& c : cases) {
    auto r = ParseCloudBody(CloudFormat::kAwsCloudTrail, c.body);
    ASSERT_FALSE(r.ok()) << c.body.substr(0, 80);
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find(c.want), std::string::npos) << r.status().message();
  }
  // An empty delivery file is a file with no records.
  auto empty = ParseCloudBody(CloudFormat::kAwsCloudTrail, R"({"Records":[]})");
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
}

TEST(GcpAudit, CorpusEntriesInEveryBodyForm) {
  std::vector<std::string> entries;
  for (const char* name : {"gcp-auditlog-k8s-activity.otel.json", "gcp-auditlog-gke-data-access.otel.json"})
    entries.push_back(Read(CloudDir() + "/" + name));
  for (const auto& e : entries) {
    const json want = json::parse(e);
    auto r = ParseCloudBody(CloudFormat::kGcpAudit, e);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_EQ(r->size(), 1u);
    const CloudRecord& rec = (*r)[0];
    EXPECT_EQ(json::parse(rec.raw), want);
    const std::string log_name = want["logName"];
    EXPECT_EQ(rec.key, "gcp:" + std::to_string(log_name.size()) + ":" + log_name + want["insertId"].get<std::string>());
    const CloudFacts& f = rec.facts;
    EXPECT_EQ(f.cloud, "gcp");
    EXPECT_EQ(f.time, want["timestamp"]);
    EXPECT_EQ(f.account, J(want, {"resource", "labels", "project_id"}));
    EXPECT_EQ(f.cluster, J(want, {"resource", "labels", "cluster_name"}));
    EXPECT_EQ(f.actor, J(want, {"protoPayload", "authenticationInfo", "principalEmail"}));
    EXPECT_EQ(f.service, J(want, {"protoPayload", "serviceName"}));
    EXPECT_EQ(f.operation, J(want, {"protoPayload", "methodName"}));
    EXPECT_EQ(f.target, J(want, {"protoPayload", "resourceName"}));
    EXPECT_EQ(f.ip, J(want, {"protoPayload", "requestMetadata", "callerIp"}));
    EXPECT_EQ(f.ua, J(want, {"protoPayload", "requestMetadata", "callerSuppliedUserAgent"}));
    EXPECT_FALSE(f.actor.empty());
  }
  // An array of both, JSON lines of both, and {"entries": [...]}.
  const std::string array = "[" + entries[0] + ",\n" + entries[1] + "]";
  const std::string lines = json::parse(entries[0]).dump() + "\r\n\n" + json::parse(entries[1]).dump() + "\n";
  const std::string wrapped = R"({"entries":[)" + entries[0] + "," + entries[1] + "]}";
  for (const std::string& body : {array, lines, wrapped}) {
    auto r = ParseCloudBody(CloudFormat::kGcpAudit, body);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_EQ(r->size(), 2u);
    for (size_t i = 0; i < 2; ++i) EXPECT_EQ(json::parse((*r)[i].raw), json::parse(entries[i]));
  }
  // Bad: a line that is not JSON names its line; a truncated pretty entry
  // is a body error; an entry without insertId is named.
  const std::string bad_line = json::parse(entries[0]).dump() + "\n{\"insertId\":\n";
  auto r = ParseCloudBody(CloudFormat::kGcpAudit, bad_line);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("line 2"), std::string::npos) << r.status().message();
  r = ParseCloudBody(CloudFormat::kGcpAudit, entries[0].substr(0, entries[0].size() / 2));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("body:"), std::string::npos) << r.status().message();
  json no_insert = json::parse(entries[1]);
  no_insert.erase("insertId");
  r = ParseCloudBody(CloudFormat::kGcpAudit, "[" + entries[0] + "," + no_insert.dump() + "]");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("[1]: no insertId"), std::string::npos) << r.status().message();
}

TEST(AzureActivity, CorpusRecordAndItsKey) {
  const std::string body = Read(CloudDir() + "/azure-activity-administrative.otel.json");
  const json file = json::parse(body);
  auto r = ParseCloudBody(CloudFormat::kAzureActivity, body);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), file["records"].size());
  const json& want = file["records"][0];
  const CloudRecord& rec = (*r)[0];
  EXPECT_EQ(json::parse(rec.raw), want);
  const CloudFacts& f = rec.facts;
  EXPECT_EQ(f.cloud, "azure");
  EXPECT_EQ(f.account, "11111111-1111-1111-1111-111111111111");  // from /SUBSCRIPTIONS/<id>/
  EXPECT_EQ(f.actor, J(want, {"identity", "claims", "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name"}));
  EXPECT_EQ(f.role, J(want, {"identity", "authorization", "evidence", "role"}));
  EXPECT_EQ(f.actor_type, "User");
  EXPECT_EQ(f.operation, want["operationName"]);
  EXPECT_EQ(f.service, "MICROSOFT.INSIGHTS");
  EXPECT_EQ(f.target, want["resourceId"]);
  EXPECT_EQ(f.ip, want["callerIpAddress"]);
  EXPECT_EQ(f.result, "start");
  EXPECT_EQ(f.read_only, 0);  // .../WRITE
  // No eventDataId: the key joins time, resource, operation, correlation, result.
  std::string key = "azure:";
  for (const char* k : {"time", "resourceId", "operationName", "correlationId"}) {
    const std::string v = want[k];
    key += std::to_string(v.size()) + ":" + v;
  }
  key += want["resultType"].get<std::string>();
  EXPECT_EQ(rec.key, key);
  // The same operation's "Success" record is another record.
  json success = want;
  success["resultType"] = "Success";
  auto r2 = ParseCloudBody(CloudFormat::kAzureActivity, success.dump());
  ASSERT_TRUE(r2.ok());
  EXPECT_NE((*r2)[0].key, rec.key);
  EXPECT_EQ((*r2)[0].facts.result, "success");
  // The REST form: operationName {"value"}, eventDataId is the key.
  json rest = want;
  rest["operationName"] = {{"value", "Microsoft.Compute/virtualMachines/read"}};
  rest["eventDataId"] = "e-1";
  auto r3 = ParseCloudBody(CloudFormat::kAzureActivity, json{{"records", {rest}}}.dump());
  ASSERT_TRUE(r3.ok()) << r3.status().ToString();
  EXPECT_EQ((*r3)[0].key, "azure:e-1");
  EXPECT_EQ((*r3)[0].facts.read_only, 1);
  // Bad records.
  json no_time = want;
  no_time.erase("time");
  auto bad = ParseCloudBody(CloudFormat::kAzureActivity, json{{"records", {want, no_time}}}.dump());
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("records[1]: no time"), std::string::npos) << bad.status().message();
  // A managed cluster's record names the cluster.
  json aks = want;
  aks["resourceId"] = "/subscriptions/s-1/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/prod-aks";
  auto r4 = ParseCloudBody(CloudFormat::kAzureActivity, aks.dump());
  ASSERT_TRUE(r4.ok());
  EXPECT_EQ((*r4)[0].facts.cluster, "prod-aks");
  EXPECT_EQ((*r4)[0].facts.account, "s-1");
}

TEST(Classify, ALookalikeThatBreaksItsFormatsRulesIsRefused) {
  // A GCP LogEntry without a timestamp, a CloudTrail record without an eventName.
  for (const char* line : {R"({"insertId":"a","logName":"projects/p/logs/x"})",
                           R"({"eventVersion":"1.08","eventID":"e","eventSource":"s"})"}) {
    auto item = ClassifyJsonLine(line, "tcp", "2026-01-01T00:00:00Z", "line 4");
    ASSERT_FALSE(item.ok()) << line;
    EXPECT_NE(item.status().message().find("line 4: no "), std::string::npos) << item.status().message();
  }
  // An object that is none of them stays a generic event, as does one
  // whose members have the names but not the types.
  for (const char* line : {R"({"insertId":"a"})", R"({"time":17,"operationName":"o","resourceId":"r"})",
                           R"({"eventVersion":1,"eventID":"e"})"}) {
    auto generic = ClassifyJsonLine(line, "tcp", "2026-01-01T00:00:00Z", "line 1");
    ASSERT_TRUE(generic.ok()) << line;
    EXPECT_TRUE(generic->key.empty()) << line;
  }
  // A time that is not RFC 3339, an id past 4,096 bytes: refused.
  auto bad_time = ClassifyJsonLine(R"({"eventVersion":"1.08","eventID":"e","eventTime":"yesterday"})", "tcp",
                                   "2026-01-01T00:00:00Z", "line 2");
  ASSERT_FALSE(bad_time.ok());
  EXPECT_NE(bad_time.status().message().find("eventTime is not an RFC 3339 time"), std::string::npos);
  const std::string long_id = R"({"eventVersion":"1.08","eventID":")" + std::string(5000, 'x') +
                              R"(","eventTime":"2023-07-10T12:00:00Z"})";
  auto too_long = ClassifyJsonLine(long_id, "tcp", "2026-01-01T00:00:00Z", "line 3");
  ASSERT_FALSE(too_long.ok());
  EXPECT_NE(too_long.status().message().find("longer than 4096 bytes"), std::string::npos);
  // A conflicting copy of a cloud record is marked as such.
  auto rec = ClassifyJsonLine(R"({"eventVersion":"1.08","eventID":"e","eventTime":"2023-07-10T12:00:00Z"})", "tcp",
                              "2026-01-01T00:00:00Z", "line 4");
  ASSERT_TRUE(rec.ok());
  const std::string marked = Ingestor::MarkConflict(rec->meta);
  EXPECT_EQ(json::parse(marked)["type"], "cloud.audit.conflict");
  EXPECT_TRUE(Ingestor::IsConflict(marked));
  EXPECT_FALSE(Ingestor::IsConflict(rec->meta));
}

// The digest file of AWS's documentation (its structure page), in the
// shape CloudTrail writes it.
json DocDigest() {
  return json::parse(R"({
  "awsAccountId": "111122223333",
  "digestStartTime": "2015-08-17T14:01:31Z",
  "digestEndTime": "2015-08-17T15:01:31Z",
  "digestS3Bucket": "amzn-s3-demo-bucket",
  "digestS3Object": "AWSLogs/111122223333/CloudTrail-Digest/us-east-2/2015/08/17/111122223333_CloudTrail-Digest_us-east-2_your-trail-name_us-east-2_20150817T150131Z.json.gz",
  "digestPublicKeyFingerprint": "31e8b5433410dfb61a9dc45cc65b22ff",
  "digestSignatureAlgorithm": "SHA256withRSA",
  "newestEventTime": "2015-08-17T14:52:27Z",
  "oldestEventTime": "2015-08-17T14:42:27Z",
  "previousDigestS3Bucket": "amzn-s3-demo-bucket",
  "previousDigestS3Object": "AWSLogs/111122223333/CloudTrail-Digest/us-east-2/2015/08/17/111122223333_CloudTrail-Digest_us-east-2_your-trail-name_us-east-2_20150817T140131Z.json.gz",
  "previousDigestHashValue": "97fb791cf91ffc440d274f8190dbdd9aa09c34432aba82739df18b6d3c13df2d",
  "previousDigestHashAlgorithm": "SHA-256",
  "previousDigestSignature": "50887ccffad4c002b97caa37cc8ac08bd14a66d38d4dc4ae1b2ac5a6d3c8e1a0",
  "logFiles": [{
    "s3Bucket": "amzn-s3-demo-bucket",
    "s3Object": "AWSLogs/111122223333/CloudTrail/us-east-2/2015/08/17/111122223333_CloudTrail_us-east-2_20150817T1445Z_9nYN7gp2eWAJHIfT.json.gz",
    "hashValue": "9bb6196fc6b84d6f075a56548feca262bd99ba3c2de41b618e5b6e22c1fc71f6",
    "hashAlgorithm": "SHA-256",
    "newestEventTime": "2015-08-17T14:52:27Z",
    "oldestEventTime": "2015-08-17T14:42:27Z"
  }]
})");
}

TEST(CloudTrailDigest, ParsesTheDocumentedFileAndItsStringToSign) {
  const std::string text = DocDigest().dump(2);
  auto d = ParseCloudTrailDigest(text);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->logs.size(), 1u);
  EXPECT_EQ(d->logs[0].hash, "9bb6196fc6b84d6f075a56548feca262bd99ba3c2de41b618e5b6e22c1fc71f6");
  // The SHA-256 of the uncompressed bytes, computed here with OpenSSL.
  unsigned char md[32];
  unsigned int n = 0;
  EVP_Digest(text.data(), text.size(), md, &n, EVP_sha256(), nullptr);
  std::string hex;
  for (unsigned i = 0; i < n; ++i) {
    char b[3];
    std::snprintf(b, sizeof b, "%02x", md[i]);
    hex += b;
  }
  EXPECT_EQ(d->sha256, hex);
  EXPECT_EQ(DigestStringToSign(*d), "2015-08-17T15:01:31Z\namzn-s3-demo-bucket/" + DocDigest()["digestS3Object"].get<std::string>() +
                                        "\n" + hex + "\n50887ccffad4c002b97caa37cc8ac08bd14a66d38d4dc4ae1b2ac5a6d3c8e1a0");
  // The first of a chain signs "null" for the previous signature.
  json first = DocDigest();
  for (const char* k : {"previousDigestS3Bucket", "previousDigestS3Object", "previousDigestHashValue",
                        "previousDigestHashAlgorithm", "previousDigestSignature"})
    first[k] = nullptr;
  first["logFiles"] = json::array();
  auto f = ParseCloudTrailDigest(first.dump());
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_FALSE(f->prev_object.has_value());
  EXPECT_TRUE(DigestStringToSign(*f).ends_with("\nnull"));
}

TEST(CloudTrailDigest, BadFilesAndKeysAreRefusedWithTheirReason) {
  auto with = [](const std::function<void(json&)>& change) {
    json d = DocDigest();
    change(d);
    return d.dump();
  };
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "digest:"},
      {"[]", "not a JSON object"},
      {with([](json& d) { d.erase("digestEndTime"); }), "no digestEndTime"},
      {with([](json& d) { d["digestSignatureAlgorithm"] = "MD5withRSA"; }), "is not SHA256withRSA"},
      {with([](json& d) { d["previousDigestSignature"] = 7; }), "previousDigestSignature is not a string or null"},
      {with([](json& d) { d.erase("previousDigestS3Object"); }), "no previousDigestS3Object"},
      {with([](json& d) { d["logFiles"] = json::object(); }), "logFiles is not an array"},
      {with([](json& d) { d["logFiles"][0]["hashValue"] = "abc"; }), "logFiles[0]: hashValue is not a hex SHA-256"},
      {with([](json& d) { d["logFiles"][0]["hashAlgorithm"] = "MD5"; }), "is not SHA-256"},
      {with([](json& d) { d["logFiles"][0].erase("s3Object"); }), "logFiles[0]: no s3Object"},
      {DocDigest().dump().substr(0, 200), "digest:"},
  };
  for (const auto& [text, want] : cases) {
    auto d = ParseCloudTrailDigest(text);
    ASSERT_FALSE(d.ok()) << text.substr(0, 80);
    EXPECT_NE(d.status().message().find(want), std::string::npos) << d.status().message();
  }
  for (const char* keys : {"{}", R"({"PublicKeyList":[{"Value":"!!"}]})",
                           R"({"PublicKeyList":[{"Value":"!!","Fingerprint":"ab"}]})", "nope"}) {
    auto k = ParseCloudTrailPublicKeys(keys);
    EXPECT_FALSE(k.ok()) << keys;
  }
  // A key that is not an RSA key, an unknown fingerprint, a signature
  // that is not hex: refused, not crashed.
  auto d = ParseCloudTrailDigest(DocDigest().dump());
  ASSERT_TRUE(d.ok());
  std::map<std::string, std::string> keys{{"31e8b5433410dfb61a9dc45cc65b22ff", "not DER"}};
  EXPECT_NE(VerifyDigestSignature(*d, "00ff", keys).message().find("is not an RSA key"), std::string::npos);
  EXPECT_NE(VerifyDigestSignature(*d, "zz", keys).message().find("not hex"), std::string::npos);
  EXPECT_NE(VerifyDigestSignature(*d, "00", {}).message().find("not found"), std::string::npos);
}

TEST(BindCluster, FilesAnItemUnderItsClusterKeyAndMeta) {
  const std::string line = json::parse(Read(CloudDir() + "/gcp-auditlog-k8s-activity.otel.json")).dump();
  auto item = ClassifyJsonLine(line, "events", "2026-01-01T00:00:00Z", "line 1");
  ASSERT_TRUE(item.ok());
  const std::string key = item->key;
  IngestItem bound = *item;
  ASSERT_TRUE(BindCluster("prod-a", &bound).ok());
  EXPECT_EQ(bound.key, "cluster:6:prod-a/" + key);
  const json meta = json::parse(bound.meta), before = json::parse(item->meta);
  EXPECT_EQ(meta["cluster"], "prod-a");
  EXPECT_EQ(meta["key"], bound.key);
  json rest = meta;
  rest.erase("cluster");
  rest["key"] = key;
  EXPECT_EQ(rest, before);  // nothing else changed
  EXPECT_TRUE(bound.meta.starts_with(R"({"v":1,"cluster":"prod-a",)"));
  EXPECT_EQ(Ingestor::KeyFromMeta(bound.meta), bound.key);
  // No cluster: unchanged. No key: only the member.
  IngestItem same = *item;
  ASSERT_TRUE(BindCluster("", &same).ok());
  EXPECT_EQ(same.meta, item->meta);
  auto generic = ClassifyJsonLine(R"({"a":1})", "events", "2026-01-01T00:00:00Z", "line 1");
  ASSERT_TRUE(generic.ok());
  ASSERT_TRUE(BindCluster("c", &*generic).ok());
  EXPECT_TRUE(generic->key.empty());
  EXPECT_EQ(json::parse(generic->meta)["cluster"], "c");
  // Metadata not of the parsers' making is refused, not mangled.
  IngestItem odd{R"({"src":"x"})", "{}", ""};
  EXPECT_FALSE(BindCluster("c", &odd).ok());
}

}  // namespace
}  // namespace annals::ingest
