#include "ledger/checkpoint_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "common/bytes.h"
#include "common/crc32c.h"
#include "common/file_util.h"

namespace annals::ledger {
namespace {

constexpr uint32_t kMaxNote = 1 << 20;

std::string Frame(std::string_view note) {
  std::string out;
  PutBigEndian32(&out, static_cast<uint32_t>(note.size()));
  uint32_t crc = crc32c::Extend(crc32c::Value(out.data(), 4), note.data(), note.size());
  PutBigEndian32(&out, crc32c::Mask(crc));
  out.append(note);
  return out;
}

}  // namespace

Status CheckpointLog::Scan(const std::string& dir,
                           const std::function<Status(uint64_t, std::string_view)>& fn,
                           std::string* cut) {
  std::string path = dir + "/" + kCheckpointLogName;
  auto data = ReadFileToString(path);
  if (!data.ok()) {
    if (data.status().code() == StatusCode::kNotFound) return OkStatus();
    return data.status();
  }
  std::string_view v = *data;
  uint64_t off = 0, n = 0;
  while (off < v.size()) {
    std::string why;
    // A crash can tear only the last record (each append is one small write
    // and a sync): damage with good records after it is not a torn tail.
    bool torn = true;
    if (v.size() - off < 8) {
      why = "truncated record header";
    } else {
      uint32_t len = GetBigEndian32(v.data() + off);
      if (len == 0 || len > kMaxNote) {
        why = "bad record length";
        torn = v.substr(off).find_first_not_of('\0') == std::string_view::npos;
      } else if (v.size() - off - 8 < len) {
        why = "truncated record";
      } else {
        uint32_t want = crc32c::Unmask(GetBigEndian32(v.data() + off + 4));
        uint32_t got = crc32c::Extend(crc32c::Value(v.data() + off, 4), v.data() + off + 8, len);
        if (want != got) {
          why = "CRC mismatch";
          torn = off + 8 + len == v.size();
        } else {
          if (fn) RETURN_IF_ERROR(fn(n, v.substr(off + 8, len)));
          off += 8 + len;
          ++n;
          continue;
        }
      }
    }
    std::string msg = "checkpoint record " + std::to_string(n) + " at byte " +
                      std::to_string(off) + ": " + why;
    if (!torn) return DataLossError(msg + " (not at the end of the file: damage, not a torn write)");
    if (cut) {
      *cut = msg;
      // Tail position is encoded for Open() in the message's byte offset.
      return OkStatus();
    }
    return DataLossError(msg);
  }
  return OkStatus();
}

StatusOr<std::unique_ptr<CheckpointLog>> CheckpointLog::Open(const std::string& dir,
                                                             std::string* cut) {
  RETURN_IF_ERROR(MakeDirs(dir));
  std::unique_ptr<CheckpointLog> log(new CheckpointLog());
  log->dir_ = dir;
  uint64_t good = 0;
  std::string why;
  RETURN_IF_ERROR(Scan(
      dir,
      [&](uint64_t, std::string_view note) {
        log->latest_.assign(note);
        good += 8 + note.size();
        return OkStatus();
      },
      &why));
  std::string path = dir + "/" + kCheckpointLogName;
  log->fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (log->fd_ < 0) return ErrnoError("open " + path, errno);
  if (!why.empty()) {
    if (cut) *cut = why;
    if (::ftruncate(log->fd_, static_cast<off_t>(good)) != 0 || ::fdatasync(log->fd_) != 0)
      return ErrnoError("truncate " + path, errno);
  }
  log->bytes_ = good;
  RETURN_IF_ERROR(FsyncDir(dir));
  return log;
}

CheckpointLog::~CheckpointLog() {
  if (fd_ >= 0) ::close(fd_);
}

Status CheckpointLog::Append(std::string_view note) {
  std::string rec = Frame(note);
  size_t done = 0;
  while (done < rec.size()) {
    ssize_t n = ::pwrite(fd_, rec.data() + done, rec.size() - done,
                         static_cast<off_t>(bytes_ + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("write checkpoints.log", errno);
    }
    done += static_cast<size_t>(n);
  }
  if (::fdatasync(fd_) != 0) return ErrnoError("fdatasync checkpoints.log", errno);
  bytes_ += rec.size();
  latest_.assign(note);
  // The static copy is a convenience for plain file servers; the log above
  // is what recovery trusts.
  return WriteFileAtomic(dir_ + "/checkpoint", note, 0644, /*sync=*/false);
}

}  // namespace annals::ledger
