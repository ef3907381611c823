// Client-side helpers for integration tests: corpus payloads, appending over
// HTTP, fetching and opening checkpoints, fetching entry bundles. Built only
// on our own client code (client/, checkpoint/, merkle/). Thread-compatible:
// pass each thread its own HttpClient.
#ifndef ANNALS_TEST_TESTUTIL_LOG_CLIENT_H_
#define ANNALS_TEST_TESTUTIL_LOG_CLIENT_H_

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "checkpoint/checkpoint.h"
#include "checkpoint/note.h"
#include "client/http_client.h"
#include "common/status.h"

namespace annals::testutil {

// Every non-blank line of the real Kubernetes audit corpus files
// (k8s-audit/audit2rbac-demo.jsonl, then k8s-audit/falco/*.json in name
// order), byte for byte. Each is one JSON object.
std::vector<std::string> CorpusAuditLines();

// `line` with its "auditID" value suffixed by "-<tag>" so that repeated
// corpus events stay distinct (the server stores an audit event once per
// auditID and stage), or, for a line without one, with "annals_test_seq":
// "<tag>" added as its first member. Still one JSON object.
std::string UniqueVariant(std::string_view line, std::string_view tag);
std::string UniqueVariant(std::string_view line, uint64_t n);

// A single JSON object larger than `min_bytes`, made of real corpus events:
// {"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[...]}.
std::string LargeEventList(size_t min_bytes);

// The value of one series on /metrics ("annals_log_entries",
// "annals_bad_lines_total{source=\"tcp\"}"); 0 if it is not there yet.
StatusOr<uint64_t> Metric(client::HttpClient* http, std::string_view series);

// The answer to POST /v1/ingest/events.
struct IngestAnswer {
  uint64_t count = 0;
  uint64_t stored = 0;
  uint64_t duplicates = 0;
  std::optional<uint64_t> first_index;  // null when nothing new was stored
};
// POSTs the lines as one JSON-lines body to /v1/ingest/events; OK only for a
// 200 whose answer is well-formed and adds up.
StatusOr<IngestAnswer> PostEventsAnswer(client::HttpClient* http,
                                        const std::vector<std::string>& lines);
// Checks an answer to a POST of `lines` lines (200, well-formed, adds up).
StatusOr<IngestAnswer> ParseIngestAnswer(const client::HttpResult& r, size_t lines);
// As PostEventsAnswer, and every line must have been stored as new. Returns
// "first_index".
StatusOr<uint64_t> PostEvents(client::HttpClient* http, const std::vector<std::string>& lines);

struct SignedCheckpoint {
  std::string note;
  checkpoint::Checkpoint cp;
};

// Verifies the note's signature with `verifier`, parses the checkpoint body
// and checks its origin is the key's name.
StatusOr<SignedCheckpoint> OpenCheckpoint(std::string_view note, const note::Verifier& verifier);
StatusOr<SignedCheckpoint> FetchCheckpoint(client::HttpClient* http,
                                           const note::Verifier& verifier);
// Polls /log/checkpoint until it covers at least min_size entries;
// DeadlineExceeded-like Unavailable after `timeout`.
StatusOr<SignedCheckpoint> WaitForCheckpoint(client::HttpClient* http,
                                             const note::Verifier& verifier, uint64_t min_size,
                                             std::chrono::milliseconds timeout);

// "/log/" + the C2SP tile path.
std::string TileUrl(bool entries, uint64_t level, uint64_t index, uint64_t width);
// Splits an entry bundle of exactly `width` uint16-length-prefixed entries.
StatusOr<std::vector<std::string>> ParseBundle(std::string_view bundle, uint64_t width);
// Entries [begin, end) read through the entry bundles of a tree of
// `tree_size` entries (partial bundle at the right edge). end <= tree_size.
StatusOr<std::vector<std::string>> FetchEntries(client::HttpClient* http, uint64_t begin,
                                                uint64_t end, uint64_t tree_size);

}  // namespace annals::testutil

#endif  // ANNALS_TEST_TESTUTIL_LOG_CLIENT_H_
