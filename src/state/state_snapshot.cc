// StateStore::EncodeSnapshot / DecodeSnapshot and the snapshot file
// (docs/format/state-snapshot.md).
#include "state/state_snapshot.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <mutex>
#include <set>

#include "common/bytes.h"
#include "common/file_util.h"

namespace annals::state {

namespace {

constexpr size_t kFlushBytes = size_t{1} << 20;

// Varint writer that hands its buffer to a sink every ~1 MiB.
class Out {
 public:
  explicit Out(const std::function<Status(std::string_view)>& sink) : sink_(sink) {}
  void U(uint64_t v) {
    while (v >= 0x80) {
      buf_.push_back(static_cast<char>(v | 0x80));
      v >>= 7;
    }
    buf_.push_back(static_cast<char>(v));
    MaybeFlush();
  }
  void Z(int64_t v) { U((static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63)); }
  void B(std::string_view s) {
    U(s.size());
    buf_.append(s);
    MaybeFlush();
  }
  void Ip(const IpKey& ip) {
    buf_.append(reinterpret_cast<const char*>(ip.data()), ip.size());
    MaybeFlush();
  }
  Status Finish() {
    if (st_.ok() && !buf_.empty()) st_ = sink_(buf_);
    buf_.clear();
    return st_;
  }

 private:
  void MaybeFlush() {
    if (buf_.size() < kFlushBytes) return;
    if (st_.ok()) st_ = sink_(buf_);
    buf_.clear();
  }
  const std::function<Status(std::string_view)>& sink_;
  std::string buf_;
  Status st_;
};

// Bounds-checked reader: the first failure sticks and names where.
class In {
 public:
  explicit In(std::string_view in) : in_(in), size_(in.size()) {}
  bool ok() const { return error_.empty(); }
  Status status() const {
    if (ok()) return OkStatus();
    return InvalidArgumentError("state snapshot: " + error_ + " at byte " + std::to_string(at_));
  }
  void Fail(const std::string& what) {
    if (ok()) {
      error_ = what;
      at_ = size_ - in_.size();
      in_ = {};
    }
  }
  uint64_t U() {
    uint64_t r = 0;
    for (int shift = 0; shift < 64 && !in_.empty(); shift += 7) {
      const uint8_t b = static_cast<uint8_t>(in_.front());
      in_.remove_prefix(1);
      if (shift == 63 && b > 1) break;
      r |= uint64_t{b & 0x7fu} << shift;
      if (b < 0x80) return r;
    }
    Fail("bad varint");
    return 0;
  }
  int64_t Z() {
    const uint64_t v = U();
    return static_cast<int64_t>(v >> 1) ^ -static_cast<int64_t>(v & 1);
  }
  uint32_t U32() {
    const uint64_t v = U();
    if (v > 0xffffffffu) Fail("value over 32 bits");
    return static_cast<uint32_t>(v);
  }
  // An id below limit.
  uint32_t Id(size_t limit, const char* what) {
    const uint32_t v = U32();
    if (ok() && v >= limit) Fail(std::string(what) + " id " + std::to_string(v) + " out of range");
    return ok() ? v : 0;
  }
  // A count of items of at least min_bytes each (so a bogus count cannot
  // make us allocate more than the input could hold).
  size_t Count(size_t min_bytes = 1) {
    const uint64_t n = U();
    if (ok() && n > in_.size() / std::max<size_t>(min_bytes, 1)) Fail("count " + std::to_string(n) + " too large");
    return ok() ? static_cast<size_t>(n) : 0;
  }
  std::string_view B() {
    const uint64_t n = U();
    if (!ok()) return {};
    if (n > in_.size()) {
      Fail("truncated string");
      return {};
    }
    std::string_view s = in_.substr(0, n);
    in_.remove_prefix(n);
    return s;
  }
  IpKey Ip() {
    IpKey k{};
    if (in_.size() < k.size()) {
      Fail("truncated address");
      return k;
    }
    std::memcpy(k.data(), in_.data(), k.size());
    in_.remove_prefix(k.size());
    return k;
  }
  bool empty() const { return in_.empty(); }

 private:
  std::string_view in_;
  size_t size_;
  size_t at_ = 0;
  std::string error_;
};

void PutInterval(Out& o, const IpInterval& iv) {
  o.Ip(iv.ip);
  o.Z(iv.start);
  o.Z(iv.end);
  o.U(iv.pod);
  o.U(iv.start_index);
  o.U(iv.end_index);
}

IpInterval GetInterval(In& in, size_t objects) {
  IpInterval iv;
  iv.ip = in.Ip();
  iv.start = in.Z();
  iv.end = in.Z();
  iv.pod = in.Id(objects, "interval pod");
  iv.start_index = in.U();
  iv.end_index = in.U();
  return iv;
}


// The sizes of the tables an object's ids point into.
struct Tables {
  size_t strings, label_sets, owner_links, objects;
};

void PutVersion(Out& o, const Version& v) {
  o.Z(v.time);
  o.U(v.index);
  o.U(v.owner);
  o.U(v.labels);
  o.U(v.selector);
  o.U(v.rv);
  o.U(static_cast<uint8_t>(v.presence) | (v.watch ? 4u : 0u));
}

void GetVersion(In& in, const Tables& t, Version* out) {
  Version& v = *out;
  v.time = in.Z();
  v.index = in.U();
  v.owner = in.Id(t.owner_links, "owner link");
  v.labels = in.Id(t.label_sets, "label set");
  v.selector = in.Id(t.label_sets, "label set");
  v.rv = in.U();
  const uint64_t p = in.U();
  if ((p & 3) > 2 || p > 7) in.Fail("presence " + std::to_string(p));
  v.presence = static_cast<Presence>(p & 3);
  v.watch = (p & 4) != 0;
}

void PutObject(Out& o, const Object& ob) {
  o.U(ob.resource);
  o.U(ob.ns);
  o.U(ob.name);
  o.U(ob.cluster);
  o.B(ob.uid);
  o.U(ob.cold);
  if (ob.cold) {
    o.Z(ob.first_time);
    PutVersion(o, ob.last);
    return;
  }
  o.U(ob.max_rv);
  o.U(ob.watched ? 1 : 0);
  o.U(ob.text_rvs.size());
  for (const auto& rv : ob.text_rvs) o.B(rv);
  o.U(ob.versions.size());
  for (const Version& v : ob.versions) PutVersion(o, v);
  o.U(ob.pod.size());
  for (const auto& pf : ob.pod) {
    o.U(pf.ips.size());
    for (const auto& ip : pf.ips) o.Ip(ip);
    o.U(pf.service_account);
    o.U(pf.node);
    o.U(pf.holds_ip ? 1 : 0);
  }
  o.U(ob.ips_ever.size());
  for (const auto& ip : ob.ips_ever) o.Ip(ip);
  o.U(ob.intervals.size());
  for (const auto& iv : ob.intervals) PutInterval(o, iv);
}

void GetObject(In& in, const Tables& t, Object* out) {
  Object& ob = *out;
  ob.resource = in.Id(t.strings, "object resource");
  ob.ns = in.Id(t.strings, "object namespace");
  ob.name = in.Id(t.strings, "object name");
  ob.cluster = in.Id(t.strings, "object cluster");
  ob.uid = std::string(in.B());
  ob.cold = in.U();
  if (ob.cold) {
    ob.first_time = in.Z();
    GetVersion(in, t, &ob.last);
    if (in.ok() && (ob.last.presence != Presence::kGone || ob.last.time < ob.first_time))
      in.Fail("cold object that has not ended");
    return;
  }
  ob.max_rv = in.U();
  const uint64_t watched = in.U();
  if (watched > 1) in.Fail("watched " + std::to_string(watched));
  ob.watched = watched == 1;
  ob.text_rvs.resize(in.Count());
  for (auto& rv : ob.text_rvs) rv = std::string(in.B());
  if (in.ok() && !std::is_sorted(ob.text_rvs.begin(), ob.text_rvs.end())) in.Fail("text resourceVersions not sorted");
  ob.versions.resize(in.Count(7));
  for (Version& v : ob.versions) {
    GetVersion(in, t, &v);
    if (in.ok() && v.rv > ob.max_rv) in.Fail("resourceVersion above the object's highest");
  }
  ob.pod.resize(in.Count(4));
  if (in.ok() && !ob.pod.empty() && ob.pod.size() != ob.versions.size()) in.Fail("pod facts not one per version");
  for (auto& pf : ob.pod) {
    pf.ips.resize(in.Count(16));
    for (auto& ip : pf.ips) ip = in.Ip();
    pf.service_account = in.Id(t.strings, "service account");
    pf.node = in.Id(t.strings, "node");
    const uint64_t h = in.U();
    if (h > 1) in.Fail("holds_ip " + std::to_string(h));
    pf.holds_ip = h == 1;
  }
  ob.ips_ever.resize(in.Count(16));
  for (auto& ip : ob.ips_ever) ip = in.Ip();
  ob.intervals.resize(in.Count(21));
  for (auto& iv : ob.intervals) iv = GetInterval(in, t.objects);
}

template <typename Set>
std::vector<typename Set::value_type> Sorted(const Set& s) {
  std::vector<typename Set::value_type> v(s.begin(), s.end());
  std::sort(v.begin(), v.end());
  return v;
}

// The key label_set_ids_ and owner_ref_ids_ file a set / link under (as
// InternLabels and InternOwner build them).
std::string LabelKey(const LabelSet& set) {
  return std::string(reinterpret_cast<const char*>(set.data()), set.size() * sizeof(set[0]));
}

}  // namespace

Status StateStore::EncodeSnapshot(const std::function<Status(std::string_view)>& sink) const {
  std::shared_lock lock(mu_);
  Out o(sink);
  o.U(applied_);
  o.U(strings_.size());
  for (size_t i = 0; i < strings_.size(); ++i) o.B(strings_.Get(static_cast<uint32_t>(i)));
  o.U(pods_id_);
  o.U(services_id_);
  o.U(label_sets_.size());
  for (const auto& set : label_sets_) {
    o.U(set.size());
    for (const auto& [k, v] : set) {
      o.U(k);
      o.U(v);
    }
  }
  o.U(owner_refs_.size());
  for (const auto& r : owner_refs_) {
    o.U(r.kind);
    o.U(r.name);
    o.B(r.uid);
  }
  o.U(objects_.size());
  for (const Object& ob : objects_) PutObject(o, ob);
  // Object ids are positions, and the lists below were built in id order:
  // uid_slots_, by_name_ and by_resource_ns_ are rebuilt from the objects.
  {
    std::vector<std::pair<std::string, std::vector<uint32_t>>> children;
    for (const auto& [uid, ids] : children_) children.emplace_back(uid, Sorted(ids));
    std::sort(children.begin(), children.end());
    o.U(children.size());
    for (const auto& [uid, ids] : children) {
      o.B(uid);
      o.U(ids.size());
      for (uint32_t id : ids) o.U(id);
    }
  }
  o.U(instances_.size());
  for (const auto& [key, ids] : instances_) {  // a std::map: ordered
    o.U(key.first);
    o.B(key.second);
    const auto sorted = Sorted(ids);
    o.U(sorted.size());
    for (uint32_t id : sorted) o.U(id);
  }
  {
    // Each address's intervals as they are (ties in start keep their order).
    std::vector<std::pair<IpKey, const std::vector<IpInterval>*>> ips;
    ip_index_.ForEach([&](const IpKey& ip, const std::vector<IpInterval>& list) { ips.emplace_back(ip, &list); });
    std::sort(ips.begin(), ips.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    o.U(ips.size());
    for (const auto& [ip, list] : ips) {
      o.Ip(ip);
      o.U(list->size());
      for (const auto& iv : *list) PutInterval(o, iv);
    }
  }
  {
    std::vector<uint32_t> nss;
    for (const auto& [ns, e] : ns_epochs_) nss.push_back(ns);
    std::sort(nss.begin(), nss.end());
    o.U(nss.size());
    for (uint32_t ns : nss) {
      const NamespaceEpochs& e = ns_epochs_.at(ns);
      o.U(ns);
      o.U(e.service_times.size());
      for (Micros t : e.service_times) o.Z(t);
      o.Z(e.max_pod_time);
      o.U(e.late_generation);
    }
  }
  {
    std::vector<std::pair<std::tuple<uint32_t, uint32_t, uint32_t>, const std::vector<uint32_t>*>> sel;
    for (const auto& [k, ids] : services_by_selector_) sel.push_back({{k.resource, k.ns, k.name}, &ids});
    std::sort(sel.begin(), sel.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    o.U(sel.size());
    for (const auto& [k, ids] : sel) {
      o.U(std::get<0>(k));
      o.U(std::get<1>(k));
      o.U(std::get<2>(k));
      o.U(ids->size());
      for (uint32_t id : *ids) o.U(id);
    }
  }
  o.Z(max_pod_time_);
  o.U(late_generation_);
  o.Z(max_time_);
  return o.Finish();
}

Status StateStore::DecodeSnapshot(std::string_view body) {
  In in(body);
  StateStore s;  // filled here, swapped in whole at the end
  s.applied_ = in.U();
  // Strings: "" first, no repeats.
  {
    const size_t n = in.Count();
    if (in.ok() && (n == 0 || !in.B().empty())) in.Fail("the first string must be empty");
    s.strings_ = Strings();
    for (size_t i = 1; i < n && in.ok(); ++i)
      if (!s.strings_.AddUnique(in.B()) && in.ok()) in.Fail("string " + std::to_string(i) + " repeated");
  }
  const size_t S = s.strings_.size();
  s.pods_id_ = in.Id(S, "string");
  s.services_id_ = in.Id(S, "string");
  if (in.ok() && (s.strings_.Get(s.pods_id_) != "pods" || s.strings_.Get(s.services_id_) != "services"))
    in.Fail("pods/services ids");
  // Label sets: [0] empty, each sorted with unique keys, no repeats.
  {
    const size_t n = in.Count();
    s.label_sets_.clear();
    s.label_set_ids_.clear();
    for (size_t i = 0; i < n && in.ok(); ++i) {
      LabelSet set(in.Count(2));
      for (auto& [k, v] : set) {
        k = in.Id(S, "label key");
        v = in.Id(S, "label value");
      }
      for (size_t j = 1; j < set.size() && in.ok(); ++j)
        if (set[j - 1].first >= set[j].first) in.Fail("label set " + std::to_string(i) + " not sorted");
      if (in.ok() && (i == 0) != set.empty()) in.Fail("label set 0 must be the only empty one");
      if (in.ok() && !s.label_set_ids_.emplace(LabelKey(set), static_cast<uint32_t>(i)).second)
        in.Fail("label set " + std::to_string(i) + " repeated");
      s.label_sets_.push_back(std::move(set));
    }
    if (in.ok() && s.label_sets_.empty()) in.Fail("no label sets");
  }
  {
    const size_t n = in.Count(3);
    s.owner_refs_.clear();
    s.owner_ref_ids_.clear();
    for (size_t i = 0; i < n && in.ok(); ++i) {
      OwnerLink r;
      r.kind = in.Id(S, "owner kind");
      r.name = in.Id(S, "owner name");
      r.uid = std::string(in.B());
      if (!in.ok()) break;
      if (i == 0) {
        if (r.kind != 0 || r.name != 0 || !r.uid.empty()) in.Fail("owner link 0 must be none");
      } else {
        std::string key = r.uid + '\0' + s.strings_.Get(r.kind) + '\0' + s.strings_.Get(r.name);
        if (!s.owner_ref_ids_.emplace(std::move(key), static_cast<uint32_t>(i)).second)
          in.Fail("owner link " + std::to_string(i) + " repeated");
      }
      s.owner_refs_.push_back(std::move(r));
    }
    if (in.ok() && s.owner_refs_.empty()) in.Fail("no owner links");
  }
  const size_t L = s.label_sets_.size(), R = s.owner_refs_.size();
  {
    const size_t n = in.Count(10);
    s.objects_.reserve(n);
    for (size_t id = 0; id < n && in.ok(); ++id) {
      Object ob;
      GetObject(in, {S, L, R, n}, &ob);
      if (!in.ok()) break;
      const uint64_t hash = UidHash(ob.cluster, ob.uid);
      const size_t slot = s.UidSlot(ob.cluster, ob.uid, hash);
      if (s.uid_slots_[slot] != 0) in.Fail("uid " + ob.uid + " repeated");
      s.by_name_[{ob.resource, ob.ns, ob.name, ob.cluster}].push_back(static_cast<uint32_t>(id));
      s.NoteCluster(ob.cluster);
      s.by_resource_ns_[{ob.resource, ob.ns}].push_back(static_cast<uint32_t>(id));
      s.objects_.push_back(std::move(ob));
      if (in.ok()) s.FileUid(static_cast<uint32_t>(id), slot, hash);
    }
  }
  const size_t O = s.objects_.size();
  {
    const size_t n = in.Count(2);
    for (size_t i = 0; i < n && in.ok(); ++i) {
      std::string uid(in.B());
      auto& ids = s.children_[uid];
      for (size_t j = 0, m = in.Count(); j < m && in.ok(); ++j) ids.insert(in.Id(O, "child"));
    }
  }
  {
    const size_t n = in.Count(3);
    for (size_t i = 0; i < n && in.ok(); ++i) {
      const uint32_t ns = in.Id(S, "instance namespace");
      std::string release(in.B());
      auto& ids = s.instances_[{ns, release}];
      for (size_t j = 0, m = in.Count(); j < m && in.ok(); ++j) ids.insert(in.Id(O, "instance member"));
    }
  }
  {
    const size_t n = in.Count(17);
    for (size_t i = 0; i < n && in.ok(); ++i) {
      const IpKey ip = in.Ip();
      std::vector<IpInterval> list(in.Count(21));
      for (auto& iv : list) {
        iv = GetInterval(in, O);
        if (in.ok() && iv.ip != ip) in.Fail("interval filed under another address");
      }
      if (!in.ok()) break;
      auto& slot = s.ip_index_.Intervals(ip);
      if (!slot.empty()) in.Fail("address repeated");
      slot = std::move(list);
    }
  }
  {
    const size_t n = in.Count(4);
    for (size_t i = 0; i < n && in.ok(); ++i) {
      const uint32_t ns = in.Id(S, "epoch namespace");
      NamespaceEpochs& e = s.ns_epochs_[ns];
      e.service_times.resize(in.Count());
      for (Micros& t : e.service_times) t = in.Z();
      if (in.ok() && !std::is_sorted(e.service_times.begin(), e.service_times.end())) in.Fail("service times not sorted");
      e.max_pod_time = in.Z();
      e.late_generation = in.U();
    }
  }
  {
    const size_t n = in.Count(4);
    for (size_t i = 0; i < n && in.ok(); ++i) {
      NameKey k;
      k.resource = in.Id(S, "selector namespace");
      k.ns = in.Id(S, "selector key");
      k.name = in.Id(S, "selector value");
      auto& ids = s.services_by_selector_[k];
      ids.resize(in.Count());
      for (uint32_t& id : ids) id = in.Id(O, "selecting service");
    }
  }
  s.max_pod_time_ = in.Z();
  s.late_generation_ = in.U();
  s.max_time_ = in.Z();
  if (in.ok() && !in.empty()) in.Fail("trailing bytes");
  RETURN_IF_ERROR(in.status());

  // Cold objects: the count, and the hot ones that wait to go.
  for (uint32_t id = 0; id < s.objects_.size(); ++id) {
    const Object& ob = s.objects_[id];
    if (ob.cold) {
      ++s.cold_count_;
    } else if (!ob.versions.empty() && ob.versions.back().presence == Presence::kGone) {
      s.gone_.emplace_back(ob.versions.back().time, id);
    }
  }
  std::make_heap(s.gone_.begin(), s.gone_.end(), std::greater<>());
  std::unique_lock lock(mu_);
  AdoptLocked(s);
  return OkStatus();
}

void StateStore::AdoptLocked(StateStore& s) {
  applied_ = s.applied_;
  strings_ = std::move(s.strings_);
  objects_ = std::move(s.objects_);
  uid_slots_ = std::move(s.uid_slots_);
  uid_count_ = s.uid_count_;
  clusters_ = std::move(s.clusters_);
  by_name_ = std::move(s.by_name_);
  by_resource_ns_ = std::move(s.by_resource_ns_);
  children_ = std::move(s.children_);
  instances_ = std::move(s.instances_);
  ip_index_ = std::move(s.ip_index_);
  pods_id_ = s.pods_id_;
  services_id_ = s.services_id_;
  label_sets_ = std::move(s.label_sets_);
  label_set_ids_ = std::move(s.label_set_ids_);
  owner_refs_ = std::move(s.owner_refs_);
  owner_ref_ids_ = std::move(s.owner_ref_ids_);
  ns_epochs_ = std::move(s.ns_epochs_);
  services_by_selector_ = std::move(s.services_by_selector_);
  max_pod_time_ = s.max_pod_time_;
  late_generation_ = s.late_generation_;
  max_time_ = s.max_time_;
  gone_ = std::move(s.gone_);
  cold_count_.store(s.cold_count_.load());
  for (CacheShard& c : cache_) {
    MutexLock l(&c.mu);
    c.map.clear();
    c.order.clear();
    c.bytes = 0;
  }
  for (Object& o : objects_) o.loaded = nullptr;  // s's cache, not this one's
}

std::string StateStore::EncodeObject(const Object& ob) const {
  std::string body;
  const std::function<Status(std::string_view)> sink = [&](std::string_view piece) {
    body.append(piece);
    return OkStatus();
  };
  Out o(sink);
  PutObject(o, ob);
  (void)o.Finish();
  return body;
}

Status StateStore::DecodeObject(std::string_view body, Object* ob) const {
  In in(body);
  GetObject(in, {strings_.size(), label_sets_.size(), owner_refs_.size(), objects_.size()}, ob);
  if (in.ok() && ob->cold) in.Fail("a cold object's body is a stub");
  if (in.ok() && !in.empty()) in.Fail("trailing bytes");
  return in.status();
}

// ---------------------------------------------------------------------------
// The file.

namespace {

constexpr std::string_view kMagic("annals-state-snapshot-3\n", 24);
constexpr size_t kHeader = 24 + 8 + 32;  // magic, applied, hash of the last entry
constexpr size_t kTrailer = 32;          // SHA-256 of everything before

class Sha256Stream {
 public:
  Sha256Stream() : ctx_(EVP_MD_CTX_new()) { EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr); }
  ~Sha256Stream() { EVP_MD_CTX_free(ctx_); }
  void Update(std::string_view d) { EVP_DigestUpdate(ctx_, d.data(), d.size()); }
  Hash Final() {
    Hash h{};
    unsigned int n = 0;
    EVP_DigestFinal_ex(ctx_, h.data(), &n);
    return h;
  }

 private:
  EVP_MD_CTX* ctx_;
};

}  // namespace

Status WriteSnapshotFile(const std::string& path, const StateStore& store, uint64_t applied, const Hash& last_entry) {
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return InternalError("create " + tmp + ": " + std::strerror(errno));
  std::unique_ptr<int, void (*)(int*)> closer(new int(fd), [](int* f) {
    ::close(*f);
    delete f;
  });
  Sha256Stream sha;
  std::string head(kMagic);
  PutBigEndian64(&head, applied);
  head.append(HashBytes(last_entry));
  sha.Update(head);
  RETURN_IF_ERROR(WriteAll(fd, head, tmp));
  uint64_t body_applied = UINT64_MAX;
  bool first = true;
  RETURN_IF_ERROR(store.EncodeSnapshot([&](std::string_view piece) -> Status {
    if (first) {
      // The body starts with the store's applied count: it must be the
      // header's (the caller read the store while nothing applied).
      In peek(piece);
      body_applied = peek.U();
      first = false;
    }
    sha.Update(piece);
    return WriteAll(fd, piece, tmp);
  }));
  if (body_applied != applied)
    return FailedPreconditionError("state snapshot: the store moved while it was written");
  const Hash h = sha.Final();
  RETURN_IF_ERROR(WriteAll(fd, HashBytes(h), tmp));
  if (::fdatasync(fd) != 0) return InternalError("fdatasync " + tmp + ": " + std::strerror(errno));
  closer.reset();
  if (::rename(tmp.c_str(), path.c_str()) != 0) return InternalError("rename " + tmp + ": " + std::strerror(errno));
  return FsyncDir(DirName(path));
}

StatusOr<SnapshotHeader> ReadSnapshotFile(const std::string& path, StateStore* store,
                                          const std::function<Status(const SnapshotHeader&)>& check) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return NotFoundError("no state snapshot at " + path);
    return InternalError("open " + path + ": " + std::strerror(errno));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    return InternalError("stat " + path + ": " + std::strerror(errno));
  }
  const size_t size = static_cast<size_t>(st.st_size);
  if (size < kHeader + kTrailer) {
    ::close(fd);
    return DataLossError("state snapshot " + path + ": " + std::to_string(size) + " bytes, too short");
  }
  void* map = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (map == MAP_FAILED) return InternalError("mmap " + path + ": " + std::strerror(errno));
  std::unique_ptr<void, std::function<void(void*)>> unmap(map, [size](void* p) { ::munmap(p, size); });
  ::madvise(map, size, MADV_SEQUENTIAL);
  const std::string_view all(static_cast<const char*>(map), size);
  if (all.substr(0, kMagic.size()) != kMagic)
    return DataLossError("state snapshot " + path + ": not a snapshot of this format");
  const Hash want = Sha256(all.substr(0, size - kTrailer));
  if (std::memcmp(want.data(), all.data() + size - kTrailer, kTrailer) != 0)
    return DataLossError("state snapshot " + path + ": checksum mismatch (the file is damaged)");
  SnapshotHeader h;
  h.applied = GetBigEndian64(all.data() + kMagic.size());
  std::memcpy(h.last_entry.data(), all.data() + kMagic.size() + 8, 32);
  const std::string_view body = all.substr(kHeader, size - kHeader - kTrailer);
  In peek(body);
  if (peek.U() != h.applied || !peek.ok())
    return DataLossError("state snapshot " + path + ": header and body disagree");
  RETURN_IF_ERROR(check(h));
  Status s = store->DecodeSnapshot(body);
  if (!s.ok()) return DataLossError("state snapshot " + path + ": " + s.message());
  return h;
}

}  // namespace annals::state
