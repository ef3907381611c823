// DenialLog: refused requests on the record (docs/security.md "Refused
// requests"). Every request refused for a missing credential or role or
// for a per-caller limit (HTTP 401/403/429, and TCP connections closed
// before their first line) is noted here; each
// window (60 s by default) becomes one "annals.denied" ledger entry per
// caller, reason and endpoint class, with how often, when, from where and
// what was tried (docs/format/entry.md). A flood cannot fill the log: past
// `max_callers` distinct keys in a window, further callers are folded into
// one "others" record per reason and endpoint class, so a window adds at
// most max_callers + 24 entries (an "others" for each of 4 reasons and 6
// classes), however many requests were refused. (A question refused for
// its namespace is not here: it is answered, and recorded as the
// "annals.read" it is, status 403.)
//
// Note() is cheap (one map update under a mutex) and never waits for the
// disk; records are written by the log's own thread, through `sink` (the
// ingestor, durable when it returns). Records the sink refuses (a full
// disk) stay and are tried again with the next window.
//
// Thread-safe.
#ifndef ANNALS_AUTH_DENIALS_H_
#define ANNALS_AUTH_DENIALS_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/metrics.h"
#include "common/mutex.h"
#include "common/status.h"
#include "common/time_util.h"

namespace annals::auth {

struct Denial {
  std::string user;      // "" when no credential was accepted
  std::string method;    // how the caller authenticated: tls, token, none
  std::string remote;    // the peer's address
  std::string reason;    // unauthenticated, forbidden, rate, inflight
  std::string endpoint;  // ingest, read, verify, admin, tcp
  std::string target;    // what was asked: "GET /v1/state?..." (cut to 256 bytes)
};

struct DenialLogOptions {
  std::chrono::milliseconds window{60000};
  size_t max_callers = 64;  // distinct (caller, reason, endpoint) keys a window
  size_t samples = 4;       // remotes and targets kept per record
};

class DenialLog {
 public:
  // One ledger entry: its metadata and payload JSON.
  struct Record {
    std::string meta, payload;
  };
  using Sink = std::function<Status(std::vector<Record>)>;

  DenialLog(DenialLogOptions options, Metrics* metrics, Sink sink);
  ~DenialLog();  // Stop()
  void Start();
  // Writes what the window holds, then stops the thread. Idempotent.
  void Stop();

  void Note(const Denial& d) EXCLUDES(mu_);
  // Writes the window now (tests; Stop). OK when there was nothing.
  Status Flush() EXCLUDES(mu_);

  // The records of a window, in key order (exposed for tests).
  struct Tally {
    uint64_t count = 0;
    Micros first = 0, last = 0;
    std::string user, method;
    std::vector<std::string> remotes, targets;
    uint64_t callers = 0;  // for "others": callers folded in (upper bound)
  };
  static std::vector<Record> Encode(const std::map<std::string, Tally>& window, Micros from, Micros to);

 private:
  void Loop();

  const DenialLogOptions options_;
  Metrics* metrics_;
  Sink sink_;
  Mutex mu_;
  CondVar cv_;
  bool stop_ GUARDED_BY(mu_) = false;
  std::map<std::string, Tally> window_ GUARDED_BY(mu_);
  size_t callers_ GUARDED_BY(mu_) = 0;  // keys of named callers in window_
  Micros window_from_ GUARDED_BY(mu_) = 0;
  Mutex flush_mu_;  // one flush at a time
  std::thread thread_;
};

}  // namespace annals::auth

#endif  // ANNALS_AUTH_DENIALS_H_
