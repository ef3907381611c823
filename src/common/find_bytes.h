// Substring search for JSON bytes. Not string_view::find to look for a JSON
// key or member: find looks for the pattern's first character and compares
// at each, and in JSON that character ('"') comes every few bytes (three
// such finds were a third of the dedup index's catch-up). Not memmem alone
// either: glibc's takes about a cycle a byte, and the projection looks for
// "impersonatedUser" in every payload (5% of its apply).
#ifndef ANNALS_COMMON_FIND_BYTES_H_
#define ANNALS_COMMON_FIND_BYTES_H_

#include <cstddef>
#include <string_view>

namespace annals {

// Where `part` first occurs in `s`, npos if nowhere (0 for an empty part).
size_t FindBytes(std::string_view s, std::string_view part);

inline bool ContainsBytes(std::string_view s, std::string_view part) {
  return FindBytes(s, part) != std::string_view::npos;
}

}  // namespace annals

#endif  // ANNALS_COMMON_FIND_BYTES_H_
