#include "ingest/line_batch.h"
#include "common/log.h"

#include <cstdio>

#include "ingest/classify.h"
#include "ingest/json_lines.h"

namespace annals::ingest {

LineBatch MakeLineBatch(std::string text, uint64_t first_line, const std::string& source,
                        const std::string& origin, Metrics* metrics,
                        const std::string& position_key_prefix, uint64_t base_offset,
                        const std::string& cluster) {
  LineBatch b;
  b.text = std::make_shared<std::string>(std::move(text));
  std::string_view rest = *b.text;
  const std::string now = NowRfc3339();
  uint64_t line_no = first_line;
  while (!rest.empty()) {
    auto nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    const uint64_t this_line = line_no++;
    if (line.find_first_not_of(" \t") == std::string_view::npos) continue;
    auto item = ClassifyJsonLine(line, source, now, "line " + std::to_string(this_line));
    if (!item.ok()) {
      ++b.bad_lines;
      metrics->Add("annals_bad_lines_total", "source", source);
      metrics->Add("annals_events_rejected_total", "source", source);
      log::Warning("%s %s: skipped: %s", source.c_str(), origin.c_str(),
                   item.status().message().c_str());
      continue;
    }
    if (item->key.empty() && !position_key_prefix.empty()) {
      item->key = position_key_prefix +
                  std::to_string(base_offset + static_cast<uint64_t>(line.data() - b.text->data()));
      item->meta = MakeMeta(source, now, item->key);
    }
    if (Status st = BindCluster(cluster, &*item); !st.ok()) {  // a parser's metadata it cannot bind: a bug
      ++b.bad_lines;
      log::Error("%s %s: line %llu: %s", source.c_str(), origin.c_str(), static_cast<unsigned long long>(this_line),
                 st.message().c_str());
      continue;
    }
    b.items.push_back(std::move(*item));
  }
  return b;
}

}  // namespace annals::ingest
