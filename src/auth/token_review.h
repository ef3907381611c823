// The Kubernetes TokenReview exchange (authentication.k8s.io/v1) as annals
// uses it to learn who a bearer token belongs to (docs/security.md): the
// request body, the parser of the API server's answer, and a cache of
// answers. The HTTP call itself is src/kube/token_review.h.
//
// Pure (no I/O, no Boost): linked into the fuzz build — the answer is
// untrusted bytes (fuzz/token_review_fuzzer.cc). The functions are
// stateless; TokenReviewCache is thread-safe.
#ifndef ANNALS_AUTH_TOKEN_REVIEW_H_
#define ANNALS_AUTH_TOKEN_REVIEW_H_

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "auth/auth_config.h"
#include "common/mutex.h"
#include "common/status.h"

namespace annals::auth {

inline constexpr char kTokenReviewPath[] = "/apis/authentication.k8s.io/v1/tokenreviews";

// {"apiVersion":"authentication.k8s.io/v1","kind":"TokenReview",
//  "spec":{"token":TOKEN[,"audiences":[...]]}}
std::string TokenReviewRequest(std::string_view token, const std::vector<std::string>& audiences);

// The API server's verdict on one token.
struct TokenReview {
  bool authenticated = false;
  TokenIdentity identity;  // status.user.username and .groups, when authenticated
  std::string error;       // status.error, or why an "authenticated" answer was not taken
};

// Parses the answer to TokenReviewRequest(token, audiences). A body that is
// not a TokenReview (not JSON, wrong kind or apiVersion, no status, fields
// of the wrong type, authenticated without a username) is InvalidArgument
// naming what is wrong. status.authenticated absent means false (the API
// server omits it then). With audiences, an authenticated answer must list
// one of them in status.audiences, as client-go's webhook authenticator
// requires; otherwise the token was meant for someone else and the result
// is not authenticated.
StatusOr<TokenReview> ParseTokenReview(std::string_view body, const std::vector<std::string>& audiences);

// Remembers TokenReview answers by the SHA-256 of the token (the token
// itself is never kept): accepted ones for `authenticated_ttl`, refused
// ones for `rejected_ttl` — kube-apiserver's webhook token cache uses the
// same 2 min / 10 s. Errors (no answer) are never cached. At most
// `max_entries`: when full, expired entries go first, then the ones
// closest to expiry (refused tokens, mostly). Thread-safe.
class TokenReviewCache {
 public:
  using Clock = std::chrono::steady_clock;
  struct Options {
    Clock::duration authenticated_ttl = std::chrono::minutes(2);
    Clock::duration rejected_ttl = std::chrono::seconds(10);
    size_t max_entries = 4096;
  };
  explicit TokenReviewCache(Options o) : o_(o) {}

  // `token_sha256`: the 32 bytes of SHA-256(token).
  std::optional<TokenReview> Lookup(std::string_view token_sha256, Clock::time_point now);
  void Insert(std::string_view token_sha256, TokenReview review, Clock::time_point now);
  size_t size() const;

 private:
  struct Entry {
    TokenReview review;
    Clock::time_point expires;
  };
  const Options o_;
  mutable Mutex mu_;
  std::unordered_map<std::string, Entry> entries_ GUARDED_BY(mu_);
};

}  // namespace annals::auth

#endif  // ANNALS_AUTH_TOKEN_REVIEW_H_
