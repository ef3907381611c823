#include "auth/token_review.h"

#include <algorithm>
#include <nlohmann/json.hpp>

namespace annals::auth {

using nlohmann::json;

namespace {

constexpr char kApiVersion[] = "authentication.k8s.io/v1";

// The strings of an optional list member; InvalidArgument if it is there
// but not a list of strings.
StatusOr<std::vector<std::string>> StringList(const json& obj, const char* key, const std::string& where) {
  std::vector<std::string> out;
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return out;
  if (!it->is_array()) return InvalidArgumentError(where + " is not a list");
  for (const auto& v : *it) {
    if (!v.is_string()) return InvalidArgumentError(where + " holds a non-string");
    out.push_back(v.get<std::string>());
  }
  return out;
}

// An optional string member ("" if absent or null).
StatusOr<std::string> OptString(const json& obj, const char* key, const std::string& where) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return std::string();
  if (!it->is_string()) return InvalidArgumentError(where + " is not a string");
  return it->get<std::string>();
}

}  // namespace

std::string TokenReviewRequest(std::string_view token, const std::vector<std::string>& audiences) {
  json spec{{"token", std::string(token)}};
  if (!audiences.empty()) spec["audiences"] = audiences;
  json j{{"apiVersion", kApiVersion}, {"kind", "TokenReview"}, {"spec", std::move(spec)}};
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

StatusOr<TokenReview> ParseTokenReview(std::string_view body, const std::vector<std::string>& audiences) {
  json j = json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return InvalidArgumentError("TokenReview answer is not a JSON object");
  ASSIGN_OR_RETURN(std::string kind, OptString(j, "kind", "kind"));
  ASSIGN_OR_RETURN(std::string api_version, OptString(j, "apiVersion", "apiVersion"));
  if (kind != "TokenReview" || api_version != kApiVersion)
    return InvalidArgumentError("answer is not a " + std::string(kApiVersion) + " TokenReview (kind \"" +
                                kind.substr(0, 64) + "\", apiVersion \"" + api_version.substr(0, 64) + "\")");
  auto st = j.find("status");
  if (st == j.end() || !st->is_object()) return InvalidArgumentError("TokenReview answer has no status");
  TokenReview r;
  ASSIGN_OR_RETURN(r.error, OptString(*st, "error", "status.error"));
  if (auto a = st->find("authenticated"); a != st->end() && !a->is_null()) {
    if (!a->is_boolean()) return InvalidArgumentError("status.authenticated is not a boolean");
    r.authenticated = a->get<bool>();
  }
  if (!r.authenticated) return r;

  auto user = st->find("user");
  if (user == st->end() || !user->is_object())
    return InvalidArgumentError("TokenReview says authenticated but has no status.user");
  ASSIGN_OR_RETURN(r.identity.user, OptString(*user, "username", "status.user.username"));
  if (r.identity.user.empty())
    return InvalidArgumentError("TokenReview says authenticated but has no status.user.username");
  ASSIGN_OR_RETURN(r.identity.groups, StringList(*user, "groups", "status.user.groups"));
  // An empty group would match nothing but is not a name either.
  std::erase(r.identity.groups, std::string());
  if (!audiences.empty()) {
    ASSIGN_OR_RETURN(std::vector<std::string> got, StringList(*st, "audiences", "status.audiences"));
    const bool ours = std::any_of(got.begin(), got.end(), [&](const std::string& a) {
      return std::find(audiences.begin(), audiences.end(), a) != audiences.end();
    });
    if (!ours) {
      r.authenticated = false;
      r.identity = {};
      r.error = "the token is not meant for this server (its audiences do not include the ones asked for)";
    }
  }
  return r;
}

std::optional<TokenReview> TokenReviewCache::Lookup(std::string_view token_sha256, Clock::time_point now) {
  MutexLock lock(&mu_);
  auto it = entries_.find(std::string(token_sha256));
  if (it == entries_.end()) return std::nullopt;
  if (it->second.expires <= now) {
    entries_.erase(it);
    return std::nullopt;
  }
  return it->second.review;
}

void TokenReviewCache::Insert(std::string_view token_sha256, TokenReview review, Clock::time_point now) {
  if (o_.max_entries == 0) return;
  const auto ttl = review.authenticated ? o_.authenticated_ttl : o_.rejected_ttl;
  MutexLock lock(&mu_);
  std::string key(token_sha256);
  if (!entries_.count(key) && entries_.size() >= o_.max_entries) {
    std::erase_if(entries_, [now](const auto& e) { return e.second.expires <= now; });
    // Still full: drop the entry closest to expiry. O(n), but only when full,
    // and cheaper than the TokenReview that follows a miss.
    if (entries_.size() >= o_.max_entries) {
      auto soonest = std::min_element(entries_.begin(), entries_.end(), [](const auto& a, const auto& b) {
        return a.second.expires < b.second.expires;
      });
      entries_.erase(soonest);
    }
  }
  entries_[std::move(key)] = Entry{std::move(review), now + ttl};
}

size_t TokenReviewCache::size() const {
  MutexLock lock(&mu_);
  return entries_.size();
}

}  // namespace annals::auth
