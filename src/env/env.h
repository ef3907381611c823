// Env: the storage seam. Every file the ledger keeps (log segments, hash
// tiles, blobs, checkpoints) is opened, written, synced, read and listed
// through an Env, so that a test can put a FaultInjectionEnv in between
// and an object-storage archive can stand on the same interface (leveldb's
// Env, cut down to the operations those stores use).
//
// Env::Default() is the local directory: the same POSIX calls the stores
// made before the seam (pwrite, fdatasync, pread, mmap for scans, rename,
// fsync of the directory), with no copies on the append path.
//
// Thread-safety: an Env is thread-safe. A File may be read (Read, Map,
// Size) from any number of threads while one thread writes it; writes,
// syncs and truncates to one File come from one thread at a time.
#ifndef ANNALS_ENV_ENV_H_
#define ANNALS_ENV_ENV_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace annals::env {

// How OpenFile opens a path.
enum class OpenMode {
  kRead,             // existing file, read only
  kReadWrite,        // existing file, read and write
  kCreate,           // read and write, created if missing, never truncated
  kCreateNew,        // read and write, AlreadyExists if present (O_EXCL)
  kCreateTruncate,   // write, created if missing, emptied if present
};

// A read-only view of a file's first bytes; unmapped when destroyed.
class MappedRegion {
 public:
  virtual ~MappedRegion() = default;
  virtual std::string_view data() const = 0;
};

// An open file with positional I/O. Errors name the file and the call
// ("fdatasync /data/segments/...: Input/output error"); ENOSPC and EDQUOT
// are ResourceExhausted. Owned by whoever opened it; closed when destroyed.
class File {
 public:
  virtual ~File() = default;
  const std::string& path() const { return path_; }

  // Reads exactly n bytes at offset into buf; DataLoss if the file ends first.
  virtual Status Read(uint64_t offset, size_t n, char* buf) const = 0;
  // Writes all of data at offset (pwrite, retrying short writes). Not
  // durable until Sync().
  virtual Status Write(uint64_t offset, std::string_view data) = 0;
  // Makes the file's data durable (fdatasync). After a failure the state of
  // unsynced data is unknown: callers must not retry and acknowledge it.
  virtual Status Sync() = 0;
  // A hint that [offset, offset + n), synced, will not be read soon: the
  // kernel may drop it from the page cache (posix_fadvise DONTNEED) and
  // reuse those pages. No error: a hint not taken changes nothing.
  virtual void DropCache(uint64_t offset, uint64_t n) {
    (void)offset;
    (void)n;
  }
  virtual Status Truncate(uint64_t size) = 0;
  virtual StatusOr<uint64_t> Size() const = 0;
  // Maps the first `size` bytes (size > 0) read-only, for scanning.
  virtual StatusOr<std::unique_ptr<MappedRegion>> Map(uint64_t size) const = 0;

 protected:
  explicit File(std::string path) : path_(std::move(path)) {}

 private:
  const std::string path_;
};

class Env {
 public:
  virtual ~Env() = default;
  // The local file system (POSIX). Never destroyed.
  static Env* Default();

  // `perm` applies when the file is created.
  virtual StatusOr<std::unique_ptr<File>> OpenFile(const std::string& path, OpenMode mode,
                                                   int perm = 0644) = 0;
  virtual bool FileExists(const std::string& path) = 0;
  // Names in dir, without "." and "..", in no particular order.
  virtual StatusOr<std::vector<std::string>> GetChildren(const std::string& dir) = 0;
  // Creates dir and any missing parents.
  virtual Status CreateDirs(const std::string& dir) = 0;
  // Makes the directory's entries (created, renamed files) durable.
  virtual Status SyncDir(const std::string& dir) = 0;
  virtual Status RenameFile(const std::string& from, const std::string& to) = 0;
  virtual Status RemoveFile(const std::string& path) = 0;
  // Removes path and everything under it; OK if it does not exist.
  virtual Status RemoveTree(const std::string& path) = 0;
};

// The whole file.
StatusOr<std::string> ReadFileToString(Env* env, const std::string& path);
// Writes path.tmp, syncs it, renames it over path and syncs the directory:
// after a crash path holds the old or the new contents. With sync = false,
// only the write and the rename (a convenience copy, not trusted on start).
Status WriteFileAtomic(Env* env, const std::string& path, std::string_view data,
                       int perm = 0644, bool sync = true);

}  // namespace annals::env

#endif  // ANNALS_ENV_ENV_H_
