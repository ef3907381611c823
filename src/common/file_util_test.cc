#include "common/file_util.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <string>

namespace annals {
namespace {

namespace fs = std::filesystem;

class FileUtilTest : public testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "annals-file-util-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string dir_;
};

TEST_F(FileUtilTest, WriteFileAtomicReplacesContentsAndSetsMode) {
  const std::string path = dir_ + "/f";
  ASSERT_TRUE(WriteFileAtomic(path, "first").ok());
  ASSERT_TRUE(WriteFileAtomic(path, std::string("second\0x", 8), 0600).ok());
  auto data = ReadFileToString(path);
  ASSERT_TRUE(data.ok()) << data.status().ToString();
  EXPECT_EQ(*data, std::string("second\0x", 8));
  EXPECT_FALSE(FileExists(path + ".tmp"));
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  // The mode applies when the temporary file is created; "first" made it 0644
  // but the replacement is a new file.
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(FileUtilTest, ReadingAMissingFileIsNotFound) {
  auto data = ReadFileToString(dir_ + "/missing");
  ASSERT_FALSE(data.ok());
  EXPECT_EQ(data.status().code(), StatusCode::kNotFound);
  EXPECT_FALSE(FileExists(dir_ + "/missing"));
}

TEST_F(FileUtilTest, MakeDirsCreatesNestedDirectoriesIdempotently) {
  const std::string deep = dir_ + "/a/b/c";
  ASSERT_TRUE(MakeDirs(deep).ok());
  ASSERT_TRUE(MakeDirs(deep).ok());
  EXPECT_TRUE(fs::is_directory(deep));
  ASSERT_TRUE(WriteFileAtomic(deep + "/x", "1").ok());
  // A path component that is a file is an error.
  EXPECT_FALSE(MakeDirs(deep + "/x/y").ok());
}

TEST_F(FileUtilTest, PreadAllReadsExactlyOrFails) {
  const std::string path = dir_ + "/p";
  ASSERT_TRUE(WriteFileAtomic(path, "0123456789").ok());
  int fd = ::open(path.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  char buf[4];
  ASSERT_TRUE(PreadAll(fd, buf, 4, 3, "p").ok());
  EXPECT_EQ(std::string(buf, 4), "3456");
  Status s = PreadAll(fd, buf, 4, 8, "p");
  EXPECT_EQ(s.code(), StatusCode::kDataLoss) << s.ToString();
  ::close(fd);
}

TEST(DirNameTest, ReturnsTheParent) {
  EXPECT_EQ(DirName("/a/b/c"), "/a/b");
  EXPECT_EQ(DirName("/a"), "/");
  EXPECT_EQ(DirName("a"), ".");
  EXPECT_EQ(DirName("a/b"), "a");
}

}  // namespace
}  // namespace annals
