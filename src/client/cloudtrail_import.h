// `annals import-cloudtrail-digests DIR`: imports CloudTrail log files
// only as far as CloudTrail's own digests vouch for them (docs/sources.md
// "CloudTrail digests"). DIR is a copy of the trail's bucket (`aws s3 sync`):
// log files `..._CloudTrail_....json.gz` (or `.json`), digest files
// `..._CloudTrail-Digest_....json.gz`, and beside each digest its signature
// (the object's x-amz-meta-signature, hex) in `<digest file>.sig`, which a
// bucket copy does not keep. Each digest's signature, its place in the
// chain and every log file's SHA-256 are checked; the log files a valid
// digest vouches for are posted to /v1/ingest/aws-cloudtrail, the others
// refused; each digest's outcome is recorded in the ledger as one
// "annals.cloudtrail.digest" CloudEvent. Thread-compatible.
#ifndef ANNALS_CLIENT_CLOUDTRAIL_IMPORT_H_
#define ANNALS_CLIENT_CLOUDTRAIL_IMPORT_H_

#include <map>
#include <string>
#include <vector>

#include "client/http_client.h"
#include "common/status.h"

namespace annals::client {

struct CloudTrailImportResult {
  std::vector<std::string> lines;  // "Digest file\t<object>\tvalid|INVALID: ..." and "Log file\t..."
  size_t digests = 0, digests_valid = 0, chain_breaks = 0;
  size_t log_files = 0, log_files_valid = 0;
  uint64_t records_stored = 0, records_duplicate = 0;
  bool all_valid() const { return digests == digests_valid && chain_breaks == 0 && log_files == log_files_valid; }
};

// keys: ingest::ParseCloudTrailPublicKeys. A failure to read DIR or to talk
// to the server is an error; what fails validation is in the result.
StatusOr<CloudTrailImportResult> ImportCloudTrailDigests(HttpClient* http, const std::string& dir,
                                                         const std::map<std::string, std::string>& keys);

}  // namespace annals::client

#endif  // ANNALS_CLIENT_CLOUDTRAIL_IMPORT_H_
