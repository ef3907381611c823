#include "auth/limiter.h"

#include <algorithm>

namespace annals::auth {

Limiter::Verdict Limiter::Acquire(const std::string& key, Clock::time_point now) {
  const double burst = o_.burst > 0 ? o_.burst : std::max(1.0, o_.rate);
  MutexLock lock(&mu_);
  if (now - last_sweep_ > std::chrono::seconds(60)) {
    for (auto it = buckets_.begin(); it != buckets_.end();)
      it = it->second.inflight == 0 && now - it->second.last > std::chrono::seconds(60) ? buckets_.erase(it)
                                                                                          : std::next(it);
    last_sweep_ = now;
  }
  auto [it, fresh] = buckets_.try_emplace(key);
  Bucket& b = it->second;
  if (fresh) {
    b.tokens = burst;
    b.last = now;
  }
  if (o_.max_inflight > 0 && b.inflight >= o_.max_inflight) return Verdict::kInflight;
  if (o_.rate > 0) {
    const double dt = std::chrono::duration<double>(now - b.last).count();
    b.tokens = std::min(burst, b.tokens + std::max(0.0, dt) * o_.rate);
    if (b.tokens < 1) return Verdict::kRate;
    b.tokens -= 1;
  }
  b.last = std::max(b.last, now);
  ++b.inflight;
  return Verdict::kOk;
}

void Limiter::Release(const std::string& key) {
  MutexLock lock(&mu_);
  auto it = buckets_.find(key);
  if (it != buckets_.end() && it->second.inflight > 0) --it->second.inflight;
}

}  // namespace annals::auth
