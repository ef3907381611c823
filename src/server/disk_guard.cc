#include "server/disk_guard.h"

#include <fcntl.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>

#include "common/file_util.h"
#include "common/log.h"
#include "common/thread_util.h"

namespace annals::server {
namespace {

std::string Mib(uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(bytes) / (1 << 20));
  return buf;
}

}  // namespace

StatusOr<DiskSpace> StatDisk(const std::string& path) {
  struct statvfs st;
  if (::statvfs(path.c_str(), &st) != 0) return ErrnoError("statvfs " + path, errno);
  DiskSpace d;
  d.free = static_cast<uint64_t>(st.f_bavail) * st.f_frsize;
  d.total = static_cast<uint64_t>(st.f_blocks) * st.f_frsize;
  return d;
}

DiskGuard::DiskGuard(std::string data_dir, uint64_t floor,
                     std::function<StatusOr<DiskSpace>(const std::string&)> stat)
    : data_dir_(std::move(data_dir)), wanted_floor_(floor), stat_(std::move(stat)) {}

Status DiskGuard::MakeReserve(uint64_t bytes) {
  const std::string path = ReservePath();
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoError("create " + path, errno);
  int err = ::posix_fallocate(fd, 0, static_cast<off_t>(bytes));
  if (err == 0 && ::fdatasync(fd) != 0) err = errno;
  ::close(fd);
  if (err != 0) {
    ::unlink(path.c_str());
    return ErrnoError("allocate " + path, err);
  }
  return OkStatus();
}

std::string DiskGuard::Admit() {
  const int64_t now = std::chrono::steady_clock::now().time_since_epoch().count();
  int64_t last = last_check_ns_.load(std::memory_order_relaxed);
  if (now - last > 10'000'000 && last_check_ns_.compare_exchange_strong(last, now)) Check(/*at_start=*/false);
  return Refusal();
}

void DiskGuard::Check(bool at_start) {
  last_check_ns_.store(std::chrono::steady_clock::now().time_since_epoch().count(), std::memory_order_relaxed);
  auto space = stat_(data_dir_);
  std::function<uint64_t()> pending;
  {
    MutexLock lock(&mu_);
    pending = pending_;
  }
  // Outside mu_: it takes the stores' locks. Not asked with the guard off.
  const uint64_t held = pending && wanted_floor_ > 0 ? pending() : 0;
  MutexLock lock(&mu_);
  pending_bytes_ = held;
  if (!space.ok()) {
    if (!stat_failed_) log::Warning("disk guard: %s", space.status().message().c_str());
    stat_failed_ = true;
    return;
  }
  stat_failed_ = false;
  floor_ = std::min(wanted_floor_, space->total / 32);
  const uint64_t reserve = floor_ / 2;
  uint64_t free = space->free;
  bool have_reserve = FileExists(ReservePath());
  if (floor_ == 0) {
    low_ = false;
  } else if (free < floor_ + held) {
    if (have_reserve && at_start && free < floor_) {
      if (::unlink(ReservePath().c_str()) == 0) {
        ++released_;
        have_reserve = false;
        log::Warning("disk guard: %s free in %s: released the %s reserve file so that the indexes can work",
                     Mib(free).c_str(), data_dir_.c_str(), Mib(reserve).c_str());
        if (auto again = stat_(data_dir_); again.ok()) free = again->free;
      }
    }
    if (!low_)
      log::Error("disk guard: %s free in %s, below the floor of %s (--disk-reserve) and the %s the indexes "
                 "hold in memory: ingest is refused until %s are free",
                 Mib(free).c_str(), data_dir_.c_str(), Mib(floor_).c_str(), Mib(held).c_str(),
                 Mib(2 * floor_ + held + reserve).c_str());
    low_ = true;
  } else {
    if (!have_reserve && reserve > 0 && free >= 2 * floor_ + held + reserve) {
      if (Status s = MakeReserve(reserve); s.ok()) {
        have_reserve = true;
        free -= reserve;
      } else {
        log::Warning("disk guard: %s", s.message().c_str());
      }
    }
    if (low_ && free >= 2 * floor_ + held && (have_reserve || reserve == 0)) {
      low_ = false;
      log::Info("disk guard: %s free in %s: ingest is taken again", Mib(free).c_str(), data_dir_.c_str());
    }
  }
  free_ = free;
  refusal_ = low_ ? "disk nearly full: " + Mib(free) + " free in " + data_dir_ + ", below the floor of " +
                        Mib(floor_) + " (--disk-reserve) and the " + Mib(held) +
                        " the indexes hold in memory; writes are taken again once " +
                        Mib(2 * floor_ + held + (have_reserve ? 0 : reserve)) + " are free"
                  : std::string();
}

void DiskGuard::Run(std::chrono::milliseconds every) {
  thread_ = std::thread([this, every] {
    SetThreadName("annals-disk");
    MutexLock lock(&run_mu_);
    while (!stop_) {
      lock.Unlock();
      Check(/*at_start=*/false);
      lock.Lock();
      if (!stop_) run_cv_.WaitFor(&lock, every);
    }
  });
}

DiskGuard::~DiskGuard() { Stop(); }

void DiskGuard::Stop() {
  {
    MutexLock lock(&run_mu_);
    stop_ = true;
  }
  run_cv_.NotifyAll();
  if (thread_.joinable()) thread_.join();
}

void DiskGuard::SetPending(std::function<uint64_t()> pending) {
  MutexLock lock(&mu_);
  pending_ = std::move(pending);
}

uint64_t DiskGuard::last_pending() const {
  MutexLock lock(&mu_);
  return pending_bytes_;
}

std::string DiskGuard::Refusal() const {
  MutexLock lock(&mu_);
  return refusal_;
}

uint64_t DiskGuard::floor() const {
  MutexLock lock(&mu_);
  return floor_;
}

uint64_t DiskGuard::last_free() const {
  MutexLock lock(&mu_);
  return free_;
}

uint64_t DiskGuard::reserve_released() const {
  MutexLock lock(&mu_);
  return released_;
}

}  // namespace annals::server
