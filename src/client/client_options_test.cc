#include "client/client_options.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>

namespace annals::client {
namespace {

class ClientOptions : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("annals-client-opt-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_ / "home");
    for (const char* v : {"ANNALS_URL", "ANNALS_TOKEN", "ANNALS_CONFIG", "KUBECONFIG"}) unsetenv(v);
    setenv("HOME", (dir_ / "home").c_str(), 1);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string Write(const std::string& name, const std::string& text) {
    auto p = dir_ / name;
    std::filesystem::create_directories(p.parent_path());
    std::ofstream(p) << text;
    return p.string();
  }
  std::filesystem::path dir_;
};

TEST_F(ClientOptions, DefaultsToTheLocalServerWithoutCredentials) {
  auto t = ResolveServer({});
  ASSERT_TRUE(t.ok()) << t.status().message();
  EXPECT_EQ(t->url, kDefaultServerUrl);
  EXPECT_TRUE(t->auth.empty());
}

TEST_F(ClientOptions, FlagsBeatEnvironmentBeatsConfigFile) {
  Write("home/.config/annals/ca.crt", "CA-PEM");
  Write("home/.config/annals/token", "file-token\n");
  Write("home/.config/annals/config.yaml",
        "server: https://from-config:7070\ncacert: ca.crt\ntoken-file: token\n");
  auto c = ResolveServer({});
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->url, "https://from-config:7070");
  EXPECT_EQ(c->auth.ca_pem, "CA-PEM");  // relative to the file's directory
  EXPECT_EQ(c->auth.token, "file-token");

  setenv("ANNALS_URL", "https://from-env:7070", 1);
  setenv("ANNALS_TOKEN", "env-token", 1);
  auto e = ResolveServer({});
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->url, "https://from-env:7070");
  EXPECT_EQ(e->auth.token, "env-token");

  ClientFlags f;
  f.url = "https://from-flag:7070";
  f.token = "flag-token";
  auto g = ResolveServer(f);
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(g->url, "https://from-flag:7070");
  EXPECT_EQ(g->auth.token, "flag-token");
  EXPECT_EQ(g->auth.ca_pem, "CA-PEM");  // still from the file: no flag named one
}

TEST_F(ClientOptions, BadConfigFilesAndMissingFilesAreClearErrors) {
  ClientFlags f;
  f.config = Write("bad.yaml", "server: [unclosed\n");
  auto bad = ResolveServer(f);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("bad.yaml"), std::string::npos);

  f.config = Write("unknown.yaml", "server: https://x\npassword: hunter2\n");
  auto unknown = ResolveServer(f);
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("\"password\""), std::string::npos);

  f.config = Write("list.yaml", "- a\n- b\n");
  EXPECT_FALSE(ResolveServer(f).ok());
  f.config = Write("nested.yaml", "server: {a: b}\n");
  EXPECT_FALSE(ResolveServer(f).ok());

  f.config = (dir_ / "absent.yaml").string();  // named, so it must exist
  EXPECT_FALSE(ResolveServer(f).ok());

  ClientFlags g;
  g.cacert = (dir_ / "absent.crt").string();
  auto ca = ResolveServer(g);
  ASSERT_FALSE(ca.ok());
  EXPECT_NE(ca.status().message().find("CA bundle"), std::string::npos);

  ClientFlags h;
  h.cert = Write("c.crt", "CERT");
  EXPECT_FALSE(ResolveServer(h).ok());  // a certificate without its key

  ClientFlags k;
  k.token_file = Write("empty-token", "\n");
  EXPECT_FALSE(ResolveServer(k).ok());
}

TEST_F(ClientOptions, KubeconfigUserCredentials) {
  Write("kube/token", "kube-token\n");
  const std::string kc = Write("kube/config",
                               "apiVersion: v1\nkind: Config\ncurrent-context: a\n"
                               "clusters:\n- name: c\n  cluster: {server: 'https://10.0.0.1:6443'}\n"
                               "contexts:\n- name: a\n  context: {cluster: c, user: u}\n"
                               "- name: b\n  context: {cluster: c, user: v}\n"
                               "users:\n- name: u\n  user: {tokenFile: token}\n"
                               "- name: v\n  user: {token: inline-token}\n");
  auto a = KubeconfigCredentials(kc, "");
  ASSERT_TRUE(a.ok()) << a.status().message();
  EXPECT_EQ(a->token, "kube-token");
  auto b = KubeconfigCredentials(kc, "b");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->token, "inline-token");
  setenv("KUBECONFIG", (kc + ":/nonexistent").c_str(), 1);
  auto env = KubeconfigCredentials("", "b");
  ASSERT_TRUE(env.ok());
  EXPECT_EQ(env->token, "inline-token");
  EXPECT_FALSE(KubeconfigCredentials(kc, "nope").ok());
}

}  // namespace
}  // namespace annals::client
