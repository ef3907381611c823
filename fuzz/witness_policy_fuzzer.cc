// Feeds arbitrary bytes to the witness policy parser (src/witness/policy.h,
// c2sp.org/tlog-policy and Sigsum's form). Nothing may crash; an accepted
// policy is met when every witness cosigned, its quorum description is
// never empty, and a note checked against it is never "met" unless the
// policy's quorum is met by the witnesses found.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.h"
#include "witness/policy.h"

namespace {

// A checkpoint signed by fuzz.example/log (the key in the seeds' log lines)
// with no cosignature.
constexpr std::string_view kNote =
    "fuzz.example/log\n"
    "3\n"
    "DQILAUOH+qAGq9voKB8Oytu3FARd8+64/BTmXjn3haM=\n"
    "\n"
    "— fuzz.example/log u/HNG/I51iqxz24AKfezar/aueKZv1wqcejXxC8VhqRPlrIjWr9BuzZ4LMs3FTW/P/XcaiYUpzPr6TXT1Peuf3ykKQY=\n";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  auto p = annals::witness::Policy::Parse(in);
  if (!p.ok()) {
    CHECK(p.status().code() == annals::StatusCode::kInvalidArgument);
    CHECK(!p.status().message().empty());
    return 0;
  }
  const size_t n = p->witnesses().size();
  CHECK(p->QuorumMet(std::vector<bool>(n, true)));
  CHECK(!p->DescribeQuorum().empty());
  for (const auto& w : p->witnesses()) CHECK(w.verifier != nullptr && !w.name.empty());
  for (const auto& l : p->logs()) CHECK(l.verifier != nullptr && !l.origin.empty());
  auto q = annals::witness::CheckQuorum(*p, kNote);
  if (q.ok()) {
    CHECK(q->witnessed.empty());  // the note carries no cosignature
    CHECK(q->met == p->QuorumMet(std::vector<bool>(n, false)));
  }
  return 0;
}
