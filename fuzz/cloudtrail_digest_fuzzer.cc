// Feeds arbitrary bytes to the readers of CloudTrail's evidence: a digest
// file (ingest::ParseCloudTrailDigest), the list of public keys
// (ParseCloudTrailPublicKeys) and the signature check with whatever keys
// that list gave. Anything may be refused, never with a crash or an empty
// reason; an accepted digest's log hashes are 64 lowercase hex digits, and
// its string to sign ends with the previous signature or "null".
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "ingest/cloudtrail_digest.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  auto d = annals::ingest::ParseCloudTrailDigest(input);
  if (!d.ok() && d.status().message().empty()) std::abort();
  auto keys = annals::ingest::ParseCloudTrailPublicKeys(input);
  if (!keys.ok() && keys.status().message().empty()) std::abort();
  if (!d.ok()) return 0;
  for (const auto& lf : d->logs) {
    if (lf.hash.size() != 64) std::abort();
    for (char c : lf.hash)
      if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) std::abort();
  }
  const std::string s = annals::ingest::DigestStringToSign(*d);
  if (!s.ends_with(d->prev_signature.value_or("null"))) std::abort();
  if (keys.ok()) {
    annals::Status v = annals::ingest::VerifyDigestSignature(*d, std::string(input.substr(0, 64)), *keys);
    if (!v.ok() && v.message().empty()) std::abort();
  }
  return 0;
}
