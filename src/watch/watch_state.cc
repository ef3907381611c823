#include "watch/watch_state.h"

#include <fcntl.h>
#include <unistd.h>

#include "common/file_util.h"

namespace annals::watch {

namespace {

// Fields are separated by one space; none of them may hold a space or a
// newline (uids, resourceVersions and object names never do; an empty
// namespace is written "-").
// A plain loop: find_first_of calls memchr over the set for every byte.
bool Safe(const std::string& s) {
  for (char c : s)
    if (c == ' ' || c == '\n' || c == '\r') return false;
  return !s.empty();
}

std::vector<std::string_view> Fields(std::string_view line) {
  std::vector<std::string_view> f;
  while (!line.empty()) {
    auto sp = line.find(' ');
    f.push_back(line.substr(0, sp));
    if (sp == std::string_view::npos) break;
    line.remove_prefix(sp + 1);
  }
  return f;
}

void AppendKnownLine(std::string* out, const std::string& uid, const WatchState::Known& k) {
  for (std::string_view part : {std::string_view("+ "), std::string_view(uid), std::string_view(" "),
                                std::string_view(k.rv), std::string_view(" "),
                                k.ns.empty() ? std::string_view("-") : std::string_view(k.ns),
                                std::string_view(" "), std::string_view(k.name), std::string_view("\n")})
    out->append(part);
}

}  // namespace

StatusOr<WatchState> WatchState::Parse(std::string_view text) {
  WatchState s;
  size_t line_no = 0;
  bool header = false;
  while (!text.empty()) {
    auto nl = text.find('\n');
    if (nl == std::string_view::npos) break;  // torn last line: ignored
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl + 1);
    ++line_no;
    if (!header) {
      if (line != kWatchStateMagic) return DataLossError("not an annals watch state (line 1)");
      header = true;
      continue;
    }
    auto f = Fields(line);
    auto bad = [&] { return DataLossError("watch state: bad line " + std::to_string(line_no)); };
    if (f.empty()) return bad();
    if (f[0] == "R" && f.size() == 2) {
      s.rv_ = std::string(f[1]);
    } else if (f[0] == "K" && f.size() == 3) {
      s.kind_ = std::string(f[1]);
      s.api_version_ = std::string(f[2]);
    } else if (f[0] == "+" && f.size() == 5 && !f[1].empty() && !f[2].empty()) {
      s.known_[std::string(f[1])] =
          Known{std::string(f[2]), f[3] == "-" ? "" : std::string(f[3]), std::string(f[4])};
    } else if (f[0] == "-" && f.size() == 2) {
      s.known_.erase(std::string(f[1]));
    } else {
      return bad();
    }
  }
  if (!header && line_no == 0 && !text.empty()) return DataLossError("not an annals watch state");
  return s;
}

std::string WatchState::Serialize() const {
  std::string out = std::string(kWatchStateMagic) + "\n";
  if (!kind_.empty()) out += "K " + kind_ + " " + api_version_ + "\n";
  for (const auto& [uid, k] : known_) AppendKnownLine(&out, uid, k);
  if (!rv_.empty()) out += "R " + rv_ + "\n";
  return out;
}

StatusOr<WatchState> WatchState::Open(const std::string& path) {
  WatchState s;
  if (FileExists(path)) {
    ASSIGN_OR_RETURN(std::string text, ReadFileToString(path));
    auto parsed = Parse(text);
    if (!parsed.ok()) return DataLossError(path + ": " + parsed.status().message());
    s = std::move(*parsed);
  }
  s.path_ = path;
  RETURN_IF_ERROR(WriteFileAtomic(path, s.Serialize(), 0644));
  return s;
}

Status WatchState::AppendLines(const std::string& lines) {
  int fd = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  if (fd < 0) return ErrnoError("open " + path_, errno);
  // Not fdatasync'ed: losing the tail of the journal only makes the next
  // start resume from an older resourceVersion, and what the API server
  // sends again has the same dedup keys and bytes, so it is stored once.
  Status st = WriteAll(fd, lines, path_);
  ::close(fd);
  return st;
}

Status WatchState::Record(std::vector<Change> changes, const std::string& rv) {
  std::string lines;
  lines.reserve(changes.size() * 96);
  for (auto& c : changes) {
    if (!Safe(c.uid)) continue;
    if (c.gone) {
      lines += "- " + c.uid + "\n";
      known_.erase(c.uid);
    } else if (Safe(c.known.rv) && Safe(c.known.name) && (c.known.ns.empty() || Safe(c.known.ns))) {
      AppendKnownLine(&lines, c.uid, c.known);
      known_.insert_or_assign(std::move(c.uid), std::move(c.known));
    }
  }
  if (Safe(rv)) {
    lines += "R " + rv + "\n";
    rv_ = rv;
  }
  if (lines.empty()) return OkStatus();
  return AppendLines(lines);
}

Status WatchState::SetKind(const std::string& kind, const std::string& api_version) {
  if (kind == kind_ && api_version == api_version_) return OkStatus();
  if (!Safe(kind) || !Safe(api_version)) return OkStatus();
  kind_ = kind;
  api_version_ = api_version;
  return AppendLines("K " + kind + " " + api_version + "\n");
}

Status WatchState::Reset(std::unordered_map<std::string, Known> known, const std::string& rv) {
  known_ = std::move(known);
  rv_ = rv;
  return WriteFileAtomic(path_, Serialize(), 0644);
}

}  // namespace annals::watch
