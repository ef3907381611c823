// Feeds arbitrary bytes, as a cosigned checkpoint, to the cosignature/v1
// readers (c2sp.org/tlog-cosignature; src/checkpoint/cosignature.h): the
// note parser, ParseCosignature on every signature line and a cosigner's
// verifier. Nothing may crash; a cosignature this fuzzer's own cosigner
// makes on the text verifies and gives its time back, and one on other
// text does not.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "checkpoint/cosignature.h"
#include "fuzz_check.h"

using annals::note::Cosigner;
using annals::note::CosignatureVerifier;

namespace {

// A fixed key made by `annals keygen` for this fuzzer alone.
constexpr std::string_view kKey = "PRIVATE+KEY+fuzz.example/witness+aa72acc8+AXjXksx78LQ4ucObxZHN9RefjzqXa6RQ6RMC3my9MvM9";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::unique_ptr<Cosigner> cosigner = [] {
    auto c = Cosigner::FromPrivateKey(kKey);
    CHECK(c.ok());
    return std::move(*c);
  }();
  static const std::unique_ptr<CosignatureVerifier> verifier = [] {
    auto v = CosignatureVerifier::FromVerifierKey(cosigner->VerifierKey());
    CHECK(v.ok());
    return std::move(*v);
  }();
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  auto note = annals::note::ParseNote(in);
  if (!note.ok()) return 0;
  for (const auto& sig : note->signatures) {
    auto c = annals::note::ParseCosignature(sig.signature);
    if (c.ok()) CHECK(c->signature.size() == 64 && c->timestamp <= (uint64_t{1} << 63) - 1);
  }
  (void)verifier->Verify(*note);  // any answer, no crash
  // Our own cosignature on the note's text, appended: it verifies.
  const uint64_t t = size * 7919;
  auto line = cosigner->Cosign(note->text, t);
  CHECK(line.ok());
  std::string cosigned = note->text + "\n";
  cosigned += *line;
  auto again = annals::note::ParseNote(cosigned);
  CHECK(again.ok());
  auto got = verifier->Verify(*again);
  CHECK(got.ok() && *got == t);
  // Moved onto other text, it does not.
  std::string moved = "other\n" + note->text + "\n" + *line;
  auto other = annals::note::ParseNote(moved);
  CHECK(other.ok());
  CHECK(!verifier->Verify(*other).ok());
  return 0;
}
