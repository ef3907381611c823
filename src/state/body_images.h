// Body images: the bodies of every object that existed after log entries
// [0, applied), one file per image, so that the state of the whole cluster
// at T reads the image made just before T in one sequential pass plus the
// entries after it, instead of one random read of the log per object
// (docs/state.md "State at T", docs/format/body-image.md).
//
// Why: sealed segments are compressed 256 entries to a zstd frame, and the
// objects that exist at T have their versions spread over the whole log
// before T; reading their bodies from the log decompresses about one frame
// per object, which grows with the log's length. An image holds each body
// keyed by the ledger index of the entry it came from, in index order,
// compressed in blocks of about 64 KiB.
//
// Derived data, like the projection's snapshot: an image is made from the
// log and checked against it (the entry before `applied` must hash as the
// image says) when the set is opened; one that is damaged (a block's
// CRC-32C, a frame that does not decompress to its records), of another
// layout, or not made from this log is removed and answers read the log.
// A lookup only ever returns the body stored under the very index asked
// for, so an image can serve any T: an object whose version at T is in it
// has that body whatever the image's time. Answers with proofs read the
// log, not images.
//
// Thread-safe.
#ifndef ANNALS_STATE_BODY_IMAGES_H_
#define ANNALS_STATE_BODY_IMAGES_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/sha256.h"
#include "common/status.h"
#include "common/time_util.h"
#include "ledger/ledger.h"

struct ZSTD_CCtx_s;
typedef struct ZSTD_CCtx_s ZSTD_CCtx;

namespace annals::state {

inline constexpr size_t kBodyImageHeaderSize = 80;

// The responseObject (or object) of entry `index` as state answers show
// it: "" when the version has no body (gone by a Status answer).
StatusOr<std::string> ReadObjectBody(const ledger::Ledger& ledger, uint64_t index);
// SHA-256 of log entry `index` as stored: what derived files (the state
// snapshot, body images) record to be checked against the log they were
// made from.
StatusOr<Hash> EntryDigest(const ledger::Ledger& ledger, uint64_t index);

class BodyImages {
 public:
  // Opens the images in dir (made if missing), keeping those made from
  // this ledger; the others are removed (said on stderr).
  static StatusOr<std::unique_ptr<BodyImages>> Open(const std::string& dir, const ledger::Ledger* ledger);

  // Writes the image after entries [0, applied): the bodies of the entries
  // `indexes` (ascending, each < applied). `time` is the latest version
  // time the projection had applied (a lookup for T picks the last image
  // whose time is at or before T). Bodies found in the previous image are
  // copied from it, the others read from the log in index order. Written
  // to a temporary file, synced, renamed: a crash leaves the image whole
  // or absent.
  // Unavailable, and nothing written, once *stop is set (checked every
  // 1,024 bodies).
  Status Write(uint64_t applied, Micros time, const std::vector<uint64_t>& indexes,
               const std::atomic<bool>* stop = nullptr);

  // For the answer at T: calls found(slot, body) for every indexes[slot]
  // (ascending) held by the last image made at or before T (the first
  // image for a T before them all), then, for those it lacked, by the
  // first image made after T (objects unchanged from T until then), and
  // returns how many. A damaged image is removed (and said on stderr) and
  // what it did not give is left to the log: the caller reads every index
  // found was not called for.
  size_t Lookup(Micros t, const std::vector<uint64_t>& indexes,
                const std::function<void(size_t slot, std::string_view body)>& found);

  // The images on disk: their `applied`, ascending.
  std::vector<uint64_t> Applied() const;
  uint64_t last_applied() const;
  // Removes every image (a replay of the projection from the log keeps
  // them: they depend on the log alone; `annals rebuild` does not).
  Status Clear();

  struct Block {
    uint64_t first_index = 0;  // the index of its first record
    uint64_t zoffset = 0;
    uint32_t zlength = 0, raw_length = 0, records = 0, crc = 0;
  };
  struct Image {
    std::string path;
    uint64_t applied = 0;
    Micros time = 0;
    uint64_t records = 0;
    std::vector<Block> blocks;
  };

 private:
  BodyImages(std::string dir, const ledger::Ledger* ledger) : dir_(std::move(dir)), ledger_(ledger) {}
  // The last image made at or before t (else the first), and the first
  // made after t other than that one (nullptr if none).
  std::pair<std::shared_ptr<const Image>, std::shared_ptr<const Image>> Pick(Micros t) const;
  // LookupIn one image: the slots not yet `have` that it holds.
  size_t LookupIn(const std::shared_ptr<const Image>& img, const std::vector<uint64_t>& indexes,
                  std::vector<bool>* have, const std::function<void(size_t, std::string_view)>& found);
  std::shared_ptr<const Image> Latest() const;
  void Drop(const std::shared_ptr<const Image>& image, const Status& why);

  const std::string dir_;
  const ledger::Ledger* const ledger_;
  mutable std::mutex mu_;
  std::vector<std::shared_ptr<const Image>> images_;  // by applied; guarded by mu_
};

// Encodes an image as a stream: Start (the header's place), Add each body
// (indexes ascending), Finish, which returns the header to write over the
// first kBodyImageHeaderSize bytes once everything else is down.
class BodyImageEncoder {
 public:
  explicit BodyImageEncoder(std::function<Status(std::string_view)> sink);
  Status Start();
  Status Add(uint64_t index, std::string_view body);
  StatusOr<std::string> Finish(uint64_t applied, Micros time, const Hash& last_entry);
  uint64_t records() const { return records_; }
  const std::vector<BodyImages::Block>& blocks() const { return blocks_; }

 private:
  Status Flush();
  std::function<Status(std::string_view)> sink_;
  std::unique_ptr<ZSTD_CCtx, size_t (*)(ZSTD_CCtx*)> cctx_;
  std::string raw_;
  uint64_t first_ = 0, last_ = 0, offset_ = kBodyImageHeaderSize, records_ = 0;
  uint32_t in_block_ = 0;
  std::vector<BodyImages::Block> blocks_;
};

// A whole image in memory (tests and the fuzz target).
StatusOr<std::string> EncodeBodyImage(uint64_t applied, Micros time, const Hash& last_entry,
                                      const std::vector<std::pair<uint64_t, std::string>>& records);

// The file format's pieces, for the fuzz target and tests. Parses an image
// file of file_size bytes (its header, trailer and block index, read
// through `read`; not the blocks): DataLoss naming what is wrong.
StatusOr<BodyImages::Image> ParseBodyImage(uint64_t file_size,
                                           const std::function<Status(uint64_t offset, size_t n, std::string* out)>& read,
                                           Hash* last_entry);
// Decodes a block (its zlength bytes) into (index, body) records, checking
// its CRC and that it holds exactly its records in ascending order.
Status ReadBodyImageBlock(std::string_view zbytes, const BodyImages::Block& b,
                          const std::function<void(uint64_t index, std::string_view body)>& fn);

}  // namespace annals::state

#endif  // ANNALS_STATE_BODY_IMAGES_H_
