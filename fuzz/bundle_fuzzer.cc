// Evidence bundles (ledger/bundle.h) and the tar reader under them
// (common/tar.h), from hostile bytes.
//
// The first input byte is a mode, the rest the data:
//   bit 0 clear: the data is a bundle file. VerifyBundle (with the fuzz
//     key below) must not crash; a bundle it accepts must encode back to
//     exactly the same bytes (only canonical bundles pass), and tar::Read
//     must accept it too.
//   bit 0 set: the data is cut into entry payloads (each byte < 0x10 ends
//     one), appended to a tree, signed with the fuzz key and bundled (every
//     other entry); the bundle must verify, and with one byte changed (the
//     position from the data's first two bytes) must not.
// Also: tar::Read on the data must not crash, and what it accepts must be
// written back byte for byte.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "checkpoint/checkpoint.h"
#include "checkpoint/note.h"
#include "common/tar.h"
#include "fuzz_check.h"
#include "ledger/bundle.h"
#include "ledger/entry.h"
#include "merkle/merkle.h"

namespace {

// A key made for this fuzzer only (annals keygen --name fuzz.example/log).
constexpr char kPrivateKey[] = "PRIVATE+KEY+fuzz.example/log+bac8652c+AQJ597WtKaLQtQAUiHNAJsU4JTQZ7pddj1LgCbJ546xZ";
constexpr char kVerifierKey[] = "fuzz.example/log+bac8652c+ASnMDR+fgFILy6wepifKglExwokssAoxLhNN3CQl2gJB";

const annals::note::Signer& FuzzSigner() {
  static const annals::note::Signer* s = annals::note::Signer::FromPrivateKey(kPrivateKey)->release();
  return *s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t mode = data[0];
  const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);

  auto members = annals::tar::Read(rest, 64);
  if (members.ok()) {
    auto again = annals::tar::Write(*members);
    CHECK(again.ok() && *again == rest);
  }

  if ((mode & 1) == 0) {
    annals::ledger::Bundle b;
    auto r = annals::ledger::VerifyBundle(rest, kVerifierKey, &b);
    if (!r.ok()) {
      CHECK(r.status().code() == annals::StatusCode::kDataLoss);
      return 0;
    }
    CHECK(members.ok());
    auto again = annals::ledger::EncodeBundle(b);
    CHECK(again.ok() && *again == rest);
    CHECK(r->indexes.size() == b.entries.size());
    return 0;
  }

  // A log of the data's payloads, signed, and every other entry bundled.
  std::vector<std::string> entries;
  std::string payload;
  auto flush = [&] {
    auto e = annals::ledger::EncodeEntry(R"({"v":1})", payload, nullptr);
    CHECK(e.ok());
    entries.push_back(*e);
    payload.clear();
  };
  for (char c : rest.substr(rest.size() > 2 ? 2 : rest.size())) {
    if (static_cast<uint8_t>(c) < 0x10) flush();
    else payload.push_back(c);
  }
  flush();
  if (entries.size() > 64) return 0;
  std::vector<annals::Hash> leaves;
  for (const auto& e : entries) leaves.push_back(annals::merkle::HashLeaf(e));
  // Complete subtrees only, as merkle::NodeReader asks.
  std::function<annals::Hash(uint64_t, uint64_t)> node = [&](uint64_t level, uint64_t index) {
    if (level == 0) return leaves[index];
    return annals::merkle::HashChildren(node(level - 1, 2 * index), node(level - 1, 2 * index + 1));
  };
  auto read = [&](uint64_t level, uint64_t index) -> annals::StatusOr<annals::Hash> {
    return node(level, index);
  };
  const uint64_t n = entries.size();
  auto root = annals::merkle::RootHash(n, read);
  CHECK(root.ok());
  annals::checkpoint::Checkpoint cp;
  cp.origin = "fuzz.example/log";
  cp.size = n;
  cp.root = *root;
  auto note = FuzzSigner().SignNote(cp.Marshal());
  CHECK(note.ok());
  annals::ledger::Bundle b;
  b.checkpoint = *note;
  b.key = "fuzz.example/log+bac8652c";
  for (uint64_t i = 0; i < n; i += 2) {
    auto proof = annals::merkle::InclusionProof(i, n, read);
    CHECK(proof.ok());
    b.entries.push_back({i, entries[i], *proof, {}});
  }
  auto bytes = annals::ledger::EncodeBundle(b);
  CHECK(bytes.ok());
  auto ok = annals::ledger::VerifyBundle(*bytes, kVerifierKey);
  CHECK(ok.ok() && ok->indexes.size() == b.entries.size());
  const size_t at = rest.size() >= 2
                        ? (static_cast<uint8_t>(rest[0]) * 256u + static_cast<uint8_t>(rest[1])) % bytes->size()
                        : 0;
  std::string bad = *bytes;
  bad[at] = static_cast<char>(bad[at] ^ (1 + (mode >> 4)));
  auto broken = annals::ledger::VerifyBundle(bad, kVerifierKey);
  CHECK(!broken.ok() && broken.status().code() == annals::StatusCode::kDataLoss);
  return 0;
}
