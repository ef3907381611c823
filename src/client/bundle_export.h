// Evidence bundles from a served log (docs/format/bundle.md): the chosen
// entries, their inclusion proofs against the current signed checkpoint
// (its signature checked with the log's key first), packed by
// ledger::EncodeBundle and checked by ledger::VerifyBundle before they are
// handed over.
#ifndef ANNALS_CLIENT_BUNDLE_EXPORT_H_
#define ANNALS_CLIENT_BUNDLE_EXPORT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "client/http_client.h"
#include "common/status.h"
#include "ledger/bundle.h"

namespace annals::client {

// The bundle's bytes for `indexes` (any order; repeats dropped).
// FailedPrecondition if an entry is newer than the checkpoint (ask again
// after the next one, within a checkpoint interval).
StatusOr<std::string> ExportBundle(HttpClient* http, const std::string& verifier_key,
                                   std::vector<uint64_t> indexes,
                                   ledger::BundleReport* report = nullptr);

// The entry indexes a question's JSON answer names (`events[].index` of
// /v1/history and /v1/events), following /v1/events' `next_cursor`.
StatusOr<std::vector<uint64_t>> IndexesOfAnswer(HttpClient* http, const std::string& query);

}  // namespace annals::client

#endif  // ANNALS_CLIENT_BUNDLE_EXPORT_H_
