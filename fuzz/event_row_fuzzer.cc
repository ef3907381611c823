// Feeds arbitrary bytes to DecodeEventRow, the reader of the event index's
// row values (docs/format/event-index.md): a value read back from a damaged
// or foreign index must be refused, never read out of bounds. What it
// accepts must survive a round trip: encoding the decoded fields and
// decoding again gives the same fields.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "index/event_row.h"
#include "fuzz_check.h"


namespace {

bool Same(const annals::index::EventRowView& a, const annals::index::EventRowView& b) {
  return a.index == b.index && a.time == b.time && a.code == b.code && a.verb == b.verb &&
         a.user == b.user && a.resource == b.resource && a.subresource == b.subresource &&
         a.ns == b.ns && a.name == b.name && a.ip == b.ip && a.ua == b.ua && a.stage == b.stage;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  annals::index::EventRowView row;
  if (!annals::index::DecodeEventRow(7, in, &row).ok()) return 0;
  CHECK(row.index == 7);
  std::string again;
  annals::index::EncodeEventRow(row, &again);
  CHECK(again.size() <= in.size());  // only non-minimal varints can be longer
  annals::index::EventRowView back;
  CHECK(annals::index::DecodeEventRow(7, again, &back).ok());
  CHECK(Same(row, back));
  // The batch keeps the same bytes and the same facets.
  annals::index::EventBatch batch;
  batch.Add(row);
  CHECK(batch.row_list().size() == 1);
  const auto& r = batch.row_list()[0];
  CHECK(batch.arena(r.at, r.size) == again);
  auto f = batch.facets(0);
  CHECK(f.user == row.user && f.verb == row.verb && f.code == row.code && f.ns == row.ns);
  return 0;
}
