// Feeds arbitrary bytes to the archive's readers of text it did not write
// itself: the AWS credentials file, an S3 error answer, the s3:// URL, and
// the archive state file (DATA/archive/state). No crash; what parses
// re-encodes to the same value.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "archive/s3_sign.h"
#include "fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace annals::archive;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  auto creds = ParseCredentialsFile(in, "default");
  CHECK(!creds.ok() || (!creds->access_key.empty() && !creds->secret_key.empty()));
  CHECK(S3ErrorCode(in).size() <= 64);
  auto loc = ParseS3Url(in);
  if (loc.ok()) {
    auto again = ParseS3Url(loc->Url());
    CHECK(again.ok() && again->bucket == loc->bucket && again->prefix == loc->prefix);
  }
  auto st = ParseArchiveState(in);
  if (st.ok()) {
    auto again = ParseArchiveState(st->Encode());
    CHECK(again.ok() && again->Encode() == st->Encode());
  }
  return 0;
}
