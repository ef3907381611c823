// Limiter: per-caller request limits — a token bucket (requests per second
// with a burst) and a cap on requests in flight at once. A caller is a key
// (the authenticated user, or the peer address of an anonymous one).
// Buckets idle for a minute are forgotten.
//
// Thread-safe.
#ifndef ANNALS_AUTH_LIMITER_H_
#define ANNALS_AUTH_LIMITER_H_

#include <chrono>
#include <cstdint>
#include <string>
#include <unordered_map>

#include "common/mutex.h"

namespace annals::auth {

struct LimiterOptions {
  double rate = 0;          // requests/s per caller; 0 = no rate limit
  double burst = 0;         // bucket size; 0 = max(1, rate)
  uint32_t max_inflight = 0;  // per caller; 0 = no limit
};

class Limiter {
 public:
  using Clock = std::chrono::steady_clock;
  explicit Limiter(LimiterOptions o) : o_(o) {}
  bool enabled() const { return o_.rate > 0 || o_.max_inflight > 0; }

  enum class Verdict { kOk, kRate, kInflight };
  // On kOk the caller owns one in-flight slot: Release it when answered.
  Verdict Acquire(const std::string& key, Clock::time_point now = Clock::now());
  void Release(const std::string& key);

 private:
  struct Bucket {
    double tokens = 0;
    Clock::time_point last{};
    uint32_t inflight = 0;
  };
  const LimiterOptions o_;
  Mutex mu_;
  std::unordered_map<std::string, Bucket> buckets_ GUARDED_BY(mu_);
  Clock::time_point last_sweep_ GUARDED_BY(mu_){};
};

}  // namespace annals::auth

#endif  // ANNALS_AUTH_LIMITER_H_

