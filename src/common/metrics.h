// Metrics: process-wide counters exported at /metrics in the Prometheus text
// format. Counters are lock-free; labelled families take a mutex on first
// use of a label. Thread-safe.
#ifndef ANNALS_COMMON_METRICS_H_
#define ANNALS_COMMON_METRICS_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>

namespace annals {

class Metrics {
 public:
  // Counter `name` with one label set, e.g. Add("annals_events_received_total",
  // "source", "k8s-audit", 400). Created on first use.
  void Add(const std::string& name, const std::string& label_key,
           const std::string& label_value, uint64_t n = 1);
  // A counter of seconds kept in nanoseconds, shown in seconds: e.g.
  // AddNanos("annals_ingest_cpu_seconds_total", "stage", "parse", ns).
  void AddNanos(const std::string& name, const std::string& label_key,
                const std::string& label_value, int64_t ns);
  void Set(const std::string& name, uint64_t v);  // gauge without labels
  // A counter without labels whose value is kept elsewhere (a count since
  // the start, e.g. the scrub's passes): shown as a counter.
  void SetCounter(const std::string& name, uint64_t v);
  // The same with one label set; with nanos, v is nanoseconds shown in
  // seconds (as AddNanos).
  void SetCounter(const std::string& name, const std::string& label_key, const std::string& label_value,
                  uint64_t v, bool nanos = false);
  // A gauge in a base unit that may be fractional (seconds, a Unix time).
  void SetDouble(const std::string& name, double v);
  std::string Render() const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::map<std::string, std::unique_ptr<std::atomic<uint64_t>>>> counters_;
  std::map<std::string, double> gauges_;
  std::set<std::string> nano_families_;
};

}  // namespace annals

#endif  // ANNALS_COMMON_METRICS_H_
