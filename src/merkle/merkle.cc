#include "merkle/merkle.h"

#include <bit>
#include <string>
#include <utility>

namespace annals::merkle {

namespace {

// The MTH split point: the largest power of two strictly less than n (n >= 2).
uint64_t SplitPoint(uint64_t n) { return std::bit_floor(n - 1); }

// RFC 9162 PATH(index, D[begin:end]), appended bottom-up to *out.
Status AppendPath(uint64_t index, uint64_t begin, uint64_t end,
                  const NodeReader& read, std::vector<Hash>* out) {
  const uint64_t n = end - begin;
  if (n == 1) return OkStatus();
  const uint64_t mid = begin + SplitPoint(n);
  if (index < mid) {
    RETURN_IF_ERROR(AppendPath(index, begin, mid, read, out));
    ASSIGN_OR_RETURN(Hash right, RangeHash(mid, end, read));
    out->push_back(right);
  } else {
    RETURN_IF_ERROR(AppendPath(index, mid, end, read, out));
    ASSIGN_OR_RETURN(Hash left, RangeHash(begin, mid, read));
    out->push_back(left);
  }
  return OkStatus();
}

// RFC 9162 SUBPROOF(m, D[begin:end], complete), with m counted from begin,
// appended bottom-up to *out.
Status AppendSubproof(uint64_t m, uint64_t begin, uint64_t end, bool complete,
                      const NodeReader& read, std::vector<Hash>* out) {
  const uint64_t n = end - begin;
  if (m == n) {
    if (!complete) {
      ASSIGN_OR_RETURN(Hash h, RangeHash(begin, end, read));
      out->push_back(h);
    }
    return OkStatus();
  }
  const uint64_t k = SplitPoint(n);
  if (m <= k) {
    RETURN_IF_ERROR(AppendSubproof(m, begin, begin + k, complete, read, out));
    ASSIGN_OR_RETURN(Hash right, RangeHash(begin + k, end, read));
    out->push_back(right);
  } else {
    RETURN_IF_ERROR(
        AppendSubproof(m - k, begin + k, end, /*complete=*/false, read, out));
    ASSIGN_OR_RETURN(Hash left, RangeHash(begin, begin + k, read));
    out->push_back(left);
  }
  return OkStatus();
}

// Shifts fn and sn right together until LSB(fn) is set or fn is 0.
void ShiftUntilOddOrZero(uint64_t* fn, uint64_t* sn) {
  while (*fn != 0 && (*fn & 1) == 0) {
    *fn >>= 1;
    *sn >>= 1;
  }
}

Status ProofLengthError(size_t got) {
  return InvalidArgumentError("proof has the wrong number of hashes (" +
                              std::to_string(got) + ")");
}

}  // namespace

Hash HashLeaf(std::string_view entry) {
  static constexpr char kLeafPrefix[1] = {0x00};
  return Sha256Parts({std::string_view(kLeafPrefix, 1), entry});
}

Hash HashChildren(const Hash& left, const Hash& right) {
  static constexpr char kNodePrefix[1] = {0x01};
  return Sha256Parts(
      {std::string_view(kNodePrefix, 1), HashBytes(left), HashBytes(right)});
}

Hash EmptyRoot() { return Sha256(std::string_view()); }

StatusOr<Hash> RangeHash(uint64_t begin, uint64_t end, const NodeReader& read) {
  if (begin >= end) {
    return InvalidArgumentError("empty range [" + std::to_string(begin) + ", " +
                                std::to_string(end) + ")");
  }
  const uint64_t n = end - begin;
  if (std::has_single_bit(n) && begin % n == 0) {
    const int level = std::countr_zero(n);
    return read(level, begin >> level);
  }
  const uint64_t mid = begin + SplitPoint(n);
  ASSIGN_OR_RETURN(Hash left, RangeHash(begin, mid, read));
  ASSIGN_OR_RETURN(Hash right, RangeHash(mid, end, read));
  return HashChildren(left, right);
}

StatusOr<Hash> RootHash(uint64_t size, const NodeReader& read) {
  if (size == 0) return EmptyRoot();
  return RangeHash(0, size, read);
}

StatusOr<std::vector<Hash>> InclusionProof(uint64_t index, uint64_t size,
                                           const NodeReader& read) {
  if (index >= size) {
    return OutOfRangeError("leaf index " + std::to_string(index) +
                           " is not below tree size " + std::to_string(size));
  }
  std::vector<Hash> proof;
  RETURN_IF_ERROR(AppendPath(index, 0, size, read, &proof));
  return proof;
}

StatusOr<std::vector<Hash>> ConsistencyProof(uint64_t size1, uint64_t size2,
                                             const NodeReader& read) {
  if (size1 > size2) {
    return InvalidArgumentError("size1 " + std::to_string(size1) +
                                " exceeds size2 " + std::to_string(size2));
  }
  std::vector<Hash> proof;
  if (size1 == 0 || size1 == size2) return proof;
  RETURN_IF_ERROR(
      AppendSubproof(size1, 0, size2, /*complete=*/true, read, &proof));
  return proof;
}

Status VerifyInclusion(uint64_t index, uint64_t size, const Hash& leaf_hash,
                       const std::vector<Hash>& proof, const Hash& root) {
  if (index >= size) {
    return OutOfRangeError("leaf index " + std::to_string(index) +
                           " is not below tree size " + std::to_string(size));
  }
  uint64_t fn = index;
  uint64_t sn = size - 1;
  Hash r = leaf_hash;
  for (const Hash& p : proof) {
    if (sn == 0) return ProofLengthError(proof.size());
    if ((fn & 1) == 1 || fn == sn) {
      r = HashChildren(p, r);
      ShiftUntilOddOrZero(&fn, &sn);
    } else {
      r = HashChildren(r, p);
    }
    fn >>= 1;
    sn >>= 1;
  }
  if (sn != 0) return ProofLengthError(proof.size());
  if (r != root) {
    return InvalidArgumentError("inclusion proof does not lead to the root");
  }
  return OkStatus();
}

Status VerifyConsistency(uint64_t size1, uint64_t size2,
                         const std::vector<Hash>& proof, const Hash& root1,
                         const Hash& root2) {
  if (size1 > size2) {
    return InvalidArgumentError("size1 " + std::to_string(size1) +
                                " exceeds size2 " + std::to_string(size2));
  }
  if (size1 == 0) {
    return InvalidArgumentError(
        "consistency with the empty tree is meaningless");
  }
  if (size1 == size2) {
    if (!proof.empty()) {
      return InvalidArgumentError("equal sizes need an empty proof");
    }
    if (root1 != root2)
      return InvalidArgumentError("roots differ at equal sizes");
    return OkStatus();
  }
  if (proof.empty()) return InvalidArgumentError("empty consistency proof");

  // RFC 9162 2.1.4.2. When size1 is a power of two, root1 is the implicit
  // first element of the path.
  size_t next = 0;
  Hash fr;
  if (std::has_single_bit(size1)) {
    fr = root1;
  } else {
    fr = proof[next++];
  }
  Hash sr = fr;
  uint64_t fn = size1 - 1;
  uint64_t sn = size2 - 1;
  while ((fn & 1) == 1) {
    fn >>= 1;
    sn >>= 1;
  }
  for (; next < proof.size(); ++next) {
    const Hash& c = proof[next];
    if (sn == 0) return ProofLengthError(proof.size());
    if ((fn & 1) == 1 || fn == sn) {
      fr = HashChildren(c, fr);
      sr = HashChildren(c, sr);
      ShiftUntilOddOrZero(&fn, &sn);
    } else {
      sr = HashChildren(sr, c);
    }
    fn >>= 1;
    sn >>= 1;
  }
  if (sn != 0) return ProofLengthError(proof.size());
  if (fr != root1) {
    return InvalidArgumentError("consistency proof does not lead to root1");
  }
  if (sr != root2) {
    return InvalidArgumentError("consistency proof does not lead to root2");
  }
  return OkStatus();
}

StatusOr<CompactRange> CompactRange::FromNodes(uint64_t size,
                                               const NodeReader& read) {
  CompactRange range;
  uint64_t begin = 0;
  for (int level = 63; level >= 0; --level) {
    const uint64_t width = uint64_t{1} << level;
    if ((size & width) == 0) continue;
    ASSIGN_OR_RETURN(Hash h, read(level, begin >> level));
    range.border_.push_back(h);
    begin += width;
  }
  range.size_ = size;
  return range;
}

void CompactRange::Append(const Hash& leaf_hash, const NodeVisitor& visit) {
  Hash h = leaf_hash;
  uint64_t index = size_;
  uint64_t level = 0;
  if (visit) visit(level, index, h);
  // Each trailing set bit of size_ is a left sibling that is now complete.
  for (uint64_t bits = size_; (bits & 1) == 1; bits >>= 1) {
    h = HashChildren(border_.back(), h);
    border_.pop_back();
    ++level;
    index >>= 1;
    if (visit) visit(level, index, h);
  }
  border_.push_back(h);
  ++size_;
}

Hash CompactRange::Root() const {
  if (border_.empty()) return EmptyRoot();
  Hash root = border_.back();
  for (size_t i = border_.size() - 1; i > 0; --i) {
    root = HashChildren(border_[i - 1], root);
  }
  return root;
}

}  // namespace annals::merkle
