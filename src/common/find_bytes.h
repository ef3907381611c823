// Substring search for JSON bytes by memmem. Not string_view::find to look
// for a JSON key or member: find looks for the pattern's first character
// and compares at each, and in JSON that character ('"') comes every few
// bytes (three such finds were a third of the dedup index's catch-up).
#ifndef ANNALS_COMMON_FIND_BYTES_H_
#define ANNALS_COMMON_FIND_BYTES_H_

#include <string.h>

#include <cstddef>
#include <string_view>

namespace annals {

// Where `part` first occurs in `s`, npos if nowhere (0 for an empty part).
inline size_t FindBytes(std::string_view s, std::string_view part) {
  if (part.empty()) return 0;
  const void* at = ::memmem(s.data(), s.size(), part.data(), part.size());
  return at ? static_cast<size_t>(static_cast<const char*>(at) - s.data()) : std::string_view::npos;
}

inline bool ContainsBytes(std::string_view s, std::string_view part) {
  return FindBytes(s, part) != std::string_view::npos;
}

}  // namespace annals

#endif  // ANNALS_COMMON_FIND_BYTES_H_
