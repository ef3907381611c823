// What a RocksDB-backed store's flushes and compactions have done since it
// was opened (index::BackgroundWorkOf), for /metrics. A header without
// RocksDB's, for the stores' own headers.
#ifndef ANNALS_INDEX_BACKGROUND_WORK_H_
#define ANNALS_INDEX_BACKGROUND_WORK_H_

#include <cstdint>

namespace annals::index {

struct BackgroundWork {
  uint64_t cpu_nanos = 0;  // reading, merging and compressing tables
  uint64_t bytes_read = 0, bytes_written = 0;
};

}  // namespace annals::index

#endif  // ANNALS_INDEX_BACKGROUND_WORK_H_
