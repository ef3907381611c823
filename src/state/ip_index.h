// IpIndex: IP address -> the intervals in which pods held it, the index
// behind "pod by IP at T" and flow enrichment. Two open-addressing tables
// (linear probing, Fibonacci hashing, at most half full): one keyed by the
// IPv4 address as a uint32 (the common case: a 4-byte key and a 32-byte slot
// that holds the interval list itself, so a lookup touches the slot and the
// list), one keyed by the 16-byte IPv6 address. Addresses are never removed
// (an address whose intervals all went away keeps an empty list).
//
// Not thread-safe: the StateStore guards it with its lock.
#ifndef ANNALS_STATE_IP_INDEX_H_
#define ANNALS_STATE_IP_INDEX_H_

#include <cstdint>
#include <vector>

#include "common/time_util.h"
#include "state/k8s_object.h"

namespace annals::state {

struct IpInterval {
  IpKey ip{};
  Micros start = 0, end = kNever;  // [start, end)
  uint32_t pod = 0;                // object id
  uint64_t start_index = 0, end_index = 0;  // evidence; end_index 0 while open
};

// True if ip is an IPv4 address (mapped into ::ffff:0:0/96); *v4 gets it in
// host order.
bool IsV4(const IpKey& ip, uint32_t* v4);
// The IPv4-mapped key of an address in host order.
IpKey V4Key(uint32_t v4);

class IpIndex {
 public:
  IpIndex() = default;
  IpIndex(IpIndex&&) = default;
  IpIndex& operator=(IpIndex&&) = default;

  // The intervals of ip, sorted by start; created empty if absent. The
  // reference is valid until the next call that adds an address.
  std::vector<IpInterval>& Intervals(const IpKey& ip);
  // nullptr if ip was never indexed.
  const std::vector<IpInterval>* Find(const IpKey& ip) const;
  // Starts loading the hash slot where Find(ip) begins (a hint, no effect
  // on results): for callers that look up many addresses at once.
  void Prefetch(const IpKey& ip) const;

  // The interval in which some pod held ip at t (nullptr if none) and, when
  // asked, the nearest intervals that ended at or before t and that start
  // after t.
  const IpInterval* Lookup(const IpKey& ip, Micros t, const IpInterval** before,
                           const IpInterval** after) const;
  // The same within an address's intervals (Find's answer; nullptr: none),
  // for callers that found them already.
  // LookupIn among the intervals keep(iv) accepts (one cluster's pods):
  // the latest-starting one that covers t, and (if asked) the nearest
  // accepted ones before and after t.
  template <class Keep>
  static const IpInterval* LookupInIf(const std::vector<IpInterval>* list, Micros t, Keep keep,
                                      const IpInterval** before = nullptr, const IpInterval** after = nullptr) {
    if (before) *before = nullptr;
    if (after) *after = nullptr;
    if (!list) return nullptr;
    const IpInterval* first = list->data();
    const IpInterval* end = first + list->size();
    const IpInterval* pos =
        std::upper_bound(first, end, t, [](Micros x, const IpInterval& iv) { return x < iv.start; });
    if (after)
      for (const IpInterval* k = pos; k != end; ++k)
        if (keep(*k)) {
          *after = k;
          break;
        }
    const IpInterval* found = nullptr;
    for (const IpInterval* k = pos; k != first;) {
      --k;
      if (!keep(*k)) continue;
      if (t < k->end) {
        if (!found) found = k;
      } else if (before && !*before) {
        *before = k;
      }
      if (found && (!before || *before)) break;
    }
    return found;
  }
  static const IpInterval* LookupIn(const std::vector<IpInterval>* list, Micros t, const IpInterval** before,
                                    const IpInterval** after);

  // Addresses indexed.
  size_t size() const { return v4_.size + v6_.size; }
  // fn(ip, intervals) for every address, in no particular order.
  template <typename Fn>
  void ForEach(Fn&& fn) const {
    for (const auto& s : v4_.slots)
      if (s.used) fn(V4Key(s.key), s.list);
    for (const auto& s : v6_.slots)
      if (s.used) fn(s.key, s.list);
  }

 private:
  template <typename Key>
  struct Table {
    struct Slot {
      Key key{};
      bool used = false;
      std::vector<IpInterval> list;
    };
    std::vector<Slot> slots;  // capacity a power of two (or empty)
    size_t size = 0;
    int shift = 64;           // 64 - log2(capacity)

    const Slot* Find(const Key& k) const;
    void Prefetch(const Key& k) const;
    Slot& FindOrAdd(const Key& k);
    void Grow();
  };

  Table<uint32_t> v4_;
  Table<IpKey> v6_;
};



}  // namespace annals::state

#endif  // ANNALS_STATE_IP_INDEX_H_
