#include "state/ip_index.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <utility>

namespace annals::state {

namespace {

constexpr uint64_t kFib = 0x9E3779B97F4A7C15ull;

uint64_t Mix(uint32_t k) { return uint64_t{k} * kFib; }
uint64_t Mix(const IpKey& k) {
  uint64_t a, b;
  std::memcpy(&a, k.data(), 8);
  std::memcpy(&b, k.data() + 8, 8);
  return (a ^ (b * kFib)) * kFib;
}

}  // namespace

bool IsV4(const IpKey& ip, uint32_t* v4) {
  static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::memcmp(ip.data(), kMapped, 12) != 0) return false;
  *v4 = (uint32_t{ip[12]} << 24) | (uint32_t{ip[13]} << 16) | (uint32_t{ip[14]} << 8) | ip[15];
  return true;
}

IpKey V4Key(uint32_t v4) {
  IpKey k{};
  k[10] = k[11] = 0xff;
  k[12] = static_cast<uint8_t>(v4 >> 24);
  k[13] = static_cast<uint8_t>(v4 >> 16);
  k[14] = static_cast<uint8_t>(v4 >> 8);
  k[15] = static_cast<uint8_t>(v4);
  return k;
}

template <typename Key>
const typename IpIndex::Table<Key>::Slot* IpIndex::Table<Key>::Find(const Key& k) const {
  if (slots.empty()) return nullptr;
  const size_t mask = slots.size() - 1;
  for (size_t i = static_cast<size_t>(Mix(k) >> shift);; i = (i + 1) & mask) {
    const Slot& s = slots[i];
    if (!s.used) return nullptr;
    if (s.key == k) return &s;
  }
}

template <typename Key>
void IpIndex::Table<Key>::Prefetch(const Key& k) const {
  if (!slots.empty()) __builtin_prefetch(&slots[static_cast<size_t>(Mix(k) >> shift)]);
}

template <typename Key>
typename IpIndex::Table<Key>::Slot& IpIndex::Table<Key>::FindOrAdd(const Key& k) {
  if ((size + 1) * 2 > slots.size()) Grow();
  const size_t mask = slots.size() - 1;
  for (size_t i = static_cast<size_t>(Mix(k) >> shift);; i = (i + 1) & mask) {
    Slot& s = slots[i];
    if (!s.used) {
      s.used = true;
      s.key = k;
      ++size;
      return s;
    }
    if (s.key == k) return s;
  }
}

template <typename Key>
void IpIndex::Table<Key>::Grow() {
  std::vector<Slot> old = std::move(slots);
  const size_t cap = old.empty() ? 1024 : old.size() * 2;
  slots = std::vector<Slot>(cap);
  shift = 64 - std::countr_zero(cap);
  const size_t mask = cap - 1;
  for (Slot& o : old) {
    if (!o.used) continue;
    size_t i = static_cast<size_t>(Mix(o.key) >> shift);
    while (slots[i].used) i = (i + 1) & mask;
    slots[i] = std::move(o);
  }
}

std::vector<IpInterval>& IpIndex::Intervals(const IpKey& ip) {
  uint32_t v4;
  if (IsV4(ip, &v4)) return v4_.FindOrAdd(v4).list;
  return v6_.FindOrAdd(ip).list;
}

const std::vector<IpInterval>* IpIndex::Find(const IpKey& ip) const {
  uint32_t v4;
  if (IsV4(ip, &v4)) {
    auto* s = v4_.Find(v4);
    return s ? &s->list : nullptr;
  }
  auto* s = v6_.Find(ip);
  return s ? &s->list : nullptr;
}

void IpIndex::Prefetch(const IpKey& ip) const {
  uint32_t v4;
  if (IsV4(ip, &v4)) {
    v4_.Prefetch(v4);
  } else {
    v6_.Prefetch(ip);
  }
}

const IpInterval* IpIndex::Lookup(const IpKey& ip, Micros t, const IpInterval** before,
                                  const IpInterval** after) const {
  return LookupIn(Find(ip), t, before, after);
}

const IpInterval* IpIndex::LookupIn(const std::vector<IpInterval>* list, Micros t, const IpInterval** before,
                                    const IpInterval** after) {
  if (before) *before = nullptr;
  if (after) *after = nullptr;
  if (!list || list->empty()) return nullptr;
  const IpInterval* first = list->data();
  const IpInterval* pos = std::upper_bound(first, first + list->size(), t,
                                           [](Micros x, const IpInterval& iv) { return x < iv.start; });
  if (after && pos != first + list->size()) *after = pos;
  // Intervals of one address do not overlap in a consistent log, but the
  // log is what the apiserver said: the latest-starting one that covers t
  // wins, and "before" is the latest-starting one that ended by t.
  const IpInterval* found = nullptr;
  for (const IpInterval* k = pos; k != first;) {
    --k;
    if (t < k->end) {
      if (!found) found = k;
    } else if (before && !*before) {
      *before = k;
    }
    if (found && (!before || *before)) break;
  }
  return found;
}


}  // namespace annals::state
