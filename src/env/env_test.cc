#include "env/env.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <string>
#include <vector>

#include "env/fault_injection_env.h"

namespace annals::env {
namespace {

namespace fs = std::filesystem;

class EnvTest : public testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "annals-env-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
  }
  void TearDown() override { fs::remove_all(root_); }

  std::unique_ptr<File> MustOpen(Env* env, const std::string& path, OpenMode mode) {
    auto f = env->OpenFile(path, mode);
    EXPECT_TRUE(f.ok()) << f.status().ToString();
    return f.ok() ? std::move(*f) : nullptr;
  }

  std::string root_;
};

TEST_F(EnvTest, PosixWriteSyncReadRenameListRemove) {
  Env* env = Env::Default();
  const std::string dir = root_ + "/a/b";
  ASSERT_TRUE(env->CreateDirs(dir).ok());
  const std::string path = dir + "/f";
  {
    auto f = MustOpen(env, path, OpenMode::kCreateNew);
    ASSERT_NE(f, nullptr);
    EXPECT_EQ(f->path(), path);
    ASSERT_TRUE(f->Write(0, "hello, ").ok());
    ASSERT_TRUE(f->Write(7, "world").ok());
    ASSERT_TRUE(f->Sync().ok());
    ASSERT_TRUE(env->SyncDir(dir).ok());
    auto size = f->Size();
    ASSERT_TRUE(size.ok());
    EXPECT_EQ(*size, 12u);
    std::string buf(5, '\0');
    ASSERT_TRUE(f->Read(7, 5, buf.data()).ok());
    EXPECT_EQ(buf, "world");
    auto map = f->Map(12);
    ASSERT_TRUE(map.ok()) << map.status().ToString();
    EXPECT_EQ((*map)->data(), "hello, world");
    ASSERT_TRUE(f->Truncate(5).ok());
  }
  auto all = ReadFileToString(env, path);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(*all, "hello");

  ASSERT_TRUE(env->RenameFile(path, dir + "/g").ok());
  EXPECT_FALSE(env->FileExists(path));
  EXPECT_TRUE(env->FileExists(dir + "/g"));
  ASSERT_TRUE(WriteFileAtomic(env, dir + "/h", "atomic").ok());
  auto names = env->GetChildren(dir);
  ASSERT_TRUE(names.ok());
  std::sort(names->begin(), names->end());
  EXPECT_EQ(*names, (std::vector<std::string>{"g", "h"}));  // no "h.tmp" left

  ASSERT_TRUE(env->RemoveFile(dir + "/g").ok());
  EXPECT_FALSE(env->FileExists(dir + "/g"));
  ASSERT_TRUE(env->RemoveTree(root_ + "/a").ok());
  EXPECT_FALSE(env->FileExists(dir));
  EXPECT_TRUE(env->RemoveTree(root_ + "/a").ok());  // already gone
}

TEST_F(EnvTest, PosixErrorsNameTheFileAndKeepTheirCode) {
  Env* env = Env::Default();
  auto missing = env->OpenFile(root_ + "/nope", OpenMode::kRead);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find(root_ + "/nope"), std::string::npos);

  auto f = MustOpen(env, root_ + "/f", OpenMode::kCreate);
  ASSERT_NE(f, nullptr);
  auto again = env->OpenFile(root_ + "/f", OpenMode::kCreateNew);
  EXPECT_EQ(again.status().code(), StatusCode::kAlreadyExists);
  char c;
  Status past_end = f->Read(0, 1, &c);
  EXPECT_EQ(past_end.code(), StatusCode::kDataLoss);
  EXPECT_NE(past_end.message().find(root_ + "/f"), std::string::npos);
  EXPECT_EQ(env->GetChildren(root_ + "/nope").status().code(), StatusCode::kNotFound);
}

TEST_F(EnvTest, FaultInjectionFailsOnlyArmedOperationsOnMatchingPaths) {
  FaultInjectionEnv env(Env::Default());
  auto seg = MustOpen(&env, root_ + "/x.seg", OpenMode::kCreate);
  auto other = MustOpen(&env, root_ + "/x.tiles", OpenMode::kCreate);
  ASSERT_NE(seg, nullptr);
  ASSERT_NE(other, nullptr);
  env.Arm(FaultInjectionEnv::Op::kSync, ".seg", EIO, /*times=*/1);
  ASSERT_TRUE(seg->Write(0, "abc").ok());
  Status s = seg->Sync();
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("fdatasync " + root_ + "/x.seg"), std::string::npos) << s.message();
  EXPECT_TRUE(other->Sync().ok());  // another path
  EXPECT_TRUE(seg->Sync().ok());    // fired once
  EXPECT_EQ(env.injected(), 1u);

  env.Arm(FaultInjectionEnv::Op::kRead, ".tiles", EIO);
  ASSERT_TRUE(other->Write(0, "xyz").ok());
  char buf[3];
  for (int i = 0; i < 3; ++i) {
    Status r = other->Read(0, 3, buf);
    EXPECT_EQ(r.code(), StatusCode::kInternal);
    EXPECT_NE(r.message().find(root_ + "/x.tiles"), std::string::npos) << r.message();
  }
  EXPECT_FALSE(other->Map(3).ok());
  EXPECT_FALSE(ReadFileToString(&env, root_ + "/x.tiles").ok());
  EXPECT_TRUE(seg->Read(0, 3, buf).ok());
  env.ClearFaults();
  EXPECT_TRUE(other->Read(0, 3, buf).ok());
  EXPECT_EQ(std::string(buf, 3), "xyz");
}

TEST_F(EnvTest, FullDiskFailsWritesAfterWritingHalfUntilSpaceReturns) {
  FaultInjectionEnv env(Env::Default());
  auto f = MustOpen(&env, root_ + "/f", OpenMode::kCreate);
  ASSERT_NE(f, nullptr);
  env.FillDisk();
  Status s = f->Write(0, "12345678");
  EXPECT_EQ(s.code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(*f->Size(), 4u);  // a short write: half reached the file
  EXPECT_EQ(WriteFileAtomic(&env, root_ + "/g", "data").code(), StatusCode::kResourceExhausted);
  EXPECT_FALSE(env.FileExists(root_ + "/g"));
  EXPECT_TRUE(f->Sync().ok());  // only writes were armed
  env.ReturnSpace();
  ASSERT_TRUE(f->Write(0, "12345678").ok());
  ASSERT_TRUE(WriteFileAtomic(&env, root_ + "/g", "data").ok());
  EXPECT_EQ(*ReadFileToString(&env, root_ + "/g"), "data");
}

TEST_F(EnvTest, FailedWriteWithoutShortWriteLeavesTheFileAlone) {
  FaultInjectionEnv env(Env::Default());
  auto f = MustOpen(&env, root_ + "/f", OpenMode::kCreate);
  ASSERT_NE(f, nullptr);
  env.Arm(FaultInjectionEnv::Op::kWrite, "/f", EIO, 1);
  EXPECT_EQ(f->Write(0, "data").code(), StatusCode::kInternal);
  EXPECT_EQ(*f->Size(), 0u);
  env.Arm(FaultInjectionEnv::Op::kTruncate, "/f", EIO, 1);
  ASSERT_TRUE(f->Write(0, "data").ok());
  EXPECT_FALSE(f->Truncate(0).ok());
  EXPECT_EQ(*f->Size(), 4u);
}

}  // namespace
}  // namespace annals::env
