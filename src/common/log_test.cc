#include "common/log.h"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

namespace annals::log {
namespace {

TEST(Log, LinesGoToTheSinkWithTheirLevelAboveTheMinimum) {
  std::vector<std::pair<Level, std::string>> got;
  SetSink([&got](Level l, std::string_view line) { got.emplace_back(l, std::string(line)); });
  SetMinLevel(Level::kWarning);
  Info("not shown %d", 1);
  Warning("tail %s: %d lines", "audit.log", 3);
  Error("%s", std::string(2000, 'x').c_str());  // longer than the stack buffer
  SetMinLevel(Level::kInfo);
  Info("shown");
  SetSink(nullptr);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0], std::make_pair(Level::kWarning, std::string("tail audit.log: 3 lines")));
  EXPECT_EQ(got[1].first, Level::kError);
  EXPECT_EQ(got[1].second, std::string(2000, 'x'));
  EXPECT_EQ(got[2], std::make_pair(Level::kInfo, std::string("shown")));
}

TEST(Log, LinesFromManyThreadsArriveWhole) {
  std::vector<std::string> got;
  SetSink([&got](Level, std::string_view line) { got.emplace_back(line); });
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([t] {
      for (int i = 0; i < 250; ++i) Info("thread %d line %d", t, i);
    });
  for (auto& t : threads) t.join();
  SetSink(nullptr);
  ASSERT_EQ(got.size(), 1000u);
  for (const auto& l : got) EXPECT_EQ(l.rfind("thread ", 0), 0u) << l;
}

}  // namespace
}  // namespace annals::log
