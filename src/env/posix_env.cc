// Env::Default(): the local directory through POSIX calls.
#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <system_error>

#include "common/file_util.h"
#include "env/env.h"

namespace annals::env {
namespace {

class PosixMappedRegion final : public MappedRegion {
 public:
  PosixMappedRegion(void* base, size_t size) : base_(base), size_(size) {}
  ~PosixMappedRegion() override { ::munmap(base_, size_); }
  std::string_view data() const override {
    return std::string_view(static_cast<const char*>(base_), size_);
  }

 private:
  void* const base_;
  const size_t size_;
};

class PosixFile final : public File {
 public:
  PosixFile(std::string path, int fd) : File(std::move(path)), fd_(fd) {}
  ~PosixFile() override { ::close(fd_); }

  Status Read(uint64_t offset, size_t n, char* buf) const override {
    return PreadAll(fd_, buf, n, offset, path());
  }
  Status Write(uint64_t offset, std::string_view data) override {
    return PwriteAll(fd_, data, offset, path());
  }
  Status Sync() override {
    if (::fdatasync(fd_) != 0) return ErrnoError("fdatasync " + path(), errno);
    return OkStatus();
  }
  void DropCache(uint64_t offset, uint64_t n) override {
    (void)::posix_fadvise(fd_, static_cast<off_t>(offset), static_cast<off_t>(n), POSIX_FADV_DONTNEED);
  }
  Status Truncate(uint64_t size) override {
    if (::ftruncate(fd_, static_cast<off_t>(size)) != 0)
      return ErrnoError("truncate " + path(), errno);
    return OkStatus();
  }
  StatusOr<uint64_t> Size() const override {
    struct stat st;
    if (::fstat(fd_, &st) != 0) return ErrnoError("stat " + path(), errno);
    return static_cast<uint64_t>(st.st_size);
  }
  StatusOr<std::unique_ptr<MappedRegion>> Map(uint64_t size) const override {
    void* p = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd_, 0);
    if (p == MAP_FAILED) return ErrnoError("mmap " + path(), errno);
    return std::unique_ptr<MappedRegion>(new PosixMappedRegion(p, size));
  }

 private:
  const int fd_;
};

class PosixEnv final : public Env {
 public:
  StatusOr<std::unique_ptr<File>> OpenFile(const std::string& path, OpenMode mode,
                                           int perm) override {
    int flags = O_CLOEXEC;
    switch (mode) {
      case OpenMode::kRead: flags |= O_RDONLY; break;
      case OpenMode::kReadWrite: flags |= O_RDWR; break;
      case OpenMode::kCreate: flags |= O_RDWR | O_CREAT; break;
      case OpenMode::kCreateNew: flags |= O_RDWR | O_CREAT | O_EXCL; break;
      case OpenMode::kCreateTruncate: flags |= O_WRONLY | O_CREAT | O_TRUNC; break;
    }
    int fd = ::open(path.c_str(), flags, perm);
    if (fd < 0) {
      const int e = errno;
      if (e == EEXIST) return AlreadyExistsError("create " + path + ": file exists");
      return ErrnoError((flags & O_CREAT ? "create " : "open ") + path, e);
    }
    return std::unique_ptr<File>(new PosixFile(path, fd));
  }

  bool FileExists(const std::string& path) override { return annals::FileExists(path); }

  StatusOr<std::vector<std::string>> GetChildren(const std::string& dir) override {
    DIR* d = ::opendir(dir.c_str());
    if (!d) return ErrnoError("opendir " + dir, errno);
    std::vector<std::string> names;
    while (dirent* e = ::readdir(d)) {
      std::string_view n = e->d_name;
      if (n != "." && n != "..") names.emplace_back(n);
    }
    ::closedir(d);
    return names;
  }

  Status CreateDirs(const std::string& dir) override { return MakeDirs(dir); }
  Status SyncDir(const std::string& dir) override { return FsyncDir(dir); }

  Status RenameFile(const std::string& from, const std::string& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0) return ErrnoError("rename " + from, errno);
    return OkStatus();
  }
  Status RemoveFile(const std::string& path) override {
    if (::unlink(path.c_str()) != 0) return ErrnoError("remove " + path, errno);
    return OkStatus();
  }
  Status RemoveTree(const std::string& path) override {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
    if (ec) return ErrnoError("remove " + path, ec.value());
    return OkStatus();
  }
};

}  // namespace

Env* Env::Default() {
  static Env* const env = new PosixEnv();  // never destroyed: used until exit
  return env;
}

}  // namespace annals::env
