#include "ledger/checkpoint_log.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace annals::ledger {
namespace {

namespace fs = std::filesystem;

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string Note(int i) { return "origin\n" + std::to_string(i) + "\nroot\n\n\xe2\x80\x94 sig\n"; }

class CheckpointLogTest : public testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "annals-cplog-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::unique_ptr<CheckpointLog> MustOpen(std::string* cut) {
    auto log = CheckpointLog::Open(dir_, cut);
    EXPECT_TRUE(log.ok()) << log.status().ToString();
    return log.ok() ? std::move(*log) : nullptr;
  }

  std::vector<std::string> ScanAll() {
    std::vector<std::string> out;
    Status s = CheckpointLog::Scan(dir_, [&](uint64_t n, std::string_view note) {
      EXPECT_EQ(n, out.size());
      out.emplace_back(note);
      return OkStatus();
    });
    EXPECT_TRUE(s.ok()) << s.ToString();
    return out;
  }

  fs::path Path() const { return fs::path(dir_) / kCheckpointLogName; }
  std::string dir_;
};

TEST_F(CheckpointLogTest, AppendsPersistInOrderAndLatestIsServed) {
  std::string cut;
  {
    auto log = MustOpen(&cut);
    ASSERT_NE(log, nullptr);
    EXPECT_EQ(log->latest(), "");
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(log->Append(Note(i)).ok());
    EXPECT_EQ(log->latest(), Note(2));
    EXPECT_EQ(ReadFile(fs::path(dir_) / "checkpoint"), Note(2));
  }
  auto log = MustOpen(&cut);
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(cut, "");
  EXPECT_EQ(log->latest(), Note(2));
  EXPECT_EQ(ScanAll(), (std::vector<std::string>{Note(0), Note(1), Note(2)}));
}

TEST_F(CheckpointLogTest, ScanOfMissingLogSeesNothing) {
  EXPECT_TRUE(ScanAll().empty());
}

TEST_F(CheckpointLogTest, TornLastRecordIsCutAndAppendsContinue) {
  {
    auto log = MustOpen(nullptr);
    ASSERT_NE(log, nullptr);
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(log->Append(Note(i)).ok());
  }
  const uint64_t full = fs::file_size(Path());
  fs::resize_file(Path(), full - 3);
  // Scan without `cut` reports the damage as DataLoss naming the record.
  Status s = CheckpointLog::Scan(dir_, nullptr);
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_NE(s.message().find("checkpoint record 2"), std::string::npos) << s.ToString();

  std::string cut;
  {
    auto log = MustOpen(&cut);
    ASSERT_NE(log, nullptr);
    EXPECT_NE(cut.find("checkpoint record 2"), std::string::npos) << cut;
    EXPECT_EQ(log->latest(), Note(1));
    EXPECT_EQ(fs::file_size(Path()), full - (8 + Note(2).size()));
    ASSERT_TRUE(log->Append(Note(3)).ok());
  }
  EXPECT_EQ(ScanAll(), (std::vector<std::string>{Note(0), Note(1), Note(3)}));
}

TEST_F(CheckpointLogTest, ZeroFilledTailIsCut) {
  {
    auto log = MustOpen(nullptr);
    ASSERT_NE(log, nullptr);
    ASSERT_TRUE(log->Append(Note(0)).ok());
  }
  {
    std::ofstream out(Path(), std::ios::binary | std::ios::app);
    out << std::string(100, '\0');
  }
  std::string cut;
  auto log = MustOpen(&cut);
  ASSERT_NE(log, nullptr);
  EXPECT_FALSE(cut.empty());
  EXPECT_EQ(log->latest(), Note(0));
  EXPECT_EQ(fs::file_size(Path()), kCheckpointLogHeaderSize + 8 + Note(0).size());
}

}  // namespace
}  // namespace annals::ledger

namespace annals::ledger {
namespace {

class CheckpointLogHeaderTest : public CheckpointLogTest {};

TEST_F(CheckpointLogHeaderTest, NewFileStartsWithTheVersionHeader) {
  {
    auto log = MustOpen(nullptr);
    ASSERT_NE(log, nullptr);
    ASSERT_TRUE(log->Append(Note(0)).ok());
  }
  std::string f = ReadFile(Path());
  ASSERT_GE(f.size(), kCheckpointLogHeaderSize);
  EXPECT_EQ(f.substr(0, 8), std::string("ACKP\0\0\0\1", 8));
  EXPECT_EQ(ScanAll(), std::vector<std::string>{Note(0)});
}

TEST_F(CheckpointLogHeaderTest, FileWithoutHeaderIsStillRead) {
  // Written before the header existed: records from byte 0.
  {
    auto log = MustOpen(nullptr);
    ASSERT_TRUE(log->Append(Note(0)).ok());
    ASSERT_TRUE(log->Append(Note(1)).ok());
  }
  std::string f = ReadFile(Path());
  {
    std::ofstream out(Path(), std::ios::binary | std::ios::trunc);
    out << f.substr(kCheckpointLogHeaderSize);
  }
  EXPECT_EQ(ScanAll(), (std::vector<std::string>{Note(0), Note(1)}));
  auto log = MustOpen(nullptr);
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(log->latest(), Note(1));
  ASSERT_TRUE(log->Append(Note(2)).ok());
  EXPECT_EQ(ScanAll(), (std::vector<std::string>{Note(0), Note(1), Note(2)}));
}

TEST_F(CheckpointLogHeaderTest, UnknownVersionIsRefused) {
  {
    std::ofstream out(Path(), std::ios::binary);
    out << std::string("ACKP\0\0\0\2", 8);
  }
  auto log = CheckpointLog::Open(dir_, nullptr);
  ASSERT_FALSE(log.ok());
  EXPECT_NE(log.status().message().find("version 2"), std::string::npos) << log.status().message();
  EXPECT_EQ(ReadFile(Path()).size(), 8u) << "a file of another version must not be touched";
}

TEST_F(CheckpointLogHeaderTest, TornHeaderIsRewritten) {
  {
    std::ofstream out(Path(), std::ios::binary);
    out << "ACK";
  }
  auto log = MustOpen(nullptr);
  ASSERT_NE(log, nullptr);
  ASSERT_TRUE(log->Append(Note(0)).ok());
  EXPECT_EQ(ScanAll(), std::vector<std::string>{Note(0)});
}

}  // namespace
}  // namespace annals::ledger
