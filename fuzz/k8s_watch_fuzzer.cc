// Feeds arbitrary bytes to the watch collector's readers of untrusted
// input: the stream line splitter, ParseWatchFrame on every line, and
// ParseWatchRecordLine (the /v1/ingest/k8s-watch body). None may crash;
// an accepted frame's object must be a view into its line, and an event's
// record line must parse back to the same object bytes.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "json/json_scan.h"
#include "ingest/k8s_watch.h"
#include "fuzz_check.h"


extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  using namespace annals::ingest;
  // Split as a stream in two uneven pieces: the lines must not depend on
  // where the bytes were cut.
  LineSplitter whole(1 << 20), parts(1 << 20);
  whole.Feed(in);
  parts.Feed(in.substr(0, size / 3));
  parts.Feed(in.substr(size / 3));
  auto lines = whole.Lines();
  auto lines2 = parts.Lines();
  CHECK(lines.size() == lines2.size());
  for (size_t i = 0; i < lines.size(); ++i) {
    CHECK(lines[i] == lines2[i]);
    std::string line(lines[i]);
    auto f = ParseWatchFrame(line);
    if (f.ok()) {
      CHECK(f->object.data() >= line.data() && f->object.data() + f->object.size() <= line.data() + line.size());
      // Found from the frame's end (object last) or by a scan: the same bytes.
      CHECK(f->object == annals::json_util::RawMemberValue(line, "object"));
      if (f->type == WatchEventType::kAdded || f->type == WatchEventType::kModified ||
          f->type == WatchEventType::kDeleted) {
        CHECK(!f->head.uid.empty() && !f->head.resource_version.empty());
        WatchRecord r;
        r.type = WatchRecord::kAdded;
        r.version = "v1";
        r.resource = "pods";
        r.head = f->head;
        r.object = f->object;
        std::string rec = WatchRecordLine(r);
        auto back = ParseWatchRecordLine(rec, "line");
        CHECK(back.ok());
        CHECK(back->object == f->object);
        (void)WatchMeta(*back, "k8s-watch", "2024-05-01T12:00:00Z");
      }
    }
    (void)ParseWatchRecordLine(line, "line");
  }
  return 0;
}
