// On-disk format of log segments. See docs/format/segment.md.
//
//   segment := header record*
//   header  := magic "ANNALSEG" (8) | version u32 BE (=1) | first_index u64 BE
//              | masked crc32c(magic..first_index) u32 BE          (24 bytes)
//   record  := length u32 BE | masked crc32c(length BE || data) u32 BE | data
//
// Record i of a segment is log entry first_index + i. A segment is sealed
// (never written again) once the next segment exists.
//
// Beside each sealed segment, its offset file (same number, ".off") holds
// where each record starts, so that opening the log reads no sealed record:
//
//   offsets := magic "ANNALSOF" (8) | version u32 BE (=1) | first_index u64 BE
//              | count u32 BE | segment_bytes u64 BE | offset u32 BE * count
//              | masked crc32c(everything before) u32 BE
//
// It is derived data: a missing, stale or damaged one is rebuilt from the
// segment.
//
// A sealed segment may be replaced by its compressed form (same number,
// ".zseg"; compressed_segment.h): the segment file's bytes (its "image")
// after the header, cut into frames of whole records and compressed with
// zstd one frame at a time, with a frame index at the end. Decompressed, the
// frames give back the records byte for byte.
//
//   zseg    := zheader frame* index trailer
//   zheader := magic "ANNALSZS" (8) | version u32 BE (=1) | first_index u64 BE
//              | count u32 BE | frame_entries u32 BE | codec u32 BE (1 = zstd)
//              | image_bytes u64 BE | masked crc32c(magic..image_bytes) u32 BE
//                                                                  (44 bytes)
//   frame   := one zstd frame of the image's records for frame_entries entries
//   index   := (image_offset u64 | zoffset u64 | zlength u32 | raw_length u32
//              | masked crc32c(frame bytes) u32) per frame      (28 bytes each)
//   trailer := index_offset u64 BE | frames u32 BE
//              | masked crc32c(index) u32 BE | magic "ANNALSZE"    (24 bytes)
#ifndef ANNALS_LOG_SEGMENT_FORMAT_H_
#define ANNALS_LOG_SEGMENT_FORMAT_H_

#include <cstddef>
#include <cstdint>

namespace annals::log {

inline constexpr char kSegmentMagic[8] = {'A', 'N', 'N', 'A', 'L', 'S', 'E', 'G'};
inline constexpr uint32_t kSegmentVersion = 1;
inline constexpr size_t kSegmentHeaderSize = 24;
inline constexpr size_t kRecordHeaderSize = 8;
// C2SP entry bundles carry uint16 lengths: no entry may be larger.
inline constexpr uint32_t kMaxRecordSize = 65535;
inline constexpr char kSegmentSuffix[] = ".seg";

inline constexpr char kOffsetMagic[8] = {'A', 'N', 'N', 'A', 'L', 'S', 'O', 'F'};
inline constexpr uint32_t kOffsetVersion = 1;
inline constexpr size_t kOffsetHeaderSize = 32;
inline constexpr char kOffsetSuffix[] = ".off";

inline constexpr char kZsegMagic[8] = {'A', 'N', 'N', 'A', 'L', 'S', 'Z', 'S'};
inline constexpr char kZsegEndMagic[8] = {'A', 'N', 'N', 'A', 'L', 'S', 'Z', 'E'};
inline constexpr uint32_t kZsegVersion = 1;
inline constexpr uint32_t kZsegCodecZstd = 1;
inline constexpr size_t kZsegHeaderSize = 44;
inline constexpr size_t kZsegIndexEntrySize = 28;
inline constexpr size_t kZsegTrailerSize = 24;
// One frame per C2SP entry bundle: serving a bundle decompresses one frame.
inline constexpr uint32_t kZsegFrameEntries = 256;
inline constexpr char kZsegSuffix[] = ".zseg";

// Segments kept only in the archive (docs/format/segment.md "Archived
// segments"): the list of them in the segment directory, and the directory
// where fetched copies are cached.
inline constexpr char kArchivedListName[] = "archived";
inline constexpr char kArchivedListHeader[] = "annals-archived-segments 1";
inline constexpr char kArchiveCacheDir[] = "archive-cache";

}  // namespace annals::log

#endif  // ANNALS_LOG_SEGMENT_FORMAT_H_
