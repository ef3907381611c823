#include "json/json_scan.h"
#include "json/json_parse.h"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace annals::json_util {
namespace {

TEST(RawMemberValue, GivesEachKindOfValueAsWritten) {
  const std::string ev =
      R"({ "responseObject" : {"kind":"Pod","a":[{"x":"]}"}]} , "n": -1.5e3 ,"nil":null,)"
      R"("note":"{\"responseObject\":1}", "arr" : [1, [2], {"3":4}] ,"last":true })";
  EXPECT_EQ(RawMemberValue(ev, "responseObject"), R"({"kind":"Pod","a":[{"x":"]}"}]})");
  EXPECT_EQ(RawMemberValue(ev, "n"), "-1.5e3");
  EXPECT_EQ(RawMemberValue(ev, "nil"), "null");
  EXPECT_EQ(RawMemberValue(ev, "note"), R"("{\"responseObject\":1}")");
  EXPECT_EQ(RawMemberValue(ev, "arr"), R"([1, [2], {"3":4}])");
  EXPECT_EQ(RawMemberValue(ev, "last"), "true");
  EXPECT_EQ(RawMemberValue(ev, "kind"), "");  // nested only
  EXPECT_EQ(RawMemberValue(ev, "missing"), "");
  EXPECT_EQ(RawMemberValue("[]", "x"), "");
  EXPECT_EQ(RawMemberValue("{}", "x"), "");
  EXPECT_EQ(RawMemberValue("", "x"), "");
}

TEST(RawMemberValue, ViewsPointIntoTheCallersText) {
  const std::string ev = R"({"a":1,"object":{"k":"v"}})";
  std::string_view v = RawMemberValue(ev, "object");
  ASSERT_EQ(v, R"({"k":"v"})");
  EXPECT_GE(v.data(), ev.data());
  EXPECT_LE(v.data() + v.size(), ev.data() + ev.size());
}

TEST(RawMemberValue, ComparesNamesDecoded) {
  // simdjson's DOM finds "items" under an escaped name too; so must this,
  // or the raw extents would belong to another member than the parsed one.
  EXPECT_EQ(RawMemberValue(R"({"it\u0065ms":[1],"x":2})", "items"), "[1]");
  EXPECT_EQ(RawMemberValue(R"({"a\"b":3})", "a\"b"), "3");
}

TEST(RawMemberValue, TheFirstOfARepeatedNameCounts) {
  EXPECT_EQ(RawMemberValue(R"({"k":1,"k":2})", "k"), "1");
}

TEST(RawArrayMember, GivesEveryElementExactly) {
  const std::string body = "{\"kind\":\"EventList\",\"items\": [ {\"a\":\"}\"} ,\n{\"b\":[1,2]},null, \"s\" ,7 ] }";
  auto r = RawArrayMember(body, "items");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), 5u);
  EXPECT_EQ((*r)[0], R"({"a":"}"})");
  EXPECT_EQ((*r)[1], R"({"b":[1,2]})");
  EXPECT_EQ((*r)[2], "null");
  EXPECT_EQ((*r)[3], "\"s\"");
  EXPECT_EQ((*r)[4], "7");
  auto empty = RawArrayMember(R"({"items":[]})", "items");
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
}

TEST(RawArrayElements, GivesEveryElementOfATopLevelArray) {
  std::string body = "[ {\"a\":\"]\"} ,\n[1,[2]], \"s\" ,7 ]";
  auto r = RawArrayElements(body);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), 4u);
  EXPECT_EQ((*r)[0], R"({"a":"]"})");
  EXPECT_EQ((*r)[1], "[1,[2]]");
  EXPECT_EQ((*r)[2], "\"s\"");
  EXPECT_EQ((*r)[3], "7");
  body.reserve(body.size() + kJsonPadding);
  auto in_place = RawArrayElements(body, body.capacity());
  ASSERT_TRUE(in_place.ok());
  EXPECT_EQ((*in_place)[1].data(), body.data() + body.find("[1"));
  EXPECT_FALSE(RawArrayElements(R"({"a":[]})").ok());
  EXPECT_FALSE(RawArrayElements("[1,").ok());
}

TEST(RawArrayMember, ParsesAPaddedBufferInPlace) {
  std::string body = R"({"kind":"EventList","items":[{"a":1}, {"b":"]"} ,null]})";
  body.reserve(body.size() + kJsonPadding);  // before any view into it is taken
  const auto copied = RawArrayMember(body, "items");
  const auto in_place = RawArrayMember(body, "items", body.capacity());
  ASSERT_TRUE(copied.ok() && in_place.ok());
  ASSERT_EQ(*in_place, *copied);
  for (std::string_view item : *in_place) {
    EXPECT_GE(item.data(), body.data());
    EXPECT_LE(item.data() + item.size(), body.data() + body.size());
  }
  // Too little room: copied, same answer.
  EXPECT_EQ(RawArrayMember(body, "items", body.size() + 1).value(), *copied);
}

TEST(RawArrayMember, SaysWhatIsMissingOrWrong) {
  EXPECT_EQ(RawArrayMember(R"({"other":[]})", "items").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(RawArrayMember(R"({"items":{}})", "items").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(RawArrayMember(R"([1,2])", "items").status().code(), StatusCode::kNotFound);
}

// Every list of the corpus's Kubernetes objects: each extent, parsed, is
// the element the DOM sees at that place.
TEST(RawArrayMember, MatchesTheDomOnEveryCorpusList) {
  size_t lists = 0, items = 0;
  simdjson::dom::parser whole, one;
  for (const auto& e : std::filesystem::recursive_directory_iterator(std::string(ANNALS_CORPUS_DIR) + "/k8s-objects")) {
    if (e.path().extension() != ".json") continue;
    std::ifstream in(e.path());
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string text = ss.str();
    simdjson::dom::element doc;
    simdjson::dom::array arr;
    if (whole.parse(text).get(doc) != simdjson::SUCCESS || doc["items"].get_array().get(arr) != simdjson::SUCCESS)
      continue;
    auto r = RawArrayMember(text, "items");
    ASSERT_TRUE(r.ok()) << e.path() << ": " << r.status().ToString();
    ASSERT_EQ(r->size(), arr.size()) << e.path();
    ++lists;
    size_t k = 0;
    for (simdjson::dom::element want : arr) {
      simdjson::dom::element got;
      ASSERT_EQ(one.parse(std::string((*r)[k])).get(got), simdjson::SUCCESS) << e.path() << " item " << k;
      EXPECT_EQ(simdjson::minify(got), simdjson::minify(want)) << e.path() << " item " << k;
      ++k;
      ++items;
    }
  }
  EXPECT_GE(lists, 5u);
  EXPECT_GT(items, 20u);
}

}  // namespace
}  // namespace annals::json_util
