#include "client/sse.h"

#include <cstring>

namespace annals::client {

bool SseParser::Feed(std::string_view bytes, const std::function<bool(const SseEvent&)>& on_event) {
  if (error_) return false;
  size_t i = 0;
  while (i < bytes.size()) {
    if (after_cr_) {
      after_cr_ = false;
      if (bytes[i] == '\n') {
        ++i;
        continue;
      }
    }
    const char* p = bytes.data() + i;
    size_t n = bytes.size() - i;
    const void* lf = std::memchr(p, '\n', n);
    const void* cr = std::memchr(p, '\r', n);
    const char* end = nullptr;
    if (lf && cr) end = static_cast<const char*>(lf < cr ? lf : cr);
    else end = static_cast<const char*>(lf ? lf : cr);
    if (!end) {
      if (line_.size() + n > kMaxLine) {
        error_ = true;
        return false;
      }
      line_.append(p, n);
      return true;
    }
    size_t len = static_cast<size_t>(end - p);
    after_cr_ = *end == '\r';
    i += len + 1;
    bool ok;
    if (line_.empty()) {
      ok = Line(std::string_view(p, len), on_event);
    } else {
      if (line_.size() + len > kMaxLine) {
        error_ = true;
        return false;
      }
      line_.append(p, len);
      ok = Line(line_, on_event);
      line_.clear();
    }
    if (!ok) return false;
  }
  return true;
}

bool SseParser::Line(std::string_view line, const std::function<bool(const SseEvent&)>& on_event) {
  if (line.empty()) {
    if (!has_data_) {
      cur_.event.clear();
      return true;
    }
    cur_.id = last_id_;
    bool go = on_event(cur_);
    cur_.data.clear();
    cur_.event.clear();
    has_data_ = false;
    return go;
  }
  if (line[0] == ':') {
    ++comments_;
    return true;
  }
  std::string_view field = line, value;
  size_t colon = line.find(':');
  if (colon != std::string_view::npos) {
    field = line.substr(0, colon);
    value = line.substr(colon + 1);
    if (!value.empty() && value[0] == ' ') value.remove_prefix(1);
  }
  if (field == "data") {
    if (has_data_) cur_.data += '\n';
    cur_.data.append(value);
    has_data_ = true;
  } else if (field == "event") {
    cur_.event.assign(value);
  } else if (field == "id") {
    if (value.find('\0') == std::string_view::npos) last_id_.assign(value);
  }
  // "retry" and unknown fields are ignored.
  return true;
}

}  // namespace annals::client
