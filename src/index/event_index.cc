#include "index/event_index.h"

#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/merge_operator.h>
#include <rocksdb/sst_file_writer.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>
#include <rocksdb/write_buffer_manager.h>

#include <algorithm>
#include <bit>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <unordered_map>

#include "common/bytes.h"
#include "common/file_util.h"
#include "common/log.h"
#include "index/rocks_util.h"

namespace annals::index {

namespace {

constexpr std::string_view kWatermarkKey("\x00watermark", 10);
// Bumped when the layout changes; another version is wiped and rebuilt.
constexpr std::string_view kVersion = "8";
// The column family of the rows (docs/format/event-index.md).
constexpr char kRowsFamily[] = "rows";
// The zstd level of a catch-up's row files (IngestRows).
constexpr int kIngestedRowsZstdLevel = 1;
constexpr char kRow = 'r', kName = 'n', kNameFirst = 'm', kHour = 'h', kCount = 'a', kNsCount = 'b';


uint64_t Biased(int64_t v) { return static_cast<uint64_t>(v) ^ (uint64_t{1} << 63); }
int64_t Unbiased(uint64_t v) { return static_cast<int64_t>(v ^ (uint64_t{1} << 63)); }

std::string RowKey(uint64_t index) {
  std::string k(1, kRow);
  PutBigEndian64(&k, index);
  return k;
}

// The events of a name posting: its first (from the key), then the value's
// ascending deltas.
Status ReadPosting(uint64_t first, std::string_view deltas, std::vector<uint64_t>* out) {
  out->push_back(first);
  uint64_t at = first, d = 0;
  while (!deltas.empty()) {
    if (!GetVarint(&deltas, &d) || d == 0 || d > UINT64_MAX - at)
      return DataLossError("event index damaged: bad name posting");
    at += d;
    out->push_back(at);
  }
  return OkStatus();
}

std::string HourKey(int64_t hour) {
  std::string k(1, kHour);
  PutBigEndian64(&k, Biased(hour));
  return k;
}

// Into *k (replacing what it held): one buffer serves a batch's keys.
void PutCountPrefix(std::string* k, char field, int64_t hour) {
  k->assign(1, kCount);
  k->push_back(field);
  PutBigEndian64(k, Biased(hour));
}

std::string CountPrefix(char field, int64_t hour) {
  std::string k;
  PutCountPrefix(&k, field, hour);
  return k;
}

// 'b' field hour len(ns) ns: the counts of one namespace's events (a
// length, not a terminator: a namespace is untrusted text).
void PutNsCountPrefix(std::string* k, char field, int64_t hour, std::string_view ns) {
  k->assign(1, kNsCount);
  k->push_back(field);
  PutBigEndian64(k, Biased(hour));
  PutBigEndian32(k, static_cast<uint32_t>(ns.size()));
  *k += ns;
}

std::string NsCountPrefix(char field, int64_t hour, std::string_view ns) {
  std::string k;
  PutNsCountPrefix(&k, field, hour, ns);
  return k;
}

// What a row adds to the counts: its hour and counted fields (views into
// the batch).
struct Counted {
  int64_t hour;
  EventBatch::Facets f;
  bool operator==(const Counted& o) const {
    return hour == o.hour && f.code == o.f.code && f.user == o.f.user && f.as == o.f.as && f.verb == o.f.verb &&
           f.resource == o.f.resource && f.ns == o.f.ns && f.ip == o.f.ip && f.ua == o.f.ua &&
           f.cloud == o.f.cloud && f.account == o.f.account;
  }
};
struct CountedHash {
  size_t operator()(const Counted& c) const {
    const std::hash<std::string_view> h;
    size_t x = std::hash<int64_t>{}(c.hour) ^ (static_cast<size_t>(static_cast<uint32_t>(c.f.code)) << 17);
    for (std::string_view v : {c.f.user, c.f.as, c.f.verb, c.f.resource, c.f.ns, c.f.ip, c.f.ua, c.f.cloud, c.f.account})
      x = (x ^ h(v)) * 0x9e3779b97f4a7c15ULL;
    return x;
  }
};

// Where each distinct item of a commit is in a vector of them, by hash:
// open addressing over one array of slots, no allocation per item (the
// node-based maps it replaced spent a third of a commit allocating,
// freeing and missing the cache). A slot holds the hash's high half
// beside the item's position + 1, so a probe past another item touches
// no item. Not thread-safe.
class FlatIndex {
 public:
  explicit FlatIndex(size_t expected) : slots_(SlotsFor(expected), 0) {}
  // The position of the item with hash h for which same(position) holds;
  // else `next` (the caller appends the new item there) and true.
  template <typename Same>
  std::pair<size_t, bool> FindOrAdd(uint64_t h, size_t next, const Same& same) {
    if ((hashes_.size() + 1) * 2 > slots_.size()) Grow();
    const uint64_t tag = h >> 32;
    for (size_t i = h & (slots_.size() - 1);; i = (i + 1) & (slots_.size() - 1)) {
      const uint64_t slot = slots_[i];
      if (slot == 0) {
        slots_[i] = (tag << 32) | (next + 1);
        hashes_.push_back(h);
        return {next, true};
      }
      if ((slot >> 32) == tag && same(static_cast<uint32_t>(slot) - 1)) return {static_cast<uint32_t>(slot) - 1, false};
    }
  }

 private:
  static size_t SlotsFor(size_t n) { return std::bit_ceil(std::max<size_t>(64, n * 2)); }
  void Grow() {
    std::vector<uint64_t> slots(slots_.size() * 2, 0);
    for (size_t at = 0; at < hashes_.size(); ++at) {
      const uint64_t h = hashes_[at];
      size_t i = h & (slots.size() - 1);
      while (slots[i] != 0) i = (i + 1) & (slots.size() - 1);
      slots[i] = ((h >> 32) << 32) | (at + 1);
    }
    slots_.swap(slots);
  }
  std::vector<uint64_t> slots_;
  std::vector<uint64_t> hashes_;  // by position: the items so far, and to rehash on growth
};

uint64_t Mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  return x;
}

// One count key of a commit ('a' kind field hour value, or 'b' kind field
// hour len(ns) ns value: PutCountPrefix, PutNsCountPrefix), by its parts
// (views into the batch), and the rows it counts.
struct CountKey {
  int64_t hour;
  std::string_view ns, value;  // ns: "" for 'a'
  uint64_t n;
  char kind, field;
  // The order of the keys' bytes.
  bool operator<(const CountKey& o) const {
    if (kind != o.kind) return kind < o.kind;
    if (field != o.field) return static_cast<unsigned char>(field) < static_cast<unsigned char>(o.field);
    if (hour != o.hour) return hour < o.hour;
    if (ns.size() != o.ns.size()) return ns.size() < o.ns.size();
    if (const int c = ns.compare(o.ns); c != 0) return c < 0;
    return value < o.value;
  }
};

uint64_t GetLittleEndian64(std::string_view v) {
  uint64_t n = 0;
  if (v.size() == 8) std::memcpy(&n, v.data(), 8);
  return n;  // x86 and every target we build for are little-endian
}

std::string LittleEndian64(uint64_t n) { return std::string(reinterpret_cast<const char*>(&n), 8); }

// Counts are 8-byte little-endian integers; merges add them.
class AddOperator : public rocksdb::AssociativeMergeOperator {
 public:
  bool Merge(const rocksdb::Slice&, const rocksdb::Slice* existing, const rocksdb::Slice& value,
             std::string* new_value, rocksdb::Logger*) const override {
    uint64_t a = existing ? GetLittleEndian64(std::string_view(existing->data(), existing->size())) : 0;
    a += GetLittleEndian64(std::string_view(value.data(), value.size()));
    *new_value = LittleEndian64(a);
    return true;
  }
  const char* Name() const override { return "annals.add64"; }
};

rocksdb::Options DbOptions(const EventIndexOptions& o, const std::shared_ptr<rocksdb::Cache>& cache) {
  // A crash (not a power loss) loses nothing the WAL has; after a power
  // loss the index is a consistent prefix of its batches. Rows repeat
  // users, verbs, namespaces and agents: they compress well.
  rocksdb::Options opts = DerivedStoreOptions("event index", cache, 512, /*pin_l0=*/true);
  opts.merge_operator = std::make_shared<AddOperator>();
  opts.write_buffer_size = std::max<size_t>(o.write_buffer_bytes / 2, size_t{4} << 20);
  opts.max_write_buffer_number = 2;
  opts.write_buffer_manager = std::make_shared<rocksdb::WriteBufferManager>(o.write_buffer_bytes, cache);
  opts.max_background_jobs = 2;
  opts.level0_file_num_compaction_trigger = 12;
  opts.level0_slowdown_writes_trigger = 32;
  opts.level0_stop_writes_trigger = 48;
  // The rows have a column family of their own, and without a WAL the
  // families' memtables must reach table files together: a flush of one
  // alone would let a crash keep the watermark (default family) without
  // the rows it covers, or rows without their counts.
  opts.atomic_flush = true;
  return opts;
}

// The rows' family. Row keys only grow, so its tables never overlap: each
// flushed table moves down the levels as it is (a trivial move) instead of
// being merged. In the default family, where every flushed table of
// counts and names spans the whole key space, every level-0 compaction
// rewrote all of level 1, rows included: 0.5-0.6 us of CPU per event in
// 30-second ingest runs (docs/performance.md). Written once and kept, so
// zstd (level 1, as a catch-up's ingested row files) at every level. No
// Bloom filter: rows are only ever read by range (Scan), which no filter
// serves, and every flush hashed each row's key into one.
rocksdb::ColumnFamilyOptions RowsOptions(const rocksdb::Options& db) {
  rocksdb::ColumnFamilyOptions o(db);
  o.merge_operator.reset();
  o.compression = rocksdb::kZSTD;
  o.compression_opts.level = kIngestedRowsZstdLevel;
  o.bottommost_compression = rocksdb::kDisableCompressionOption;
  if (const auto* shared = db.table_factory->GetOptions<rocksdb::BlockBasedTableOptions>()) {
    rocksdb::BlockBasedTableOptions table = *shared;
    table.filter_policy.reset();
    table.partition_filters = false;
    o.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  }
  return o;
}

}  // namespace

StatusOr<std::unique_ptr<EventIndex>> EventIndex::Open(const std::string& dir, EventIndexOptions options,
                                                       std::string* wiped) {
  std::unique_ptr<EventIndex> idx(new EventIndex());
  idx->dir_ = dir;
  idx->options_ = options;
  idx->cache_ = rocksdb::NewLRUCache(std::max<size_t>(options.block_cache_bytes, size_t{8} << 20));
  RETURN_IF_ERROR(MakeDirs(dir));
  std::string why;
  RETURN_IF_ERROR(idx->OpenDb(&why));
  if (wiped) *wiped = why;
  return idx;
}

EventIndex::~EventIndex() {
  // A clean close leaves the memtables in table files (both families', in
  // one atomic flush): the next open has nothing to catch up.
  if (db_ && rows_) (void)db_->Flush(rocksdb::FlushOptions(), {db_->DefaultColumnFamily(), rows_.get()});
}

void EventIndex::CloseDb() {
  rows_.reset();
  db_.reset();
}

Status EventIndex::OpenDb(std::string* wiped) {
  Status s = TryOpenDb(wiped);
  if (s.code() != StatusCode::kDataLoss) return s;
  // Damaged (RocksDB's checksums or our own records): the index is
  // derived, so it is wiped and rebuilt from the log.
  *wiped = "damaged (" + s.message() + ")";
  CloseDb();
  RETURN_IF_ERROR(FromRocks(rocksdb::DestroyDB(dir_, DbOptions(options_, cache_)), "wipe event index " + dir_));
  std::string again;
  return TryOpenDb(&again);
}

Status EventIndex::TryOpenDb(std::string* wiped) {
  CloseDb();
  const rocksdb::Options opts = DbOptions(options_, cache_);
  std::vector<FamilyHandle> families;
  Status s = OpenVersioned(dir_, opts, kVersion, "event index", &db_, wiped, {{kRowsFamily, RowsOptions(opts)}},
                           &families);
  if (!families.empty()) rows_ = std::move(families[0]);
  if (!s.ok()) return s;
  if (!rows_) return InternalError("event index: no rows family");
  return LoadLocked();
}

Status EventIndex::LoadLocked() {
  std::lock_guard hl(hours_mu_);
  hours_.clear();
  std::string v;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), kWatermarkKey, &v);
  if (s.ok() && v.size() != 8) return DataLossError("event index: watermark of " + std::to_string(v.size()) + " bytes");
  if (!s.ok() && !s.IsNotFound()) return FromRocks(s, "event index watermark");
  watermark_.store(s.ok() ? GetBigEndian64(v.data()) : 0, std::memory_order_release);
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  const std::string start(1, kHour);
  for (it->Seek(start); it->Valid() && it->key()[0] == kHour; it->Next()) {
    if (it->key().size() != 9 || it->value().size() != 24) return DataLossError("event index: bad hour record");
    Hour h;
    h.hour = Unbiased(GetBigEndian64(it->key().data() + 1));
    h.count = GetBigEndian64(it->value().data());
    h.first_index = GetBigEndian64(it->value().data() + 8);
    h.last_index = GetBigEndian64(it->value().data() + 16);
    hours_[h.hour] = h;
  }
  return FromRocks(it->status(), "event index hours");
}

Status EventIndex::Commit(const EventBatch& batch, uint64_t watermark) {
  RETURN_IF_ERROR(ReopenIfStuck());
  // Shared: the one writer does not wait for long scans; Reset excludes it.
  std::shared_lock lock(mu_);
  if (!db_) return NotOpen();
  const uint64_t from = watermark_.load();
  if (watermark < from) return FailedPreconditionError("event index: watermark would move back");
  std::map<int64_t, Hour> touched;
  // The distinct rows in the order they first came (so that the count keys
  // built next come in about row order, a few hot ones at a time: in hash
  // order each bump missed the cache), each with its number of rows.
  const auto& rows = batch.row_list();
  std::vector<std::pair<Counted, uint64_t>> alike;
  FlatIndex alike_at(rows.size() / 4);
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto& r = rows[i];
    if (r.index < from || r.index >= watermark)
      return FailedPreconditionError("event index: row " + std::to_string(r.index) + " outside [" +
                                     std::to_string(from) + ", " + std::to_string(watermark) + ")");
    if (i > 0 && r.index <= rows[i - 1].index)
      return FailedPreconditionError("event index: rows out of order at " + std::to_string(r.index));
    const int64_t hour = HourOf(r.time);
    auto [t, fresh] = touched.try_emplace(hour);
    if (fresh) {
      std::lock_guard hl(hours_mu_);
      auto h = hours_.find(hour);
      t->second = h != hours_.end() ? h->second : Hour{hour, 0, r.index, r.index};
    }
    Hour& h = t->second;
    ++h.count;
    h.first_index = std::min(h.first_index, r.index);
    h.last_index = std::max(h.last_index, r.index);
    // Rows alike in every counted field are counted once, with their
    // number: a batch holds few distinct ones (a controller's watch and
    // lease traffic repeats), and each costs a dozen count keys.
    const Counted c{hour, batch.facets(i)};
    const auto [at, added] =
        alike_at.FindOrAdd(CountedHash{}(c), alike.size(), [&](size_t j) { return alike[j].first == c; });
    if (added) alike.emplace_back(c, 0);
    ++alike[at].second;
  }
  // The count keys, by their parts: a key is built once, when written.
  std::vector<CountKey> counts;
  FlatIndex count_at(alike.size() * 4);
  const std::hash<std::string_view> hash_text;
  auto bump = [&](char kind, char field, int64_t hour, std::string_view ns, uint64_t ns_hash, std::string_view value,
                  uint64_t value_hash, uint64_t n) {
    const uint64_t h = Mix((static_cast<uint64_t>(static_cast<unsigned char>(kind)) << 56) ^
                           (static_cast<uint64_t>(static_cast<unsigned char>(field)) << 48) ^
                           static_cast<uint64_t>(hour) ^ (ns_hash * 0x9e3779b97f4a7c15ULL) ^ value_hash);
    const auto [at, added] = count_at.FindOrAdd(h, counts.size(), [&](size_t j) {
      const CountKey& k = counts[j];
      return k.hour == hour && k.kind == kind && k.field == field && k.value == value && k.ns == ns;
    });
    if (added) {
      counts.push_back(CountKey{hour, ns, value, n, kind, field});
    } else {
      counts[at].n += n;
    }
  };
  // A code's decimal text, kept where the count keys can view it.
  std::unordered_map<int32_t, std::string> code_texts;
  for (const auto& [c, n] : alike) {
    const int64_t hour = c.hour;
    const EventBatch::Facets& f = c.f;
    // Every events' counts ('a'); a namespace's ('b') for the fields a
    // namespace is grouped by most (user, verb, resource, code: few values
    // an hour; addresses and agents would multiply the keys).
    auto [code_text, code_new] = code_texts.try_emplace(f.code);
    if (code_new) code_text->second = std::to_string(f.code);
    const std::string_view code = code_text->second;
    const uint64_t ns_hash = hash_text(f.ns);
    const std::pair<Field, std::string_view> fields[] = {{Field::kUser, f.user},   {Field::kVerb, f.verb},
                                                         {Field::kResource, f.resource}, {Field::kCode, code},
                                                         {Field::kSourceIp, f.ip}, {Field::kUserAgent, f.ua},
                                                         {Field::kCloud, f.cloud}, {Field::kAccount, f.account}};
    for (const auto& [field, value] : fields) {
      // Kubernetes events name no cloud or account: those counts hold the
      // cloud records only (an hour's "" is its count less theirs).
      if (value.empty() && (field == Field::kCloud || field == Field::kAccount)) continue;
      const uint64_t value_hash = hash_text(value);
      bump(kCount, static_cast<char>(field), hour, {}, 0, value, value_hash, n);
      if (f.ns.empty() || !NamespaceCounted(field)) continue;  // no question filters on namespace ""
      bump(kNsCount, static_cast<char>(field), hour, f.ns, ns_hash, value, value_hash, n);
    }
    if (!f.as.empty() && f.as != f.user) {
      const uint64_t as_hash = hash_text(f.as);
      bump(kCount, static_cast<char>(Field::kImpersonated), hour, {}, 0, f.as, as_hash, n);
      if (!f.ns.empty()) bump(kNsCount, static_cast<char>(Field::kImpersonated), hour, f.ns, ns_hash, f.as, as_hash, n);
    }
    bump(kCount, static_cast<char>(Field::kNamespace), hour, {}, 0, f.ns, ns_hash, n);
  }
  // One posting per name the batch files events under: its first event's
  // index in the key, the others' as ascending deltas in the value (a key
  // per event was half the index's keys, all of them landing across the key
  // space, for its compactions to merge).
  std::vector<std::pair<std::string_view, std::vector<uint64_t>>> postings;
  std::unordered_map<std::string_view, size_t> posting_at;
  for (const auto& n : batch.name_list()) {
    if (n.index < from) continue;  // filed already
    const std::string_view name = batch.arena(n.at, n.size);
    auto [at, first] = posting_at.try_emplace(name, postings.size());
    if (first) postings.emplace_back(name, std::vector<uint64_t>());
    std::vector<uint64_t>& list = postings[at->second].second;
    if (list.empty() || n.index > list.back()) list.push_back(n.index);  // names come in index order
  }
  std::vector<std::pair<std::string, std::string>> names;
  std::vector<std::string> name_first;
  names.reserve(postings.size());
  name_first.reserve(postings.size());
  for (const auto& [name, list] : postings) {
    std::string k;
    k.reserve(name.size() + 9);
    k.push_back(kName);
    k += name;
    PutBigEndian64(&k, list.front());
    std::string v;
    for (size_t j = 1; j < list.size(); ++j) PutVarint(&v, list[j] - list[j - 1]);
    names.emplace_back(std::move(k), std::move(v));
    name_first.push_back(std::string(1, kNameFirst) + NameFirstKey(name));
  }
  std::sort(names.begin(), names.end());
  std::sort(name_first.begin(), name_first.end());
  name_first.erase(std::unique(name_first.begin(), name_first.end()), name_first.end());
  {
    constexpr size_t kMaxFiledNames = size_t{1} << 20;
    std::lock_guard fl(filed_mu_);
    if (filed_names_.size() + name_first.size() > kMaxFiledNames) filed_names_.clear();
    name_first.erase(std::remove_if(name_first.begin(), name_first.end(),
                                    [&](const std::string& k) { return filed_names_.count(k) > 0; }),
                     name_first.end());
  }
  std::sort(counts.begin(), counts.end());

  // Every key in key order: the watermark (0x00...), counts ('a', 'b'), hours
  // ('h'), names by name first ('m'), names ('n'), rows ('r'). The memtable's skip list inserts a key
  // next to the previous one almost for free; keys in hash order each cost
  // a full search (that was most of a commit's time).
  rocksdb::WriteBatch wb;
  std::string wm;
  PutBigEndian64(&wm, watermark);
  RETURN_IF_ERROR(FromRocks(wb.Put(kWatermarkKey, wm), "event watermark"));
  std::string key;  // each count key built in the one buffer
  for (const CountKey& c : counts) {
    if (c.kind == kCount) {
      PutCountPrefix(&key, c.field, c.hour);
    } else {
      PutNsCountPrefix(&key, c.field, c.hour, c.ns);
    }
    key += c.value;
    RETURN_IF_ERROR(FromRocks(wb.Merge(key, LittleEndian64(c.n)), "event count"));
  }
  for (const auto& [hour, h] : touched) {
    std::string v;
    PutBigEndian64(&v, h.count);
    PutBigEndian64(&v, h.first_index);
    PutBigEndian64(&v, h.last_index);
    RETURN_IF_ERROR(FromRocks(wb.Put(HourKey(hour), v), "event hour"));
  }
  for (const auto& k : name_first) RETURN_IF_ERROR(FromRocks(wb.Put(k, rocksdb::Slice()), "event name"));
  for (const auto& [k, v] : names) RETURN_IF_ERROR(FromRocks(wb.Put(k, v), "event name"));
  if (rows.size() >= options_.ingest_rows) {
    // A catch-up's batch: its rows (most of its bytes) go in as one table
    // file of their own, ingested beneath everything (row keys only grow,
    // so it overlaps no other table): no memtable inserts, no flush, no
    // compaction rewriting them (these were about half of a catch-up's
    // CPU). The file is durable before the batch below moves the
    // watermark, so rows are never behind it; rows beyond it after a
    // crash are made again, byte for byte, from the same entries.
    if (Status s = IngestRows(batch); !s.ok()) {
      if (s.code() != StatusCode::kDataLoss) stuck_ = true;
      return s;
    }
    if (options_.fail_after_row_ingest) return InternalError("event index: failing after the rows' ingest (test)");
  } else {
    for (const auto& r : rows) {
      const auto v = batch.arena(r.at, r.size);
      RETURN_IF_ERROR(
          FromRocks(wb.Put(rows_.get(), RowKey(r.index), rocksdb::Slice(v.data(), v.size())), "event row"));
    }
  }
  // No WAL: the watermark is in the same batch, and memtables are flushed
  // whole and in order, so after a crash the index is a prefix of its
  // batches with the watermark saying which; the rest is caught up from
  // the log. (The WAL doubled the bytes written per row.)
  rocksdb::WriteOptions wo;
  wo.disableWAL = true;
  if (rocksdb::Status w = db_->Write(wo, &wb); !w.ok()) {
    if (!w.IsCorruption()) stuck_ = true;
    return FromRocks(w, "event index write");
  }
  {
    std::lock_guard fl(filed_mu_);  // only once written: a failed batch is tried again whole
    for (auto& k : name_first) filed_names_.insert(std::move(k));
  }
  {
    std::lock_guard hl(hours_mu_);
    for (const auto& [hour, h] : touched) hours_[hour] = h;
  }
  watermark_.store(watermark, std::memory_order_release);
  return OkStatus();
}

Status EventIndex::IngestRows(const EventBatch& batch) {
  const std::string path = dir_ + "/ingest-rows.sst";  // not a name RocksDB gives: its own files are numbered
  // The rows family's options: zstd at level 1, not the default 3 (these
  // files stay as written: they overlap no other table, no compaction
  // rewrites them), and at level 3 their compression was 5% of a 10M
  // catch-up's CPU (docs/performance.md, "Catch-up from the log").
  const rocksdb::Options db_opts = DbOptions(options_, cache_);
  const rocksdb::Options opts(rocksdb::DBOptions(db_opts), RowsOptions(db_opts));
  rocksdb::SstFileWriter writer(rocksdb::EnvOptions(), opts, rows_.get());
  RETURN_IF_ERROR(FromRocks(writer.Open(path), "event rows " + path));
  for (const auto& r : batch.row_list()) {
    const auto v = batch.arena(r.at, r.size);
    RETURN_IF_ERROR(FromRocks(writer.Put(RowKey(r.index), rocksdb::Slice(v.data(), v.size())), "event rows " + path));
  }
  RETURN_IF_ERROR(FromRocks(writer.Finish(), "event rows " + path));
  rocksdb::IngestExternalFileOptions ingest;
  ingest.move_files = true;
  ingest.verify_checksums_before_ingest = false;  // written just now, by this process
  Status s = FromRocks(db_->IngestExternalFile(rows_.get(), {path}, ingest), "ingest event rows " + path);
  std::remove(path.c_str());  // moved (linked) on success; a failure leaves nothing behind
  return s;
}

Status EventIndex::ReopenIfStuck() {
  if (!stuck_.load()) return OkStatus();
  std::unique_lock lock(mu_);
  if (!stuck_.load()) return OkStatus();
  const uint64_t was = watermark_.load();
  CloseDb();
  {
    std::lock_guard fl(filed_mu_);  // their puts may have been in the memtables lost
    filed_names_.clear();
  }
  std::string why;
  if (Status s = OpenDb(&why); !s.ok()) {
    CloseDb();
    return UnavailableError("event index " + dir_ + ": not open again yet after a failed write: " + s.message());
  }
  stuck_ = false;
  const uint64_t now = watermark_.load();
  log::Warning("event index opened again after a failed write: it covers %llu entries (%llu before)%s%s",
               static_cast<unsigned long long>(now), static_cast<unsigned long long>(was),
               why.empty() ? "" : "; wiped: ", why.c_str());
  // The batch in hand starts at the old watermark: the caller starts again
  // from the new one.
  if (now != was)
    return UnavailableError("event index opened again after a failed write at " + std::to_string(now) +
                            " entries; the rest is projected again from the log");
  return OkStatus();
}

uint64_t EventIndex::UnflushedBytes() const {
  std::shared_lock lock(mu_);
  return db_ ? MemtableBytes(db_.get()) : 0;
}

BackgroundWork EventIndex::BackgroundWorkDone() const {
  std::shared_lock lock(mu_);
  return db_ ? BackgroundWorkOf(db_.get(), {rows_.get()}) : BackgroundWork{};
}

Status EventIndex::NotOpen() const {
  return UnavailableError("event index " + dir_ + ": not open again yet after a failed write");
}

Status EventIndex::Reset() {
  std::unique_lock lock(mu_);
  CloseDb();
  {
    std::lock_guard fl(filed_mu_);
    filed_names_.clear();
  }
  const rocksdb::Options opts = DbOptions(options_, cache_);
  RETURN_IF_ERROR(FromRocks(rocksdb::DestroyDB(dir_, opts), "wipe event index " + dir_));
  std::string why;
  return OpenDb(&why);
}

Status EventIndex::Scan(uint64_t from, uint64_t to, const std::function<bool(const EventRowView&)>& fn) const {
  // Rows beyond the watermark (ingested by a commit a crash stopped before
  // its watermark moved) are not the index's yet.
  to = std::min(to, watermark_.load(std::memory_order_acquire));
  if (from >= to) return OkStatus();
  std::shared_lock lock(mu_);
  if (!db_) return NotOpen();
  const std::string start = RowKey(from), end = RowKey(to);
  rocksdb::Slice upper(end);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper;
  ro.readahead_size = size_t{1} << 20;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, rows_.get()));
  EventRowView row;
  for (it->Seek(start); it->Valid(); it->Next()) {
    const rocksdb::Slice k = it->key();
    if (k.size() != 9) return DataLossError("event index: bad row key");
    const uint64_t index = GetBigEndian64(k.data() + 1);
    Status s = DecodeEventRow(index, std::string_view(it->value().data(), it->value().size()), &row);
    if (!s.ok()) return DataLossError("event index damaged: " + s.message());
    if (!fn(row)) return OkStatus();
  }
  return FromRocks(it->status(), "event index scan");
}

StatusOr<std::vector<uint64_t>> EventIndex::EventsFor(std::string_view resource, std::string_view ns,
                                                      std::string_view name) const {
  std::shared_lock lock(mu_);
  if (!db_) return NotOpen();
  std::string prefix(1, kName);
  prefix += NameKey(resource, ns, name);
  std::vector<uint64_t> out;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    if (it->key().size() != prefix.size() + 8) continue;  // cannot happen: names are length-prefixed
    RETURN_IF_ERROR(ReadPosting(GetBigEndian64(it->key().data() + prefix.size()),
                                std::string_view(it->value().data(), it->value().size()), &out));
  }
  RETURN_IF_ERROR(FromRocks(it->status(), "event index names"));
  return out;
}

Status EventIndex::ForEach(const std::function<void(std::string_view key, std::string_view value)>& fn) const {
  std::shared_lock lock(mu_);
  if (!db_) return NotOpen();
  // The default family, then the rows': every key of the first sorts
  // before the rows' ('r'), so this is key order.
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    const std::string_view k(it->key().data(), it->key().size()), v(it->value().data(), it->value().size());
    if (k.size() < 9 || k[0] != kName) {
      fn(k, v);
      continue;
    }
    // A posting, as the events it holds: one key each (how a batch grouped
    // them is not part of what the index says).
    std::vector<uint64_t> list;
    RETURN_IF_ERROR(ReadPosting(GetBigEndian64(k.data() + k.size() - 8), v, &list));
    std::string e(k.substr(0, k.size() - 8));
    const size_t at = e.size();
    for (uint64_t index : list) {
      e.resize(at);
      PutBigEndian64(&e, index);
      fn(e, std::string_view());
    }
  }
  RETURN_IF_ERROR(FromRocks(it->status(), "event index scan"));
  it.reset(db_->NewIterator(rocksdb::ReadOptions(), rows_.get()));
  for (it->SeekToFirst(); it->Valid(); it->Next())
    fn(std::string_view(it->key().data(), it->key().size()), std::string_view(it->value().data(), it->value().size()));
  return FromRocks(it->status(), "event index rows");
}

StatusOr<std::vector<std::string>> EventIndex::NamespacesOf(std::string_view resource, std::string_view name) const {
  std::shared_lock lock(mu_);
  if (!db_) return NotOpen();
  const std::string prefix = std::string(1, kNameFirst) + NameFirstPrefix(resource, name);
  std::vector<std::string> out;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    std::string ns;
    if (!NamespaceAfterPrefix(std::string_view(it->key().data() + prefix.size(), it->key().size() - prefix.size()),
                              &ns))
      return DataLossError("event index damaged: bad name key");
    out.push_back(std::move(ns));
  }
  RETURN_IF_ERROR(FromRocks(it->status(), "event index names"));
  return out;
}

std::vector<EventIndex::Hour> EventIndex::Hours(int64_t first, int64_t last) const {
  std::lock_guard lock(hours_mu_);
  std::vector<Hour> out;
  for (auto it = hours_.lower_bound(first); it != hours_.end() && it->first <= last; ++it) out.push_back(it->second);
  return out;
}

Status EventIndex::Counts(Field field, int64_t hour, const std::function<void(std::string_view, uint64_t)>& fn) const {
  return CountsUnder(CountPrefix(static_cast<char>(field), hour), fn);
}

Status EventIndex::NamespaceCounts(Field field, int64_t hour, std::string_view ns,
                                   const std::function<void(std::string_view, uint64_t)>& fn) const {
  if (!NamespaceCounted(field)) return InvalidArgumentError("no per-namespace counts of that field");
  return CountsUnder(NsCountPrefix(static_cast<char>(field), hour, ns), fn);
}

StatusOr<std::vector<uint64_t>> EventIndex::CountsOf(Field field, const std::vector<int64_t>& hours,
                                                     std::string_view ns, std::string_view value) const {
  if (!ns.empty() && !NamespaceCounted(field)) return InvalidArgumentError("no per-namespace counts of that field");
  std::vector<std::string> keys;
  keys.reserve(hours.size());
  for (int64_t h : hours) {
    keys.push_back(ns.empty() ? CountPrefix(static_cast<char>(field), h)
                              : NsCountPrefix(static_cast<char>(field), h, ns));
    keys.back() += value;
  }
  std::vector<rocksdb::Slice> slices(keys.begin(), keys.end());
  std::vector<std::string> values(keys.size());
  std::shared_lock lock(mu_);
  if (!db_) return NotOpen();
  std::vector<rocksdb::Status> st = db_->MultiGet(rocksdb::ReadOptions(), slices, &values);
  std::vector<uint64_t> out(keys.size(), 0);
  for (size_t i = 0; i < keys.size(); ++i) {
    if (st[i].IsNotFound()) continue;
    RETURN_IF_ERROR(FromRocks(st[i], "event index counts"));
    if (values[i].size() != 8) return DataLossError("event index: bad count");
    out[i] = GetLittleEndian64(values[i]);
  }
  return out;
}

Status EventIndex::CountsUnder(const std::string& prefix,
                               const std::function<void(std::string_view, uint64_t)>& fn) const {
  std::shared_lock lock(mu_);
  if (!db_) return NotOpen();
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    if (it->value().size() != 8) return DataLossError("event index: bad count");
    fn(std::string_view(it->key().data() + prefix.size(), it->key().size() - prefix.size()),
       GetLittleEndian64(std::string_view(it->value().data(), 8)));
  }
  return FromRocks(it->status(), "event index counts");
}

Status EventIndex::VerifyChecksums(const std::atomic<bool>* stop) const {
  std::shared_lock lock(mu_);
  if (!db_) return NotOpen();
  rocksdb::ReadOptions ro;
  ro.verify_checksums = true;
  ro.fill_cache = false;  // a pass over everything would evict what queries use
  ro.readahead_size = size_t{2} << 20;
  uint64_t n = 0;
  for (rocksdb::ColumnFamilyHandle* family : {db_->DefaultColumnFamily(), rows_.get()}) {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, family));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      if ((++n & 4095) == 0 && stop->load()) return UnavailableError("event index check stopped");
      if (family != rows_.get()) continue;
      const rocksdb::Slice k = it->key();
      if (k.size() != 9 || k[0] != kRow) return DataLossError("event index " + dir_ + ": bad row key");
      EventRowView row;
      Status s =
          DecodeEventRow(GetBigEndian64(k.data() + 1), std::string_view(it->value().data(), it->value().size()), &row);
      if (!s.ok()) return DataLossError("event index " + dir_ + ": " + s.message());
    }
    RETURN_IF_ERROR(FromRocks(it->status(), "event index " + dir_));
  }
  return OkStatus();
}

}  // namespace annals::index
