#include "ingest/file_tail.h"
#include "common/log.h"
#include "common/thread_util.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <thread>

#include "common/bytes.h"
#include "common/file_util.h"
#include "common/sha256.h"
#include "ingest/line_batch.h"

namespace annals::ingest {

namespace {

constexpr size_t kChunk = 4u << 20;
constexpr auto kPoll = std::chrono::milliseconds(100);
constexpr char kSource[] = "audit-log";

std::string StateFileFor(const std::string& dir, const std::string& path) {
  return dir + "/" + HexEncode(HashBytes(Sha256(path))).substr(0, 24) + ".pos";
}

bool LoadPosition(const std::string& file, TailPosition* pos) {
  auto text = ReadFileToString(file);
  if (!text.ok()) return false;
  unsigned long long dev, ino, off, line;
  if (std::sscanf(text->c_str(), "v1 dev=%llu inode=%llu offset=%llu line=%llu", &dev, &ino, &off,
                  &line) != 4)
    return false;
  *pos = {dev, ino, off, line};
  return true;
}

// The rotated file (same directory, not compressed) with this identity.
std::string FindRotated(const std::string& path, const TailPosition& pos) {
  std::string dir = DirName(path);
  DIR* d = ::opendir(dir.c_str());
  if (!d) return "";
  std::string found;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name.ends_with(".gz")) continue;
    std::string full = dir + "/" + name;
    struct stat st;
    if (::stat(full.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
        static_cast<uint64_t>(st.st_ino) == pos.inode && static_cast<uint64_t>(st.st_dev) == pos.dev) {
      found = full;
      break;
    }
  }
  ::closedir(d);
  return found;
}

}  // namespace

FileTailer::FileTailer(std::string path, std::string state_dir, Ingestor* ingestor, Metrics* metrics,
                       std::string cluster)
    : path_(std::move(path)),
      state_file_(StateFileFor(state_dir, path_)),
      ingestor_(ingestor),
      metrics_(metrics),
      cluster_(std::move(cluster)) {}

FileTailer::~FileTailer() { Stop(); }

Status FileTailer::Start() {
  RETURN_IF_ERROR(MakeDirs(DirName(state_file_)));
  thread_ = std::thread([this] {
    SetThreadName("annals-tail");
    Run();
  });
  return OkStatus();
}

void FileTailer::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

Status FileTailer::SavePosition(const TailPosition& p) {
  char buf[160];
  std::snprintf(buf, sizeof(buf), "v1 dev=%llu inode=%llu offset=%llu line=%llu\n",
                static_cast<unsigned long long>(p.dev), static_cast<unsigned long long>(p.inode),
                static_cast<unsigned long long>(p.offset), static_cast<unsigned long long>(p.line));
  return WriteFileAtomic(state_file_, buf, 0644);
}

bool FileTailer::Drain(int fd, TailPosition* pos, bool final_chunk) {
  std::string buf;
  for (;;) {
    if (stop_) return false;
    buf.resize(kChunk);
    ssize_t n = ::pread(fd, buf.data(), buf.size(), static_cast<off_t>(pos->offset));
    if (n <= 0) return true;
    buf.resize(static_cast<size_t>(n));
    size_t end = buf.rfind('\n');
    if (end == std::string::npos) {
      // No complete line yet (or one longer than a chunk in a finished file).
      if (!(final_chunk && static_cast<size_t>(n) < kChunk)) return true;
      buf.push_back('\n');
      end = buf.size() - 1;
    }
    buf.resize(end + 1);
    const uint64_t consumed = final_chunk && buf.size() > static_cast<size_t>(n)
                                  ? static_cast<uint64_t>(n)
                                  : buf.size();
    const uint64_t lines = static_cast<uint64_t>(std::count(buf.begin(), buf.end(), '\n'));
    const std::string prefix = "tail:" + std::to_string(pos->dev) + ":" + std::to_string(pos->inode) + ":";
    LineBatch batch = MakeLineBatch(std::move(buf), pos->line + 1, kSource, path_, metrics_, prefix,
                                    pos->offset, cluster_);
    buf = std::string();
    // Retry until durable: a followed file has no one to report an error to.
    while (!batch.items.empty()) {
      auto r = ingestor_->SubmitAndWait(kSource, batch.items);
      if (r.ok()) break;
      log::Warning("tail %s: append failed (%s); retrying", path_.c_str(),
                   r.status().message().c_str());
      for (int i = 0; i < 10 && !stop_; ++i) std::this_thread::sleep_for(kPoll);
      if (stop_) return false;
    }
    lines_ += batch.items.size();
    pos->offset += consumed;
    pos->line += lines;
    Status s = SavePosition(*pos);
    if (!s.ok()) log::Warning("tail %s: %s", path_.c_str(), s.message().c_str());
  }
}

void FileTailer::Run() {
  TailPosition pos;
  bool have_pos = LoadPosition(state_file_, &pos);
  int fd = -1;
  bool warned_missing = false;
  while (!stop_) {
    if (fd < 0) {
      fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) {
        if (!warned_missing) {
          log::Warning("tail %s: not there yet; waiting for it", path_.c_str());
          warned_missing = true;
        }
        std::this_thread::sleep_for(kPoll);
        continue;
      }
      warned_missing = false;
      struct stat st;
      ::fstat(fd, &st);
      TailPosition cur{static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino), 0, 0};
      if (have_pos && (pos.inode != cur.inode || pos.dev != cur.dev)) {
        // Rotated while we were away: finish the file we were reading.
        std::string rotated = FindRotated(path_, pos);
        if (!rotated.empty()) {
          int rfd = ::open(rotated.c_str(), O_RDONLY | O_CLOEXEC);
          if (rfd >= 0) {
            bool ok = Drain(rfd, &pos, /*final_chunk=*/true);
            ::close(rfd);
            if (!ok) break;
          }
        } else if (pos.offset > 0) {
          log::Warning("tail %s: the file read before the restart is gone "
                       "(compressed or deleted); its unread tail cannot be recovered",
                       path_.c_str());
        }
        pos = cur;
      } else if (!have_pos) {
        pos = cur;
      }
      have_pos = true;
      Status s = SavePosition(pos);
      (void)s;
    }
    struct stat st;
    if (::fstat(fd, &st) == 0 && static_cast<uint64_t>(st.st_size) < pos.offset) {
      log::Warning("tail %s: truncated; reading from the start", path_.c_str());
      pos.offset = 0;
    }
    if (!Drain(fd, &pos, false)) break;
    // At the end: has the path moved on to a new file?
    struct stat now;
    if (::stat(path_.c_str(), &now) != 0 || static_cast<uint64_t>(now.st_ino) != pos.inode ||
        static_cast<uint64_t>(now.st_dev) != pos.dev) {
      // Finish the renamed file (anything written after our last read).
      if (!Drain(fd, &pos, /*final_chunk=*/true)) break;
      ::close(fd);
      fd = -1;
      if (::stat(path_.c_str(), &now) == 0) {
        // Position now refers to the new file from its start.
        pos = {static_cast<uint64_t>(now.st_dev), static_cast<uint64_t>(now.st_ino), 0, 0};
        Status s = SavePosition(pos);
        (void)s;
      }
      continue;
    }
    std::this_thread::sleep_for(kPoll);
  }
  if (fd >= 0) ::close(fd);
}

}  // namespace annals::ingest
