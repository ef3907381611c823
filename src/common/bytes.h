// Byte helpers: big-endian coding, base64 (RFC 4648 std, padded) and hex.
// Pure functions, thread-safe.
#ifndef ANNALS_COMMON_BYTES_H_
#define ANNALS_COMMON_BYTES_H_

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace annals {

inline void PutBigEndian16(std::string* dst, uint16_t v) {
  dst->push_back(static_cast<char>(v >> 8));
  dst->push_back(static_cast<char>(v));
}
inline void PutBigEndian32(std::string* dst, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) dst->push_back(static_cast<char>(v >> s));
}
inline void PutBigEndian64(std::string* dst, uint64_t v) {
  for (int s = 56; s >= 0; s -= 8) dst->push_back(static_cast<char>(v >> s));
}
// The 8 bytes at p.
inline void StoreBigEndian64(char* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<char>(v >> (56 - 8 * i));
}
inline uint16_t GetBigEndian16(const char* p) {
  auto u = reinterpret_cast<const unsigned char*>(p);
  return static_cast<uint16_t>((u[0] << 8) | u[1]);
}
inline uint32_t GetBigEndian32(const char* p) {
  auto u = reinterpret_cast<const unsigned char*>(p);
  return (uint32_t{u[0]} << 24) | (uint32_t{u[1]} << 16) | (uint32_t{u[2]} << 8) | u[3];
}
inline uint64_t GetBigEndian64(const char* p) {
  return (uint64_t{GetBigEndian32(p)} << 32) | GetBigEndian32(p + 4);
}

std::string Base64Encode(std::string_view in);
// Strict: standard alphabet, padding required, no whitespace.
std::optional<std::string> Base64Decode(std::string_view in);

// ASCII letters lowered, every other byte as it is (hex digests, key
// fingerprints: not a locale's idea of lower case).
std::string AsciiLower(std::string s);
// s without the JSON white space (space, tab, LF, CR) at either end.
std::string_view TrimJsonSpace(std::string_view s);
// At most n bytes of s, not cutting a UTF-8 sequence.
inline std::string_view ClipUtf8(std::string_view s, size_t n) {
  if (s.size() <= n) return s;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return s.substr(0, n);
}
// The fields of a line of a text config file: the runs between spaces and
// tabs (tokens files, witness policies).
std::vector<std::string_view> SplitFields(std::string_view line);

std::string HexEncode(std::string_view in);
std::optional<std::string> HexDecode(std::string_view in);

// Parses a non-negative decimal with no sign, no leading zeros (except "0"),
// and no overflow. The strict form C2SP notes and our URLs require.
std::optional<uint64_t> ParseDecimal(std::string_view s);
// A size in bytes: a decimal count with an optional unit K, M, G, T (powers
// of 1000) or KiB, MiB, GiB, TiB (of 1024), B allowed after the letter
// ("500MB", "10GiB", "4096"). nullopt for anything else or on overflow.
std::optional<uint64_t> ParseByteSize(std::string_view s);

}  // namespace annals

#endif  // ANNALS_COMMON_BYTES_H_
