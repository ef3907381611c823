#include "ui/console.h"

#include <algorithm>
#include <utility>

namespace annals::ui {

namespace {

constexpr std::string_view kVkeyPlaceholder = "{{ANNALS_VKEY}}";

std::string EscapeHtml(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

constexpr std::pair<std::string_view, std::string_view> kSecurityHeaders[] = {
    {"Content-Security-Policy",
     "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
     "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"},
    {"X-Content-Type-Options", "nosniff"},
    {"X-Frame-Options", "DENY"},
    {"Referrer-Policy", "no-referrer"},
};

}  // namespace

const Asset* FindAsset(std::string_view path) {
  auto assets = Assets();
  auto it = std::lower_bound(assets.begin(), assets.end(), path,
                             [](const Asset& a, std::string_view p) { return a.path < p; });
  return it != assets.end() && it->path == path ? &*it : nullptr;
}

std::string RenderPage(std::string_view verifier_key) {
  const Asset* index = FindAsset("index.html");
  if (!index) return {};
  std::string page(index->body);
  if (auto pos = page.find(kVkeyPlaceholder); pos != std::string::npos)
    page.replace(pos, kVkeyPlaceholder.size(), EscapeHtml(verifier_key));
  return page;
}

std::span<const std::pair<std::string_view, std::string_view>> SecurityHeaders() { return kSecurityHeaders; }

}  // namespace annals::ui
