// archive_bench: how fast the archiver copies a log to S3-compatible
// storage (serve --archive, docs/format/archive.md). Not a test: it prints
// figures.
//
// Builds a log in process (ledger::Ledger, segments of 65,536 entries
// compressed at zstd 3, as `annals serve` does) from real audit events of
// the corpus (each made unique), waits until the sealed segments are
// compressed, then starts archive::Archiver against the store and times it
// until the bucket holds the published checkpoint and every sealed
// segment. Repeats for each --parallel value, --runs times each, a fresh
// prefix per run; prints each run and the median, the disk bound of the
// data directory measured in the same run, and the core count.
//
// The store: S3_ENDPOINT, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (e.g.
// from ../shared/tools/s3-rgw.sh start DIR) and a bucket made beforehand
// (test/integration/s3_tool.py mkbucket BUCKET lock).
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "archive/archiver.h"
#include "bench_process.h"
#include "ledger/ledger.h"

namespace annals::bench {
namespace {

using Clock = std::chrono::steady_clock;

[[noreturn]] void Die(const std::string& what, const std::string& why) {
  std::fprintf(stderr, "archive_bench: %s: %s\n", what.c_str(), why.c_str());
  std::exit(1);
}

// Every audit event line of the corpus's JSON-lines file and Falco files.
std::vector<std::string> CorpusLines(const std::string& corpus) {
  std::vector<std::string> out;
  std::ifstream in(corpus + "/k8s-audit/audit2rbac-demo.jsonl");
  for (std::string l; std::getline(in, l);)
    if (!l.empty()) out.push_back(l);
  for (const auto& e : std::filesystem::directory_iterator(corpus + "/k8s-audit/falco")) {
    std::ifstream f(e.path());
    std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    if (!text.empty() && text.size() < 60000) out.push_back(text);
  }
  if (out.empty()) Die("corpus", "no audit events under " + corpus);
  return out;
}

}  // namespace
}  // namespace annals::bench

int main(int argc, char** argv) {
  using namespace annals;
  using namespace annals::bench;
  CLI::App app{"archive upload throughput"};
  std::string dir = "/tmp", bucket = "bench", corpus = ANNALS_CORPUS_DIR;
  uint64_t entries = 200000;
  int runs = 3;
  std::vector<int> parallel{1, 4, 8};
  app.add_option("--dir", dir, "scratch directory (on the disk whose speed matters)");
  app.add_option("--bucket", bucket, "bucket (made beforehand, with Object Lock)");
  app.add_option("--entries", entries, "entries in the log");
  app.add_option("--runs", runs, "runs per setting");
  app.add_option("--parallel", parallel, "upload parallelism settings");
  app.add_option("--corpus", corpus, "the shared corpus directory");
  CLI11_PARSE(app, argc, argv);
  const char* endpoint = std::getenv("S3_ENDPOINT");
  if (!endpoint) Die("store", "S3_ENDPOINT is not set (start one with ../shared/tools/s3-rgw.sh)");
  auto creds = archive::LoadCredentials();
  if (!creds.ok()) Die("credentials", creds.status().message());

  const std::string base = dir + "/archive-bench-" + std::to_string(::getpid());
  std::filesystem::create_directories(base);
  // The log, built once.
  ledger::LedgerOptions lo;
  lo.data_dir = base + "/data";
  lo.segment_compression_level = 3;
  lo.compression_bytes_per_second = 0;
  auto ledger_or = ledger::Ledger::Open(lo);
  if (!ledger_or.ok()) Die("ledger", ledger_or.status().message());
  auto& ledger = *ledger_or;
  const auto lines = CorpusLines(corpus);
  uint64_t entry_bytes = 0;
  for (uint64_t i = 0; i < entries;) {
    std::vector<std::string> batch;
    for (int k = 0; k < 1000 && i < entries; ++k, ++i) {
      std::string e = lines[i % lines.size()];
      e += " #" + std::to_string(i);  // unique bytes, as unique audit IDs would be
      entry_bytes += e.size();
      batch.push_back(std::move(e));
    }
    if (auto s = ledger->Append(std::move(batch)); !s.ok()) Die("append", s.status().message());
  }
  if (auto s = ledger->PublishNow(); !s.ok()) Die("publish", s.message());
  const uint64_t sealed = entries / 65536;
  while (ledger->SegmentFootprint().compressed_segments < sealed) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const auto fp = ledger->SegmentFootprint();
  std::printf("log: %llu entries (%.0f B mean), %llu sealed segments compressed to %.1f MB; %u cores\n",
              static_cast<unsigned long long>(entries), static_cast<double>(entry_bytes) / entries,
              static_cast<unsigned long long>(fp.compressed_segments), fp.compressed_bytes / 1e6,
              std::thread::hardware_concurrency());

  Metrics metrics;
  int run_no = 0;
  for (int p : parallel) {
    std::vector<double> rates, mbps, objs, bounds;
    for (int r = 0; r < runs; ++r) {
      archive::ArchiverOptions ao;
      ao.s3.endpoint = endpoint;
      ao.s3.region = archive::RegionOr("");
      ao.s3.credentials = *creds;
      auto loc = archive::ParseS3Url("s3://" + bucket + "/run-" + std::to_string(::getpid()) + "-" + std::to_string(run_no++));
      if (!loc.ok()) Die("bucket", loc.status().message());
      ao.location = *loc;
      ao.retain_seconds = 86400;
      ao.parallel = p;
      ao.interval = std::chrono::milliseconds(50);
      ao.state_dir = base + "/state-" + std::to_string(run_no);
      std::string error;
      const double bound = DiskBound(base, 2.0, &error);
      if (bound < 0) Die("disk bound", error);
      const auto t0 = Clock::now();
      const double cpu0 = ProcessCpuSeconds(::getpid());
      auto a = archive::Archiver::Start(ao, ledger.get(), &metrics);
      if (!a.ok()) Die("archiver", a.status().message());
      archive::ArchiveProgress pr;
      while (true) {
        pr = (*a)->progress();
        if (pr.archived_size == entries && pr.next_segment >= sealed * 65536) break;
        if (pr.stopped_on_mismatch) Die("archive", pr.last_error);
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
      const double cpu = ProcessCpuSeconds(::getpid()) - cpu0;
      (*a)->Stop();
      rates.push_back(entries / secs);
      mbps.push_back(pr.bytes / secs / 1e6);
      objs.push_back(pr.objects / secs);
      bounds.push_back(bound / 1e6);
      std::printf("parallel %d run %d: %.2f s, %.0f entries/s, %llu objects (%.0f/s), %.1f MB (%.1f MB/s), "
                  "%.2f us CPU/entry, %llu errors; disk bound %.0f MB/s\n",
                  p, r + 1, secs, entries / secs, static_cast<unsigned long long>(pr.objects), pr.objects / secs,
                  pr.bytes / 1e6, pr.bytes / secs / 1e6, cpu * 1e6 / entries,
                  static_cast<unsigned long long>(pr.errors), bound / 1e6);
    }
    std::printf("parallel %d median of %d: %.0f entries/s, %.1f MB/s, %.0f objects/s; disk bound %.0f MB/s\n", p,
                runs, Median(rates), Median(mbps), Median(objs), Median(bounds));
  }
  ledger.reset();
  std::filesystem::remove_all(base);
  return 0;
}
