// SyslogSink: `--forward syslog+tcp://HOST:PORT` (or syslog+tls://): each
// change as an RFC 5424 message in RFC 6587 octet-counting framing
// ("LEN SP MSG"), with the ledger index and the size of the checkpoint
// that covers it as structured data (docs/format/forward.md).
//
// Thread-compatible (used by one Forwarder thread).
#ifndef ANNALS_FORWARD_SYSLOG_SINK_H_
#define ANNALS_FORWARD_SYSLOG_SINK_H_

#include <memory>
#include <string>
#include <string_view>

#include "forward/forwarder.h"

namespace annals::forward {

struct SyslogTarget {
  bool tls = false;
  std::string host, port;
};
// Parses "syslog+tcp://HOST:PORT" / "syslog+tls://HOST:PORT".
StatusOr<SyslogTarget> ParseSyslogUrl(std::string_view url);

// One framed message: "LEN <PRI>1 TIME HOST annals PID MSGID [annals@32473
// index=".." tree_size=".." origin=".."] JSON".
std::string FormatSyslog(const stream::Change& c, uint64_t checkpoint_size, std::string_view hostname,
                         std::string_view origin, int pid);

class SyslogSink : public Sink {
 public:
  // ca_file: PEM trust anchors for syslog+tls ("" = the system's).
  SyslogSink(SyslogTarget target, std::string origin, std::string ca_file);
  ~SyslogSink() override;
  std::string kind() const override { return "syslog"; }
  std::string target() const override;
  Status Send(const std::vector<std::shared_ptr<const stream::Change>>& changes,
              uint64_t checkpoint_size) override;

 private:
  struct Conn;
  const SyslogTarget target_;
  const std::string origin_, ca_file_;
  std::string hostname_;
  std::unique_ptr<Conn> conn_;
};

}  // namespace annals::forward

#endif  // ANNALS_FORWARD_SYSLOG_SINK_H_
