// Witness: the witness side of C2SP tlog-witness (docs/witness.md) for any
// number of logs. For each log (known by its origin and verifier keys) it
// keeps the latest checkpoint it cosigned, on disk, and cosigns a new one
// (C2SP cosignature/v1, src/checkpoint/cosignature.h) only if the log
// signed it and it is consistent with that one: it never cosigns two trees
// of one log that disagree, nor a smaller tree after a larger one, across
// restarts too.
//
// The HTTP part is the caller's (annals witness): AddCheckpoint takes the
// body of `POST <prefix>/add-checkpoint` and gives the status, content
// type and body to answer with.
//
// Thread-safe: the check of the old size and the write of the new
// checkpoint are one step under a lock, so two requests cannot roll a
// log back (the race c2sp.org/tlog-witness describes).
#ifndef ANNALS_WITNESS_WITNESS_H_
#define ANNALS_WITNESS_WITNESS_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "checkpoint/cosignature.h"
#include "checkpoint/note.h"
#include "common/mutex.h"
#include "common/status.h"
#include "common/sha256.h"
#include "merkle/merkle.h"

namespace annals::witness {

// The largest request body read (a checkpoint with its proof is ~3 KB).
inline constexpr size_t kMaxRequestBytes = 64 << 10;
// At most this many consistency proof lines (c2sp.org/tlog-witness).
inline constexpr size_t kMaxProofLines = 63;
// The content type of a 409 answer's body (the size the witness holds).
inline constexpr std::string_view kSizeContentType = "text/x.tlog.size";

struct Answer {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

// A parsed add-checkpoint request body:
// "old <size>\n" (<base64 hash>\n){0,63} "\n" <signed checkpoint note>.
struct AddCheckpointRequest {
  uint64_t old_size = 0;
  std::vector<Hash> proof;
  std::string checkpoint;  // the note, signatures included
};
// InvalidArgument naming the defect.
StatusOr<AddCheckpointRequest> ParseAddCheckpoint(std::string_view body);

// A witness's answer to add-checkpoint as the log side reads it
// (client/cosigning.h).
struct Reply {
  enum Kind {
    kCosigned,     // 200 with a cosignature by the witness's key that verifies
    kSize,         // 409 text/x.tlog.size: the size it holds (ask again from there)
    kRefused,      // it will not cosign this tree (a fork, a bad proof, 4xx) or answered nonsense
    kUnavailable,  // no answer, or 5xx: ask again later
  };
  Kind kind = kUnavailable;
  std::string line;   // kCosigned: the cosignature line, '\n' included
  uint64_t size = 0;  // kSize
  std::string error;  // why, for the rest
};
// Reads the answer (status, Content-Type, body) to an add-checkpoint of a
// checkpoint whose note text is `text` (signature lines excluded), made
// to the witness whose key `verifier` is. Only a cosignature line by that
// key that verifies over `text` counts; anything else in a 200 is ignored.
Reply ReadAddCheckpointAnswer(int status, std::string_view content_type, std::string_view body,
                              std::string_view text, const note::CosignatureVerifier& verifier);

class Witness {
 public:
  struct Options {
    std::string dir;  // where each log's latest cosigned checkpoint is kept
    std::string key;  // the witness's private key ("PRIVATE+KEY+...", annals keygen)
    // The logs' verifier keys; a log's origin is its key's name. Several
    // keys of one name are that log's (any of them may sign).
    std::vector<std::string> logs;
    // Seconds since the epoch for cosignatures (tests fix it).
    std::function<uint64_t()> now;
  };
  // Loads each log's latest cosigned checkpoint from dir. InvalidArgument
  // for a bad key; DataLoss for a state file that does not parse.
  static StatusOr<std::unique_ptr<Witness>> Open(Options options);

  // The answer to `POST .../add-checkpoint` with this body.
  Answer AddCheckpoint(std::string_view body) EXCLUDES(mu_);
  // The witness's verifier key (cosignature/v1).
  std::string VerifierKey() const { return cosigner_->VerifierKey(); }
  // The size and root this witness last cosigned for origin (size 0 and
  // false if none).
  bool Latest(std::string_view origin, uint64_t* size, Hash* root) const EXCLUDES(mu_);

 private:
  struct Log {
    std::vector<std::unique_ptr<note::Verifier>> keys;
    uint64_t size = 0;
    Hash root{};
    bool seen = false;  // a checkpoint was cosigned
  };
  Witness() = default;
  std::string StateFile(std::string_view origin) const;

  Options options_;
  std::unique_ptr<note::Cosigner> cosigner_;
  mutable Mutex mu_;
  std::map<std::string, Log, std::less<>> logs_ GUARDED_BY(mu_);
};

}  // namespace annals::witness

#endif  // ANNALS_WITNESS_WITNESS_H_
