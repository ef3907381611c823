#include "redact/redactor.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <simdjson.h>
#include <sstream>

#include "redact/policy.h"

namespace annals::redact {
namespace {

using nlohmann::json;

std::string Corpus(const std::string& rel) {
  std::ifstream f(std::string(ANNALS_CORPUS_DIR) + "/" + rel);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// A RequestResponse-level audit event around real objects.
json AuditEvent(const std::string& verb, const std::string& resource, const std::string& sub, const json& req,
                const json& resp) {
  json e{{"kind", "Event"},
         {"apiVersion", "audit.k8s.io/v1"},
         {"level", "RequestResponse"},
         {"auditID", "7e0c7d8a-1a2b-4c3d-9e8f-" + resource},
         {"stage", "ResponseComplete"},
         {"requestURI", "/api/v1/namespaces/default/" + resource},
         {"verb", verb},
         {"user", {{"username", "kubernetes-admin"}, {"groups", {"system:masters"}}}},
         {"sourceIPs", {"172.18.0.1"}},
         {"objectRef", {{"resource", resource}, {"namespace", "default"}, {"name", "db"}, {"apiVersion", "v1"}}},
         {"responseStatus", {{"metadata", json::object()}, {"code", 201}}},
         {"requestReceivedTimestamp", "2024-03-01T10:00:00.000000Z"},
         {"stageTimestamp", "2024-03-01T10:00:00.010000Z"}};
  if (!sub.empty()) e["objectRef"]["subresource"] = sub;
  if (!req.is_null()) e["requestObject"] = req;
  if (!resp.is_null()) e["responseObject"] = resp;
  return e;
}

json SecretObject() {
  json s{{"apiVersion", "v1"},
         {"kind", "Secret"},
         {"metadata", {{"name", "db"}, {"namespace", "default"}}},
         {"type", "Opaque"},
         {"data", {{"password", "aHVudGVyMg=="}, {"username", "YWRtaW4="}}},
         {"stringData", {{"token", "s3cr3t-str1ng-d4t4"}}}};
  // kubectl apply keeps the whole object, secret values included, here.
  s["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] =
      "{\"apiVersion\":\"v1\",\"data\":{\"password\":\"aHVudGVyMg==\"},\"kind\":\"Secret\"}\n";
  return s;
}

// Every redacted value put back where its commitment is gives the
// original bytes: nothing else was touched.
std::string PutBack(std::string redacted, const Redaction& r) {
  for (const auto& v : r.values) {
    const std::string c = "\"" + v.commitment() + "\"";
    const size_t at = redacted.find(c);
    EXPECT_NE(at, std::string::npos) << v.pointer;
    if (at == std::string::npos) continue;
    redacted.replace(at, c.size(), v.value);
  }
  return redacted;
}

Salt Counter() {
  static uint8_t n = 0;
  Salt s{};
  s.fill(++n);
  return s;
}

TEST(Redactor, SecretCreateLosesEveryValueAndKeepsItsShape) {
  Redactor r(DefaultPolicy());
  const std::string ev = AuditEvent("create", "secrets", "", SecretObject(), SecretObject()).dump();
  ASSERT_TRUE(r.MayApply(ev));
  auto red = r.Apply(ev);
  ASSERT_TRUE(red.ok()) << red.status().message();
  // data (2), stringData (1), last-applied (1), in request and response.
  ASSERT_EQ(red->values.size(), 8u);
  for (const char* secret : {"aHVudGVyMg==", "YWRtaW4=", "s3cr3t-str1ng-d4t4"})
    EXPECT_EQ(red->payload.find(secret), std::string::npos) << secret;
  json j = json::parse(red->payload);  // still JSON
  EXPECT_EQ(j["requestObject"]["data"].size(), 2u);  // the keys stay
  EXPECT_EQ(j["requestObject"]["metadata"]["name"], "db");
  EXPECT_EQ(j["objectRef"]["resource"], "secrets");
  for (const auto& v : red->values) {
    // Each pointer names its commitment in the redacted event, and the
    // sealed value and salt open it.
    EXPECT_EQ(j.at(json::json_pointer(v.pointer)), v.commitment()) << v.pointer;
    EXPECT_TRUE(Verify(v.commitment(), v.value, v.salt));
    Salt other = v.salt;
    other[0] ^= 1;
    EXPECT_FALSE(Verify(v.commitment(), v.value, other));
    EXPECT_FALSE(Verify(v.commitment(), v.value + " ", v.salt));
  }
  // Document order (nlohmann writes members sorted).
  EXPECT_EQ(red->values[0].pointer, "/requestObject/data/password");
  EXPECT_EQ(red->values[0].value, "\"aHVudGVyMg==\"");
  EXPECT_EQ(red->values[2].pointer, "/requestObject/metadata/annotations/kubectl.kubernetes.io~1last-applied-configuration");
  EXPECT_EQ(red->values[3].pointer, "/requestObject/stringData/token");
  EXPECT_EQ(PutBack(red->payload, *red), ev);
}

TEST(Redactor, EqualValuesGetUnrelatedCommitments) {
  Redactor r(DefaultPolicy());
  const std::string ev = AuditEvent("create", "secrets", "", SecretObject(), nullptr).dump();
  auto a = r.Apply(ev);
  auto b = r.Apply(ev);
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_EQ(a->values.size(), b->values.size());
  // The same password twice: a fresh salt each time, so two commitments
  // that say nothing about each other (or about a guess).
  EXPECT_NE(a->values[1].commitment(), b->values[1].commitment());
  EXPECT_NE(a->payload, b->payload);
}

TEST(Redactor, PatchesOfSecretsHaveNoKindAndAreStillRedacted) {
  Redactor r(DefaultPolicy());
  json merge{{"data", {{"password", "bmV3LXBhc3M="}}}};
  auto red = r.Apply(AuditEvent("patch", "secrets", "", merge, nullptr).dump());
  ASSERT_TRUE(red.ok());
  ASSERT_EQ(red->values.size(), 1u);
  EXPECT_EQ(red->values[0].pointer, "/requestObject/data/password");
  json ops = json::array({{{"op", "replace"}, {"path", "/data/password"}, {"value", "cGF0Y2hlZA=="}},
                          {{"op", "add"}, {"path", "/metadata/labels/x"}, {"value", "visible"}},
                          {{"op", "add"}, {"path", "/stringData"}, {"value", {{"k", "plain-secret"}}}}});
  red = r.Apply(AuditEvent("patch", "secrets", "", ops, nullptr).dump());
  ASSERT_TRUE(red.ok());
  ASSERT_EQ(red->values.size(), 2u);
  EXPECT_EQ(red->values[0].pointer, "/requestObject/0/value");
  EXPECT_EQ(red->values[1].pointer, "/requestObject/2/value");
  EXPECT_NE(red->payload.find("visible"), std::string::npos);
  EXPECT_EQ(red->payload.find("cGF0Y2hlZA=="), std::string::npos);
  EXPECT_EQ(red->payload.find("plain-secret"), std::string::npos);
}

TEST(Redactor, ServiceAccountTokensAndTokenReviews) {
  Redactor r(DefaultPolicy());
  json req{{"kind", "TokenRequest"}, {"apiVersion", "authentication.k8s.io/v1"},
           {"spec", {{"audiences", {"https://kubernetes.default.svc"}}, {"expirationSeconds", 3600}}}};
  json resp = req;
  resp["status"] = {{"token", "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"},
                    {"expirationTimestamp", "2024-03-01T11:00:00Z"}};
  auto red = r.Apply(AuditEvent("create", "serviceaccounts", "token", req, resp).dump());
  ASSERT_TRUE(red.ok());
  ASSERT_EQ(red->values.size(), 1u);
  EXPECT_EQ(red->values[0].pointer, "/responseObject/status/token");
  EXPECT_NE(red->payload.find("expirationTimestamp"), std::string::npos);
  json review{{"kind", "TokenReview"}, {"apiVersion", "authentication.k8s.io/v1"},
              {"spec", {{"token", "eyJhbGciOiJSUzI1NiJ9.cmV2aWV3.c2ln"}}}};
  red = r.Apply(AuditEvent("create", "tokenreviews", "", review, nullptr).dump());
  ASSERT_TRUE(red.ok());
  ASSERT_EQ(red->values.size(), 1u);
  EXPECT_EQ(red->values[0].pointer, "/requestObject/spec/token");
}

TEST(Redactor, CredentialEnvValuesInARealPodButNotValueFromOrOtherNames) {
  Redactor r(DefaultPolicy());
  json pod = json::parse(Corpus("k8s-objects/k9s/po.json"));
  ASSERT_EQ(pod["kind"], "Pod");
  auto& env = pod["spec"]["containers"][0]["env"];
  env = json::array({{{"name", "DB_PASSWORD"}, {"value", "correct-horse"}},
                     {{"name", "LOG_LEVEL"}, {"value", "debug"}},
                     {{"name", "GITHUB_TOKEN"}, {"value", "ghp_abcdef0123456789"}},
                     {{"name", "POSTGRES_PASSWORD"}, {"valueFrom", {{"secretKeyRef", {{"name", "pg"}, {"key", "pw"}}}}}}});
  const std::string text = pod.dump(2);  // pretty, as kubectl prints
  auto red = r.Apply(text);
  ASSERT_TRUE(red.ok());
  // The pod's own last-applied annotation, then the two credentials.
  ASSERT_EQ(red->values.size(), 3u);
  EXPECT_EQ(red->values[0].pointer, "/metadata/annotations/kubectl.kubernetes.io~1last-applied-configuration");
  EXPECT_EQ(red->values[1].pointer, "/spec/containers/0/env/0/value");
  EXPECT_EQ(red->values[2].pointer, "/spec/containers/0/env/2/value");
  EXPECT_NE(red->payload.find("debug"), std::string::npos);
  EXPECT_NE(red->payload.find("secretKeyRef"), std::string::npos);
  EXPECT_EQ(PutBack(red->payload, *red), text);
}

TEST(Redactor, LastAppliedAnnotationOfARealDeployment) {
  Redactor r(DefaultPolicy());
  const std::string dp = Corpus("k8s-objects/k9s/dp.json");
  ASSERT_NE(dp.find("last-applied-configuration"), std::string::npos);
  ASSERT_TRUE(r.MayApply(dp));
  auto red = r.Apply(dp);
  ASSERT_TRUE(red.ok());
  ASSERT_EQ(red->values.size(), 1u);
  EXPECT_EQ(json::parse(red->payload)["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"],
            red->values[0].commitment());
  EXPECT_EQ(PutBack(red->payload, *red), dp);
}

TEST(Redactor, HeadersInAnySourceByName) {
  Redactor r(DefaultPolicy());
  const std::string rec =
      R"({"eventSource":"example","requestParameters":{"headers":{"Authorization":"Bearer abc.def","Accept":"*/*"},)"
      R"("X-Api-Key":["k1","k2"],"Password":"pw","secret":{"secretName":"kept"}}})";
  ASSERT_TRUE(r.MayApply(rec));
  auto red = r.Apply(rec);
  ASSERT_TRUE(red.ok());
  std::vector<std::string> ptrs;
  for (const auto& v : red->values) ptrs.push_back(v.pointer);
  EXPECT_EQ(ptrs, (std::vector<std::string>{"/requestParameters/headers/Authorization",
                                            "/requestParameters/X-Api-Key/0", "/requestParameters/X-Api-Key/1",
                                            "/requestParameters/Password"}));
  // A key's rule is for strings: a volume's "secret" object is kept.
  EXPECT_NE(red->payload.find("\"secretName\":\"kept\""), std::string::npos);
  EXPECT_EQ(json::parse(red->payload)["requestParameters"]["X-Api-Key"].size(), 2u);
}

TEST(Redactor, EscapedNamesCannotHideAValue) {
  Redactor r(DefaultPolicy());
  // "d\u0061ta" is "data"; "\u0050assword" is "Password".
  const std::string ev =
      R"({"kind":"Secret","apiVersion":"v1","d\u0061ta":{"k":"dmFsdWU="},"x":{"\u0050assword":"p\"w"}})";
  ASSERT_TRUE(r.MayApply(ev));
  auto red = r.Apply(ev);
  ASSERT_TRUE(red.ok());
  ASSERT_EQ(red->values.size(), 2u);
  EXPECT_EQ(red->values[0].pointer, "/data/k");
  EXPECT_EQ(red->values[1].pointer, "/x/Password");
  EXPECT_EQ(red->values[1].value, R"("p\"w")");
}

TEST(Redactor, EscapedSlashInAnAnnotationKeyIsStillTheAnnotation) {
  Redactor r(DefaultPolicy());
  const std::string obj =
      R"({"metadata":{"annotations":{"kubectl.kubernetes.io\/last-applied-configuration":"{\"data\":1}"}}})";
  ASSERT_TRUE(r.MayApply(obj));
  auto red = r.Apply(obj);
  ASSERT_TRUE(red.ok());
  ASSERT_EQ(red->values.size(), 1u);
  EXPECT_EQ(red->values[0].pointer, "/metadata/annotations/kubectl.kubernetes.io~1last-applied-configuration");
}

TEST(Redactor, ListsOfSecretsAndItemsWithoutAKind) {
  Redactor r(DefaultPolicy());
  // A list response (kubectl get secrets -o json): the items carry no kind.
  const std::string list =
      R"({"kind":"SecretList","apiVersion":"v1","items":[{"metadata":{"name":"a"},"data":{"k":"bGlzdC1vbmU="}},)"
      R"({"metadata":{"name":"b"},"data":{"k":"bGlzdC10d28="}}]})";
  ASSERT_TRUE(r.MayApply(list));
  auto red = r.Apply(list);
  ASSERT_TRUE(red.ok());
  ASSERT_EQ(red->values.size(), 2u);
  EXPECT_EQ(red->values[1].pointer, "/items/1/data/k");
  // One item as the watch collector stores it: the kind is in the entry's
  // metadata, not in the object.
  const std::string item = R"({"metadata":{"name":"a","resourceVersion":"7"},"data":{"k":"aXRlbQ=="}})";
  EXPECT_FALSE(r.MayApply(item));
  ASSERT_TRUE(r.MayApply(item, "Secret"));
  red = r.Apply(item, {}, "Secret");
  ASSERT_TRUE(red.ok());
  ASSERT_EQ(red->values.size(), 1u);
  EXPECT_EQ(red->values[0].pointer, "/data/k");
  // The hint is for the top-level object only, and only when it lacks a kind.
  red = r.Apply(R"({"kind":"ConfigMap","data":{"k":"v"}})", {}, "Secret");
  ASSERT_TRUE(red.ok());
  EXPECT_TRUE(red->values.empty());
}

TEST(Redactor, AJsonPatchReplacingTheWholeSecret) {
  Redactor r(DefaultPolicy());
  const std::string ev =
      R"({"auditID":"x","stage":"ResponseComplete","objectRef":{"resource":"secrets","name":"s"},)"
      R"("requestObject":[{"op":"replace","path":"","value":{"kind":"Secret","data":{"k":"d2hvbGU="}}}]})";
  auto red = r.Apply(ev);
  ASSERT_TRUE(red.ok());
  ASSERT_EQ(red->values.size(), 1u);
  EXPECT_EQ(red->values[0].pointer, "/requestObject/0/value");
}

TEST(Redactor, RulesTooLongToLookForSendEveryEventToTheParser) {
  const std::string long_key(70, 'k');
  auto p = ParsePolicy(R"({"defaults":false,"keys":[")" + long_key + R"("]})");
  ASSERT_TRUE(p.ok());
  Redactor r(*p);
  const std::string ev = R"({"a":{")" + long_key + R"(":"hidden"}})";
  EXPECT_TRUE(r.MayApply(ev));
  auto red = r.Apply(ev);
  ASSERT_TRUE(red.ok());
  EXPECT_EQ(red->values.size(), 1u);
}

TEST(Redactor, APodMountingASecretIsNotSentToTheParser) {
  Redactor r(DefaultPolicy());
  // A volume source named "secret" (lower case) is neither the kind Secret
  // nor a credential-named key with a string value.
  const std::string pod = R"({"kind":"Pod","spec":{"volumes":[{"name":"creds","secret":{"secretName":"db"}}]}})";
  EXPECT_FALSE(r.MayApply(pod));
  EXPECT_TRUE(r.MayApply(R"({"kind":"Secret"})"));
  EXPECT_TRUE(r.MayApply(R"({"AUTHORIZATION":"x"})"));
  EXPECT_FALSE(r.MayApply(R"({"kind":"SECRET"})"));  // kinds are exact, as Apply compares them
}

TEST(Redactor, NameValuePairsOnlyInEnvAndHeaderLists) {
  Redactor r(DefaultPolicy());
  // A list of name/value pairs that is not env or headers: left alone.
  auto red = r.Apply(R"({"conditions":[{"name":"token-refresh","value":"ok"}]})");
  ASSERT_TRUE(red.ok());
  EXPECT_TRUE(red->values.empty());
  red = r.Apply(R"({"httpGet":{"httpHeaders":[{"name":"X-Auth-Secret","value":"s3"},{"name":"Host","value":"h"}]}})");
  ASSERT_TRUE(red.ok());
  ASSERT_EQ(red->values.size(), 1u);
  EXPECT_EQ(red->values[0].pointer, "/httpGet/httpHeaders/0/value");
}

TEST(Redactor, TheCorpusAuditEventsHoldNothingToRedactAndAreLeftAlone) {
  Redactor r(DefaultPolicy());
  std::istringstream in(Corpus("k8s-audit/audit2rbac-demo.jsonl"));
  size_t lines = 0, looked = 0;
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    ++lines;
    if (!r.MayApply(line)) continue;
    ++looked;
    auto red = r.Apply(line);
    ASSERT_TRUE(red.ok()) << red.status().message();
    EXPECT_TRUE(red->values.empty()) << line.substr(0, 200);
  }
  EXPECT_GT(lines, 30u);
  // The cheap look sends only some events to the parser.
  EXPECT_LT(looked, lines);
}

// The look at a parsed document says what the look at its bytes says, on
// every audit event and object of the corpus (Falco's secrets and tokens,
// the k9s objects with last-applied annotations and env lists, plain
// events), on escapes that spell a trigger, and under a policy of one key.
TEST(Redactor, TheLookAtAParsedDocumentAgreesWithTheLookAtItsBytes) {
  std::vector<std::string> docs = {
      R"({"kind":"Secret","d\u0061ta":{}})", R"({"x":{"\u0050assword":"p"}})", R"({"x":{"env":[]}})",
      R"({"a":["ENV"]})", R"({"a":"secrets "})", R"({"a":{"b":{"c":[1,2,{"cookie":null}]}}})", R"([])", R"("Secret")",
      R"({"metadata":{"annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{}"}}})"};
  for (const char* dir : {"k8s-audit", "k8s-objects"})
    for (const auto& e : std::filesystem::recursive_directory_iterator(std::string(ANNALS_CORPUS_DIR) + "/" + dir)) {
      if (!e.is_regular_file()) continue;
      const std::string text = Corpus(std::filesystem::relative(e.path(), ANNALS_CORPUS_DIR).string());
      std::istringstream lines(text);
      bool whole = text.find('\n') == std::string::npos || text.front() != '{' || text.find("\n{") == std::string::npos;
      if (whole) docs.push_back(text);
      else
        for (std::string l; std::getline(lines, l);)
          if (!l.empty()) docs.push_back(l);
    }
  Policy one;
  one.keys = {"token"};
  const Redactor all(DefaultPolicy()), key(one);
  simdjson::dom::parser parser;
  size_t parsed = 0, yes = 0, no = 0;
  for (const auto& d : docs) {
    simdjson::dom::element doc;
    if (parser.parse(d).get(doc) != simdjson::SUCCESS) continue;
    ++parsed;
    for (const Redactor* r : {&all, &key})
      for (std::string_view kind : {"", "Secret", "Pod"}) {
        const bool bytes = r->MayApply(d, kind);
        EXPECT_EQ(r->MayApply(doc, kind), bytes) << d.substr(0, 200) << " kind " << kind;
        (bytes ? yes : no) += 1;
      }
  }
  EXPECT_GT(parsed, 50u);
  EXPECT_GT(yes, 20u);
  EXPECT_GT(no, 20u);
}

TEST(Redactor, MalformedInputIsAnErrorAndNothingIsReturned) {
  Redactor r(DefaultPolicy());
  for (const char* bad : {R"({"kind":"Secret","data":{"a":"b"})", R"({"kind":"Secret","data":{"a":"b"}} x)",
                          R"({"kind":"Secret","data":{"a":tru}})", R"({"kind":"Secret",data:1})",
                          R"({"kind":"Secret","data":{"a":"\q"}})", R"({"kind":"Secret","data":[01]})",
                          R"({"kind":"Secret","data":{"a":"unterminated)", "", "[", "{\"a\":\"\x01\"}"}) {
    auto red = r.Apply(bad);
    EXPECT_FALSE(red.ok()) << bad;
    if (!red.ok()) {
      EXPECT_NE(red.status().message().find("redaction: malformed JSON"), std::string::npos);
    }
  }
  std::string deep(70, '[');
  deep += std::string(70, ']');
  auto red = r.Apply(deep);
  ASSERT_FALSE(red.ok());
  EXPECT_NE(red.status().message().find("64 levels"), std::string::npos);
}

TEST(Redactor, CommitmentsParseStrictly) {
  Redactor r(DefaultPolicy());
  auto red = r.Apply(R"({"password":"x"})", Counter);
  ASSERT_TRUE(red.ok());
  ASSERT_EQ(red->values.size(), 1u);
  const std::string c = red->values[0].commitment();
  auto mac = ParseCommitment(c);
  ASSERT_TRUE(mac.ok());
  EXPECT_EQ(*mac, red->values[0].mac);
  EXPECT_FALSE(ParseCommitment(c.substr(0, c.size() - 1)).ok());
  EXPECT_FALSE(ParseCommitment("redacted:v2:" + c.substr(12)).ok());
  std::string bad = c;
  bad.back() = '*';
  EXPECT_FALSE(ParseCommitment(bad).ok());
}

TEST(Redactor, TheRecordInTheMetadataNamesPathsAndPolicy) {
  Redactor r(DefaultPolicy());
  auto red = r.Apply(AuditEvent("create", "secrets", "", SecretObject(), nullptr).dump());
  ASSERT_TRUE(red.ok());
  json meta = json::parse(r.RecordInMeta(R"({"v":1,"src":"k8s-audit"})", *red));
  EXPECT_EQ(meta["src"], "k8s-audit");
  EXPECT_EQ(meta["redacted"]["count"], 4);
  EXPECT_EQ(meta["redacted"]["paths"][0], "/requestObject/data/password");
  EXPECT_EQ(meta["redacted"]["policy"], r.version());
  EXPECT_TRUE(r.version().starts_with("default@"));
  EXPECT_EQ(json::parse(r.RecordInMeta("{}", *red))["redacted"]["count"], 4);
}

TEST(Policy, FileAddsRulesOrReplacesTheDefaults) {
  auto p = ParsePolicy(R"({"name":"strict","kinds":[{"kind":"ConfigMap","resource":"configmaps",
      "paths":["data/*","binaryData/*"]}],"keys":["X-Vault-Token"],"credential_names":["DSN"]})");
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_EQ(p->kinds.size(), DefaultPolicy().kinds.size() + 1);
  EXPECT_EQ(p->keys.back(), "x-vault-token");
  Redactor r(*p);
  EXPECT_TRUE(r.version().starts_with("strict@"));
  EXPECT_NE(r.version(), Redactor(DefaultPolicy()).version());
  auto red = r.Apply(R"({"kind":"ConfigMap","data":{"a":"1"},"env":[{"name":"DB_DSN","value":"pg://u:p@h"}]})");
  ASSERT_TRUE(red.ok());
  EXPECT_EQ(red->values.size(), 2u);
  auto only = ParsePolicy(R"({"defaults":false,"keys":["x"]})");
  ASSERT_TRUE(only.ok());
  EXPECT_TRUE(only->kinds.empty());
  EXPECT_FALSE(Redactor(*only).MayApply(AuditEvent("create", "secrets", "", SecretObject(), nullptr).dump()));
}

TEST(Policy, BadFilesSayWhy) {
  for (const char* bad :
       {"[]", "{", R"({"colour":1})", R"({"keys":"x"})", R"({"keys":[""]})", R"({"defaults":"yes"})",
        R"({"kinds":[{"kind":"X"}]})", R"({"kinds":[{"paths":["a"]}]})", R"({"kinds":[{"kind":"X","paths":["/a"]}]})",
        R"({"kinds":[{"kind":"X","paths":["a//b"]}]})", R"({"kinds":[{"kind":"X","paths":["a"],"x":1}]})",
        R"({"annotations":["a*b"]})", R"({"name":"a@b"})"}) {
    auto p = ParsePolicy(bad);
    EXPECT_FALSE(p.ok()) << bad;
    if (!p.ok()) {
      EXPECT_TRUE(p.status().message().starts_with("redaction policy: ")) << p.status().message();
    }
  }
}

}  // namespace
}  // namespace annals::redact
