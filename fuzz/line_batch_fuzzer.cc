// Feeds arbitrary bytes to ingest::MakeLineBatch, the framer and classifier
// of stream sources (TCP connector, audit log tail). Bad lines are skipped,
// never fatal. What it keeps must be stored verbatim and indexed under the
// right key: every item's payload is a view into the batch text holding one
// line (no newline), its metadata is a JSON object whose "key" is the item's
// dedup key, and items plus bad lines never outnumber the lines.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include <simdjson.h>

#include "common/metrics.h"
#include "ingest/json_lines.h"
#include "ingest/line_batch.h"

namespace {

// The "key" member of the metadata ("" if none), read as Ingestor::KeyFromMeta
// reads it when it catches the dedup index up from the log.
std::string KeyOf(std::string_view meta) {
  static simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(meta.data(), meta.size()).get(doc) != simdjson::SUCCESS) std::abort();
  std::string_view key;
  if (doc["key"].get_string().get(key) != simdjson::SUCCESS) return "";
  return std::string(key);
}

}  // namespace

// MakeLineBatch logs every skipped line to stderr, which would flood the
// fuzzer's output. libFuzzer's -close_fd_mask=2 sends the target's stderr to
// /dev/null while keeping its own and the sanitizers' reports: add it to the
// flags (libFuzzer parses them after this call).
extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  static std::vector<char*> args;
  static char flag[] = "-close_fd_mask=2";
  args.assign(*argv, *argv + *argc);
  args.insert(args.begin() + 1, flag);
  args.push_back(nullptr);
  *argc += 1;
  *argv = args.data();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  size_t lines = 0;
  for (char c : text) lines += c == '\n';
  if (!text.empty() && text.back() != '\n') ++lines;

  annals::Metrics metrics;
  annals::ingest::LineBatch batch =
      annals::ingest::MakeLineBatch(text, 1, "tcp", "fuzz", &metrics);
  if (!batch.text || *batch.text != text) std::abort();
  if (batch.items.size() + batch.bad_lines > lines) std::abort();
  const char* begin = batch.text->data();
  const char* end = begin + batch.text->size();
  for (const auto& item : batch.items) {
    const char* p = item.payload.data();
    if (item.payload.empty() || p < begin || p + item.payload.size() > end) std::abort();
    if (item.payload.find('\n') != std::string_view::npos) std::abort();
    // A payload is a whole line (less a CR): it starts a line and ends one.
    if (p != begin && p[-1] != '\n') std::abort();
    const char* after = p + item.payload.size();
    if (after != end && *after != '\n' && !(*after == '\r' && (after + 1 == end || after[1] == '\n')))
      std::abort();
    if (!annals::ingest::ValidateJsonObject(item.meta, "meta").ok()) std::abort();
    if (KeyOf(item.meta) != item.key) std::abort();
  }
  return 0;
}
