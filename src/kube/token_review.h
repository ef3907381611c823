// TokenReviewer: asks the Kubernetes API server who a bearer token belongs
// to — POST /apis/authentication.k8s.io/v1/tokenreviews — for the
// Authorizer (auth::Authorizer::EnableTokenReview, `annals serve
// --token-review`). It authenticates with its own KubeClient's credentials
// (the in-cluster ServiceAccount, or a kubeconfig), which need `create` on
// tokenreviews.authentication.k8s.io. No cache here: the Authorizer keeps
// one. docs/security.md.
//
// Thread-safe (the KubeClient is); owns the client.
#ifndef ANNALS_KUBE_TOKEN_REVIEW_H_
#define ANNALS_KUBE_TOKEN_REVIEW_H_

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "auth/token_review.h"
#include "common/status.h"
#include "kube/kube_client.h"

namespace annals::kube {

class TokenReviewer {
 public:
  // audiences: spec.audiences of every review (empty: the API server's
  // own). timeout: the whole exchange, connect included.
  TokenReviewer(std::unique_ptr<KubeClient> client, std::vector<std::string> audiences,
                std::chrono::milliseconds timeout)
      : client_(std::move(client)), audiences_(std::move(audiences)), timeout_(timeout) {}

  // The API server's verdict on `token`. Unavailable when there is none:
  // the API server cannot be reached, refuses annals (401/403: its RBAC),
  // answers another status, or answers something that is not a TokenReview.
  StatusOr<auth::TokenReview> Review(std::string_view token);
  // Fails the reviews in flight and all later ones (for stopping).
  void Abort() { client_->Abort(); }

 private:
  const std::unique_ptr<KubeClient> client_;
  const std::vector<std::string> audiences_;
  const std::chrono::milliseconds timeout_;
};

}  // namespace annals::kube

#endif  // ANNALS_KUBE_TOKEN_REVIEW_H_
