// FileTailer: follows a kube-apiserver `--audit-log-path` file across
// rotation (`--tail FILE`). The apiserver renames the full file to
// <name>-<timestamp><ext> and starts a new one; the tailer finishes the
// renamed file before it reads the new one, never re-reads `.gz` backups,
// and keeps its position (file identity and offset) durably after every
// durable batch, so a restart neither loses nor repeats a line. A line
// re-read after a crash between the append and the position write is
// deduplicated: audit events by (auditID, stage), any other line by its
// position key "tail:<dev>:<inode>:<offset>".
//
// Owns one thread. Thread-safe Start/Stop.
#ifndef ANNALS_INGEST_FILE_TAIL_H_
#define ANNALS_INGEST_FILE_TAIL_H_

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>

#include "common/metrics.h"
#include "common/status.h"
#include "ingest/ingestor.h"

namespace annals::ingest {

struct TailPosition {
  uint64_t dev = 0, inode = 0, offset = 0, line = 0;
};

class FileTailer {
 public:
  // state_dir holds one position file per followed path.
  // Every line is filed under `cluster` (serve --cluster; "" none).
  FileTailer(std::string path, std::string state_dir, Ingestor* ingestor, Metrics* metrics,
             std::string cluster = "");
  ~FileTailer();
  Status Start();
  void Stop();
  // Lines admitted so far (for tests and metrics).
  uint64_t lines() const { return lines_.load(); }

 private:
  void Run();
  // Reads from fd at pos until EOF, admitting complete lines. Returns false
  // on a stop request.
  bool Drain(int fd, TailPosition* pos, bool final_chunk);
  Status SavePosition(const TailPosition& pos);

  const std::string path_;
  const std::string state_file_;
  Ingestor* ingestor_;
  Metrics* metrics_;
  const std::string cluster_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> lines_{0};
  std::thread thread_;
};

}  // namespace annals::ingest

#endif  // ANNALS_INGEST_FILE_TAIL_H_
