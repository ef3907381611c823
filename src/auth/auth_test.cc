#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <thread>

#include "auth/auth_config.h"
#include "auth/authorizer.h"
#include "common/bytes.h"
#include "common/sha256.h"

namespace annals::auth {
namespace {

std::string HashOf(std::string_view token) { return HexEncode(HashBytes(Sha256(token))); }

TEST(TokensFile, ParsesLinesCommentsAndGroups) {
  std::string text = "# comment\n\n" + HashOf("t1") + " alice team-a,team-b\r\n  sha256:" +
                     HashOf("t2") + "\tbob\n";
  auto t = ParseTokensFile(text);
  ASSERT_TRUE(t.ok()) << t.status().message();
  ASSERT_EQ(t->size(), 2u);
  EXPECT_EQ(t->at(HashOf("t1")).user, "alice");
  EXPECT_EQ(t->at(HashOf("t1")).groups, (std::vector<std::string>{"team-a", "team-b"}));
  EXPECT_TRUE(t->at(HashOf("t2")).groups.empty());
}

TEST(TokensFile, UppercaseHashIsNormalised) {
  std::string h = HashOf("x");
  for (auto& c : h) c = static_cast<char>(toupper(c));
  auto t = ParseTokensFile(h + " u\n");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->count(HashOf("x")), 1u);
}

TEST(TokensFile, RejectsMalformedLinesWithTheirNumber) {
  for (std::string bad : {std::string("plaintoken alice\n"), HashOf("a") + "\n",
                          HashOf("a") + " u g1,,g2\n", HashOf("a") + " u g1,\n",
                          HashOf("a") + " u g extra\n", HashOf("a").substr(1) + "z u\n",
                          HashOf("b") + " v\n" + HashOf("b") + " w\n"}) {
    auto t = ParseTokensFile("# ok\n" + bad);
    ASSERT_FALSE(t.ok()) << bad;
    EXPECT_TRUE(t.status().message().starts_with("tokens line 2") ||
                t.status().message().starts_with("tokens line 3: the same token"))
        << t.status().message();
  }
}

TEST(AuthConfig, ParsesBindings) {
  auto c = ParseAuthConfig(R"({"tokens":"/x","anonymous":["verify"],
    "groups":{"system:masters":["admin"],"team-a":{"roles":["read"],"namespaces":["a","a2"]}},
    "users":{"kube-apiserver":{"roles":["ingest"]}}})");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->tokens_file, "/x");
  EXPECT_EQ(c->anonymous, kVerify);
  EXPECT_EQ(c->groups.at("system:masters").roles, kAdmin);
  EXPECT_EQ(c->groups.at("team-a").namespaces, (std::vector<std::string>{"a", "a2"}));
  EXPECT_EQ(c->users.at("kube-apiserver").roles, kIngest);
}

TEST(AuthConfig, RejectsUnknownRolesKeysAndShapes) {
  for (const char* bad : {"[]", "{", R"({"groups":{"g":["writer"]}})", R"({"colour":1})",
                          R"({"groups":{"g":{"roles":["read"],"namespaces":[]}}})",
                          R"({"groups":{"g":{"roles":["read"],"ns":["a"]}}})",
                          R"({"groups":["read"]})", R"({"anonymous":"verify"})",
                          R"({"groups":{"g":{"roles":["read"],"namespaces":[""]}}})"}) {
    EXPECT_FALSE(ParseAuthConfig(bad).ok()) << bad;
  }
}

TEST(Resolve, GroupsMapToRolesAndNamespaceLimitsUnion) {
  auto c = ParseAuthConfig(R"({"anonymous":["verify"],
    "groups":{"ops":["admin"],"team-a":{"roles":["read"],"namespaces":["a"]},
              "team-b":{"roles":["read"],"namespaces":["b"]},"writers":["ingest"]}})");
  ASSERT_TRUE(c.ok());
  Permissions anon = Resolve(*c, "", {}, false);
  EXPECT_TRUE(anon.Has(kVerify));
  EXPECT_FALSE(anon.Has(kRead));
  EXPECT_FALSE(anon.Has(kIngest));

  Permissions ab = Resolve(*c, "carol", {"team-a", "team-b", "unknown"}, true);
  EXPECT_TRUE(ab.Has(kRead));
  EXPECT_FALSE(ab.Has(kIngest));
  EXPECT_TRUE(ab.Limited());
  EXPECT_TRUE(ab.MayReadNamespace("a"));
  EXPECT_TRUE(ab.MayReadNamespace("b"));
  EXPECT_FALSE(ab.MayReadNamespace("c"));
  EXPECT_FALSE(ab.MayReadNamespace(""));  // cluster-scoped objects

  Permissions w = Resolve(*c, "apiserver", {"writers"}, true);
  EXPECT_TRUE(w.Has(kIngest));
  EXPECT_FALSE(w.Has(kRead));
  EXPECT_FALSE(w.MayReadNamespace("a"));

  Permissions admin = Resolve(*c, "root", {"ops"}, true);
  EXPECT_TRUE(admin.Has(kIngest) && admin.Has(kRead) && admin.Has(kVerify));
  EXPECT_FALSE(admin.Limited());
  EXPECT_TRUE(admin.MayReadNamespace("anything"));

  // An unlimited read binding wins over a limited one.
  auto c2 = ParseAuthConfig(R"({"groups":{"x":{"roles":["read"],"namespaces":["a"]},"y":["read"]}})");
  Permissions xy = Resolve(*c2, "u", {"x", "y"}, true);
  EXPECT_FALSE(xy.Limited());
  EXPECT_TRUE(xy.MayReadNamespace("zzz"));
  // Group bindings do not apply to anonymous callers even if named so.
  EXPECT_FALSE(Resolve(*c2, "u", {"y"}, false).Has(kRead));
}

TEST(Resolve, TheClusterACallerIngestsFor) {
  auto c = ParseAuthConfig(R"({"authenticated":{"roles":["verify"],"cluster":"default-c"},
      "users":{"apiserver-a":{"roles":["ingest:k8s-audit"],"cluster":"prod-a"}},
      "groups":{"g1":{"roles":["read"]},"g2":{"roles":["read"],"cluster":"from-g2"},"g3":{"roles":["read"],"cluster":"from-g3"}}})");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(Resolve(*c, "apiserver-a", {"g2"}, true).cluster, "prod-a");  // the user's binding first
  EXPECT_EQ(Resolve(*c, "x", {"g1", "g3", "g2"}, true).cluster, "from-g3");  // then the first group naming one
  EXPECT_EQ(Resolve(*c, "x", {"g1"}, true).cluster, "default-c");
  EXPECT_EQ(Resolve(*c, "x", {}, false).cluster, "");
  for (const char* bad : {R"({"users":{"u":{"roles":["read"],"cluster":""}}})",
                          R"({"users":{"u":{"roles":["read"],"cluster":"a b"}}})",
                          R"({"users":{"u":{"roles":["read"],"cluster":7}}})"})
    EXPECT_FALSE(ParseAuthConfig(bad).ok()) << bad;
  EXPECT_TRUE(ValidClusterName("arn:aws:eks:us-east-1:123456789012:cluster/prod"));
  EXPECT_TRUE(ValidClusterName("gke_project_us-central1-c_prod"));
  EXPECT_FALSE(ValidClusterName(std::string(254, 'a')));
  EXPECT_FALSE(ValidClusterName("tab\there"));
  EXPECT_TRUE(ValidClusterName("prod-\xc3\xa9"));      // é
  EXPECT_FALSE(ValidClusterName("bad-\xff"));           // not UTF-8
  EXPECT_FALSE(ValidClusterName("cut-\xc3"));           // a sequence cut short
  EXPECT_FALSE(ValidClusterName("over-\xc0\xaf"));      // overlong
  EXPECT_FALSE(ValidClusterName("sur-\xed\xa0\x80"));   // a surrogate
}

TEST(Resolve, PerSourceIngest) {
  auto c = ParseAuthConfig(R"({"groups":{"ci":["ingest:events"],"api":["ingest"],
                                         "nodes":{"roles":["ingest:tcp","ingest:k8s-audit"]},
                                         "collector":["ingest:k8s-watch"]}})");
  ASSERT_TRUE(c.ok()) << c.status().message();
  Permissions ci = Resolve(*c, "ci", {"ci"}, true);
  EXPECT_FALSE(ci.Has(kIngest));
  EXPECT_TRUE(ci.MayIngest("events"));
  EXPECT_FALSE(ci.MayIngest("k8s-audit"));
  EXPECT_FALSE(ci.MayIngest("tcp"));
  Permissions nodes = Resolve(*c, "n", {"nodes"}, true);
  EXPECT_TRUE(nodes.MayIngest("tcp") && nodes.MayIngest("k8s-audit"));
  EXPECT_FALSE(nodes.MayIngest("events"));
  EXPECT_FALSE(nodes.MayIngest("k8s-watch"));
  Permissions collector = Resolve(*c, "w", {"collector"}, true);
  EXPECT_TRUE(collector.MayIngest("k8s-watch"));
  EXPECT_FALSE(collector.MayIngest("k8s-audit") || collector.MayIngest("events"));
  Permissions api = Resolve(*c, "a", {"api"}, true);
  EXPECT_TRUE(api.MayIngest("events") && api.MayIngest("tcp") && api.MayIngest("k8s-audit") &&
              api.MayIngest("k8s-watch"));
  EXPECT_FALSE(ParseAuthConfig(R"({"groups":{"g":["ingest:syslog"]}})").ok());
  EXPECT_FALSE(ParseAuthConfig(R"({"groups":{"g":["ingest:"]}})").ok());
  EXPECT_FALSE(ParseAuthConfig(R"({"anonymous":["ingest:events"]})").ok());
}

TEST(Authorizer, CertificateThenTokenThenAnonymous) {
  char tmpl[] = "/tmp/annals-auth-XXXXXX";
  int fd = mkstemp(tmpl);
  ASSERT_GE(fd, 0);
  close(fd);
  std::string path = tmpl;
  { std::ofstream(path) << HashOf("s3cret") << " alice team-a\n"; }
  auto cfg = ParseAuthConfig(R"({"groups":{"team-a":["read"],"k8s":["ingest"]}})");
  auto a = Authorizer::Create(*cfg, path);
  ASSERT_TRUE(a.ok()) << a.status().message();

  auto tls = (*a)->Authenticate("kube-apiserver", {"k8s"}, "Bearer s3cret");
  ASSERT_TRUE(tls.ok());
  EXPECT_EQ(tls->method, "tls");
  EXPECT_EQ(tls->user, "kube-apiserver");
  EXPECT_TRUE(tls->perms.Has(kIngest));

  auto tok = (*a)->Authenticate("", {}, "Bearer s3cret");
  ASSERT_TRUE(tok.ok());
  EXPECT_EQ(tok->user, "alice");
  EXPECT_TRUE(tok->perms.Has(kRead));
  EXPECT_FALSE(tok->perms.Has(kIngest));

  auto bad = (*a)->Authenticate("", {}, "Bearer nope");
  EXPECT_EQ(bad.status().code(), StatusCode::kUnauthenticated);
  EXPECT_EQ((*a)->Authenticate("", {}, "Basic YTpi").status().code(), StatusCode::kUnauthenticated);

  auto anon = (*a)->Authenticate("", {}, "");
  ASSERT_TRUE(anon.ok());
  EXPECT_FALSE(anon->authenticated());
  EXPECT_EQ(anon->perms.roles, 0);

  // Re-read on change: the old token goes, a new one comes.
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  { std::ofstream(path) << HashOf("other") << " bob k8s\n"; }
  EXPECT_FALSE((*a)->Authenticate("", {}, "Bearer s3cret").ok());
  auto bob = (*a)->Authenticate("", {}, "Bearer other");
  ASSERT_TRUE(bob.ok());
  EXPECT_EQ(bob->user, "bob");
  // A broken file keeps the last good table.
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  { std::ofstream(path) << "garbage\n"; }
  EXPECT_TRUE((*a)->Authenticate("", {}, "Bearer other").ok());
  unlink(path.c_str());
}

}  // namespace
}  // namespace annals::auth

#include "auth/limiter.h"

namespace annals::auth {
namespace {

TEST(Limiter, TokenBucketPerCaller) {
  Limiter l({.rate = 2, .burst = 3, .max_inflight = 0});
  auto t = Limiter::Clock::now();
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(l.Acquire("alice", t), Limiter::Verdict::kOk);
    l.Release("alice");
  }
  EXPECT_EQ(l.Acquire("alice", t), Limiter::Verdict::kRate);
  EXPECT_EQ(l.Acquire("bob", t), Limiter::Verdict::kOk);  // another caller, its own bucket
  l.Release("bob");
  // Half a second later, one token (2/s) has come back.
  t += std::chrono::milliseconds(500);
  EXPECT_EQ(l.Acquire("alice", t), Limiter::Verdict::kOk);
  l.Release("alice");
  EXPECT_EQ(l.Acquire("alice", t), Limiter::Verdict::kRate);
  // Never more than the burst, however long the wait.
  t += std::chrono::seconds(30);
  int ok = 0;
  while (l.Acquire("alice", t) == Limiter::Verdict::kOk) {
    ++ok;
    l.Release("alice");
  }
  EXPECT_EQ(ok, 3);
}

TEST(Limiter, InflightCapPerCaller) {
  Limiter l({.rate = 0, .burst = 0, .max_inflight = 2});
  EXPECT_EQ(l.Acquire("a"), Limiter::Verdict::kOk);
  EXPECT_EQ(l.Acquire("a"), Limiter::Verdict::kOk);
  EXPECT_EQ(l.Acquire("a"), Limiter::Verdict::kInflight);
  EXPECT_EQ(l.Acquire("b"), Limiter::Verdict::kOk);
  l.Release("a");
  EXPECT_EQ(l.Acquire("a"), Limiter::Verdict::kOk);
}

}  // namespace
}  // namespace annals::auth
