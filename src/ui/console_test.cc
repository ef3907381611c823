#include "ui/console.h"

#include <gtest/gtest.h>

#include <regex>
#include <set>
#include <string>

namespace annals::ui {
namespace {

TEST(ConsoleTest, TheAssetsAreSortedSoLookupsFindEveryOne) {
  auto assets = Assets();
  ASSERT_GT(assets.size(), 5u);
  for (size_t i = 1; i < assets.size(); ++i) EXPECT_LT(assets[i - 1].path, assets[i].path);
  for (const Asset& a : assets) {
    const Asset* found = FindAsset(a.path);
    ASSERT_NE(found, nullptr) << a.path;
    EXPECT_EQ(found->body.size(), a.body.size());
    EXPECT_EQ(a.etag.size(), 66u) << a.path;  // a quoted SHA-256 in hex
  }
  EXPECT_EQ(FindAsset("nope.js"), nullptr);
  EXPECT_EQ(FindAsset(""), nullptr);
  EXPECT_EQ(FindAsset("../index.html"), nullptr);
}

TEST(ConsoleTest, ContentTypesFollowTheExtension) {
  EXPECT_EQ(FindAsset("index.html")->content_type, "text/html; charset=utf-8");
  EXPECT_EQ(FindAsset("app.js")->content_type, "text/javascript; charset=utf-8");
  EXPECT_EQ(FindAsset("console.css")->content_type, "text/css; charset=utf-8");
}

TEST(ConsoleTest, ThePageNamesTheVerifierKeyEscaped) {
  std::string page = RenderPage("annals.local/log+e7b5958b+AY5xzKaJ");
  EXPECT_NE(page.find("<meta name=\"annals-vkey\" content=\"annals.local/log+e7b5958b+AY5xzKaJ\">"), std::string::npos);
  EXPECT_EQ(page.find("{{ANNALS_VKEY}}"), std::string::npos);
  std::string hostile = RenderPage("x\"><script>alert(1)</script>");
  EXPECT_EQ(hostile.find("<script>alert"), std::string::npos);
  EXPECT_NE(hostile.find("x&quot;&gt;&lt;script&gt;"), std::string::npos);
}

// Every module a script imports and every file the page links is embedded:
// a missing one would only show as a blank page in a browser.
TEST(ConsoleTest, EveryImportAndLinkResolvesToAnEmbeddedFile) {
  const std::regex import_re(R"(from '(\.\.?/[^']+)')");
  size_t imports = 0;
  for (const Asset& a : Assets()) {
    if (!a.path.ends_with(".js")) continue;
    std::string body(a.body);
    const std::string dir = a.path.find('/') == std::string_view::npos
                                ? ""
                                : std::string(a.path.substr(0, a.path.rfind('/') + 1));
    for (auto it = std::sregex_iterator(body.begin(), body.end(), import_re); it != std::sregex_iterator(); ++it) {
      std::string rel = (*it)[1];
      std::string path = dir + rel;
      // Resolve ./ and ../ against the importing file's folder.
      std::string out;
      for (size_t pos = 0; pos < path.size();) {
        size_t slash = path.find('/', pos);
        std::string seg = path.substr(pos, slash == std::string::npos ? std::string::npos : slash - pos);
        pos = slash == std::string::npos ? path.size() : slash + 1;
        if (seg == ".") continue;
        if (seg == "..") {
          size_t cut = out.rfind('/', out.size() >= 2 ? out.size() - 2 : 0);
          out = cut == std::string::npos ? "" : out.substr(0, cut + 1);
          continue;
        }
        out += seg + (slash == std::string::npos ? "" : "/");
      }
      EXPECT_NE(FindAsset(out), nullptr) << a.path << " imports " << rel << " (" << out << ")";
      ++imports;
    }
  }
  EXPECT_GT(imports, 10u);
  std::string page = RenderPage("k");
  const std::regex link_re(R"re((?:src|href)="/ui/assets/([^"]+)")re");
  size_t links = 0;
  for (auto it = std::sregex_iterator(page.begin(), page.end(), link_re); it != std::sregex_iterator(); ++it, ++links)
    EXPECT_NE(FindAsset((*it)[1].str()), nullptr) << (*it)[1];
  EXPECT_EQ(links, 2u);
}

TEST(ConsoleTest, SecurityHeadersConfineThePageToItsOwnOrigin) {
  std::set<std::string> names;
  for (const auto& [name, value] : SecurityHeaders()) {
    names.insert(std::string(name));
    if (name == "Content-Security-Policy") {
      EXPECT_NE(value.find("script-src 'self'"), std::string_view::npos);
      EXPECT_NE(value.find("connect-src 'self'"), std::string_view::npos);
      EXPECT_EQ(value.find("unsafe-inline"), std::string_view::npos);
    }
  }
  EXPECT_TRUE(names.count("Content-Security-Policy"));
  EXPECT_TRUE(names.count("X-Content-Type-Options"));
}

}  // namespace
}  // namespace annals::ui
