// Change: one ledger entry as subscribers and forwarders see it — the facts
// filters look at, and the encoded Server-Sent Events frame that every
// subscriber shares (docs/format/watch.md). Built once per entry from the
// entry's metadata and payload and the state projection (what changed).
//
// Immutable once built; shared between threads through shared_ptr<const>.
#ifndef ANNALS_STREAM_CHANGE_H_
#define ANNALS_STREAM_CHANGE_H_

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"
#include "common/time_util.h"
#include "ledger/ledger.h"
#include "state/questions.h"
#include "state/state_store.h"

namespace annals::stream {

struct Change {
  uint64_t index = 0;
  std::string type;  // metadata "type": "k8s.audit", a CloudEvent type, or ""
  // Audit events (type "k8s.audit"); empty otherwise.
  std::string verb, user, resource, namespace_, name, stage, kind, uid;
  std::string cluster;  // the cluster its entry was filed under ("" if none); any type
  int code = 0;
  Micros time = 0;         // audit stageTimestamp, else receive time
  nlohmann::json labels;   // the object's metadata.labels; null without an object
  std::string frame;       // "id: N\ndata: <json>\n\n"
  size_t data_begin = 0, data_size = 0;

  // The JSON of the data line (one line).
  std::string_view data() const { return std::string_view(frame).substr(data_begin, data_size); }
};

// What a Change is built from. The store must have applied the entry (the
// previous version of the object is looked up there).
struct ChangeSources {
  ledger::Ledger* ledger;
  const state::StateStore* store;
  const state::Questions* questions;
};

// Builds the Change for the durable entry `entry` at `index`.
StatusOr<std::shared_ptr<const Change>> MakeChange(const ChangeSources& src, uint64_t index,
                                                   std::string_view entry);

// Which changes a subscriber wants; empty fields match anything. Field
// names as /v1/events (resource canonical, see kube::ResourceFor);
// `selector` matches the labels of the object the event carries.
struct ChangeFilter {
  std::string type, user, verb, resource, namespace_, name, stage, cluster;
  int code = 0;
  std::optional<state::LabelSelector> selector;

  bool Matches(const Change& c) const;
};

}  // namespace annals::stream

#endif  // ANNALS_STREAM_CHANGE_H_
