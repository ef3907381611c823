#include "common/metrics.h"

#include <gtest/gtest.h>

#include "common/thread_util.h"

namespace annals {
namespace {

TEST(Metrics, CountersRenderInThePrometheusTextFormat) {
  Metrics m;
  m.Add("annals_events_stored_total", "source", "k8s-audit", 400);
  m.Add("annals_events_stored_total", "source", "k8s-audit", 2);
  m.Set("annals_log_entries", 7);
  const std::string out = m.Render();
  EXPECT_NE(out.find("# TYPE annals_events_stored_total counter\n"
                     "annals_events_stored_total{source=\"k8s-audit\"} 402\n"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("# TYPE annals_log_entries gauge\nannals_log_entries 7\n"), std::string::npos) << out;
}

TEST(Metrics, NanosecondCountersRenderAsSeconds) {
  Metrics m;
  m.AddNanos("annals_ingest_cpu_seconds_total", "stage", "parse", 1'500'000'000);
  m.AddNanos("annals_ingest_cpu_seconds_total", "stage", "parse", 2'000'001);
  m.AddNanos("annals_ingest_cpu_seconds_total", "stage", "meta", 42);
  m.AddNanos("annals_ingest_cpu_seconds_total", "stage", "meta", -5);  // a clock step: ignored
  const std::string out = m.Render();
  EXPECT_NE(out.find("annals_ingest_cpu_seconds_total{stage=\"parse\"} 1.502000001\n"), std::string::npos)
      << out;
  EXPECT_NE(out.find("annals_ingest_cpu_seconds_total{stage=\"meta\"} 0.000000042\n"), std::string::npos)
      << out;
}

TEST(Metrics, GaugesTakeFractionsAndCountersCanBeSet) {
  Metrics m;
  m.SetDouble("annals_watch_lag_seconds", 0.0125);
  m.SetDouble("annals_checkpoint_timestamp_seconds", 1767225600);
  m.SetCounter("annals_log_scrub_passes_total", 3);
  m.SetCounter("annals_log_scrub_passes_total", 4);
  const std::string out = m.Render();
  EXPECT_NE(out.find("# TYPE annals_watch_lag_seconds gauge\nannals_watch_lag_seconds 0.0125\n"), std::string::npos)
      << out;
  EXPECT_NE(out.find("annals_checkpoint_timestamp_seconds 1767225600\n"), std::string::npos) << out;
  EXPECT_NE(out.find("# TYPE annals_log_scrub_passes_total counter\nannals_log_scrub_passes_total 4\n"),
            std::string::npos)
      << out;
}

TEST(Metrics, LabelledCountersCanBeSet) {
  Metrics m;
  m.SetCounter("annals_index_background_cpu_seconds_total", "index", "events", 1'500'000'000, true);
  m.SetCounter("annals_index_background_cpu_seconds_total", "index", "dedup", 250'000'000, true);
  m.SetCounter("annals_index_background_cpu_seconds_total", "index", "dedup", 750'000'000, true);
  m.SetCounter("annals_index_background_write_bytes_total", "index", "events", 4096);
  const std::string out = m.Render();
  EXPECT_NE(out.find("annals_index_background_cpu_seconds_total{index=\"dedup\"} 0.750000000\n"
                     "annals_index_background_cpu_seconds_total{index=\"events\"} 1.500000000\n"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("annals_index_background_write_bytes_total{index=\"events\"} 4096\n"), std::string::npos)
      << out;
}

TEST(ThreadUtil, ThreadCpuNanosCountsThisThreadsWork) {
  const int64_t t0 = ThreadCpuNanos();
  volatile uint64_t x = 0;
  for (int i = 0; i < 20'000'000; ++i) x = x + static_cast<uint64_t>(i);
  const int64_t t1 = ThreadCpuNanos();
  EXPECT_GT(t1, t0);
  EXPECT_GT(t1 - t0, 1'000'000) << "20M additions took under a millisecond of CPU";
}

}  // namespace
}  // namespace annals
