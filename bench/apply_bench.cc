// apply_bench: the projection's apply alone, on one thread: StateStore::Apply
// (the object versions, intervals, links) and the event rows it fills, over
// the first --entries entries of a data directory (`questions_bench --keep`
// writes one). The entries are read and decoded once, before any timing;
// each repetition applies them to a fresh store, as a catch-up from empty
// does, without the log's reads and the indexes' writes (their threads run
// beside it in a catch-up). Prints every repetition's thread CPU, and the
// min and median: on a shared machine the min is the code's cost, the
// spread is the neighbours'. Not a test.
//
// --meta-version 1 or 2 rewrites each audit entry's metadata in that
// version before timing (docs/format/entry.md: version 1 repeats the
// indexed fields, version 2 leaves them to the payload), so one log gives
// the readers' cost on both.
//
//   build/bench/apply_bench --data DIR [--entries 1000000] [--reps 5] [--meta-version 0|1|2]
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "common/thread_util.h"
#include "index/event_row.h"
#include "ingest/k8s_audit.h"
#include "json/json_parse.h"
#include "ledger/entry.h"
#include "ledger/ledger.h"
#include "state/state_store.h"

namespace {

using namespace annals;

[[noreturn]] void Die(const std::string& what, const Status& s) {
  std::fprintf(stderr, "apply_bench: %s: %s\n", what.c_str(), s.message().c_str());
  std::exit(1);
}

struct Entry {
  std::string meta, payload;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"The projection's apply alone, on one thread, over a data directory's entries"};
  std::string data;
  uint64_t entries = 1000000;
  int reps = 5;
  app.add_option("--data", data, "a data directory (annals serve's, or questions_bench --keep's)")->required();
  app.add_option("--entries", entries, "how many entries, from the first");
  app.add_option("--reps", reps, "repetitions");
  int meta_version = 0;
  app.add_option("--meta-version", meta_version, "rewrite audit entries' metadata in version 1 or 2 (0: as stored)")
      ->check(CLI::Range(0, 2));
  CLI11_PARSE(app, argc, argv);

  ledger::LedgerOptions lo;
  lo.data_dir = data;
  auto ledger = ledger::Ledger::Open(lo);
  if (!ledger.ok()) Die("open " + data, ledger.status());
  entries = std::min(entries, (*ledger)->DurableSize());
  std::vector<Entry> in;
  in.reserve(entries);
  uint64_t bytes = 0;
  Status read = (*ledger)->ReadEntries(0, entries, [&](uint64_t, std::string_view e) -> Status {
    auto d = ledger::DecodeEntry(e);
    if (!d.ok()) return d.status();
    std::string blob;
    auto payload = (*ledger)->PayloadOf(*d, &blob);
    if (!payload.ok()) return payload.status();
    std::string meta(d->meta);
    if (meta_version != 0 && meta.find(R"("type":"k8s.audit")") != std::string::npos) {
      auto ev = ingest::ParseAuditEvent(*payload, "entry");
      if (!ev.ok()) return ev.status();
      simdjson::dom::element m;
      std::string_view src, rt;
      if (json_util::JsonParser().parse(meta).get(m) != simdjson::SUCCESS || m["src"].get(src) != simdjson::SUCCESS ||
          m["rt"].get(rt) != simdjson::SUCCESS)
        return DataLossError("metadata without src and rt");
      meta = meta_version == 1 ? ingest::AuditMetaV1(*ev, src, rt) : ingest::AuditMeta(*ev, src, rt);
    }
    bytes += meta.size() + payload->size();
    in.push_back({std::move(meta), std::string(*payload)});
    return OkStatus();
  });
  if (!read.ok()) Die("read", read);
  ledger->reset();
  std::printf("%llu entries, %.0f B of metadata and payload on average\n", static_cast<unsigned long long>(in.size()),
              in.empty() ? 0.0 : static_cast<double>(bytes) / static_cast<double>(in.size()));

  std::vector<double> cpu;
  for (int r = 0; r < reps; ++r) {
    auto store = std::make_unique<state::StateStore>();
    index::EventBatch batch;
    const int64_t c0 = ThreadCpuNanos();
    for (uint64_t i = 0; i < in.size(); ++i) {
      Status s = store->Apply(i, in[i].meta, in[i].payload, &batch);
      if (!s.ok()) Die("apply entry " + std::to_string(i), s);
      if (batch.rows() >= 65536) batch.clear();  // a catch-up's commit takes them
    }
    const double secs = static_cast<double>(ThreadCpuNanos() - c0) / 1e9;
    cpu.push_back(secs);
    std::printf("  repetition %d: %.3f CPU-s, %.0fk entries per CPU-second, %zu objects\n", r + 1, secs,
                static_cast<double>(in.size()) / secs / 1e3, store->object_count());
  }
  std::sort(cpu.begin(), cpu.end());
  const double n = static_cast<double>(in.size());
  std::printf("apply: min %.3f CPU-s (%.0fk entries/CPU-s), median %.3f CPU-s (%.0fk entries/CPU-s), %d repetitions\n",
              cpu.front(), n / cpu.front() / 1e3, cpu[cpu.size() / 2], n / cpu[cpu.size() / 2] / 1e3, reps);
  return 0;
}
