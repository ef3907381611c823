#include "ledger/verifier.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "checkpoint/checkpoint.h"
#include "checkpoint/note.h"
#include "common/bytes.h"
#include "common/crc32c.h"
#include "ledger/blob_store.h"
#include "ledger/checkpoint_log.h"
#include "ledger/entry.h"
#include "ledger/ledger.h"
#include "log/compressed_segment.h"
#include "log/segment_format.h"
#include "log/segment_log.h"
#include "ledger/tile_store.h"
#include "merkle/tile.h"

namespace annals::ledger {
namespace {

namespace fs = std::filesystem;

constexpr uint64_t kN = 700;         // segments 0, 256, 512; full tiles 0/000, 0/001
constexpr uint64_t kBlobIndex = 300;  // the entry whose payload is a blob

std::string Payload(uint64_t i) {
  if (i == kBlobIndex) return std::string(100000, 'B') + "end";
  return R"({"kind":"Event","n":)" + std::to_string(i) + "}";
}

std::string EntryData(uint64_t i) {
  auto e = EncodeEntry(R"({"v":1,"i":)" + std::to_string(i) + "}", Payload(i), nullptr);
  EXPECT_TRUE(e.ok());
  return *e;
}

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void OverwriteFile(const fs::path& p, const std::string& data) {
  fs::permissions(p, fs::perms::owner_write, fs::perm_options::add);
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << data;
}

std::string Frame(std::string_view note) {
  std::string out;
  PutBigEndian32(&out, static_cast<uint32_t>(note.size()));
  uint32_t crc = crc32c::Extend(crc32c::Value(out.data(), 4), note.data(), note.size());
  PutBigEndian32(&out, crc32c::Mask(crc));
  out.append(note);
  return out;
}

struct Record {
  uint64_t offset;  // of the record header
  std::string note;
};

std::vector<Record> CheckpointRecords(const std::string& log) {
  std::vector<Record> out;
  uint64_t off = kCheckpointLogHeaderSize;
  while (off + 8 <= log.size()) {
    uint32_t len = GetBigEndian32(log.data() + off);
    out.push_back({off, log.substr(off + 8, len)});
    off += 8 + len;
  }
  return out;
}

// Byte offset of entry `index`'s record in the segment starting at `first`.
uint64_t RecordOffset(uint64_t first, uint64_t index) {
  uint64_t off = log::kSegmentHeaderSize;
  for (uint64_t i = first; i < index; ++i) off += log::kRecordHeaderSize + EntryData(i).size();
  return off;
}

class VerifierTest : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::string tmpl = (fs::temp_directory_path() / "annals-verifier-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    pristine_ = new std::string(tmpl);
    LedgerOptions o;
    o.data_dir = *pristine_ + "/data";
    o.checkpoint_interval = std::chrono::milliseconds(10);
    o.max_segment_entries = 256;
    o.segment_compression_level = 0;  // the tests damage the plain segments
    auto l = Ledger::Open(o);
    ASSERT_TRUE(l.ok()) << l.status().ToString();
    for (uint64_t i = 0; i < kN; i += 50) {
      std::vector<std::string> batch;
      for (uint64_t k = i; k < i + 50; ++k) {
        if (k == kBlobIndex) {
          ASSERT_TRUE((*l)->PutBlob(Sha256(Payload(k)), Payload(k)).ok());
        }
        batch.push_back(EntryData(k));
      }
      ASSERT_TRUE((*l)->Append(batch).ok());
      // Several checkpoints along the way.
      ASSERT_TRUE((*l)->WaitForCheckpoint(i + 50, std::chrono::seconds(30)));
    }
    key_ = new std::string((*l)->signer().VerifierKey());
  }
  static void TearDownTestSuite() {
    fs::remove_all(*pristine_);
    delete pristine_;
    delete key_;
  }

  // Each test damages its own copy of the data directory.
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "annals-verifier-copy-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
    fs::copy(*pristine_ + "/data", Data(), fs::copy_options::recursive);
  }
  void TearDown() override { fs::remove_all(root_); }

  fs::path Data() const { return fs::path(root_) / "data"; }
  fs::path Segment(uint64_t first) const { return Data() / "segments" / log::SegmentFileName(first); }
  // Level L's full tiles, tile N at byte N * 8192 (docs/format/tiles.md).
  fs::path LevelFile(uint64_t level) const { return TileStore::LevelFile((Data() / "log").string(), level); }
  fs::path CheckpointLogPath() const { return Data() / "log" / kCheckpointLogName; }
  fs::path BlobPath() const { return BlobStore((Data() / "blobs").string()).PathFor(Sha256(Payload(kBlobIndex))); }

  std::string PrivateKey() const {
    std::string k = ReadFile(Data() / "key");
    while (!k.empty() && k.back() == '\n') k.pop_back();
    return k;
  }

  Status Verify(VerifyReport* report) { return VerifyDataDir(Data().string(), *key_, nullptr, report); }

  // Verification fails with DataLoss whose message contains `want`, and
  // reports `bad_index` (-1: do not check).
  void ExpectFailure(const std::string& want, int64_t bad_index) {
    VerifyReport report;
    Status s = Verify(&report);
    ASSERT_FALSE(s.ok()) << "verify passed; expected: " << want;
    EXPECT_EQ(s.code(), StatusCode::kDataLoss) << s.ToString();
    EXPECT_NE(s.message().find(want), std::string::npos) << s.ToString() << "\nwant: " << want;
    if (bad_index >= 0) {
      EXPECT_EQ(report.bad_index, bad_index) << s.ToString();
    }
  }

  static std::string* pristine_;
  static std::string* key_;
  std::string root_;
};

std::string* VerifierTest::pristine_ = nullptr;
std::string* VerifierTest::key_ = nullptr;

TEST_F(VerifierTest, GoodDataDirPasses) {
  VerifyReport report;
  std::vector<std::pair<uint64_t, uint64_t>> progress;
  Status s = VerifyDataDir(Data().string(), *key_,
                           [&](uint64_t done, uint64_t total) { progress.emplace_back(done, total); },
                           &report);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(report.entries, kN);
  EXPECT_EQ(report.tiles, 2u);
  EXPECT_GE(report.checkpoints, 2u);
  EXPECT_EQ(report.blobs, 1u);
  EXPECT_EQ(report.bad_index, -1);
  uint64_t seg_bytes = 0;
  for (uint64_t first : {0, 256, 512}) seg_bytes += fs::file_size(Segment(first));
  EXPECT_EQ(report.bytes, seg_bytes);
  ASSERT_FALSE(progress.empty());
  EXPECT_EQ(progress.back().first, seg_bytes);
  EXPECT_EQ(progress.back().second, seg_bytes);
}

TEST_F(VerifierTest, CompressedSegmentsVerifyAndAFlippedByteNamesItsEntries) {
  {
    log::SegmentLogOptions o;
    o.dir = (Data() / "segments").string();
    auto seglog = log::SegmentLog::Open(o, kN, nullptr);
    ASSERT_TRUE(seglog.ok()) << seglog.status().ToString();
    for (int k = 0; k < 2; ++k) ASSERT_TRUE((*seglog)->CompressOne(3).value());
    ASSERT_FALSE((*seglog)->CompressOne(3).value());
  }
  const fs::path z = Data() / "segments" / log::ZsegFileName(256);
  ASSERT_TRUE(fs::exists(z));
  ASSERT_FALSE(fs::exists(Segment(256)));
  VerifyReport report;
  Status s = Verify(&report);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(report.entries, kN);
  EXPECT_EQ(report.blobs, 1u);
  // A byte of the second segment's compressed records.
  std::string bytes = ReadFile(z);
  bytes[log::kZsegHeaderSize + 100] ^= 0x04;
  OverwriteFile(z, bytes);
  ExpectFailure("entries 256..511", 256);
}

TEST_F(VerifierTest, WrongKeyFails) {
  auto other = note::GeneratePrivateKey("annals.local/log");
  ASSERT_TRUE(other.ok());
  auto signer = note::Signer::FromPrivateKey(*other);
  ASSERT_TRUE(signer.ok());
  VerifyReport report;
  Status s = VerifyDataDir(Data().string(), (*signer)->VerifierKey(), nullptr, &report);
  EXPECT_EQ(s.code(), StatusCode::kDataLoss) << s.ToString();
  EXPECT_NE(s.message().find("checkpoint record 0"), std::string::npos) << s.ToString();
}

TEST_F(VerifierTest, FlippedByteInLastSegmentRecordNamesTheEntry) {
  const uint64_t off = RecordOffset(512, 600);
  std::string seg = ReadFile(Segment(512));
  seg[off + log::kRecordHeaderSize + 3] ^= 0x01;
  OverwriteFile(Segment(512), seg);
  ExpectFailure("entry 600", 600);
}

TEST_F(VerifierTest, FlippedByteInSealedSegmentRecordNamesTheEntry) {
  const uint64_t off = RecordOffset(0, 10);
  std::string seg = ReadFile(Segment(0));
  seg[off + log::kRecordHeaderSize + 1] ^= 0x80;
  OverwriteFile(Segment(0), seg);
  ExpectFailure("entry 10", 10);
}

TEST_F(VerifierTest, FlippedLengthInRecordHeaderNamesTheEntry) {
  const uint64_t off = RecordOffset(256, 257);
  std::string seg = ReadFile(Segment(256));
  seg[off + 3] ^= 0x04;
  OverwriteFile(Segment(256), seg);
  ExpectFailure("entry 257", 257);
}

TEST_F(VerifierTest, TruncatedLastSegmentIsDetected) {
  fs::resize_file(Segment(512), fs::file_size(Segment(512)) - 2);
  ExpectFailure("entry 699", 699);
}

TEST_F(VerifierTest, MissingSegmentIsDetected) {
  fs::remove(Segment(256));
  ExpectFailure("expected 256", 256);
}

TEST_F(VerifierTest, UndecodableEntryWithValidCrcNamesTheEntry) {
  const uint64_t off = RecordOffset(256, 400);
  std::string seg = ReadFile(Segment(256));
  std::string data = EntryData(400);
  data[0] = 0x07;  // unknown version
  std::string rec;
  PutBigEndian32(&rec, static_cast<uint32_t>(data.size()));
  uint32_t crc = crc32c::Extend(crc32c::Value(rec.data(), 4), data.data(), data.size());
  PutBigEndian32(&rec, crc32c::Mask(crc));
  rec += data;
  seg.replace(off, rec.size(), rec);
  OverwriteFile(Segment(256), seg);
  ExpectFailure("entry 400", 400);
}

TEST_F(VerifierTest, FlippedByteInFullTileNamesTheEntry) {
  std::string tiles = ReadFile(LevelFile(0));
  ASSERT_EQ(tiles.size(), 2u * 256 * 32);
  tiles[256 * 32 + 37 * 32 + 31] ^= 0x10;
  OverwriteFile(LevelFile(0), tiles);
  ExpectFailure("entry 293", 256 + 37);
}

TEST_F(VerifierTest, MissingTileIsDetected) {
  fs::remove(LevelFile(0));
  ExpectFailure("tile/0/000", 0);
}

TEST_F(VerifierTest, ShortTileIsDetected) {
  // Tile 1 cut one hash short, as a torn write leaves it.
  fs::resize_file(LevelFile(0), 256 * 32 + 255 * 32);
  ExpectFailure("tile/0/001", 256);
}

TEST_F(VerifierTest, AlteredBlobNamesTheEntry) {
  std::string blob = ReadFile(BlobPath());
  ASSERT_EQ(blob, Payload(kBlobIndex));
  blob[5000] = 'C';
  OverwriteFile(BlobPath(), blob);
  ExpectFailure("entry " + std::to_string(kBlobIndex), kBlobIndex);
}

TEST_F(VerifierTest, MissingBlobNamesTheEntry) {
  fs::remove(BlobPath());
  ExpectFailure("entry " + std::to_string(kBlobIndex), kBlobIndex);
}

TEST_F(VerifierTest, FlippedByteInCheckpointLogNamesTheRecord) {
  std::string log = ReadFile(CheckpointLogPath());
  auto records = CheckpointRecords(log);
  ASSERT_GE(records.size(), 3u);
  const uint64_t r = 1;
  log[records[r].offset + 8 + 10] ^= 0x01;  // inside the note text: CRC fails
  OverwriteFile(CheckpointLogPath(), log);
  ExpectFailure("checkpoint record " + std::to_string(r), -1);
}

TEST_F(VerifierTest, FlippedCrcInCheckpointLogNamesTheRecord) {
  std::string log = ReadFile(CheckpointLogPath());
  auto records = CheckpointRecords(log);
  const uint64_t r = records.size() - 1;
  log[records[r].offset + 5] ^= 0x01;
  OverwriteFile(CheckpointLogPath(), log);
  ExpectFailure("checkpoint record " + std::to_string(r), -1);
}

TEST_F(VerifierTest, BadSignatureWithValidCrcNamesTheRecord) {
  std::string log = ReadFile(CheckpointLogPath());
  auto records = CheckpointRecords(log);
  const uint64_t r = records.size() / 2;
  std::string note = records[r].note;
  // Last line: "— <name> <base64(keyhash || signature)>\n".
  size_t sp = note.rfind(' ');
  ASSERT_NE(sp, std::string::npos);
  auto sig = Base64Decode(note.substr(sp + 1, note.size() - sp - 2));
  ASSERT_TRUE(sig.has_value());
  (*sig)[20] ^= 0x01;
  note = note.substr(0, sp + 1) + Base64Encode(*sig) + "\n";
  ASSERT_EQ(note.size(), records[r].note.size());
  std::string rec = Frame(note);
  log.replace(records[r].offset, rec.size(), rec);
  OverwriteFile(CheckpointLogPath(), log);
  ExpectFailure("checkpoint record " + std::to_string(r), -1);
  VerifyReport report;
  EXPECT_NE(Verify(&report).message().find("signature"), std::string::npos);
}

TEST_F(VerifierTest, SignedCheckpointWithWrongRootNamesTheRecord) {
  auto signer = note::Signer::FromPrivateKey(PrivateKey());
  ASSERT_TRUE(signer.ok()) << signer.status().ToString();
  checkpoint::Checkpoint cp{(*signer)->name(), kN, Sha256("not the root"), {}};
  auto note = (*signer)->SignNote(cp.Marshal());
  ASSERT_TRUE(note.ok());
  std::string log = ReadFile(CheckpointLogPath());
  const uint64_t r = CheckpointRecords(log).size();
  log += Frame(*note);
  OverwriteFile(CheckpointLogPath(), log);
  ExpectFailure("checkpoint record " + std::to_string(r) + " (size " + std::to_string(kN) +
                    "): root hash does not match",
                -1);
}

TEST_F(VerifierTest, SignedCheckpointBeyondTheLogIsDetected) {
  auto signer = note::Signer::FromPrivateKey(PrivateKey());
  ASSERT_TRUE(signer.ok());
  checkpoint::Checkpoint cp{(*signer)->name(), kN + 5, Sha256("x"), {}};
  std::string log = ReadFile(CheckpointLogPath());
  log += Frame(*(*signer)->SignNote(cp.Marshal()));
  OverwriteFile(CheckpointLogPath(), log);
  ExpectFailure("entries are missing", -1);
}

TEST_F(VerifierTest, ShrinkingCheckpointIsDetected) {
  auto signer = note::Signer::FromPrivateKey(PrivateKey());
  ASSERT_TRUE(signer.ok());
  checkpoint::Checkpoint cp{(*signer)->name(), 3, Sha256("x"), {}};
  std::string log = ReadFile(CheckpointLogPath());
  const uint64_t r = CheckpointRecords(log).size();
  log += Frame(*(*signer)->SignNote(cp.Marshal()));
  OverwriteFile(CheckpointLogPath(), log);
  ExpectFailure("checkpoint record " + std::to_string(r) + ": size 3", -1);
}

}  // namespace
}  // namespace annals::ledger
