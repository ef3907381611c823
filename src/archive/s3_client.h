// S3Client: the few S3 calls the archiver makes (PUT with Object Lock, HEAD,
// GET), path-style (ENDPOINT/BUCKET/KEY), signed with SigV4 over the
// payload's SHA-256, over one keep-alive HttpClient connection (Boost.Beast;
// TLS with the same trust options as every other client of ours).
// Thread-compatible: one per thread.
#ifndef ANNALS_ARCHIVE_S3_CLIENT_H_
#define ANNALS_ARCHIVE_S3_CLIENT_H_

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "archive/s3_sign.h"
#include "client/http_client.h"
#include "common/status.h"
#include "common/time_util.h"

namespace annals::archive {

// S3 Object Lock on a PUT: the store refuses to delete or overwrite the
// version until retain_until (compliance: nobody can; governance: only
// with the bypass permission).
enum class LockMode { kNone, kGovernance, kCompliance };
struct ObjectLock {
  LockMode mode = LockMode::kNone;
  Micros retain_until = 0;
};
// "compliance", "governance" or "none".
StatusOr<LockMode> ParseLockMode(std::string_view s);

// Credentials as the AWS tools find them: AWS_ACCESS_KEY_ID and
// AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN); else the shared
// credentials file `file`, or $AWS_SHARED_CREDENTIALS_FILE, or
// ~/.aws/credentials, profile $AWS_PROFILE or "default".
StatusOr<S3Credentials> LoadCredentials(const std::string& file = "");
// --s3-region, else $AWS_REGION, $AWS_DEFAULT_REGION, "us-east-1".
std::string RegionOr(const std::string& region);

struct S3Config {
  std::string endpoint;  // http(s)://host[:port]
  std::string bucket;
  std::string region = "us-east-1";
  S3Credentials credentials;
  client::ClientAuth tls;  // CA bundle for https:// endpoints
};

class S3Client {
 public:
  static StatusOr<std::unique_ptr<S3Client>> Create(const S3Config& config);

  // Stores body at key (Content-MD5 and the payload's SHA-256 signed).
  // Unavailable when the store cannot be reached or answers 5xx; another
  // code with the store's error code for a refusal (4xx).
  Status Put(std::string_view key, std::string_view body, const ObjectLock& lock);
  // The object's ETag without quotes, or nullopt if there is none.
  StatusOr<std::optional<std::string>> HeadEtag(std::string_view key);
  StatusOr<std::string> Get(std::string_view key);
  // For a watchdog on another thread: when the request in flight started
  // (steady clock, ms; 0 if none), and ending it (it fails Unavailable).
  int64_t busy_since_ms() const { return busy_since_ms_.load(); }
  void Abort() { http_->Abort(); }

 private:
  explicit S3Client(S3Config config) : config_(std::move(config)) {}
  StatusOr<client::HttpResult> Request(std::string_view method, std::string_view key,
                                       client::HttpHeaders headers, std::string_view body);

  const S3Config config_;
  std::unique_ptr<client::HttpClient> http_;
  std::atomic<int64_t> busy_since_ms_{0};
};

}  // namespace annals::archive

#endif  // ANNALS_ARCHIVE_S3_CLIENT_H_
