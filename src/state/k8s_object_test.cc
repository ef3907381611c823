// Tests for k8s_object.h: IP keys, resource names and the facts read from
// real Kubernetes objects of the shared corpus (k9s fixtures, the KubeHound
// kind cluster's PodLists).
#include "state/k8s_object.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <sstream>
#include <string>

namespace annals::state {
namespace {

using nlohmann::json;

std::string CorpusFile(const std::string& rel) {
  std::ifstream in(std::string(ANNALS_CORPUS_DIR) + "/k8s-objects/" + rel, std::ios::binary);
  EXPECT_TRUE(in.good()) << rel;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

json Items(const std::string& rel) { return json::parse(CorpusFile(rel))["items"]; }

const json* FindByName(const json& items, const std::string& name) {
  for (const auto& i : items)
    if (i["metadata"]["name"] == name) return &i;
  return nullptr;
}

IpKey Ip(std::string_view s) {
  auto k = ParseIp(s);
  EXPECT_TRUE(k.has_value()) << s;
  return k.value_or(IpKey{});
}

TEST(ParseIp, V4IsMappedIntoV6) {
  IpKey k = Ip("10.244.1.2");
  const IpKey want = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 244, 1, 2};
  EXPECT_EQ(k, want);
  EXPECT_EQ(FormatIp(k), "10.244.1.2");
  // The IPv4-mapped IPv6 spelling is the same address.
  EXPECT_EQ(Ip("::ffff:10.244.1.2"), k);
  EXPECT_EQ(FormatIp(Ip("0.0.0.0")), "0.0.0.0");
  EXPECT_EQ(FormatIp(Ip("255.255.255.255")), "255.255.255.255");
}

TEST(ParseIp, V6IsCanonicalisedWhenFormatted) {
  IpKey k = Ip("fd00:10:244:1:0:0:0:2");
  EXPECT_EQ(FormatIp(k), "fd00:10:244:1::2");
  EXPECT_EQ(Ip("FD00:10:244:1::2"), k);
  EXPECT_EQ(FormatIp(Ip("::1")), "::1");
  EXPECT_EQ(FormatIp(Ip("::")), "::");
  EXPECT_EQ(FormatIp(Ip("2001:db8::8a2e:370:7334")), "2001:db8::8a2e:370:7334");
  EXPECT_NE(Ip("::1"), Ip("0.0.0.1"));
}

TEST(ParseIp, RejectsWhatIsNotAnAddress) {
  for (std::string_view bad :
       {"", "10.244.1", "10.244.1.256", "10.244.1.2 ", " 10.244.1.2", "10.244.1.2/24", "fd00::g",
        "1:2:3:4:5:6:7:8:9", "localhost", "10.244.1.2:80",
        "0000:0000:0000:0000:0000:0000:0000:0000:0000:0000:0000"}) {
    EXPECT_FALSE(ParseIp(bad).has_value()) << "'" << bad << "'";
  }
  // Embedded NUL must not let a prefix through.
  EXPECT_FALSE(ParseIp(std::string_view("10.0.0.1\0x", 10)).has_value());
}

// The IPv4 fast path must take exactly what inet_pton(AF_INET) takes: every
// string of digits and dots up to 15 bytes, drawn at random, and the edge
// cases by hand.
TEST(ParseIp, V4AgreesWithInetPton) {
  auto pton = [](const std::string& s) -> std::optional<IpKey> {
    in_addr a;
    if (::inet_pton(AF_INET, s.c_str(), &a) != 1) return std::nullopt;
    IpKey k{};
    k[10] = k[11] = 0xff;
    std::memcpy(k.data() + 12, &a, 4);
    return k;
  };
  std::vector<std::string> cases = {"0.0.0.0", "00.0.0.0", "1.2.3.04", "1.2.3.4.", ".1.2.3.4", "1..2.3",
                                    "255.255.255.255", "256.1.1.1", "1.2.3.1000", "1.2.3", "1.2.3.4.5",
                                    "01.2.3.4", "1.2.3.-4", "1.2.3.4a"};
  std::mt19937 rng(42);
  const char alphabet[] = "0123456789.";
  for (int i = 0; i < 100000; ++i) {
    // Noise of digits and dots...
    std::string s(1 + rng() % 15, '0');
    for (char& c : s) c = alphabet[rng() % 11];
    cases.push_back(s);
    // ...and dotted numbers near the edges: 3 to 5 parts of 0-299, some
    // with a leading zero.
    s.clear();
    const int parts = 3 + static_cast<int>(rng() % 3 == 0 ? rng() % 3 : 1);
    for (int k = 0; k < parts; ++k) {
      if (k) s += '.';
      if (rng() % 16 == 0) s += '0';
      s += std::to_string(rng() % 300);
    }
    cases.push_back(s);
  }
  int accepted = 0;
  for (const std::string& s : cases) {
    auto want = pton(s);
    // Strings inet_pton(AF_INET) refuses may still be IPv6 (not these:
    // digits and dots only), so the answers must agree exactly.
    ASSERT_EQ(ParseIp(s), want) << "'" << s << "'";
    accepted += want.has_value();
  }
  EXPECT_GT(accepted, 10000);  // the draw does reach valid addresses
}

TEST(ReadObjectFacts, K9sPod) {
  auto f = ReadObjectFacts(CorpusFile("k9s/po.json"));
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(f->kind, "Pod");
  EXPECT_EQ(f->api_version, "v1");
  EXPECT_EQ(f->uid, "614908ed-415b-4506-8370-e3e36fa8cc13");
  EXPECT_EQ(f->name, "nginx");
  EXPECT_EQ(f->namespace_, "default");
  EXPECT_EQ(f->resource_version, "1482816");
  ASSERT_EQ(f->pod_ips.size(), 1u);  // podIP only (no podIPs in this 2019 object)
  EXPECT_EQ(FormatIp(f->pod_ips[0]), "172.17.0.6");
  EXPECT_EQ(f->phase, "Running");
  EXPECT_EQ(f->node_name, "minikube");
  EXPECT_EQ(f->service_account, "default");
  EXPECT_FALSE(f->host_network);
  EXPECT_FALSE(f->deleting);
  EXPECT_FALSE(f->has_finalizers);
  EXPECT_EQ(f->grace_seconds, -1);
  EXPECT_TRUE(f->owners.empty());
  EXPECT_TRUE(f->labels.empty());
  EXPECT_TRUE(f->selector.empty());
}

TEST(ReadObjectFacts, K9sSidecarAndInitPodsHaveIpsAndOwners) {
  for (const char* file : {"k9s/po_sidecar.json", "k9s/po_init.json", "k9s/cilium-operator-pod.json"}) {
    std::string text = CorpusFile(file);
    json j = json::parse(text);
    auto f = ReadObjectFacts(text);
    ASSERT_TRUE(f.ok()) << file << ": " << f.status().ToString();
    EXPECT_EQ(f->uid, j["metadata"]["uid"]) << file;
    EXPECT_EQ(f->phase, j["status"].value("phase", "")) << file;
    std::vector<std::string> want_ips;
    if (j["status"].contains("podIPs")) {
      for (const auto& p : j["status"]["podIPs"]) want_ips.push_back(p["ip"]);
    } else if (j["status"].contains("podIP")) {
      want_ips.push_back(j["status"]["podIP"]);
    }
    std::vector<std::string> got_ips;
    for (const auto& k : f->pod_ips) got_ips.push_back(FormatIp(k));
    EXPECT_EQ(got_ips, want_ips) << file;
    EXPECT_EQ(f->host_network, j["spec"].value("hostNetwork", false)) << file;
    size_t owners = j["metadata"].value("ownerReferences", json::array()).size();
    EXPECT_EQ(f->owners.size(), owners) << file;
    size_t labels = j["metadata"].value("labels", json::object()).size();
    EXPECT_EQ(f->labels.size(), labels) << file;
  }
}

TEST(ReadObjectFacts, KubeHoundPodListItems) {
  json items = Items("kubehound-kind-cluster/default/pods.json");
  ASSERT_EQ(items.size(), 3u);
  for (const auto& item : items) {
    auto f = ReadObjectFacts(item.dump());
    ASSERT_TRUE(f.ok()) << f.status().ToString();
    EXPECT_EQ(f->kind, "Pod");
    EXPECT_EQ(f->uid, item["metadata"]["uid"]);
    ASSERT_EQ(f->pod_ips.size(), 1u);
    EXPECT_EQ(FormatIp(f->pod_ips[0]), item["status"]["podIP"]);
    EXPECT_EQ(f->node_name, "kubehound.test.local-worker");
    ASSERT_EQ(f->labels.size(), 1u);
    EXPECT_EQ(f->labels[0], (std::pair<std::string, std::string>{"app", "kubehound-edge-test"}));
  }
  // kube-system: coredns is owned by its ReplicaSet (controller); the static
  // etcd pod runs on the host network with the node's IP.
  json ks = Items("kubehound-kind-cluster/kube-system/pods.json");
  const json* coredns = FindByName(ks, "coredns-5d78c9869d-6tjpv");
  ASSERT_NE(coredns, nullptr);
  auto c = ReadObjectFacts(coredns->dump());
  ASSERT_TRUE(c.ok());
  ASSERT_EQ(c->owners.size(), 1u);
  EXPECT_EQ(c->owners[0].kind, "ReplicaSet");
  EXPECT_EQ(c->owners[0].name, "coredns-5d78c9869d");
  EXPECT_EQ(c->owners[0].uid, "b1e04628-b49d-422e-a7b1-67196aad5a09");
  EXPECT_TRUE(c->owners[0].controller);
  EXPECT_EQ(c->service_account, "coredns");
  EXPECT_FALSE(c->host_network);
  const json* etcd = FindByName(ks, "etcd-kubehound.test.local-control-plane");
  ASSERT_NE(etcd, nullptr);
  auto e = ReadObjectFacts(etcd->dump());
  ASSERT_TRUE(e.ok());
  EXPECT_TRUE(e->host_network);
  ASSERT_EQ(e->pod_ips.size(), 1u);
  EXPECT_EQ(FormatIp(e->pod_ips[0]), "172.18.0.4");
  EXPECT_EQ(e->owners.at(0).kind, "Node");
}

TEST(ReadObjectFacts, WorkloadsAndServices) {
  auto rs = ReadObjectFacts(CorpusFile("k9s/rs.json"));
  ASSERT_TRUE(rs.ok());
  EXPECT_EQ(rs->kind, "ReplicaSet");
  EXPECT_EQ(rs->name, "icx-db-7d4b578979");
  EXPECT_EQ(rs->namespace_, "icx");
  ASSERT_EQ(rs->owners.size(), 1u);
  EXPECT_EQ(rs->owners[0].kind, "Deployment");
  EXPECT_EQ(rs->owners[0].name, "icx-db");
  EXPECT_EQ(rs->owners[0].uid, "6f6143bc-a5f3-11e9-990f-42010a800218");
  EXPECT_TRUE(rs->owners[0].controller);
  EXPECT_TRUE(rs->pod_ips.empty());

  auto dp = ReadObjectFacts(CorpusFile("k9s/dp.json"));
  ASSERT_TRUE(dp.ok());
  EXPECT_EQ(dp->uid, "6f6143bc-a5f3-11e9-990f-42010a800218");
  EXPECT_EQ(dp->labels, (std::vector<std::pair<std::string, std::string>>{{"app", "icx-db"}}));

  auto job = ReadObjectFacts(CorpusFile("k9s/job.json"));
  ASSERT_TRUE(job.ok());
  ASSERT_EQ(job->owners.size(), 1u);
  EXPECT_EQ(job->owners[0].kind, "CronJob");
  EXPECT_EQ(job->owners[0].uid, "7f0b856c-cb39-11e9-990f-42010a800218");
  // Labels come back sorted by key.
  ASSERT_EQ(job->labels.size(), 2u);
  EXPECT_EQ(job->labels[0].first, "controller-uid");
  EXPECT_EQ(job->labels[1].first, "job-name");

  auto svc = ReadObjectFacts(CorpusFile("k9s/svc.json"));
  ASSERT_TRUE(svc.ok());
  EXPECT_EQ(svc->kind, "Service");
  EXPECT_EQ(svc->selector, (std::vector<std::pair<std::string, std::string>>{{"app", "dictionary1"}}));

  // A Deployment's spec.selector is a LabelSelector object, not a Service
  // selector: it must not be read as one.
  EXPECT_TRUE(dp->selector.empty());
}

TEST(ReadObjectFacts, DeletionFinalizersAndHelmRelease) {
  json pod = json::parse(CorpusFile("k9s/po.json"));
  pod["metadata"]["deletionTimestamp"] = "2019-08-09T06:00:00Z";
  pod["metadata"]["deletionGracePeriodSeconds"] = 30;
  pod["metadata"]["finalizers"] = json::array({"example.com/keep"});
  pod["metadata"]["annotations"]["meta.helm.sh/release-name"] = "web";
  pod["status"]["podIPs"] = json::array({{{"ip", "10.1.0.7"}}, {{"ip", "fd00::7"}}});
  auto f = ReadObjectFacts(pod.dump());
  ASSERT_TRUE(f.ok());
  EXPECT_TRUE(f->deleting);
  EXPECT_EQ(f->grace_seconds, 30);
  EXPECT_TRUE(f->has_finalizers);
  EXPECT_EQ(f->helm_release, "web");
  // podIPs wins over podIP, both families kept in order.
  ASSERT_EQ(f->pod_ips.size(), 2u);
  EXPECT_EQ(FormatIp(f->pod_ips[0]), "10.1.0.7");
  EXPECT_EQ(FormatIp(f->pod_ips[1]), "fd00::7");

  pod["metadata"]["finalizers"] = json::array();
  pod["metadata"]["deletionTimestamp"] = nullptr;
  pod["metadata"]["deletionGracePeriodSeconds"] = 0;
  auto g = ReadObjectFacts(pod.dump());
  ASSERT_TRUE(g.ok());
  EXPECT_FALSE(g->deleting);  // null is not set
  EXPECT_FALSE(g->has_finalizers);
  EXPECT_EQ(g->grace_seconds, 0);
}

TEST(ReadObjectFacts, StatusAndGarbageAreNotObjects) {
  // A delete answered with a Status: no metadata.uid.
  auto st = ReadObjectFacts(
      R"({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Success",)"
      R"("details":{"name":"my-config","kind":"configmaps","uid":"ded3abb9-d920-11e8-a2e6-080027728ac4"}})");
  EXPECT_EQ(st.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(ReadObjectFacts(R"({"kind":"Pod"})").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(ReadObjectFacts(R"({"kind":"Pod","metadata":"x"})").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(ReadObjectFacts("[1,2]").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ReadObjectFacts("{\"kind\":").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ReadObjectFacts("").status().code(), StatusCode::kInvalidArgument);
}

TEST(RawMember, FindsTopLevelMembersOnly) {
  const std::string ev =
      R"({"kind":"Event","objectRef":{"responseObject":"decoy","name":"a\"}b"},)"
      R"( "note" : "{\"responseObject\":1}", "n": -1.5e3, "nil":null,)"
      "\n\t\"responseObject\" : {\"kind\":\"Pod\",\"a\":[{\"x\":\"]}\"}]} ,\"last\":true}";
  EXPECT_EQ(RawMember(ev, "responseObject"), R"({"kind":"Pod","a":[{"x":"]}"}]})");
  EXPECT_EQ(RawMember(ev, "n"), "-1.5e3");
  EXPECT_EQ(RawMember(ev, "nil"), "null");
  EXPECT_EQ(RawMember(ev, "last"), "true");
  EXPECT_EQ(RawMember(ev, "note"), R"("{\"responseObject\":1}")");
  EXPECT_EQ(RawMember(ev, "name"), "");  // nested only
  EXPECT_EQ(RawMember(ev, "missing"), "");
  EXPECT_EQ(RawMember("[]", "x"), "");
  EXPECT_EQ(RawMember("{}", "x"), "");
}

// The member is found and read in one pass; whether it is there at all is
// told apart from whether it is an object with a uid.
TEST(ReadMemberFacts, ReadsTheResponseObjectAndSaysWhetherItIsThere) {
  const std::string pod = CorpusFile("k9s/po.json");
  bool present = false;
  auto f = ReadMemberFacts(R"({"kind":"Event","responseObject":)" + pod + R"(,"stage":"ResponseComplete"})",
                           "responseObject", &present);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_TRUE(present);
  auto direct = ReadObjectFacts(pod);
  ASSERT_TRUE(direct.ok());
  EXPECT_EQ(f->uid, direct->uid);
  EXPECT_EQ(f->labels, direct->labels);
  EXPECT_EQ(f->pod_ips, direct->pod_ips);
  EXPECT_EQ(f->owners.size(), direct->owners.size());

  EXPECT_FALSE(ReadMemberFacts(R"({"responseObject":null})", "responseObject", &present).ok());
  EXPECT_TRUE(present);  // a delete's Status-less answer still names the object by the event
  EXPECT_EQ(ReadMemberFacts(R"({"requestObject":{}})", "responseObject", &present).status().code(),
            StatusCode::kNotFound);
  EXPECT_FALSE(present);
  EXPECT_FALSE(ReadMemberFacts("not json", "responseObject", &present).ok());
  EXPECT_FALSE(present);
  // The first of a repeated name counts, compared decoded.
  auto first = ReadMemberFacts(R"({"respons\u0065Object":{"metadata":{"uid":"a"}},"responseObject":{"metadata":{"uid":"b"}}})",
                               "responseObject", &present);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->uid, "a");
}

TEST(ReadAuditFields, ReadsTheIndexedFieldsAndTheWrittenObjectInOnePass) {
  // A create as the apiserver writes it, with a userAgent whose 256th byte
  // is inside a two-byte UTF-8 sequence.
  const std::string ua = std::string(255, 'a') + "\xc3\xa9" + "tail";
  const std::string event =
      R"({"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"RequestResponse","auditID":"a-1",)"
      R"("stage":"ResponseComplete","verb":"create","user":{"groups":["g"],"username":"alice"},)"
      R"("impersonatedUser":{"username":"bob"},"sourceIPs":["10.0.0.7","10.0.0.8"],"userAgent":")" + ua +
      R"(","objectRef":{"resource":"pods","namespace":"shop","name":"web-0","apiGroup":"","subresource":"status"},)"
      R"("responseStatus":{"metadata":{},"code":201},"responseObject":{"kind":"Pod","apiVersion":"v1",)"
      R"("metadata":{"name":"web-0","namespace":"shop","uid":"u-1"}},"stageTimestamp":"2024-05-01T12:00:00.012345Z"})";
  AuditFields f;
  WrittenObject w;
  ASSERT_TRUE(ReadAuditFields(event, &f, &w).ok());
  EXPECT_EQ(f.stage, "ResponseComplete");
  EXPECT_EQ(f.verb, "create");
  EXPECT_EQ(f.user, "alice");
  EXPECT_EQ(f.as, "bob");
  EXPECT_EQ(f.ip, "10.0.0.7");
  EXPECT_EQ(f.ua, std::string(255, 'a'));  // not cut inside the sequence
  EXPECT_EQ(f.resource, "pods");
  EXPECT_EQ(f.subresource, "status");
  EXPECT_EQ(f.namespace_, "shop");
  EXPECT_EQ(f.name, "web-0");
  EXPECT_EQ(f.level, "RequestResponse");
  EXPECT_EQ(f.code, 201);
  EXPECT_EQ(f.time, "2024-05-01T12:00:00.012345Z");
  ASSERT_TRUE(w.present);
  ASSERT_TRUE(w.facts.ok()) << w.facts.status().ToString();
  EXPECT_EQ(w.facts->uid, "u-1");

  // Not a write that succeeded: the object is not read.
  std::string failed = event;
  failed.replace(failed.find("\"code\":201"), 10, "\"code\":409");
  WrittenObject none;
  ASSERT_TRUE(ReadAuditFields(failed, &f, &none).ok());
  EXPECT_EQ(f.code, 409);
  EXPECT_FALSE(none.present);
  EXPECT_FALSE(none.facts.ok());

  // v1beta1 names the time "timestamp"; what is absent is "".
  ASSERT_TRUE(ReadAuditFields(R"({"stage":"ResponseComplete","timestamp":"2019-01-01T00:00:00Z","verb":5})", &f).ok());
  EXPECT_EQ(f.time, "2019-01-01T00:00:00Z");
  EXPECT_EQ(f.verb, "");
  EXPECT_EQ(f.user, "");
  EXPECT_EQ(f.code, 0);

  // A name written with escapes is the name it decodes to, as for the DOM.
  ASSERT_TRUE(ReadAuditFields(R"({"st\u0061ge":"ResponseComplete","v\"erb":"x","verb":"get"})", &f).ok());
  EXPECT_EQ(f.stage, "ResponseComplete");
  EXPECT_EQ(f.verb, "get");
  auto facts = ReadObjectFacts(R"({"kind":"Pod","metad\u0061ta":{"name":"n","\u0075id":"u-2"}})");
  ASSERT_TRUE(facts.ok()) << facts.status().ToString();
  EXPECT_EQ(facts->uid, "u-2");

  EXPECT_EQ(ReadAuditFields("[1,2]", &f).code(), StatusCode::kDataLoss);
  EXPECT_EQ(ReadAuditFields("null", &f).code(), StatusCode::kDataLoss);
}

}  // namespace
}  // namespace annals::state
