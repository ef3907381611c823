#include "common/metrics.h"

namespace annals {

void Metrics::Add(const std::string& name, const std::string& key, const std::string& value,
                  uint64_t n) {
  std::string labels = key.empty() ? "" : key + "=\"" + value + "\"";
  std::lock_guard lock(mu_);
  auto& slot = counters_[name][labels];
  if (!slot) slot = std::make_unique<std::atomic<uint64_t>>(0);
  slot->fetch_add(n, std::memory_order_relaxed);
}

void Metrics::Set(const std::string& name, uint64_t v) {
  std::lock_guard lock(mu_);
  gauges_[name] = v;
}

std::string Metrics::Render() const {
  std::lock_guard lock(mu_);
  std::string out;
  for (const auto& [name, family] : counters_) {
    out += "# TYPE " + name + " counter\n";
    for (const auto& [labels, v] : family) {
      out += name;
      if (!labels.empty()) out += "{" + labels + "}";
      out += " " + std::to_string(v->load(std::memory_order_relaxed)) + "\n";
    }
  }
  for (const auto& [name, v] : gauges_) {
    out += "# TYPE " + name + " gauge\n" + name + " " + std::to_string(v) + "\n";
  }
  return out;
}

}  // namespace annals
