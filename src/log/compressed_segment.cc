#include "log/compressed_segment.h"

#include <zstd.h>

#include <cstring>
#include <memory>

#include "common/bytes.h"
#include "common/crc32c.h"
#include "log/segment_format.h"

namespace annals::log {

namespace {

// Largest frame a reader will allocate for: whole records of at most
// kMaxRecordSize bytes. Bounds what a damaged or hostile file can ask for.
constexpr uint32_t kMaxFrameEntries = 1 << 16;

std::string EntriesOf(const ZsegInfo& info, uint32_t k) {
  const uint64_t a = info.first_index + uint64_t{k} * info.frame_entries;
  const uint64_t b = std::min<uint64_t>(a + info.frame_entries, info.first_index + info.count);
  return "entries " + std::to_string(a) + ".." + std::to_string(b - 1);
}

struct CCtxFree {
  void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
};
struct DCtxFree {
  void operator()(ZSTD_DCtx* d) const { ZSTD_freeDCtx(d); }
};

ZSTD_DCtx* ThreadDCtx() {
  thread_local std::unique_ptr<ZSTD_DCtx, DCtxFree> d(ZSTD_createDCtx());
  return d.get();
}

}  // namespace

StatusOr<ZsegInfo> CheckZsegEnds(std::string_view h, std::string_view t, uint64_t file_size) {
  if (h.size() < kZsegHeaderSize || t.size() < kZsegTrailerSize ||
      file_size < kZsegHeaderSize + kZsegTrailerSize)
    return DataLossError("compressed segment truncated");
  if (std::memcmp(h.data(), kZsegMagic, sizeof(kZsegMagic)) != 0)
    return DataLossError("compressed segment: bad magic");
  if (uint32_t v = GetBigEndian32(h.data() + 8); v != kZsegVersion)
    return DataLossError("compressed segment: unsupported version " + std::to_string(v));
  if (crc32c::Unmask(GetBigEndian32(h.data() + 40)) != crc32c::Value(h.data(), 40))
    return DataLossError("compressed segment: header CRC mismatch");
  ZsegInfo info;
  info.first_index = GetBigEndian64(h.data() + 12);
  info.count = GetBigEndian32(h.data() + 20);
  info.frame_entries = GetBigEndian32(h.data() + 24);
  if (uint32_t codec = GetBigEndian32(h.data() + 28); codec != kZsegCodecZstd)
    return DataLossError("compressed segment: unknown codec " + std::to_string(codec));
  info.image_bytes = GetBigEndian64(h.data() + 32);
  if (info.count == 0) return DataLossError("compressed segment: no entries");
  if (info.frame_entries == 0 || info.frame_entries > kMaxFrameEntries)
    return DataLossError("compressed segment: " + std::to_string(info.frame_entries) +
                         " entries per frame");
  if (info.image_bytes < kSegmentHeaderSize + uint64_t{info.count} * (kRecordHeaderSize + 1) ||
      info.image_bytes > kSegmentHeaderSize + uint64_t{info.count} * (kRecordHeaderSize + kMaxRecordSize))
    return DataLossError("compressed segment: " + std::to_string(info.image_bytes) +
                         " bytes cannot hold " + std::to_string(info.count) + " entries");
  const char* e = t.data() + t.size() - kZsegTrailerSize;
  if (std::memcmp(e + 16, kZsegEndMagic, sizeof(kZsegEndMagic)) != 0)
    return DataLossError("compressed segment: bad trailer magic (truncated?)");
  info.index_offset = GetBigEndian64(e);
  info.frames = GetBigEndian32(e + 8);
  info.index_crc = crc32c::Unmask(GetBigEndian32(e + 12));
  const uint64_t want_frames = (uint64_t{info.count} + info.frame_entries - 1) / info.frame_entries;
  if (info.frames != want_frames)
    return DataLossError("compressed segment: " + std::to_string(info.frames) + " frames for " +
                         std::to_string(info.count) + " entries");
  if (info.index_offset < kZsegHeaderSize ||
      info.index_offset + uint64_t{info.frames} * kZsegIndexEntrySize + kZsegTrailerSize != file_size)
    return DataLossError("compressed segment: frame index at " + std::to_string(info.index_offset) +
                         " does not fit a file of " + std::to_string(file_size) + " bytes");
  return info;
}

StatusOr<std::vector<ZsegFrame>> ParseZsegIndex(std::string_view index, const ZsegInfo& info) {
  if (index.size() != uint64_t{info.frames} * kZsegIndexEntrySize)
    return DataLossError("compressed segment: frame index truncated");
  if (crc32c::Value(index.data(), index.size()) != info.index_crc)
    return DataLossError("compressed segment: frame index CRC mismatch");
  std::vector<ZsegFrame> frames(info.frames);
  uint64_t image = kSegmentHeaderSize, z = kZsegHeaderSize;
  for (uint32_t k = 0; k < info.frames; ++k) {
    const char* p = index.data() + uint64_t{k} * kZsegIndexEntrySize;
    ZsegFrame& f = frames[k];
    f.image_offset = GetBigEndian64(p);
    f.zoffset = GetBigEndian64(p + 8);
    f.zlength = GetBigEndian32(p + 16);
    f.raw_length = GetBigEndian32(p + 20);
    f.crc = crc32c::Unmask(GetBigEndian32(p + 24));
    const uint32_t entries =
        k + 1 < info.frames ? info.frame_entries : info.count - k * info.frame_entries;
    if (f.image_offset != image || f.zoffset != z || f.zlength == 0 ||
        f.raw_length < uint64_t{entries} * (kRecordHeaderSize + 1) ||
        f.raw_length > uint64_t{entries} * (kRecordHeaderSize + kMaxRecordSize))
      return DataLossError("compressed segment: frame " + std::to_string(k) + " (" +
                           EntriesOf(info, k) + ") out of place in the frame index");
    image += f.raw_length;
    z += f.zlength;
  }
  if (image != info.image_bytes || z != info.index_offset)
    return DataLossError("compressed segment: frames do not add up to the segment");
  return frames;
}

Status DecompressZsegFrame(std::string_view zbytes, const ZsegInfo& info,
                           const std::vector<ZsegFrame>& frames, uint32_t k, std::string* out) {
  const ZsegFrame& f = frames[k];
  if (zbytes.size() != f.zlength ||
      crc32c::Value(zbytes.data(), zbytes.size()) != f.crc)
    return DataLossError("compressed segment: frame " + std::to_string(k) + " (" +
                         EntriesOf(info, k) + ") CRC mismatch");
  out->resize(f.raw_length);
  const size_t n = ZSTD_decompressDCtx(ThreadDCtx(), out->data(), out->size(), zbytes.data(),
                                       zbytes.size());
  if (ZSTD_isError(n) || n != f.raw_length)
    return DataLossError("compressed segment: frame " + std::to_string(k) + " (" +
                         EntriesOf(info, k) + ") does not decompress: " +
                         (ZSTD_isError(n) ? ZSTD_getErrorName(n) : "wrong length"));
  // Exactly its entries' records, whole (their CRCs are checked as they are
  // read), so that entry i is always the (i - first)th record.
  const uint32_t entries =
      k + 1 < info.frames ? info.frame_entries : info.count - k * info.frame_entries;
  uint64_t p = 0;
  for (uint32_t r = 0; r < entries; ++r) {
    if (out->size() - p < kRecordHeaderSize) break;
    const uint32_t len = GetBigEndian32(out->data() + p);
    if (len == 0 || len > kMaxRecordSize || out->size() - p - kRecordHeaderSize < len) break;
    p += kRecordHeaderSize + len;
    if (r + 1 == entries && p == out->size()) return OkStatus();
  }
  return DataLossError("compressed segment: frame " + std::to_string(k) + " (" +
                       EntriesOf(info, k) + ") does not hold its " + std::to_string(entries) +
                       " records");
}

struct ZsegWriter::Impl {
  Impl(uint64_t first, uint32_t n, uint32_t fe, uint64_t ib, int lv,
       std::function<Status(std::string_view)> s)
      : first_index(first), count(n), frame_entries(fe), image_bytes(ib), level(lv),
        sink(std::move(s)) {}
  uint64_t first_index;
  uint32_t count, frame_entries;
  uint64_t image_bytes;
  int level;
  std::function<Status(std::string_view)> sink;
  std::unique_ptr<ZSTD_CCtx, CCtxFree> cctx{ZSTD_createCCtx()};
  std::string index, z;
  uint64_t zoffset = kZsegHeaderSize, image = kSegmentHeaderSize;
  uint32_t frames = 0;
  bool started = false;
};

ZsegWriter::ZsegWriter(uint64_t first_index, uint32_t count, uint32_t frame_entries,
                       uint64_t image_bytes, int level, std::function<Status(std::string_view)> sink)
    : impl_(new Impl(first_index, count, frame_entries, image_bytes, level, std::move(sink))) {}

ZsegWriter::~ZsegWriter() { delete impl_; }

Status ZsegWriter::AddFrame(std::string_view records) {
  Impl& w = *impl_;
  if (w.count == 0 || w.frame_entries == 0 || w.frame_entries > kMaxFrameEntries)
    return InvalidArgumentError("compress segment: nothing to compress");
  if (!w.cctx) return InternalError("zstd: no compression context");
  if (records.empty() || w.frames >= (uint64_t{w.count} + w.frame_entries - 1) / w.frame_entries)
    return InvalidArgumentError("compress segment: more frames than entries");
  if (!w.started) {
    std::string h(kZsegMagic, sizeof(kZsegMagic));
    PutBigEndian32(&h, kZsegVersion);
    PutBigEndian64(&h, w.first_index);
    PutBigEndian32(&h, w.count);
    PutBigEndian32(&h, w.frame_entries);
    PutBigEndian32(&h, kZsegCodecZstd);
    PutBigEndian64(&h, w.image_bytes);
    PutBigEndian32(&h, crc32c::Mask(crc32c::Value(h.data(), h.size())));
    RETURN_IF_ERROR(w.sink(h));
    w.started = true;
  }
  w.z.resize(ZSTD_compressBound(records.size()));
  const size_t n = ZSTD_compressCCtx(w.cctx.get(), w.z.data(), w.z.size(), records.data(),
                                     records.size(), w.level);
  if (ZSTD_isError(n)) return InternalError(std::string("zstd: ") + ZSTD_getErrorName(n));
  w.z.resize(n);
  PutBigEndian64(&w.index, w.image);
  PutBigEndian64(&w.index, w.zoffset);
  PutBigEndian32(&w.index, static_cast<uint32_t>(n));
  PutBigEndian32(&w.index, static_cast<uint32_t>(records.size()));
  PutBigEndian32(&w.index, crc32c::Mask(crc32c::Value(w.z.data(), w.z.size())));
  RETURN_IF_ERROR(w.sink(w.z));
  w.zoffset += n;
  w.image += records.size();
  ++w.frames;
  return OkStatus();
}

Status ZsegWriter::Finish() {
  Impl& w = *impl_;
  if (w.frame_entries == 0 ||
      w.frames != (uint64_t{w.count} + w.frame_entries - 1) / w.frame_entries ||
      w.image != w.image_bytes)
    return InvalidArgumentError("compress segment: the frames do not make up the segment");
  std::string t;
  PutBigEndian64(&t, w.zoffset);
  PutBigEndian32(&t, w.frames);
  PutBigEndian32(&t, crc32c::Mask(crc32c::Value(w.index.data(), w.index.size())));
  t.append(kZsegEndMagic, sizeof(kZsegEndMagic));
  RETURN_IF_ERROR(w.sink(w.index));
  return w.sink(t);
}

Status CompressSegment(std::string_view image, uint64_t first_index,
                       std::span<const uint32_t> offsets, uint32_t frame_entries, int level,
                       const std::function<Status(std::string_view)>& sink) {
  if (offsets.empty() || frame_entries == 0 || frame_entries > kMaxFrameEntries ||
      offsets.front() != kSegmentHeaderSize || image.size() <= offsets.back())
    return InvalidArgumentError("compress segment: nothing to compress or bad offsets");
  ZsegWriter w(first_index, static_cast<uint32_t>(offsets.size()), frame_entries, image.size(),
               level, sink);
  for (size_t k = 0; k < offsets.size(); k += frame_entries) {
    const uint64_t begin = offsets[k];
    const uint64_t end =
        k + frame_entries < offsets.size() ? offsets[k + frame_entries] : image.size();
    RETURN_IF_ERROR(w.AddFrame(image.substr(begin, end - begin)));
  }
  return w.Finish();
}

Status ForEachZsegFrame(std::string_view zseg,
                        const std::function<Status(const ZsegInfo&, const ZsegFrame&,
                                                   std::string_view raw)>& fn) {
  if (zseg.size() < kZsegHeaderSize + kZsegTrailerSize)
    return DataLossError("compressed segment truncated");
  ASSIGN_OR_RETURN(ZsegInfo info, CheckZsegEnds(zseg.substr(0, kZsegHeaderSize),
                                                zseg.substr(zseg.size() - kZsegTrailerSize),
                                                zseg.size()));
  ASSIGN_OR_RETURN(std::vector<ZsegFrame> frames,
                   ParseZsegIndex(zseg.substr(info.index_offset,
                                              uint64_t{info.frames} * kZsegIndexEntrySize),
                                  info));
  std::string raw;
  for (uint32_t k = 0; k < info.frames; ++k) {
    RETURN_IF_ERROR(DecompressZsegFrame(zseg.substr(frames[k].zoffset, frames[k].zlength), info,
                                        frames, k, &raw));
    RETURN_IF_ERROR(fn(info, frames[k], raw));
  }
  return OkStatus();
}

StatusOr<std::string> ExpandCompressedSegment(std::string_view zseg, uint64_t* good_entries) {
  std::string image;
  uint64_t good = 0;
  Status s = ForEachZsegFrame(
      zseg, [&](const ZsegInfo& info, const ZsegFrame& f, std::string_view raw) {
        if (f.image_offset == kSegmentHeaderSize) {
          image.reserve(info.image_bytes);
          image.append(kSegmentMagic, sizeof(kSegmentMagic));
          PutBigEndian32(&image, kSegmentVersion);
          PutBigEndian64(&image, info.first_index);
          PutBigEndian32(&image, crc32c::Mask(crc32c::Value(image.data(), image.size())));
        }
        image.append(raw);
        good += info.frame_entries;
        return OkStatus();
      });
  if (good_entries) *good_entries = good;
  if (!s.ok()) return s;
  return image;
}

}  // namespace annals::log
