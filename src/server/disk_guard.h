// DiskGuard: keeps the data directory's file system from filling up under
// the server, and lets a server start on one that did (docs/faults.md
// "A full disk").
//
// Writes (ingest from every source) are refused while the free space is
// below a floor, so that the derived stores, snapshots, tiles and
// checkpoints always have room, and are taken again once there is room for
// the floor twice over. The floor is raised by what the derived stores
// hold in memory and have yet to write (memtables, the dedup index's open
// run): a store whose flush fails for want of space refuses every write
// after it, so their room is kept before more is acknowledged. A reserve file (DATA/reserve, half the floor,
// allocated) is kept while there is room: a start that finds less
// free space than the floor removes it, so that RocksDB can open the
// indexes and the server can answer reads, and makes it again once space
// returns.
#ifndef ANNALS_SERVER_DISK_GUARD_H_
#define ANNALS_SERVER_DISK_GUARD_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <thread>

#include "common/mutex.h"
#include "common/status.h"

namespace annals::server {

struct DiskSpace {
  uint64_t free = 0;   // bytes available to this process (f_bavail)
  uint64_t total = 0;  // bytes in the file system
};

// statvfs(path).
StatusOr<DiskSpace> StatDisk(const std::string& path);

class DiskGuard {
 public:
  static constexpr char kReserveName[] = "reserve";
  // floor: --disk-reserve, capped at 1/32 of the file system (so that a
  // small volume keeps most of its room for the log). `stat` is for tests.
  DiskGuard(std::string data_dir, uint64_t floor,
            std::function<StatusOr<DiskSpace>(const std::string&)> stat = StatDisk);

  ~DiskGuard();
  DiskGuard(const DiskGuard&) = delete;
  DiskGuard& operator=(const DiskGuard&) = delete;

  // Measures the space and sets the state: called at start (before the
  // derived stores open; only then is the reserve released), then by Run's
  // thread. While running, the reserve is kept for the next start: ingest
  // is refused, and what still writes (indexes, snapshots) has the floor.
  void Check(bool at_start) EXCLUDES(mu_);
  // Calls Check() every `every` on a thread of its own until Stop() or
  // destruction.
  void Run(std::chrono::milliseconds every);
  void Stop() EXCLUDES(run_mu_);
  // What the derived stores hold in memory and will write, in bytes; asked
  // at every Check(), which refuses writes below the floor plus that.
  // nullptr: none (the default). Call Stop() before what it reads goes.
  void SetPending(std::function<uint64_t()> pending) EXCLUDES(mu_);
  // Empty, or why writes are refused now ("... free, below the floor ...").
  std::string Refusal() const EXCLUDES(mu_);
  // Refusal() for a write about to be made: measures again first when the
  // last measurement is older than 10 ms (a fast client fills a floor's
  // worth of disk between two of Run's checks).
  std::string Admit() EXCLUDES(mu_);
  uint64_t floor() const EXCLUDES(mu_);
  uint64_t last_free() const EXCLUDES(mu_);
  uint64_t last_pending() const EXCLUDES(mu_);  // at the last Check()
  // How many times Check() released or made the reserve file.
  uint64_t reserve_released() const EXCLUDES(mu_);

 private:
  std::string ReservePath() const { return data_dir_ + "/" + kReserveName; }
  Status MakeReserve(uint64_t bytes);

  const std::string data_dir_;
  const uint64_t wanted_floor_;
  const std::function<StatusOr<DiskSpace>(const std::string&)> stat_;
  mutable Mutex mu_;
  uint64_t floor_ GUARDED_BY(mu_) = 0;
  uint64_t free_ GUARDED_BY(mu_) = 0;
  std::function<uint64_t()> pending_ GUARDED_BY(mu_);
  uint64_t pending_bytes_ GUARDED_BY(mu_) = 0;
  bool low_ GUARDED_BY(mu_) = false;
  std::string refusal_ GUARDED_BY(mu_);
  uint64_t released_ GUARDED_BY(mu_) = 0;
  bool stat_failed_ GUARDED_BY(mu_) = false;
  std::atomic<int64_t> last_check_ns_{0};  // steady clock
  Mutex run_mu_;
  CondVar run_cv_;
  bool stop_ GUARDED_BY(run_mu_) = false;
  std::thread thread_;
};

}  // namespace annals::server

#endif  // ANNALS_SERVER_DISK_GUARD_H_
