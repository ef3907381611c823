// Authorizer: who is calling and what they may do. A caller is known by
// the client certificate the listener verified (its CN and O, passed in),
// or else by a bearer token looked up by its SHA-256 in the tokens file,
// which is re-read when it changes (checked at most once a second; a file
// that no longer parses keeps the previous table and is reported). Roles
// and namespace limits come from the AuthConfig (auth_config.h).
//
// Thread-safe.
#ifndef ANNALS_AUTH_AUTHORIZER_H_
#define ANNALS_AUTH_AUTHORIZER_H_

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "auth/auth_config.h"
#include "common/status.h"

namespace annals::auth {

struct Caller {
  std::string user;                 // "" when anonymous
  std::vector<std::string> groups;
  std::string method;               // "tls", "token" or "anonymous"
  Permissions perms;
  bool authenticated() const { return method != "anonymous"; }
};

class Authorizer {
 public:
  // tokens_file overrides config.tokens_file when not empty. Fails if the
  // tokens file cannot be read or parsed.
  static StatusOr<std::unique_ptr<Authorizer>> Create(AuthConfig config, std::string tokens_file);

  // cert_user/cert_groups: the verified client certificate's CN and O
  // (cert_user empty: none). authorization: the Authorization header.
  // Unauthenticated for a bearer token that matches no entry.
  StatusOr<Caller> Authenticate(std::string_view cert_user, const std::vector<std::string>& cert_groups,
                                std::string_view authorization);

  const AuthConfig& config() const { return config_; }

 private:
  explicit Authorizer(AuthConfig config) : config_(std::move(config)) {}
  // Re-reads the tokens file if its mtime or size changed. Caller holds mu_.
  Status MaybeReload(bool force);

  const AuthConfig config_;
  std::mutex mu_;
  std::unordered_map<std::string, TokenIdentity> tokens_;
  std::chrono::steady_clock::time_point last_check_{};
  int64_t mtime_ns_ = -1;
  int64_t size_ = -1;
};

}  // namespace annals::auth

#endif  // ANNALS_AUTH_AUTHORIZER_H_
