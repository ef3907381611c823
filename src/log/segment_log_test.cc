#include "log/segment_log.h"

#include <gtest/gtest.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/bytes.h"
#include "common/crc32c.h"
#include "env/fault_injection_env.h"
#include "log/segment_format.h"

namespace annals::log {
namespace {

namespace fs = std::filesystem;

// Entry i: distinct, with sizes 1..~300 bytes so records do not line up.
std::string EntryData(uint64_t i) {
  std::string s = "entry-" + std::to_string(i) + "|";
  s.append((i * 37) % 293, static_cast<char>('a' + i % 26));
  return s;
}

std::vector<std::string> Entries(uint64_t begin, uint64_t end) {
  std::vector<std::string> out;
  for (uint64_t i = begin; i < end; ++i) out.push_back(EntryData(i));
  return out;
}

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteFile(const fs::path& p, const std::string& data) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << data;
}

void AppendToFile(const fs::path& p, const std::string& data) {
  std::ofstream out(p, std::ios::binary | std::ios::app);
  out << data;
}

class SegmentLogTest : public testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "annals-segment-log-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
    options_.dir = root_ + "/segments";
    options_.max_segment_entries = 256;
  }
  void TearDown() override { fs::remove_all(root_); }

  std::unique_ptr<SegmentLog> MustOpen(uint64_t min_entries = 0, RecoveryReport* report = nullptr) {
    auto log = SegmentLog::Open(options_, min_entries, report);
    EXPECT_TRUE(log.ok()) << log.status().ToString();
    return log.ok() ? std::move(*log) : nullptr;
  }

  // Creates a log holding entries [0, n), appended in uneven batches.
  void Fill(uint64_t n) {
    auto log = MustOpen();
    ASSERT_NE(log, nullptr);
    uint64_t i = 0, batch = 1;
    while (i < n) {
      uint64_t e = std::min(n, i + batch);
      ASSERT_TRUE(log->Append(Entries(i, e)).ok());
      ASSERT_TRUE(log->Sync().ok());
      i = e;
      batch = batch * 3 % 97 + 1;
    }
    ASSERT_EQ(log->size(), n);
  }

  // Checks that the log holds exactly entries [0, n) as written by Fill.
  void ExpectEntries(const SegmentLog& log, uint64_t n) {
    ASSERT_EQ(log.size(), n);
    uint64_t want = 0;
    Status s = log.ReadRange(0, n, [&](uint64_t index, std::string_view data) {
      EXPECT_EQ(index, want);
      EXPECT_EQ(data, EntryData(index)) << "entry " << index;
      ++want;
      return OkStatus();
    });
    ASSERT_TRUE(s.ok()) << s.ToString();
    EXPECT_EQ(want, n);
  }

  fs::path SegPath(uint64_t first) const { return fs::path(options_.dir) / SegmentFileName(first); }

  // Byte offset of entry `index` in the segment starting at `first`, for a
  // log written by Fill.
  static uint64_t RecordOffset(uint64_t first, uint64_t index) {
    uint64_t off = kSegmentHeaderSize;
    for (uint64_t i = first; i < index; ++i) off += kRecordHeaderSize + EntryData(i).size();
    return off;
  }

  // The files in the log's directory ending in suffix, sorted.
  std::vector<std::string> SegmentNames(std::string_view suffix = kSegmentSuffix) const {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(options_.dir))
      if (e.path().filename().string().ends_with(suffix)) names.push_back(e.path().filename());
    std::sort(names.begin(), names.end());
    return names;
  }
  fs::path OffPath(uint64_t first) const { return fs::path(options_.dir) / OffsetFileName(first); }

  // After a recovery: appends 20 more entries, reopens, and checks that all
  // n + 20 are there and that the second open found nothing to cut.
  void ExpectAppendsWorkAfterRecovery(std::unique_ptr<SegmentLog> log, uint64_t n) {
    ASSERT_NE(log, nullptr);
    ASSERT_TRUE(log->Append(Entries(n, n + 20)).ok());
    ASSERT_TRUE(log->Sync().ok());
    ExpectEntries(*log, n + 20);
    log.reset();
    RecoveryReport again;
    log = MustOpen(0, &again);
    ASSERT_NE(log, nullptr);
    EXPECT_EQ(again.entries, n + 20);
    EXPECT_EQ(again.truncated_bytes, 0u);
    EXPECT_EQ(again.reason, "");
    ExpectEntries(*log, n + 20);
  }

  std::string root_;
  SegmentLogOptions options_;
};

TEST(SegmentFileNameTest, TwentyDigitsAndSuffix) {
  EXPECT_EQ(SegmentFileName(0), "00000000000000000000.seg");
  EXPECT_EQ(SegmentFileName(65536), "00000000000000065536.seg");
  EXPECT_EQ(SegmentFileName(UINT64_MAX), "18446744073709551615.seg");
  EXPECT_EQ(OffsetFileName(65536), "00000000000000065536.off");
}

TEST_F(SegmentLogTest, NewLogIsEmptyWithOneSegment) {
  RecoveryReport report;
  auto log = MustOpen(0, &report);
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(log->size(), 0u);
  EXPECT_EQ(report.entries, 0u);
  EXPECT_EQ(report.truncated_bytes, 0u);
  EXPECT_EQ(SegmentNames(), std::vector<std::string>{SegmentFileName(0)});
  EXPECT_EQ(fs::file_size(SegPath(0)), kSegmentHeaderSize);
}

TEST_F(SegmentLogTest, AppendedEntriesAreInvisibleUntilSync) {
  auto log = MustOpen();
  ASSERT_NE(log, nullptr);
  ASSERT_TRUE(log->Append(Entries(0, 5)).ok());
  EXPECT_EQ(log->size(), 0u);
  EXPECT_EQ(log->Read(0).status().code(), StatusCode::kOutOfRange);
  ASSERT_TRUE(log->Sync().ok());
  EXPECT_EQ(log->size(), 5u);
  auto e = log->Read(4);
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_EQ(*e, EntryData(4));
  // A Sync with nothing pending changes nothing.
  ASSERT_TRUE(log->Sync().ok());
  EXPECT_EQ(log->size(), 5u);
}

TEST_F(SegmentLogTest, RollsEvery256EntriesAndReadsBackAcrossSegments) {
  Fill(1000);
  auto log = MustOpen();
  ASSERT_NE(log, nullptr);
  ExpectEntries(*log, 1000);
  EXPECT_EQ(SegmentNames(), (std::vector<std::string>{SegmentFileName(0), SegmentFileName(256),
                                                      SegmentFileName(512), SegmentFileName(768)}));
  // A range that spans three segments, and single reads at the edges.
  uint64_t want = 250;
  ASSERT_TRUE(log->ReadRange(250, 530, [&](uint64_t i, std::string_view d) {
                   EXPECT_EQ(i, want++);
                   EXPECT_EQ(d, EntryData(i));
                   return OkStatus();
                 }).ok());
  EXPECT_EQ(want, 530u);
  for (uint64_t i : {0u, 255u, 256u, 511u, 512u, 767u, 768u, 999u}) {
    auto e = log->Read(i);
    ASSERT_TRUE(e.ok()) << i << ": " << e.status().ToString();
    EXPECT_EQ(*e, EntryData(i));
  }
}

TEST_F(SegmentLogTest, LargerSegmentLimitRollsAtThatMultipleOf256) {
  options_.max_segment_entries = 512;
  Fill(1300);
  EXPECT_EQ(SegmentNames(), (std::vector<std::string>{SegmentFileName(0), SegmentFileName(512),
                                                      SegmentFileName(1024)}));
  auto log = MustOpen();
  ASSERT_NE(log, nullptr);
  ExpectEntries(*log, 1300);
}

TEST_F(SegmentLogTest, ByteLimitRollsOnlyAtMultiplesOf256Entries) {
  options_.max_segment_entries = 1 << 16;
  options_.max_segment_bytes = 1000;  // exceeded after a few entries
  Fill(600);
  // Bundles of 256 entries never span segments.
  EXPECT_EQ(SegmentNames(), (std::vector<std::string>{SegmentFileName(0), SegmentFileName(256),
                                                      SegmentFileName(512)}));
  auto log = MustOpen();
  ASSERT_NE(log, nullptr);
  ExpectEntries(*log, 600);
}

TEST_F(SegmentLogTest, OneBatchSpanningSeveralSegments) {
  auto log = MustOpen();
  ASSERT_NE(log, nullptr);
  ASSERT_TRUE(log->Append(Entries(0, 700)).ok());
  ASSERT_TRUE(log->Sync().ok());
  ExpectEntries(*log, 700);
  log.reset();
  EXPECT_EQ(SegmentNames().size(), 3u);
  log = MustOpen();
  ASSERT_NE(log, nullptr);
  ExpectEntries(*log, 700);
}

TEST_F(SegmentLogTest, ReopenKeepsEverythingAndContinues) {
  Fill(300);
  RecoveryReport report;
  auto log = MustOpen(300, &report);
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(report.entries, 300u);
  EXPECT_EQ(report.truncated_bytes, 0u);
  EXPECT_EQ(report.reason, "");
  ExpectEntries(*log, 300);
  ASSERT_TRUE(log->Append(Entries(300, 600)).ok());
  ASSERT_TRUE(log->Sync().ok());
  log.reset();
  log = MustOpen(600, &report);
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(report.entries, 600u);
  ExpectEntries(*log, 600);
  EXPECT_EQ(SegmentNames().size(), 3u);
}

TEST_F(SegmentLogTest, MaxSizeEntryIsAcceptedAndEmptyOrOversizeRejected) {
  auto log = MustOpen();
  ASSERT_NE(log, nullptr);
  Status s = log->Append(std::vector<std::string>{std::string()});
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.ToString();
  s = log->Append(std::vector<std::string>{std::string(kMaxRecordSize + 1, 'x')});
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.ToString();
  ASSERT_TRUE(log->Sync().ok());
  EXPECT_EQ(log->size(), 0u);

  std::string big(kMaxRecordSize, 'b');
  big[0] = 'B';
  big.back() = 'E';
  ASSERT_TRUE(log->Append(std::vector<std::string>{big, "small"}).ok());
  ASSERT_TRUE(log->Sync().ok());
  log.reset();
  log = MustOpen();
  ASSERT_NE(log, nullptr);
  ASSERT_EQ(log->size(), 2u);
  EXPECT_EQ(*log->Read(0), big);
  EXPECT_EQ(*log->Read(1), "small");
}

TEST_F(SegmentLogTest, ReadsOutsideTheLogAreOutOfRange) {
  Fill(10);
  auto log = MustOpen();
  ASSERT_NE(log, nullptr);
  auto noop = [](uint64_t, std::string_view) { return OkStatus(); };
  EXPECT_EQ(log->ReadRange(0, 11, noop).code(), StatusCode::kOutOfRange);
  EXPECT_EQ(log->ReadRange(10, 11, noop).code(), StatusCode::kOutOfRange);
  EXPECT_EQ(log->ReadRange(5, 3, noop).code(), StatusCode::kOutOfRange);
  EXPECT_EQ(log->ReadRange(UINT64_MAX, UINT64_MAX, noop).code(), StatusCode::kOutOfRange);
  EXPECT_EQ(log->Read(10).status().code(), StatusCode::kOutOfRange);
  EXPECT_EQ(log->Read(UINT64_MAX).status().code(), StatusCode::kOutOfRange);
  int calls = 0;
  EXPECT_TRUE(log->ReadRange(10, 10, [&](uint64_t, std::string_view) {
                    ++calls;
                    return OkStatus();
                  }).ok());
  EXPECT_EQ(calls, 0);
}

TEST_F(SegmentLogTest, ReadRangeStopsAtTheCallbacksError) {
  Fill(10);
  auto log = MustOpen();
  ASSERT_NE(log, nullptr);
  int calls = 0;
  Status s = log->ReadRange(0, 10, [&](uint64_t i, std::string_view) {
    ++calls;
    return i == 3 ? InternalError("stop") : OkStatus();
  });
  EXPECT_EQ(s.message(), "stop");
  EXPECT_EQ(calls, 4);
}

// --- Torn tails of the last segment: cut, reported, and appends go on. ---

// 300 entries: segment 0 (sealed, 0..255) and segment 256 (256..299).
constexpr uint64_t kTornN = 300;

TEST_F(SegmentLogTest, TruncatedRecordHeaderIsCut) {
  Fill(kTornN);
  const uint64_t last = RecordOffset(256, kTornN - 1);
  fs::resize_file(SegPath(256), last + 4);
  RecoveryReport report;
  auto log = MustOpen(0, &report);
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(report.entries, kTornN - 1);
  EXPECT_EQ(report.truncated_bytes, 4u);
  EXPECT_NE(report.reason.find("truncated record header"), std::string::npos) << report.reason;
  EXPECT_NE(report.reason.find(SegmentFileName(256)), std::string::npos) << report.reason;
  EXPECT_EQ(fs::file_size(SegPath(256)), last);
  ExpectEntries(*log, kTornN - 1);
  ExpectAppendsWorkAfterRecovery(std::move(log), kTornN - 1);
}

TEST_F(SegmentLogTest, TruncatedRecordDataIsCut) {
  Fill(kTornN);
  const uint64_t last = RecordOffset(256, kTornN - 1);
  const uint64_t cut_at = last + kRecordHeaderSize + EntryData(kTornN - 1).size() / 2;
  fs::resize_file(SegPath(256), cut_at);
  RecoveryReport report;
  auto log = MustOpen(0, &report);
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(report.entries, kTornN - 1);
  EXPECT_EQ(report.truncated_bytes, cut_at - last);
  EXPECT_NE(report.reason.find("truncated record data"), std::string::npos) << report.reason;
  ExpectEntries(*log, kTornN - 1);
  ExpectAppendsWorkAfterRecovery(std::move(log), kTornN - 1);
}

TEST_F(SegmentLogTest, CrcMismatchInLastRecordIsCut) {
  Fill(kTornN);
  const uint64_t last = RecordOffset(256, kTornN - 1);
  std::string seg = ReadFile(SegPath(256));
  ASSERT_EQ(seg.size(), last + kRecordHeaderSize + EntryData(kTornN - 1).size());
  seg[last + 5] ^= 0x40;  // inside the stored CRC
  WriteFile(SegPath(256), seg);
  RecoveryReport report;
  auto log = MustOpen(0, &report);
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(report.entries, kTornN - 1);
  EXPECT_EQ(report.truncated_bytes, seg.size() - last);
  EXPECT_NE(report.reason.find("CRC mismatch"), std::string::npos) << report.reason;
  EXPECT_NE(report.reason.find("entry " + std::to_string(kTornN - 1)), std::string::npos)
      << report.reason;
  ExpectEntries(*log, kTornN - 1);
  ExpectAppendsWorkAfterRecovery(std::move(log), kTornN - 1);
}

TEST_F(SegmentLogTest, FlippedDataByteInLastRecordIsCut) {
  Fill(kTornN);
  const uint64_t last = RecordOffset(256, kTornN - 1);
  std::string seg = ReadFile(SegPath(256));
  seg.back() ^= 0x01;
  WriteFile(SegPath(256), seg);
  RecoveryReport report;
  auto log = MustOpen(0, &report);
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(report.entries, kTornN - 1);
  EXPECT_EQ(report.truncated_bytes, seg.size() - last);
  ExpectAppendsWorkAfterRecovery(std::move(log), kTornN - 1);
}

TEST_F(SegmentLogTest, GarbageAfterTheLastRecordIsCut) {
  Fill(kTornN);
  // A plausible length (256) followed by too few bytes.
  std::string garbage;
  PutBigEndian32(&garbage, 256);
  garbage += "garbage that is not a record";
  AppendToFile(SegPath(256), garbage);
  RecoveryReport report;
  auto log = MustOpen(0, &report);
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(report.entries, kTornN);
  EXPECT_EQ(report.truncated_bytes, garbage.size());
  EXPECT_FALSE(report.reason.empty());
  ExpectEntries(*log, kTornN);
  ExpectAppendsWorkAfterRecovery(std::move(log), kTornN);
}

TEST_F(SegmentLogTest, ZeroFilledTailIsCut) {
  // What a crash after the file grew but before its data reached disk leaves.
  Fill(kTornN);
  AppendToFile(SegPath(256), std::string(4096, '\0'));
  RecoveryReport report;
  auto log = MustOpen(0, &report);
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(report.entries, kTornN);
  EXPECT_EQ(report.truncated_bytes, 4096u);
  EXPECT_NE(report.reason.find("bad record length 0"), std::string::npos) << report.reason;
  ExpectEntries(*log, kTornN);
  ExpectAppendsWorkAfterRecovery(std::move(log), kTornN);
}

TEST_F(SegmentLogTest, PartiallyWrittenHeaderOfFreshSegmentIsRewritten) {
  Fill(512);  // segments 0 and 256 are full; the next append starts 512
  const std::string header = ReadFile(SegPath(256)).substr(0, kSegmentHeaderSize);
  WriteFile(SegPath(512), std::string(kSegmentMagic, 8) + std::string(2, '\0'));
  RecoveryReport report;
  auto log = MustOpen(512, &report);
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(report.entries, 512u);
  EXPECT_EQ(report.truncated_bytes, 10u);
  EXPECT_NE(report.reason.find("segment header truncated"), std::string::npos) << report.reason;
  // The header is whole again and names entry 512.
  std::string fresh = ReadFile(SegPath(512));
  ASSERT_EQ(fresh.size(), kSegmentHeaderSize);
  uint64_t first = 0;
  ASSERT_TRUE(ScanSegment(fresh, nullptr, &first).ok());
  EXPECT_EQ(first, 512u);
  EXPECT_NE(fresh, header);
  ExpectEntries(*log, 512);
  ExpectAppendsWorkAfterRecovery(std::move(log), 512);
  EXPECT_EQ(fs::file_size(SegPath(512)),
            RecordOffset(512, 532));  // the 20 new entries went into it
}

TEST_F(SegmentLogTest, EmptyFreshSegmentFileIsRepaired) {
  Fill(256);
  WriteFile(SegPath(256), "");
  RecoveryReport report;
  auto log = MustOpen(0, &report);
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(report.entries, 256u);
  EXPECT_EQ(report.truncated_bytes, 0u);
  EXPECT_FALSE(report.reason.empty());
  EXPECT_EQ(fs::file_size(SegPath(256)), kSegmentHeaderSize);
  ExpectAppendsWorkAfterRecovery(std::move(log), 256);
}

TEST_F(SegmentLogTest, TornTailOfTheOnlySegment) {
  Fill(10);
  fs::resize_file(SegPath(0), fs::file_size(SegPath(0)) - 1);
  RecoveryReport report;
  auto log = MustOpen(0, &report);
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(report.entries, 9u);
  ExpectAppendsWorkAfterRecovery(std::move(log), 9);
}

TEST_F(SegmentLogTest, CorruptRecordInTheMiddleOfTheLastSegmentCutsFromThere) {
  Fill(kTornN);
  std::string seg = ReadFile(SegPath(256));
  const uint64_t off = RecordOffset(256, 280);
  seg[off + kRecordHeaderSize + 2] ^= 0x20;
  WriteFile(SegPath(256), seg);
  RecoveryReport report;
  auto log = MustOpen(0, &report);
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(report.entries, 280u);
  EXPECT_EQ(report.truncated_bytes, seg.size() - off);
  EXPECT_NE(report.reason.find("entry 280"), std::string::npos) << report.reason;
}

// --- Damage that must not be cut. ---

TEST_F(SegmentLogTest, CutBelowMinEntriesIsDataLoss) {
  Fill(kTornN);
  fs::resize_file(SegPath(256), fs::file_size(SegPath(256)) - 3);
  auto bad = SegmentLog::Open(options_, kTornN, nullptr);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kDataLoss) << bad.status().ToString();
  EXPECT_NE(bad.status().message().find(std::to_string(kTornN)), std::string::npos)
      << bad.status().ToString();
  // Failing did not touch the file; allowing one fewer entry recovers.
  RecoveryReport report;
  auto log = MustOpen(kTornN - 1, &report);
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(report.entries, kTornN - 1);
}

TEST_F(SegmentLogTest, FewerEntriesThanMinEntriesIsDataLoss) {
  Fill(20);
  auto bad = SegmentLog::Open(options_, 21, nullptr);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(MustOpen(20), nullptr);
}

TEST_F(SegmentLogTest, CorruptRecordInSealedSegmentIsDataLossNamingTheIndexWhenRead) {
  // With its offset file, a sealed segment's records are not read at open:
  // the damage shows on the first read of the entry, not before.
  Fill(kTornN);
  std::string seg = ReadFile(SegPath(0));
  const uint64_t off = RecordOffset(0, 100);
  seg[off + kRecordHeaderSize + 1] ^= 0x01;
  WriteFile(SegPath(0), seg);
  RecoveryReport report;
  auto log = MustOpen(kTornN, &report);
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(report.segments_scanned, 0u);
  auto bad = log->Read(100);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(bad.status().message().find("entry 100"), std::string::npos) << bad.status().ToString();
  Status range = log->ReadRange(90, 110, [](uint64_t, std::string_view) { return OkStatus(); });
  EXPECT_EQ(range.code(), StatusCode::kDataLoss);
  for (uint64_t i : {0u, 99u, 101u, 255u, 256u}) {
    auto e = log->Read(i);
    ASSERT_TRUE(e.ok()) << i << ": " << e.status().ToString();
    EXPECT_EQ(*e, EntryData(i));
  }
  log.reset();
  // Nothing was cut: the sealed segment is unchanged.
  EXPECT_EQ(ReadFile(SegPath(0)), seg);
}

TEST_F(SegmentLogTest, CorruptRecordInSealedSegmentWithoutOffsetFileIsDataLossAtOpen) {
  Fill(kTornN);
  std::string seg = ReadFile(SegPath(0));
  const uint64_t off = RecordOffset(0, 100);
  seg[off + kRecordHeaderSize + 1] ^= 0x01;
  WriteFile(SegPath(0), seg);
  ASSERT_TRUE(fs::remove(OffPath(0)));
  auto bad = SegmentLog::Open(options_, 0, nullptr);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(bad.status().message().find("entry 100"), std::string::npos) << bad.status().ToString();
  EXPECT_NE(bad.status().message().find(SegmentFileName(0)), std::string::npos)
      << bad.status().ToString();
  EXPECT_EQ(ReadFile(SegPath(0)), seg);
  EXPECT_FALSE(fs::exists(OffPath(0)));
}

// --- Offset files: written when a segment is sealed, trusted at open only
// --- while they fit the segment, rebuilt from it otherwise. ---

TEST_F(SegmentLogTest, SealingWritesAnOffsetFileAndOpenReadsNoSealedRecord) {
  Fill(600);
  EXPECT_EQ(SegmentNames(kOffsetSuffix),
            (std::vector<std::string>{OffsetFileName(0), OffsetFileName(256)}));
  for (uint64_t first : {0u, 256u}) {
    const std::string off = ReadFile(OffPath(first));
    auto count = CheckOffsetFile(off, first, fs::file_size(SegPath(first)));
    ASSERT_TRUE(count.ok()) << count.status().ToString();
    EXPECT_EQ(*count, 256u);
    for (uint64_t k = 0; k < 256; ++k)
      ASSERT_EQ(GetBigEndian32(off.data() + kOffsetHeaderSize + 4 * k),
                RecordOffset(first, first + k));
  }
  RecoveryReport report;
  auto log = MustOpen(600, &report);
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(report.entries, 600u);
  EXPECT_EQ(report.segments_scanned, 0u);
  EXPECT_EQ(report.offset_files_written, 0u);
  ExpectEntries(*log, 600);
}

TEST_F(SegmentLogTest, MissingOffsetFilesAreWrittenAtOpen) {
  Fill(600);
  const std::string want = ReadFile(OffPath(256));
  fs::remove(OffPath(0));
  fs::remove(OffPath(256));
  RecoveryReport report;
  auto log = MustOpen(600, &report);
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(report.segments_scanned, 2u);
  EXPECT_EQ(report.offset_files_written, 2u);
  EXPECT_EQ(ReadFile(OffPath(256)), want);
  ExpectEntries(*log, 600);
  log.reset();
  log = MustOpen(600, &report);
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(report.segments_scanned, 0u);
}

TEST_F(SegmentLogTest, OffsetFileWithADamagedHeaderIsRebuiltAtOpen) {
  Fill(600);
  const std::string want = ReadFile(OffPath(0));
  std::string off = want;
  off[22] ^= 0x01;  // the count
  WriteFile(OffPath(0), off);
  RecoveryReport report;
  auto log = MustOpen(600, &report);
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(report.segments_scanned, 1u);
  EXPECT_EQ(report.offset_files_written, 1u);
  EXPECT_EQ(ReadFile(OffPath(0)), want);
  ExpectEntries(*log, 600);
}

TEST_F(SegmentLogTest, OffsetFileWithADamagedTableIsRebuiltWhenFirstUsed) {
  // The open reads only the header and the last offset; the table's CRC is
  // checked when the segment is first read, and the segment itself then
  // says where its records are.
  Fill(600);
  const std::string want = ReadFile(OffPath(0));
  std::string off = want;
  off[kOffsetHeaderSize + 4 * 100 + 3] ^= 0x04;
  WriteFile(OffPath(0), off);
  RecoveryReport report;
  auto log = MustOpen(600, &report);
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(report.segments_scanned, 0u);
  ExpectEntries(*log, 600);
  EXPECT_EQ(ReadFile(OffPath(0)), want);
}

TEST_F(SegmentLogTest, OffsetFileOfAnotherSizeIsNotTrusted) {
  // A sealed segment cut inside its last record: the offset file no longer
  // fits it, so the open scans it, and the cut is DataLoss as without one.
  Fill(kTornN);
  fs::resize_file(SegPath(0), fs::file_size(SegPath(0)) - 1);
  auto bad = SegmentLog::Open(options_, 0, nullptr);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(bad.status().message().find("entry 255"), std::string::npos) << bad.status().ToString();
}

TEST_F(SegmentLogTest, OffsetFileOfTheOpenSegmentIsRemoved) {
  // Left by a crash after sealing wrote it and before the next segment was
  // started: that segment is still the open one and grows again.
  Fill(300);
  const uint64_t bytes = fs::file_size(SegPath(256));
  std::vector<uint32_t> offsets;
  for (uint64_t i = 256; i < 300; ++i) offsets.push_back(RecordOffset(256, i));
  WriteFile(OffPath(256), EncodeOffsetFile(256, bytes, offsets));
  auto log = MustOpen(300);
  ASSERT_NE(log, nullptr);
  EXPECT_FALSE(fs::exists(OffPath(256)));
  ExpectAppendsWorkAfterRecovery(std::move(log), 300);
}

TEST(OffsetFileTest, RejectsWhatDoesNotFitItsSegment) {
  const std::vector<uint32_t> offsets = {24, 40, 100};
  const std::string good = EncodeOffsetFile(512, 200, offsets);
  ASSERT_EQ(good.size(), kOffsetHeaderSize + 4 * 3 + 4);
  auto count = CheckOffsetFile(good, 512, 200);
  ASSERT_TRUE(count.ok()) << count.status().ToString();
  EXPECT_EQ(*count, 3u);
  auto expect_bad = [](std::string_view bytes, uint64_t first, uint64_t size, std::string_view why) {
    auto c = CheckOffsetFile(bytes, first, size);
    ASSERT_FALSE(c.ok()) << why;
    EXPECT_EQ(c.status().code(), StatusCode::kDataLoss);
    EXPECT_NE(c.status().message().find(why), std::string::npos) << c.status().ToString();
  };
  expect_bad(good, 256, 200, "another segment");
  expect_bad(good, 512, 201, "segment of 200 bytes");
  expect_bad(good.substr(0, good.size() - 1), 512, 200, "bytes for 3 entries");
  expect_bad(good.substr(0, 10), 512, 200, "truncated");
  std::string flipped = good;
  flipped[kOffsetHeaderSize + 5] ^= 1;
  expect_bad(flipped, 512, 200, "CRC mismatch");
  flipped = good;
  flipped[0] = 'X';
  expect_bad(flipped, 512, 200, "bad magic");
  // A good CRC over offsets that cannot be: falling, inside the segment
  // header, overlapping a record header, or past the end.
  expect_bad(EncodeOffsetFile(512, 200, std::vector<uint32_t>{24, 100, 40}), 512, 200, "offset 2");
  expect_bad(EncodeOffsetFile(512, 200, std::vector<uint32_t>{8, 40}), 512, 200, "offset 0");
  expect_bad(EncodeOffsetFile(512, 200, std::vector<uint32_t>{24, 30}), 512, 200, "offset 1");
  expect_bad(EncodeOffsetFile(512, 200, std::vector<uint32_t>{24, 192}), 512, 200, "offset 1");
  expect_bad(EncodeOffsetFile(512, 200, std::vector<uint32_t>{}), 512, 200, "no entries");
}

TEST_F(SegmentLogTest, TruncatedSealedSegmentIsDataLoss) {
  Fill(kTornN);
  const uint64_t off = RecordOffset(0, 255);
  fs::resize_file(SegPath(0), off + 3);
  auto bad = SegmentLog::Open(options_, 0, nullptr);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(bad.status().message().find("entry 255"), std::string::npos) << bad.status().ToString();
}

TEST_F(SegmentLogTest, MissingMiddleSegmentIsDataLoss) {
  Fill(600);
  fs::remove(SegPath(256));
  auto bad = SegmentLog::Open(options_, 0, nullptr);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(bad.status().message().find("256"), std::string::npos) << bad.status().ToString();
}

TEST_F(SegmentLogTest, SealedSegmentHeaderNamingAnotherIndexIsDataLoss) {
  Fill(kTornN);
  // Segment 0's file replaced by a valid segment that claims to start at 7.
  std::string h(kSegmentMagic, 8);
  PutBigEndian32(&h, kSegmentVersion);
  PutBigEndian64(&h, 7);
  PutBigEndian32(&h, crc32c::Mask(crc32c::Value(h.data(), h.size())));
  WriteFile(SegPath(0), h);
  auto bad = SegmentLog::Open(options_, 0, nullptr);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kDataLoss) << bad.status().ToString();
}

TEST_F(SegmentLogTest, SealedSegmentHeaderRewrittenInPlaceIsDataLoss) {
  // The same size, so the offset file's header still fits: the segment's
  // own header is checked too.
  Fill(kTornN);
  std::string seg = ReadFile(SegPath(0));
  std::string h(kSegmentMagic, 8);
  PutBigEndian32(&h, kSegmentVersion);
  PutBigEndian64(&h, 7);
  PutBigEndian32(&h, crc32c::Mask(crc32c::Value(h.data(), h.size())));
  seg.replace(0, h.size(), h);
  WriteFile(SegPath(0), seg);
  auto bad = SegmentLog::Open(options_, 0, nullptr);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kDataLoss) << bad.status().ToString();
  EXPECT_NE(bad.status().message().find("first entry 7"), std::string::npos)
      << bad.status().ToString();
}

TEST_F(SegmentLogTest, LastSegmentHeaderNamingAnotherIndexIsDataLoss) {
  // A whole, valid header naming another entry is not a torn write: Open
  // must neither cut the segment nor serve its records under wrong indexes.
  Fill(kTornN);
  std::string h(kSegmentMagic, 8);
  PutBigEndian32(&h, kSegmentVersion);
  PutBigEndian64(&h, 512);
  PutBigEndian32(&h, crc32c::Mask(crc32c::Value(h.data(), h.size())));
  const std::string moved = h + ReadFile(SegPath(256)).substr(kSegmentHeaderSize);
  WriteFile(SegPath(256), moved);
  auto bad = SegmentLog::Open(options_, 0, nullptr);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kDataLoss) << bad.status().ToString();
  EXPECT_EQ(ReadFile(SegPath(256)), moved);

  // The same with a torn record after that header.
  fs::resize_file(SegPath(256), moved.size() - 1);
  bad = SegmentLog::Open(options_, 0, nullptr);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kDataLoss) << bad.status().ToString();
  EXPECT_EQ(fs::file_size(SegPath(256)), moved.size() - 1);
}

TEST_F(SegmentLogTest, ConcurrentReadersSeeOnlyDurableCorrectEntries) {
  auto log = MustOpen();
  ASSERT_NE(log, nullptr);
  std::atomic<bool> done{false};
  std::atomic<uint64_t> reads{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 2; ++t) {
    readers.emplace_back([&, t] {
      uint64_t k = static_cast<uint64_t>(t);
      while (!done.load()) {
        uint64_t n = log->size();
        if (n == 0) continue;
        uint64_t i = (k * 7919) % n;
        auto e = log->Read(i);
        ASSERT_TRUE(e.ok()) << e.status().ToString();
        ASSERT_EQ(*e, EntryData(i));
        ++k;
        ++reads;
      }
    });
  }
  for (uint64_t i = 0; i < 1500; i += 50) {
    ASSERT_TRUE(log->Append(Entries(i, i + 50)).ok());
    ASSERT_TRUE(log->Sync().ok());
  }
  done = true;
  for (auto& t : readers) t.join();
  EXPECT_GT(reads.load(), 0u);
  ExpectEntries(*log, 1500);
}

TEST_F(SegmentLogTest, ConcurrentFirstReadsOfSealedSegmentsLoadTheirOffsetsOnce) {
  // After a reopen every sealed segment's offsets are still on disk; the
  // readers race to load them (one with a damaged table, so rescanned)
  // while the writer appends and seals more.
  Fill(1024);
  std::string off = ReadFile(OffPath(256));
  off[kOffsetHeaderSize + 9] ^= 0x10;
  WriteFile(OffPath(256), off);
  auto log = MustOpen(1024);
  ASSERT_NE(log, nullptr);
  std::atomic<bool> done{false};
  std::vector<std::thread> readers;
  for (int t = 0; t < 2; ++t) {
    readers.emplace_back([&, t] {
      uint64_t k = static_cast<uint64_t>(t);
      while (!done.load()) {
        const uint64_t n = log->size();
        const uint64_t i = (k * 7919) % n;
        auto e = log->Read(i);
        ASSERT_TRUE(e.ok()) << e.status().ToString();
        ASSERT_EQ(*e, EntryData(i));
        ++k;
      }
    });
  }
  for (uint64_t i = 1024; i < 2048; i += 64) {
    ASSERT_TRUE(log->Append(Entries(i, i + 64)).ok());
    ASSERT_TRUE(log->Sync().ok());
  }
  done = true;
  for (auto& t : readers) t.join();
  ExpectEntries(*log, 2048);
  EXPECT_EQ(SegmentNames(kOffsetSuffix).size(), 7u);
}

// --- ScanSegment on raw bytes. ---

TEST_F(SegmentLogTest, ScanSegmentReportsRecordsAndGoodBytes) {
  Fill(300);
  const std::string seg = ReadFile(SegPath(256));
  uint64_t first = 0, good = 0, next = 256;
  Status s = ScanSegment(
      seg,
      [&](uint64_t i, std::string_view d) {
        EXPECT_EQ(i, next++);
        EXPECT_EQ(d, EntryData(i));
        return OkStatus();
      },
      &first, &good);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(first, 256u);
  EXPECT_EQ(good, seg.size());
  EXPECT_EQ(next, 300u);

  // Torn: good_bytes stops at the last whole record.
  s = ScanSegment(seg.substr(0, seg.size() - 1), nullptr, &first, &good);
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_EQ(good, RecordOffset(256, 299));
  EXPECT_NE(s.message().find("entry 299"), std::string::npos) << s.ToString();
}

TEST(ScanSegmentTest, RejectsBadHeaders) {
  std::string h(kSegmentMagic, 8);
  PutBigEndian32(&h, kSegmentVersion);
  PutBigEndian64(&h, 0);
  PutBigEndian32(&h, crc32c::Mask(crc32c::Value(h.data(), h.size())));
  uint64_t good = 99;
  EXPECT_TRUE(ScanSegment(h, nullptr, nullptr, &good).ok());
  EXPECT_EQ(good, kSegmentHeaderSize);

  EXPECT_EQ(ScanSegment("", nullptr).code(), StatusCode::kDataLoss);
  EXPECT_EQ(ScanSegment(h.substr(0, 23), nullptr).code(), StatusCode::kDataLoss);
  std::string magic = h;
  magic[0] = 'X';
  EXPECT_NE(ScanSegment(magic, nullptr).message().find("magic"), std::string::npos);
  std::string version = h;
  version[11] = 2;
  EXPECT_NE(ScanSegment(version, nullptr).message().find("version"), std::string::npos);
  std::string crc = h;
  crc[23] ^= 1;
  EXPECT_NE(ScanSegment(crc, nullptr).message().find("CRC"), std::string::npos);
  std::string first = h;
  first[19] = 1;  // first index changed without fixing the CRC
  EXPECT_EQ(ScanSegment(first, nullptr).code(), StatusCode::kDataLoss);
}

TEST(ScanSegmentTest, RejectsOversizeAndZeroLengthRecords) {
  std::string h(kSegmentMagic, 8);
  PutBigEndian32(&h, kSegmentVersion);
  PutBigEndian64(&h, 5);
  PutBigEndian32(&h, crc32c::Mask(crc32c::Value(h.data(), h.size())));
  std::string zero = h + std::string(8, '\0');
  Status s = ScanSegment(zero, nullptr);
  EXPECT_NE(s.message().find("entry 5"), std::string::npos) << s.ToString();
  EXPECT_NE(s.message().find("bad record length 0"), std::string::npos) << s.ToString();

  std::string big = h;
  PutBigEndian32(&big, kMaxRecordSize + 1);
  PutBigEndian32(&big, 0);
  big.append(kMaxRecordSize + 1, 'x');
  s = ScanSegment(big, nullptr);
  EXPECT_NE(s.message().find("bad record length"), std::string::npos) << s.ToString();
}


// Faults under the log (docs/faults.md).
class SegmentLogFaultTest : public SegmentLogTest {
 protected:
  using Op = env::FaultInjectionEnv::Op;
  void SetUp() override {
    SegmentLogTest::SetUp();
    options_.env = &faults_;
  }
  env::FaultInjectionEnv faults_{env::Env::Default()};
};

TEST_F(SegmentLogFaultTest, FailedSyncForgetsTheBatchCutsItsBytesAndIsSticky) {
  Fill(100);
  auto log = MustOpen();
  ASSERT_NE(log, nullptr);
  const uint64_t bytes = fs::file_size(SegPath(0));
  faults_.Arm(Op::kSync, ".seg", EIO, 1);
  ASSERT_TRUE(log->Append(Entries(100, 150)).ok());
  Status s = log->Sync();
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("fdatasync " + SegPath(0).string()), std::string::npos) << s.message();
  EXPECT_EQ(log->size(), 100u);
  EXPECT_EQ(fs::file_size(SegPath(0)), bytes);
  // The fault fired once; the log still refuses, with the first error.
  EXPECT_EQ(log->write_error().message(), s.message());
  EXPECT_EQ(log->Append(Entries(100, 101)).message(), s.message());
  EXPECT_EQ(log->Sync().message(), s.message());
  ExpectEntries(*log, 100);
  log.reset();
  ExpectAppendsWorkAfterRecovery(MustOpen(), 100);
}

TEST_F(SegmentLogFaultTest, OutOfSpaceWriteCutsItsBytesAndAppendsGoOnOnceThereIsRoom) {
  Fill(100);
  auto log = MustOpen();
  ASSERT_NE(log, nullptr);
  const uint64_t bytes = fs::file_size(SegPath(0));
  faults_.FillDisk();  // half of each write lands, then ENOSPC
  ASSERT_TRUE(log->Append(Entries(100, 150)).ok());
  Status s = log->Sync();
  EXPECT_EQ(s.code(), StatusCode::kResourceExhausted) << s.ToString();
  EXPECT_TRUE(log->write_error().ok());
  EXPECT_EQ(log->size(), 100u);
  EXPECT_EQ(fs::file_size(SegPath(0)), bytes);
  faults_.ReturnSpace();
  ExpectAppendsWorkAfterRecovery(std::move(log), 100);
}

TEST_F(SegmentLogFaultTest, OtherWriteErrorsAndFailedCutsAreSticky) {
  Fill(100);
  auto log = MustOpen();
  ASSERT_NE(log, nullptr);
  faults_.Arm(Op::kWrite, ".seg", EIO, 1);
  ASSERT_TRUE(log->Append(Entries(100, 150)).ok());
  EXPECT_FALSE(log->Sync().ok());
  EXPECT_FALSE(log->write_error().ok());
  log.reset();

  // Out of space, and the torn bytes cannot be cut: sticky, and the next
  // open cuts the torn tail (whole records of the failed batch before it
  // stay, as after a crash between write and answer).
  log = MustOpen();
  ASSERT_NE(log, nullptr);
  faults_.Arm(Op::kWrite, ".seg", ENOSPC, 1, /*short_write=*/true);
  faults_.Arm(Op::kTruncate, ".seg", EIO, 1);
  ASSERT_TRUE(log->Append(Entries(100, 150)).ok());
  EXPECT_EQ(log->Sync().code(), StatusCode::kResourceExhausted);
  EXPECT_FALSE(log->write_error().ok());
  log.reset();
  RecoveryReport report;
  log = MustOpen(0, &report);
  ASSERT_NE(log, nullptr);
  EXPECT_GT(report.truncated_bytes, 0u);
  EXPECT_GE(log->size(), 100u);
  EXPECT_LT(log->size(), 150u);
  const uint64_t kept = log->size();
  ExpectAppendsWorkAfterRecovery(std::move(log), kept);
}

TEST_F(SegmentLogFaultTest, ReadErrorNamesTheSegmentAndOpenFailsCleanly) {
  Fill(100);
  auto log = MustOpen();
  ASSERT_NE(log, nullptr);
  faults_.Arm(Op::kRead, ".seg", EIO);
  auto e = log->Read(7);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find(SegPath(0).string()), std::string::npos);
  log.reset();
  auto reopened = SegmentLog::Open(options_, 0, nullptr);  // the scan's map fails
  ASSERT_FALSE(reopened.ok());
  EXPECT_NE(reopened.status().message().find(SegPath(0).string()), std::string::npos);
  faults_.ClearFaults();
  log = MustOpen();
  ASSERT_NE(log, nullptr);
  ExpectEntries(*log, 100);
}

}  // namespace
}  // namespace annals::log

namespace annals::log {
namespace {

// With a cache window, synced bytes more than the window behind the open
// segment's end leave the page cache (the pages the next writes reuse);
// the newest stay; every entry still reads back whole.
TEST(SegmentLogCacheWindow, SyncedBytesBehindTheWindowLeaveThePageCache) {
  std::string tmpl = (fs::temp_directory_path() / "annals-segment-cache-XXXXXX").string();
  ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
  const std::string root = tmpl;
  struct statfs fsinfo;
  ASSERT_EQ(::statfs(root.c_str(), &fsinfo), 0);
  if (fsinfo.f_type == TMPFS_MAGIC) {
    fs::remove_all(root);
    GTEST_SKIP() << root << " is on tmpfs, whose pages are the files themselves: nothing to drop";
  }
  SegmentLogOptions o;
  o.dir = root + "/segments";
  o.max_segment_entries = 1 << 16;
  o.cache_window_bytes = 1 << 20;
  auto log = SegmentLog::Open(o, 0, nullptr);
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  constexpr int kEntries = 2048;  // 8 KiB each: 16 MiB
  auto entry = [](int i) { return std::string(8192, static_cast<char>('a' + i % 26)); };
  for (int i = 0; i < kEntries; i += 64) {
    std::vector<std::string> batch;
    for (int k = i; k < i + 64; ++k) batch.push_back(entry(k));
    ASSERT_TRUE((*log)->Append(batch).ok());
    ASSERT_TRUE((*log)->Sync().ok());
  }
  const std::string path = o.dir + "/" + SegmentFileName(0);
  const int fd = ::open(path.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  const size_t size = static_cast<size_t>(fs::file_size(path));
  void* map = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
  ASSERT_NE(map, MAP_FAILED);
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  std::vector<unsigned char> resident((size + page - 1) / page);
  ASSERT_EQ(::mincore(map, size, resident.data()), 0);
  auto share = [&](size_t from, size_t to) {
    size_t in = 0;
    for (size_t p = from / page; p < to / page; ++p) in += resident[p] & 1;
    return static_cast<double>(in) / static_cast<double>(to / page - from / page);
  };
  const double old_part = share(0, size / 2), newest = share(size - (512 << 10), size);
  ::munmap(map, size);
  ::close(fd);
  EXPECT_LT(old_part, 0.1) << "the first half of the segment is still in the page cache";
  EXPECT_GT(newest, 0.9) << "the newest half MiB was dropped too";
  int64_t read = 0;
  ASSERT_TRUE((*log)->ReadRange(0, kEntries, [&](uint64_t i, std::string_view e) {
                       EXPECT_EQ(e, entry(static_cast<int>(i)));
                       ++read;
                       return OkStatus();
                     }).ok());
  EXPECT_EQ(read, kEntries);
  log->reset();
  fs::remove_all(root);
}

}  // namespace
}  // namespace annals::log
