// CRC-32C (Castagnoli), hardware accelerated with SSE4.2 when available.
// Used to frame log records (see log/segment_format.h). Thread-safe.
#ifndef ANNALS_COMMON_CRC32C_H_
#define ANNALS_COMMON_CRC32C_H_

#include <cstddef>
#include <cstdint>

namespace annals::crc32c {

// Returns the CRC-32C of data[0,n) continuing from `init` (0 to start).
uint32_t Extend(uint32_t init, const char* data, size_t n);
inline uint32_t Value(const char* data, size_t n) { return Extend(0, data, n); }

// Masked form stored on disk (as leveldb does) so that a CRC of data that
// itself contains CRCs does not degenerate.
inline uint32_t Mask(uint32_t crc) {
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}
inline uint32_t Unmask(uint32_t masked) {
  uint32_t rot = masked - 0xa282ead8u;
  return (rot >> 17) | (rot << 15);
}

}  // namespace annals::crc32c

#endif  // ANNALS_COMMON_CRC32C_H_
