#include "common/log.h"

#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <mutex>
#include <string>

namespace annals::log {
namespace {

std::mutex g_mu;
Sink g_sink;  // guarded by g_mu; empty = stderr
std::atomic<int> g_min{static_cast<int>(Level::kInfo)};

void Emit(Level level, const char* fmt, va_list ap) {
  if (static_cast<int>(level) < g_min.load(std::memory_order_relaxed)) return;
  char small[512];
  va_list copy;
  va_copy(copy, ap);
  int n = std::vsnprintf(small, sizeof small, fmt, copy);
  va_end(copy);
  if (n < 0) return;
  std::string line;
  if (static_cast<size_t>(n) < sizeof small) {
    line.assign(small, static_cast<size_t>(n));
  } else {
    line.resize(static_cast<size_t>(n) + 1);
    std::vsnprintf(line.data(), line.size(), fmt, ap);
    line.resize(static_cast<size_t>(n));
  }
  std::lock_guard lock(g_mu);
  if (g_sink) return g_sink(level, line);
  std::fprintf(stderr, "annals: %s\n", line.c_str());
}

}  // namespace

void SetSink(Sink sink) {
  std::lock_guard lock(g_mu);
  g_sink = std::move(sink);
}

void SetMinLevel(Level level) { g_min.store(static_cast<int>(level)); }

#define ANNALS_LOG_DEFINE(name, level)   \
  void name(const char* fmt, ...) {      \
    va_list ap;                          \
    va_start(ap, fmt);                   \
    Emit(level, fmt, ap);                \
    va_end(ap);                          \
  }
ANNALS_LOG_DEFINE(Info, Level::kInfo)
ANNALS_LOG_DEFINE(Warning, Level::kWarning)
ANNALS_LOG_DEFINE(Error, Level::kError)
#undef ANNALS_LOG_DEFINE

void Printf(Level level, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  Emit(level, fmt, ap);
  va_end(ap);
}

}  // namespace annals::log
