#include "archive/s3_sign.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <ctime>

#include "common/bytes.h"
#include "common/sha256.h"

namespace annals::archive {

namespace {

std::string Hmac(std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &len);
  return std::string(reinterpret_cast<char*>(out), len);
}

std::string Md5(std::string_view body) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(body.data(), body.size(), out, &len, EVP_md5(), nullptr);
  return std::string(reinterpret_cast<char*>(out), len);
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

// SigV4's header value: trimmed, runs of spaces made one.
std::string CanonicalValue(std::string_view v) {
  v = Trim(v);
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == ' ' && !out.empty() && out.back() == ' ') continue;
    out.push_back(c);
  }
  return out;
}

bool Unreserved(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

bool ValidBucket(std::string_view b) {
  if (b.size() < 3 || b.size() > 63) return false;
  for (char c : b)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-')) return false;
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  return alnum(b.front()) && alnum(b.back()) && b.find("..") == std::string_view::npos;
}

}  // namespace

std::string SignV4(const SigV4Request& r, const S3Credentials& cred) {
  std::vector<std::pair<std::string, std::string>> headers;
  headers.reserve(r.headers.size());
  for (const auto& [k, v] : r.headers) headers.emplace_back(k, CanonicalValue(v));
  std::sort(headers.begin(), headers.end());
  std::string canonical = r.method + "\n" + r.canonical_uri + "\n" + r.canonical_query + "\n";
  std::string signed_headers;
  for (const auto& [k, v] : headers) {
    canonical += k + ":" + v + "\n";
    if (!signed_headers.empty()) signed_headers += ';';
    signed_headers += k;
  }
  canonical += "\n" + signed_headers + "\n" + r.payload_sha256_hex;
  const std::string day = r.amz_date.substr(0, 8);
  const std::string scope = day + "/" + r.region + "/" + r.service + "/aws4_request";
  const std::string to_sign = "AWS4-HMAC-SHA256\n" + r.amz_date + "\n" + scope + "\n" +
                              HexEncode(HashBytes(Sha256(canonical)));
  std::string key = Hmac("AWS4" + cred.secret_key, day);
  key = Hmac(key, r.region);
  key = Hmac(key, r.service);
  key = Hmac(key, "aws4_request");
  return "AWS4-HMAC-SHA256 Credential=" + cred.access_key + "/" + scope +
         ",SignedHeaders=" + signed_headers + ",Signature=" + HexEncode(Hmac(key, to_sign));
}

std::string UriEncodePath(std::string_view path) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(path.size());
  for (char c : path) {
    if (Unreserved(c) || c == '/') {
      out.push_back(c);
    } else {
      out.push_back('%');
      out.push_back(kHex[static_cast<unsigned char>(c) >> 4]);
      out.push_back(kHex[static_cast<unsigned char>(c) & 15]);
    }
  }
  return out;
}

std::string AmzDate(int64_t unix_seconds) {
  std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

std::string ContentMd5(std::string_view body) { return Base64Encode(Md5(body)); }
std::string Md5Hex(std::string_view body) { return HexEncode(Md5(body)); }

std::string S3Location::Key(std::string_view relative) const {
  if (prefix.empty()) return std::string(relative);
  return prefix + "/" + std::string(relative);
}

std::string S3Location::Url() const { return "s3://" + bucket + (prefix.empty() ? "" : "/" + prefix); }

StatusOr<S3Location> ParseS3Url(std::string_view url) {
  if (!url.starts_with("s3://")) return InvalidArgumentError("archive URL must be s3://BUCKET[/PREFIX]");
  url.remove_prefix(5);
  S3Location loc;
  const size_t slash = url.find('/');
  loc.bucket = std::string(url.substr(0, slash));
  if (!ValidBucket(loc.bucket))
    return InvalidArgumentError("bad bucket name \"" + loc.bucket +
                                "\": 3-63 characters of a-z 0-9 . -, starting and ending with a letter or digit");
  if (slash == std::string_view::npos) return loc;
  std::string_view prefix = url.substr(slash + 1);
  while (!prefix.empty() && prefix.back() == '/') prefix.remove_suffix(1);
  size_t start = 0;
  while (start < prefix.size()) {
    size_t end = prefix.find('/', start);
    if (end == std::string_view::npos) end = prefix.size();
    std::string_view seg = prefix.substr(start, end - start);
    if (seg.empty() || seg == "." || seg == "..")
      return InvalidArgumentError("bad archive prefix \"" + std::string(prefix) + "\": empty, . or .. segment");
    for (char c : seg)
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
        return InvalidArgumentError("bad archive prefix: control character");
    start = end + 1;
  }
  loc.prefix = std::string(prefix);
  return loc;
}

StatusOr<S3Credentials> ParseCredentialsFile(std::string_view text, std::string_view profile) {
  S3Credentials c;
  bool in_profile = false, found = false;
  size_t line_no = 0;
  while (!text.empty()) {
    ++line_no;
    size_t nl = text.find('\n');
    std::string_view line = Trim(text.substr(0, nl));
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    if (line[0] == '[') {
      if (line.back() != ']') return InvalidArgumentError("credentials line " + std::to_string(line_no) + ": unclosed [section]");
      in_profile = Trim(line.substr(1, line.size() - 2)) == profile;
      found |= in_profile;
      continue;
    }
    const size_t eq = line.find('=');
    if (eq == std::string_view::npos)
      return InvalidArgumentError("credentials line " + std::to_string(line_no) + ": want key = value");
    if (!in_profile) continue;
    std::string_view k = Trim(line.substr(0, eq)), v = Trim(line.substr(eq + 1));
    if (k == "aws_access_key_id") c.access_key = std::string(v);
    else if (k == "aws_secret_access_key") c.secret_key = std::string(v);
    else if (k == "aws_session_token") c.session_token = std::string(v);
  }
  if (!found) return NotFoundError("no [" + std::string(profile) + "] profile in the credentials file");
  if (c.access_key.empty() || c.secret_key.empty())
    return NotFoundError("profile [" + std::string(profile) +
                         "] lacks aws_access_key_id or aws_secret_access_key");
  return c;
}

std::string S3ErrorCode(std::string_view body) {
  const size_t open = body.find("<Code>");
  if (open == std::string_view::npos) return "";
  body.remove_prefix(open + 6);
  const size_t close = body.find("</Code>");
  if (close == std::string_view::npos || close > 64) return "";
  std::string code(body.substr(0, close));
  for (char c : code)
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) return "";
  return code;
}

std::string ArchiveState::Encode() const {
  return "annals-archive 1\ntarget " + target + "\nfull-through " + std::to_string(full_through) +
         "\nsize " + std::to_string(size) + "\nnext-segment " + std::to_string(next_segment) + "\n";
}

StatusOr<ArchiveState> ParseArchiveState(std::string_view text) {
  auto line = [&](std::string_view key) -> StatusOr<std::string_view> {
    const size_t nl = text.find('\n');
    if (nl == std::string_view::npos) return DataLossError("archive state: missing \"" + std::string(key) + "\" line");
    std::string_view l = text.substr(0, nl);
    text.remove_prefix(nl + 1);
    if (!l.starts_with(key) || l.size() <= key.size() || l[key.size()] != ' ')
      return DataLossError("archive state: want \"" + std::string(key) + " ...\", got \"" + std::string(l.substr(0, 64)) + "\"");
    return l.substr(key.size() + 1);
  };
  auto number = [&](std::string_view key, uint64_t* out) -> Status {
    ASSIGN_OR_RETURN(std::string_view v, line(key));
    auto n = ParseDecimal(v);
    if (!n) return DataLossError("archive state: " + std::string(key) + " is not a decimal number");
    *out = *n;
    return OkStatus();
  };
  ArchiveState s;
  ASSIGN_OR_RETURN(std::string_view version, line("annals-archive"));
  if (version != "1") return DataLossError("archive state: unknown version " + std::string(version.substr(0, 16)));
  ASSIGN_OR_RETURN(std::string_view target, line("target"));
  s.target = std::string(target);
  RETURN_IF_ERROR(number("full-through", &s.full_through));
  RETURN_IF_ERROR(number("size", &s.size));
  RETURN_IF_ERROR(number("next-segment", &s.next_segment));
  if (!text.empty()) return DataLossError("archive state: trailing bytes");
  if (s.full_through % 256)
    return DataLossError("archive state: full-through " + std::to_string(s.full_through) +
                         " is not a multiple of 256");
  return s;
}

}  // namespace annals::archive
