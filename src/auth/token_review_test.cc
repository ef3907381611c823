#include "auth/token_review.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <fstream>
#include <future>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "auth/authorizer.h"
#include "common/bytes.h"
#include "common/sha256.h"

namespace annals::auth {
namespace {

using nlohmann::json;

// What kube-apiserver answers for a pod's projected ServiceAccount token
// (the shape of a v1.29 answer; uid and extra as the API server fills them).
const char kServiceAccountAnswer[] = R"({"kind":"TokenReview","apiVersion":"authentication.k8s.io/v1",
  "metadata":{"creationTimestamp":null},"spec":{"token":"eyJhbGciOiJSUzI1NiJ9.e30.c2ln"},
  "status":{"authenticated":true,"user":{"username":"system:serviceaccount:team-a:dashboard",
  "uid":"9f3c2a1e-7b4d-4c8e-a1f0-2d3e4f5a6b7c","groups":["system:serviceaccounts",
  "system:serviceaccounts:team-a","system:authenticated"],"extra":{
  "authentication.kubernetes.io/pod-name":["dashboard-7d9f8"],
  "authentication.kubernetes.io/pod-uid":["1c2d3e4f-0000-4000-8000-0a0b0c0d0e0f"]}},
  "audiences":["https://kubernetes.default.svc.cluster.local"]}})";

// ... and for a token it does not know: no "authenticated", an error.
const char kRejectedAnswer[] = R"({"kind":"TokenReview","apiVersion":"authentication.k8s.io/v1",
  "metadata":{"creationTimestamp":null},"spec":{"token":"bogus"},
  "status":{"user":{},"error":"[invalid bearer token, token lookup failed]"}})";

TEST(TokenReviewRequest, CarriesTheTokenAndAudiences) {
  json j = json::parse(TokenReviewRequest("tok\"en", {}));
  EXPECT_EQ(j["apiVersion"], "authentication.k8s.io/v1");
  EXPECT_EQ(j["kind"], "TokenReview");
  EXPECT_EQ(j["spec"]["token"], "tok\"en");
  EXPECT_FALSE(j["spec"].contains("audiences"));
  j = json::parse(TokenReviewRequest("t", {"annals", "other"}));
  EXPECT_EQ(j["spec"]["audiences"], json::array({"annals", "other"}));
}

TEST(ParseTokenReview, ServiceAccountAnswerGivesUserAndGroups) {
  auto r = ParseTokenReview(kServiceAccountAnswer, {});
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_TRUE(r->authenticated);
  EXPECT_EQ(r->identity.user, "system:serviceaccount:team-a:dashboard");
  EXPECT_EQ(r->identity.groups, (std::vector<std::string>{"system:serviceaccounts", "system:serviceaccounts:team-a",
                                                          "system:authenticated"}));
}

TEST(ParseTokenReview, RejectedAnswerIsNotAuthenticatedAndKeepsTheError) {
  auto r = ParseTokenReview(kRejectedAnswer, {});
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_FALSE(r->authenticated);
  EXPECT_TRUE(r->identity.user.empty());
  EXPECT_EQ(r->error, "[invalid bearer token, token lookup failed]");
  r = ParseTokenReview(R"({"kind":"TokenReview","apiVersion":"authentication.k8s.io/v1",
      "status":{"authenticated":false,"user":{"username":"someone"}}})", {});
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->authenticated);
  EXPECT_TRUE(r->identity.user.empty()) << "a refused token names nobody";
}

TEST(ParseTokenReview, MalformedAnswersAreErrorsNamingWhatIsWrong) {
  const std::string head = R"({"kind":"TokenReview","apiVersion":"authentication.k8s.io/v1",)";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "not a JSON object"},
      {"{\"kind\":\"TokenReview\"", "not a JSON object"},
      {"[]", "not a JSON object"},
      {"\"TokenReview\"", "not a JSON object"},
      {R"({"kind":"Status","apiVersion":"v1","status":"Failure","code":500})", "not a authentication.k8s.io/v1 TokenReview"},
      {R"({"kind":"TokenReview","apiVersion":"authentication.k8s.io/v1beta1","status":{}})", "apiVersion"},
      {R"({"status":{"authenticated":true}})", "TokenReview"},
      {R"({"kind":7,"apiVersion":"authentication.k8s.io/v1","status":{}})", "kind is not a string"},
      {head + "\"spec\":{}}", "no status"},
      {head + "\"status\":[]}", "no status"},
      {head + R"("status":{"authenticated":"true","user":{"username":"u"}}})", "status.authenticated is not a boolean"},
      {head + R"("status":{"authenticated":1}})", "status.authenticated is not a boolean"},
      {head + R"("status":{"authenticated":true}})", "no status.user"},
      {head + R"("status":{"authenticated":true,"user":"u"}})", "no status.user"},
      {head + R"("status":{"authenticated":true,"user":{}}})", "no status.user.username"},
      {head + R"("status":{"authenticated":true,"user":{"username":""}}})", "no status.user.username"},
      {head + R"("status":{"authenticated":true,"user":{"username":42}}})", "status.user.username is not a string"},
      {head + R"("status":{"authenticated":true,"user":{"username":"u","groups":"g"}}})", "status.user.groups is not a list"},
      {head + R"("status":{"authenticated":true,"user":{"username":"u","groups":["g",1]}}})", "status.user.groups holds a non-string"},
      {head + R"("status":{"error":{"reason":"x"}}})", "status.error is not a string"},
  };
  for (const auto& [body, want] : cases) {
    auto r = ParseTokenReview(body, {});
    ASSERT_FALSE(r.ok()) << body;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << body;
    EXPECT_NE(r.status().message().find(want), std::string::npos) << body << " -> " << r.status().message();
  }
}

TEST(ParseTokenReview, MissingOptionalFieldsAreFine) {
  const std::string head = R"({"kind":"TokenReview","apiVersion":"authentication.k8s.io/v1",)";
  auto r = ParseTokenReview(head + R"("status":{}})", {});
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->authenticated);
  r = ParseTokenReview(head + R"("status":{"authenticated":null,"error":null}})", {});
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->authenticated);
  r = ParseTokenReview(head + R"("status":{"authenticated":true,"user":{"username":"u","groups":null}}})", {});
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->authenticated);
  EXPECT_TRUE(r->identity.groups.empty());
  r = ParseTokenReview(head + R"("status":{"authenticated":true,"user":{"username":"u","groups":["","g"]}}})", {});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->identity.groups, std::vector<std::string>{"g"});
}

TEST(ParseTokenReview, WithAudiencesTheAnswerMustNameOne) {
  // The API server's own audience, not ours: a token meant for the API
  // server (or anyone else) is not accepted here.
  auto r = ParseTokenReview(kServiceAccountAnswer, {"annals"});
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->authenticated);
  EXPECT_TRUE(r->identity.user.empty());
  EXPECT_NE(r->error.find("audiences"), std::string::npos);
  json j = json::parse(kServiceAccountAnswer);
  j["status"].erase("audiences");  // an audience-unaware reviewer
  r = ParseTokenReview(j.dump(), {"annals"});
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->authenticated);
  j["status"]["audiences"] = {"other", "annals"};
  r = ParseTokenReview(j.dump(), {"annals", "annals.audit.svc"});
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->authenticated);
  EXPECT_EQ(r->identity.user, "system:serviceaccount:team-a:dashboard");
  j["status"]["audiences"] = "annals";
  EXPECT_FALSE(ParseTokenReview(j.dump(), {"annals"}).ok());
}

// ---------------------------------------------------------------------------

using Clock = TokenReviewCache::Clock;

TokenReview Accepted(const std::string& user) {
  TokenReview r;
  r.authenticated = true;
  r.identity.user = user;
  return r;
}
TokenReview Rejected() { return TokenReview{}; }
std::string Key(std::string_view token) { return std::string(HashBytes(Sha256(token))); }

TEST(TokenReviewCache, AcceptedAnswersLastTwoMinutesRejectedTenSeconds) {
  TokenReviewCache c({});
  const Clock::time_point t0{};
  c.Insert(Key("good"), Accepted("u"), t0);
  c.Insert(Key("bad"), Rejected(), t0);
  EXPECT_TRUE(c.Lookup(Key("good"), t0 + std::chrono::seconds(119)).has_value());
  EXPECT_TRUE(c.Lookup(Key("bad"), t0 + std::chrono::seconds(9)).has_value());
  EXPECT_FALSE(c.Lookup(Key("bad"), t0 + std::chrono::seconds(10)).has_value());
  EXPECT_EQ(c.Lookup(Key("good"), t0 + std::chrono::seconds(60))->identity.user, "u");
  EXPECT_FALSE(c.Lookup(Key("good"), t0 + std::chrono::seconds(120)).has_value());
  EXPECT_EQ(c.size(), 0u);  // expired entries are dropped when seen
}

TEST(TokenReviewCache, BoundedAndEvictsWhatExpiresFirst) {
  TokenReviewCache c({.max_entries = 3});
  const Clock::time_point t0{};
  c.Insert(Key("a"), Accepted("a"), t0);
  c.Insert(Key("r"), Rejected(), t0);
  c.Insert(Key("b"), Accepted("b"), t0);
  c.Insert(Key("c"), Accepted("c"), t0 + std::chrono::seconds(1));
  EXPECT_EQ(c.size(), 3u);
  EXPECT_FALSE(c.Lookup(Key("r"), t0).has_value()) << "the refused token expires first";
  EXPECT_TRUE(c.Lookup(Key("a"), t0).has_value());
  c.Insert(Key("d"), Accepted("d"), t0 + std::chrono::seconds(2));
  EXPECT_EQ(c.size(), 3u);
  // Expired ones go before any live one.
  c.Insert(Key("e"), Accepted("e"), t0 + std::chrono::minutes(3));
  EXPECT_EQ(c.size(), 1u);
  EXPECT_TRUE(c.Lookup(Key("e"), t0 + std::chrono::minutes(3)).has_value());
  // Re-inserting a cached token replaces it, without evicting anyone.
  TokenReviewCache d({.max_entries = 1});
  d.Insert(Key("x"), Rejected(), t0);
  d.Insert(Key("x"), Accepted("x"), t0);
  EXPECT_TRUE(d.Lookup(Key("x"), t0)->authenticated);
}

TEST(TokenReviewCache, KeysAreHashesNotTokens) {
  TokenReviewCache c({});
  c.Insert(Key("secret-token"), Accepted("u"), Clock::time_point{});
  EXPECT_FALSE(c.Lookup("secret-token", Clock::time_point{}).has_value());
  EXPECT_TRUE(c.Lookup(Key("secret-token"), Clock::time_point{}).has_value());
}

// ---------------------------------------------------------------------------
// The Authorizer with a scripted reviewer.

class ReviewedAuthorizer : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/annals_tr_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    const std::string tokens = dir_ + "/tokens";
    std::ofstream(tokens) << HexEncode(HashBytes(Sha256("file-token"))) << " carol auditors\n";
    auto cfg = ParseAuthConfig(R"({"anonymous":["verify"],"groups":{
        "auditors":["read"],
        "system:serviceaccounts:team-a":{"roles":["read"],"namespaces":["team-a"]}},
        "users":{"system:serviceaccount:ops:ingester":["ingest"]}})");
    ASSERT_TRUE(cfg.ok()) << cfg.status().message();
    auto a = Authorizer::Create(*cfg, tokens);
    ASSERT_TRUE(a.ok()) << a.status().message();
    authz_ = std::move(*a);
  }
  void TearDown() override {
    authz_.reset();
    std::string cmd = "rm -rf " + dir_;
    (void)std::system(cmd.c_str());
  }
  void Enable(TokenReviewOptions o = {}) {
    o.now = [this] { return now_; };
    authz_->EnableTokenReview(
        [this](std::string_view token) -> StatusOr<TokenReview> {
          calls_++;
          if (down_) return UnavailableError("connection refused");
          TokenReview r;
          if (token == "sa-team-a") {
            r.authenticated = true;
            r.identity = {"system:serviceaccount:team-a:dashboard",
                          {"system:serviceaccounts", "system:serviceaccounts:team-a", "system:authenticated"}};
          } else if (token == "sa-ops") {
            r.authenticated = true;
            r.identity = {"system:serviceaccount:ops:ingester", {"system:serviceaccounts"}};
          } else {
            r.error = "invalid bearer token";
          }
          return r;
        },
        std::move(o));
  }
  StatusOr<Caller> Auth(const std::string& token) { return authz_->Authenticate("", {}, "Bearer " + token); }

  std::string dir_;
  std::unique_ptr<Authorizer> authz_;
  std::atomic<int> calls_{0};
  bool down_ = false;
  Clock::time_point now_{std::chrono::hours(1)};
};

TEST_F(ReviewedAuthorizer, ServiceAccountGetsItsGroupBindings) {
  Enable();
  auto c = Auth("sa-team-a");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->user, "system:serviceaccount:team-a:dashboard");
  EXPECT_EQ(c->method, "tokenreview");
  EXPECT_TRUE(c->authenticated());
  EXPECT_TRUE(c->perms.Has(kRead));
  EXPECT_TRUE(c->perms.Limited());
  EXPECT_TRUE(c->perms.MayReadNamespace("team-a"));
  EXPECT_FALSE(c->perms.MayReadNamespace("team-b"));
  EXPECT_FALSE(c->perms.Has(kIngest));
  auto ops = Auth("sa-ops");  // a users binding by the ServiceAccount's name
  ASSERT_TRUE(ops.ok());
  EXPECT_TRUE(ops->perms.Has(kIngest));
  EXPECT_FALSE(ops->perms.Has(kRead));
}

TEST_F(ReviewedAuthorizer, TokensFileComesFirstAndCertificatesNeedNoReview) {
  Enable();
  auto c = Auth("file-token");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->user, "carol");
  EXPECT_EQ(c->method, "token");
  auto tls = authz_->Authenticate("kube-apiserver", {"g"}, "Bearer sa-team-a");
  ASSERT_TRUE(tls.ok());
  EXPECT_EQ(tls->method, "tls");
  EXPECT_TRUE(authz_->Authenticate("", {}, "").ok());
  EXPECT_EQ(calls_, 0);
}

TEST_F(ReviewedAuthorizer, AnswersAreCachedForTheirTtl) {
  Enable();
  ASSERT_TRUE(Auth("sa-team-a").ok());
  ASSERT_TRUE(Auth("sa-team-a").ok());
  EXPECT_EQ(calls_, 1);
  EXPECT_EQ(Auth("unknown").status().code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(Auth("unknown").status().code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(calls_, 2);
  now_ += std::chrono::seconds(11);  // the refusal is forgotten, the acceptance not
  EXPECT_FALSE(Auth("unknown").ok());
  EXPECT_TRUE(Auth("sa-team-a").ok());
  EXPECT_EQ(calls_, 3);
  now_ += std::chrono::minutes(2);
  EXPECT_TRUE(Auth("sa-team-a").ok());
  EXPECT_EQ(calls_, 4);
}

TEST_F(ReviewedAuthorizer, RejectedTokenIs401WithTheReason) {
  Enable();
  auto c = Auth("unknown");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kUnauthenticated);
  EXPECT_NE(c.status().message().find("invalid bearer token"), std::string::npos) << c.status().message();
}

TEST_F(ReviewedAuthorizer, ApiServerDownFailsClosedAndIsNotCached) {
  Enable();
  down_ = true;
  auto c = Auth("sa-team-a");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kUnauthenticated);
  EXPECT_NE(c.status().message().find("did not answer"), std::string::npos) << c.status().message();
  EXPECT_FALSE(Auth("sa-team-a").ok());
  EXPECT_EQ(calls_, 2);
  down_ = false;
  EXPECT_TRUE(Auth("sa-team-a").ok());
  EXPECT_EQ(calls_, 3);
}

TEST_F(ReviewedAuthorizer, WithoutReviewUnknownTokensAreRefusedLocally) {
  auto c = Auth("sa-team-a");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().message(), "unknown bearer token");
}

TEST_F(ReviewedAuthorizer, AsyncReviewsRunOffTheCallingThreadAndCacheHitsDoNot) {
  Enable();
  auto ask = [&](const std::string& token) {
    std::promise<std::pair<std::thread::id, StatusOr<Caller>>> p;
    authz_->AuthenticateAsync("", {}, "Bearer " + token, [&p](StatusOr<Caller> c) {
      p.set_value({std::this_thread::get_id(), std::move(c)});
    });
    return p.get_future().get();
  };
  auto [t1, c1] = ask("sa-team-a");
  ASSERT_TRUE(c1.ok());
  EXPECT_NE(t1, std::this_thread::get_id()) << "a review must not run on the listener's thread";
  auto [t2, c2] = ask("sa-team-a");
  ASSERT_TRUE(c2.ok());
  EXPECT_EQ(t2, std::this_thread::get_id()) << "a cached answer needs no thread";
  auto [t3, c3] = ask("file-token");
  EXPECT_EQ(t3, std::this_thread::get_id());
  EXPECT_EQ(c3->user, "carol");
  EXPECT_EQ(calls_, 1);
}

TEST_F(ReviewedAuthorizer, TooManyWaitingReviewsAreRefusedAndStopRefusesTheRest) {
  std::mutex mu;
  std::condition_variable cv;
  bool release = false;
  std::atomic<int> reviewing{0};
  TokenReviewOptions o;
  o.threads = 1;
  o.max_queued = 2;
  authz_->EnableTokenReview(
      [&](std::string_view) -> StatusOr<TokenReview> {
        reviewing++;
        std::unique_lock lock(mu);
        cv.wait(lock, [&] { return release; });
        return Accepted("u");
      },
      std::move(o));
  std::mutex rmu;
  std::vector<StatusOr<Caller>> results;
  auto done = [&](StatusOr<Caller> c) {
    std::lock_guard lock(rmu);
    results.push_back(std::move(c));
  };
  authz_->AuthenticateAsync("", {}, "Bearer t0", done);  // taken by the one thread
  while (reviewing == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  authz_->AuthenticateAsync("", {}, "Bearer t1", done);  // waits
  authz_->AuthenticateAsync("", {}, "Bearer t2", done);  // waits
  authz_->AuthenticateAsync("", {}, "Bearer t3", done);  // one too many
  {
    std::lock_guard lock(rmu);
    ASSERT_EQ(results.size(), 1u);
    EXPECT_EQ(results[0].status().code(), StatusCode::kUnauthenticated);
    EXPECT_NE(results[0].status().message().find("too many"), std::string::npos);
  }
  std::thread stopper([&] { authz_->Stop(); });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  {
    std::lock_guard lock(mu);
    release = true;
  }
  cv.notify_all();
  stopper.join();
  ASSERT_EQ(results.size(), 4u);
  int ok = 0;
  for (const auto& r : results) ok += r.ok();
  EXPECT_EQ(ok, 1) << "the review in flight is answered; the waiting ones are refused";
  EXPECT_EQ(reviewing, 1);
  std::optional<StatusOr<Caller>> after;
  authz_->AuthenticateAsync("", {}, "Bearer t9", [&](StatusOr<Caller> c) { after = std::move(c); });
  ASSERT_TRUE(after.has_value());
  EXPECT_FALSE(after->ok());
}

}  // namespace
}  // namespace annals::auth
