#include "index/dedup_index.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <string>
#include <thread>

namespace annals::index {
namespace {

namespace fs = std::filesystem;

class DedupIndexTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "annals-dedup-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string dir_;
};

std::string Key(int i) { return "K" + std::to_string(i * 7919 % 100003) + "-key"; }
std::string Value(int i) { return "v" + std::to_string(i); }
// What Record takes: views of the caller's (key, value) strings.
std::vector<std::pair<std::string_view, std::string_view>> Views(
    const std::vector<std::pair<std::string, std::string>>& kv) {
  return {kv.begin(), kv.end()};
}

// idx holds Key(i) -> Value(i) for every i in [0, n).
void ExpectEveryKey(DedupIndex& idx, int n) {
  for (int i = 0; i < n; ++i) {
    auto v = idx.Lookup(Key(i));
    ASSERT_TRUE(v.ok() && v->has_value()) << i;
    EXPECT_EQ(**v, Value(i));
  }
}

TEST_F(DedupIndexTest, FindsKeysInTheOpenRunTheSealedRunAndRocksDb) {
  DedupIndexOptions o;
  o.run_keys = 64;  // many runs, so lookups cross every tier
  auto idx = DedupIndex::Open(dir_, o);
  ASSERT_TRUE(idx.ok()) << idx.status().message();
  constexpr int kKeys = 2000;
  for (int i = 0; i < kKeys; i += 10) {
    std::vector<std::pair<std::string, std::string>> batch;
    for (int j = i; j < i + 10; ++j) batch.emplace_back(Key(j), Value(j));
    ASSERT_TRUE((*idx)->Record(Views(batch), i + 10).ok());
    // Everything recorded so far is found at once, whichever tier holds it.
    auto v = (*idx)->Lookup(Key(i / 2));
    ASSERT_TRUE(v.ok());
    ASSERT_TRUE(v->has_value()) << i;
    EXPECT_EQ(**v, Value(i / 2));
  }
  EXPECT_EQ((*idx)->watermark(), static_cast<uint64_t>(kKeys));
  std::vector<std::string> keys;
  for (int i = 0; i < kKeys; ++i) keys.push_back(Key(i));
  keys.push_back("Kmissing");
  auto vs = (*idx)->LookupMany(std::vector<std::string_view>(keys.begin(), keys.end()));
  ASSERT_TRUE(vs.ok());
  for (int i = 0; i < kKeys; ++i) {
    ASSERT_TRUE((*vs)[i].has_value()) << i;
    EXPECT_EQ(*(*vs)[i], Value(i));
  }
  EXPECT_FALSE(vs->back().has_value());
}

// A catch-up seals runs at catch_up_run_keys, live recording at run_keys;
// what is not written yet is counted for the disk guard.
TEST_F(DedupIndexTest, ACatchUpRecordsLargerRunsAndUnwrittenBytesCountThem) {
  DedupIndexOptions o;
  o.run_keys = 4;
  o.catch_up_run_keys = 100;
  auto idx = DedupIndex::Open(dir_, o);
  ASSERT_TRUE(idx.ok()) << idx.status().message();
  EXPECT_EQ((*idx)->UnwrittenBytes(), 0u);
  size_t bytes = 0;
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE((*idx)->Record({{Key(i), Value(i)}}, i + 1, /*catching_up=*/true).ok());
    bytes += 1 + Key(i).size() + Value(i).size();
  }
  // Sealed at 4 keys, at most two runs of 4 would be unwritten.
  EXPECT_GE((*idx)->UnwrittenBytes(), bytes);
  ASSERT_TRUE((*idx)->Record({{Key(50), Value(50)}}, 51).ok());  // live: sealed now
  ASSERT_TRUE((*idx)->Flush().ok());
  EXPECT_EQ((*idx)->UnwrittenBytes(), 0u);
  ExpectEveryKey(**idx, 51);
}

// Batches that would take a run past its keys (catch_up_run_keys in a
// catch-up, run_keys live) go to the next run (sized for them at once):
// nothing is lost at the seams, and each run's watermark is the batch
// before it.
class DedupRunSeamTest : public DedupIndexTest, public ::testing::WithParamInterface<bool> {};
INSTANTIATE_TEST_SUITE_P(CatchUpAndLive, DedupRunSeamTest, ::testing::Bool());
TEST_P(DedupRunSeamTest, ARunIsSealedBeforeABatchWouldOutgrowIt) {
  const bool catching_up = GetParam();
  DedupIndexOptions o;
  o.run_keys = catching_up ? 4 : 10;
  o.catch_up_run_keys = catching_up ? 10 : 4;
  {
    auto idx = DedupIndex::Open(dir_, o);
    ASSERT_TRUE(idx.ok());
    // Batches of 7: a run that took a second one would hold 14.
    for (int b = 0; b < 10; ++b) {
      std::vector<std::pair<std::string, std::string>> batch;
      for (int i = 7 * b; i < 7 * b + 7; ++i) batch.emplace_back(Key(i), Value(i));
      ASSERT_TRUE((*idx)->Record(Views(batch), 7 * b + 7, catching_up).ok());
      size_t record = 0;  // the largest record: 4 bytes of lengths, the prefix, key and value
      for (int i = 0; i < 70; ++i) record = std::max(record, 4 + 1 + Key(i).size() + Value(i).size());
      EXPECT_LE((*idx)->UnwrittenBytes(), 2 * 10 * record);  // two runs of 10 at most
    }
    ASSERT_TRUE((*idx)->Flush().ok());
    EXPECT_EQ((*idx)->watermark(), 70u);
  }
  auto idx = DedupIndex::Open(dir_, o);
  ASSERT_TRUE(idx.ok());
  EXPECT_EQ((*idx)->watermark(), 70u);
  ExpectEveryKey(**idx, 70);
}

TEST_F(DedupIndexTest, ReopenKeepsEveryKeyAndTheWatermark) {
  DedupIndexOptions o;
  o.run_keys = 100;
  {
    auto idx = DedupIndex::Open(dir_, o);
    ASSERT_TRUE(idx.ok());
    for (int i = 0; i < 550; ++i) ASSERT_TRUE((*idx)->Record({{Key(i), Value(i)}}, i + 1).ok());
  }  // the destructor writes the open run
  auto idx = DedupIndex::Open(dir_, o);
  ASSERT_TRUE(idx.ok());
  EXPECT_EQ((*idx)->watermark(), 550u);
  ExpectEveryKey(**idx, 550);
  // No run files are left beside RocksDB's own.
  for (const auto& f : fs::directory_iterator(dir_))
    EXPECT_FALSE(f.path().filename().string().starts_with("run-")) << f.path();
}

TEST_F(DedupIndexTest, LaterRecordOfAKeyWins) {
  DedupIndexOptions o;
  o.run_keys = 4;
  auto idx = DedupIndex::Open(dir_, o);
  ASSERT_TRUE(idx.ok());
  ASSERT_TRUE((*idx)->Record({{"Ka", "1"}, {"Kb", "1"}, {"Kc", "1"}, {"Kd", "1"}}, 4).ok());
  ASSERT_TRUE((*idx)->Record({{"Ka", "2"}}, 5).ok());
  ASSERT_TRUE((*idx)->Flush().ok());
  auto v = (*idx)->Lookup("Ka");
  ASSERT_TRUE(v.ok() && v->has_value());
  EXPECT_EQ(**v, "2");
}

TEST_F(DedupIndexTest, ConcurrentLookupsWhileRunsAreWritten) {
  DedupIndexOptions o;
  o.run_keys = 50;
  auto idx = DedupIndex::Open(dir_, o);
  ASSERT_TRUE(idx.ok());
  std::atomic<int> recorded{0};
  std::atomic<bool> missing{false};
  std::thread reader([&] {
    while (recorded.load() < 3000) {
      int n = recorded.load();
      if (n == 0) continue;
      auto v = (*idx)->Lookup(Key(n - 1));
      if (!v.ok() || !v->has_value()) missing = true;
    }
  });
  for (int i = 0; i < 3000; ++i) {
    ASSERT_TRUE((*idx)->Record({{Key(i), Value(i)}}, i + 1).ok());
    recorded = i + 1;
  }
  reader.join();
  EXPECT_FALSE(missing.load()) << "a recorded key was not found while its run was being written";
}

}  // namespace
}  // namespace annals::index

namespace annals::index {
namespace {

TEST(RunTableTest, GrowsReplacesAndSorts) {
  RunTable t;  // starts small: growing is exercised
  for (int i = 0; i < 5000; ++i) t.Put("key" + std::to_string(i), "v" + std::to_string(i));
  t.Put("key42", "replaced");
  EXPECT_EQ(t.size(), 5000u);
  EXPECT_EQ(*t.Find("key42"), "replaced");
  EXPECT_EQ(*t.Find("key4999"), "v4999");
  EXPECT_FALSE(t.Find("key5000").has_value());
  EXPECT_FALSE(t.Find("").has_value());
  // Keys that sort by their bytes, not as chars: high bytes, zero bytes,
  // one a prefix of another (Sorted compares eight-byte prefixes first).
  for (const std::string& k : {std::string("\xff", 1), std::string("\xff\x00", 2), std::string("\x00", 1),
                              std::string("\x80key0000", 9), std::string("\x80key0000\x01", 10)})
    t.Put(k, "odd");
  auto sorted = t.Sorted();
  ASSERT_EQ(sorted.size(), 5005u);
  for (size_t i = 1; i < sorted.size(); ++i)
    EXPECT_LT(sorted[i - 1].first.compare(sorted[i].first), 0) << i;
  EXPECT_EQ(sorted.front().first, std::string("\x00", 1));
  EXPECT_EQ(sorted[1].first, "key0");
  EXPECT_EQ(sorted.back().first, std::string("\xff\x00", 2));
}

}  // namespace
}  // namespace annals::index
