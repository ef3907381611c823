// Evidence bundles (docs/format/bundle.md): chosen entries of a log, each
// with its inclusion proof against one signed checkpoint, in one tar file
// that `annals verify --bundle FILE --key VKEY` checks offline, with
// nothing else. What an incident report or an auditor receives.
#ifndef ANNALS_LEDGER_BUNDLE_H_
#define ANNALS_LEDGER_BUNDLE_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/sha256.h"
#include "common/status.h"

namespace annals::ledger {

struct BundleEntry {
  uint64_t index = 0;
  std::string entry;         // the whole entry: the Merkle leaf's data
  std::vector<Hash> proof;   // RFC 9162 inclusion proof in the checkpoint's tree
  // For an entry whose payload is in the blob store (over 64 KiB): the
  // payload, whose SHA-256 and size the entry holds; empty: not included.
  std::string payload;
};

struct Bundle {
  std::string checkpoint;      // the signed note every proof is against
  std::string key;             // the log key's "name+hash" (no public key)
  std::vector<BundleEntry> entries;  // by index, ascending, no repeats
};

// The tar file. InvalidArgument if the entries are not ascending.
StatusOr<std::string> EncodeBundle(const Bundle& bundle);

struct BundleReport {
  std::string origin;
  uint64_t tree_size = 0;
  std::vector<uint64_t> indexes;
  // Entries whose payload is in the blob store (over 64 KiB): the entry,
  // so its payload's SHA-256, is proven, and the payload is checked
  // against it when the bundle carries it (external_payloads_included).
  uint64_t external_payloads = 0;
  uint64_t external_payloads_included = 0;
};

// Checks a bundle with the log's verifier key: the archive is canonical,
// the checkpoint is signed by the key and names its origin, every entry
// decodes and is in the checkpoint's tree at its index, and every blob
// payload carried has the digest and size its entry names. DataLoss naming the
// member on any failure; the decoded bundle in *out if given.
StatusOr<BundleReport> VerifyBundle(std::string_view tar_bytes, std::string_view verifier_key,
                                    Bundle* out = nullptr);

// Bounds a bundle reader holds to (a hostile file cannot ask for more).
inline constexpr size_t kMaxBundleEntries = 1000000;

}  // namespace annals::ledger

#endif  // ANNALS_LEDGER_BUNDLE_H_
