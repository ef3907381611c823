#include "json/json_parse.h"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <string>

namespace annals::json_util {
namespace {

Status Check(const std::string& text) {
  simdjson::dom::element doc;
  auto err = JsonParser().parse(text.data(), text.size()).get(doc);
  if (err) return InvalidArgumentError(JsonErrorMessage(err));
  return CheckUniqueKeys(doc, "doc");
}

TEST(CheckUniqueKeys, AcceptsDistinctKeysAtEveryDepth) {
  EXPECT_TRUE(Check(R"({"a":1,"b":{"a":2,"b":[{"a":3},{"a":4}]},"c":[[{"x":1,"y":2}]]})").ok());
  EXPECT_TRUE(Check(R"([1,"a",{"a":1},[]])").ok());
  EXPECT_TRUE(Check(R"("just a string")").ok());
  // The same key in sibling objects is not a duplicate.
  EXPECT_TRUE(Check(R"([{"k":1},{"k":2}])").ok());
}

TEST(CheckUniqueKeys, RefusesARepeatedKeyAtAnyDepthNamingIt) {
  for (const std::string& doc : {
           std::string(R"({"verb":"create","user":{},"verb":"delete"})"),
           std::string(R"({"a":{"b":{"c":[{"d":1,"d":2}]}}})"),
           std::string(R"([[[{"x":1}],[{"y":1,"z":1,"y":2}]]])"),
           // Escapes name the same key.
           std::string(R"({"verb":"create","v\u0065rb":"delete"})"),
           std::string(R"({"":1,"":2})"),
       }) {
    SCOPED_TRACE(doc);
    Status s = Check(doc);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
    EXPECT_NE(s.message().find("more than once"), std::string::npos) << s.message();
  }
  Status s = Check(R"({"verb":"create","verb":"delete"})");
  EXPECT_NE(s.message().find("\"verb\""), std::string::npos) << s.message();
}

TEST(CheckUniqueKeys, KeysAlikeInLengthAndFirstBytesAreToldApart) {
  // The pairwise check compares each key's length and first six bytes
  // first: keys equal there must still be compared whole, at every size up
  // to the sorted path's.
  for (int n : {1, 16, 31}) {  // objects of 2, 17 and 32 keys
    SCOPED_TRACE(n);
    std::string doc = "{";
    for (int i = 0; i < n; ++i) doc += "\"prefix-" + std::string(1, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefgh"[i]) + "\":" + std::to_string(i) + ",";
    EXPECT_TRUE(Check(doc + "\"prefix\":0}").ok()) << doc;
    EXPECT_FALSE(Check(doc + "\"prefix-A\":0}").ok()) << doc;
  }
  // Keys longer than a word and alike for their first bytes.
  EXPECT_TRUE(Check(R"({"managedFieldsA":1,"managedFieldsB":2})").ok());
  EXPECT_FALSE(Check(R"({"managedFieldsA":1,"managedFieldsB":2,"managedFieldsA":3})").ok());
}

TEST(CheckUniqueKeys, LargeObjectsAreCheckedToo) {
  // Past the pairwise comparison's size: sorted.
  std::string doc = "{";
  for (int i = 0; i < 100; ++i) doc += "\"k" + std::to_string(i) + "\":" + std::to_string(i) + ",";
  EXPECT_TRUE(Check(doc + "\"last\":0}").ok());
  EXPECT_FALSE(Check(doc + "\"k57\":0}").ok());
}

}  // namespace
}  // namespace annals::json_util
