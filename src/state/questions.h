// Questions: the answers annals gives from its projections (SPEC.md
// "Questions"): state at T, pod by IP at T, flow enrichment, provenance
// (history) and search with group-by. Every answer names the ledger indexes
// it rests on; bodies are read back from the log by index.
//
// Thread-safe (reads the StateStore under its shared lock). Does not own the
// ledger or the store.
#ifndef ANNALS_STATE_QUESTIONS_H_
#define ANNALS_STATE_QUESTIONS_H_

#include <cstdint>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "common/time_util.h"
#include "ledger/ledger.h"
#include "state/state_store.h"

namespace annals::state {

// Equality-based label selector: "a=b,c==d,e!=f,g,!h".
class LabelSelector {
 public:
  static StatusOr<LabelSelector> Parse(std::string_view s);
  bool Matches(const nlohmann::json& labels) const;
  bool empty() const { return reqs_.empty(); }

 private:
  struct Req {
    std::string key, value;
    enum Op { kEq, kNe, kExists, kNotExists } op;
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
};

struct HistoryQuery {
  std::string kind, namespace_, name;
  bool children = false;
  std::vector<std::string> verbs;  // empty: writes only (create/update/patch/delete...)
  Micros since = std::numeric_limits<int64_t>::min(), until = kNever;
};

struct EventQuery {
  Micros from = std::numeric_limits<int64_t>::min(), to = kNever;
  std::string user, verb, resource, namespace_, name, stage, q, group_by;
  int code = 0;
  uint64_t limit = 100;
  uint64_t cursor = 0;  // continue with ledger indexes > cursor - 1 (0 = start)
};

class Questions {
 public:
  Questions(ledger::Ledger* ledger, const StateStore* store) : ledger_(ledger), store_(store) {}

  // JSON text: {"at":..,"count":N,"objects":[...]} with each object's body
  // spliced in as stored (no re-encoding: whole-cluster answers are large).
  StatusOr<std::string> State(const StateQuery& q, std::vector<uint64_t>* evidence) const;
  // NotFound (with nearest intervals in *nearest) when no pod held the IP.
  StatusOr<nlohmann::json> WhoIs(std::string_view ip, Micros at, nlohmann::json* nearest) const;
  StatusOr<nlohmann::json> History(const HistoryQuery& q) const;
  StatusOr<nlohmann::json> Events(const EventQuery& q) const;
  // One flow line in, the same line out with src_workload/dst_workload.
  StatusOr<std::string> EnrichFlow(std::string_view line) const;

  // Receipt for evidence: the current checkpoint and an inclusion proof
  // for each index it covers.
  nlohmann::json Receipt(const std::vector<uint64_t>& indexes) const;

  // The object body at ledger index (the event's responseObject).
  StatusOr<nlohmann::json> BodyAt(uint64_t index) const;

 private:
  // Caller holds the store lock (shared).
  nlohmann::json Workload(uint32_t pod, Micros at, const Version& v) const;
  nlohmann::json OwnerChain(const nlohmann::json& body, Micros at, std::vector<uint64_t>* evidence) const;
  nlohmann::json SelectingServices(uint32_t ns, const nlohmann::json& labels, Micros at,
                                   std::vector<uint64_t>* evidence) const;
  StatusOr<nlohmann::json> EventAt(uint64_t index) const;
  // The payload of the entry at index (from the blob store if external).
  StatusOr<std::string> PayloadAt(uint64_t index) const;

  ledger::Ledger* ledger_;
  const StateStore* store_;
  struct PodCard {
    std::string ns, name, uid, service_account, node;
    std::vector<std::pair<std::string, std::string>> labels;
    nlohmann::json owner;  // top owner {kind,name,uid} or null
  };
  // Cached by the ledger index of the version (a version never changes).
  // Copies out of the caches: another thread may clear them at any time.
  PodCard Card(uint32_t pod, const Version& v) const;
  std::vector<std::pair<std::string, std::string>> Selector(uint64_t index) const;
  std::string FlowWorkload(std::string_view ip, Micros t) const;

  mutable std::mutex cache_mu_;
  mutable std::unordered_map<uint64_t, PodCard> cards_;
  mutable std::unordered_map<uint64_t, std::vector<std::pair<std::string, std::string>>> selectors_;
};

}  // namespace annals::state

#endif  // ANNALS_STATE_QUESTIONS_H_
