// WatchState: what the watch collector has made durable for one resource:
// the last resourceVersion it appended up to (where a watch resumes) and
// the objects it last knew (uid -> resourceVersion, namespace, name), which
// a relist is compared with. Kept in DIR/<resource>.state, an append-only
// journal appended after every durable batch and rewritten atomically
// after a relist or on open (docs/format/watch-state.md).
//
// Thread-compatible: owned by the one collector thread of its resource.
#ifndef ANNALS_WATCH_WATCH_STATE_H_
#define ANNALS_WATCH_WATCH_STATE_H_

#include <string>
#include <unordered_map>
#include <vector>

#include "common/status.h"

namespace annals::watch {

inline constexpr char kWatchStateMagic[] = "annals-watch-state 1";

class WatchState {
 public:
  struct Known {
    std::string rv, ns, name;
  };
  struct Change {
    std::string uid;
    bool gone = false;
    Known known;
  };

  // Loads (or creates) the journal at `path` and compacts it. A torn last
  // line (a crash mid-write) is ignored; a file that is not a watch state
  // is DataLoss.
  static StatusOr<WatchState> Open(const std::string& path);

  const std::string& rv() const { return rv_; }
  const std::unordered_map<std::string, Known>& known() const { return known_; }
  const std::string& kind() const { return kind_; }
  const std::string& api_version() const { return api_version_; }

  // Appends the changes of one durable batch and the new resume point.
  Status Record(std::vector<Change> changes, const std::string& rv);
  // Sets the kind and apiVersion of the resource's objects (journalled).
  Status SetKind(const std::string& kind, const std::string& api_version);
  // Replaces everything (after a relist): atomic rewrite.
  Status Reset(std::unordered_map<std::string, Known> known, const std::string& rv);

  // Parses journal text into a state (exposed for tests and the fuzzer).
  static StatusOr<WatchState> Parse(std::string_view text);
  std::string Serialize() const;

 private:
  Status AppendLines(const std::string& lines);

  std::string path_;
  std::string rv_, kind_, api_version_;
  std::unordered_map<std::string, Known> known_;
};

}  // namespace annals::watch

#endif  // ANNALS_WATCH_WATCH_STATE_H_
