// Cosigning: the log side of C2SP tlog-witness (docs/witness.md). Given a
// witness policy, it asks every witness with a URL to cosign each
// checkpoint the ledger signs (POST <url>/add-checkpoint, with the
// consistency proof from the size that witness last cosigned), and tells
// the ledger which checkpoint may be served: the newest signed one once its
// cosignatures meet the policy's quorum; if they do not, the one served
// before stays, until `wait` has passed (then the newest is served with
// the cosignatures it has and the shortfall counted on /metrics), or for
// ever with a negative wait.
//
// A witness that answers 409 with the size it holds is asked again with a
// proof from that size (a witness restarted, or one this process never
// asked); one that holds more than this log signed (the log was rolled
// back, or another process signs with the same key) or refuses (a fork,
// 422 for a proof it rejects) is counted and reported, never retried with
// another tree. Requests run in parallel, one thread per witness, each
// bounded by request_timeout: a witness that does not answer delays a
// checkpoint by that much at most and is skipped until its request ends.
//
// Cosign runs on the ledger's publisher thread; Stop() (from any thread)
// makes every later Cosign return "" at once, so shutdown is not held up by
// witnesses and never serves a checkpoint they did not see.
#ifndef ANNALS_CLIENT_COSIGNING_H_
#define ANNALS_CLIENT_COSIGNING_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "client/http_client.h"
#include "common/metrics.h"
#include "common/mutex.h"
#include "common/status.h"
#include "ledger/ledger.h"
#include "witness/policy.h"
#include "witness/witness.h"

namespace annals::client {

struct CosigningOptions {
  std::chrono::milliseconds request_timeout{5000};
  // How long the served checkpoint may stay behind the newest signed one
  // for want of a quorum; negative: for ever (fail closed).
  std::chrono::milliseconds wait{10000};
  ClientAuth auth;  // for https:// witnesses (trust anchors)
};

// What one witness did with the newest checkpoint, for /metrics, logs and
// tests.
struct WitnessStatus {
  std::string name;
  std::string url;
  bool cosigned = false;      // the newest signed checkpoint
  uint64_t cosigned_size = 0; // the largest size it cosigned for us
  std::string last_error;     // "" after a cosignature
};

class Cosigning : public ledger::CheckpointWitnessing {
 public:
  // InvalidArgument if the policy does not list the ledger's log (its
  // origin with its key), or lists no witness this process can ask (one
  // with a URL) while its quorum needs one.
  static StatusOr<std::unique_ptr<Cosigning>> Create(witness::Policy policy, ledger::Ledger* ledger,
                                                     Metrics* metrics, CosigningOptions options);
  ~Cosigning() override;

  std::string Cosign(const std::string& note, uint64_t size) override;
  void Stop();

  std::vector<WitnessStatus> Status() const;
  // GET /v1/witnesses: the policy (witness names, keys, URLs, the quorum
  // rule) and what each witness did last (docs/http-api.md).
  std::string StatusJson() const;
  const witness::Policy& policy() const { return policy_; }

 private:
  struct Slot;
  Cosigning(witness::Policy policy, ledger::Ledger* ledger, Metrics* metrics, CosigningOptions options);
  // Asks the witnesses at `which` (indexes) with their bodies, in parallel.
  std::vector<witness::Reply> Ask(const std::vector<size_t>& which, const std::vector<std::string>& bodies);
  StatusOr<std::string> Body(uint64_t old_size, uint64_t size, const std::string& note) const;

  const witness::Policy policy_;
  ledger::Ledger* const ledger_;
  Metrics* const metrics_;
  const CosigningOptions options_;
  std::vector<std::shared_ptr<Slot>> slots_;  // one per policy witness
  std::atomic<bool> stopped_{false};
  // Since when the served checkpoint has been behind the signed one (only
  // the publisher thread touches it).
  std::optional<std::chrono::steady_clock::time_point> behind_since_;
  mutable Mutex mu_;
  std::vector<WitnessStatus> status_ GUARDED_BY(mu_);
};

}  // namespace annals::client

#endif  // ANNALS_CLIENT_COSIGNING_H_
