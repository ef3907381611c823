#include "common/net_util.h"

#include "common/bytes.h"

namespace annals {

StatusOr<std::pair<std::string, uint16_t>> SplitHostPort(std::string_view addr) {
  std::string host;
  std::string_view port;
  if (!addr.empty() && addr[0] == '[') {
    auto close = addr.find(']');
    if (close == std::string_view::npos || close + 1 >= addr.size() || addr[close + 1] != ':')
      return InvalidArgumentError("bad address " + std::string(addr));
    host = std::string(addr.substr(1, close - 1));
    port = addr.substr(close + 2);
  } else {
    auto colon = addr.rfind(':');
    if (colon == std::string_view::npos) return InvalidArgumentError("address needs host:port: " + std::string(addr));
    host = std::string(addr.substr(0, colon));
    port = addr.substr(colon + 1);
  }
  auto p = ParseDecimal(port);
  if (!p || *p > 65535) return InvalidArgumentError("bad port in " + std::string(addr));
  if (host.empty()) host = "0.0.0.0";
  if (host == "localhost") host = "127.0.0.1";
  return std::make_pair(host, static_cast<uint16_t>(*p));
}

}  // namespace annals
