// Compressed sealed segments (".zseg", docs/format/segment.md): the codec.
// Pure functions over bytes, so that the log, the offline verifier and the
// fuzzer share them; SegmentLog does the files.
//
// A compressed segment holds the records of one sealed segment, byte for
// byte, in zstd frames of kZsegFrameEntries entries each. Every frame, the
// header and the frame index carry a CRC: a changed byte is found before
// any decompression and named by the entries of its frame.
#ifndef ANNALS_LOG_COMPRESSED_SEGMENT_H_
#define ANNALS_LOG_COMPRESSED_SEGMENT_H_

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace annals::log {

// What the header and trailer say.
struct ZsegInfo {
  uint64_t first_index = 0;
  uint32_t count = 0;          // entries, > 0
  uint32_t frame_entries = 0;  // entries per frame (the last may hold fewer)
  uint64_t image_bytes = 0;    // the uncompressed segment file's size
  uint64_t index_offset = 0;   // where the frame index starts
  uint32_t frames = 0;         // ceil(count / frame_entries)
  uint32_t index_crc = 0;      // unmasked
};

struct ZsegFrame {
  uint64_t image_offset = 0;  // where its records start in the segment image
  uint64_t zoffset = 0;       // where its zstd bytes start in the file
  uint32_t zlength = 0, raw_length = 0;
  uint32_t crc = 0;  // unmasked CRC32C of the zstd bytes
};

// Checks the first kZsegHeaderSize bytes and the last kZsegTrailerSize
// bytes of a file of file_size bytes against each other.
StatusOr<ZsegInfo> CheckZsegEnds(std::string_view header, std::string_view trailer,
                                 uint64_t file_size);
// Checks and decodes the frame index (info.frames * kZsegIndexEntrySize
// bytes at info.index_offset): its CRC, and frames that follow each other
// without gaps in both the file and the image.
StatusOr<std::vector<ZsegFrame>> ParseZsegIndex(std::string_view index, const ZsegInfo& info);
// Checks frame k's CRC (zbytes are its zlength bytes) and decompresses it
// into *out (exactly raw_length bytes). DataLoss naming its entries.
Status DecompressZsegFrame(std::string_view zbytes, const ZsegInfo& info,
                           const std::vector<ZsegFrame>& frames, uint32_t k, std::string* out);

// Writes a compressed segment frame by frame to `sink`, in order, so that a
// segment is compressed without holding it in memory. Thread-compatible.
class ZsegWriter {
 public:
  // frame_entries in 1..65536; level is zstd's (1..19).
  ZsegWriter(uint64_t first_index, uint32_t count, uint32_t frame_entries, uint64_t image_bytes,
             int level, std::function<Status(std::string_view)> sink);
  ~ZsegWriter();
  ZsegWriter(const ZsegWriter&) = delete;
  ZsegWriter& operator=(const ZsegWriter&) = delete;
  // The next frame: its entries' records, whole, as in the segment
  // (frame_entries of them; fewer for the last frame only).
  Status AddFrame(std::string_view records);
  // Writes the frame index and trailer. InvalidArgument if the frames do
  // not cover `count` entries and image_bytes bytes.
  Status Finish();

 private:
  struct Impl;
  Impl* impl_;
};

// Compresses a sealed segment: `image` is the whole segment file (its
// header naming first_index, then its records), `offsets` where each record
// starts. The compressed file's bytes go to `sink` in order.
// frame_entries > 0; level is zstd's (1..19).
Status CompressSegment(std::string_view image, uint64_t first_index,
                       std::span<const uint32_t> offsets, uint32_t frame_entries, int level,
                       const std::function<Status(std::string_view)>& sink);

// Checks a whole compressed segment's ends, index and every frame, and
// calls fn with each frame decompressed, in order.
Status ForEachZsegFrame(std::string_view zseg,
                        const std::function<Status(const ZsegInfo&, const ZsegFrame&,
                                                   std::string_view raw)>& fn);

// The segment file a whole compressed segment stands for (every CRC checked;
// its records are then checked by ScanSegment). DataLoss saying what and
// where (the frame's entries) on any damage; *good_entries (if given) is
// then how many entries the frames before the damage hold.
StatusOr<std::string> ExpandCompressedSegment(std::string_view zseg,
                                              uint64_t* good_entries = nullptr);

}  // namespace annals::log

#endif  // ANNALS_LOG_COMPRESSED_SEGMENT_H_
