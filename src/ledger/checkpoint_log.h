// CheckpointLog: every checkpoint the ledger ever signed, in order, in one
// append-only file of CRC-framed records (same framing as log segments), so
// that `annals verify` can check each against the tree. The newest is also
// written to <dir>/checkpoint for static C2SP serving. Append() is durable
// when it returns. Writer: one thread; Latest() is thread-safe. File I/O
// goes through an env::Env, which must outlive the log.
#ifndef ANNALS_LEDGER_CHECKPOINT_LOG_H_
#define ANNALS_LEDGER_CHECKPOINT_LOG_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"
#include "env/env.h"

namespace annals::ledger {

inline constexpr char kCheckpointLogName[] = "checkpoints.log";
// Beside it: one text line per time an operator let a log whose
// checkpoints were lost be signed again (LedgerOptions::accept_lost_checkpoints).
inline constexpr char kAcceptedLossesName[] = "accepted-losses";
// File header: the magic "ACKP", then the format version, u32 BE. As a
// record length the magic would be over 1 GiB, so a file written before
// the header existed (records from byte 0) is told apart and still read.
inline constexpr char kCheckpointLogMagic[] = "ACKP";
inline constexpr uint32_t kCheckpointLogVersion = 1;
inline constexpr size_t kCheckpointLogHeaderSize = 8;

class CheckpointLog {
 public:
  // Opens <dir>/checkpoints.log, cutting a torn tail (reported in *cut).
  static StatusOr<std::unique_ptr<CheckpointLog>> Open(
      const std::string& dir, std::string* cut, env::Env* env = env::Env::Default());
  ~CheckpointLog();
  // Appends and fdatasyncs a note. A failed write leaves the log as it was
  // (ResourceExhausted for a full disk: try again); a failed fdatasync is
  // Internal and must not be retried.
  // With copy, the note also becomes the copy beside the log (WriteCopy).
  Status Append(std::string_view note, bool copy = true);
  // The last appended note, empty if none.
  const std::string& latest() const { return latest_; }
  // Replaces <dir>/checkpoint, the served checkpoint (the latest, or with
  // witnessing the latest witnessed one, cosignatures included), atomically.
  // A failure (a full disk) is logged, not returned: the copy is a
  // convenience and a hint for the next start, checked before it is used.
  void WriteCopy(std::string_view note);
  // The copy as it was found at Open (empty if none or unreadable).
  const std::string& copy() const { return copy_; }

  // Calls fn for every stored note, oldest first. DataLoss names the record
  // number of the first bad one (a torn tail is not an error here: `cut` is
  // set instead).
  static Status Scan(const std::string& dir,
                     const std::function<Status(uint64_t n, std::string_view note)>& fn,
                     std::string* cut = nullptr, env::Env* env = env::Env::Default());

 private:
  CheckpointLog() = default;
  env::Env* env_ = nullptr;
  std::string dir_;
  std::unique_ptr<env::File> file_;
  uint64_t bytes_ = 0;
  std::string latest_;
  std::string copy_;
  bool copy_failed_ = false;  // the `checkpoint` copy's last update failed
};

}  // namespace annals::ledger

#endif  // ANNALS_LEDGER_CHECKPOINT_LOG_H_
