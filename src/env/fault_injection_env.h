// FaultInjectionEnv: an Env for tests that passes every call to another Env
// except those a test has armed to fail: a write that fails (EIO, ENOSPC),
// a short write (part of the bytes reach the file, then the error), a
// failed fdatasync, a failed truncate, EIO on read. A fault applies to the
// files whose path contains a given part ("" for all) and fires a given
// number of times or until cleared. FillDisk()/ReturnSpace() model a disk
// that runs out of space and gets it back.
//
// Thread-safe. Does not own the base Env, which must outlive it and every
// File it opened.
#ifndef ANNALS_ENV_FAULT_INJECTION_ENV_H_
#define ANNALS_ENV_FAULT_INJECTION_ENV_H_

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "env/env.h"

namespace annals::env {

class FaultInjectionEnv final : public Env {
 public:
  enum class Op { kWrite, kSync, kTruncate, kRead };
  static constexpr int kForever = -1;

  explicit FaultInjectionEnv(Env* base);

  // Fails the next `times` (kForever: every) `op` on files whose path
  // contains `path_part` with errno `err`. With short_write, a failing
  // write first writes the first half of its bytes. kSync covers File::Sync
  // and SyncDir; kRead covers Read and Map.
  void Arm(Op op, std::string path_part, int err, int times = kForever,
           bool short_write = false);
  // Every write fails with ENOSPC after writing half its bytes, until
  // ReturnSpace().
  void FillDisk();
  void ReturnSpace();  // disarms the ENOSPC write faults
  void ClearFaults();  // disarms every fault
  // How many calls have failed by injection so far.
  uint64_t injected() const;

  // Checks the armed faults for `op` on `path`: the errno to fail with, or
  // 0; *short_write says whether a failing write writes half first.
  int Check(Op op, const std::string& path, bool* short_write = nullptr);

  StatusOr<std::unique_ptr<File>> OpenFile(const std::string& path, OpenMode mode,
                                           int perm = 0644) override;
  bool FileExists(const std::string& path) override { return base_->FileExists(path); }
  StatusOr<std::vector<std::string>> GetChildren(const std::string& dir) override {
    return base_->GetChildren(dir);
  }
  Status CreateDirs(const std::string& dir) override { return base_->CreateDirs(dir); }
  Status SyncDir(const std::string& dir) override;
  Status RenameFile(const std::string& from, const std::string& to) override {
    return base_->RenameFile(from, to);
  }
  Status RemoveFile(const std::string& path) override { return base_->RemoveFile(path); }
  Status RemoveTree(const std::string& path) override { return base_->RemoveTree(path); }

 private:
  struct Fault {
    Op op;
    std::string path_part;
    int err;
    int times;  // left to fire; kForever: until cleared
    bool short_write;
  };
  Env* const base_;
  mutable std::mutex mu_;  // guards faults_ and injected_
  std::vector<Fault> faults_;
  uint64_t injected_ = 0;
};

}  // namespace annals::env

#endif  // ANNALS_ENV_FAULT_INJECTION_ENV_H_
