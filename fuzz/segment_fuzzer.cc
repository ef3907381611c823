// Feeds arbitrary bytes to log::ScanSegment, then stores them as the only
// (so the last) segment of a log and opens it with SegmentLog::Open. Neither
// may crash, and Open must keep exactly the records ScanSegment accepted,
// leave a file that scans clean, and accept appends afterwards.
//
// The first input byte is a mode, the rest the segment file:
//   bit 0: prepend a valid header for first index 0 (so mutations explore
//          the records rather than the header CRC)
//   bit 1: min_entries = the records ScanSegment accepted (Open must succeed)
//   bit 2: min_entries = one more than that (Open must fail with DataLoss)
// The same bytes (without the prepended header) are also checked as an
// offset file, for the segment its own header names: CheckOffsetFile must
// not crash, and what it accepts must encode back to the same bytes.
#include <stdlib.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "common/bytes.h"
#include "common/crc32c.h"
#include "log/segment_format.h"
#include "log/segment_log.h"
#include "fuzz_check.h"

namespace {

namespace fs = std::filesystem;
using annals::OkStatus;
using annals::Status;
using annals::StatusCode;


std::string Header(uint64_t first_index) {
  std::string h(annals::log::kSegmentMagic, sizeof(annals::log::kSegmentMagic));
  annals::PutBigEndian32(&h, annals::log::kSegmentVersion);
  annals::PutBigEndian64(&h, first_index);
  annals::PutBigEndian32(&h, annals::crc32c::Mask(annals::crc32c::Value(h.data(), h.size())));
  return h;
}

// A scratch directory for the whole run, on tmpfs when there is one so
// that fdatasync is cheap.
// Never destroyed, so the atexit cleanup can still use it.
const std::string& ScratchDir() {
  static const std::string* dir = [] {
    std::error_code ec;
    fs::path base = fs::is_directory("/dev/shm", ec) ? fs::path("/dev/shm") : fs::temp_directory_path();
    std::string tmpl = (base / "annals-segment-fuzz-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) std::abort();
    auto* d = new std::string(tmpl);
    std::atexit([] {
      std::error_code ignored;
      fs::remove_all(ScratchDir(), ignored);
    });
    return d;
  }();
  return *dir;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t mode = data[0];
  std::string bytes((mode & 1) ? Header(0) : "");
  bytes.append(reinterpret_cast<const char*>(data) + 1, size - 1);

  // 0. The raw bytes as an offset file.
  {
    std::string_view raw(reinterpret_cast<const char*>(data) + 1, size - 1);
    const bool has_header = raw.size() >= annals::log::kOffsetHeaderSize;
    const uint64_t off_first = has_header ? annals::GetBigEndian64(raw.data() + 12) : 0;
    const uint64_t seg_bytes = has_header ? annals::GetBigEndian64(raw.data() + 24) : 0;
    auto count = annals::log::CheckOffsetFile(raw, off_first, seg_bytes);
    if (count.ok()) {
      std::vector<uint32_t> offsets;
      for (uint32_t k = 0; k < *count; ++k)
        offsets.push_back(annals::GetBigEndian32(raw.data() + annals::log::kOffsetHeaderSize + 4 * k));
      CHECK(annals::log::EncodeOffsetFile(off_first, seg_bytes, offsets) == raw);
      CHECK(offsets.front() >= annals::log::kSegmentHeaderSize);
      CHECK(offsets.back() + annals::log::kRecordHeaderSize < seg_bytes);
    } else {
      CHECK(count.status().code() == StatusCode::kDataLoss);
    }
  }

  // 1. The scanner on raw bytes.
  std::vector<std::string> records;
  uint64_t first = 0, good = 0;
  Status scan = annals::log::ScanSegment(
      bytes,
      [&](uint64_t index, std::string_view d) {
        CHECK(index == first + records.size());
        CHECK(!d.empty() && d.size() <= annals::log::kMaxRecordSize);
        CHECK(d.data() >= bytes.data() && d.data() + d.size() <= bytes.data() + bytes.size());
        records.emplace_back(d);
        return OkStatus();
      },
      &first, &good);
  CHECK(good <= bytes.size());
  if (scan.ok()) {
    CHECK(good == bytes.size());
  } else {
    CHECK(scan.code() == StatusCode::kDataLoss);
    CHECK(good < bytes.size() || bytes.size() < annals::log::kSegmentHeaderSize);
  }
  if (good > 0) CHECK(good >= annals::log::kSegmentHeaderSize);
  // Good bytes rescan clean to the same records.
  uint64_t again = 0;
  CHECK(annals::log::ScanSegment(std::string_view(bytes).substr(0, good),
                                 [&](uint64_t, std::string_view d) {
                                   CHECK(again < records.size() && d == records[again]);
                                   ++again;
                                   return OkStatus();
                                 })
            .ok() ||
        good == 0);
  CHECK(good == 0 || again == records.size());

  // 2. The same bytes as the last segment of a log.
  const std::string dir = ScratchDir() + "/segments";
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string path = dir + "/" + annals::log::SegmentFileName(0);
  {
    std::ofstream out(path, std::ios::binary);
    out << bytes;
  }
  // Only a header that names entry 0 makes the records entries 0, 1, ...
  const bool header_ok = good >= annals::log::kSegmentHeaderSize && first == 0;
  const uint64_t count = header_ok ? records.size() : 0;
  uint64_t min_entries = 0;
  if (mode & 2) min_entries = count;
  if (mode & 4) min_entries = count + 1;

  annals::log::SegmentLogOptions options;
  options.dir = dir;
  options.max_segment_entries = 256;
  annals::log::RecoveryReport report;
  auto log = annals::log::SegmentLog::Open(options, min_entries, &report);
  if (mode & 4) {
    CHECK(!log.ok() && log.status().code() == StatusCode::kDataLoss);
    return 0;
  }
  if (!log.ok()) {
    // Only a valid header naming another first index may refuse to open.
    CHECK(log.status().code() == StatusCode::kDataLoss);
    CHECK(good >= annals::log::kSegmentHeaderSize && first != 0);
    return 0;
  }
  CHECK((*log)->size() == count);
  CHECK(report.entries == count);
  CHECK(report.truncated_bytes <= bytes.size());
  if (scan.ok() && header_ok) {
    CHECK(report.truncated_bytes == 0 && report.reason.empty());
  } else {
    CHECK(!report.reason.empty());
  }
  for (uint64_t i = 0; i < count; ++i) {
    auto e = (*log)->Read(i);
    CHECK(e.ok() && *e == records[i]);
  }
  // The repaired file is a clean segment starting at 0 holding those records.
  {
    std::string repaired = ReadFile(path);
    uint64_t rfirst = 1, n = 0;
    CHECK(annals::log::ScanSegment(repaired, [&](uint64_t, std::string_view) {
            ++n;
            return OkStatus();
          }, &rfirst).ok());
    CHECK(rfirst == 0 && n == count);
  }
  // And it takes appends.
  std::vector<std::string> more = {"x", std::string(300, 'y')};
  CHECK((*log)->Append(more).ok());
  CHECK((*log)->Sync().ok());
  CHECK((*log)->size() == count + 2);
  auto last = (*log)->Read(count + 1);
  CHECK(last.ok() && *last == more[1]);
  return 0;
}
