#include "log/segment_log.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <thread>
#include <chrono>

#include "common/bytes.h"
#include "common/crc32c.h"
#include "common/sha256.h"
#include "common/log.h"
#include "log/compressed_segment.h"
#include "log/segment_format.h"

namespace annals::log {

// A compressed segment, shared with the readers using it: the compressor
// swaps it in while they read.
struct SegmentLog::Zseg {
  std::string path;
  std::unique_ptr<env::File> file;
  ZsegInfo info;
  uint64_t file_bytes = 0;
  // The frame index, read and checked on first use.
  mutable std::mutex mu;
  mutable std::atomic<bool> loaded{false};
  mutable std::vector<ZsegFrame> frames;

  Status LoadFrames() const {
    if (loaded.load(std::memory_order_acquire)) return OkStatus();
    std::lock_guard lock(mu);
    if (loaded.load(std::memory_order_relaxed)) return OkStatus();
    std::string index(uint64_t{info.frames} * kZsegIndexEntrySize, '\0');
    RETURN_IF_ERROR(file->Read(info.index_offset, index.size(), index.data()));
    auto parsed = ParseZsegIndex(index, info);
    if (!parsed.ok()) return DataLossError(path + ": " + parsed.status().message());
    frames = std::move(*parsed);
    loaded.store(true, std::memory_order_release);
    return OkStatus();
  }
};

struct SegmentLog::Segment {
  uint64_t first_index = 0;
  std::string path;
  // Readers copy it (under mu_) before reading: the compressor drops it
  // when it swaps in the compressed form.
  std::shared_ptr<env::File> file;
  // Set once the segment is compressed (then `file` is null and `bytes` is
  // what the segment file held).
  std::shared_ptr<const Zseg> z;
  // Kept in the archive only (DropLocal): neither `file` nor `z`; reads
  // fetch the compressed file, which must have this size and SHA-256.
  bool archived = false;
  uint64_t archived_file_bytes = 0;
  std::string archived_sha256;  // hex
  uint64_t bytes = 0;   // durable bytes (readers)
  uint64_t count = 0;   // durable entries
  uint64_t uncached = 0;  // bytes from the start dropped from the page cache (writer thread)
  // Where the records start. The open segment's (and a sealed one's whose
  // offset file could not be written) are in `offsets`; a sealed segment
  // with an offset file (in_file) maps it on first use, or, if it turns out
  // damaged then, rescans the segment into `offsets`.
  bool in_file = false;
  mutable std::vector<uint32_t> offsets;
  mutable std::mutex load_mu;
  mutable std::atomic<bool> loaded{false};
  mutable std::unique_ptr<env::MappedRegion> map;  // the offset file
  mutable const char* table = nullptr;             // its offsets, or null
};

namespace {

std::string SegmentHeader(uint64_t first_index) {
  std::string h(kSegmentMagic, sizeof(kSegmentMagic));
  PutBigEndian32(&h, kSegmentVersion);
  PutBigEndian64(&h, first_index);
  PutBigEndian32(&h, crc32c::Mask(crc32c::Value(h.data(), h.size())));
  return h;
}

void AppendRecord(std::string* dst, std::string_view data) {
  char len[4];
  uint32_t n = static_cast<uint32_t>(data.size());
  len[0] = static_cast<char>(n >> 24);
  len[1] = static_cast<char>(n >> 16);
  len[2] = static_cast<char>(n >> 8);
  len[3] = static_cast<char>(n);
  uint32_t crc = crc32c::Extend(crc32c::Value(len, 4), data.data(), data.size());
  dst->append(len, 4);
  PutBigEndian32(dst, crc32c::Mask(crc));
  dst->append(data);
}

// Checks the record at p (avail bytes); returns its data size or an error.
StatusOr<uint32_t> CheckRecord(const char* p, uint64_t avail, uint64_t index,
                               uint64_t offset) {
  auto where = [&] {
    return "entry " + std::to_string(index) + " at byte " + std::to_string(offset);
  };
  if (avail < kRecordHeaderSize) return DataLossError(where() + ": truncated record header");
  uint32_t len = GetBigEndian32(p);
  if (len == 0 || len > kMaxRecordSize)
    return DataLossError(where() + ": bad record length " + std::to_string(len));
  if (avail - kRecordHeaderSize < len) return DataLossError(where() + ": truncated record data");
  uint32_t want = crc32c::Unmask(GetBigEndian32(p + 4));
  uint32_t got = crc32c::Extend(crc32c::Value(p, 4), p + kRecordHeaderSize, len);
  if (want != got) return DataLossError(where() + ": CRC mismatch");
  return len;
}

// Checks a segment header; returns the first index it names.
StatusOr<uint64_t> CheckSegmentHeader(std::string_view bytes) {
  if (bytes.size() < kSegmentHeaderSize) return DataLossError("segment header truncated");
  if (std::memcmp(bytes.data(), kSegmentMagic, sizeof(kSegmentMagic)) != 0)
    return DataLossError("segment header: bad magic");
  uint32_t version = GetBigEndian32(bytes.data() + 8);
  if (version != kSegmentVersion)
    return DataLossError("segment header: unsupported version " + std::to_string(version));
  uint32_t want = crc32c::Unmask(GetBigEndian32(bytes.data() + 20));
  if (crc32c::Value(bytes.data(), 20) != want) return DataLossError("segment header: CRC mismatch");
  return GetBigEndian64(bytes.data() + 12);
}

// Checks an offset file's header against its segment and the file's size;
// returns the entry count.
StatusOr<uint32_t> CheckOffsetHeader(std::string_view hdr, uint64_t first_index,
                                     uint64_t segment_bytes, uint64_t file_size) {
  if (hdr.size() < kOffsetHeaderSize) return DataLossError("offset file truncated");
  if (std::memcmp(hdr.data(), kOffsetMagic, sizeof(kOffsetMagic)) != 0)
    return DataLossError("offset file: bad magic");
  if (uint32_t v = GetBigEndian32(hdr.data() + 8); v != kOffsetVersion)
    return DataLossError("offset file: unsupported version " + std::to_string(v));
  if (GetBigEndian64(hdr.data() + 12) != first_index)
    return DataLossError("offset file names another segment");
  const uint32_t count = GetBigEndian32(hdr.data() + 20);
  if (GetBigEndian64(hdr.data() + 24) != segment_bytes)
    return DataLossError("offset file is for a segment of " +
                         std::to_string(GetBigEndian64(hdr.data() + 24)) + " bytes, not " +
                         std::to_string(segment_bytes));
  if (count == 0) return DataLossError("offset file: no entries");
  if (file_size != kOffsetHeaderSize + 4ull * count + 4)
    return DataLossError("offset file: " + std::to_string(file_size) + " bytes for " +
                         std::to_string(count) + " entries");
  return count;
}

// Opening a sealed segment without reading its records: its offset file's
// header must fit the segment, the segment's header must name first_index,
// and its last record (found through the offset file) must be whole, good
// and end the file. Returns the entry count.
StatusOr<uint32_t> CheckSealedByOffsets(env::Env* env, const std::string& off_path,
                                        const env::File& seg, uint64_t first_index,
                                        uint64_t segment_bytes) {
  ASSIGN_OR_RETURN(auto off, env->OpenFile(off_path, env::OpenMode::kRead));
  ASSIGN_OR_RETURN(uint64_t off_size, off->Size());
  char hdr[kOffsetHeaderSize];
  if (off_size < sizeof(hdr)) return DataLossError("offset file truncated");
  RETURN_IF_ERROR(off->Read(0, sizeof(hdr), hdr));
  ASSIGN_OR_RETURN(uint32_t count, CheckOffsetHeader(std::string_view(hdr, sizeof(hdr)),
                                                      first_index, segment_bytes, off_size));
  char last[4];
  RETURN_IF_ERROR(off->Read(kOffsetHeaderSize + 4ull * (count - 1), 4, last));
  const uint64_t last_off = GetBigEndian32(last);
  if (last_off < kSegmentHeaderSize || last_off + kRecordHeaderSize >= segment_bytes ||
      segment_bytes - last_off - kRecordHeaderSize > kMaxRecordSize)
    return DataLossError("offset file: last record offset " + std::to_string(last_off) +
                         " does not fit a segment of " + std::to_string(segment_bytes) + " bytes");
  std::string seg_hdr(kSegmentHeaderSize, '\0');
  RETURN_IF_ERROR(seg.Read(0, seg_hdr.size(), seg_hdr.data()));
  ASSIGN_OR_RETURN(uint64_t named, CheckSegmentHeader(seg_hdr));
  if (named != first_index)
    return DataLossError("segment header says first entry " + std::to_string(named));
  std::string rec(segment_bytes - last_off, '\0');
  RETURN_IF_ERROR(seg.Read(last_off, rec.size(), rec.data()));
  ASSIGN_OR_RETURN(uint32_t len, CheckRecord(rec.data(), rec.size(), first_index + count - 1,
                                             last_off));
  if (kRecordHeaderSize + len != rec.size())
    return DataLossError("offset file: the last record does not end the segment");
  return count;
}

}  // namespace

std::string SegmentFileName(uint64_t first_index) {
  char buf[40];
  std::snprintf(buf, sizeof(buf), "%020llu%s",
                static_cast<unsigned long long>(first_index), kSegmentSuffix);
  return buf;
}

std::string ZsegFileName(uint64_t first_index) {
  char buf[40];
  std::snprintf(buf, sizeof(buf), "%020llu%s",
                static_cast<unsigned long long>(first_index), kZsegSuffix);
  return buf;
}

std::string OffsetFileName(uint64_t first_index) {
  char buf[40];
  std::snprintf(buf, sizeof(buf), "%020llu%s",
                static_cast<unsigned long long>(first_index), kOffsetSuffix);
  return buf;
}

std::string EncodeOffsetFile(uint64_t first_index, uint64_t segment_bytes,
                             std::span<const uint32_t> offsets) {
  std::string out(kOffsetMagic, sizeof(kOffsetMagic));
  out.reserve(kOffsetHeaderSize + 4 * offsets.size() + 4);
  PutBigEndian32(&out, kOffsetVersion);
  PutBigEndian64(&out, first_index);
  PutBigEndian32(&out, static_cast<uint32_t>(offsets.size()));
  PutBigEndian64(&out, segment_bytes);
  for (uint32_t o : offsets) PutBigEndian32(&out, o);
  PutBigEndian32(&out, crc32c::Mask(crc32c::Value(out.data(), out.size())));
  return out;
}

StatusOr<uint32_t> CheckOffsetFile(std::string_view bytes, uint64_t first_index,
                                   uint64_t segment_bytes) {
  ASSIGN_OR_RETURN(uint32_t count,
                   CheckOffsetHeader(bytes, first_index, segment_bytes, bytes.size()));
  const size_t body = bytes.size() - 4;
  if (crc32c::Unmask(GetBigEndian32(bytes.data() + body)) != crc32c::Value(bytes.data(), body))
    return DataLossError("offset file: CRC mismatch");
  uint64_t min = kSegmentHeaderSize;
  for (uint32_t k = 0; k < count; ++k) {
    const uint64_t o = GetBigEndian32(bytes.data() + kOffsetHeaderSize + 4ull * k);
    if (o < min || o + kRecordHeaderSize >= segment_bytes)
      return DataLossError("offset file: offset " + std::to_string(k) + " (" + std::to_string(o) +
                           ") out of place");
    min = o + kRecordHeaderSize + 1;
  }
  return count;
}

Status ScanSegment(std::string_view bytes,
                   const std::function<Status(uint64_t, std::string_view)>& fn,
                   uint64_t* first_index_out, uint64_t* good_bytes) {
  if (good_bytes) *good_bytes = 0;
  ASSIGN_OR_RETURN(uint64_t first, CheckSegmentHeader(bytes));
  if (first_index_out) *first_index_out = first;
  uint64_t off = kSegmentHeaderSize;
  uint64_t index = first;
  if (good_bytes) *good_bytes = off;
  while (off < bytes.size()) {
    ASSIGN_OR_RETURN(uint32_t len,
                     CheckRecord(bytes.data() + off, bytes.size() - off, index, off));
    if (fn) RETURN_IF_ERROR(fn(index, bytes.substr(off + kRecordHeaderSize, len)));
    off += kRecordHeaderSize + len;
    ++index;
    if (good_bytes) *good_bytes = off;
  }
  return OkStatus();
}

namespace {
std::atomic<uint64_t> next_log_id{1};
}  // namespace

SegmentLog::SegmentLog(SegmentLogOptions options)
    : options_(std::move(options)), id_(next_log_id.fetch_add(1)) {}
SegmentLog::~SegmentLog() = default;

StatusOr<std::unique_ptr<SegmentLog>> SegmentLog::Open(const SegmentLogOptions& options,
                                                       uint64_t min_entries,
                                                       RecoveryReport* report) {
  RETURN_IF_ERROR(options.env->CreateDirs(options.dir));
  std::unique_ptr<SegmentLog> log(new SegmentLog(options));
  RecoveryReport local;
  if (report) *report = RecoveryReport();
  RETURN_IF_ERROR(log->OpenSegments(min_entries, report ? report : &local));
  return log;
}

Status SegmentLog::OpenSegments(uint64_t min_entries, RecoveryReport* report) {
  ASSIGN_OR_RETURN(std::vector<std::string> children, options_.env->GetChildren(options_.dir));
  // The segments by number (20 digits sort like numbers): which of N.seg
  // and N.zseg (its compressed form) are there.
  struct Forms {
    bool plain = false, compressed = false;
  };
  std::map<std::string, Forms> found;
  for (const std::string& n : children) {
    if (n.size() == 20 + std::strlen(kSegmentSuffix) && n.ends_with(kSegmentSuffix)) {
      found[n.substr(0, 20)].plain = true;
    } else if (n.size() == 20 + std::strlen(kZsegSuffix) && n.ends_with(kZsegSuffix)) {
      found[n.substr(0, 20)].compressed = true;
    } else if (n.ends_with(std::string(kZsegSuffix) + ".tmp")) {
      // A compression cut short by a crash: the segment itself is intact.
      if (Status s = options_.env->RemoveFile(options_.dir + "/" + n); !s.ok())
        log::Warning("segments: %s", s.message().c_str());
    }
  }
  std::vector<std::string> names;
  std::vector<Forms> forms;
  for (const auto& [digits, f] : found) {
    names.push_back(digits + (f.plain ? kSegmentSuffix : kZsegSuffix));
    forms.push_back(f);
  }

  // Segments kept in the archive only come first; a local file of one of
  // them (a crash between recording the drop and removing the file) is
  // removed now.
  uint64_t next = 0;
  const std::string list_path = options_.dir + "/" + kArchivedListName;
  if (options_.env->FileExists(list_path)) {
    ASSIGN_OR_RETURN(std::string list, env::ReadFileToString(options_.env, list_path));
    ASSIGN_OR_RETURN(std::vector<ArchivedSegment> archived, ParseArchivedList(list));
    for (const ArchivedSegment& a : archived) {
      if (a.first_index != next)
        return DataLossError(std::string(kArchivedListName) + ": segment " + a.name + " should start at entry " +
                             std::to_string(next));
      auto seg = std::make_unique<Segment>();
      seg->first_index = a.first_index;
      seg->path = options_.dir + "/" + a.name;
      seg->archived = true;
      seg->count = a.entries;
      seg->bytes = a.image_bytes;
      seg->archived_file_bytes = a.file_bytes;
      seg->archived_sha256 = a.sha256_hex;
      next += a.entries;
      segments_.push_back(std::move(seg));
    }
  }
  const std::string cache_dir = options_.dir + "/" + kArchiveCacheDir;
  if (options_.env->FileExists(cache_dir)) RETURN_IF_ERROR(options_.env->RemoveTree(cache_dir));

  for (size_t i = 0; i < names.size(); ++i) {
    const bool last = i + 1 == names.size();
    auto seg = std::make_unique<Segment>();
    seg->path = options_.dir + "/" + names[i];
    std::string_view digits = std::string_view(names[i]).substr(0, 20);
    size_t nz = digits.find_first_not_of('0');
    auto parsed = ParseDecimal(digits.substr(nz == std::string_view::npos ? 19 : nz));
    seg->first_index = parsed ? *parsed : UINT64_MAX;
    if (seg->first_index < next && !segments_.empty() && segments_.back()->archived) {
      for (const std::string& n : {names[i], OffsetFileName(seg->first_index)})
        if (options_.env->FileExists(options_.dir + "/" + n))
          RETURN_IF_ERROR(options_.env->RemoveFile(options_.dir + "/" + n));
      (void)options_.env->SyncDir(options_.dir);
      continue;
    }
    if (seg->first_index != next)
      return DataLossError("segment " + names[i] + " should start at entry " +
                           std::to_string(next));
    if (forms[i].compressed) {
      const std::string zname = ZsegFileName(seg->first_index);
      auto z = OpenZseg(options_.dir + "/" + zname, seg->first_index);
      if (z.ok()) {
        if (forms[i].plain) {
          // A crash after the compressed form was renamed into place (it
          // was checked against the segment before that): finish the swap.
          for (const std::string& n : {SegmentFileName(seg->first_index),
                                       OffsetFileName(seg->first_index)}) {
            if (!options_.env->FileExists(options_.dir + "/" + n)) continue;
            if (Status s = options_.env->RemoveFile(options_.dir + "/" + n); !s.ok())
              log::Warning("segments: %s", s.message().c_str());
          }
          (void)options_.env->SyncDir(options_.dir);
        }
        seg->path = options_.dir + "/" + zname;
        seg->z = *z;
        seg->count = (*z)->info.count;
        seg->bytes = (*z)->info.image_bytes;
        next = seg->first_index + seg->count;
        segments_.push_back(std::move(seg));
        continue;
      }
      if (!forms[i].plain)
        return DataLossError("compressed segment " + zname + ": " + z.status().message());
      // Damage (a compressed form is renamed into place only once it reads
      // back right): kept aside for a post-mortem; the segment is read, and
      // compressed again later.
      log::Warning("segments: %s: %s; reading %s instead, the damaged file kept as %s.bad",
                   zname.c_str(), z.status().message().c_str(), names[i].c_str(), zname.c_str());
      RETURN_IF_ERROR(options_.env->RenameFile(options_.dir + "/" + zname,
                                               options_.dir + "/" + zname + ".bad"));
    }
    ASSIGN_OR_RETURN(seg->file,
                     options_.env->OpenFile(seg->path, last ? env::OpenMode::kReadWrite
                                                            : env::OpenMode::kRead));
    ASSIGN_OR_RETURN(uint64_t file_size, seg->file->Size());
    const std::string off_path = options_.dir + "/" + OffsetFileName(seg->first_index);

    if (!last && options_.env->FileExists(off_path)) {
      auto count = CheckSealedByOffsets(options_.env, off_path, *seg->file, seg->first_index,
                                        file_size);
      if (count.ok()) {
        seg->bytes = file_size;
        seg->count = *count;
        seg->in_file = true;
        next = seg->first_index + seg->count;
        segments_.push_back(std::move(seg));
        continue;
      }
      log::Warning("segment %s: %s; scanning the segment", names[i].c_str(),
                   count.status().message().c_str());
    }

    std::string_view view;
    std::unique_ptr<env::MappedRegion> map;
    if (file_size > 0) {
      ASSIGN_OR_RETURN(map, seg->file->Map(file_size));
      view = map->data();
    }
    uint64_t hdr_first = 0, good = 0;
    Segment* raw = seg.get();
    const char* base = view.data();
    Status s = ScanSegment(
        view,
        [raw, base](uint64_t, std::string_view data) {
          raw->offsets.push_back(
              static_cast<uint32_t>(data.data() - kRecordHeaderSize - base));
          return OkStatus();
        },
        &hdr_first, &good);
    map.reset();
    // A whole header naming another entry is misplaced data, not a torn
    // write: never cut it, even in the last segment.
    if (good >= kSegmentHeaderSize && hdr_first != seg->first_index)
      return DataLossError("segment " + names[i] + " header says first entry " +
                           std::to_string(hdr_first));
    if (!s.ok()) {
      if (!last) return DataLossError("sealed segment " + names[i] + ": " + s.message());
      const uint64_t kept = seg->first_index + seg->offsets.size();
      if (kept < min_entries)
        return DataLossError("segment " + names[i] + ": " + s.message() + "; cutting the tail would drop entries below published checkpoint size " + std::to_string(min_entries));
      report->truncated_bytes = file_size - good;
      report->reason = names[i] + ": " + s.message();
      if (good < kSegmentHeaderSize) {
        // Crashed while creating the segment: lay its header down again.
        RETURN_IF_ERROR(seg->file->Truncate(0));
        RETURN_IF_ERROR(seg->file->Write(0, SegmentHeader(seg->first_index)));
        good = kSegmentHeaderSize;
        seg->offsets.clear();
      } else {
        RETURN_IF_ERROR(seg->file->Truncate(good));
      }
      RETURN_IF_ERROR(seg->file->Sync());
    }
    seg->bytes = good;
    seg->count = seg->offsets.size();
    next = seg->first_index + seg->count;
    if (!last) {
      ++report->segments_scanned;
      if (seg->count > 0 && WriteOffsets(seg.get())) ++report->offset_files_written;
    } else if (options_.env->FileExists(off_path)) {
      // The open segment grows: an offset file for it (left by a crash
      // between sealing it and starting the next) would go stale.
      RETURN_IF_ERROR(options_.env->RemoveFile(off_path));
    }
    segments_.push_back(std::move(seg));
  }
  // Appends go to a plain segment: after a compressed last one (its plain
  // successor lost) a new one starts.
  if (segments_.empty() || segments_.back()->z || segments_.back()->archived) RETURN_IF_ERROR(StartSegment(next));
  if (next < min_entries)
    return DataLossError("log holds " + std::to_string(next) +
                         " entries but a published checkpoint covers " +
                         std::to_string(min_entries));
  written_ = next;
  durable_.store(next, std::memory_order_release);
  report->entries = next;
  return OkStatus();
}

Status SegmentLog::StartSegment(uint64_t first_index) {
  auto seg = std::make_unique<Segment>();
  seg->first_index = first_index;
  seg->path = options_.dir + "/" + SegmentFileName(first_index);
  ASSIGN_OR_RETURN(seg->file, options_.env->OpenFile(seg->path, env::OpenMode::kCreateNew));
  std::string h = SegmentHeader(first_index);
  RETURN_IF_ERROR(seg->file->Write(0, h));
  RETURN_IF_ERROR(seg->file->Sync());
  RETURN_IF_ERROR(options_.env->SyncDir(options_.dir));
  seg->bytes = h.size();
  std::unique_lock lock(mu_);
  segments_.push_back(std::move(seg));
  return OkStatus();
}

Status SegmentLog::Append(std::span<const std::string> entries) {
  if (!write_error_.ok()) return write_error_;
  // All or nothing: check every entry before buffering any.
  for (const std::string& e : entries)
    if (e.empty() || e.size() > kMaxRecordSize)
      return InvalidArgumentError("entry of " + std::to_string(e.size()) +
                                  " bytes: must be 1.." + std::to_string(kMaxRecordSize));
  // Only this (the writer) thread adds segments, so the last one stays put
  // until the roll below: look it up once, not per entry.
  Segment* seg;
  {
    std::shared_lock lock(mu_);
    seg = segments_.back().get();
  }
  size_t i = 0;
  while (i < entries.size()) {
    // Pending (unsynced) records of this segment live in pending_ below.
    const uint64_t seg_entries = written_ - seg->first_index;
    const uint64_t seg_bytes = seg->bytes + buffer_.size();
    if (seg_entries % 256 == 0 && seg_entries > 0 &&
        (seg_entries >= options_.max_segment_entries || seg_bytes >= options_.max_segment_bytes)) {
      // Roll: flush what is pending for the old segment first, and write
      // its offset file before the next segment seals it.
      RETURN_IF_ERROR(Sync());
      WriteOffsets(seg);
      if (Status s = StartSegment(written_); !s.ok()) {
        // A half-made segment file may be left behind: only a reopen (which
        // lays its header down again) may continue.
        write_error_ = s;
        return s;
      }
      std::shared_lock lock(mu_);
      seg = segments_.back().get();
      continue;
    }
    const std::string& e = entries[i];
    if (e.empty() || e.size() > kMaxRecordSize)
      return InvalidArgumentError("entry of " + std::to_string(e.size()) +
                                  " bytes: must be 1.." + std::to_string(kMaxRecordSize));
    pending_offsets_.push_back(static_cast<uint32_t>(seg_bytes));
    AppendRecord(&buffer_, e);
    ++written_;
    ++i;
  }
  return OkStatus();
}

Status SegmentLog::FailSync(Segment* seg, Status cause, bool retryable) {
  // Forget the unsynced records (the caller fails them all), and cut their
  // bytes so that a reopen does not find entries nobody acknowledged.
  written_ -= pending_offsets_.size();
  pending_offsets_.clear();
  buffer_.clear();
  Status cut = seg->file->Truncate(seg->bytes);
  if (!retryable || !cut.ok()) write_error_ = cause;
  return cause;
}

Status SegmentLog::Sync() {
  if (!write_error_.ok()) return write_error_;
  if (buffer_.empty()) return OkStatus();
  Segment* seg;
  {
    std::shared_lock lock(mu_);
    seg = segments_.back().get();
  }
  size_t done = 0;
  while (done < buffer_.size()) {
    // At most kMaxWrite bytes per pwrite(): a group commit can be tens of
    // MiB, and one 8 MiB buffered write was measured up to 20x slower than
    // the same bytes in 1 MiB pieces (ext4, 2-core VM). Durability is
    // unchanged: the one fdatasync() below covers every piece.
    constexpr size_t kMaxWrite = size_t{1} << 20;
    const size_t n = std::min(buffer_.size() - done, kMaxWrite);
    Status s = seg->file->Write(seg->bytes + done,
                                std::string_view(buffer_.data() + done, n));
    if (!s.ok()) {
      // Out of space: nothing of this batch is durable and its bytes are
      // cut, so appends may go on once there is room again. Any other
      // write error is not trusted to pass.
      return FailSync(seg, s, s.code() == StatusCode::kResourceExhausted);
    }
    done += n;
  }
  if (Status s = seg->file->Sync(); !s.ok()) {
    // After a failed fdatasync the page cache state is unknown (fsyncgate):
    // stop accepting writes rather than acknowledge what may be lost.
    return FailSync(seg, s, /*retryable=*/false);
  }
  {
    std::unique_lock lock(mu_);
    seg->bytes += buffer_.size();
    seg->count += pending_offsets_.size();
    seg->offsets.insert(seg->offsets.end(), pending_offsets_.begin(), pending_offsets_.end());
  }
  pending_offsets_.clear();
  buffer_.clear();
  durable_.store(written_, std::memory_order_release);
  // Synced bytes behind the window: their pages serve the next writes.
  constexpr uint64_t kDropStep = uint64_t{4} << 20;
  const uint64_t window = options_.cache_window_bytes;
  if (window > 0 && seg->bytes >= seg->uncached + window + kDropStep) {
    const uint64_t to = seg->bytes - window;
    seg->file->DropCache(seg->uncached, to - seg->uncached);
    seg->uncached = to;
  }
  return OkStatus();
}

bool SegmentLog::WriteOffsets(Segment* seg) {
  // Only the writer thread changes a segment's offsets, so reading them
  // here needs no lock.
  const std::string path = options_.dir + "/" + OffsetFileName(seg->first_index);
  Status s = env::WriteFileAtomic(options_.env, path,
                                  EncodeOffsetFile(seg->first_index, seg->bytes, seg->offsets));
  if (!s.ok()) {
    // The offsets stay in memory; the next open scans the segment again.
    log::Warning("segment %s: offset file not written: %s", seg->path.c_str(),
                 s.message().c_str());
    return false;
  }
  std::unique_lock lock(mu_);
  seg->in_file = true;
  seg->loaded.store(false, std::memory_order_relaxed);
  std::vector<uint32_t>().swap(seg->offsets);
  return true;
}

Status SegmentLog::LoadOffsets(const Segment& seg) const {
  if (seg.loaded.load(std::memory_order_acquire)) return OkStatus();
  std::lock_guard lock(seg.load_mu);
  if (seg.loaded.load(std::memory_order_relaxed)) return OkStatus();
  const std::string path = options_.dir + "/" + OffsetFileName(seg.first_index);
  auto mapped = [&]() -> StatusOr<std::unique_ptr<env::MappedRegion>> {
    ASSIGN_OR_RETURN(auto f, options_.env->OpenFile(path, env::OpenMode::kRead));
    ASSIGN_OR_RETURN(uint64_t size, f->Size());
    if (size == 0) return DataLossError("offset file is empty");
    ASSIGN_OR_RETURN(auto m, f->Map(size));
    ASSIGN_OR_RETURN(uint32_t count, CheckOffsetFile(m->data(), seg.first_index, seg.bytes));
    if (count != seg.count)
      return DataLossError("offset file holds " + std::to_string(count) + " entries, not " +
                           std::to_string(seg.count));
    return m;
  }();
  if (mapped.ok()) {
    seg.map = std::move(*mapped);
    seg.table = seg.map->data().data() + kOffsetHeaderSize;
  } else {
    // Damaged since the open checked its header: the segment itself says
    // where its records are.
    log::Warning("segment %s: %s; scanning the segment", seg.path.c_str(),
                 mapped.status().message().c_str());
    ASSIGN_OR_RETURN(auto m, seg.file->Map(seg.bytes));
    std::vector<uint32_t> offsets;
    const char* base = m->data().data();
    RETURN_IF_ERROR(ScanSegment(m->data(), [&](uint64_t, std::string_view data) {
      offsets.push_back(static_cast<uint32_t>(data.data() - kRecordHeaderSize - base));
      return OkStatus();
    }));
    if (offsets.size() != seg.count)
      return DataLossError("segment " + seg.path + " holds " + std::to_string(offsets.size()) +
                           " entries, its offset file said " + std::to_string(seg.count));
    seg.offsets = std::move(offsets);
    if (Status w = env::WriteFileAtomic(options_.env, path,
                                        EncodeOffsetFile(seg.first_index, seg.bytes, seg.offsets));
        !w.ok())
      log::Warning("segment %s: offset file not rewritten: %s", seg.path.c_str(),
                   w.message().c_str());
  }
  seg.loaded.store(true, std::memory_order_release);
  return OkStatus();
}

StatusOr<uint64_t> SegmentLog::OffsetOf(const Segment& seg, uint64_t k) const {
  if (k == seg.count) return seg.bytes;
  if (seg.in_file) {
    RETURN_IF_ERROR(LoadOffsets(seg));
    if (seg.table != nullptr) return GetBigEndian32(seg.table + 4 * k);
  }
  return seg.offsets[k];
}

const SegmentLog::Segment* SegmentLog::Find(uint64_t index) const {
  auto it = std::upper_bound(segments_.begin(), segments_.end(), index,
                             [](uint64_t i, const std::unique_ptr<Segment>& s) {
                               return i < s->first_index;
                             });
  if (it == segments_.begin()) return nullptr;
  const Segment* s = (--it)->get();
  return index - s->first_index < s->count ? s : nullptr;
}

StatusOr<std::string> SegmentLog::Read(uint64_t index) const {
  std::string out;
  Status s = ReadRange(index, index + 1, [&](uint64_t, std::string_view d) {
    out.assign(d);
    return OkStatus();
  });
  if (!s.ok()) return s;
  return out;
}

Status SegmentLog::ReadRange(
    uint64_t begin, uint64_t end,
    const std::function<Status(uint64_t, std::string_view)>& fn) const {
  if (end > size() || begin > end)
    return OutOfRangeError("entries [" + std::to_string(begin) + ", " + std::to_string(end) +
                           ") beyond log size " + std::to_string(size()));
  // Read over whole, so not zero-filled first (megabytes a chunk of a
  // catch-up, which showed in its profile).
  std::unique_ptr<char[]> buf;
  size_t cap = 0;
  uint64_t i = begin;
  while (i < end) {
    const Segment* seg = nullptr;
    uint64_t off = 0, stop_off = 0, stop = 0;
    std::shared_ptr<env::File> file;
    std::shared_ptr<const Zseg> z;
    std::unique_ptr<Segment> archived;  // a copy of an archived-only segment's record
    {
      std::shared_lock lock(mu_);
      seg = Find(i);
      if (seg == nullptr) return InternalError("entry " + std::to_string(i) + " not located");
      stop = std::min(end, seg->first_index + seg->count);
      if (seg->archived) {
        archived = std::make_unique<Segment>();
        archived->first_index = seg->first_index;
        archived->path = seg->path;
        archived->count = seg->count;
        archived->archived_file_bytes = seg->archived_file_bytes;
        archived->archived_sha256 = seg->archived_sha256;
      } else if (seg->z) {
        z = seg->z;
      } else {
        ASSIGN_OR_RETURN(off, OffsetOf(*seg, i - seg->first_index));
        ASSIGN_OR_RETURN(stop_off, OffsetOf(*seg, stop - seg->first_index));
        file = seg->file;
      }
    }
    if (archived) {
      ASSIGN_OR_RETURN(z, LoadArchived(*archived));
    }
    if (z) {
      RETURN_IF_ERROR(ReadCompressed(*z, i, stop, fn));
      i = stop;
      continue;
    }
    const size_t n = stop_off - off;
    if (n > cap) {
      buf.reset(new char[n]);
      cap = n;
    }
    RETURN_IF_ERROR(file->Read(off, n, buf.get()));
    uint64_t p = 0;
    for (; i < stop; ++i) {
      ASSIGN_OR_RETURN(uint32_t len, CheckRecord(buf.get() + p, n - p, i, off + p));
      RETURN_IF_ERROR(fn(i, std::string_view(buf.get() + p + kRecordHeaderSize, len)));
      p += kRecordHeaderSize + len;
    }
  }
  return OkStatus();
}

StatusOr<std::shared_ptr<const SegmentLog::Zseg>> SegmentLog::OpenZseg(const std::string& path,
                                                                     uint64_t first) const {
  auto z = std::make_shared<Zseg>();
  z->path = path;
  ASSIGN_OR_RETURN(z->file, options_.env->OpenFile(path, env::OpenMode::kRead));
  ASSIGN_OR_RETURN(z->file_bytes, z->file->Size());
  if (z->file_bytes < kZsegHeaderSize + kZsegTrailerSize)
    return DataLossError("compressed segment truncated");
  std::string h(kZsegHeaderSize, '\0'), t(kZsegTrailerSize, '\0');
  RETURN_IF_ERROR(z->file->Read(0, h.size(), h.data()));
  RETURN_IF_ERROR(z->file->Read(z->file_bytes - t.size(), t.size(), t.data()));
  ASSIGN_OR_RETURN(z->info, CheckZsegEnds(h, t, z->file_bytes));
  if (z->info.first_index != first)
    return DataLossError("compressed segment header says first entry " +
                         std::to_string(z->info.first_index));
  return std::shared_ptr<const Zseg>(std::move(z));
}

Status SegmentLog::ReadCompressed(
    const Zseg& z, uint64_t i, uint64_t stop,
    const std::function<Status(uint64_t, std::string_view)>& fn) const {
  RETURN_IF_ERROR(z.LoadFrames());
  // The last frame each thread decompressed: a run of single reads (a
  // history, a receipt per entry) decompresses a frame once. Shared, so
  // that a callback reading other entries cannot free what it is given.
  struct Cached {
    uint64_t log = 0, first = 0;
    uint32_t k = 0;
    std::shared_ptr<const std::string> raw;
  };
  thread_local Cached cache;
  const ZsegInfo& info = z.info;
  while (i < stop) {
    const uint32_t k = static_cast<uint32_t>((i - info.first_index) / info.frame_entries);
    const ZsegFrame& f = z.frames[k];
    std::shared_ptr<const std::string> raw;
    if (cache.raw && cache.log == id_ && cache.first == info.first_index && cache.k == k) {
      raw = cache.raw;
    } else {
      std::string zbytes(f.zlength, '\0');
      RETURN_IF_ERROR(z.file->Read(f.zoffset, zbytes.size(), zbytes.data()));
      auto out = std::make_shared<std::string>();
      RETURN_IF_ERROR(DecompressZsegFrame(zbytes, info, z.frames, k, out.get()));
      raw = std::move(out);
      cache = Cached{id_, info.first_index, k, raw};
    }
    // DecompressZsegFrame checked that the frame is exactly its records.
    uint64_t e = info.first_index + uint64_t{k} * info.frame_entries, p = 0;
    const uint64_t frame_end =
        std::min<uint64_t>(e + info.frame_entries, info.first_index + info.count);
    for (; e < i; ++e) p += kRecordHeaderSize + GetBigEndian32(raw->data() + p);
    for (; i < std::min(stop, frame_end); ++i) {
      ASSIGN_OR_RETURN(uint32_t len, CheckRecord(raw->data() + p, raw->size() - p, i,
                                                 f.image_offset + p));
      RETURN_IF_ERROR(fn(i, std::string_view(raw->data() + p + kRecordHeaderSize, len)));
      p += kRecordHeaderSize + len;
    }
  }
  return OkStatus();
}

StatusOr<bool> SegmentLog::CompressOne(int level) {
  Segment* seg = nullptr;
  std::shared_ptr<env::File> file;
  uint64_t count = 0, bytes = 0;
  {
    std::shared_lock lock(mu_);
    for (size_t j = 0; j + 1 < segments_.size(); ++j) {
      if (!segments_[j]->z && !segments_[j]->archived && segments_[j]->count > 0) {
        seg = segments_[j].get();
        file = seg->file;
        count = seg->count;
        bytes = seg->bytes;
        break;
      }
    }
  }
  if (seg == nullptr) return false;
  const uint64_t first = seg->first_index;
  const std::string name = SegmentFileName(first);

  const std::string zpath = options_.dir + "/" + ZsegFileName(first);
  const std::string tmp = zpath + ".tmp";
  // The segment is read with pread in pieces, never mapped: a mapping of a
  // whole segment faults under the process's mmap lock, which every
  // thread's large allocation waits for, and was measured to delay
  // acknowledgements by tens of ms.
  // What each frame held: its size and CRC, to check the written file by.
  std::vector<std::pair<uint64_t, uint32_t>> frame_sums;
  Status s = [&]() -> Status {
    {
      ASSIGN_OR_RETURN(auto out, options_.env->OpenFile(tmp, env::OpenMode::kCreateTruncate));
      uint64_t at = 0;
      ZsegWriter writer(first, static_cast<uint32_t>(count), kZsegFrameEntries, bytes, level,
                        [&](std::string_view b) -> Status {
                          RETURN_IF_ERROR(out->Write(at, b));
                          at += b.size();
                          return OkStatus();
                        });
      std::string hdr(kSegmentHeaderSize, '\0');
      RETURN_IF_ERROR(file->Read(0, hdr.size(), hdr.data()));
      ASSIGN_OR_RETURN(uint64_t named, CheckSegmentHeader(hdr));
      if (named != first)
        return DataLossError("segment " + name + " header says first entry " + std::to_string(named));
      // A window over the file, refilled as the records are taken from it.
      constexpr size_t kChunk = size_t{1} << 20;
      std::string window, frame;
      size_t used = 0;
      uint64_t pos = kSegmentHeaderSize, window_end = kSegmentHeaderSize;
      auto need = [&](size_t n) -> Status {
        if (window.size() - used >= n) return OkStatus();
        window.erase(0, used);
        used = 0;
        const uint64_t want = std::min<uint64_t>(std::max(n, kChunk), bytes - window_end);
        const size_t have = window.size();
        window.resize(have + want);
        RETURN_IF_ERROR(file->Read(window_end, want, window.data() + have));
        window_end += want;
        return OkStatus();
      };
      for (uint64_t i = first; i < first + count;) {
        frame.clear();
        const uint64_t stop = std::min<uint64_t>(i + kZsegFrameEntries, first + count);
        for (; i < stop; ++i) {
          if (bytes - pos < kRecordHeaderSize)
            return DataLossError("entry " + std::to_string(i) + " at byte " + std::to_string(pos) +
                                 ": truncated record header");
          RETURN_IF_ERROR(need(kRecordHeaderSize));
          const uint32_t len = GetBigEndian32(window.data() + used);
          const uint64_t rec = kRecordHeaderSize + std::min<uint64_t>(len, kMaxRecordSize + 1);
          RETURN_IF_ERROR(need(std::min<uint64_t>(rec, bytes - pos)));
          ASSIGN_OR_RETURN(uint32_t ok_len, CheckRecord(window.data() + used, window.size() - used,
                                                        i, pos));
          frame.append(window, used, kRecordHeaderSize + ok_len);
          used += kRecordHeaderSize + ok_len;
          pos += kRecordHeaderSize + ok_len;
        }
        frame_sums.emplace_back(frame.size(), crc32c::Value(frame.data(), frame.size()));
        RETURN_IF_ERROR(writer.AddFrame(frame));
      }
      if (pos != bytes)
        return DataLossError("segment " + name + ": " + std::to_string(bytes - pos) +
                             " bytes after its last entry");
      RETURN_IF_ERROR(writer.Finish());
      RETURN_IF_ERROR(out->Sync());
    }
    // What reached the disk, read back, must be the segment's frames.
    ASSIGN_OR_RETURN(auto z, OpenZseg(tmp, first));
    RETURN_IF_ERROR(z->LoadFrames());
    if (z->info.count != count || z->info.image_bytes != bytes ||
        z->frames.size() != frame_sums.size())
      return InternalError("compressed form of " + name + " does not read back as it");
    std::string zbytes, raw;
    for (uint32_t k = 0; k < z->frames.size(); ++k) {
      zbytes.resize(z->frames[k].zlength);
      RETURN_IF_ERROR(z->file->Read(z->frames[k].zoffset, zbytes.size(), zbytes.data()));
      RETURN_IF_ERROR(DecompressZsegFrame(zbytes, z->info, z->frames, k, &raw));
      if (raw.size() != frame_sums[k].first || crc32c::Value(raw.data(), raw.size()) != frame_sums[k].second)
        return InternalError("compressed form of " + name + " does not read back as it (frame " +
                             std::to_string(k) + ")");
    }
    RETURN_IF_ERROR(options_.env->RenameFile(tmp, zpath));
    return options_.env->SyncDir(options_.dir);
  }();
  if (!s.ok()) {
    if (options_.env->FileExists(tmp)) (void)options_.env->RemoveFile(tmp);
    return s;
  }
  ASSIGN_OR_RETURN(auto z, OpenZseg(zpath, first));
  {
    std::unique_lock lock(mu_);
    seg->z = std::move(z);
    seg->path = zpath;
    seg->file.reset();
    seg->in_file = false;
    std::vector<uint32_t>().swap(seg->offsets);
    seg->table = nullptr;
    seg->map.reset();
  }
  // The segment goes. Removing a file of a hundred MB at once frees all its
  // blocks in one journal commit, which the writer's next fdatasync waits
  // for: measured on ext4 here, acknowledgements' p99 went from 5 to 60 ms
  // and more. So it is cut down 4 MiB at a time first, once no reader that
  // took it before the swap still reads it (none can take it any more).
  const std::string seg_path = options_.dir + "/" + name;
  for (int i = 0; i < 1000 && file.use_count() > 1; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  if (file.use_count() == 1) {
    file.reset();
    if (auto rw = options_.env->OpenFile(seg_path, env::OpenMode::kReadWrite); rw.ok()) {
      constexpr uint64_t kStep = uint64_t{4} << 20;
      for (uint64_t size = bytes; size > 0;) {
        size = size > kStep ? size - kStep : 0;
        if (!(*rw)->Truncate(size).ok()) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    }
  }
  file.reset();  // a reader that still has it keeps its descriptor
  for (const std::string& n : {name, OffsetFileName(first)}) {
    const std::string path = options_.dir + "/" + n;
    if (!options_.env->FileExists(path)) continue;
    if (Status r = options_.env->RemoveFile(path); !r.ok())
      log::Warning("segments: %s", r.message().c_str());
  }
  (void)options_.env->SyncDir(options_.dir);
  return true;
}

SegmentLog::Footprint SegmentLog::footprint() const {
  Footprint f;
  std::shared_lock lock(mu_);
  for (const auto& seg : segments_) {
    if (seg->archived) {
      ++f.archived_segments;
    } else if (seg->z) {
      ++f.compressed_segments;
      f.compressed_bytes += seg->z->file_bytes;
      f.compressed_image_bytes += seg->z->info.image_bytes;
    } else {
      ++f.plain_segments;
      f.plain_bytes += seg->bytes;
    }
  }
  return f;
}

std::vector<SegmentLog::SealedSegment> SegmentLog::Sealed() const {
  std::vector<SealedSegment> out;
  std::shared_lock lock(mu_);
  for (size_t i = 0; i + 1 < segments_.size(); ++i) {
    const Segment& seg = *segments_[i];
    if (seg.archived) continue;
    SealedSegment s;
    s.first_index = seg.first_index;
    s.entries = seg.count;
    s.compressed = seg.z != nullptr;
    s.file_bytes = seg.z ? seg.z->file_bytes : seg.bytes;
    s.file_name = seg.z ? ZsegFileName(seg.first_index) : SegmentFileName(seg.first_index);
    s.path = options_.dir + "/" + s.file_name;
    out.push_back(std::move(s));
  }
  return out;
}

StatusOr<std::string> SegmentLog::ReadSealed(uint64_t first_index, bool* compressed) const {
  std::shared_ptr<const Zseg> z;
  std::shared_ptr<env::File> file;
  uint64_t bytes = 0;
  {
    std::shared_lock lock(mu_);
    const Segment* seg = nullptr;
    for (size_t i = 0; i + 1 < segments_.size(); ++i)
      if (segments_[i]->first_index == first_index) seg = segments_[i].get();
    if (!seg || seg->archived)
      return NotFoundError("no sealed segment on local disk starts at entry " + std::to_string(first_index));
    z = seg->z;
    file = seg->file;
    bytes = z ? z->file_bytes : seg->bytes;
  }
  *compressed = z != nullptr;
  std::string data(bytes, '\0');
  const env::File& f = z ? *z->file : *file;
  Status read = f.Read(0, bytes, data.data());
  if (!read.ok()) {
    // A plain segment compressed meanwhile is cut down before removal.
    if (!z) return UnavailableError(f.path() + " changed while read: " + read.message());
    return read;
  }
  if (z) {
    RETURN_IF_ERROR(ForEachZsegFrame(
        data, [](const ZsegInfo&, const ZsegFrame&, std::string_view) { return OkStatus(); }));
  } else {
    RETURN_IF_ERROR(ScanSegment(data, [](uint64_t, std::string_view) { return OkStatus(); }));
  }
  return data;
}

uint64_t SegmentLog::LocalBegin() const {
  std::shared_lock lock(mu_);
  for (const auto& seg : segments_)
    if (!seg->archived) return seg->first_index;
  return written_;
}

std::string SegmentLog::ArchivedList() const {
  std::vector<ArchivedSegment> list;
  for (const auto& seg : segments_) {
    if (!seg->archived) break;
    list.push_back({ZsegFileName(seg->first_index), seg->first_index, seg->count, seg->bytes,
                    seg->archived_file_bytes, seg->archived_sha256});
  }
  return EncodeArchivedList(list);
}

Status SegmentLog::DropLocal(uint64_t first_index) {
  std::shared_ptr<const Zseg> z;
  {
    std::shared_lock lock(mu_);
    size_t k = 0;
    while (k < segments_.size() && segments_[k]->first_index != first_index) ++k;
    if (k == segments_.size()) return NotFoundError("no segment starts at entry " + std::to_string(first_index));
    if (k + 1 == segments_.size()) return FailedPreconditionError("the open segment is never dropped");
    if (segments_[k]->archived) return OkStatus();
    if (k > 0 && !segments_[k - 1]->archived)
      return FailedPreconditionError("segments are dropped oldest first");
    if (!segments_[k]->z) return FailedPreconditionError("only compressed segments are dropped");
    z = segments_[k]->z;
  }
  // The whole file, checked, and its digest: what a fetch must give back.
  std::string data(z->file_bytes, '\0');
  RETURN_IF_ERROR(z->file->Read(0, data.size(), data.data()));
  RETURN_IF_ERROR(ForEachZsegFrame(data, [](const ZsegInfo&, const ZsegFrame&, std::string_view) { return OkStatus(); }));
  const std::string digest = HexEncode(HashBytes(Sha256(data)));
  std::string list;
  {
    std::unique_lock lock(mu_);
    for (auto& seg : segments_) {
      if (seg->first_index != first_index) continue;
      seg->archived = true;
      seg->archived_file_bytes = z->file_bytes;
      seg->archived_sha256 = digest;
      seg->z.reset();  // readers mid-read keep theirs
    }
    list = ArchivedList();
    // Recorded before the file goes: a crash after it finishes the drop at
    // the next open; one before it leaves the segment local.
    Status w = env::WriteFileAtomic(options_.env, options_.dir + "/" + kArchivedListName, list);
    if (!w.ok()) {
      for (auto& seg : segments_)
        if (seg->first_index == first_index) {
          seg->archived = false;
          seg->z = z;
        }
      return w;
    }
  }
  RETURN_IF_ERROR(options_.env->RemoveFile(z->path));
  return options_.env->SyncDir(options_.dir);
}

StatusOr<std::shared_ptr<const SegmentLog::Zseg>> SegmentLog::LoadArchived(const Segment& seg) const {
  auto cached = [&]() -> std::shared_ptr<const Zseg> {
    std::lock_guard lock(cache_mu_);
    for (size_t k = 0; k < cache_.size(); ++k) {
      if (cache_[k].first != seg.first_index) continue;
      auto hit = cache_[k];
      cache_.erase(cache_.begin() + static_cast<ptrdiff_t>(k));
      cache_.push_back(hit);
      return hit.second;
    }
    return nullptr;
  };
  if (auto z = cached()) return z;
  // One fetch at a time: two readers of the same segment must not write
  // its cache file at once (and the second finds the first's).
  std::lock_guard fetching(fetch_mu_);
  if (auto z = cached()) return z;
  const std::string name = ZsegFileName(seg.first_index);
  if (!options_.fetch_archived)
    return UnavailableError("segment " + name + " (entries " + std::to_string(seg.first_index) + ".." +
                            std::to_string(seg.first_index + seg.count - 1) +
                            ") is in the archive only, and no archive is configured");
  auto data = options_.fetch_archived(name);
  if (!data.ok())
    return UnavailableError("fetching archived segment " + name + ": " + data.status().message());
  if (data->size() != seg.archived_file_bytes || HexEncode(HashBytes(Sha256(*data))) != seg.archived_sha256)
    return DataLossError("archived segment " + name + " differs from the one whose local copy was dropped (size " +
                         std::to_string(data->size()) + ", want " + std::to_string(seg.archived_file_bytes) +
                         " and SHA-256 " + seg.archived_sha256 + ")");
  const std::string dir = options_.dir + "/" + kArchiveCacheDir;
  RETURN_IF_ERROR(options_.env->CreateDirs(dir));
  const std::string path = dir + "/" + name;
  RETURN_IF_ERROR(env::WriteFileAtomic(options_.env, path, *data, 0644, /*sync=*/false));
  ASSIGN_OR_RETURN(std::shared_ptr<const Zseg> z, OpenZseg(path, seg.first_index));
  std::lock_guard lock(cache_mu_);
  cache_.emplace_back(seg.first_index, z);
  while (cache_.size() > std::max<size_t>(1, options_.archive_cache_segments)) {
    // Readers holding it keep the descriptor.
    (void)options_.env->RemoveFile(cache_.front().second->path);
    cache_.erase(cache_.begin());
  }
  return z;
}

std::string EncodeArchivedList(const std::vector<ArchivedSegment>& list) {
  std::string out = std::string(kArchivedListHeader) + "\n";
  for (const auto& a : list)
    out += a.name + " " + std::to_string(a.first_index) + " " + std::to_string(a.entries) + " " +
           std::to_string(a.image_bytes) + " " + std::to_string(a.file_bytes) + " " + a.sha256_hex + "\n";
  return out;
}

StatusOr<std::vector<ArchivedSegment>> ParseArchivedList(std::string_view text) {
  auto bad = [](size_t line, const std::string& why) {
    return DataLossError(std::string(kArchivedListName) + " line " + std::to_string(line) + ": " + why);
  };
  std::vector<ArchivedSegment> out;
  size_t line_no = 0;
  bool header = false;
  while (!text.empty()) {
    ++line_no;
    const size_t nl = text.find('\n');
    if (nl == std::string_view::npos) return bad(line_no, "no final newline");
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl + 1);
    if (!header) {
      if (line != kArchivedListHeader) return bad(line_no, "not an archived-segments list (version 1)");
      header = true;
      continue;
    }
    // Split at every space: a trailing or doubled space makes an empty
    // field, refused (the text must be exactly what EncodeArchivedList writes).
    std::vector<std::string_view> f;
    for (size_t at = 0;;) {
      const size_t sp = line.find(' ', at);
      f.push_back(line.substr(at, sp == std::string_view::npos ? std::string_view::npos : sp - at));
      if (sp == std::string_view::npos) break;
      at = sp + 1;
    }
    if (f.size() != 6) return bad(line_no, "want NAME FIRST ENTRIES IMAGE_BYTES FILE_BYTES SHA256");
    ArchivedSegment a;
    a.name = std::string(f[0]);
    auto first = ParseDecimal(f[1]), entries = ParseDecimal(f[2]), image = ParseDecimal(f[3]),
         file = ParseDecimal(f[4]);
    if (!first || !entries || !image || !file || *entries == 0) return bad(line_no, "bad number");
    a.first_index = *first;
    a.entries = *entries;
    a.image_bytes = *image;
    a.file_bytes = *file;
    if (a.name != ZsegFileName(a.first_index)) return bad(line_no, "name " + a.name + " is not its first entry's");
    auto digest = HexDecode(f[5]);
    if (!digest || digest->size() != 32 || f[5] != HexEncode(*digest)) return bad(line_no, "bad SHA-256");
    a.sha256_hex = std::string(f[5]);
    if (!out.empty() && out.back().first_index + out.back().entries != a.first_index)
      return bad(line_no, "segment does not follow the one before");
    out.push_back(std::move(a));
  }
  if (!header) return bad(1, "empty");
  return out;
}

}  // namespace annals::log
