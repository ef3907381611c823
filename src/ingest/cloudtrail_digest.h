// CloudTrail's own evidence (docs/sources.md "CloudTrail digests"): the
// hourly digest files CloudTrail writes when log file validation is on,
// each listing the SHA-256 of the log files it delivered that hour and
// signed (SHA256withRSA, RSASSA-PKCS1-v1_5) over a string that chains it to
// the previous digest's signature. Parsing of digest files and of the
// public keys `aws cloudtrail list-public-keys` prints (both untrusted),
// the string CloudTrail signs, and signature verification. Thread-safe.
#ifndef ANNALS_INGEST_CLOUDTRAIL_DIGEST_H_
#define ANNALS_INGEST_CLOUDTRAIL_DIGEST_H_

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace annals::ingest {

struct DigestLogFile {
  std::string bucket, object;
  std::string hash;  // hex SHA-256 of the uncompressed log file, as written
};

struct CloudTrailDigest {
  std::string account, start, end, bucket, object, fingerprint, algorithm;
  // The previous digest of the chain; all absent (null) for the first.
  std::optional<std::string> prev_bucket, prev_object, prev_hash, prev_signature;
  std::vector<DigestLogFile> logs;
  std::string sha256;  // lowercase hex SHA-256 of the digest's uncompressed JSON
};

// A digest file's uncompressed JSON. InvalidArgument naming what is wrong.
StatusOr<CloudTrailDigest> ParseCloudTrailDigest(std::string_view json);

// The data signing string: digestEndTime, "bucket/object", the digest's
// SHA-256 and the previous digest's signature ("null" for the first), one
// per line (LF), no final newline.
std::string DigestStringToSign(const CloudTrailDigest& d);

// Public keys by fingerprint, from the JSON of `aws cloudtrail
// list-public-keys` ({"PublicKeyList":[{"Value": base64 DER, "Fingerprint":
// hex, ...}]}); a key is PKCS#1 RSAPublicKey or SubjectPublicKeyInfo DER.
StatusOr<std::map<std::string, std::string>> ParseCloudTrailPublicKeys(std::string_view json);

// Verifies the digest's signature (hex, as in the digest object's
// x-amz-meta-signature) with the key its fingerprint names. OK, or
// InvalidArgument saying why not (unknown key, bad hex, not verified).
Status VerifyDigestSignature(const CloudTrailDigest& d, std::string_view signature_hex,
                             const std::map<std::string, std::string>& keys);

}  // namespace annals::ingest

#endif  // ANNALS_INGEST_CLOUDTRAIL_DIGEST_H_
