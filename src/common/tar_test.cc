#include "common/tar.h"

#include <gtest/gtest.h>

#include <string>

namespace annals {
namespace {

TEST(TarTest, WritesWhatTarToolsReadAndReadsOnlyThat) {
  auto a = tar::Write({{"manifest", "x\n"}, {"entries/1", std::string(700, 'e')}, {"empty", ""}});
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->size() % 512, 0u);
  EXPECT_EQ(a->size(), 512 * (1 + 1 + 1 + 2 + 1) + 1024u);
  auto back = tar::Read(*a, 10);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  ASSERT_EQ(back->size(), 3u);
  EXPECT_EQ((*back)[1].data, std::string(700, 'e'));
  EXPECT_EQ((*back)[2].data, "");
  EXPECT_FALSE(tar::Read(*a, 2).ok());           // too many members
  EXPECT_FALSE(tar::Read(*a + std::string(512, '\0'), 10).ok());  // bytes after the end
  EXPECT_FALSE(tar::Write({{"", "x"}}).ok());
  EXPECT_FALSE(tar::Write({{std::string(101, 'n'), "x"}}).ok());
}

}  // namespace
}  // namespace annals
