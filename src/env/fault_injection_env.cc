#include "env/fault_injection_env.h"

#include <cerrno>
#include <cstring>

namespace annals::env {
namespace {

using Op = FaultInjectionEnv::Op;

std::string Name(Op op) {
  switch (op) {
    case Op::kWrite: return "write";
    case Op::kSync: return "fdatasync";
    case Op::kTruncate: return "truncate";
    case Op::kRead: return "pread";
  }
  return "?";
}

// The error a real call would have returned, in PosixEnv's words.
Status Injected(Op op, const std::string& path, int err) {
  return ErrnoError(Name(op) + " " + path + " (injected)", err);
}

class FaultInjectionFile final : public File {
 public:
  FaultInjectionFile(FaultInjectionEnv* env, std::unique_ptr<File> base)
      : File(base->path()), env_(env), base_(std::move(base)) {}

  Status Read(uint64_t offset, size_t n, char* buf) const override {
    if (int e = env_->Check(Op::kRead, path())) return Injected(Op::kRead, path(), e);
    return base_->Read(offset, n, buf);
  }
  Status Write(uint64_t offset, std::string_view data) override {
    bool short_write = false;
    if (int e = env_->Check(Op::kWrite, path(), &short_write)) {
      if (short_write && data.size() > 1)
        RETURN_IF_ERROR(base_->Write(offset, data.substr(0, data.size() / 2)));
      return Injected(Op::kWrite, path(), e);
    }
    return base_->Write(offset, data);
  }
  Status Sync() override {
    if (int e = env_->Check(Op::kSync, path())) return Injected(Op::kSync, path(), e);
    return base_->Sync();
  }
  void DropCache(uint64_t offset, uint64_t n) override { base_->DropCache(offset, n); }
  Status Truncate(uint64_t size) override {
    if (int e = env_->Check(Op::kTruncate, path())) return Injected(Op::kTruncate, path(), e);
    return base_->Truncate(size);
  }
  StatusOr<uint64_t> Size() const override { return base_->Size(); }
  StatusOr<std::unique_ptr<MappedRegion>> Map(uint64_t size) const override {
    if (int e = env_->Check(Op::kRead, path())) return Injected(Op::kRead, path(), e);
    return base_->Map(size);
  }

 private:
  FaultInjectionEnv* const env_;
  const std::unique_ptr<File> base_;
};

}  // namespace

FaultInjectionEnv::FaultInjectionEnv(Env* base) : base_(base) {}

void FaultInjectionEnv::Arm(Op op, std::string path_part, int err, int times, bool short_write) {
  std::lock_guard lock(mu_);
  faults_.push_back({op, std::move(path_part), err, times, short_write});
}

void FaultInjectionEnv::FillDisk() { Arm(Op::kWrite, "", ENOSPC, kForever, /*short_write=*/true); }

void FaultInjectionEnv::ReturnSpace() {
  std::lock_guard lock(mu_);
  std::erase_if(faults_, [](const Fault& f) { return f.op == Op::kWrite && f.err == ENOSPC; });
}

void FaultInjectionEnv::ClearFaults() {
  std::lock_guard lock(mu_);
  faults_.clear();
}

uint64_t FaultInjectionEnv::injected() const {
  std::lock_guard lock(mu_);
  return injected_;
}

int FaultInjectionEnv::Check(Op op, const std::string& path, bool* short_write) {
  std::lock_guard lock(mu_);
  for (auto it = faults_.begin(); it != faults_.end(); ++it) {
    if (it->op != op || path.find(it->path_part) == std::string::npos) continue;
    const int err = it->err;
    if (short_write) *short_write = it->short_write;
    if (it->times != kForever && --it->times == 0) faults_.erase(it);
    ++injected_;
    return err;
  }
  return 0;
}

StatusOr<std::unique_ptr<File>> FaultInjectionEnv::OpenFile(const std::string& path,
                                                            OpenMode mode, int perm) {
  ASSIGN_OR_RETURN(std::unique_ptr<File> f, base_->OpenFile(path, mode, perm));
  return std::unique_ptr<File>(new FaultInjectionFile(this, std::move(f)));
}

Status FaultInjectionEnv::SyncDir(const std::string& dir) {
  if (int e = Check(Op::kSync, dir)) return Injected(Op::kSync, dir, e);
  return base_->SyncDir(dir);
}

}  // namespace annals::env
