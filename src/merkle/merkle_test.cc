#include "merkle/merkle.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "common/bytes.h"

namespace annals::merkle {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const fs::path kVectorDir = fs::path(ANNALS_CORPUS_DIR) / "merkle-vectors";

json ReadJson(const fs::path& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << path;
  return json::parse(in);
}

Hash HashFromHex(const std::string& hex) {
  std::optional<std::string> bytes = HexDecode(hex);
  EXPECT_TRUE(bytes.has_value()) << hex;
  EXPECT_EQ(bytes->size(), 32u) << hex;
  Hash h{};
  std::copy_n(bytes->begin(), std::min<size_t>(bytes->size(), 32), h.begin());
  return h;
}

// The API takes fixed-size hashes, so values of another length cannot reach
// it. The vectors include such values ("", "don't care 1"); transparency-dev
// rejects a wrong-length leaf hash outright and otherwise just compares bytes,
// so such a value equals only itself. Map each to a stand-in hash that no
// real hash equals, and report it through *wrong_length when asked.
Hash HashFromBase64(const std::string& b64, bool* wrong_length = nullptr) {
  std::optional<std::string> bytes = Base64Decode(b64);
  EXPECT_TRUE(bytes.has_value()) << b64;
  if (wrong_length != nullptr) *wrong_length = bytes->size() != 32;
  if (bytes->size() != 32) return Sha256("wrong-length hash: " + *bytes);
  Hash h;
  std::copy(bytes->begin(), bytes->end(), h.begin());
  return h;
}

std::vector<Hash> ProofFromJson(const json& j) {
  std::vector<Hash> proof;
  if (j.is_null()) return proof;
  for (const json& p : j) proof.push_back(HashFromBase64(p.get<std::string>()));
  return proof;
}

std::vector<fs::path> JsonFilesUnder(const fs::path& dir) {
  std::vector<fs::path> files;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (entry.is_regular_file() && entry.path().extension() == ".json") {
      files.push_back(entry.path());
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

// Independent reference: MTH straight from the leaf hashes.
Hash ReferenceMth(const std::vector<Hash>& leaves, uint64_t begin,
                  uint64_t end) {
  if (end - begin == 1) return leaves[begin];
  uint64_t k = 1;
  while (k * 2 < end - begin) k *= 2;
  return HashChildren(ReferenceMth(leaves, begin, begin + k),
                      ReferenceMth(leaves, begin + k, end));
}

// Reference RFC 9162 PATH over leaves [begin, end).
std::vector<Hash> ReferencePath(const std::vector<Hash>& leaves, uint64_t m,
                                uint64_t begin, uint64_t end) {
  if (end - begin == 1) return {};
  uint64_t k = 1;
  while (k * 2 < end - begin) k *= 2;
  std::vector<Hash> path;
  if (m < k) {
    path = ReferencePath(leaves, m, begin, begin + k);
    path.push_back(ReferenceMth(leaves, begin + k, end));
  } else {
    path = ReferencePath(leaves, m - k, begin + k, end);
    path.push_back(ReferenceMth(leaves, begin, begin + k));
  }
  return path;
}

// Reference RFC 9162 SUBPROOF over leaves [begin, end).
std::vector<Hash> ReferenceSubproof(const std::vector<Hash>& leaves, uint64_t m,
                                    uint64_t begin, uint64_t end, bool b) {
  const uint64_t n = end - begin;
  if (m == n) {
    if (b) return {};
    return {ReferenceMth(leaves, begin, end)};
  }
  uint64_t k = 1;
  while (k * 2 < n) k *= 2;
  std::vector<Hash> proof;
  if (m <= k) {
    proof = ReferenceSubproof(leaves, m, begin, begin + k, b);
    proof.push_back(ReferenceMth(leaves, begin + k, end));
  } else {
    proof = ReferenceSubproof(leaves, m - k, begin + k, end, false);
    proof.push_back(ReferenceMth(leaves, begin, begin + k));
  }
  return proof;
}

// Brute-force in-memory tree: every complete subtree hash, by level.
class MemoryTree {
 public:
  explicit MemoryTree(std::vector<Hash> leaves) {
    levels_.push_back(std::move(leaves));
    while (levels_.back().size() > 1) {
      const std::vector<Hash>& below = levels_.back();
      std::vector<Hash> above;
      for (size_t i = 0; i + 1 < below.size(); i += 2) {
        above.push_back(HashChildren(below[i], below[i + 1]));
      }
      levels_.push_back(std::move(above));
    }
  }

  const std::vector<Hash>& leaves() const { return levels_[0]; }
  const std::vector<std::vector<Hash>>& levels() const { return levels_; }

  // Serves only complete subtrees that lie inside leaves [begin, end), and
  // counts the reads in *reads when given.
  NodeReader Reader(uint64_t begin, uint64_t end, int* reads = nullptr) const {
    return [this, begin, end, reads](uint64_t level,
                                     uint64_t index) -> StatusOr<Hash> {
      if (reads != nullptr) ++*reads;
      if (level >= 64 || level >= levels_.size() ||
          index >= levels_[level].size() || (index << level) < begin ||
          ((index + 1) << level) > end) {
        ADD_FAILURE() << "read of node (" << level << ", " << index
                      << ") outside [" << begin << ", " << end << ")";
        return NotFoundError("no such node");
      }
      return levels_[level][index];
    };
  }
  NodeReader Reader(uint64_t size) const { return Reader(0, size); }

 private:
  std::vector<std::vector<Hash>> levels_;
};

MemoryTree SyntheticTree(uint64_t size) {
  std::vector<Hash> leaves;
  for (uint64_t i = 0; i < size; ++i) {
    leaves.push_back(HashLeaf("leaf " + std::to_string(i)));
  }
  return MemoryTree(std::move(leaves));
}

class ReferenceTreeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    json j = ReadJson(kVectorDir / "rfc6962-reference-tree.json");
    for (const json& hex : j["leaf_inputs_hex"]) {
      inputs_.push_back(*HexDecode(hex.get<std::string>()));
    }
    for (const json& level : j["node_hashes_hex_by_level"]) {
      std::vector<Hash> hashes;
      for (const json& hex : level) hashes.push_back(HashFromHex(hex));
      nodes_.push_back(std::move(hashes));
    }
    for (const json& hex : j["root_hashes_hex_by_tree_size"]) {
      roots_.push_back(HashFromHex(hex));
    }
    ASSERT_EQ(inputs_.size(), 8u);
    ASSERT_EQ(nodes_.size(), 4u);
    ASSERT_EQ(roots_.size(), 9u);
    std::vector<Hash> leaves;
    for (const std::string& in : inputs_) leaves.push_back(HashLeaf(in));
    tree_ = std::make_unique<MemoryTree>(std::move(leaves));
  }

  std::vector<std::string> inputs_;
  std::vector<std::vector<Hash>> nodes_;
  std::vector<Hash> roots_;
  std::unique_ptr<MemoryTree> tree_;
};

TEST_F(ReferenceTreeTest, LeafAndNodeHashesMatch) {
  for (size_t i = 0; i < inputs_.size(); ++i) {
    EXPECT_EQ(HashLeaf(inputs_[i]), nodes_[0][i]) << "leaf " << i;
  }
  for (size_t level = 1; level < nodes_.size(); ++level) {
    for (size_t i = 0; i < nodes_[level].size(); ++i) {
      EXPECT_EQ(
          HashChildren(nodes_[level - 1][2 * i], nodes_[level - 1][2 * i + 1]),
          nodes_[level][i])
          << "level " << level << " index " << i;
    }
  }
}

TEST_F(ReferenceTreeTest, RootHashForEverySize) {
  EXPECT_EQ(EmptyRoot(), roots_[0]);
  for (uint64_t size = 0; size <= 8; ++size) {
    StatusOr<Hash> root = RootHash(size, tree_->Reader(size));
    ASSERT_TRUE(root.ok()) << root.status().ToString();
    EXPECT_EQ(*root, roots_[size]) << "size " << size;
  }
}

TEST_F(ReferenceTreeTest, CompactRangeRootForEverySize) {
  CompactRange range;
  EXPECT_EQ(range.Root(), roots_[0]);
  for (size_t i = 0; i < inputs_.size(); ++i) {
    range.Append(HashLeaf(inputs_[i]), nullptr);
    EXPECT_EQ(range.size(), i + 1);
    EXPECT_EQ(range.Root(), roots_[i + 1]) << "size " << i + 1;
  }
}

TEST(MerkleTest, EmptyRootIsSha256OfNothing) {
  EXPECT_EQ(HexEncode(HashBytes(EmptyRoot())),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(MerkleTest, InclusionVectors) {
  const std::vector<fs::path> files =
      JsonFilesUnder(kVectorDir / "transparency-dev-merkle" / "inclusion");
  ASSERT_GE(files.size(), 50u);
  int ok = 0;
  for (const fs::path& file : files) {
    SCOPED_TRACE(file.string());
    json j = ReadJson(file);
    bool bad_leaf_hash = false;
    const Hash leaf_hash = HashFromBase64(j["leafHash"], &bad_leaf_hash);
    if (bad_leaf_hash) {
      // Rejected while decoding, before verification.
      EXPECT_TRUE(j["wantErr"].get<bool>());
      continue;
    }
    Status s = VerifyInclusion(
        j["leafIdx"].get<uint64_t>(), j["treeSize"].get<uint64_t>(), leaf_hash,
        ProofFromJson(j["proof"]), HashFromBase64(j["root"]));
    EXPECT_EQ(s.ok(), !j["wantErr"].get<bool>()) << s.ToString();
    ok += s.ok();
  }
  EXPECT_GE(ok, 6);
}

TEST(MerkleTest, ConsistencyVectors) {
  const std::vector<fs::path> files =
      JsonFilesUnder(kVectorDir / "transparency-dev-merkle" / "consistency");
  ASSERT_GE(files.size(), 50u);
  int ok = 0;
  for (const fs::path& file : files) {
    SCOPED_TRACE(file.string());
    json j = ReadJson(file);
    Status s = VerifyConsistency(
        j["size1"].get<uint64_t>(), j["size2"].get<uint64_t>(),
        ProofFromJson(j["proof"]), HashFromBase64(j["root1"]),
        HashFromBase64(j["root2"]));
    EXPECT_EQ(s.ok(), !j["wantErr"].get<bool>()) << s.ToString();
    ok += s.ok();
  }
  EXPECT_GE(ok, 6);
}

// Every happy-path vector over the reference tree must be exactly the proof
// we generate.
TEST_F(ReferenceTreeTest, GeneratedProofsEqualHappyPathVectors) {
  const fs::path dir = kVectorDir / "transparency-dev-merkle";
  int compared = 0;
  for (const fs::path& file : JsonFilesUnder(dir / "inclusion")) {
    json j = ReadJson(file);
    const uint64_t index = j["leafIdx"];
    const uint64_t size = j["treeSize"];
    if (j["wantErr"].get<bool>() || size > 8 || index >= size ||
        HashFromBase64(j["root"]) != roots_[size]) {
      continue;
    }
    SCOPED_TRACE(file.string());
    StatusOr<std::vector<Hash>> proof =
        InclusionProof(index, size, tree_->Reader(size));
    ASSERT_TRUE(proof.ok()) << proof.status().ToString();
    EXPECT_EQ(*proof, ProofFromJson(j["proof"]));
    ++compared;
  }
  for (const fs::path& file : JsonFilesUnder(dir / "consistency")) {
    json j = ReadJson(file);
    const uint64_t size1 = j["size1"];
    const uint64_t size2 = j["size2"];
    if (j["wantErr"].get<bool>() || size1 == 0 || size1 > size2 || size2 > 8 ||
        HashFromBase64(j["root1"]) != roots_[size1] ||
        HashFromBase64(j["root2"]) != roots_[size2]) {
      continue;
    }
    SCOPED_TRACE(file.string());
    StatusOr<std::vector<Hash>> proof =
        ConsistencyProof(size1, size2, tree_->Reader(size2));
    ASSERT_TRUE(proof.ok()) << proof.status().ToString();
    EXPECT_EQ(*proof, ProofFromJson(j["proof"]));
    ++compared;
  }
  // 5 inclusion + 5 consistency happy paths.
  EXPECT_EQ(compared, 10);
}

TEST(MerkleTest, RangeHashReadsOnlyCompleteSubtreesInsideTheRange) {
  const MemoryTree tree = SyntheticTree(70);
  for (uint64_t begin = 0; begin < 70; ++begin) {
    for (uint64_t end = begin + 1; end <= 70; ++end) {
      int reads = 0;
      StatusOr<Hash> h = RangeHash(begin, end, tree.Reader(begin, end, &reads));
      ASSERT_TRUE(h.ok()) << begin << ".." << end;
      ASSERT_EQ(*h, ReferenceMth(tree.leaves(), begin, end))
          << begin << ".." << end;
      if (std::has_single_bit(end - begin) && begin % (end - begin) == 0) {
        EXPECT_EQ(reads, 1) << begin << ".." << end;
      }
    }
  }
}

TEST(MerkleTest, RangeHashRejectsEmptyRange) {
  const MemoryTree tree = SyntheticTree(4);
  EXPECT_EQ(RangeHash(2, 2, tree.Reader(4)).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(RangeHash(3, 2, tree.Reader(4)).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(MerkleTest, RootHashReadsOneNodePerSetBitForAlignedSizes) {
  const MemoryTree tree = SyntheticTree(300);
  for (uint64_t size = 1; size <= 300; ++size) {
    int reads = 0;
    StatusOr<Hash> root = RootHash(size, tree.Reader(0, size, &reads));
    ASSERT_TRUE(root.ok());
    EXPECT_EQ(*root, ReferenceMth(tree.leaves(), 0, size)) << size;
    EXPECT_EQ(reads, std::popcount(size)) << size;
  }
}

TEST(MerkleTest, ReaderErrorsPropagate) {
  NodeReader failing = [](uint64_t, uint64_t) -> StatusOr<Hash> {
    return UnavailableError("disk gone");
  };
  EXPECT_EQ(RootHash(5, failing).status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(InclusionProof(1, 5, failing).status().code(),
            StatusCode::kUnavailable);
  EXPECT_EQ(ConsistencyProof(3, 5, failing).status().code(),
            StatusCode::kUnavailable);
  EXPECT_EQ(CompactRange::FromNodes(5, failing).status().code(),
            StatusCode::kUnavailable);
}

TEST(MerkleTest, InclusionProofsForAllSizesUpTo300Verify) {
  const MemoryTree tree = SyntheticTree(300);
  for (uint64_t size = 1; size <= 300; ++size) {
    const Hash root = ReferenceMth(tree.leaves(), 0, size);
    for (uint64_t index = 0; index < size; ++index) {
      StatusOr<std::vector<Hash>> proof =
          InclusionProof(index, size, tree.Reader(size));
      ASSERT_TRUE(proof.ok()) << index << "/" << size;
      ASSERT_EQ(*proof, ReferencePath(tree.leaves(), index, 0, size))
          << index << "/" << size;
      Status s =
          VerifyInclusion(index, size, tree.leaves()[index], *proof, root);
      ASSERT_TRUE(s.ok()) << index << "/" << size << ": " << s.ToString();
    }
  }
}

TEST(MerkleTest, ConsistencyProofsForAllSizesUpTo300Verify) {
  const MemoryTree tree = SyntheticTree(300);
  std::vector<Hash> roots(301);
  for (uint64_t size = 1; size <= 300; ++size) {
    roots[size] = ReferenceMth(tree.leaves(), 0, size);
  }
  for (uint64_t size2 = 1; size2 <= 300; ++size2) {
    for (uint64_t size1 = 1; size1 <= size2; ++size1) {
      StatusOr<std::vector<Hash>> proof =
          ConsistencyProof(size1, size2, tree.Reader(size2));
      ASSERT_TRUE(proof.ok()) << size1 << "->" << size2;
      const std::vector<Hash> want =
          size1 == size2
              ? std::vector<Hash>{}
              : ReferenceSubproof(tree.leaves(), size1, 0, size2, true);
      ASSERT_EQ(*proof, want) << size1 << "->" << size2;
      Status s =
          VerifyConsistency(size1, size2, *proof, roots[size1], roots[size2]);
      ASSERT_TRUE(s.ok()) << size1 << "->" << size2 << ": " << s.ToString();
    }
  }
}

TEST(MerkleTest, TamperedInclusionProofsFail) {
  const MemoryTree tree = SyntheticTree(40);
  const Hash other = HashLeaf("other");
  for (uint64_t size = 1; size <= 40; ++size) {
    const Hash root = ReferenceMth(tree.leaves(), 0, size);
    for (uint64_t index = 0; index < size; ++index) {
      const Hash& leaf = tree.leaves()[index];
      const std::vector<Hash> proof =
          *InclusionProof(index, size, tree.Reader(size));
      std::vector<std::vector<Hash>> bad;
      for (size_t i = 0; i < proof.size(); ++i) {
        bad.push_back(proof);
        bad.back()[i][0] ^= 8;
      }
      bad.push_back(proof);
      bad.back().push_back(other);
      bad.push_back(proof);
      bad.back().insert(bad.back().begin(), other);
      bad.push_back(proof);
      bad.back().push_back(root);
      if (!proof.empty()) {
        bad.push_back(proof);
        bad.back().pop_back();
      }
      for (const std::vector<Hash>& p : bad) {
        EXPECT_FALSE(VerifyInclusion(index, size, leaf, p, root).ok())
            << index << "/" << size;
      }
      EXPECT_FALSE(VerifyInclusion(index, size, other, proof, root).ok());
      EXPECT_FALSE(VerifyInclusion(index, size, leaf, proof, other).ok());
      EXPECT_FALSE(VerifyInclusion(index, size * 2, leaf, proof, root).ok());
      EXPECT_FALSE(VerifyInclusion(index + 1, size, leaf, proof, root).ok());
      if (index > 0) {
        EXPECT_FALSE(VerifyInclusion(index - 1, size, leaf, proof, root).ok());
      }
    }
  }
}

TEST(MerkleTest, TamperedConsistencyProofsFail) {
  const MemoryTree tree = SyntheticTree(40);
  const Hash other = HashLeaf("other");
  std::vector<Hash> roots(81);
  for (uint64_t size = 1; size <= 40; ++size) {
    roots[size] = ReferenceMth(tree.leaves(), 0, size);
  }
  for (uint64_t size2 = 2; size2 <= 40; ++size2) {
    for (uint64_t size1 = 1; size1 < size2; ++size1) {
      const Hash& r1 = roots[size1];
      const Hash& r2 = roots[size2];
      const std::vector<Hash> proof =
          *ConsistencyProof(size1, size2, tree.Reader(size2));
      std::vector<std::vector<Hash>> bad;
      for (size_t i = 0; i < proof.size(); ++i) {
        bad.push_back(proof);
        bad.back()[i][0] ^= 16;
      }
      bad.push_back(proof);
      bad.back().push_back(other);
      bad.push_back(proof);
      bad.back().insert(bad.back().begin(), r1);
      bad.push_back(proof);
      bad.back().pop_back();
      bad.push_back({});
      for (const std::vector<Hash>& p : bad) {
        EXPECT_FALSE(VerifyConsistency(size1, size2, p, r1, r2).ok())
            << size1 << "->" << size2;
      }
      EXPECT_FALSE(VerifyConsistency(size1, size2, proof, r2, r1).ok());
      EXPECT_FALSE(VerifyConsistency(size1, size2, proof, other, r2).ok());
      EXPECT_FALSE(VerifyConsistency(size1, size2, proof, r1, other).ok());
      EXPECT_FALSE(VerifyConsistency(size1, size2 * 2, proof, r1, r2).ok());
      EXPECT_FALSE(VerifyConsistency(size1 - 1, size2, proof, r1, r2).ok());
    }
  }
}

TEST(MerkleTest, ProofArgumentErrors) {
  const MemoryTree tree = SyntheticTree(8);
  EXPECT_EQ(InclusionProof(8, 8, tree.Reader(8)).status().code(),
            StatusCode::kOutOfRange);
  EXPECT_EQ(InclusionProof(0, 0, tree.Reader(8)).status().code(),
            StatusCode::kOutOfRange);
  EXPECT_EQ(ConsistencyProof(5, 4, tree.Reader(8)).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_TRUE(ConsistencyProof(0, 8, tree.Reader(8))->empty());
  EXPECT_TRUE(ConsistencyProof(5, 5, tree.Reader(8))->empty());
  EXPECT_TRUE(InclusionProof(0, 1, tree.Reader(8))->empty());
}

TEST(MerkleTest, VerifyEdgeCases) {
  const Hash a = HashLeaf("a");
  const Hash b = HashLeaf("b");
  EXPECT_EQ(VerifyInclusion(0, 0, a, {}, a).code(), StatusCode::kOutOfRange);
  EXPECT_EQ(VerifyInclusion(1, 1, a, {}, a).code(), StatusCode::kOutOfRange);
  EXPECT_TRUE(VerifyInclusion(0, 1, a, {}, a).ok());
  EXPECT_FALSE(VerifyInclusion(0, 1, a, {}, b).ok());
  EXPECT_FALSE(VerifyInclusion(0, 1, a, {b}, HashChildren(a, b)).ok());
  EXPECT_TRUE(VerifyInclusion(0, 2, a, {b}, HashChildren(a, b)).ok());
  EXPECT_TRUE(VerifyInclusion(1, 2, b, {a}, HashChildren(a, b)).ok());

  EXPECT_TRUE(VerifyConsistency(3, 3, {}, a, a).ok());
  EXPECT_FALSE(VerifyConsistency(3, 3, {}, a, b).ok());
  EXPECT_FALSE(VerifyConsistency(3, 3, {a}, a, a).ok());
  EXPECT_FALSE(VerifyConsistency(0, 0, {}, a, a).ok());
  EXPECT_FALSE(VerifyConsistency(0, 5, {}, EmptyRoot(), a).ok());
  EXPECT_FALSE(VerifyConsistency(4, 3, {}, a, a).ok());
  EXPECT_FALSE(VerifyConsistency(1, 2, {}, a, HashChildren(a, b)).ok());
  EXPECT_TRUE(VerifyConsistency(1, 2, {b}, a, HashChildren(a, b)).ok());
}

TEST(CompactRangeTest, AppendVisitsEveryCompleteNodeOnceLowestFirst) {
  const MemoryTree tree = SyntheticTree(300);
  CompactRange range;
  std::set<std::pair<uint64_t, uint64_t>> seen;
  for (uint64_t i = 0; i < 300; ++i) {
    std::vector<std::tuple<uint64_t, uint64_t, Hash>> visits;
    range.Append(tree.leaves()[i],
                 [&visits](uint64_t level, uint64_t index, const Hash& hash) {
                   visits.emplace_back(level, index, hash);
                 });
    // The leaf, then one parent per trailing one bit of the old size.
    ASSERT_EQ(visits.size(), 1u + std::countr_one(i)) << i;
    for (size_t v = 0; v < visits.size(); ++v) {
      const auto& [level, index, hash] = visits[v];
      EXPECT_EQ(level, v);
      EXPECT_EQ(index, i >> level);
      EXPECT_EQ(hash, tree.levels()[level][index]);
      EXPECT_TRUE(seen.insert({level, index}).second);
    }
    EXPECT_EQ(range.size(), i + 1);
    EXPECT_EQ(range.border().size(), static_cast<size_t>(std::popcount(i + 1)));
    EXPECT_EQ(range.Root(), ReferenceMth(tree.leaves(), 0, i + 1)) << i + 1;
  }
  size_t complete = 0;
  for (const auto& level : tree.levels()) complete += level.size();
  EXPECT_EQ(seen.size(), complete);
}

TEST(CompactRangeTest, FromNodesMatchesAppendedBorder) {
  const MemoryTree tree = SyntheticTree(300);
  CompactRange appended;
  for (uint64_t size = 0; size <= 300; ++size) {
    int reads = 0;
    StatusOr<CompactRange> rebuilt =
        CompactRange::FromNodes(size, tree.Reader(0, size, &reads));
    ASSERT_TRUE(rebuilt.ok()) << size;
    EXPECT_EQ(reads, std::popcount(size));
    EXPECT_EQ(rebuilt->size(), size);
    EXPECT_EQ(rebuilt->border(), appended.border()) << size;
    EXPECT_EQ(rebuilt->Root(), appended.Root()) << size;
    if (size < 300) {
      rebuilt->Append(tree.leaves()[size], nullptr);
      appended.Append(tree.leaves()[size], nullptr);
      EXPECT_EQ(rebuilt->border(), appended.border()) << size;
    }
  }
}

TEST(CompactRangeTest, EmptyRangeHasEmptyRoot) {
  CompactRange range;
  EXPECT_EQ(range.size(), 0u);
  EXPECT_TRUE(range.border().empty());
  EXPECT_EQ(range.Root(), EmptyRoot());
}

}  // namespace
}  // namespace annals::merkle
