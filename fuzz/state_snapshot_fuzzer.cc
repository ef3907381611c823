// Feeds arbitrary bytes to StateStore::DecodeSnapshot, the reader of the
// state snapshot's body (docs/format/state-snapshot.md). The file's
// SHA-256 catches damage before the body is read, so this is the reader
// behind a checksum that matched: it may refuse, never crash or leave ids
// that point nowhere. What it accepts must hold up: encoding it and
// decoding that gives the same bytes again, and the store answers the
// questions' lookups.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <string_view>

#include "state/state_store.h"
#include "fuzz_check.h"


namespace {

std::string Encode(const annals::state::StateStore& s) {
  std::string out;
  CHECK(s.EncodeSnapshot([&](std::string_view piece) {
           out.append(piece);
           return annals::OkStatus();
         }).ok());
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using annals::state::StateStore;
  StateStore s;
  const std::string empty = Encode(s);
  if (!s.DecodeSnapshot(std::string_view(reinterpret_cast<const char*>(data), size)).ok()) {
    CHECK(Encode(s) == empty);  // a refused body changes nothing
    return 0;
  }
  const std::string body = Encode(s);
  StateStore again;
  CHECK(again.DecodeSnapshot(body).ok());
  CHECK(Encode(again) == body);
  // Every id the accessors follow points somewhere.
  std::shared_lock lock(s.mutex());
  for (uint32_t id = 0; id < s.object_count(); ++id) {
    const auto& o = s.object(id);
    (void)s.strings().Get(o.resource);
    (void)s.strings().Get(o.cluster);
    CHECK(s.FindUid(o.cluster, o.uid) == id);
    for (uint32_t c : s.Children(o.cluster, o.uid)) CHECK(c < s.object_count());
    for (uint32_t c : s.ByName(o.cluster, o.resource, o.ns, o.name)) CHECK(c < s.object_count());
    for (const auto& v : o.versions) {
      const auto& labels = s.label_set(v.labels);
      for (const auto& [k, val] : labels) (void)s.strings().Get(k).size();
      (void)s.owner_ref(v.owner).uid.size();
      (void)s.label_set(v.selector).size();
    }
    for (const auto& iv : o.intervals) {
      CHECK(iv.pod < s.object_count());
      const auto* list = s.IpIntervals(iv.ip);
      (void)list;
      (void)s.PodByIp(iv.ip, iv.start, nullptr, nullptr);
    }
  }
  return 0;
}
