#include "testutil/log_client.h"

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/bytes.h"
#include "merkle/tile.h"
#include "testutil/server_process.h"

namespace annals::testutil {

namespace {

void AppendLines(const std::string& path, std::vector<std::string>* out) {
  auto data = ReadFile(path);
  if (!data.ok()) return;
  std::string_view v = *data;
  while (!v.empty()) {
    size_t nl = v.find('\n');
    std::string_view line = v.substr(0, nl);
    v = nl == std::string_view::npos ? std::string_view() : v.substr(nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.find_first_not_of(" \t") == std::string_view::npos) continue;
    out->emplace_back(line);
  }
}

}  // namespace

std::vector<std::string> CorpusAuditLines() {
  std::vector<std::string> out;
  const std::string dir = CorpusDir() + "/k8s-audit";
  AppendLines(dir + "/audit2rbac-demo.jsonl", &out);
  std::vector<std::string> falco;
  for (const auto& e : std::filesystem::directory_iterator(dir + "/falco"))
    if (e.path().extension() == ".json") falco.push_back(e.path().string());
  std::sort(falco.begin(), falco.end());
  for (const auto& f : falco) AppendLines(f, &out);
  return out;
}

std::string UniqueVariant(std::string_view line, std::string_view tag) {
  constexpr std::string_view kKey = "\"auditID\":\"";
  std::string out(line);
  size_t k = out.find(kKey);
  if (k != std::string::npos) {
    size_t end = out.find('"', k + kKey.size());
    if (end != std::string::npos) {
      out.insert(end, "-" + std::string(tag));
      return out;
    }
  }
  size_t brace = out.find('{');
  out.insert(brace + 1, "\"annals_test_seq\":\"" + std::string(tag) + "\"" +
                            (out[brace + 1] == '}' ? "" : ","));
  return out;
}

std::string UniqueVariant(std::string_view line, uint64_t n) {
  return UniqueVariant(line, std::to_string(n));
}

std::string LargeEventList(size_t min_bytes) {
  const auto lines = CorpusAuditLines();
  std::string out = R"({"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[)";
  uint64_t n = 0;
  while (out.size() < min_bytes) {
    for (const auto& l : lines) {
      if (n) out += ',';
      out += UniqueVariant(l, n++);
    }
  }
  out += "]}";
  return out;
}

StatusOr<IngestAnswer> PostEventsAnswer(client::HttpClient* http,
                                        const std::vector<std::string>& lines) {
  std::string body;
  for (const auto& l : lines) {
    body += l;
    body += '\n';
  }
  ASSIGN_OR_RETURN(client::HttpResult r,
                   http->Post("/v1/ingest/events", body, "application/x-ndjson"));
  return ParseIngestAnswer(r, lines.size());
}

StatusOr<IngestAnswer> ParseIngestAnswer(const client::HttpResult& r, size_t lines) {
  if (r.status != 200)
    return UnavailableError("POST /v1/ingest/events: HTTP " + std::to_string(r.status) + " " +
                            r.body);
  auto j = nlohmann::json::parse(r.body, nullptr, false);
  auto uint_field = [&](const char* name) {
    return j.is_object() && j.contains(name) && j[name].is_number_unsigned();
  };
  if (!uint_field("count") || !uint_field("stored") || !uint_field("duplicates") ||
      !j.contains("first_index") || !(j["first_index"].is_null() || uint_field("first_index")))
    return DataLossError("ingest answer is not {count, stored, duplicates, first_index}: " +
                         r.body);
  IngestAnswer a;
  a.count = j["count"].get<uint64_t>();
  a.stored = j["stored"].get<uint64_t>();
  a.duplicates = j["duplicates"].get<uint64_t>();
  if (!j["first_index"].is_null()) a.first_index = j["first_index"].get<uint64_t>();
  if (a.count != lines || a.stored + a.duplicates != a.count ||
      a.first_index.has_value() != (a.stored > 0))
    return DataLossError("inconsistent ingest answer for " + std::to_string(lines) +
                         " lines: " + r.body);
  return a;
}

StatusOr<uint64_t> PostEvents(client::HttpClient* http, const std::vector<std::string>& lines) {
  ASSIGN_OR_RETURN(IngestAnswer a, PostEventsAnswer(http, lines));
  if (a.stored != lines.size())
    return DataLossError("ingest stored " + std::to_string(a.stored) + " of " +
                         std::to_string(lines.size()) + " lines (" + std::to_string(a.duplicates) +
                         " duplicates)");
  return *a.first_index;
}

StatusOr<SignedCheckpoint> OpenCheckpoint(std::string_view note_text,
                                          const note::Verifier& verifier) {
  ASSIGN_OR_RETURN(note::Note n, note::OpenNote(note_text, verifier));
  ASSIGN_OR_RETURN(checkpoint::Checkpoint cp, checkpoint::Parse(n.text));
  if (cp.origin != verifier.name())
    return DataLossError("checkpoint origin " + cp.origin + " is not the key name " +
                         verifier.name());
  return SignedCheckpoint{std::string(note_text), std::move(cp)};
}

StatusOr<SignedCheckpoint> FetchCheckpoint(client::HttpClient* http,
                                           const note::Verifier& verifier) {
  ASSIGN_OR_RETURN(client::HttpResult r, http->Get("/log/checkpoint"));
  if (r.status != 200)
    return UnavailableError("GET /log/checkpoint: HTTP " + std::to_string(r.status));
  return OpenCheckpoint(r.body, verifier);
}

StatusOr<SignedCheckpoint> WaitForCheckpoint(client::HttpClient* http,
                                             const note::Verifier& verifier, uint64_t min_size,
                                             std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    ASSIGN_OR_RETURN(SignedCheckpoint c, FetchCheckpoint(http, verifier));
    if (c.cp.size >= min_size) return c;
    if (std::chrono::steady_clock::now() >= deadline)
      return UnavailableError("checkpoint still at size " + std::to_string(c.cp.size) +
                              ", waited for " + std::to_string(min_size));
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

std::string TileUrl(bool entries, uint64_t level, uint64_t index, uint64_t width) {
  return "/log/" + merkle::FormatTilePath({entries, level, index, width});
}

StatusOr<std::vector<std::string>> ParseBundle(std::string_view v, uint64_t width) {
  std::vector<std::string> out;
  for (uint64_t k = 0; k < width; ++k) {
    if (v.size() < 2) return DataLossError("bundle ends after " + std::to_string(k) + " entries");
    uint16_t len = GetBigEndian16(v.data());
    if (v.size() - 2 < len)
      return DataLossError("bundle entry " + std::to_string(k) + " truncated");
    out.emplace_back(v.substr(2, len));
    v.remove_prefix(2 + len);
  }
  if (!v.empty()) return DataLossError("bundle has trailing bytes");
  return out;
}

StatusOr<std::vector<std::string>> FetchEntries(client::HttpClient* http, uint64_t begin,
                                                uint64_t end, uint64_t tree_size) {
  if (end > tree_size || begin > end) return InvalidArgumentError("bad entry range");
  std::vector<std::string> out;
  constexpr uint64_t kW = merkle::kTileWidth;
  for (uint64_t b = begin / kW; b * kW < end; ++b) {
    const uint64_t width = std::min<uint64_t>(kW, tree_size - b * kW);
    const std::string path = TileUrl(true, 0, b, width);
    ASSIGN_OR_RETURN(client::HttpResult r, http->Get(path));
    if (r.status != 200)
      return UnavailableError("GET " + path + ": HTTP " + std::to_string(r.status) + " " + r.body);
    auto entries = ParseBundle(r.body, width);
    if (!entries.ok()) return DataLossError(path + ": " + entries.status().message());
    for (uint64_t k = 0; k < width; ++k) {
      uint64_t i = b * kW + k;
      if (i >= begin && i < end) out.push_back(std::move((*entries)[k]));
    }
  }
  return out;
}

StatusOr<uint64_t> Metric(client::HttpClient* http, std::string_view series) {
  ASSIGN_OR_RETURN(client::HttpResult r, http->Get("/metrics"));
  if (r.status != 200) return UnavailableError("GET /metrics: HTTP " + std::to_string(r.status));
  std::string_view body = r.body;
  while (!body.empty()) {
    const size_t nl = body.find('\n');
    std::string_view line = body.substr(0, nl);
    body.remove_prefix(nl == std::string_view::npos ? body.size() : nl + 1);
    if (line.size() > series.size() && line.starts_with(series) && line[series.size()] == ' ')
      return std::stoull(std::string(line.substr(series.size() + 1)));
  }
  return 0;
}

}  // namespace annals::testutil
