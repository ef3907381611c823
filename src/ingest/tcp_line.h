// TcpLineListener: the plain TCP connector (`--tcp-listen ADDR`):
// newline-delimited JSON, so `cat audit.log | nc HOST PORT` works. Each
// connection reads a chunk, admits its complete lines through the Ingestor
// and reads on only once they are durable (backpressure through TCP). A
// bad line is skipped, counted and logged with its line number.
//
// Thread-safe; owns one io thread. Stop() closes listener and connections.
#ifndef ANNALS_INGEST_TCP_LINE_H_
#define ANNALS_INGEST_TCP_LINE_H_

#include <cstdint>
#include <memory>
#include <string>

#include "common/metrics.h"
#include "common/status.h"
#include "ingest/ingestor.h"

namespace annals::ingest {

class TcpLineListener {
 public:
  TcpLineListener(std::string listen, Ingestor* ingestor, Metrics* metrics,
                  size_t max_line_bytes = 4u << 20);
  ~TcpLineListener();
  StatusOr<uint16_t> Start();
  void Stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace annals::ingest

#endif  // ANNALS_INGEST_TCP_LINE_H_
