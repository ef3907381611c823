// Listen addresses: "host:port", "[v6]:port", ":port". Pure, thread-safe.
#ifndef ANNALS_COMMON_NET_UTIL_H_
#define ANNALS_COMMON_NET_UTIL_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "common/status.h"

namespace annals {

// (host, port); an empty host is "0.0.0.0" and "localhost" is "127.0.0.1".
StatusOr<std::pair<std::string, uint16_t>> SplitHostPort(std::string_view addr);

}  // namespace annals

#endif  // ANNALS_COMMON_NET_UTIL_H_
