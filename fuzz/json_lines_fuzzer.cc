// Feeds arbitrary request bodies to the ingest parsers: SplitJsonLines (and
// ValidateJsonObject on each line and on the whole body) and the Kubernetes
// audit parsers. None may crash or hang on hostile nesting; accepted lines
// must be trimmed views into the body that validate on their own.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "ingest/json_lines.h"
#include "ingest/k8s_audit.h"
#include "json/json_parse.h"
#include "fuzz_check.h"


namespace {

bool Inside(std::string_view part, std::string_view whole) {
  return part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size();
}

bool IsJsonSpace(std::string_view s) {
  return s.find_first_not_of(" \t\r\n") == std::string_view::npos;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace annals::ingest;
  std::string_view body(reinterpret_cast<const char*>(data), size);

  annals::Status whole = ValidateJsonObject(body, "body");
  if (whole.ok()) CHECK(annals::json_util::CheckJsonDepth(body, "body").ok());

  auto lines = SplitJsonLines(body);
  if (lines.ok()) {
    CHECK(!lines->empty());
    for (std::string_view line : *lines) {
      CHECK(!line.empty() && Inside(line, body));
      CHECK(line.find('\n') == std::string_view::npos);
      CHECK(line.front() != ' ' && line.front() != '\t');
      CHECK(line.back() != ' ' && line.back() != '\t');
      CHECK(ValidateJsonObject(line, "line").ok());
      auto ev = ParseAuditEvent(line, "line");
      if (ev.ok()) {
        // The event is the line, give or take JSON whitespace around it.
        CHECK(!ev->raw.empty() && Inside(ev->raw, line));
        CHECK(IsJsonSpace(line.substr(0, ev->raw.data() - line.data())));
        CHECK(IsJsonSpace(line.substr(ev->raw.data() + ev->raw.size() - line.data())));
        CHECK(!ev->audit_id.empty() && !ev->stage.empty());
        auto again = ParseAuditEvent(ev->raw, "again");
        CHECK(again.ok() && again->DedupKey() == ev->DedupKey());
      }
    }
  }

  size_t last_no = 0;
  for (const auto& [line, no] : SplitLines(body)) {
    CHECK(Inside(line, body) || line.empty());
    CHECK(no > last_no);
    last_no = no;
  }

  auto events = ParseAuditBody(body);
  if (events.ok()) {
    for (const AuditEvent& ev : *events) {
      CHECK(Inside(ev.raw, body));
      CHECK(!ev.audit_id.empty() && !ev.stage.empty());
      // Each event's own bytes parse to the same event.
      auto again = ParseAuditEvent(ev.raw, "again");
      CHECK(again.ok() && again->DedupKey() == ev.DedupKey());
    }
  }
  return 0;
}
