#include "common/find_bytes.h"

#include <string.h>

#include <cstring>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace annals {
namespace {

size_t ByMemmem(std::string_view s, std::string_view part) {
  const void* at = ::memmem(s.data(), s.size(), part.data(), part.size());
  return at ? static_cast<size_t>(static_cast<const char*>(at) - s.data()) : std::string_view::npos;
}

#if defined(__x86_64__)
// 32 positions at a time: a position is a candidate if two of the part's
// bytes (a and b, inside its quotes when it has them: the quotes are
// everywhere in JSON) are where they would be; only candidates are
// compared whole. The tail, shorter than a stride, goes to memmem.
__attribute__((target("avx2"))) size_t ByAvx2(std::string_view s, std::string_view part) {
  const size_t m = part.size();
  const size_t a = m >= 4 ? 1 : 0;
  const size_t b = m >= 4 ? m - 2 : m - 1;
  const __m256i want_a = _mm256_set1_epi8(part[a]);
  const __m256i want_b = _mm256_set1_epi8(part[b]);
  const char* p = s.data();
  const size_t n = s.size();
  size_t i = 0;
  for (; i + m + 31 <= n; i += 32) {
    const __m256i at_a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + a));
    const __m256i at_b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + b));
    uint32_t hits = static_cast<uint32_t>(
        _mm256_movemask_epi8(_mm256_and_si256(_mm256_cmpeq_epi8(at_a, want_a), _mm256_cmpeq_epi8(at_b, want_b))));
    while (hits != 0) {
      const size_t k = i + static_cast<size_t>(__builtin_ctz(hits));
      if (std::memcmp(p + k, part.data(), m) == 0) return k;
      hits &= hits - 1;
    }
  }
  const size_t rest = ByMemmem(s.substr(i), part);
  return rest == std::string_view::npos ? rest : i + rest;
}

const bool kHasAvx2 = __builtin_cpu_supports("avx2");
#endif

}  // namespace

size_t FindBytes(std::string_view s, std::string_view part) {
  if (part.empty()) return 0;
  if (part.size() > s.size()) return std::string_view::npos;
#if defined(__x86_64__)
  if (part.size() >= 2 && kHasAvx2) return ByAvx2(s, part);
#endif
  return ByMemmem(s, part);
}

}  // namespace annals
