// TcpLineListener: the TCP connector (`--tcp-listen ADDR`):
// newline-delimited JSON, so `cat audit.log | nc HOST PORT` works. Each
// connection reads a chunk, admits its complete lines through the Ingestor
// and reads on only once they are durable (backpressure through TCP). A
// bad line is skipped, counted and logged with its line number. With TLS
// (EnableTls) the same loop runs after a handshake, and with a client CA
// only connections whose certificate is admitted may write.
//
// Thread-safe; owns one io thread. Stop() closes listener and connections.
#ifndef ANNALS_INGEST_TCP_LINE_H_
#define ANNALS_INGEST_TCP_LINE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/metrics.h"
#include "common/status.h"
#include "ingest/ingestor.h"
#include "tls/tls_context.h"

namespace annals::ingest {

class TcpLineListener {
 public:
  // Lines are filed under `cluster` (serve --cluster; "" none), or under
  // the cluster a TLS caller's credentials are bound to (Admit).
  TcpLineListener(std::string listen, Ingestor* ingestor, Metrics* metrics,
                  size_t max_line_bytes = 4u << 20, std::string cluster = "");
  ~TcpLineListener();
  // TLS (docs/security.md), before Start(). With files.client_ca a client
  // certificate is required and `admit` decides, from its CN and O, whether
  // the connection may write (`remote`: the peer's address); a refused one
  // is closed before any line is read. A failed handshake (no certificate,
  // another CA's) asks about an anonymous peer (user "") and is closed
  // whatever the answer. An admitted caller bound to a cluster sets *cluster.
  using Admit = std::function<bool(const std::string& user, const std::vector<std::string>& groups,
                                   const std::string& remote, std::string* cluster)>;
  Status EnableTls(tls::TlsFiles files, Admit admit);
  // Re-reads the files (SIGHUP); established connections keep theirs.
  Status ReloadTls();
  StatusOr<uint16_t> Start();
  void Stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace annals::ingest

#endif  // ANNALS_INGEST_TCP_LINE_H_
