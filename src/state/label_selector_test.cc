#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "state/questions.h"

namespace annals::state {
namespace {

using nlohmann::json;

bool Selects(const std::string& selector, const json& labels) {
  auto s = LabelSelector::Parse(selector);
  EXPECT_TRUE(s.ok()) << selector << ": " << s.status().message();
  return s.ok() && s->Matches(labels);
}

TEST(LabelSelector, TheFormsKubectlTakes) {
  const json labels = {{"app", "web"}, {"tier", "front"}, {"app.kubernetes.io/name", "shop"}};
  EXPECT_TRUE(Selects("", labels));
  EXPECT_TRUE(Selects("app=web", labels));
  EXPECT_TRUE(Selects("app==web", labels));
  EXPECT_TRUE(Selects(" app = web , tier!=back ", labels));
  EXPECT_FALSE(Selects("app!=web", labels));
  EXPECT_TRUE(Selects("tier", labels));
  EXPECT_FALSE(Selects("!tier", labels));
  EXPECT_TRUE(Selects("!missing", labels));
  EXPECT_TRUE(Selects("app in (db, web)", labels));
  EXPECT_FALSE(Selects("app in (db)", labels));
  EXPECT_TRUE(Selects("app notin (db)", labels));
  EXPECT_FALSE(Selects("app notin (db,web)", labels));
  EXPECT_TRUE(Selects("missing notin (x)", labels));  // as Kubernetes: absent is not in
  EXPECT_FALSE(Selects("missing in (x)", labels));
  EXPECT_TRUE(Selects("app.kubernetes.io/name=shop,app in (web),tier", labels));
  EXPECT_TRUE(Selects("gone=", json{{"gone", ""}}));
}

TEST(LabelSelector, MalformedSelectorsAreRefusedSayingWhy) {
  for (const char* bad : {"((", "a in (b", "a=b=c", "a in b", "a in (b,)x", "a notin", ",", "a=b,", ",a=b",
                          "a b", "a=(b)", "-a=b", "a=b c", "a/=b", "/a=b", "A.Example/b=c", "a=b!", "!a=b",
                          "a=-b", "a in (b c)"}) {
    auto s = LabelSelector::Parse(bad);
    EXPECT_FALSE(s.ok()) << "accepted: " << bad;
    if (!s.ok()) {
      EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument);
      EXPECT_NE(s.status().message().find("bad label selector"), std::string::npos) << s.status().message();
    }
  }
  // Over 63 characters.
  EXPECT_FALSE(LabelSelector::Parse("a=" + std::string(64, 'v')).ok());
  EXPECT_TRUE(LabelSelector::Parse("a=" + std::string(63, 'v')).ok());
}

}  // namespace
}  // namespace annals::state
