#include "ingest/json_lines.h"

#include "ingest/ingestor.h"

#include <simdjson.h>

#include "common/time_util.h"
#include "json/json_parse.h"
#include "json/json_write.h"

namespace annals::ingest {

Status ValidateJsonObject(std::string_view line, std::string_view what) {
  simdjson::dom::parser& parser = json_util::JsonParser();
  simdjson::dom::element doc;
  auto err = parser.parse(line.data(), line.size()).get(doc);
  if (err) return InvalidArgumentError(std::string(what) + ": " + json_util::JsonErrorMessage(err));
  if (!doc.is_object()) return InvalidArgumentError(std::string(what) + ": not a JSON object");
  return json_util::CheckUniqueKeys(doc, what);
}

StatusOr<std::vector<std::string_view>> SplitJsonLines(std::string_view body) {
  std::vector<std::string_view> out;
  for (auto [line, line_no] : SplitLines(body)) {
    RETURN_IF_ERROR(ValidateJsonObject(line, "line " + std::to_string(line_no)));
    out.push_back(line);
  }
  if (out.empty()) return InvalidArgumentError("body holds no JSON lines");
  return out;
}

bool LineCursor::Next(std::string_view* out, size_t* line_no) {
  while (!rest_.empty()) {
    ++line_no_;
    auto nl = rest_.find('\n');
    std::string_view line = rest_.substr(0, nl);
    rest_ = nl == std::string_view::npos ? std::string_view() : rest_.substr(nl + 1);
    size_t a = line.find_first_not_of(" \t\r");
    if (a == std::string_view::npos) continue;
    *out = line.substr(a, line.find_last_not_of(" \t\r") - a + 1);
    *line_no = line_no_;
    return true;
  }
  return false;
}

std::vector<std::pair<std::string_view, size_t>> SplitLines(std::string_view body) {
  std::vector<std::pair<std::string_view, size_t>> out;
  LineCursor cursor(body);
  std::string_view line;
  size_t line_no;
  while (cursor.Next(&line, &line_no)) out.emplace_back(line, line_no);
  return out;
}

std::string NowRfc3339() { return FormatRfc3339(NowMicros()); }

std::string MakeMeta(std::string_view source, std::string_view receive_time,
                     std::string_view key) {
  std::string m = R"({"v":1,"src":")";
  m += source;  // sources are fixed identifiers chosen by the server
  m += R"(","rt":")";
  m += receive_time;
  m += R"(","ct":"application/json")";
  if (!key.empty()) {
    m += R"(,"key":)";
    json_util::AppendJsonString(&m, key);
  }
  m += "}";
  return m;
}

Status BindCluster(std::string_view cluster, IngestItem* item) {
  if (cluster.empty()) return OkStatus();
  // {"v":1 or, for audit events, {"v":2.
  const std::string_view head = std::string_view(item->meta).substr(0, 6);
  if (head != R"({"v":1)" && head != R"({"v":2)")
    return InternalError("entry metadata does not start with {\"v\":1 or {\"v\":2");
  std::string m(head);
  m += R"(,"cluster":)";
  json_util::AppendJsonString(&m, cluster);
  std::string_view rest = std::string_view(item->meta).substr(head.size());
  if (!item->key.empty()) {
    std::string old = R"("key":)";
    json_util::AppendJsonString(&old, item->key);
    const size_t at = rest.find(old);
    if (at == std::string_view::npos) return InternalError("entry metadata does not hold its key");
    std::string key = "cluster:" + std::to_string(cluster.size()) + ":" + std::string(cluster) + "/" + item->key;
    m.append(rest.substr(0, at));
    m += R"("key":)";
    json_util::AppendJsonString(&m, key);
    m.append(rest.substr(at + old.size()));
    item->key = std::move(key);
  } else {
    m.append(rest);
  }
  item->meta = std::move(m);
  return OkStatus();
}

}  // namespace annals::ingest
