#include "kube/token_review.h"

namespace annals::kube {

StatusOr<auth::TokenReview> TokenReviewer::Review(std::string_view token) {
  const std::string what = std::string("TokenReview at ") + client_->config().server;
  auto res = client_->Post(auth::kTokenReviewPath, auth::TokenReviewRequest(token, audiences_),
                           "application/json", timeout_);
  if (!res.ok()) return UnavailableError(what + ": " + res.status().message());
  if (res->status == 401 || res->status == 403)
    return UnavailableError(what + ": the API server refused annals' own credentials (" +
                            StatusSummary(res->status, res->body) +
                            "); they need create on tokenreviews.authentication.k8s.io");
  // A create answers 201; some proxies and older servers 200.
  if (res->status != 201 && res->status != 200)
    return UnavailableError(what + ": " + StatusSummary(res->status, res->body));
  auto review = auth::ParseTokenReview(res->body, audiences_);
  if (!review.ok()) return UnavailableError(what + ": " + review.status().message());
  return review;
}

}  // namespace annals::kube
