#include "auth/authorizer.h"

#include <strings.h>
#include <sys/stat.h>

#include <cstdio>

#include "common/bytes.h"
#include "common/file_util.h"
#include "common/sha256.h"

namespace annals::auth {

StatusOr<std::unique_ptr<Authorizer>> Authorizer::Create(AuthConfig config, std::string tokens_file) {
  if (!tokens_file.empty()) config.tokens_file = std::move(tokens_file);
  std::unique_ptr<Authorizer> a(new Authorizer(std::move(config)));
  if (!a->config_.tokens_file.empty()) {
    std::lock_guard lock(a->mu_);
    RETURN_IF_ERROR(a->MaybeReload(/*force=*/true));
  }
  return a;
}

Status Authorizer::MaybeReload(bool force) {
  const auto now = std::chrono::steady_clock::now();
  if (!force && now - last_check_ < std::chrono::seconds(1)) return OkStatus();
  last_check_ = now;
  struct stat st;
  if (::stat(config_.tokens_file.c_str(), &st) != 0)
    return UnavailableError("cannot stat tokens file " + config_.tokens_file);
  const int64_t mtime = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  if (!force && mtime == mtime_ns_ && st.st_size == size_) return OkStatus();
  auto text = ReadFileToString(config_.tokens_file);
  if (!text.ok()) return text.status();
  auto parsed = ParseTokensFile(*text);
  if (!parsed.ok()) return InvalidArgumentError(config_.tokens_file + ": " + parsed.status().message());
  tokens_ = std::move(*parsed);
  mtime_ns_ = mtime;
  size_ = st.st_size;
  return OkStatus();
}

StatusOr<Caller> Authorizer::Authenticate(std::string_view cert_user,
                                          const std::vector<std::string>& cert_groups,
                                          std::string_view authorization) {
  Caller c;
  if (!cert_user.empty()) {
    c.user = std::string(cert_user);
    c.groups = cert_groups;
    c.method = "tls";
  } else if (!authorization.empty()) {
    constexpr std::string_view kBearer = "Bearer ";
    if (authorization.size() <= kBearer.size() ||
        ::strncasecmp(authorization.data(), kBearer.data(), kBearer.size()) != 0)
      return UnauthenticatedError("only Bearer tokens are accepted in Authorization");
    std::string_view token = authorization.substr(kBearer.size());
    while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
    while (!token.empty() && token.back() == ' ') token.remove_suffix(1);
    if (config_.tokens_file.empty()) return UnauthenticatedError("this server accepts no bearer tokens");
    const std::string hash = HexEncode(HashBytes(Sha256(token)));
    std::lock_guard lock(mu_);
    Status s = MaybeReload(/*force=*/false);
    if (!s.ok()) std::fprintf(stderr, "annals: tokens not reloaded: %s\n", s.message().c_str());
    auto it = tokens_.find(hash);
    if (it == tokens_.end()) return UnauthenticatedError("unknown bearer token");
    c.user = it->second.user;
    c.groups = it->second.groups;
    c.method = "token";
  } else {
    c.method = "anonymous";
  }
  c.perms = Resolve(config_, c.user, c.groups, c.authenticated());
  return c;
}

}  // namespace annals::auth
