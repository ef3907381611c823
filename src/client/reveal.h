// Reveal and erase of redacted values from the client side
// (docs/security.md "Secrets"): `annals reveal` asks the server for a
// sealed value and checks it itself — the value and salt open the
// commitment that the entry holds at that path, and (with the log's
// verifier key) the entry is in a checkpoint the log signed — so the
// answer does not rest on the server's word. `annals erase` asks for an
// erasure. Thread-compatible.
#ifndef ANNALS_CLIENT_REVEAL_H_
#define ANNALS_CLIENT_REVEAL_H_

#include <cstdint>
#include <string>

#include "client/http_client.h"
#include "common/status.h"

namespace annals::client {

struct Revealed {
  std::string value;       // the value's JSON text
  std::string commitment;  // as the entry holds it
  bool opens = false;      // HMAC(salt, value) == commitment, checked here
  bool in_signed_checkpoint = false;  // checked only with a verifier key
  uint64_t checkpoint_size = 0;
};

// The value at JSON Pointer `path` of entry `index`. DataLoss when what the
// server sent does not open the entry's commitment, or the entry is not in
// the signed checkpoint.
StatusOr<Revealed> Reveal(HttpClient* http, uint64_t index, const std::string& path, const std::string& verifier_key);

// POST /v1/erase; returns the index of the annals.erasure entry.
StatusOr<uint64_t> Erase(HttpClient* http, uint64_t index, const std::string& path, const std::string& reason);

}  // namespace annals::client

#endif  // ANNALS_CLIENT_REVEAL_H_
