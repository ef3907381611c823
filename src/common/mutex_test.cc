#include "common/mutex.h"

#include <gtest/gtest.h>

#include <thread>

namespace annals {
namespace {

using namespace std::chrono_literals;

TEST(CondVar, WaitForTimesOutWithoutANotification) {
  Mutex mu;
  CondVar cv;
  MutexLock lock(&mu);
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(cv.WaitFor(&lock, 30ms));
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 30ms);
}

TEST(CondVar, ANotifiedWaiterSeesTheChangeMadeUnderTheLock) {
  Mutex mu;
  CondVar cv;
  bool ready = false;
  int value = 0;
  std::thread setter([&] {
    std::this_thread::sleep_for(10ms);
    MutexLock lock(&mu);
    value = 42;
    ready = true;
    cv.NotifyAll();
  });
  {
    MutexLock lock(&mu);
    while (!ready) cv.Wait(&lock);
    EXPECT_EQ(value, 42);
  }
  setter.join();
}

TEST(MutexLock, UnlockLetsAnotherThreadIn) {
  Mutex mu;
  MutexLock lock(&mu);
  lock.Unlock();
  bool took = false;
  std::thread other([&] {
    if (mu.TryLock()) {
      took = true;
      mu.Unlock();
    }
  });
  other.join();
  EXPECT_TRUE(took);
  lock.Lock();
  took = false;
  std::thread again([&] {
    if (mu.TryLock()) {  // not taken: the lock is held
      took = true;
      mu.Unlock();
    }
  });
  again.join();
  EXPECT_FALSE(took);
}

TEST(SharedMutex, ReadersShareWritersExclude) {
  SharedMutex mu;
  int n = 0;
  {
    ReaderLock a(&mu);
    bool second_reader_in = false;
    std::thread other([&] {
      ReaderLock b(&mu);  // a second reader does not block
      second_reader_in = true;
    });
    other.join();
    EXPECT_TRUE(second_reader_in);
    EXPECT_EQ(n, 0);
  }
  {
    WriterLock w(&mu);
    ++n;
  }
  EXPECT_EQ(n, 1);
}

}  // namespace
}  // namespace annals
