// The one way library code says something to the operator. Each message is
// one line; by default it goes to stderr as "annals: MESSAGE" (what the
// server has always printed), and a program or a test may send the lines
// elsewhere (SetSink) or drop the less important ones (SetMinLevel).
// Thread-safe: lines from several threads never interleave.
#ifndef ANNALS_COMMON_LOG_H_
#define ANNALS_COMMON_LOG_H_

#include <functional>
#include <string_view>

namespace annals::log {

enum class Level { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

using Sink = std::function<void(Level, std::string_view line)>;
// nullptr restores the stderr sink. The sink is called under a lock, one
// line at a time, and must not log itself.
void SetSink(Sink sink);
void SetMinLevel(Level level);

// printf-style; the line has no trailing newline.
void Printf(Level level, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
void Info(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void Warning(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void Error(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

}  // namespace annals::log

#endif  // ANNALS_COMMON_LOG_H_
