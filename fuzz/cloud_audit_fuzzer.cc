// Feeds arbitrary bytes to ingest::ParseCloudBody (the first byte picks the
// format: CloudTrail, GCP, Azure) and to Gunzip. Anything may be rejected,
// but not with a crash or an empty reason, and what is accepted must be
// what the ledger stores verbatim: each record's raw bytes are a view into
// the body, an object without surrounding whitespace that parses on its
// own, with a dedup key; the same bytes parsed in place give the same
// records; the metadata is JSON. Gunzip never returns more than its limit.
#include <simdjson.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "ingest/cloud_audit.h"
#include "json/json_parse.h"

using annals::ingest::CloudFormat;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const CloudFormat f = data[0] % 3 == 0   ? CloudFormat::kAwsCloudTrail
                        : data[0] % 3 == 1 ? CloudFormat::kGcpAudit
                                           : CloudFormat::kAzureActivity;
  std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::string inflated;
  auto gz = annals::ingest::Gunzip(input, 1 << 16, &inflated);
  if (gz.ok() ? inflated.size() > (1 << 16) : (!inflated.empty() || gz.message().empty())) std::abort();

  auto records = annals::ingest::ParseCloudBody(f, input);
  std::string roomy(input);
  roomy.reserve(roomy.size() + annals::json_util::kJsonPadding);
  auto in_place = annals::ingest::ParseCloudBody(f, roomy, roomy.capacity());
  if (records.ok() != in_place.ok()) std::abort();
  if (!records.ok()) {
    if (records.status().message().empty()) std::abort();
    return 0;
  }
  if (records->size() != in_place->size()) std::abort();
  for (size_t i = 0; i < records->size(); ++i) {
    const auto& r = (*records)[i];
    if (r.raw != (*in_place)[i].raw || r.key != (*in_place)[i].key) std::abort();
    if (r.raw.empty() || r.raw.data() < input.data() || r.raw.data() + r.raw.size() > input.data() + input.size())
      std::abort();
    if (r.raw.front() != '{' || r.raw.back() != '}') std::abort();
    if (r.key.empty()) std::abort();
    simdjson::dom::parser parser;
    simdjson::dom::element doc;
    if (parser.parse(std::string(r.raw)).get(doc) != simdjson::SUCCESS || !doc.is_object()) std::abort();
    const std::string meta = annals::ingest::CloudMeta(r, "fuzz", "2026-01-01T00:00:00Z");
    if (parser.parse(meta).get(doc) != simdjson::SUCCESS || !doc.is_object()) std::abort();
  }
  return 0;
}
