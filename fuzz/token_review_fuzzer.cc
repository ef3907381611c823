// Feeds arbitrary bytes to the TokenReview answer parser (the Kubernetes
// API server's answer is untrusted input to annals' authentication). It may
// not crash; what it accepts must hold up: an authenticated answer names a
// user and no empty group, a refused one names nobody, and with audiences
// asked for, an authenticated answer is one that was authenticated without
// them too. The request body built from any token is JSON.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string_view>

#include "auth/token_review.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  using namespace annals::auth;

  auto plain = ParseTokenReview(input, {});
  auto aud = ParseTokenReview(input, {"annals"});
  if (plain.ok() != aud.ok()) {
    // Only the audiences list is read in addition; a bad one fails the
    // audience-checked parse alone, and only of an authenticated answer.
    if (!plain.ok() || !plain->authenticated) std::abort();
  }
  for (const auto* r : {&plain, &aud}) {
    if (!r->ok()) continue;
    const TokenReview& t = **r;
    if (t.authenticated && t.identity.user.empty()) std::abort();
    if (!t.authenticated && (!t.identity.user.empty() || !t.identity.groups.empty())) std::abort();
    for (const auto& g : t.identity.groups)
      if (g.empty()) std::abort();
  }
  if (aud.ok() && aud->authenticated && !(plain.ok() && plain->authenticated)) std::abort();

  auto body = nlohmann::json::parse(TokenReviewRequest(input, {"annals"}), nullptr, false);
  if (body.is_discarded() || !body["spec"]["token"].is_string()) std::abort();
  return 0;
}
