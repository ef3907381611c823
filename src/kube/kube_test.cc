#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "common/bytes.h"
#include "common/file_util.h"
#include "kube/kube_client.h"
#include "kube/resources.h"
#include "kube/yaml.h"

namespace annals::kube {
namespace {

std::string TempPath(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() / ("annals-kube-test-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  return (dir / name).string();
}

TEST(Yaml, MappingsSequencesAndScalars) {
  auto y = YamlToJson("a: 1\nb: [x, {c: true}]\nd:\n  - e\n", "t");
  ASSERT_TRUE(y.ok()) << y.status().message();
  EXPECT_EQ((*y)["a"], "1");
  EXPECT_EQ((*y)["b"][0], "x");
  EXPECT_EQ((*y)["b"][1]["c"], "true");
  EXPECT_EQ((*y)["d"][0], "e");
  EXPECT_TRUE(YamlToJson("", "t")->is_null());
}

TEST(Yaml, MalformedInputIsAnErrorNamingTheFileAndLine) {
  auto y = YamlToJson("a: 1\nb: [unclosed\n", "conf.yaml");
  ASSERT_FALSE(y.ok());
  EXPECT_EQ(y.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(y.status().message().find("conf.yaml"), std::string::npos);
  EXPECT_NE(y.status().message().find("line"), std::string::npos);
  EXPECT_FALSE(YamlToJson("a: *undefined\n", "t").ok());
  EXPECT_FALSE(YamlToJson("\t- tab\n: :", "t").ok());
}

TEST(Yaml, DeepNestingAndAliasBombsAreRefused) {
  std::string deep(100, '[');
  deep += std::string(100, ']');
  auto d = YamlToJson(deep, "t");
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.status().message().find("nested"), std::string::npos);
  // Nine levels of nine aliases: 387M values if expanded.
  std::string bomb = "a0: &a0 [x, x, x, x, x, x, x, x, x]\n";
  for (int i = 1; i < 9; ++i) {
    std::string prev = "*a" + std::to_string(i - 1);
    bomb += "a" + std::to_string(i) + ": &a" + std::to_string(i) + " [";
    for (int k = 0; k < 9; ++k) bomb += (k ? ", " : "") + prev;
    bomb += "]\n";
  }
  auto b = YamlToJson(bomb, "t");
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.status().message().find("aliases"), std::string::npos);
  // A few aliases are fine.
  auto ok = YamlToJson("a: &a {k: v}\nb: *a\n", "t");
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ((*ok)["b"]["k"], "v");
}

TEST(Kubeconfig, TokensCertificatesAndRefusedPlugins) {
  const std::string path = TempPath("kubeconfig");
  const std::string ca = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
  std::ofstream(path) << "apiVersion: v1\nkind: Config\ncurrent-context: prod\n"
                         "clusters:\n- name: c1\n  cluster:\n    server: https://10.0.0.1:6443\n"
                         "    certificate-authority-data: " << Base64Encode(ca) << "\n"
                         "contexts:\n- name: prod\n  context: {cluster: c1, user: u1}\n"
                         "- name: exec\n  context: {cluster: c1, user: u2}\n"
                         "users:\n- name: u1\n  user:\n    tokenFile: token\n"
                         "- name: u2\n  user:\n    exec:\n      command: aws\n";
  auto c = LoadKubeconfig(path);
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->server, "https://10.0.0.1:6443");
  EXPECT_EQ(c->ca_pem, ca);
  EXPECT_EQ(c->token_file, DirName(path) + "/token");
  auto e = LoadKubeconfig(path, "exec");
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("exec credential plugin"), std::string::npos);
  EXPECT_FALSE(LoadKubeconfig(path, "nope").ok());
  std::ofstream(path) << "clusters: [\n";
  EXPECT_FALSE(LoadKubeconfig(path).ok());
}

TEST(ResourceFor, KindsPluralsAndShortNames) {
  const std::pair<const char*, const char*> cases[] = {
      {"Pod", "pods"}, {"pod", "pods"}, {"po", "pods"}, {"pods", "pods"},
      {"Deployment", "deployments"}, {"deploy", "deployments"}, {"deployments", "deployments"},
      {"ReplicaSet", "replicasets"}, {"rs", "replicasets"}, {"StatefulSet", "statefulsets"},
      {"sts", "statefulsets"}, {"DaemonSet", "daemonsets"}, {"ds", "daemonsets"},
      {"Job", "jobs"}, {"CronJob", "cronjobs"}, {"cj", "cronjobs"}, {"Service", "services"},
      {"svc", "services"}, {"ConfigMap", "configmaps"}, {"cm", "configmaps"},
      {"Namespace", "namespaces"}, {"ns", "namespaces"}, {"Node", "nodes"},
      {"NetworkPolicy", "networkpolicies"}, {"netpol", "networkpolicies"},
      {"Ingress", "ingresses"}, {"ing", "ingresses"}, {"Endpoints", "endpoints"},
      {"EndpointSlice", "endpointslices"}, {"StorageClass", "storageclasses"},
      {"ClusterRoleBinding", "clusterrolebindings"}, {"crd", "customresourcedefinitions"},
      // Not in the table: the generic English rules.
      {"Lease", "leases"}, {"PodDisruptionBudget", "poddisruptionbudgets"},
      {"ResourceQuota", "resourcequotas"}, {"PriorityClass", "priorityclasses"},
      {"IngressClass", "ingressclasses"}, {"RuntimeClass", "runtimeclasses"},
      {"CiliumNetworkPolicy", "ciliumnetworkpolicies"}, {"Gateway", "gateways"},
      {"CiliumIdentity", "ciliumidentities"}, {"ciliumendpoints", "ciliumendpoints"}};
  for (auto [kind, want] : cases) EXPECT_EQ(ResourceFor(kind), want) << kind;
}

TEST(FindResource, OneTableForKindsAndApiPaths) {
  const ResourceInfo* d = FindResource("deploy");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->resource, "deployments");
  EXPECT_EQ(d->kind, "Deployment");
  EXPECT_EQ(d->group, "apps");
  EXPECT_TRUE(d->namespaced);
  ASSERT_NE(FindResource("ClusterRole"), nullptr);
  EXPECT_FALSE(FindResource("ClusterRole")->namespaced);
  EXPECT_EQ(FindResource("Lease"), nullptr);
  // Every resource, kind and short name names one entry.
  for (const auto& r : KnownResources()) {
    EXPECT_EQ(FindResource(r.resource), &r) << r.resource;
    EXPECT_EQ(FindResource(r.kind), &r) << r.kind;
    for (auto s : r.short_names) EXPECT_EQ(FindResource(s), &r) << s;
  }
}

}  // namespace
}  // namespace annals::kube
