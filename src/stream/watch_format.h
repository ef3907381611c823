// The Server-Sent Events wire format of /v1/watch (docs/format/watch.md):
// constants only.
#ifndef ANNALS_STREAM_WATCH_FORMAT_H_
#define ANNALS_STREAM_WATCH_FORMAT_H_

namespace annals::stream {

inline constexpr char kWatchContentType[] = "text/event-stream";
// "id: <index>\ndata: <json>\n\n" per change.
inline constexpr char kFieldId[] = "id: ";
inline constexpr char kFieldData[] = "data: ";
inline constexpr char kFrameEnd[] = "\n\n";
// Sent when a connection opens: how long a browser waits before reconnecting.
inline constexpr int kRetryMillis = 1000;
inline constexpr char kHeartbeat[] = ": heartbeat\n\n";
// The event that ends a stream, with {"error","reason",...}.
inline constexpr char kErrorEvent[] = "error";
inline constexpr char kReasonSlow[] = "slow";

}  // namespace annals::stream

#endif  // ANNALS_STREAM_WATCH_FORMAT_H_
