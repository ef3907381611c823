// RFC 6962 / RFC 9162 Merkle tree hashing, proof generation and verification,
// and the compact range used to grow the tree incrementally. Pure: no I/O;
// node hashes come from a caller-supplied NodeReader. Thread-safe functions;
// CompactRange is thread-compatible.
#ifndef ANNALS_MERKLE_MERKLE_H_
#define ANNALS_MERKLE_MERKLE_H_

#include <cstdint>
#include <functional>
#include <string_view>
#include <vector>

#include "common/sha256.h"
#include "common/status.h"

namespace annals::merkle {

// SHA-256(0x00 || entry).
Hash HashLeaf(std::string_view entry);
// SHA-256(0x01 || left || right).
Hash HashChildren(const Hash& left, const Hash& right);
// SHA-256 of the empty string: the root of the empty tree.
Hash EmptyRoot();

// Returns the hash of the complete (perfect) subtree at `level` whose leftmost
// node has index `index` at that level, i.e. covering leaves
// [index << level, (index + 1) << level). Level 0 is the leaf hashes.
using NodeReader = std::function<StatusOr<Hash>(uint64_t level, uint64_t index)>;

// MTH of the leaves [begin, end), from complete subtrees only (begin < end).
StatusOr<Hash> RangeHash(uint64_t begin, uint64_t end, const NodeReader& read);
// Root hash of a tree of `size` leaves (EmptyRoot() for 0).
StatusOr<Hash> RootHash(uint64_t size, const NodeReader& read);

// RFC 9162 2.1.3.1: audit path for leaf `index` in a tree of `size` leaves.
// OutOfRange if index >= size.
StatusOr<std::vector<Hash>> InclusionProof(uint64_t index, uint64_t size,
                                           const NodeReader& read);
// RFC 9162 2.1.4.1: proof that tree `size2` extends tree `size1`.
// Empty for size1 == size2 or size1 == 0. InvalidArgument if size1 > size2.
StatusOr<std::vector<Hash>> ConsistencyProof(uint64_t size1, uint64_t size2,
                                             const NodeReader& read);

// RFC 9162 2.1.3.2. OK iff the proof is exactly right (no extra hashes).
Status VerifyInclusion(uint64_t index, uint64_t size, const Hash& leaf_hash,
                       const std::vector<Hash>& proof, const Hash& root);
// RFC 9162 2.1.4.2, with current transparency-dev/merkle edge cases:
// size1 > size2 and size1 == 0 always fail (consistency with the empty tree
// is meaningless); size1 == size2 needs an empty proof and equal roots.
Status VerifyConsistency(uint64_t size1, uint64_t size2,
                         const std::vector<Hash>& proof, const Hash& root1,
                         const Hash& root2);

// The right border of a tree growing from leaf 0: one hash per set bit of
// size(), largest subtree first. Appending reports every complete subtree that
// the append completes (the leaf itself at level 0 included), lowest level
// first, so a caller can persist tiles.
class CompactRange {
 public:
  using NodeVisitor =
      std::function<void(uint64_t level, uint64_t index, const Hash& hash)>;

  CompactRange() = default;
  // Rebuilds the border of a tree of `size` leaves from stored nodes.
  static StatusOr<CompactRange> FromNodes(uint64_t size, const NodeReader& read);

  void Append(const Hash& leaf_hash, const NodeVisitor& visit);
  uint64_t size() const { return size_; }
  Hash Root() const;
  const std::vector<Hash>& border() const { return border_; }

 private:
  uint64_t size_ = 0;
  std::vector<Hash> border_;
};

}  // namespace annals::merkle

#endif  // ANNALS_MERKLE_MERKLE_H_
