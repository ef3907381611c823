// RemoteVerifier: checks a served log through its C2SP paths alone
// (checkpoint, hash tiles, entry bundles): the checkpoint's signature, every
// entry bundle re-hashed into every hash tile, the root; and, given the last
// checkpoint trusted before (the state file), that the new one extends it,
// so a rolled-back or forked log is caught. Thread-compatible.
#ifndef ANNALS_CLIENT_REMOTE_VERIFIER_H_
#define ANNALS_CLIENT_REMOTE_VERIFIER_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "checkpoint/checkpoint.h"
#include "client/http_client.h"
#include "common/status.h"
#include "witness/policy.h"

namespace annals::client {

struct RemoteVerifyResult {
  uint64_t size = 0;
  uint64_t previous_size = 0;
  uint64_t tiles = 0;
  std::string checkpoint;  // the note now trusted
  std::vector<std::string> witnessed;  // with a policy: who cosigned it
};

// state_file may be empty (no memory between runs). On success the new
// checkpoint is written to state_file atomically. With a witness policy
// the served checkpoint must also carry its quorum of cosignatures
// (Unauthenticated otherwise, before anything else is read or written).
Status VerifyRemote(const std::string& url, const std::string& verifier_key,
                    const std::string& state_file,
                    const std::function<void(uint64_t, uint64_t)>& progress,
                    RemoteVerifyResult* result, const ClientAuth& auth = {},
                    const witness::Policy* policy = nullptr);

// The served checkpoint (GET /log/checkpoint), its signature checked with
// verifier_key and its origin with the key's name. DataLoss if either fails.
StatusOr<checkpoint::Checkpoint> FetchCheckpoint(HttpClient* http, const std::string& verifier_key);

}  // namespace annals::client

#endif  // ANNALS_CLIENT_REMOTE_VERIFIER_H_
