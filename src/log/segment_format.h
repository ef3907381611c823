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

}  // namespace annals::log

#endif  // ANNALS_LOG_SEGMENT_FORMAT_H_
