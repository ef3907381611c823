// SegmentLog: the append-only sequence of entries, stored as CRC-framed
// records in numbered segment files under one directory.
//
// Ownership and threads: one writer (Append/Sync, called from a single
// thread), one compressor (CompressOne) and any number of concurrent
// readers (Read*). Readers only see
// entries that Sync() has made durable. No method rewrites or removes a
// durable record except Open(), which cuts a torn or corrupt tail and
// reports it (a failed Sync() cuts only the bytes it failed to make durable).
// CompressOne() changes how a sealed segment is stored, never its records.
// File I/O goes through options.env (docs/faults.md: what a failed write
// or fdatasync does).
#ifndef ANNALS_LOG_SEGMENT_LOG_H_
#define ANNALS_LOG_SEGMENT_LOG_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "env/env.h"

namespace annals::log {

struct SegmentLogOptions {
  std::string dir;
  env::Env* env = env::Env::Default();  // not owned; outlives the log
  // A new segment starts when the current one holds this many entries or
  // bytes, always at a multiple of 256 entries so that an entry bundle never
  // spans two segments.
  uint64_t max_segment_entries = 1 << 16;
  uint64_t max_segment_bytes = 1ull << 30;
  // Where a segment whose local copy was dropped (DropLocal) is read from:
  // the compressed segment file's bytes by its name ("N.zseg"). Null: such
  // segments cannot be read (Unavailable naming them).
  std::function<StatusOr<std::string>(const std::string& name)> fetch_archived;
  // Fetched segments kept in <dir>/archive-cache, the least recently used
  // removed beyond this many.
  size_t archive_cache_segments = 4;
  // Once synced, the open segment's bytes more than this far behind its
  // end leave the page cache (File::DropCache), so that the kernel reuses
  // those pages for the next writes: on a virtual machine whose free
  // memory goes back to the host, a buffered write into pages not used
  // before cost 2-6 times the copy into reused ones (docs/performance.md).
  // Readers of the newest entries (the change feed, the projection) stay
  // within the window; older reads go to the disk. 0: nothing is dropped.
  uint64_t cache_window_bytes = 0;
};

// What Open() found at the end of the last segment.
struct RecoveryReport {
  uint64_t entries = 0;          // entries kept
  uint64_t truncated_bytes = 0;  // bytes cut after the last good record
  std::string reason;            // why the tail was cut (empty if not)
  uint64_t segments_scanned = 0;       // sealed segments read whole
  uint64_t offset_files_written = 0;   // of those, offset files (re)written
};

class SegmentLog {
 public:
  // Opens or creates the log in options.dir. Every record of the last
  // segment is CRC-checked; a bad one is treated as a torn tail: it and all
  // bytes after it are cut (and reported) unless the cut would drop entries
  // below `min_entries` (entries covered by a published checkpoint), which
  // is DataLoss. A sealed segment with a consistent offset file is not read
  // beyond its header and last record (its records are CRC-checked when
  // read, and by `annals verify`); one without is scanned whole, a bad
  // record being DataLoss naming its index, and its offset file written.
  static StatusOr<std::unique_ptr<SegmentLog>> Open(
      const SegmentLogOptions& options, uint64_t min_entries,
      RecoveryReport* report);
  ~SegmentLog();

  // Number of durable entries (what readers may read).
  uint64_t size() const { return durable_.load(std::memory_order_acquire); }

  // Writes entries after the current end, in one write(). Not durable and
  // not visible until Sync(). Writer thread only. Each entry must be
  // 1..kMaxRecordSize bytes.
  Status Append(std::span<const std::string> entries);
  // fdatasync()s everything appended so far and makes it visible. On
  // failure every entry appended since the last good Sync() is forgotten
  // and cut from the file (best effort). A failed write for want of space
  // (ResourceExhausted) whose bytes were cut leaves the log writable;
  // any other failure (a failed fdatasync above all) is sticky: see
  // write_error().
  Status Sync();
  // OK while the log accepts appends; after a failure that cannot be
  // retried safely, that failure, returned by every later Append/Sync until
  // the log is reopened. Writer thread only.
  const Status& write_error() const { return write_error_; }

  // Compresses the oldest sealed segment that is not yet compressed
  // (docs/format/segment.md, ".zseg") with zstd at `level`: every record's
  // CRC is checked first, the compressed file is written beside it
  // (temporary name, fdatasync), read back and compared with the segment
  // frame by frame, renamed into place, and only then does it replace the
  // segment for readers and the segment file is removed. Returns whether
  // one was compressed (false: none left). Entry bytes do not change. One
  // caller at a time (the ledger's compressor thread); concurrent with the
  // writer and readers.
  StatusOr<bool> CompressOne(int level);
  // Segments and their bytes on disk, by form.
  struct Footprint {
    uint64_t plain_segments = 0, plain_bytes = 0;  // the open one included
    uint64_t compressed_segments = 0, compressed_bytes = 0;
    uint64_t compressed_image_bytes = 0;  // what the compressed ones held before
    uint64_t archived_segments = 0;       // in the archive only (DropLocal)
  };
  Footprint footprint() const;
  // The sealed segments (all but the open one), oldest first, in the form
  // each has now. For the archiver.
  struct SealedSegment {
    uint64_t first_index = 0, entries = 0;
    bool compressed = false;
    uint64_t file_bytes = 0;
    std::string file_name;  // "N.seg" or "N.zseg"
    std::string path;
  };
  std::vector<SealedSegment> Sealed() const;
  // Drops the local copy of the compressed sealed segment starting at
  // first_index, which the caller has confirmed is in the archive with
  // exactly these bytes: records it (name, entries, SHA-256 of the file) in
  // <dir>/archived (replaced atomically, synced), then removes the file.
  // Later reads fetch it through options.fetch_archived, check it against
  // the recorded SHA-256 and cache it. FailedPrecondition for the open
  // segment or a plain one.
  Status DropLocal(uint64_t first_index);
  // The first entry whose segment is on local disk (entries below it are
  // in the archive only).
  uint64_t LocalBegin() const;
  // The whole file of the sealed segment starting at first_index, in its
  // form now, read through the log's own handle, and that form's
  // checks: a compressed one's header, index and every frame CRC; a plain
  // one's every record CRC (DataLoss naming the entry). NotFound if no
  // sealed segment starts there; Unavailable if it changed form meanwhile.
  StatusOr<std::string> ReadSealed(uint64_t first_index, bool* compressed) const;

  StatusOr<std::string> Read(uint64_t index) const;
  // Calls fn(index, data) for entries [begin, end), in order, verifying CRCs.
  Status ReadRange(uint64_t begin, uint64_t end,
                   const std::function<Status(uint64_t, std::string_view)>& fn) const;

 private:
  struct Segment;
  explicit SegmentLog(SegmentLogOptions options);
  Status OpenSegments(uint64_t min_entries, RecoveryReport* report);
  Status StartSegment(uint64_t first_index);
  // Forgets the unsynced records after a failed write or sync of `seg` and
  // cuts them from its file; sets write_error_ unless `retryable` and the
  // cut succeeded. Returns `cause`.
  Status FailSync(Segment* seg, Status cause, bool retryable);
  // Writes `seg`'s offset file from its in-memory offsets; on success the
  // offsets leave memory. Best effort: the file is derived data.
  bool WriteOffsets(Segment* seg);
  // Byte offset of record k of `seg` (k == count: the end of its records),
  // loading a sealed segment's offset file on first use. Caller holds mu_.
  StatusOr<uint64_t> OffsetOf(const Segment& seg, uint64_t k) const;
  Status LoadOffsets(const Segment& seg) const;
  // The segment holding entry `index`, or null. Caller holds mu_.
  const Segment* Find(uint64_t index) const;
  struct Zseg;
  // The compressed form of an archived-only segment: from the cache, or
  // fetched, checked and cached.
  StatusOr<std::shared_ptr<const Zseg>> LoadArchived(const Segment& seg) const;
  // <dir>/archived as it should read for segments_ now. Caller holds mu_.
  std::string ArchivedList() const;
  // Opens N.zseg (checking its header and trailer) as entries from `first`.
  StatusOr<std::shared_ptr<const Zseg>> OpenZseg(const std::string& path, uint64_t first) const;
  // Calls fn for entries [i, stop) of a compressed segment.
  Status ReadCompressed(const Zseg& z, uint64_t i, uint64_t stop,
                        const std::function<Status(uint64_t, std::string_view)>& fn) const;

  const SegmentLogOptions options_;
  const uint64_t id_;  // tells this log's frames apart in the per-thread frame cache
  mutable std::shared_mutex mu_;  // guards segments_ (the vector and offsets)
  mutable std::mutex cache_mu_;    // guards cache_
  mutable std::mutex fetch_mu_;    // one archived segment fetched at a time
  // Fetched archived-only segments, most recently used last.
  mutable std::vector<std::pair<uint64_t, std::shared_ptr<const Zseg>>> cache_;
  std::vector<std::unique_ptr<Segment>> segments_;
  uint64_t written_ = 0;              // appended (writer thread only)
  std::atomic<uint64_t> durable_{0};  // synced
  std::string buffer_;                // records appended, not yet written
  std::vector<uint32_t> pending_offsets_;  // their offsets in the last segment
  Status write_error_;                     // sticky (writer thread only)
};

// Scans one segment file and calls fn for each record; used by the offline
// verifier and the fuzzer. Stops at the first bad record with DataLoss naming
// the entry index and byte offset.
Status ScanSegment(std::string_view bytes,
                   const std::function<Status(uint64_t index, std::string_view data)>& fn,
                   uint64_t* first_index = nullptr, uint64_t* good_bytes = nullptr);

// One line of <dir>/archived (docs/format/segment.md "Archived segments").
struct ArchivedSegment {
  std::string name;  // "N.zseg"
  uint64_t first_index = 0, entries = 0, image_bytes = 0, file_bytes = 0;
  std::string sha256_hex;  // of the compressed file
};
std::string EncodeArchivedList(const std::vector<ArchivedSegment>& list);
// Strict: the header line, then one line per segment, each following the
// one before. DataLoss naming the line.
StatusOr<std::vector<ArchivedSegment>> ParseArchivedList(std::string_view text);

// Segment file name for a segment starting at first_index: 20 digits + ".seg".
std::string SegmentFileName(uint64_t first_index);
// Its compressed form's name: the same digits + ".zseg".
std::string ZsegFileName(uint64_t first_index);
// Its offset file's name: the same digits + ".off".
std::string OffsetFileName(uint64_t first_index);

// The whole offset file of a sealed segment (first_index, segment_bytes
// long): the header, the CRC, and offsets that start after the segment
// header, rise by at least a record header each and stay inside the
// segment. Returns the entry count; DataLoss saying what is wrong.
StatusOr<uint32_t> CheckOffsetFile(std::string_view bytes, uint64_t first_index,
                                   uint64_t segment_bytes);
// The offset file for a segment of segment_bytes whose records start at
// offsets (ascending).
std::string EncodeOffsetFile(uint64_t first_index, uint64_t segment_bytes,
                             std::span<const uint32_t> offsets);

}  // namespace annals::log

#endif  // ANNALS_LOG_SEGMENT_LOG_H_
