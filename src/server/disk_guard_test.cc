#include "server/disk_guard.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <atomic>
#include <filesystem>
#include <thread>
#include <string>

namespace annals::server {
namespace {

namespace fs = std::filesystem;
constexpr uint64_t kMiB = 1 << 20;

class DiskGuardTest : public testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "annals-guard-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }
  // The file system as the guard sees it: `free_` bytes free of 100 MiB.
  std::function<StatusOr<DiskSpace>(const std::string&)> Stat() {
    return [this](const std::string&) -> StatusOr<DiskSpace> {
      return DiskSpace{free_.load(), 100 * kMiB};
    };
  }
  std::string Reserve() const { return dir_ + "/" + DiskGuard::kReserveName; }
  std::string dir_;
  std::atomic<uint64_t> free_{50 * kMiB};
};

TEST_F(DiskGuardTest, RefusesBelowTheFloorKeepsTheReserveForTheNextStartAndRecovers) {
  DiskGuard g(dir_, 2 * kMiB, Stat());
  g.Check(/*at_start=*/true);
  EXPECT_EQ(g.floor(), 2 * kMiB);
  EXPECT_EQ(g.Refusal(), "");
  ASSERT_TRUE(fs::exists(Reserve()));
  EXPECT_EQ(fs::file_size(Reserve()), 1 * kMiB);  // half the floor

  // The disk fills while running: refused, the reserve kept.
  free_ = kMiB;
  g.Check(false);
  EXPECT_NE(g.Refusal().find("disk nearly full"), std::string::npos) << g.Refusal();
  EXPECT_TRUE(fs::exists(Reserve()));
  EXPECT_EQ(g.reserve_released(), 0u);

  // A start on the full disk releases it.
  DiskGuard start(dir_, 2 * kMiB, Stat());
  start.Check(/*at_start=*/true);
  EXPECT_FALSE(fs::exists(Reserve()));
  EXPECT_EQ(start.reserve_released(), 1u);
  EXPECT_NE(start.Refusal(), "");
  // Just above the floor is not enough: twice the floor and the reserve.
  free_ = 3 * kMiB;
  start.Check(false);
  EXPECT_NE(start.Refusal(), "");
  EXPECT_FALSE(fs::exists(Reserve()));
  free_ = 6 * kMiB;
  start.Check(false);
  EXPECT_EQ(start.Refusal(), "");
  EXPECT_TRUE(fs::exists(Reserve()));
}

// What the indexes hold in memory raises the floor: their next flushes
// must find room, or the stores refuse every write after.
TEST_F(DiskGuardTest, WhatTheIndexesHoldInMemoryRaisesTheFloor) {
  DiskGuard g(dir_, 2 * kMiB, Stat());
  std::atomic<uint64_t> held{0};
  g.SetPending([&held] { return held.load(); });
  free_ = 5 * kMiB;
  g.Check(/*at_start=*/true);
  EXPECT_EQ(g.Refusal(), "");
  held = 4 * kMiB;  // 5 MiB free, below 2 + 4
  g.Check(false);
  EXPECT_EQ(g.last_pending(), 4 * kMiB);
  EXPECT_NE(g.Refusal().find("4.0 MiB the indexes hold in memory"), std::string::npos) << g.Refusal();
  EXPECT_TRUE(fs::exists(Reserve()));  // kept while running, as for the floor
  held = 2 * kMiB;  // flushed some: 5 MiB free, but not twice the floor plus what is held
  g.Check(false);
  EXPECT_NE(g.Refusal(), "");
  free_ = 6 * kMiB;  // 2 * 2 + 2
  g.Check(false);
  EXPECT_EQ(g.Refusal(), "");
  g.SetPending(nullptr);
  held = 100 * kMiB;
  g.Check(false);
  EXPECT_EQ(g.last_pending(), 0u);
  EXPECT_EQ(g.Refusal(), "");
  EXPECT_EQ(g.reserve_released(), 0u);
  // Turned off, the guard asks nothing.
  DiskGuard off(dir_ + "/off", 0, Stat());
  bool asked = false;
  off.SetPending([&asked] {
    asked = true;
    return uint64_t{1} << 40;
  });
  off.Check(true);
  EXPECT_EQ(off.Refusal(), "");
  EXPECT_FALSE(asked);
}

TEST_F(DiskGuardTest, FloorIsCappedOnASmallFileSystemAndZeroTurnsItOff) {
  DiskGuard big(dir_, 64 * kMiB, Stat());
  big.Check(true);
  EXPECT_EQ(big.floor(), 100 * kMiB / 32);
  DiskGuard off(dir_ + "/off", 0, Stat());
  free_ = 0;
  off.Check(true);
  EXPECT_EQ(off.Refusal(), "");
  EXPECT_FALSE(fs::exists(dir_ + "/off/" + DiskGuard::kReserveName));
}

TEST_F(DiskGuardTest, AdmitLooksAgainWhenItsLastLookIsOld) {
  DiskGuard g(dir_, 2 * kMiB, Stat());
  g.Check(true);
  EXPECT_EQ(g.Admit(), "");
  free_ = kMiB;
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_NE(g.Admit(), "");  // no Check() called: Admit measured
}

}  // namespace
}  // namespace annals::server
