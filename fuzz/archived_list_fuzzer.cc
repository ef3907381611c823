// Feeds arbitrary bytes to the parser of a segment directory's list of
// segments kept in the archive only (segments/archived): no crash; what
// parses re-encodes to the same text, each segment following the one
// before.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz_check.h"
#include "log/segment_log.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  auto list = annals::log::ParseArchivedList(in);
  if (!list.ok()) return 0;
  CHECK(annals::log::EncodeArchivedList(*list) == in);
  for (size_t i = 1; i < list->size(); ++i)
    CHECK((*list)[i - 1].first_index + (*list)[i - 1].entries == (*list)[i].first_index);
  return 0;
}
