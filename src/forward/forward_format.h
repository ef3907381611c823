// What forwarders put on the wire and on disk (docs/format/forward.md):
// constants only.
#ifndef ANNALS_FORWARD_FORWARD_FORMAT_H_
#define ANNALS_FORWARD_FORWARD_FORMAT_H_

namespace annals::forward {

// Position files: "v1 next=<N> target=<url>\n" in DATA/forward/.
inline constexpr char kCursorPrefix[] = "v1 next=";
inline constexpr char kCursorTarget[] = " target=";

// Syslog (RFC 5424): facility 13 (log audit), severity 6 (informational).
inline constexpr int kSyslogPri = 13 * 8 + 6;
inline constexpr char kSyslogAppName[] = "annals";
// SD-ID: 32473 is the enterprise number RFC 5612 reserves for documentation.
inline constexpr char kSyslogSdId[] = "annals@32473";

// NATS JetStream.
inline constexpr char kNatsSubjectPrefix[] = "annals.";
inline constexpr char kNatsStreamPrefix[] = "ANNALS_";
inline constexpr char kNatsMsgIdHeader[] = "Nats-Msg-Id";

}  // namespace annals::forward

#endif  // ANNALS_FORWARD_FORWARD_FORMAT_H_
