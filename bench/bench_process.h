// What the benchmarks that run the real `annals serve` share: starting it
// as a child with its stdout and stderr in files, and reading how much CPU
// it has used. Header-only, bench/ only.
#ifndef ANNALS_BENCH_BENCH_PROCESS_H_
#define ANNALS_BENCH_BENCH_PROCESS_H_

#include <fcntl.h>
#include <sys/types.h>
#include <unistd.h>

#include <chrono>
#include <cerrno>
#include <filesystem>
#include <algorithm>
#include <map>
#include <cstring>
#include <nlohmann/json.hpp>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

namespace annals::bench {

// Forks and execs `binary` with `args` (args[0] included), stdout to
// `out`, stderr to `err`. Returns the child's pid, or -1 if fork failed.
inline pid_t SpawnWithOutput(const std::string& binary, std::vector<std::string> args,
                             const std::string& out, const std::string& err) {
  pid_t pid = ::fork();
  if (pid == 0) {
    int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int e = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (o < 0 || e < 0 || ::dup2(o, 1) < 0 || ::dup2(e, 2) < 0) ::_exit(127);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(binary.c_str(), argv.data());
    ::_exit(127);
  }
  return pid;
}

// CPU seconds (user + system, all threads) process `pid` has used so far.
inline double ProcessCpuSeconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t paren = stat.rfind(')');
  if (paren == std::string::npos) return 0;
  std::istringstream rest(stat.substr(paren + 2));
  std::string field;
  double ticks = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i)
    if (i == 14 || i == 15) ticks += std::stod(field);
  return ticks / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

// CPU seconds (user + system) of each of process `pid`'s live threads,
// summed by thread name (the annals-* names SetThreadName gives, RocksDB's
// rocksdb:* pools; an unnamed thread carries the process's name).
inline std::map<std::string, double> ThreadCpuSeconds(pid_t pid) {
  std::map<std::string, double> out;
  std::error_code ec;
  const std::string dir = "/proc/" + std::to_string(pid) + "/task";
  for (auto it = std::filesystem::directory_iterator(dir, ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    std::ifstream in(it->path() / "stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    size_t open = stat.find('('), close = stat.rfind(')');
    if (open == std::string::npos || close == std::string::npos || close < open) continue;
    std::string name = stat.substr(open + 1, close - open - 1);
    std::istringstream rest(stat.substr(close + 2));
    std::string field;
    double ticks = 0;
    for (int i = 3; i <= 15 && rest >> field; ++i)
      if (i == 14 || i == 15) ticks += std::stod(field);
    out[name] += ticks / static_cast<double>(::sysconf(_SC_CLK_TCK));
  }
  return out;
}

// The disk's bound, measured in the same run as the figures it bounds:
// bytes per second of sequential 1 MiB pwrite()s, each fdatasync()ed, into
// a scratch file in `dir` for `seconds`. Returns -1 (and says why in
// *error) if the file cannot be written.
inline double DiskBound(const std::string& dir, double seconds, std::string* error) {
  using Clock = std::chrono::steady_clock;
  const std::string path = dir + "/disk-bound";
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    *error = "open " + path + ": " + std::strerror(errno);
    return -1;
  }
  std::string chunk(size_t{1} << 20, '\0');
  for (size_t i = 0; i < chunk.size(); ++i) chunk[i] = static_cast<char>((i * 2654435761u) >> 13);
  uint64_t off = 0;
  const auto t0 = Clock::now();
  auto since = [&] { return std::chrono::duration<double>(Clock::now() - t0).count(); };
  double bps = -1;
  while (since() < seconds) {
    if (::pwrite(fd, chunk.data(), chunk.size(), static_cast<off_t>(off)) !=
            static_cast<ssize_t>(chunk.size()) ||
        ::fdatasync(fd) != 0) {
      *error = "write " + path + ": " + std::strerror(errno);
      off = 0;
      break;
    }
    off += chunk.size();
  }
  if (off > 0) bps = static_cast<double>(off) / since();
  ::close(fd);
  ::unlink(path.c_str());
  return bps;
}

// The median of v (the upper one of an even count).
inline double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// n real audit events from the corpus's audit2rbac-demo.jsonl, each with
// its auditID made unique by tag and its number. Empty if the file cannot
// be read.
inline std::vector<std::string> UniqueAuditEvents(const std::string& corpus_dir, size_t n, const std::string& tag) {
  std::ifstream in(corpus_dir + "/k8s-audit/audit2rbac-demo.jsonl");
  std::vector<nlohmann::json> base;
  for (std::string l; std::getline(in, l);)
    if (!l.empty()) base.push_back(nlohmann::json::parse(l));
  std::vector<std::string> out;
  if (base.empty()) return out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    nlohmann::json j = base[i % base.size()];
    j["auditID"] = j["auditID"].get<std::string>() + "-" + tag + std::to_string(i);
    out.push_back(j.dump());
  }
  return out;
}

// An audit EventList of evs[b, e), as the API server's webhook posts it.
inline std::string EventListBody(const std::vector<std::string>& evs, size_t b, size_t e) {
  std::string body = R"({"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[)";
  for (size_t i = b; i < e; ++i) {
    if (i > b) body += ",";
    body += evs[i];
  }
  return body + "]}";
}

}  // namespace annals::bench

#endif  // ANNALS_BENCH_BENCH_PROCESS_H_
