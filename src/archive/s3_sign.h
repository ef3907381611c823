// The text of talking to an S3-compatible store, with no I/O: AWS
// Signature Version 4 over a request, the s3://BUCKET/PREFIX form, the
// shared credentials file, the code in an error answer, and the archiver's
// state file. Pure functions, thread-safe; the fuzz build links them.
#ifndef ANNALS_ARCHIVE_S3_SIGN_H_
#define ANNALS_ARCHIVE_S3_SIGN_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace annals::archive {

struct S3Credentials {
  std::string access_key, secret_key;
  std::string session_token;  // "" unless temporary credentials
};

// One request as SigV4 signs it. Header names lower case; the signer sorts
// them and trims values. canonical_uri is the URI-encoded path
// (UriEncodePath), canonical_query the sorted, encoded query ("" if none).
struct SigV4Request {
  std::string method;
  std::string canonical_uri;
  std::string canonical_query;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string payload_sha256_hex;  // x-amz-content-sha256's value
  std::string amz_date;            // "20130524T000000Z"
  std::string region;
  std::string service = "s3";
};

// The Authorization header's value: "AWS4-HMAC-SHA256 Credential=...,
// SignedHeaders=...,Signature=...".
std::string SignV4(const SigV4Request& request, const S3Credentials& credentials);
// A path with each segment URI-encoded as SigV4 wants ('/' kept; unreserved
// characters A-Z a-z 0-9 - . _ ~ kept; everything else %XX).
std::string UriEncodePath(std::string_view path);
// "20130524T000000Z" for t (seconds since the epoch, UTC).
std::string AmzDate(int64_t unix_seconds);
// Base64 of the MD5 of body (Content-MD5) and its hex form (a single-part
// upload's ETag).
std::string ContentMd5(std::string_view body);
std::string Md5Hex(std::string_view body);

// s3://BUCKET[/PREFIX]: bucket per S3's naming rules (3-63 of a-z 0-9 . -),
// prefix without leading or trailing '/', no empty, "." or ".." segment.
struct S3Location {
  std::string bucket;
  std::string prefix;  // "" or "a/b"
  // The object key for a path relative to the prefix.
  std::string Key(std::string_view relative) const;
  std::string Url() const;  // s3://bucket[/prefix]
};
StatusOr<S3Location> ParseS3Url(std::string_view url);

// The AWS shared credentials file (~/.aws/credentials): INI sections, the
// named profile's aws_access_key_id, aws_secret_access_key and optional
// aws_session_token. NotFound if the profile or a key is missing;
// InvalidArgument naming the line for a malformed one.
StatusOr<S3Credentials> ParseCredentialsFile(std::string_view text, std::string_view profile);

// The <Code> of an S3 XML error body ("AccessDenied"), or "" if none.
std::string S3ErrorCode(std::string_view body);

// How far the archive has got (docs/format/archive.md): kept in
// <data>/archive/state, written atomically after each step.
struct ArchiveState {
  std::string target;          // S3Location::Url() it describes
  uint64_t full_through = 0;   // entries whose full bundles and tiles are uploaded (multiple of 256)
  uint64_t size = 0;           // size of the last checkpoint uploaded
  uint64_t next_segment = 0;   // first index of the next sealed segment to upload
  std::string Encode() const;
};
// Strict: the version line, each field once in order, decimal values.
StatusOr<ArchiveState> ParseArchiveState(std::string_view text);

}  // namespace annals::archive

#endif  // ANNALS_ARCHIVE_S3_SIGN_H_
