#include "auth/authorizer.h"
#include "common/log.h"

#include <strings.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>

#include "common/bytes.h"
#include "common/file_util.h"
#include "common/sha256.h"
#include "common/thread_util.h"

namespace annals::auth {

StatusOr<std::unique_ptr<Authorizer>> Authorizer::Create(AuthConfig config, std::string tokens_file) {
  if (!tokens_file.empty()) config.tokens_file = std::move(tokens_file);
  std::unique_ptr<Authorizer> a(new Authorizer(std::move(config)));
  if (!a->config_.tokens_file.empty()) {
    MutexLock lock(&a->mu_);
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

std::optional<StatusOr<Caller>> Authorizer::AuthenticateLocally(std::string_view cert_user,
                                                                const std::vector<std::string>& cert_groups,
                                                                std::string_view authorization,
                                                                std::string* review_token) {
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
    if (token.empty()) return UnauthenticatedError("empty bearer token");
    if (config_.tokens_file.empty() && !reviewer_)
      return UnauthenticatedError("this server accepts no bearer tokens");
    if (!config_.tokens_file.empty()) {
      const std::string hash = HexEncode(HashBytes(Sha256(token)));
      MutexLock lock(&mu_);
      Status s = MaybeReload(/*force=*/false);
      if (!s.ok()) log::Warning("tokens not reloaded: %s", s.message().c_str());
      if (auto it = tokens_.find(hash); it != tokens_.end()) {
        c.user = it->second.user;
        c.groups = it->second.groups;
        c.method = "token";
      }
    }
    if (c.method.empty()) {
      if (!reviewer_) return UnauthenticatedError("unknown bearer token");
      *review_token = std::string(token);
      return std::nullopt;
    }
  } else {
    c.method = "anonymous";
  }
  c.perms = Resolve(config_, c.user, c.groups, c.authenticated());
  return c;
}

StatusOr<Caller> Authorizer::Authenticate(std::string_view cert_user,
                                          const std::vector<std::string>& cert_groups,
                                          std::string_view authorization) {
  std::string token;
  auto local = AuthenticateLocally(cert_user, cert_groups, authorization, &token);
  if (local) return std::move(*local);
  return Review(token);
}

void Authorizer::AuthenticateAsync(std::string_view cert_user, const std::vector<std::string>& cert_groups,
                                   std::string_view authorization,
                                   std::function<void(StatusOr<Caller>)> done) {
  std::string token;
  auto local = AuthenticateLocally(cert_user, cert_groups, authorization, &token);
  if (local) return done(std::move(*local));
  // A cached answer needs no thread.
  if (auto hit = cache_->Lookup(HashBytes(Sha256(token)), review_options_.now())) {
    Count("cached");
    return done(FromReview(*hit));
  }
  Status refused;
  {
    MutexLock lock(&review_mu_);
    if (stopping_) {
      refused = UnauthenticatedError("the server is shutting down; bearer tokens are not reviewed");
    } else if (queue_.size() >= review_options_.max_queued) {
      refused = UnauthenticatedError(
          "too many bearer tokens are waiting for review by the Kubernetes API server; try again");
    } else {
      queue_.push_back({std::move(token), std::move(done)});
      review_cv_.NotifyOne();
      return;
    }
  }
  Count("overloaded");
  done(refused);
}

void Authorizer::EnableTokenReview(TokenReviewer reviewer, TokenReviewOptions options) {
  reviewer_ = std::move(reviewer);
  review_options_ = std::move(options);
  cache_ = std::make_unique<TokenReviewCache>(review_options_.cache);
  for (int i = 0; i < std::max(1, review_options_.threads); ++i)
    review_threads_.emplace_back([this] { ReviewLoop(); });
}

void Authorizer::ReviewLoop() {
  SetThreadName("annals-review");
  MutexLock lock(&review_mu_);
  for (;;) {
    while (!stopping_ && queue_.empty()) review_cv_.Wait(&lock);
    if (queue_.empty()) return;  // stopping
    Pending p = std::move(queue_.front());
    queue_.pop_front();
    const bool refuse = stopping_;
    lock.Unlock();
    if (refuse) p.done(UnauthenticatedError("the server is shutting down; bearer tokens are not reviewed"));
    else p.done(Review(p.token));  // answers the request on this thread (see AuthenticateAsync)
    lock.Lock();
  }
}

void Authorizer::Stop() {
  {
    MutexLock lock(&review_mu_);
    stopping_ = true;
  }
  review_cv_.NotifyAll();
  for (auto& t : review_threads_) t.join();
  review_threads_.clear();
}

Authorizer::~Authorizer() { Stop(); }

void Authorizer::Count(const char* result) {
  if (review_options_.metrics) review_options_.metrics->Add("annals_token_reviews_total", "result", result);
}

StatusOr<Caller> Authorizer::Review(const std::string& token) {
  const Hash key = Sha256(token);
  std::optional<TokenReview> review = cache_->Lookup(HashBytes(key), review_options_.now());
  if (review) {
    Count("cached");
  } else {
    StatusOr<TokenReview> r = reviewer_(token);
    if (!r.ok()) {
      // Fail closed, and do not remember: the next request asks again.
      Count("error");
      const auto now = review_options_.now();
      bool log = false;
      {
        MutexLock lock(&review_mu_);
        if (now - last_error_log_ >= std::chrono::seconds(5)) {
          last_error_log_ = now;
          log = true;
        }
      }
      if (log) log::Warning("TokenReview failed: %s", r.status().message().c_str());
      return UnauthenticatedError(
          "cannot verify this bearer token: the Kubernetes API server did not answer the TokenReview; "
          "try again later");
    }
    Count(r->authenticated ? "authenticated" : "rejected");
    cache_->Insert(HashBytes(key), *r, review_options_.now());
    review = std::move(*r);
  }
  return FromReview(*review);
}

StatusOr<Caller> Authorizer::FromReview(const TokenReview& review) const {
  if (!review.authenticated) {
    std::string why = "bearer token rejected by the Kubernetes API server (TokenReview)";
    if (!review.error.empty()) why += ": " + review.error.substr(0, 256);
    return UnauthenticatedError(std::move(why));
  }
  Caller c;
  c.user = review.identity.user;
  c.groups = review.identity.groups;
  c.method = "tokenreview";
  c.perms = Resolve(config_, c.user, c.groups, true);
  return c;
}

}  // namespace annals::auth
