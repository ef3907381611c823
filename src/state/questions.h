// Questions: the answers annals gives from its projections (SPEC.md
// "Questions"). State at T and pod by IP at T come from the StateStore,
// with each object's body read back from the log (or blob store) by index.
// Flow enrichment is a FlowEnricher's (flow_enricher.h): from the
// StateStore alone, through a render cache (no log reads). Provenance
// (history) and search with group-by are in questions_events.cc: history
// takes the ledger indexes from the on-disk event index (names, children
// and previous versions from the StateStore; for an object only the watch
// collector saw, its versions) and reads each event from the log; search
// and group-by read only event index rows and per-hour counts. Answers
// name the ledger indexes they rest on, except group-by counts.
//
// Thread-safe (reads the StateStore under its shared lock). Does not own the
// ledger, the store or the event index.
#ifndef ANNALS_STATE_QUESTIONS_H_
#define ANNALS_STATE_QUESTIONS_H_

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "common/time_util.h"
#include "index/event_index.h"
#include "ledger/ledger.h"
#include "state/flow_enricher.h"
#include "state/state_store.h"

namespace annals::state {

class BodyImages;

// Equality-based label selector: "a=b,c==d,e!=f,g,!h".
// A Kubernetes label selector, as `kubectl -l` takes it: comma-separated
// requirements `key=value`, `key==value`, `key!=value`, `key`, `!key`,
// `key in (v1,v2)`, `key notin (v1,v2)`. Keys are qualified names
// (`[prefix/]name`), values label values; anything else is InvalidArgument
// naming what is wrong.
class LabelSelector {
 public:
  static StatusOr<LabelSelector> Parse(std::string_view s);
  // labels: a projected label set (StateStore::label_set).
  bool Matches(const LabelSet& labels, const Strings& strings) const;
  // labels: an object's metadata.labels as JSON (null or not an object: none).
  bool Matches(const nlohmann::json& labels) const;
  bool empty() const { return reqs_.empty(); }

 private:
  struct Req {
    std::string key, value;
    enum Op { kEq, kNe, kExists, kNotExists, kIn, kNotIn } op;
    std::vector<std::string> values;  // kIn, kNotIn
    // Does a label value (nullptr: the key is absent) satisfy this?
    bool Holds(const std::string* value) const;
  };
  std::vector<Req> reqs_;
};

// What changed from one version of an object to the next: a JSON Patch
// (RFC 6902) without the bookkeeping paths (resourceVersion, managedFields).
nlohmann::json WhatChanged(const nlohmann::json& before, const nlohmann::json& after);

struct StateQuery {
  Micros at = 0;
  std::string kind;       // "" = all
  std::string namespace_; // "" = all
  std::string selector;
  std::string cluster;  // "" = every cluster's objects
  // Paging: at most limit objects (0 = all) after the cursor (a previous
  // answer's next_cursor; "" = from the start).
  uint64_t limit = 0;
  std::string cursor;
  // false: each object's stored body is left out (no log reads; what a
  // list of names needs).
  bool bodies = true;
};

// A state answer's next_cursor: the last object's (resource, namespace,
// name, uid[, cluster]) (the cluster only when it has one), NUL-separated,
// in URL-safe base64 without padding. Decode refuses anything else
// (nullopt): it reads what a client sends back.
using StateCursor = std::tuple<std::string, std::string, std::string, std::string, std::string>;
std::string EncodeStateCursor(std::string_view resource, std::string_view ns, std::string_view name,
                              std::string_view uid, std::string_view cluster = {});
std::optional<StateCursor> DecodeStateCursor(std::string_view cursor);

struct HistoryQuery {
  std::string kind, namespace_, name;
  bool children = false;
  std::vector<std::string> verbs;  // empty: writes only (create/update/patch/delete...)
  Micros since = std::numeric_limits<int64_t>::min(), until = kNever;
  std::string cluster;  // "" = every cluster's
};

struct EventQuery {
  Micros from = std::numeric_limits<int64_t>::min(), to = kNever;
  std::string user, verb, resource, namespace_, name, stage, q, group_by;
  // The normalized view's own filters (docs/sources.md): cloud ("aws",
  // "gcp", "azure", or "kubernetes" for the cluster's audit events),
  // account, cluster, result, and service (a resource matched exactly, not
  // read as a Kubernetes kind).
  std::string cloud, account, cluster, result, service;
  int code = 0;
  uint64_t limit = 100;
  uint64_t cursor = 0;  // continue with ledger indexes > cursor - 1 (0 = start)
};

class Questions {
 public:
  // cache_sets: the flow enricher's render cache size (FlowEnricher).
  // events: the event index search and history read (may be nullptr
  // where neither is asked, as in flow enrichment alone).
  Questions(ledger::Ledger* ledger, const StateStore* store, const index::EventIndex* events,
            size_t cache_sets = size_t{1} << 18)
      : ledger_(ledger), store_(store), events_(events), flows_(store, cache_sets) {}
  Questions(const Questions&) = delete;
  Questions& operator=(const Questions&) = delete;

  // JSON text: {"at":..,"objects":[...],"count":N,"total":M,"applied":A
  // [,"next_cursor":C]} with each object's body spliced in as stored (no
  // re-encoding: whole-cluster answers are large). Objects are in
  // (resource, namespace, name, uid, cluster) order, each labelled with its
  // cluster when it has one; count is this page's, total
  // every object matching at T. InvalidArgument for a malformed cursor.
  // Bodies come from the body image chosen for T where it holds them
  // (never for an answer with evidence, which reads the log it proves).
  StatusOr<std::string> State(const StateQuery& q, std::vector<uint64_t>* evidence) const;
  // Where State finds bodies before reading the log (may be nullptr).
  // Set before questions are asked; must outlive this.
  void set_images(BodyImages* images) { images_ = images; }
  // Bodies State took from images and from the log, since the start.
  uint64_t bodies_from_images() const { return bodies_from_images_.load(std::memory_order_relaxed); }
  uint64_t bodies_from_log() const { return bodies_from_log_.load(std::memory_order_relaxed); }
  // NotFound (with nearest intervals in *nearest) when no pod held the IP.
  // cluster: only that cluster's pods ("" = any). When pods of several
  // clusters held it at once, the answer is the first cluster's (by name)
  // and "other_clusters" holds the others' answers, each labelled.
  StatusOr<nlohmann::json> WhoIs(std::string_view ip, Micros at, nlohmann::json* nearest,
                                 std::string_view cluster = {}) const;
  StatusOr<nlohmann::json> History(const HistoryQuery& q) const;
  // {"clusters":[names, sorted],"unnamed":B}: the clusters objects of the
  // projection are filed under, and whether some are filed under none.
  nlohmann::json Clusters() const;
  StatusOr<nlohmann::json> Events(const EventQuery& q) const;
  // Called, on the asking thread, when a question finds the event index
  // damaged (a block failing its checksum); the question answers
  // Unavailable and the caller rebuilds the index from the log.
  void OnIndexDamaged(std::function<void(const std::string&)> fn) { on_index_damaged_ = std::move(fn); }
  // Flow enrichment, answered by the FlowEnricher this owns.
  StatusOr<std::string> EnrichFlow(std::string_view line, std::string_view cluster = {}) const {
    return flows_.EnrichFlow(line, cluster);
  }
  Status EnrichFlows(std::string_view body, std::string* out, size_t* count = nullptr,
                     std::string_view cluster = {}) const {
    return flows_.EnrichFlows(body, out, count, cluster);
  }

  // Receipt for evidence: the current checkpoint and an inclusion proof
  // for each index it covers.
  nlohmann::json Receipt(const std::vector<uint64_t>& indexes) const;

  // The object body at ledger index (the event's responseObject).
  StatusOr<nlohmann::json> BodyAt(uint64_t index) const;

 private:
  // Caller holds the store lock (shared).
  // StateStore::Owners as JSON links, each owner's version index added to
  // *evidence.
  nlohmann::json OwnerChain(uint32_t cluster, const Version& v, Micros at, std::vector<uint64_t>* evidence) const;
  // WhoIs's answer for the interval iv (its pod held the address at `at`).
  StatusOr<nlohmann::json> PodAnswer(const IpKey& ip, Micros at, const IpInterval& iv) const;
  // The event at index, and the cluster its entry was filed under ("" if none).
  StatusOr<nlohmann::json> EventAt(uint64_t index, std::string* cluster) const;
  // A history row for a k8s.watch entry (null for any other entry).
  StatusOr<nlohmann::json> WatchRowAt(uint64_t index) const;

  ledger::Ledger* ledger_;
  const StateStore* store_;
  BodyImages* images_ = nullptr;
  mutable std::atomic<uint64_t> bodies_from_images_{0}, bodies_from_log_{0};
  const index::EventIndex* events_;
  std::function<void(const std::string&)> on_index_damaged_;
  // s, or for DataLoss from the event index: Unavailable, after telling
  // on_index_damaged_ (the log itself is intact; the index is rebuilt).
  Status IndexRead(Status s) const;

  FlowEnricher flows_;
};

}  // namespace annals::state

#endif  // ANNALS_STATE_QUESTIONS_H_
