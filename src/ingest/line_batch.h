// LineBatch: turns a chunk of newline-delimited JSON from a stream source
// (TCP connector, audit log tail) into IngestItems. Unlike HTTP bodies, a
// stream is not all-or-nothing: a bad line is skipped, counted and logged
// with its line number, and the rest goes on. Thread-compatible.
#ifndef ANNALS_INGEST_LINE_BATCH_H_
#define ANNALS_INGEST_LINE_BATCH_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/metrics.h"
#include "ingest/ingestor.h"

namespace annals::ingest {

struct LineBatch {
  std::shared_ptr<std::string> text;  // owns the bytes the items point into
  std::vector<IngestItem> items;
  uint64_t bad_lines = 0;
};

// Splits `text` (complete lines only) into items; `first_line` is the
// stream's line number of its first line; `origin` names the stream in logs.
// With a position_key_prefix, a line that has no dedup key of its own gets
// prefix + <its byte offset> (base_offset + offset in text): a file source
// then re-reads a line after a crash without storing it twice. Every item
// is filed under `cluster` (BindCluster; "" none).
LineBatch MakeLineBatch(std::string text, uint64_t first_line, const std::string& source,
                        const std::string& origin, Metrics* metrics,
                        const std::string& position_key_prefix = "", uint64_t base_offset = 0,
                        const std::string& cluster = "");

}  // namespace annals::ingest

#endif  // ANNALS_INGEST_LINE_BATCH_H_
