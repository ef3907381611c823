// What the RocksDB-backed derived stores (the event index, the cold
// objects) share: status mapping and opening with a layout version.
#ifndef ANNALS_INDEX_ROCKS_UTIL_H_
#define ANNALS_INDEX_ROCKS_UTIL_H_

#include <rocksdb/db.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "index/background_work.h"

namespace annals::index {

// The options every derived store starts from: created if missing, checks
// paranoid, point-in-time WAL recovery, max_open_files open tables, 16 KiB
// blocks in `cache` with their index and filter blocks (bounded by the
// cache, not by the store's size; level 0's pinned if pin_l0), bloom
// filters, LZ4 and ZSTD at the bottom, messages to StoreLogger(what).
// Callers add buffers and operators.
rocksdb::Options DerivedStoreOptions(const std::string& what, const std::shared_ptr<rocksdb::Cache>& cache,
                                     int max_open_files, bool pin_l0);

// RocksDB's own messages at warning level and above, to annals' log
// (stderr) prefixed with `what`, instead of a LOG file in the store's
// directory: that file was written on open, and on a full disk RocksDB
// aborts the process when its write fails.
std::shared_ptr<rocksdb::Logger> StoreLogger(const std::string& what);

// No space reserved ahead of writes: RocksDB fallocates a WAL the size of
// a memtable (tens of MB) and 4 MB per MANIFEST, which on a small or
// nearly full disk took the space the log itself needed, and counted as
// used where nothing was written. The stores sync rarely, so the
// preallocation bought little. And no table file written at open: a WAL
// found stays in the memtable.
void NoPreallocation(rocksdb::Options* opts);

// The bytes a store's memtables hold, in every column family (written to
// table files by their next flush): what it still needs of the disk beyond
// what it wrote.
uint64_t MemtableBytes(rocksdb::DB* db);

// What a store's flushes and compactions have done since it was opened,
// over the default column family and `families` (RocksDB's
// "rocksdb.cfstats" map, its "Sum" row, CompMergeCPU and the bytes: level
// 0's row counts the flushes).
BackgroundWork BackgroundWorkOf(rocksdb::DB* db, const std::vector<rocksdb::ColumnFamilyHandle*>& families = {});

// OK, DataLoss for a corruption (the store is derived: rebuild it), else
// Internal; `what` says what was being done.
Status FromRocks(const rocksdb::Status& s, const std::string& what);

using FamilyHandle = std::unique_ptr<rocksdb::ColumnFamilyHandle>;

// Opens (creating) the database in dir and checks the layout version kept
// under the key "\0version": a database of another version is destroyed
// and made anew (*wiped says so; empty if not). `what` names the store in
// messages ("event index").
//
// `families`: column families beside the default one (opts), created if
// missing; their handles go to *handles in the same order (to be reset
// before *db).
Status OpenVersioned(const std::string& dir, const rocksdb::Options& opts, std::string_view version,
                     const std::string& what, std::unique_ptr<rocksdb::DB>* db, std::string* wiped,
                     const std::vector<rocksdb::ColumnFamilyDescriptor>& families = {},
                     std::vector<FamilyHandle>* handles = nullptr);

}  // namespace annals::index

#endif  // ANNALS_INDEX_ROCKS_UTIL_H_
