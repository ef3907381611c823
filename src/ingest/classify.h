// Classifies one JSON object from a line-oriented source (events endpoint,
// TCP connector, audit log tail) into an IngestItem: a Kubernetes audit
// Event (dedup by auditID/stage), a cloud audit record (ingest/cloud_audit.h:
// CloudTrail, GCP LogEntry, Azure Activity; dedup by the cloud's event id), a
// CloudEvent (dedup by source/id), or a generic event (no dedup). Thread-safe.
#ifndef ANNALS_INGEST_CLASSIFY_H_
#define ANNALS_INGEST_CLASSIFY_H_

#include <string_view>

#include "common/status.h"
#include "ingest/ingestor.h"

namespace annals::ingest {

// `line` must outlive the item. `what` names the line in errors.
StatusOr<IngestItem> ClassifyJsonLine(std::string_view line, std::string_view source,
                                      std::string_view receive_time, std::string_view what);

}  // namespace annals::ingest

#endif  // ANNALS_INGEST_CLASSIFY_H_
