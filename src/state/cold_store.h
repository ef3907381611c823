// ColdStore: where StateStore keeps the histories of objects it no longer
// holds in memory (an interface, so that the store does not depend on the
// database behind it; ColdObjects, cold_objects.h, is the one annals uses).
#ifndef ANNALS_STATE_COLD_STORE_H_
#define ANNALS_STATE_COLD_STORE_H_

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace annals::state {

class ColdStore {
 public:
  virtual ~ColdStore() = default;
  // Adds a body / the deletion of one to the pending batch.
  virtual void Put(uint32_t id, uint64_t generation, std::string_view body) = 0;
  virtual void Delete(uint32_t id, uint64_t generation) = 0;
  // Writes the pending batch (not synced); on failure it stays pending.
  virtual Status Commit() = 0;
  // Commits, then makes everything committed durable.
  virtual Status Sync() = 0;
  // NotFound if there is no such body, DataLoss if it is damaged.
  virtual StatusOr<std::string> Get(uint32_t id, uint64_t generation) const = 0;
  // Removes every body, the pending batch too.
  virtual Status Wipe() = 0;
  // Reads every body, checking every checksum; DataLoss at the first that
  // fails. Unavailable if *stop becomes true meanwhile.
  virtual Status Verify(const std::atomic<bool>* stop) const = 0;
};

}  // namespace annals::state

#endif  // ANNALS_STATE_COLD_STORE_H_
