#include "common/metrics.h"

#include <cstdio>

namespace annals {

void Metrics::Add(const std::string& name, const std::string& key, const std::string& value,
                  uint64_t n) {
  std::string labels = key.empty() ? "" : key + "=\"" + value + "\"";
  std::lock_guard lock(mu_);
  auto& slot = counters_[name][labels];
  if (!slot) slot = std::make_unique<std::atomic<uint64_t>>(0);
  slot->fetch_add(n, std::memory_order_relaxed);
}

void Metrics::AddNanos(const std::string& name, const std::string& key, const std::string& value,
                       int64_t ns) {
  {
    std::lock_guard lock(mu_);
    nano_families_.insert(name);
  }
  Add(name, key, value, ns > 0 ? static_cast<uint64_t>(ns) : 0);
}

void Metrics::Set(const std::string& name, uint64_t v) {
  std::lock_guard lock(mu_);
  gauges_[name] = static_cast<double>(v);
}

void Metrics::SetCounter(const std::string& name, uint64_t v) {
  std::lock_guard lock(mu_);
  auto& slot = counters_[name][""];
  if (!slot) slot = std::make_unique<std::atomic<uint64_t>>(0);
  slot->store(v, std::memory_order_relaxed);
}

void Metrics::SetCounter(const std::string& name, const std::string& key, const std::string& value, uint64_t v,
                         bool nanos) {
  std::string labels = key.empty() ? "" : key + "=\"" + value + "\"";
  std::lock_guard lock(mu_);
  if (nanos) nano_families_.insert(name);
  auto& slot = counters_[name][labels];
  if (!slot) slot = std::make_unique<std::atomic<uint64_t>>(0);
  slot->store(v, std::memory_order_relaxed);
}

void Metrics::SetDouble(const std::string& name, double v) {
  std::lock_guard lock(mu_);
  gauges_[name] = v;
}

std::string Metrics::Render() const {
  std::lock_guard lock(mu_);
  std::string out;
  for (const auto& [name, family] : counters_) {
    out += "# TYPE " + name + " counter\n";
    const bool nanos = nano_families_.count(name) > 0;
    for (const auto& [labels, v] : family) {
      out += name;
      if (!labels.empty()) out += "{" + labels + "}";
      const uint64_t n = v->load(std::memory_order_relaxed);
      if (nanos) {
        char s[48];
        std::snprintf(s, sizeof(s), " %llu.%09llu\n", static_cast<unsigned long long>(n / 1000000000),
                      static_cast<unsigned long long>(n % 1000000000));
        out += s;
      } else {
        out += " " + std::to_string(n) + "\n";
      }
    }
  }
  for (const auto& [name, v] : gauges_) {
    out += "# TYPE " + name + " gauge\n" + name;
    char s[48];
    // Whole numbers (counts, sizes) print as integers, exactly up to 2^53.
    if (v > -9.007e15 && v < 9.007e15 && v == static_cast<double>(static_cast<int64_t>(v)))
      std::snprintf(s, sizeof(s), " %lld\n", static_cast<long long>(v));
    else
      std::snprintf(s, sizeof(s), " %.9g\n", v);
    out += s;
  }
  return out;
}

}  // namespace annals
