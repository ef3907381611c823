// The console (docs/console.md): the web page served at /ui/, built into
// the binary from src/ui/web by cmake/embed_assets.cmake, so an air-gapped
// cluster needs nothing else. The page asks the same HTTP API as every
// other client, with the caller's own credentials; these functions only
// hand out its files. Stateless and thread-safe.
#ifndef ANNALS_UI_CONSOLE_H_
#define ANNALS_UI_CONSOLE_H_

#include <span>
#include <string>
#include <string_view>

namespace annals::ui {

// One file of src/ui/web: its path there ("app.js", "views/ip.js"), its
// Content-Type, its bytes, and an ETag (its SHA-256 in quotes).
struct Asset {
  std::string_view path;
  std::string_view content_type;
  std::string_view body;
  std::string_view etag;
};

// Every embedded file, sorted by path (generated).
std::span<const Asset> Assets();

// The file at `path` (relative to src/ui/web), or nullptr.
const Asset* FindAsset(std::string_view path);

// index.html with this log's verifier key in its <meta name="annals-vkey">
// (HTML-escaped): what the page verifies checkpoints with unless the user
// pins another key. Served for /ui/ and every deep link under it.
std::string RenderPage(std::string_view verifier_key);

// Headers every console response carries: a Content-Security-Policy that
// lets the page load only its own scripts and styles and talk only to this
// origin, no framing, no sniffing, no referrer.
std::span<const std::pair<std::string_view, std::string_view>> SecurityHeaders();

}  // namespace annals::ui

#endif  // ANNALS_UI_CONSOLE_H_
