// Offline verification of a data directory (`annals verify --data DIR`):
// re-reads every segment record (CRC), decodes every entry, re-hashes every
// external payload, rebuilds every hash tile and compares it with the stored
// one, and checks every stored checkpoint's signature and root. Stops at the
// first problem with a DataLoss Status that names the entry index (or the
// checkpoint) and what is wrong. A log with entries and no checkpoint at
// all fails too: nothing signed covers them. Read-only; safe to run beside a
// server.
#ifndef ANNALS_LEDGER_VERIFIER_H_
#define ANNALS_LEDGER_VERIFIER_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/status.h"

namespace annals::ledger {

struct VerifyReport {
  uint64_t entries = 0;
  uint64_t tiles = 0;
  uint64_t checkpoints = 0;
  uint64_t blobs = 0;
  uint64_t bytes = 0;
  int64_t bad_index = -1;  // first bad entry index, when one is known
  // Set when reading stopped early past every checkpoint (a record being
  // written, or a torn tail recovery will cut): what was not read, and why.
  std::string unverified_tail;
  // Entries after the last signed checkpoint (not yet signed: normal for a
  // running server, which publishes every checkpoint interval).
  uint64_t unsigned_entries = 0;
  // The lines of log/accepted-losses: times an operator let the server sign
  // a log whose checkpoints were lost.
  std::vector<std::string> accepted_losses;
  // Entries [0, archived_only) whose segments are in the archive only
  // (segments/archived, local retention): their leaf hashes are read from
  // the local level-0 tiles and must hash to every signed root with the
  // rest; their bytes are checked where they are (annals verify --url).
  uint64_t archived_only = 0;
};

// progress(bytes_done, bytes_total) is called now and then.
Status VerifyDataDir(const std::string& data_dir, const std::string& verifier_key,
                     const std::function<void(uint64_t, uint64_t)>& progress,
                     VerifyReport* report);

}  // namespace annals::ledger

#endif  // ANNALS_LEDGER_VERIFIER_H_
