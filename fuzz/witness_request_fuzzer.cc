// Feeds arbitrary bytes, as the body of POST /add-checkpoint, to the
// witness (src/witness/witness.h, c2sp.org/tlog-witness): the request
// parser and the whole check. Nothing may crash; every answer is one of
// the protocol's statuses; a 200 carries a cosignature that verifies on
// the checkpoint sent, and 409 for a stale size says the witness's size.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "checkpoint/cosignature.h"
#include "checkpoint/note.h"
#include "fuzz_check.h"
#include "witness/witness.h"

namespace {

// Fixed keys made by `annals keygen` for this fuzzer alone.
constexpr std::string_view kLogVkey = "fuzz.example/log+f4df9da2+AQa40TraMunYnri34KiEHqGyD56odbD+UvEu7iKmkOYx";
constexpr std::string_view kWitnessKey =
    "PRIVATE+KEY+fuzz.example/witness+aa72acc8+AXjXksx78LQ4ucObxZHN9RefjzqXa6RQ6RMC3my9MvM9";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using annals::witness::Witness;
  static Witness* w = [] {
    Witness::Options o;
    o.dir = "/tmp/annals-witness-fuzz-" + std::to_string(::getpid());
    o.key = std::string(kWitnessKey);
    o.logs = {std::string(kLogVkey)};
    o.now = [] { return uint64_t{1767225600}; };
    auto opened = Witness::Open(std::move(o));
    CHECK(opened.ok());
    return opened->release();
  }();
  static const auto verifier = [] {
    auto v = annals::note::CosignatureVerifier::FromVerifierKey(w->VerifierKey());
    CHECK(v.ok());
    return std::move(*v);
  }();
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  auto req = annals::witness::ParseAddCheckpoint(in);
  if (req.ok()) CHECK(req->proof.size() <= annals::witness::kMaxProofLines);
  annals::witness::Answer a = w->AddCheckpoint(in);
  CHECK(a.status == 200 || a.status == 400 || a.status == 403 || a.status == 404 || a.status == 409 ||
        a.status == 422 || a.status == 500);
  if (a.status != 200) CHECK(!a.body.empty());
  if (a.status == 200) {
    CHECK(req.ok());
    auto note = annals::note::ParseNote(req->checkpoint);
    CHECK(note.ok());
    auto cosigned = annals::note::ParseNote(note->text + "\n" + a.body);
    CHECK(cosigned.ok());
    CHECK(verifier->Verify(*cosigned).ok());
  }
  return 0;
}
