// The state snapshot file: the in-memory projection (StateStore) as it was
// after applying log entries [0, applied), so that a start loads it and
// replays only the entries after it instead of the whole log
// (docs/format/state-snapshot.md). Derived data: a snapshot that is
// damaged, of another format, or not made from this log is thrown away
// and the projection rebuilt from the log.
//
// Thread-safe as StateStore is: writing takes the store's lock shared.
#ifndef ANNALS_STATE_STATE_SNAPSHOT_H_
#define ANNALS_STATE_STATE_SNAPSHOT_H_

#include <cstdint>
#include <functional>
#include <string>

#include "common/sha256.h"
#include "common/status.h"
#include "state/state_store.h"

namespace annals::state {

struct SnapshotHeader {
  uint64_t applied = 0;
  // SHA-256 of the log entry at applied - 1 (zeros when applied is 0): the
  // reader checks the log still holds that entry there.
  Hash last_entry{};
};

// Writes path.tmp (header, store.EncodeSnapshot, SHA-256 of it all),
// fdatasyncs and renames it over path: after a crash path holds the old
// snapshot or the new one. store must have applied exactly `applied`
// entries and not move meanwhile (FailedPrecondition otherwise).
Status WriteSnapshotFile(const std::string& path, const StateStore& store, uint64_t applied, const Hash& last_entry);

// Loads path into *store (a new one), once `check` has accepted its
// header (the caller compares it with the log). NotFound if there is
// none; DataLoss if it is damaged or malformed; what check returns if it
// refuses. The store is unchanged unless the result is OK.
StatusOr<SnapshotHeader> ReadSnapshotFile(const std::string& path, StateStore* store,
                                          const std::function<Status(const SnapshotHeader&)>& check);

}  // namespace annals::state

#endif  // ANNALS_STATE_STATE_SNAPSHOT_H_
