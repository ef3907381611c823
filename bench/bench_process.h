// What the benchmarks that run the real `annals serve` share: starting it
// as a child with its stdout and stderr in files, and reading how much CPU
// it has used. Header-only, bench/ only.
#ifndef ANNALS_BENCH_BENCH_PROCESS_H_
#define ANNALS_BENCH_BENCH_PROCESS_H_

#include <fcntl.h>
#include <sys/types.h>
#include <unistd.h>

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

}  // namespace annals::bench

#endif  // ANNALS_BENCH_BENCH_PROCESS_H_
