#include "api/http.h"

#include <strings.h>

#include <nlohmann/json.hpp>

namespace annals::api {

std::string HttpRequest::Header(std::string_view name) const {
  for (const auto& [k, v] : headers)
    if (k.size() == name.size() && ::strncasecmp(k.data(), name.data(), k.size()) == 0) return v;
  return "";
}

int HttpStatusFor(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return 200;
    case StatusCode::kInvalidArgument: return 400;
    case StatusCode::kOutOfRange: return 400;
    case StatusCode::kNotFound: return 404;
    case StatusCode::kAlreadyExists: return 409;
    case StatusCode::kFailedPrecondition: return 412;
    case StatusCode::kResourceExhausted: return 503;
    case StatusCode::kUnavailable: return 503;
    case StatusCode::kUnauthenticated: return 401;
    case StatusCode::kPermissionDenied: return 403;
    case StatusCode::kDataLoss: return 500;
    case StatusCode::kInternal: return 500;
  }
  return 500;
}

HttpResponse ErrorResponse(int http_status, std::string_view message) {
  HttpResponse r;
  r.status = http_status;
  r.body = nlohmann::json{{"error", std::string(message)}}.dump(
               -1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  return r;
}

HttpResponse ErrorResponse(const Status& s) {
  HttpResponse r = ErrorResponse(HttpStatusFor(s.code()), s.message());
  if (s.code() == StatusCode::kResourceExhausted || s.code() == StatusCode::kUnavailable)
    r.headers.emplace_back("Retry-After", "1");
  return r;
}

StatusOr<std::string> PercentDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '+') {
      out += ' ';
    } else if (c == '%') {
      if (i + 2 >= s.size()) return InvalidArgumentError("bad percent-encoding in query");
      auto hex = [](char h) -> int {
        if (h >= '0' && h <= '9') return h - '0';
        if (h >= 'a' && h <= 'f') return h - 'a' + 10;
        if (h >= 'A' && h <= 'F') return h - 'A' + 10;
        return -1;
      };
      int hi = hex(s[i + 1]), lo = hex(s[i + 2]);
      if (hi < 0 || lo < 0) return InvalidArgumentError("bad percent-encoding in query");
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else {
      out += c;
    }
  }
  return out;
}

const std::string* Target::Param(std::string_view name) const {
  for (const auto& [k, v] : params)
    if (k == name) return &v;
  return nullptr;
}

StatusOr<Target> ParseTarget(std::string_view target) {
  Target t;
  auto q = target.find('?');
  t.path = std::string(target.substr(0, q));
  if (q == std::string_view::npos) return t;
  std::string_view rest = target.substr(q + 1);
  while (!rest.empty()) {
    auto amp = rest.find('&');
    std::string_view kv = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
    if (kv.empty()) continue;
    auto eq = kv.find('=');
    ASSIGN_OR_RETURN(std::string k, PercentDecode(kv.substr(0, eq)));
    std::string v;
    if (eq != std::string_view::npos) {
      ASSIGN_OR_RETURN(v, PercentDecode(kv.substr(eq + 1)));
    }
    t.params.emplace_back(std::move(k), std::move(v));
  }
  return t;
}

}  // namespace annals::api
