// SHA-256 through OpenSSL 3 (uses SHA-NI where the CPU has it).
// Thread-safe: no shared mutable state after first use.
#ifndef ANNALS_COMMON_SHA256_H_
#define ANNALS_COMMON_SHA256_H_

#include <array>
#include <string_view>

namespace annals {

using Hash = std::array<unsigned char, 32>;

Hash Sha256(std::string_view data);
// SHA-256 of the concatenation of the parts, without copying them together.
Hash Sha256Parts(std::initializer_list<std::string_view> parts);

inline std::string_view HashBytes(const Hash& h) {
  return {reinterpret_cast<const char*>(h.data()), h.size()};
}

}  // namespace annals

#endif  // ANNALS_COMMON_SHA256_H_
