// ledger_bench: prints throughput and latency figures for the durable write
// path, next to the targets they are meant to reach. Not a test: nothing
// here passes or fails, the figures are for people (and profilers).
//
// Sections (all by default, pick with --only=disk,append,http,checkpoint,verify):
//   disk        the disk's own bound: sequential writes + fdatasync per write
//   append      durable appends in process through ledger::Ledger::AppendAsync
//   http        the same over loopback HTTP, against a spawned `annals serve`
//   checkpoint  ack -> published checkpoint latency at a steady rate
//   verify      ledger::VerifyDataDir speed over a freshly built log
//
// Everything runs in a temporary directory under --dir (default /tmp), which
// must be on the filesystem whose speed matters (the data dir's). Besides
// rates and latencies it prints CPU microseconds per entry (process user +
// system time), which other load on the machine does not skew: rate x CPU
// per entry shows how far a figure is from being CPU-bound on nproc cores.
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench_process.h"
#include "client/http_client.h"
#include "common/bytes.h"
#include "ledger/entry.h"
#include "ledger/ledger.h"
#include "ledger/verifier.h"
#include "merkle/tile.h"

namespace annals::bench {
namespace {

using Clock = std::chrono::steady_clock;

// Targets from the performance issue.
constexpr double kTargetAppendsPerSec = 200000;
constexpr double kTargetHttpPerSec = 150000;
constexpr double kTargetCheckpointP99Ms = 1000;
constexpr double kTargetVerifyPerSec = 1000000;

double Since(Clock::time_point t0, Clock::time_point t1 = Clock::now()) {
  return std::chrono::duration<double>(t1 - t0).count();
}

// CPU seconds (user + system) used so far by this process, all threads.
double ProcessCpu() {
  struct rusage ru;
  ::getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

// CPU seconds used so far by another process (utime + stime of /proc/PID/stat).
double OtherProcessCpu(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto close = stat.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream rest(stat.substr(close + 2));
  std::string field;
  double ticks = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14 || i == 15) ticks += std::stod(field);
  }
  return ticks / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

// Latency samples in microseconds.
class Samples {
 public:
  void Add(double us) { v_.push_back(us); }
  void Merge(const Samples& o) { v_.insert(v_.end(), o.v_.begin(), o.v_.end()); }
  size_t size() const { return v_.size(); }
  // p in [0, 1]; sorts lazily.
  double Pct(double p) {
    if (v_.empty()) return 0;
    if (!sorted_) {
      std::sort(v_.begin(), v_.end());
      sorted_ = true;
    }
    size_t i = static_cast<size_t>(p * static_cast<double>(v_.size()));
    return v_[std::min(i, v_.size() - 1)];
  }
  double Max() { return Pct(1.0); }

 private:
  std::vector<double> v_;
  bool sorted_ = false;
};

std::string Ms(double us) {
  char buf[32];
  if (us < 1000) std::snprintf(buf, sizeof(buf), "%.3f ms", us / 1000);
  else if (us < 100000) std::snprintf(buf, sizeof(buf), "%.1f ms", us / 1000);
  else std::snprintf(buf, sizeof(buf), "%.0f ms", us / 1000);
  return buf;
}

// 1234567.8 -> "1,234,568".
std::string Num(double x) {
  char raw[32];
  std::snprintf(raw, sizeof(raw), "%.0f", x);
  std::string s = raw, out;
  int n = 0;
  for (auto it = s.rbegin(); it != s.rend(); ++it) {
    if (n && n % 3 == 0 && *it != '-') out.push_back(',');
    out.push_back(*it);
    ++n;
  }
  return {out.rbegin(), out.rend()};
}

struct SummaryRow {
  std::string what, measured, target;
  bool meets;
};
std::vector<SummaryRow> g_summary;

void Summarize(std::string what, std::string measured, std::string target, bool meets) {
  g_summary.push_back({std::move(what), std::move(measured), std::move(target), meets});
}

[[noreturn]] void Die(const std::string& what, const Status& s) {
  std::fprintf(stderr, "ledger_bench: %s: %s\n", what.c_str(), s.ToString().c_str());
  std::exit(1);
}

// ---------------------------------------------------------------------------
// Machine.

std::string ReadFirstLine(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

std::string LoadAvg() {
  std::string s = ReadFirstLine("/proc/loadavg");
  auto sp = s.find(' ', s.find(' ', s.find(' ') + 1) + 1);
  return sp == std::string::npos ? s : s.substr(0, sp);
}

std::string CpuModel() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with("model name")) {
      auto c = line.find(':');
      return c == std::string::npos ? line : line.substr(c + 2);
    }
  }
  return "unknown";
}

bool CpuHas(const std::string& flag) {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with("flags")) return (line + " ").find(" " + flag + " ") != std::string::npos;
  }
  return false;
}

std::string FsType(const std::string& dir) {
  struct statfs st;
  if (::statfs(dir.c_str(), &st) != 0) return "?";
  switch (static_cast<unsigned long>(st.f_type)) {
    case 0xEF53: return "ext2/3/4";
    case 0x58465342: return "xfs";
    case 0x9123683E: return "btrfs";
    case 0x01021994: return "tmpfs (fdatasync is a no-op: disk figures are meaningless)";
    case 0x794c7630: return "overlayfs";
    default: {
      char buf[32];
      std::snprintf(buf, sizeof(buf), "0x%lx", static_cast<unsigned long>(st.f_type));
      return buf;
    }
  }
}

void PrintMachine(const std::string& dir) {
  struct utsname u;
  ::uname(&u);
  std::string product = ReadFirstLine("/sys/class/dmi/id/product_name");
  std::string vendor = ReadFirstLine("/sys/class/dmi/id/sys_vendor");
  std::printf("== machine\n");
  std::printf("nproc            %u\n", std::thread::hardware_concurrency());
  std::printf("cpu              %s (sha_ni %s, sse4.2 %s)\n", CpuModel().c_str(),
              CpuHas("sha_ni") ? "yes" : "no", CpuHas("sse4_2") ? "yes" : "no");
  std::printf("machine          %s%s%s\n", vendor.empty() ? "unknown" : vendor.c_str(),
              product.empty() ? "" : " ", product.c_str());
  std::printf("kernel           %s %s\n", u.sysname, u.release);
  std::printf("bench dir        %s (%s)\n", dir.c_str(), FsType(dir).c_str());
  std::printf("load average     %s (other work on the machine skews every figure below)\n",
              LoadAvg().c_str());
}

// ---------------------------------------------------------------------------
// Payloads.

// A ledger entry (valid envelope, so the verifier can decode it) of exactly
// `size` bytes.
std::string MakeEntry(size_t size) {
  const std::string meta = R"({"v":1,"src":"bench","rt":"2026-11-25T15:08:21.123456Z","ct":"application/json"})";
  size_t overhead = 4 + meta.size();
  std::string payload = R"({"bench":")";
  size_t want = size > overhead + payload.size() + 2 ? size - overhead : payload.size() + 2;
  while (payload.size() + 2 < want) payload.push_back(static_cast<char>('a' + payload.size() % 26));
  payload += "\"}";
  auto e = ledger::EncodeEntry(meta, payload, nullptr);
  if (!e.ok()) Die("EncodeEntry", e.status());
  return *e;
}

constexpr size_t kCounterDigits = 16;

// A JSON line of `size` bytes whose unique id starts with kCounterDigits
// digits at *counter_at. kind "audit": shaped like a Kubernetes audit Event
// (auditID + stage: the server classifies it as one and deduplicates it);
// "plain": a JSON object that is neither an audit Event nor a CloudEvent.
std::string MakeJsonLine(const std::string& kind, size_t size, size_t* counter_at) {
  std::string head = kind == "audit"
      ? R"({"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":")"
      : R"({"kind":"BenchRecord","apiVersion":"bench/v1","level":"Metadata","recordID":")";
  *counter_at = head.size();
  head += std::string(kCounterDigits, '0');
  head += R"(-7c1e-4a5b-9f00-bench","stage":"ResponseComplete",)"
          R"("requestURI":"/api/v1/namespaces/default/pods?limit=500","verb":"list",)"
          R"("user":{"username":"system:serviceaccount:kube-system:bench","groups":)"
          R"(["system:serviceaccounts","system:serviceaccounts:kube-system","system:authenticated"]},)"
          R"("sourceIPs":["10.0.0.17"],"userAgent":"kubectl/v1.29.0 linux/amd64",)"
          R"("objectRef":{"resource":"pods","namespace":"default","apiVersion":"v1"},)"
          R"("responseStatus":{"metadata":{},"code":200},)"
          R"("requestReceivedTimestamp":"2026-11-25T15:08:21.123456Z",)"
          R"("stageTimestamp":"2026-11-25T15:08:21.125000Z",)"
          R"("annotations":{"authorization.k8s.io/decision":"allow","pad":")";
  if (kind != "audit") {
    // No "stage" either: not an audit Event.
    auto at = head.find(R"("stage":)");
    head.replace(at, 8, R"("phase":)");
  }
  std::string tail = "\"}}";
  std::string line = head;
  while (line.size() + tail.size() < size) line.push_back(static_cast<char>('a' + line.size() % 26));
  return line + tail;
}

void PutCounter(char* at, uint64_t v) {
  for (int i = kCounterDigits - 1; i >= 0; --i) {
    at[i] = static_cast<char>('0' + v % 10);
    v /= 10;
  }
}

// ---------------------------------------------------------------------------
// Section 1: the disk.

struct DiskResult {
  double bytes_per_sec = 0;
  double seconds = 0;
  uint64_t ops = 0;
  Samples lat;      // per write+fdatasync
  Samples windows;  // MB/s over consecutive 0.5 s windows (the disk is often noisy)
};

DiskResult SeqSync(const std::string& dir, size_t chunk, double seconds, bool keep = false) {
  std::string path = dir + "/disk-" + std::to_string(chunk);
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) Die("open " + path, ErrnoError("open", errno));
  std::string buf(chunk, '\0');
  for (size_t i = 0; i < chunk; ++i) buf[i] = static_cast<char>((i * 2654435761u) >> 13);
  DiskResult r;
  uint64_t off = 0, window_off = 0;
  auto t0 = Clock::now(), window = t0;
  while (Since(t0) < seconds) {
    if (Since(window) >= 0.5) {
      r.windows.Add(static_cast<double>(off - window_off) / Since(window) / 1e6);
      window = Clock::now();
      window_off = off;
    }
    auto a = Clock::now();
    size_t done = 0;
    while (done < chunk) {
      // At most 1 MiB per pwrite, as SegmentLog::Sync does: single huge
      // buffered writes can be far slower than the same bytes in pieces.
      ssize_t n = ::pwrite(fd, buf.data() + done, std::min(chunk - done, size_t{1} << 20),
                           static_cast<off_t>(off + done));
      if (n < 0) Die("pwrite " + path, ErrnoError("pwrite", errno));
      done += static_cast<size_t>(n);
    }
    if (::fdatasync(fd) != 0) Die("fdatasync " + path, ErrnoError("fdatasync", errno));
    r.lat.Add(Since(a) * 1e6);
    off += chunk;
    ++r.ops;
  }
  r.seconds = Since(t0);
  r.bytes_per_sec = static_cast<double>(off) / r.seconds;
  ::close(fd);
  if (!keep) ::unlink(path.c_str());
  return r;
}

// Sequential read of a file (after dropping its cached pages): the bound of
// a cold `annals verify`.
double SeqRead(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) Die("open " + path, ErrnoError("open", errno));
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  std::string buf(size_t{1} << 20, '\0');
  uint64_t total = 0;
  auto t0 = Clock::now();
  for (;;) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0) Die("read " + path, ErrnoError("read", errno));
    if (n == 0) break;
    total += static_cast<uint64_t>(n);
  }
  double secs = Since(t0);
  ::close(fd);
  return static_cast<double>(total) / secs;
}

// Returns the disk bound in bytes/s (best of the group-commit-sized chunks).
double RunDisk(const std::string& dir, double seconds, size_t entry_bytes) {
  std::printf("\n== 1. disk bound: sequential append + fdatasync after each write\n");
  double best = 0;
  for (size_t chunk : {size_t{256} << 10, size_t{1} << 20, size_t{4} << 20}) {
    DiskResult r = SeqSync(dir, chunk, seconds);
    best = std::max(best, r.bytes_per_sec);
    std::printf("%5zu KiB writes   %8.1f MB/s  %6.0f syncs/s  write+sync p50 %s p99 %s"
                "  => %s entries/s of %zu B (+8 framing)  [0.5 s windows %.0f..%.0f MB/s]\n",
                chunk >> 10, r.bytes_per_sec / 1e6, static_cast<double>(r.ops) / r.seconds,
                Ms(r.lat.Pct(0.5)).c_str(), Ms(r.lat.Pct(0.99)).c_str(),
                Num(r.bytes_per_sec / static_cast<double>(entry_bytes + 8)).c_str(), entry_bytes,
                r.windows.Pct(0), r.windows.Max());
  }
  {
    SeqSync(dir, size_t{1} << 20, std::min(seconds, 1.0), /*keep=*/true);
    std::string path = dir + "/disk-" + std::to_string(size_t{1} << 20);
    double rbps = SeqRead(path);
    std::printf("sequential read  %8.1f MB/s (cold, 1 MiB reads; bounds a cold verify at %s entries/s)\n",
                rbps / 1e6, Num(rbps / static_cast<double>(entry_bytes + 8)).c_str());
    ::unlink(path.c_str());
  }
  for (size_t chunk : {size_t{4} << 10, size_t{64} << 10}) {
    DiskResult r = SeqSync(dir, chunk, std::min(seconds, 1.5));
    std::printf("%5zu KiB writes   %8.1f MB/s  %6.0f syncs/s  write+sync p50 %s p99 %s max %s\n",
                chunk >> 10, r.bytes_per_sec / 1e6, static_cast<double>(r.ops) / r.seconds,
                Ms(r.lat.Pct(0.5)).c_str(), Ms(r.lat.Pct(0.99)).c_str(), Ms(r.lat.Max()).c_str());
  }
  std::printf("disk bound       %.1f MB/s = %s entries/s of %zu B (the 70%% line: %s/s)\n",
              best / 1e6, Num(best / static_cast<double>(entry_bytes + 8)).c_str(), entry_bytes,
              Num(0.7 * best / static_cast<double>(entry_bytes + 8)).c_str());
  std::printf("(virtual and shared disks vary a lot: see the windows; a ratio above 100%% below means "
              "the disk was slower while measured here)\n");
  return best;
}

std::string RatioText(double entries_per_sec, size_t entry_bytes, double disk_bps) {
  if (disk_bps <= 0) return "n/a (no disk section)";
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.0f%%",
                100.0 * entries_per_sec * static_cast<double>(entry_bytes + 8) / disk_bps);
  return buf;
}

// ---------------------------------------------------------------------------
// Ledger helpers.

std::unique_ptr<ledger::Ledger> OpenLedger(const std::string& dir, int interval_ms) {
  ledger::LedgerOptions o;
  o.data_dir = dir;
  o.checkpoint_interval = std::chrono::milliseconds(interval_ms);
  auto l = ledger::Ledger::Open(o);
  if (!l.ok()) Die("open ledger in " + dir, l.status());
  return std::move(*l);
}

// Waits until everything durable is integrated; returns how long it took.
double WaitIntegrated(ledger::Ledger* l) {
  auto t0 = Clock::now();
  while (l->IntegratedSize() < l->DurableSize()) std::this_thread::sleep_for(std::chrono::microseconds(200));
  return Since(t0);
}

// One client of AppendAsync that keeps up to `inflight` batches queued.
struct Appender {
  std::mutex mu;
  std::condition_variable cv;
  int inflight = 0;
  uint64_t acked = 0;
  uint64_t rejected = 0;
  Samples lat;
  Status error;
};

struct AppendResult {
  double entries_per_sec = 0;
  double cpu_us_per_entry = 0;  // whole process, appenders included
  uint64_t entries = 0;
  uint64_t rejected = 0;
  Samples lat;
  double integrate_lag = 0;
};

AppendResult RunAppenders(ledger::Ledger* l, int threads, size_t batch, int inflight,
                          double seconds, const std::string& entry, uint64_t max_entries = 0) {
  std::vector<std::unique_ptr<Appender>> apps;
  for (int i = 0; i < threads; ++i) apps.push_back(std::make_unique<Appender>());
  std::atomic<uint64_t> issued{0};
  std::atomic<bool> stop{false};
  const double cpu0 = ProcessCpu();
  auto t0 = Clock::now();
  auto deadline = t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  std::vector<std::thread> ts;
  for (int i = 0; i < threads; ++i) {
    ts.emplace_back([&, a = apps[i].get()] {
      while (Clock::now() < deadline && !stop.load()) {
        {
          std::unique_lock lock(a->mu);
          a->cv.wait(lock, [&] { return a->inflight < inflight; });
          if (!a->error.ok()) return;
        }
        if (max_entries && issued.fetch_add(batch) >= max_entries) {
          stop = true;
          break;
        }
        std::vector<std::string> entries(batch, entry);
        auto start = Clock::now();
        {
          std::lock_guard lock(a->mu);
          ++a->inflight;
        }
        for (;;) {
          Status s = l->AppendAsync(std::move(entries), [a, start, batch](StatusOr<uint64_t> r) {
            double us = Since(start) * 1e6;
            std::lock_guard lock(a->mu);
            if (r.ok()) {
              a->acked += batch;
              a->lat.Add(us);
            } else if (a->error.ok()) {
              a->error = r.status();
            }
            --a->inflight;
            a->cv.notify_all();
          });
          if (s.ok()) break;
          if (s.code() != StatusCode::kResourceExhausted) Die("AppendAsync", s);
          // Refused (queue full): the batch was moved into the call; rebuild it.
          {
            std::lock_guard lock(a->mu);
            ++a->rejected;
          }
          if (entries.size() != batch) entries.assign(batch, entry);
          std::this_thread::sleep_for(std::chrono::microseconds(200));
        }
      }
    });
  }
  for (auto& t : ts) t.join();
  AppendResult r;
  for (auto& a : apps) {
    std::unique_lock lock(a->mu);
    a->cv.wait(lock, [&] { return a->inflight == 0; });
    if (!a->error.ok()) Die("append", a->error);
    r.entries += a->acked;
    r.rejected += a->rejected;
    r.lat.Merge(a->lat);
  }
  double elapsed = Since(t0);
  r.entries_per_sec = static_cast<double>(r.entries) / elapsed;
  r.integrate_lag = WaitIntegrated(l);
  r.cpu_us_per_entry = r.entries ? (ProcessCpu() - cpu0) * 1e6 / static_cast<double>(r.entries) : 0;
  return r;
}

// ---------------------------------------------------------------------------
// Section 2: durable appends in process.

std::vector<int> g_appenders = {1, 16}, g_clients = {1, 16};
std::vector<size_t> g_batches = {1, 64, 256}, g_lines = {100, 1000};
std::vector<std::string> g_line_kinds = {"audit"};

void RunAppend(const std::string& dir, double seconds, size_t entry_bytes, int inflight,
               double disk_bps, int interval_ms) {
  std::printf("\n== 2. durable appends in process (Ledger::AppendAsync, %zu B entries, "
              "%d batches in flight per appender, %.0f s each)\n",
              entry_bytes, inflight, seconds);
  auto l = OpenLedger(dir + "/append", interval_ms);
  const std::string entry = MakeEntry(entry_bytes);
  double best = 0;
  std::string best_cfg;
  for (int threads : g_appenders) {
    for (size_t batch : g_batches) {
      AppendResult r = RunAppenders(l.get(), threads, batch, inflight, seconds, entry);
      char cfg[64];
      std::snprintf(cfg, sizeof(cfg), "%2d appenders x batch %3zu", threads, batch);
      std::printf("%s  %10s entries/s  %4s of disk  ack p50 %s p99 %s  cpu %.2f us/entry  (integrator caught up %.0f ms after%s)\n",
                  cfg, Num(r.entries_per_sec).c_str(),
                  RatioText(r.entries_per_sec, entry_bytes, disk_bps).c_str(),
                  Ms(r.lat.Pct(0.5)).c_str(), Ms(r.lat.Pct(0.99)).c_str(), r.cpu_us_per_entry,
                  r.integrate_lag * 1000,
                  r.rejected ? (", " + Num(static_cast<double>(r.rejected)) + " refused: queue full").c_str() : "");
      if (r.entries_per_sec > best) {
        best = r.entries_per_sec;
        best_cfg = cfg;
      }
    }
  }
  Summarize("durable appends in process (best: " + best_cfg + ")",
            Num(best) + "/s (" + RatioText(best, entry_bytes, disk_bps) + " of disk)",
            ">= 200,000/s (~70% of disk bound)", best >= kTargetAppendsPerSec);
}

// ---------------------------------------------------------------------------
// Section 3: over HTTP.

struct HttpClientResult {
  uint64_t entries = 0, requests = 0, refused = 0;
  Samples lat;
  std::string error;
};

// A spawned `annals serve` on 127.0.0.1:0 (the real server: ingest, dedup
// index, projector and all), stopped with SIGTERM.
class Server {
 public:
  Server(const std::string& annals, const std::string& data, int interval_ms) {
    ::mkdir(data.c_str(), 0700);
    const std::string out = data + ".stdout", err = data + ".stderr";
    std::vector<std::string> args = {annals, "serve", "--data", data, "--listen", "127.0.0.1:0",
                                     "--checkpoint-interval", std::to_string(interval_ms),
                                     "--max-body", std::to_string(64u << 20)};
    pid_ = SpawnWithOutput(annals, args, out, err);
    if (pid_ < 0) Die("fork", ErrnoError("fork", errno));
    auto t0 = Clock::now();
    while (url_.empty()) {
      std::ifstream in(out);
      std::string line;
      while (std::getline(in, line)) {
        if (line.starts_with("url: ")) url_ = line.substr(5);
      }
      int status;
      if (url_.empty() && (::waitpid(pid_, &status, WNOHANG) == pid_ || Since(t0) > 120)) {
        pid_ = -1;
        std::ifstream e(err);
        std::string msg((std::istreambuf_iterator<char>(e)), std::istreambuf_iterator<char>());
        Die("annals serve (" + annals + ") did not start", InternalError(msg));
      }
      if (url_.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  ~Server() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    for (int i = 0; i < 3000; ++i) {
      int status;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  const std::string& url() const { return url_; }
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  std::string url_;
};

// Size of stored entry 0, from its entry bundle.
size_t FirstEntrySize(const std::string& url) {
  auto c = client::HttpClient::Create(url);
  if (!c.ok()) return 0;
  auto r = (*c)->Get("/log/" + merkle::FormatTilePath({true, 0, 0, 1}));
  if (!r.ok() || r->status != 200 || r->body.size() < 2) return 0;
  return GetBigEndian16(r->body.data());
}

void RunHttp(const std::string& dir, const std::string& annals, double seconds, size_t line_bytes,
             const std::string& kind, double disk_bps, int interval_ms) {
  std::printf("\n== 3. over HTTP (spawned `annals serve`, one keep-alive client::HttpClient per "
              "client thread, %zu B JSON lines (%s) to /v1/ingest/events, %.0f s each)\n",
              line_bytes, kind == "audit" ? "audit Events, deduplicated" : "plain objects", seconds);
  Server server(annals, dir + "/http-" + kind, interval_ms);
  const std::string url = server.url();
  size_t counter_at = 0;
  const std::string line = MakeJsonLine(kind, line_bytes, &counter_at);
  size_t entry_bytes = line.size() + 100;  // until the first entry tells
  double best = 0;
  std::string best_cfg;
  uint64_t seq_base = 0;
  for (int clients : g_clients) {
    for (size_t lines : g_lines) {
      std::vector<HttpClientResult> res(clients);
      const double server_cpu0 = OtherProcessCpu(server.pid()), client_cpu0 = ProcessCpu();
      auto t0 = Clock::now();
      auto deadline = t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
      std::vector<std::thread> ts;
      for (int c = 0; c < clients; ++c) {
        ts.emplace_back([&, c] {
          HttpClientResult& r = res[c];
          auto client = client::HttpClient::Create(url);
          if (!client.ok()) {
            r.error = client.status().ToString();
            return;
          }
          std::string body;
          std::vector<size_t> at;
          for (size_t i = 0; i < lines; ++i) {
            at.push_back(body.size() + counter_at);
            body += line;
            body += '\n';
          }
          uint64_t seq = seq_base + static_cast<uint64_t>(c) * 1000000000000ull;
          while (Clock::now() < deadline) {
            for (size_t p : at) PutCounter(body.data() + p, seq++);
            auto a = Clock::now();
            auto resp = (*client)->Post("/v1/ingest/events", body, "application/x-ndjson");
            if (!resp.ok()) {
              r.error = resp.status().ToString();
              return;
            }
            if (resp->status == 429 || resp->status == 503) {
              ++r.refused;
              std::this_thread::sleep_for(std::chrono::milliseconds(1));
              continue;
            }
            if (resp->status != 200) {
              r.error = "HTTP " + std::to_string(resp->status) + ": " + resp->body;
              return;
            }
            r.lat.Add(Since(a) * 1e6);
            r.entries += lines;
            ++r.requests;
          }
        });
      }
      for (auto& t : ts) t.join();
      double elapsed = Since(t0);
      seq_base += 1000000000ull;
      HttpClientResult all;
      for (auto& r : res) {
        if (!r.error.empty()) Die("http client", InternalError(r.error));
        all.entries += r.entries;
        all.requests += r.requests;
        all.refused += r.refused;
        all.lat.Merge(r.lat);
      }
      const double server_cpu = OtherProcessCpu(server.pid()) - server_cpu0;
      const double client_cpu = ProcessCpu() - client_cpu0;
      if (size_t n = FirstEntrySize(url)) entry_bytes = n;
      double eps = static_cast<double>(all.entries) / elapsed;
      const double n_entries = std::max(1.0, static_cast<double>(all.entries));
      char cfg[64];
      std::snprintf(cfg, sizeof(cfg), "%2d clients x %4zu lines/request", clients, lines);
      std::printf("%s  %10s entries/s  %4s of disk  %6.0f req/s  request p50 %s p99 %s  cpu: server %.2f, "
                  "clients %.2f us/entry%s\n",
                  cfg, Num(eps).c_str(), RatioText(eps, entry_bytes, disk_bps).c_str(),
                  static_cast<double>(all.requests) / elapsed, Ms(all.lat.Pct(0.5)).c_str(),
                  Ms(all.lat.Pct(0.99)).c_str(), server_cpu * 1e6 / n_entries, client_cpu * 1e6 / n_entries,
                  all.refused ? ("  (" + Num(static_cast<double>(all.refused)) + " refused: 429/503)").c_str() : "");
      std::fflush(stdout);
      if (eps > best) {
        best = eps;
        best_cfg = cfg;
      }
    }
  }
  std::printf("(stored entries are %zu B: envelope + meta + line; ratios use that size; the clients "
              "share the CPUs with the server)\n",
              entry_bytes);
  Summarize("durable appends over HTTP, " + kind + " lines (best: " + best_cfg + ")",
            Num(best) + "/s (" + RatioText(best, entry_bytes, disk_bps) + " of disk)",
            ">= 150,000/s (batched requests)", best >= kTargetHttpPerSec);
}

// ---------------------------------------------------------------------------
// Section 4: ack -> checkpoint.

void RunCheckpoint(const std::string& dir, double seconds, double rate, size_t batch,
                   size_t entry_bytes, int interval_ms) {
  std::printf("\n== 4. ack -> published checkpoint (steady %s entries/s in batches of %zu, "
              "checkpoint interval %d ms, %.0f s)\n",
              Num(rate).c_str(), batch, interval_ms, seconds);
  auto l = OpenLedger(dir + "/checkpoint", interval_ms);
  const std::string entry = MakeEntry(entry_bytes);
  struct Acked {
    Clock::time_point at;
    uint64_t end;
  };
  std::mutex mu;
  std::condition_variable cv;
  std::deque<Acked> acked;
  bool producer_done = false;
  uint64_t outstanding = 0;
  Samples ack_lat, cp_lat;
  uint64_t checkpoints_seen = 0;

  std::thread watcher([&] {
    uint64_t last_size = l->CheckpointSize();
    for (;;) {
      Acked a;
      {
        std::unique_lock lock(mu);
        cv.wait(lock, [&] { return !acked.empty() || (producer_done && outstanding == 0); });
        if (acked.empty()) return;
        a = acked.front();
        acked.pop_front();
      }
      if (!l->WaitForCheckpoint(a.end, std::chrono::seconds(30))) Die("checkpoint", InternalError("no checkpoint within 30 s"));
      cp_lat.Add(Since(a.at) * 1e6);
      uint64_t s = l->CheckpointSize();
      if (s != last_size) {
        ++checkpoints_seen;
        last_size = s;
      }
    }
  });

  const auto period = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(static_cast<double>(batch) / rate));
  auto t0 = Clock::now();
  uint64_t k = 0;
  while (Since(t0) < seconds) {
    std::this_thread::sleep_until(t0 + period * k++);
    auto start = Clock::now();
    {
      std::lock_guard lock(mu);
      ++outstanding;
    }
    Status s = l->AppendAsync(std::vector<std::string>(batch, entry), [&, start, batch](StatusOr<uint64_t> r) {
      if (!r.ok()) Die("append", r.status());
      auto now = Clock::now();
      std::lock_guard lock(mu);
      ack_lat.Add(Since(start, now) * 1e6);
      acked.push_back({now, *r + batch});
      --outstanding;
      cv.notify_all();
    });
    if (!s.ok()) Die("AppendAsync", s);
  }
  {
    std::lock_guard lock(mu);
    producer_done = true;
  }
  cv.notify_all();
  watcher.join();
  double p99 = cp_lat.Pct(0.99) / 1000;
  std::printf("append -> ack     p50 %s p99 %s max %s\n", Ms(ack_lat.Pct(0.5)).c_str(),
              Ms(ack_lat.Pct(0.99)).c_str(), Ms(ack_lat.Max()).c_str());
  std::printf("ack -> checkpoint p50 %s p99 %s max %s  (%s batches, %llu checkpoints seen)\n",
              Ms(cp_lat.Pct(0.5)).c_str(), Ms(cp_lat.Pct(0.99)).c_str(), Ms(cp_lat.Max()).c_str(),
              Num(static_cast<double>(cp_lat.size())).c_str(),
              static_cast<unsigned long long>(checkpoints_seen));
  Summarize("ack -> checkpoint p99 (" + std::to_string(interval_ms) + " ms interval)",
            Ms(cp_lat.Pct(0.99)) + " (max " + Ms(cp_lat.Max()) + ")", "<= 1 s",
            p99 <= kTargetCheckpointP99Ms);
}

// ---------------------------------------------------------------------------
// Section 5: verify.

// Drops the page cache of every file under dir (clean pages only, hence the
// fdatasync first), so the next read comes from the disk.
void DropCache(const std::string& dir) {
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    int fd = ::open(e.path().c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    ::fdatasync(fd);
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    ::close(fd);
  }
}

void RunVerify(const std::string& dir, uint64_t want_entries, double max_seconds,
               size_t entry_bytes, int interval_ms) {
  std::printf("\n== 5. annals verify (ledger::VerifyDataDir) over a fresh log of up to %s "
              "entries of %zu B (at most %.0f s of appending)\n",
              Num(static_cast<double>(want_entries)).c_str(), entry_bytes, max_seconds);
  const std::string data = dir + "/verify";
  std::string vkey;
  {
    auto l = OpenLedger(data, interval_ms);
    vkey = l->signer().VerifierKey();
    auto t0 = Clock::now();
    AppendResult r = RunAppenders(l.get(), 2, 1024, 4, max_seconds, MakeEntry(entry_bytes), want_entries);
    std::printf("built            %s entries in %.1f s (%s/s)\n", Num(static_cast<double>(l->DurableSize())).c_str(),
                Since(t0), Num(static_cast<double>(r.entries) / Since(t0)).c_str());
  }  // closes: drains and publishes a final checkpoint
  double best = 0;
  for (bool cold : {false, true}) {
    if (cold) DropCache(data);
    ledger::VerifyReport rep;
    const double cpu0 = ProcessCpu();
    auto t0 = Clock::now();
    Status s = ledger::VerifyDataDir(data, vkey, nullptr, &rep);
    double secs = Since(t0);
    const double cpu_us = (ProcessCpu() - cpu0) * 1e6 / std::max<double>(1, static_cast<double>(rep.entries));
    if (!s.ok()) Die("verify", s);
    double eps = static_cast<double>(rep.entries) / secs;
    if (!cold) best = eps;
    std::printf("verify %-24s %s entries in %.2f s = %s entries/s, %.0f MB/s, cpu %.2f us/entry  (%llu tiles, %llu checkpoints)\n",
                cold ? "(cold: fadvise DONTNEED)" : "(warm page cache)",
                Num(static_cast<double>(rep.entries)).c_str(), secs, Num(eps).c_str(),
                static_cast<double>(rep.bytes) / secs / 1e6, cpu_us, static_cast<unsigned long long>(rep.tiles),
                static_cast<unsigned long long>(rep.checkpoints));
    if (cold) {
      Summarize("verify, warm page cache", Num(best) + " entries/s", ">= 1,000,000 entries/s",
                best >= kTargetVerifyPerSec);
      Summarize("verify, cold cache", Num(eps) + " entries/s", ">= 1,000,000 entries/s",
                eps >= kTargetVerifyPerSec);
    }
  }
}

std::string DefaultAnnalsPath() {
  std::error_code ec;
  auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return "annals";
  return (self.parent_path().parent_path() / "annals").string();
}

// Writes back dirty metadata of the filesystem holding dir. On ext4 without a
// journal, inodes freed recently in dirty inode-table blocks are skipped (and
// re-scanned) by every file creation for minutes; earlier runs' deletions
// would otherwise slow this run's tile file creation.
void SyncFs(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::syncfs(fd);
  ::close(fd);
}

int Main(int argc, char** argv) {
  CLI::App app{"ledger_bench: durable append, HTTP ingest, checkpoint and verify figures"};
  std::string base = "/tmp";
  std::string only = "disk,append,http,checkpoint,verify";
  bool quick = false, keep = false;
  double seconds = 0;
  size_t entry_bytes = 1024, line_bytes = 1024;
  int inflight = 4, interval_ms = 500;
  std::string annals = DefaultAnnalsPath();
  uint64_t verify_entries = 0;
  double verify_max_seconds = 0, cp_seconds = 0, cp_rate = 20000;
  app.add_option("--dir", base, "where to make the temporary directory (same filesystem as the data dir)");
  app.add_option("--only", only, "comma-separated sections: disk,append,http,checkpoint,verify");
  app.add_flag("--quick", quick, "short run (~30 s)");
  app.add_option("--seconds", seconds, "duration of each throughput configuration (default 3, quick 1)");
  app.add_option("--entry-bytes", entry_bytes, "ledger entry size for the disk/append/verify sections");
  app.add_option("--line-bytes", line_bytes, "JSON line size for the HTTP section");
  app.add_option("--inflight", inflight, "batches each appender keeps in flight");
  app.add_option("--annals", annals, "the annals binary for the HTTP section (default: ../annals beside this binary)");
  app.add_option("--checkpoint-interval-ms", interval_ms, "ledger checkpoint interval");
  app.add_option("--checkpoint-rate", cp_rate, "entries/s for the ack->checkpoint section");
  app.add_option("--checkpoint-seconds", cp_seconds, "duration of the ack->checkpoint section (default 10, quick 4)");
  app.add_option("--verify-entries", verify_entries, "log size for the verify section (default 1,000,000, quick 200,000)");
  app.add_option("--verify-max-seconds", verify_max_seconds, "cap on building the verify log (default 60, quick 10)");
  app.add_flag("--keep", keep, "keep the temporary directory");
  app.add_option("--appenders", g_appenders, "appender thread counts for the append section")->delimiter(',');
  app.add_option("--batches", g_batches, "batch sizes for the append section")->delimiter(',');
  app.add_option("--clients", g_clients, "client counts for the HTTP section")->delimiter(',');
  app.add_option("--lines", g_lines, "lines per request for the HTTP section")->delimiter(',');
  app.add_option("--line-kinds", g_line_kinds, "HTTP line kinds: audit (default), plain, or audit,plain")->delimiter(',');
  CLI11_PARSE(app, argc, argv);
  if (seconds <= 0) seconds = quick ? 1 : 3;
  if (cp_seconds <= 0) cp_seconds = quick ? 4 : 10;
  if (verify_entries == 0) verify_entries = quick ? 200000 : 1000000;
  if (verify_max_seconds <= 0) verify_max_seconds = quick ? 10 : 60;
  auto want = [&](std::string_view s) { return ("," + only + ",").find("," + std::string(s) + ",") != std::string::npos; };

  std::string tmpl = base + "/annals-bench-XXXXXX";
  if (!::mkdtemp(tmpl.data())) Die("mkdtemp " + tmpl, ErrnoError("mkdtemp", errno));
  const std::string dir = tmpl;
  SyncFs(dir);
  PrintMachine(dir);
  std::fflush(stdout);
  auto t0 = Clock::now();
  double disk_bps = 0;
  if (want("disk")) disk_bps = RunDisk(dir, seconds, entry_bytes);
  std::fflush(stdout);
  if (want("append")) RunAppend(dir, seconds, entry_bytes, inflight, disk_bps, interval_ms);
  std::fflush(stdout);
  if (want("http")) {
    for (const auto& kind : g_line_kinds) {
      if (kind != "audit" && kind != "plain") Die("--line-kinds", InvalidArgumentError("audit or plain, not " + kind));
      RunHttp(dir, annals, seconds, line_bytes, kind, disk_bps, interval_ms);
    }
  }
  std::fflush(stdout);
  if (want("checkpoint")) RunCheckpoint(dir, cp_seconds, cp_rate, 100, entry_bytes, interval_ms);
  std::fflush(stdout);
  if (want("verify")) RunVerify(dir, verify_entries, verify_max_seconds, entry_bytes, interval_ms);

  std::printf("\n== summary (targets from the performance issue; %.0f s total; load average now %s)\n",
              Since(t0), LoadAvg().c_str());
  for (const auto& r : g_summary)
    std::printf("%-58s %-34s target %-36s %s\n", r.what.c_str(), r.measured.c_str(), r.target.c_str(),
                r.meets ? "meets" : "BELOW TARGET");
  if (keep) {
    std::printf("kept %s\n", dir.c_str());
  } else {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
    SyncFs(base);
  }
  return 0;
}

}  // namespace
}  // namespace annals::bench

int main(int argc, char** argv) { return annals::bench::Main(argc, argv); }
