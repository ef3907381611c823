// Feeds arbitrary witness answers to the log side's reader
// (witness::ReadAddCheckpointAnswer, src/witness/witness.h): the first
// byte picks the status, the second the content type, the rest is the
// body; a first byte of 'S' puts a real cosignature by the witness's key
// in front of the body, so the fuzzer also works on answers that carry one.
// Nothing may crash; a "cosigned" reading is a single line that verifies on
// the checkpoint with the witness's key; a size reading comes only from a
// 409 of type text/x.tlog.size.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "checkpoint/cosignature.h"
#include "checkpoint/note.h"
#include "fuzz_check.h"
#include "witness/witness.h"

namespace {

// The witness_request fuzzer's witness key, and a checkpoint's note text.
constexpr std::string_view kWitnessKey =
    "PRIVATE+KEY+fuzz.example/witness+aa72acc8+AXjXksx78LQ4ucObxZHN9RefjzqXa6RQ6RMC3my9MvM9";
constexpr std::string_view kText = "fuzz.example/log\n3\nDQILAUOH+qAGq9voKB8Oytu3FARd8+64/BTmXjn3haM=\n";
constexpr int kStatuses[] = {200, 409, 422, 403, 404, 400, 500, 503, 0, 301};
constexpr std::string_view kTypes[] = {"text/x.tlog.size", "text/plain", "", "text/x.tlog.size; charset=utf-8"};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using annals::witness::Reply;
  static const auto cosigner = [] {
    auto c = annals::note::Cosigner::FromPrivateKey(kWitnessKey);
    CHECK(c.ok());
    return std::move(*c);
  }();
  static const auto verifier = [] {
    auto v = annals::note::CosignatureVerifier::FromVerifierKey(cosigner->VerifierKey());
    CHECK(v.ok());
    return std::move(*v);
  }();
  static const std::string real_line = [] {
    auto l = cosigner->Cosign(kText, 1767225600);
    CHECK(l.ok());
    return *l;
  }();
  if (size < 2) return 0;
  const int status = kStatuses[data[0] % (sizeof kStatuses / sizeof kStatuses[0])];
  const std::string_view type = kTypes[data[1] % (sizeof kTypes / sizeof kTypes[0])];
  std::string body(reinterpret_cast<const char*>(data + 2), size - 2);
  if (data[0] == 'S') body = real_line + body;
  const Reply r = annals::witness::ReadAddCheckpointAnswer(status, type, body, kText, *verifier);
  if (r.kind == Reply::kCosigned) {
    CHECK(status == 200);
    CHECK(!r.line.empty() && r.line.back() == '\n' && r.line.find('\n') == r.line.size() - 1);
    auto n = annals::note::ParseNote(std::string(kText) + "\n" + r.line);
    CHECK(n.ok());
    CHECK(verifier->Verify(*n).ok());
  } else if (r.kind != Reply::kSize) {
    CHECK(!r.error.empty());
  }
  if (r.kind == Reply::kSize) CHECK(status == 409 && type == "text/x.tlog.size");
  if (data[0] == 'S' && status == 200) CHECK(r.kind == Reply::kCosigned);
  return 0;
}
