#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "common/bytes.h"
#include "common/file_util.h"
#include "watch/collector.h"
#include "watch/kube_client.h"
#include "watch/watch_state.h"

namespace annals::watch {
namespace {

std::string TempPath(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() / ("annals-watch-test-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  return (dir / name).string();
}

TEST(WatchState, JournalSurvivesReopenAndIgnoresATornLine) {
  const std::string path = TempPath("pods.state");
  std::filesystem::remove(path);
  {
    auto s = WatchState::Open(path);
    ASSERT_TRUE(s.ok());
    ASSERT_TRUE(s->SetKind("Pod", "v1").ok());
    ASSERT_TRUE(s->Record({{"u1", false, {"10", "default", "a"}}, {"u2", false, {"11", "", "node-1"}}}, "11").ok());
    ASSERT_TRUE(s->Record({{"u1", true, {}}}, "12").ok());
  }
  {
    std::ofstream(path, std::ios::app) << "+ u3 13 default tor";  // no newline: torn
  }
  auto s = WatchState::Open(path);
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_EQ(s->rv(), "12");
  EXPECT_EQ(s->kind(), "Pod");
  ASSERT_EQ(s->known().size(), 1u);
  EXPECT_EQ(s->known().at("u2").name, "node-1");
  EXPECT_EQ(s->known().at("u2").ns, "");
  ASSERT_TRUE(s->Reset({{"u9", {"20", "kube-system", "z"}}}, "20").ok());
  auto again = WatchState::Open(path);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->rv(), "20");
  EXPECT_EQ(again->known().size(), 1u);
}

TEST(WatchState, CorruptFilesAreDataLoss) {
  EXPECT_FALSE(WatchState::Parse("not a state\n").ok());
  EXPECT_FALSE(WatchState::Parse("annals-watch-state 1\n? what\n").ok());
  EXPECT_FALSE(WatchState::Parse("annals-watch-state 1\n+ u1\n").ok());
  EXPECT_FALSE(WatchState::Parse("annals-watch-state 2\n").ok());
  EXPECT_TRUE(WatchState::Parse("").ok());
}

TEST(ResourceSpec, BuiltinsAndCustomResources) {
  auto d = ParseResourceSpec("deployments");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->Path(), "/apis/apps/v1/deployments");
  EXPECT_EQ(d->Name(), "deployments.apps");
  auto p = ParseResourceSpec("pods");
  EXPECT_EQ(p->Path(), "/api/v1/pods");
  auto c = ParseResourceSpec("cilium.io/v2/ciliumendpoints");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->Path(), "/apis/cilium.io/v2/ciliumendpoints");
  EXPECT_FALSE(ParseResourceSpec("widgets").ok());
  EXPECT_FALSE(ParseResourceSpec("a b/v1/x").ok());
  EXPECT_FALSE(ParseResourceSpec("x/v1/../../secrets").ok());
  EXPECT_FALSE(ParseResourceList("pods,pods").ok());
  EXPECT_EQ(ParseResourceList("")->size(), 17u);
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

}  // namespace
}  // namespace annals::watch
