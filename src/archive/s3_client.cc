#include "archive/s3_client.h"

#include <algorithm>
#include <cctype>

#include <cstdlib>

#include "common/bytes.h"
#include "common/file_util.h"
#include "common/sha256.h"

namespace annals::archive {

namespace {

Status FromAnswer(std::string_view what, const client::HttpResult& r) {
  const std::string code = S3ErrorCode(r.body);
  const std::string msg = std::string(what) + ": HTTP " + std::to_string(r.status) +
                          (code.empty() ? "" : " " + code);
  if (r.status >= 500) return UnavailableError(msg);
  if (r.status == 403) return PermissionDeniedError(msg);
  if (r.status == 404) return NotFoundError(msg);
  return FailedPreconditionError(msg);
}

}  // namespace

StatusOr<S3Credentials> LoadCredentials(const std::string& file) {
  auto env = [](const char* name) -> std::string {
    const char* v = std::getenv(name);
    return v ? v : "";
  };
  if (!env("AWS_ACCESS_KEY_ID").empty() || !env("AWS_SECRET_ACCESS_KEY").empty()) {
    S3Credentials c{env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY"), env("AWS_SESSION_TOKEN")};
    if (c.access_key.empty() || c.secret_key.empty())
      return InvalidArgumentError("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must both be set");
    return c;
  }
  std::string path = file;
  if (path.empty()) path = env("AWS_SHARED_CREDENTIALS_FILE");
  if (path.empty() && !env("HOME").empty()) path = env("HOME") + "/.aws/credentials";
  if (path.empty() || !FileExists(path))
    return NotFoundError("no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or give a "
                         "credentials file");
  ASSIGN_OR_RETURN(std::string text, ReadFileToString(path));
  const std::string profile = env("AWS_PROFILE").empty() ? "default" : env("AWS_PROFILE");
  auto c = ParseCredentialsFile(text, profile);
  if (!c.ok()) return Status(c.status().code(), path + ": " + c.status().message());
  return c;
}

std::string RegionOr(const std::string& region) {
  if (!region.empty()) return region;
  for (const char* name : {"AWS_REGION", "AWS_DEFAULT_REGION"})
    if (const char* v = std::getenv(name); v && *v) return v;
  return "us-east-1";
}

StatusOr<LockMode> ParseLockMode(std::string_view s) {
  if (s == "compliance") return LockMode::kCompliance;
  if (s == "governance") return LockMode::kGovernance;
  if (s == "none") return LockMode::kNone;
  return InvalidArgumentError("lock mode must be compliance, governance or none (got " + std::string(s) + ")");
}

StatusOr<std::unique_ptr<S3Client>> S3Client::Create(const S3Config& config) {
  if (config.credentials.access_key.empty() || config.credentials.secret_key.empty())
    return InvalidArgumentError("S3 credentials missing (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)");
  std::unique_ptr<S3Client> c(new S3Client(config));
  ASSIGN_OR_RETURN(c->http_, client::HttpClient::Create(config.endpoint, config.tls));
  return c;
}

StatusOr<client::HttpResult> S3Client::Request(std::string_view method, std::string_view key,
                                               client::HttpHeaders headers, std::string_view body) {
  SigV4Request sig;
  sig.method = std::string(method);
  const std::string path = "/" + config_.bucket + "/" + std::string(key);
  sig.canonical_uri = UriEncodePath(http_->path_prefix() + path);
  sig.payload_sha256_hex = HexEncode(HashBytes(Sha256(body)));
  sig.amz_date = AmzDate(NowMicros() / 1000000);
  sig.region = config_.region;
  headers.emplace_back("x-amz-content-sha256", sig.payload_sha256_hex);
  headers.emplace_back("x-amz-date", sig.amz_date);
  if (!config_.credentials.session_token.empty())
    headers.emplace_back("x-amz-security-token", config_.credentials.session_token);
  sig.headers = headers;
  sig.headers.emplace_back("host", http_->host_header());
  headers.emplace_back("authorization", SignV4(sig, config_.credentials));
  busy_since_ms_.store(std::chrono::duration_cast<std::chrono::milliseconds>(
                           std::chrono::steady_clock::now().time_since_epoch())
                           .count());
  auto r = http_->Send(method, UriEncodePath(path), headers, body);
  busy_since_ms_.store(0);
  return r;
}

Status S3Client::Put(std::string_view key, std::string_view body, const ObjectLock& lock) {
  client::HttpHeaders h{{"content-md5", ContentMd5(body)}, {"content-type", "application/octet-stream"}};
  if (lock.mode != LockMode::kNone) {
    h.emplace_back("x-amz-object-lock-mode", lock.mode == LockMode::kCompliance ? "COMPLIANCE" : "GOVERNANCE");
    // Whole seconds: some stores reject fractional retain-until dates.
    std::string until = FormatRfc3339(lock.retain_until / 1000000 * 1000000);
    until = until.substr(0, 19) + "Z";
    h.emplace_back("x-amz-object-lock-retain-until-date", until);
  }
  ASSIGN_OR_RETURN(client::HttpResult r, Request("PUT", key, std::move(h), body));
  if (r.status != 200) return FromAnswer("PUT " + std::string(key), r);
  return OkStatus();
}

StatusOr<std::optional<std::string>> S3Client::HeadEtag(std::string_view key) {
  ASSIGN_OR_RETURN(client::HttpResult r, Request("HEAD", key, {}, ""));
  if (r.status == 404) return std::optional<std::string>();
  if (r.status != 200) return FromAnswer("HEAD " + std::string(key), r);
  std::string etag = r.etag;
  etag.erase(std::remove(etag.begin(), etag.end(), '"'), etag.end());
  std::transform(etag.begin(), etag.end(), etag.begin(), [](unsigned char c) { return std::tolower(c); });
  return std::optional<std::string>(std::move(etag));
}

StatusOr<std::string> S3Client::Get(std::string_view key) {
  ASSIGN_OR_RETURN(client::HttpResult r, Request("GET", key, {}, ""));
  if (r.status != 200) return FromAnswer("GET " + std::string(key), r);
  return std::move(r.body);
}

}  // namespace annals::archive
