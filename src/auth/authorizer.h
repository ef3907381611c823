// Authorizer: who is calling and what they may do. A caller is known by
// the client certificate the listener verified (its CN and O, passed in),
// or else by a bearer token: looked up by its SHA-256 in the tokens file,
// which is re-read when it changes (checked at most once a second; a file
// that no longer parses keeps the previous table and is reported), and, if
// not there and TokenReview is enabled, vouched for by the Kubernetes API
// server (token_review.h; answers cached). Roles and namespace limits come
// from the AuthConfig (auth_config.h).
//
// Thread-safe. With TokenReview it owns review threads, stopped by Stop()
// or the destructor.
#ifndef ANNALS_AUTH_AUTHORIZER_H_
#define ANNALS_AUTH_AUTHORIZER_H_

#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "auth/auth_config.h"
#include "auth/token_review.h"
#include "common/metrics.h"
#include "common/mutex.h"
#include "common/status.h"

namespace annals::auth {

struct Caller {
  std::string user;                 // "" when anonymous
  std::vector<std::string> groups;
  std::string method;               // "tls", "token", "tokenreview" or "anonymous"
  Permissions perms;
  bool authenticated() const { return method != "anonymous"; }
};

// Asks the Kubernetes API server who `token` belongs to (a TokenReview);
// blocks for at most its own timeout. An error means no answer (API server
// unreachable, refusing annals, a malformed answer): the caller is refused
// and nothing is cached.
using TokenReviewer = std::function<StatusOr<TokenReview>(std::string_view token)>;

struct TokenReviewOptions {
  TokenReviewCache::Options cache;
  int threads = 2;          // reviews in flight at once
  size_t max_queued = 256;  // requests waiting for a review thread; beyond: refused
  Metrics* metrics = nullptr;  // annals_token_reviews_total{result=...}; not owned
  std::function<std::chrono::steady_clock::time_point()> now = std::chrono::steady_clock::now;
};

class Authorizer {
 public:
  // tokens_file overrides config.tokens_file when not empty. Fails if the
  // tokens file cannot be read or parsed.
  static StatusOr<std::unique_ptr<Authorizer>> Create(AuthConfig config, std::string tokens_file);
  ~Authorizer();

  // Bearer tokens that are not in the tokens file go to `reviewer`, and its
  // answers are cached (options.cache). Starts the review threads. Call
  // once, before serving.
  void EnableTokenReview(TokenReviewer reviewer, TokenReviewOptions options = {});

  // cert_user/cert_groups: the verified client certificate's CN and O
  // (cert_user empty: none). authorization: the Authorization header.
  // Unauthenticated for a bearer token that matches no entry and that the
  // API server (if asked) does not vouch for, or cannot be asked about.
  // Blocks on a TokenReview when one is needed.
  StatusOr<Caller> Authenticate(std::string_view cert_user, const std::vector<std::string>& cert_groups,
                                std::string_view authorization);
  // The same, answered through `done`: at once on this thread, unless the
  // bearer token needs a TokenReview (not in the tokens file, no cached
  // answer) — then later on a review thread, so that the listener's
  // threads never wait for the API server. The arguments need to live only
  // until this returns. With more than max_queued requests waiting for a
  // review, done gets Unauthenticated at once.
  void AuthenticateAsync(std::string_view cert_user, const std::vector<std::string>& cert_groups,
                         std::string_view authorization, std::function<void(StatusOr<Caller>)> done);
  // Stops the review threads after the reviews in flight (their callers get
  // their answers); requests still waiting, and later ones that need a
  // review, are refused. Idempotent.
  void Stop();

  const AuthConfig& config() const { return config_; }

 private:
  explicit Authorizer(AuthConfig config) : config_(std::move(config)) {}
  // Re-reads the tokens file if its mtime or size changed.
  Status MaybeReload(bool force) REQUIRES(mu_);
  // The answer if no TokenReview is needed; else nullopt and *review_token
  // is the bearer token to review.
  std::optional<StatusOr<Caller>> AuthenticateLocally(std::string_view cert_user,
                                                      const std::vector<std::string>& cert_groups,
                                                      std::string_view authorization,
                                                      std::string* review_token);
  // The cached answer for `token`, else the reviewer's (then cached).
  StatusOr<Caller> Review(const std::string& token);
  StatusOr<Caller> FromReview(const TokenReview& review) const;
  void ReviewLoop();
  void Count(const char* result);

  const AuthConfig config_;
  Mutex mu_;  // the tokens file's
  std::unordered_map<std::string, TokenIdentity> tokens_ GUARDED_BY(mu_);
  std::chrono::steady_clock::time_point last_check_ GUARDED_BY(mu_){};
  int64_t mtime_ns_ GUARDED_BY(mu_) = -1;
  int64_t size_ GUARDED_BY(mu_) = -1;

  // TokenReview; set once by EnableTokenReview.
  TokenReviewer reviewer_;
  TokenReviewOptions review_options_;
  std::unique_ptr<TokenReviewCache> cache_;
  struct Pending {
    std::string token;
    std::function<void(StatusOr<Caller>)> done;
  };
  Mutex review_mu_;
  std::chrono::steady_clock::time_point last_error_log_ GUARDED_BY(review_mu_){};
  CondVar review_cv_;  // queue_ grew, or stopping_
  std::deque<Pending> queue_ GUARDED_BY(review_mu_);
  bool stopping_ GUARDED_BY(review_mu_) = false;
  std::vector<std::thread> review_threads_;
};

}  // namespace annals::auth

#endif  // ANNALS_AUTH_AUTHORIZER_H_
