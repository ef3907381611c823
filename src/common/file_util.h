// Small POSIX file helpers with Status errors. Thread-safe (no shared state).
#ifndef ANNALS_COMMON_FILE_UTIL_H_
#define ANNALS_COMMON_FILE_UTIL_H_

#include <string>
#include <string_view>

#include "common/status.h"

namespace annals {

StatusOr<std::string> ReadFileToString(const std::string& path);
// Writes to path.tmp, fsyncs, renames over path and fsyncs the directory:
// after a crash the file holds either the old or the new contents.
Status WriteFileAtomic(const std::string& path, std::string_view data,
                       int mode = 0644, bool sync = true);
Status FsyncDir(const std::string& dir);
Status MakeDirs(const std::string& dir);
bool FileExists(const std::string& path);
// Writes all of data to fd at its current offset, retrying short writes.
Status WriteAll(int fd, std::string_view data, std::string_view what);
// Writes all of data at offset, retrying short writes.
Status PwriteAll(int fd, std::string_view data, uint64_t offset, std::string_view what);
// Reads exactly n bytes at offset, or fails.
Status PreadAll(int fd, char* buf, size_t n, uint64_t offset, std::string_view what);
std::string DirName(const std::string& path);

}  // namespace annals

#endif  // ANNALS_COMMON_FILE_UTIL_H_
