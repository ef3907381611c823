// Tar archives in one canonical POSIX ustar form, for evidence bundles
// (docs/format/bundle.md): regular files only, mode 0644, owner 0/0, mtime
// 0, no user or group names, names of at most 100 bytes. Any tar tool lists
// and extracts them; the reader accepts exactly what the writer makes (each
// header must be the one the writer would make for its name and size, the
// padding and the two end blocks zero, nothing after them), so a changed
// byte anywhere in an archive is an error, not a different archive.
#ifndef ANNALS_COMMON_TAR_H_
#define ANNALS_COMMON_TAR_H_

#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace annals::tar {

struct File {
  std::string name;  // 1..100 bytes, no NUL
  std::string data;
};

// InvalidArgument for a name out of bounds.
StatusOr<std::string> Write(const std::vector<File>& files);
// DataLoss naming the member (or byte offset) that is not canonical.
// At most max_files members.
StatusOr<std::vector<File>> Read(std::string_view archive, size_t max_files);

}  // namespace annals::tar

#endif  // ANNALS_COMMON_TAR_H_
