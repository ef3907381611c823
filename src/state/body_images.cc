#include "state/body_images.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "common/bytes.h"
#include "common/crc32c.h"
#include "common/file_util.h"
#include "common/log.h"
#include "ledger/entry.h"
#include "state/k8s_object.h"

namespace annals::state {

namespace {

constexpr std::string_view kMagic = "ANNALSBI";
constexpr std::string_view kEndMagic = "ANNALSBE";
constexpr uint32_t kVersion = 1;
constexpr size_t kHeaderSize = kBodyImageHeaderSize;  // docs/format/body-image.md
constexpr size_t kHeaderCrcAt = 76;  // the CRC covers the 76 bytes before it
constexpr size_t kBlockEntrySize = 32;
constexpr size_t kTrailerSize = 24;
constexpr size_t kRecordHeader = 12;  // index u64, length u32
constexpr size_t kBlockTarget = 64 << 10;
constexpr uint32_t kMaxBlockRaw = 64u << 20;
constexpr int kLevel = 3;
constexpr std::string_view kSuffix = ".img";

std::string ImageName(uint64_t applied) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%020llu", static_cast<unsigned long long>(applied));
  return std::string(buf) + std::string(kSuffix);
}

Status Bad(std::string_view what) { return DataLossError("body image: " + std::string(what)); }

// A block's records as views into *raw.
Status DecodeBlock(std::string_view zbytes, const BodyImages::Block& b, std::string* raw,
                   std::vector<std::pair<uint64_t, std::string_view>>* records) {
  if (zbytes.size() != b.zlength || crc32c::Value(zbytes.data(), zbytes.size()) != b.crc)
    return Bad("block at " + std::to_string(b.zoffset) + ": CRC mismatch");
  raw->resize(b.raw_length);
  thread_local std::unique_ptr<ZSTD_DCtx, size_t (*)(ZSTD_DCtx*)> dctx(ZSTD_createDCtx(), ZSTD_freeDCtx);
  const size_t n = ZSTD_decompressDCtx(dctx.get(), raw->data(), raw->size(), zbytes.data(), zbytes.size());
  if (ZSTD_isError(n) || n != b.raw_length) return Bad("block at " + std::to_string(b.zoffset) + " does not decompress");
  records->clear();
  size_t p = 0;
  uint64_t last = 0;
  while (p < raw->size()) {
    if (raw->size() - p < kRecordHeader) return Bad("block at " + std::to_string(b.zoffset) + ": truncated record");
    const uint64_t index = GetBigEndian64(raw->data() + p);
    const uint32_t len = GetBigEndian32(raw->data() + p + 8);
    if (raw->size() - p - kRecordHeader < len) return Bad("block at " + std::to_string(b.zoffset) + ": record overruns it");
    if (records->empty() ? index != b.first_index : index <= last)
      return Bad("block at " + std::to_string(b.zoffset) + ": records out of order");
    records->emplace_back(index, std::string_view(raw->data() + p + kRecordHeader, len));
    last = index;
    p += kRecordHeader + len;
  }
  if (records->size() != b.records) return Bad("block at " + std::to_string(b.zoffset) + ": wrong record count");
  return OkStatus();
}

// Reads [offset, offset + n) of an open file.
Status ReadAt(int fd, uint64_t offset, size_t n, std::string* out, const std::string& path) {
  out->resize(n);
  return PreadAll(fd, out->data(), n, offset, path);
}

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

std::string EncodeHeader(uint64_t applied, Micros time, uint64_t records, const Hash& last) {
  std::string h(kMagic);
  PutBigEndian32(&h, kVersion);
  PutBigEndian32(&h, 0);
  PutBigEndian64(&h, applied);
  PutBigEndian64(&h, static_cast<uint64_t>(time));
  PutBigEndian64(&h, records);
  h.append(reinterpret_cast<const char*>(last.data()), last.size());
  PutBigEndian32(&h, 0);
  PutBigEndian32(&h, crc32c::Value(h.data(), h.size()));
  return h;
}

// Walks an image's records in index order, a block at a time.
class ImageCursor {
 public:
  ImageCursor(const BodyImages::Image& image, int fd) : image_(image), fd_(fd) {}
  // The body stored under index (indexes asked for ascend), or nullopt.
  StatusOr<std::optional<std::string_view>> Find(uint64_t index) {
    const auto& blocks = image_.blocks;
    auto it = std::upper_bound(blocks.begin(), blocks.end(), index,
                               [](uint64_t i, const BodyImages::Block& b) { return i < b.first_index; });
    if (it == blocks.begin()) return std::optional<std::string_view>();
    const size_t k = static_cast<size_t>(it - blocks.begin()) - 1;
    if (k != loaded_) {
      RETURN_IF_ERROR(ReadAt(fd_, blocks[k].zoffset, blocks[k].zlength, &z_, image_.path));
      loaded_ = SIZE_MAX;
      RETURN_IF_ERROR(DecodeBlock(z_, blocks[k], &raw_, &records_));
      loaded_ = k;
      pos_ = 0;
    }
    while (pos_ < records_.size() && records_[pos_].first < index) ++pos_;
    if (pos_ < records_.size() && records_[pos_].first == index) return std::optional(records_[pos_].second);
    return std::optional<std::string_view>();
  }

 private:
  const BodyImages::Image& image_;
  int fd_;
  size_t loaded_ = SIZE_MAX, pos_ = 0;
  std::string z_, raw_;
  std::vector<std::pair<uint64_t, std::string_view>> records_;
};

StatusOr<int> OpenRead(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return InternalError("open " + path + ": " + std::strerror(errno));
  return fd;
}

}  // namespace

BodyImageEncoder::BodyImageEncoder(std::function<Status(std::string_view)> sink)
    : sink_(std::move(sink)), cctx_(ZSTD_createCCtx(), ZSTD_freeCCtx) {}

Status BodyImageEncoder::Start() { return sink_(std::string(kHeaderSize, '\0')); }

Status BodyImageEncoder::Add(uint64_t index, std::string_view body) {
  if (records_ > 0 && index <= last_) return InvalidArgumentError("body image: indexes must ascend");
  if (body.size() > kMaxBlockRaw - kRecordHeader) return InvalidArgumentError("body image: a body over 64 MiB");
  if (raw_.empty()) first_ = index;
  PutBigEndian64(&raw_, index);
  PutBigEndian32(&raw_, static_cast<uint32_t>(body.size()));
  raw_.append(body);
  last_ = index;
  ++in_block_;
  ++records_;
  return raw_.size() >= kBlockTarget ? Flush() : OkStatus();
}

Status BodyImageEncoder::Flush() {
  if (raw_.empty()) return OkStatus();
  std::string z(ZSTD_compressBound(raw_.size()), '\0');
  const size_t n = ZSTD_compressCCtx(cctx_.get(), z.data(), z.size(), raw_.data(), raw_.size(), kLevel);
  if (ZSTD_isError(n)) return InternalError(std::string("body image: zstd: ") + ZSTD_getErrorName(n));
  z.resize(n);
  BodyImages::Block b;
  b.first_index = first_;
  b.zoffset = offset_;
  b.zlength = static_cast<uint32_t>(n);
  b.raw_length = static_cast<uint32_t>(raw_.size());
  b.records = in_block_;
  b.crc = crc32c::Value(z.data(), z.size());
  RETURN_IF_ERROR(sink_(z));
  offset_ += n;
  blocks_.push_back(b);
  raw_.clear();
  in_block_ = 0;
  return OkStatus();
}

StatusOr<std::string> BodyImageEncoder::Finish(uint64_t applied, Micros time, const Hash& last_entry) {
  if (records_ > 0 && last_ >= applied) return InvalidArgumentError("body image: a body at or after `applied`");
  RETURN_IF_ERROR(Flush());
  std::string tail;
  for (const BodyImages::Block& b : blocks_) {
    PutBigEndian64(&tail, b.first_index);
    PutBigEndian64(&tail, b.zoffset);
    PutBigEndian32(&tail, b.zlength);
    PutBigEndian32(&tail, b.raw_length);
    PutBigEndian32(&tail, b.records);
    PutBigEndian32(&tail, b.crc);
  }
  const uint32_t index_crc = crc32c::Value(tail.data(), tail.size());
  PutBigEndian64(&tail, offset_);
  PutBigEndian32(&tail, static_cast<uint32_t>(blocks_.size()));
  PutBigEndian32(&tail, index_crc);
  tail.append(kEndMagic);
  RETURN_IF_ERROR(sink_(tail));
  return EncodeHeader(applied, time, records_, last_entry);
}

StatusOr<std::string> EncodeBodyImage(uint64_t applied, Micros time, const Hash& last_entry,
                                      const std::vector<std::pair<uint64_t, std::string>>& records) {
  std::string out;
  BodyImageEncoder enc([&](std::string_view piece) {
    out.append(piece);
    return OkStatus();
  });
  RETURN_IF_ERROR(enc.Start());
  for (const auto& [index, body] : records) RETURN_IF_ERROR(enc.Add(index, body));
  ASSIGN_OR_RETURN(std::string header, enc.Finish(applied, time, last_entry));
  out.replace(0, header.size(), header);
  return out;
}

StatusOr<std::string> ReadObjectBody(const ledger::Ledger& ledger, uint64_t index) {
  ASSIGN_OR_RETURN(std::string entry, ledger.ReadEntry(index));
  ASSIGN_OR_RETURN(auto d, ledger::DecodeEntry(entry));
  std::string blob;
  ASSIGN_OR_RETURN(std::string_view payload, ledger.PayloadOf(d, &blob));
  return std::string(ObjectOfEntry(d.meta, payload));
}

StatusOr<Hash> EntryDigest(const ledger::Ledger& ledger, uint64_t index) {
  Hash h{};
  RETURN_IF_ERROR(ledger.ReadEntries(index, index + 1, [&](uint64_t, std::string_view e) {
    h = Sha256(e);
    return OkStatus();
  }));
  return h;
}

StatusOr<BodyImages::Image> ParseBodyImage(uint64_t file_size,
                                           const std::function<Status(uint64_t, size_t, std::string*)>& read,
                                           Hash* last_entry) {
  if (file_size < kHeaderSize + kTrailerSize) return Bad(std::to_string(file_size) + " bytes, too short");
  std::string h, t;
  RETURN_IF_ERROR(read(0, kHeaderSize, &h));
  RETURN_IF_ERROR(read(file_size - kTrailerSize, kTrailerSize, &t));
  if (h.substr(0, 8) != kMagic) return Bad("not a body image");
  if (GetBigEndian32(h.data() + kHeaderCrcAt) != crc32c::Value(h.data(), kHeaderCrcAt)) return Bad("header CRC mismatch");
  if (GetBigEndian32(h.data() + 8) != kVersion)
    return Bad("layout " + std::to_string(GetBigEndian32(h.data() + 8)) + ", this annals reads " + std::to_string(kVersion));
  if (t.substr(16) != kEndMagic) return Bad("trailer damaged");
  BodyImages::Image img;
  img.applied = GetBigEndian64(h.data() + 16);
  img.time = static_cast<Micros>(GetBigEndian64(h.data() + 24));
  img.records = GetBigEndian64(h.data() + 32);
  std::memcpy(last_entry->data(), h.data() + 40, last_entry->size());
  const uint64_t index_offset = GetBigEndian64(t.data());
  const uint32_t blocks = GetBigEndian32(t.data() + 8);
  if (index_offset < kHeaderSize || index_offset > file_size - kTrailerSize ||
      (file_size - kTrailerSize - index_offset) != uint64_t{blocks} * kBlockEntrySize)
    return Bad("block index does not fit the file");
  std::string index;
  RETURN_IF_ERROR(read(index_offset, uint64_t{blocks} * kBlockEntrySize, &index));
  if (crc32c::Value(index.data(), index.size()) != GetBigEndian32(t.data() + 12)) return Bad("block index CRC mismatch");
  uint64_t at = kHeaderSize, records = 0;
  for (uint32_t k = 0; k < blocks; ++k) {
    const char* p = index.data() + uint64_t{k} * kBlockEntrySize;
    BodyImages::Block b;
    b.first_index = GetBigEndian64(p);
    b.zoffset = GetBigEndian64(p + 8);
    b.zlength = GetBigEndian32(p + 16);
    b.raw_length = GetBigEndian32(p + 20);
    b.records = GetBigEndian32(p + 24);
    b.crc = GetBigEndian32(p + 28);
    if (b.zoffset != at || b.zlength == 0 || b.records == 0 || b.raw_length > kMaxBlockRaw ||
        uint64_t{b.records} * kRecordHeader > b.raw_length)
      return Bad("block " + std::to_string(k) + " is malformed");
    if (b.first_index >= img.applied || (k > 0 && b.first_index <= img.blocks.back().first_index))
      return Bad("block " + std::to_string(k) + " is out of order");
    at += b.zlength;
    records += b.records;
    img.blocks.push_back(b);
  }
  if (at != index_offset) return Bad("blocks do not end where the index starts");
  if (records != img.records) return Bad("header and blocks disagree on the record count");
  return img;
}

Status ReadBodyImageBlock(std::string_view zbytes, const BodyImages::Block& b,
                          const std::function<void(uint64_t, std::string_view)>& fn) {
  std::string raw;
  std::vector<std::pair<uint64_t, std::string_view>> records;
  RETURN_IF_ERROR(DecodeBlock(zbytes, b, &raw, &records));
  for (const auto& [i, body] : records) fn(i, body);
  return OkStatus();
}

StatusOr<std::unique_ptr<BodyImages>> BodyImages::Open(const std::string& dir, const ledger::Ledger* ledger) {
  RETURN_IF_ERROR(MakeDirs(dir));
  std::unique_ptr<BodyImages> set(new BodyImages(dir, ledger));
  std::error_code ec;
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) names.push_back(e.path().filename().string());
  if (ec) return InternalError("list " + dir + ": " + ec.message());
  std::sort(names.begin(), names.end());
  const uint64_t size = ledger->DurableSize();
  for (const auto& name : names) {
    const std::string path = dir + "/" + name;
    if (name.size() <= kSuffix.size() || name.substr(name.size() - kSuffix.size()) != kSuffix) {
      // A temporary file a crash left, or something not ours.
      if (name.size() > 4 && name.substr(name.size() - 4) == ".tmp") std::remove(path.c_str());
      continue;
    }
    auto checked = [&]() -> StatusOr<std::shared_ptr<const Image>> {
      ASSIGN_OR_RETURN(int raw_fd, OpenRead(path));
      Fd fd(raw_fd);
      struct stat st {};
      if (::fstat(fd.get(), &st) != 0) return InternalError("stat " + path + ": " + std::strerror(errno));
      Hash last{};
      ASSIGN_OR_RETURN(Image img, ParseBodyImage(
                                      static_cast<uint64_t>(st.st_size),
                                      [&](uint64_t off, size_t n, std::string* out) { return ReadAt(fd.get(), off, n, out, path); },
                                      &last));
      img.path = path;
      if (name != ImageName(img.applied)) return Bad("named " + name + " but made after " + std::to_string(img.applied) + " entries");
      if (img.applied == 0 || img.applied > size)
        return FailedPreconditionError("made after " + std::to_string(img.applied) + " entries, the log holds " + std::to_string(size));
      ASSIGN_OR_RETURN(Hash got, EntryDigest(*ledger, img.applied - 1));
      if (got != last)
        return FailedPreconditionError("entry " + std::to_string(img.applied - 1) + " of the log is not the one it was made after");
      return std::shared_ptr<const Image>(std::make_shared<Image>(std::move(img)));
    }();
    if (checked.ok()) {
      set->images_.push_back(*checked);
      continue;
    }
    if (checked.status().code() == StatusCode::kInternal) return checked.status();
    log::Warning("body image %s not used (%s); removed", path.c_str(), checked.status().message().c_str());
    if (std::remove(path.c_str()) != 0 && errno != ENOENT)
      return InternalError("remove " + path + ": " + std::strerror(errno));
  }
  return set;
}

std::shared_ptr<const BodyImages::Image> BodyImages::Latest() const {
  std::lock_guard lock(mu_);
  return images_.empty() ? nullptr : images_.back();
}

std::pair<std::shared_ptr<const BodyImages::Image>, std::shared_ptr<const BodyImages::Image>> BodyImages::Pick(
    Micros t) const {
  std::lock_guard lock(mu_);
  if (images_.empty()) return {};
  // The last image made at or before T; an image made later still holds
  // every object unchanged since T, so the first serves a T before it.
  size_t k = 0;
  for (size_t j = 0; j < images_.size(); ++j)
    if (images_[j]->time <= t) k = j;
  std::shared_ptr<const Image> after;
  for (size_t j = k + 1; j < images_.size() && !after; ++j)
    if (images_[j]->time > t) after = images_[j];
  return {images_[k], after};
}

std::vector<uint64_t> BodyImages::Applied() const {
  std::lock_guard lock(mu_);
  std::vector<uint64_t> out;
  for (const auto& img : images_) out.push_back(img->applied);
  return out;
}

uint64_t BodyImages::last_applied() const {
  std::lock_guard lock(mu_);
  return images_.empty() ? 0 : images_.back()->applied;
}

void BodyImages::Drop(const std::shared_ptr<const Image>& image, const Status& why) {
  {
    std::lock_guard lock(mu_);
    auto it = std::find(images_.begin(), images_.end(), image);
    if (it == images_.end()) return;  // dropped already
    images_.erase(it);
  }
  log::Warning("body image %s damaged (%s); removed, answers read the log", image->path.c_str(), why.message().c_str());
  std::remove(image->path.c_str());
}

Status BodyImages::Clear() {
  std::vector<std::shared_ptr<const Image>> all;
  {
    std::lock_guard lock(mu_);
    all.swap(images_);
  }
  for (const auto& img : all)
    if (std::remove(img->path.c_str()) != 0 && errno != ENOENT)
      return InternalError("remove " + img->path + ": " + std::strerror(errno));
  return FsyncDir(dir_);
}

Status BodyImages::Write(uint64_t applied, Micros time, const std::vector<uint64_t>& indexes,
                         const std::atomic<bool>* stop) {
  if (applied == 0 || applied <= last_applied()) return OkStatus();
  ASSIGN_OR_RETURN(const Hash last, EntryDigest(*ledger_, applied - 1));
  const std::string path = dir_ + "/" + ImageName(applied);
  const std::string tmp = path + ".tmp";
  const int raw_fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (raw_fd < 0) return InternalError("create " + tmp + ": " + std::strerror(errno));
  Fd fd(raw_fd);
  auto fail = [&](Status s) {
    std::remove(tmp.c_str());
    return s;
  };
  BodyImageEncoder enc([&](std::string_view piece) { return WriteAll(fd.get(), piece, tmp); });
  Status s = enc.Start();
  if (!s.ok()) return fail(s);
  // Bodies the previous image holds are copied from it (one sequential
  // pass); the others come from the log, in index order.
  std::shared_ptr<const Image> prev = Latest();
  std::unique_ptr<Fd> prev_fd;
  std::unique_ptr<ImageCursor> cursor;
  if (prev) {
    auto f = OpenRead(prev->path);
    if (f.ok()) {
      prev_fd = std::make_unique<Fd>(*f);
      cursor = std::make_unique<ImageCursor>(*prev, prev_fd->get());
    }
  }
  for (size_t n = 0; n < indexes.size(); ++n) {
    const uint64_t index = indexes[n];
    if (index >= applied) return fail(InvalidArgumentError("body image: an index at or after `applied`"));
    if (stop && n % 1024 == 0 && stop->load()) return fail(UnavailableError("body image: stopped"));
    if (cursor && index < prev->applied) {
      auto found = cursor->Find(index);
      if (found.ok() && *found) {
        s = enc.Add(index, **found);
        if (!s.ok()) return fail(s);
        continue;
      }
      if (!found.ok()) {
        Drop(prev, found.status());
        cursor.reset();
      }
    }
    auto body = ReadObjectBody(*ledger_, index);
    if (!body.ok()) {
      // A damaged or missing blob: left out, so an answer reads (and
      // reports) it from the log as it would without images.
      const StatusCode c = body.status().code();
      if (c == StatusCode::kDataLoss || c == StatusCode::kNotFound) continue;
      return fail(body.status());
    }
    s = enc.Add(index, *body);
    if (!s.ok()) return fail(s);
  }
  auto header = enc.Finish(applied, time, last);
  if (!header.ok()) return fail(header.status());
  s = PwriteAll(fd.get(), *header, 0, tmp);
  if (s.ok() && ::fdatasync(fd.get()) != 0) s = InternalError("fdatasync " + tmp + ": " + std::strerror(errno));
  if (!s.ok()) return fail(s);
  if (::rename(tmp.c_str(), path.c_str()) != 0) return fail(InternalError("rename " + tmp + ": " + std::strerror(errno)));
  RETURN_IF_ERROR(FsyncDir(dir_));
  auto img = std::make_shared<Image>();
  img->path = path;
  img->applied = applied;
  img->time = time;
  img->records = enc.records();
  img->blocks = enc.blocks();
  std::lock_guard lock(mu_);
  images_.push_back(std::move(img));
  return OkStatus();
}

size_t BodyImages::Lookup(Micros t, const std::vector<uint64_t>& indexes,
                          const std::function<void(size_t, std::string_view)>& found) {
  if (indexes.empty()) return 0;
  auto [before, after] = Pick(t);
  std::vector<bool> have(indexes.size(), false);
  size_t hits = 0;
  if (before) hits += LookupIn(before, indexes, &have, found);
  if (after && hits < indexes.size()) hits += LookupIn(after, indexes, &have, found);
  return hits;
}

size_t BodyImages::LookupIn(const std::shared_ptr<const Image>& img, const std::vector<uint64_t>& indexes,
                            std::vector<bool>* have, const std::function<void(size_t, std::string_view)>& found) {
  auto f = OpenRead(img->path);
  if (!f.ok()) {
    Drop(img, f.status());
    return 0;
  }
  Fd fd(*f);
  ImageCursor cursor(*img, fd.get());
  size_t hits = 0;
  for (size_t slot = 0; slot < indexes.size(); ++slot) {
    if (indexes[slot] >= img->applied) break;
    if ((*have)[slot]) continue;
    auto body = cursor.Find(indexes[slot]);
    if (!body.ok()) {
      Drop(img, body.status());
      return hits;
    }
    if (*body) {
      found(slot, **body);
      (*have)[slot] = true;
      ++hits;
    }
  }
  return hits;
}

}  // namespace annals::state
