#include "common/crc32c.h"

#include <array>
#include <cstring>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

namespace annals::crc32c {
namespace {

constexpr std::array<uint32_t, 256> MakeTable() {
  std::array<uint32_t, 256> t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82f63b78u : c >> 1;
    t[i] = c;
  }
  return t;
}
constexpr auto kTable = MakeTable();

uint32_t ExtendPortable(uint32_t crc, const char* p, size_t n) {
  crc = ~crc;
  for (size_t i = 0; i < n; ++i)
    crc = kTable[(crc ^ static_cast<unsigned char>(p[i])) & 0xff] ^ (crc >> 8);
  return ~crc;
}

#if defined(__x86_64__)
// The crc32 instruction takes 3 cycles and can start every cycle: one
// dependent chain uses a third of it. Long inputs are taken in stripes of
// three lanes of kLane bytes, each lane its own chain (the first from the
// running state, the others from 0), and the lanes' states are joined by
// shifting a state over kLane zero bytes (CRC without its inversions is
// linear: crc(S, A||B) = zeros(crc(S, A), |B|) ^ crc(0, B)).
constexpr size_t kLane = 256;

__attribute__((target("sse4.2"))) uint64_t RawSse42(uint64_t c, const char* p, size_t n) {
  for (; n >= 8; p += 8, n -= 8) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    c = _mm_crc32_u64(c, v);
  }
  uint32_t c32 = static_cast<uint32_t>(c);
  while (n--) c32 = _mm_crc32_u8(c32, static_cast<unsigned char>(*p++));
  return c32;
}

// kShift[k][b]: the raw state (b << 8k) after kLane zero bytes.
struct ShiftTable {
  uint32_t t[4][256];
};
__attribute__((target("sse4.2"))) ShiftTable MakeShiftTable() {
  ShiftTable s{};
  static const char kZeros[kLane] = {};
  for (int k = 0; k < 4; ++k)
    for (uint32_t b = 0; b < 256; ++b) s.t[k][b] = static_cast<uint32_t>(RawSse42(b << (8 * k), kZeros, kLane));
  return s;
}
uint32_t ShiftOverLane(const ShiftTable& s, uint32_t c) {
  return s.t[0][c & 0xff] ^ s.t[1][(c >> 8) & 0xff] ^ s.t[2][(c >> 16) & 0xff] ^ s.t[3][c >> 24];
}

__attribute__((target("sse4.2"))) uint32_t ExtendSse42(uint32_t crc, const char* p, size_t n) {
  uint64_t c = ~crc & 0xffffffffu;
  if (n >= 3 * kLane) {
    static const ShiftTable kShift = MakeShiftTable();
    for (; n >= 3 * kLane; p += 3 * kLane, n -= 3 * kLane) {
      uint64_t c1 = 0, c2 = 0;
      for (size_t i = 0; i < kLane; i += 8) {
        uint64_t v0, v1, v2;
        std::memcpy(&v0, p + i, 8);
        std::memcpy(&v1, p + kLane + i, 8);
        std::memcpy(&v2, p + 2 * kLane + i, 8);
        c = _mm_crc32_u64(c, v0);
        c1 = _mm_crc32_u64(c1, v1);
        c2 = _mm_crc32_u64(c2, v2);
      }
      c = ShiftOverLane(kShift, static_cast<uint32_t>(c)) ^ static_cast<uint32_t>(c1);
      c = ShiftOverLane(kShift, static_cast<uint32_t>(c)) ^ static_cast<uint32_t>(c2);
    }
  }
  return ~static_cast<uint32_t>(RawSse42(c, p, n));
}
#endif

}  // namespace

uint32_t Extend(uint32_t init, const char* data, size_t n) {
#if defined(__x86_64__)
  static const bool has_sse42 = __builtin_cpu_supports("sse4.2");
  if (has_sse42) return ExtendSse42(init, data, n);
#endif
  return ExtendPortable(init, data, n);
}

}  // namespace annals::crc32c
