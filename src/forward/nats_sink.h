// NatsSink: `--nats URL`: each change is published to NATS JetStream on
// subject annals.<log>.<resource>.<namespace>.<name> with header
// Nats-Msg-Id = the ledger index, so JetStream's duplicate window drops what
// a retry sends twice (docs/format/forward.md). The stream ANNALS_<log>
// (subjects annals.<log>.>, file storage) is created if missing. A batch
// counts as delivered only when JetStream has acknowledged every message.
//
// Thread-compatible (used by one Forwarder thread).
#ifndef ANNALS_FORWARD_NATS_SINK_H_
#define ANNALS_FORWARD_NATS_SINK_H_

#include <string>
#include <string_view>

#include "forward/forwarder.h"

namespace annals::forward {

// A subject token: "" becomes "_"; '.', '*', '>', white space and control
// characters become '_'.
std::string SubjectToken(std::string_view s);
// "annals.<log>.<resource or type>.<namespace>.<name>".
std::string NatsSubject(std::string_view log, const stream::Change& c);
// The log's name in subjects and the stream name: the origin with every
// character other than [A-Za-z0-9_-] replaced by '_'.
std::string NatsLogName(std::string_view origin);

class NatsSink : public Sink {
 public:
  NatsSink(std::string url, std::string origin);
  ~NatsSink() override;
  std::string kind() const override { return "nats"; }
  std::string target() const override { return url_; }
  Status Send(const std::vector<std::shared_ptr<const stream::Change>>& changes,
              uint64_t checkpoint_size) override;

 private:
  Status Connect();
  void Disconnect();

  const std::string url_, log_;
  struct State;
  State* st_;
};

}  // namespace annals::forward

#endif  // ANNALS_FORWARD_NATS_SINK_H_
