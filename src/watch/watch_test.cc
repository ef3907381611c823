#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "common/file_util.h"
#include "watch/collector.h"
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

}  // namespace
}  // namespace annals::watch
