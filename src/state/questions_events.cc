// Provenance (history) and search with group-by: the questions answered
// from the event index on disk (index::EventIndex), with the projection
// for object names, owners and previous versions.
#include <algorithm>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <unordered_map>

#include "ledger/entry.h"
#include "kube/resources.h"
#include "state/k8s_object.h"
#include "state/questions.h"

namespace annals::state {

using nlohmann::json;

namespace {

constexpr uint32_t kUnknown = 0xffffffffu;
// What cloud= and group_by=cloud call the events that name no cloud.
constexpr std::string_view kKubernetes = "kubernetes";

std::string Time(Micros t) { return FormatRfc3339(t); }

struct NameTriple {
  std::string resource, ns, name;
  bool operator<(const NameTriple& o) const {
    return std::tie(resource, ns, name) < std::tie(o.resource, o.ns, o.name);
  }
};

}  // namespace

Status Questions::IndexRead(Status s) const {
  if (s.code() != StatusCode::kDataLoss) return s;
  if (on_index_damaged_) on_index_damaged_(s.message());
  return UnavailableError("the event index is damaged and is being rebuilt from the log; ask again shortly (" +
                          s.message() + ")");
}

StatusOr<json> Questions::History(const HistoryQuery& q) const {
  const std::string resource = kube::ResourceFor(q.kind);
  // The names whose events make the answer: the object's own (in every
  // namespace that has one of that name when none is given) and, with
  // children, those of every object it owns or that belongs to its
  // application instance (looked up in the projection).
  std::set<NameTriple> names{{resource, q.namespace_, q.name}};
  std::vector<uint32_t> objects;  // the object(s) and, with children, what they own
  {
    std::shared_lock lock(store_->mutex());
    const Strings& S = store_->strings();
    const uint32_t r = S.Find(resource), ns = S.Find(q.namespace_), name = S.Find(q.name);
    // The clusters asked about: the one named, else every one.
    std::vector<uint32_t> clusters;
    if (q.cluster.empty()) {
      clusters = store_->clusters();
    } else if (const uint32_t c = S.Find(q.cluster); c != kUnknown) {
      clusters.push_back(c);
    }
    std::vector<uint32_t> roots;
    if (r != kUnknown && name != kUnknown) {
      if (!q.namespace_.empty()) {
        if (ns != kUnknown)
          for (uint32_t c : clusters)
            for (uint32_t id : store_->ByName(c, r, ns, name)) roots.push_back(id);
      } else {
        for (uint32_t id = 0; id < store_->object_count(); ++id) {
          const Object& o = store_->names(id);
          if (o.resource == r && o.name == name &&
              std::find(clusters.begin(), clusters.end(), o.cluster) != clusters.end()) {
            roots.push_back(id);
            names.insert({resource, S.Get(o.ns), q.name});
          }
        }
      }
    }
    std::vector<uint32_t> work = roots;
    std::set<uint32_t> seen;
    if (q.children)
      for (uint32_t root : roots)
        for (uint32_t id : store_->Instance(store_->names(root).cluster, store_->names(root).ns, q.name))
          work.push_back(id);
    while (!work.empty()) {
      uint32_t id = work.back();
      work.pop_back();
      if (!seen.insert(id).second) continue;
      objects.push_back(id);
      if (!q.children) continue;
      const Object& o = store_->object(id);
      names.insert({S.Get(o.resource), S.Get(o.ns), S.Get(o.name)});
      for (uint32_t c : store_->Children(o.cluster, o.uid)) work.push_back(c);
    }
  }
  const bool known_object = !objects.empty();
  if (q.namespace_.empty()) {
    // Names with events but no object in the projection (a Status answer,
    // a delete of an object seen before the log began) count too.
    auto namespaces = events_->NamespacesOf(resource, q.name);
    if (!namespaces.ok()) return IndexRead(namespaces.status());
    for (const auto& ns : *namespaces) names.insert({resource, ns, q.name});
  }
  std::vector<uint64_t> indexes;
  for (const auto& n : names) {
    auto found = events_->EventsFor(n.resource, n.ns, n.name);
    if (!found.ok()) return IndexRead(found.status());
    indexes.insert(indexes.end(), found->begin(), found->end());
  }
  if (indexes.empty() && !known_object)
    return NotFoundError("the ledger holds nothing about " + q.kind + "/" + q.name +
                         (q.namespace_.empty() ? " in any namespace" : " in namespace " + q.namespace_));
  // Known only from the watch collector (no audit event names it): its
  // versions, as the collector saw them, are its history.
  const bool from_watch = indexes.empty();
  if (from_watch) {
    std::shared_lock lock(store_->mutex());
    for (uint32_t id : objects)
      for (const Version& v : store_->object(id).versions) indexes.push_back(v.index);
  }
  std::sort(indexes.begin(), indexes.end());
  indexes.erase(std::unique(indexes.begin(), indexes.end()), indexes.end());
  static const std::set<std::string> kReads = {"get", "list", "watch"};
  json rows = json::array();
  for (uint64_t i : indexes) {
    if (from_watch) {
      ASSIGN_OR_RETURN(json row, WatchRowAt(i));
      if (row.is_null()) continue;
      if (!q.cluster.empty() && row.value("cluster", "") != q.cluster) continue;
      Micros t = ParseRfc3339(row["time"].get<std::string>()).value_or(0);
      if (t < q.since || t > q.until) continue;
      if (!q.verbs.empty() &&
          std::find(q.verbs.begin(), q.verbs.end(), row["verb"].get<std::string>()) == q.verbs.end())
        continue;
      rows.push_back(std::move(row));
      continue;
    }
    std::string cluster;
    ASSIGN_OR_RETURN(json ev, EventAt(i, &cluster));
    if (!q.cluster.empty() && cluster != q.cluster) continue;
    const std::string stage = ev.value("stage", "");
    if (stage != "ResponseComplete" && stage != "Panic") continue;
    const std::string verb = ev.value("verb", "");
    if (q.verbs.empty()) {
      if (kReads.count(verb)) continue;
    } else if (std::find(q.verbs.begin(), q.verbs.end(), verb) == q.verbs.end()) {
      continue;
    }
    std::string ts = ev.value("stageTimestamp", ev.value("timestamp", ""));
    Micros t = ParseRfc3339(ts).value_or(0);
    if (t < q.since || t > q.until) continue;
    json ref = ev.value("objectRef", json::object());
    json user = ev.value("user", json::object());
    json row{{"index", i},
             {"time", ts},
             {"verb", verb},
             {"resource", ref.value("resource", "")},
             {"subresource", ref.value("subresource", "")},
             {"namespace", ref.value("namespace", "")},
             {"name", ref.value("name", "")},
             {"user", {{"username", user.value("username", "")},
                       {"groups", user.value("groups", json::array())},
                       {"uid", user.value("uid", "")}}},
             {"impersonated_user", ev.contains("impersonatedUser") ? ev["impersonatedUser"] : json()},
             {"source_ips", ev.value("sourceIPs", json::array())},
             {"user_agent", ev.value("userAgent", "")},
             {"code", ev.contains("responseStatus") ? ev["responseStatus"].value("code", 0) : 0}};
    std::string uid = ref.value("uid", "");
    if (ev.contains("responseObject") && ev["responseObject"].is_object()) {
      const json& obj = ev["responseObject"];
      if (obj.contains("metadata")) uid = obj["metadata"].value("uid", uid);
      if (row["name"].get<std::string>().empty() && obj.contains("metadata"))
        row["name"] = obj["metadata"].value("name", "");
      // What changed: a JSON Patch from the previous version of this uid.
      std::shared_lock lock(store_->mutex());
      const uint32_t c = store_->strings().Find(cluster);
      int64_t id = c == kUnknown ? -1 : store_->FindUid(c, uid);
      if (id >= 0) {
        const Object& o = store_->object(static_cast<uint32_t>(id));
        auto it = std::find_if(o.versions.begin(), o.versions.end(),
                               [i](const Version& v) { return v.index == i; });
        if (it != o.versions.end() && it != o.versions.begin()) {
          uint64_t prev_index = (it - 1)->index;
          lock.unlock();
          auto prev = BodyAt(prev_index);
          if (prev.ok() && prev->is_object()) {
            row["changes"] = WhatChanged(*prev, obj);
            row["previous_index"] = prev_index;
          }
        } else if (it == o.versions.begin()) {
          row["changes"] = json::array({json{{"op", "add"}, {"path", "/"}}});  // created
        }
      }
    }
    row["uid"] = uid;
    if (!cluster.empty()) row["cluster"] = cluster;
    rows.push_back(std::move(row));
  }
  // Newest last: by event time, then by ledger index.
  std::stable_sort(rows.begin(), rows.end(), [](const json& a, const json& b) {
    auto ta = ParseRfc3339(a["time"].get<std::string>()).value_or(0);
    auto tb = ParseRfc3339(b["time"].get<std::string>()).value_or(0);
    return ta != tb ? ta < tb : a["index"].get<uint64_t>() < b["index"].get<uint64_t>();
  });
  if (rows.empty() && !known_object && !q.cluster.empty())
    return NotFoundError("the ledger holds nothing about " + q.kind + "/" + q.name + " in cluster " + q.cluster);
  json answer{{"kind", q.kind}, {"namespace", q.namespace_}, {"name", q.name}, {"count", rows.size()},
              {"events", rows}};
  if (!q.cluster.empty()) answer["cluster"] = q.cluster;
  if (from_watch) answer["source"] = "k8s-watch";
  return answer;
}

json Questions::Clusters() const {
  std::shared_lock lock(store_->mutex());
  std::vector<std::string> names;
  bool unnamed = false;
  for (uint32_t c : store_->clusters()) {
    if (c == 0) {
      unnamed = true;
    } else {
      names.push_back(store_->strings().Get(c));
    }
  }
  std::sort(names.begin(), names.end());
  return json{{"clusters", names}, {"unnamed", unnamed}};
}

StatusOr<json> Questions::WatchRowAt(uint64_t index) const {
  ASSIGN_OR_RETURN(std::string raw, ledger_->ReadEntry(index));
  ASSIGN_OR_RETURN(auto d, ledger::DecodeEntry(raw));
  json meta = json::parse(d.meta, nullptr, false);
  if (!meta.is_object() || meta.value("type", "") != "k8s.watch" || !meta.contains("watch")) return json();
  const json& w = meta["watch"];
  std::string event = w.value("event", "");
  // A watch event has no user: the collector saw the change, not who made it.
  json row{{"index", index},
              {"time", meta.value("rt", "")},
              {"verb", event},
              {"resource", w.value("resource", "")},
              {"subresource", ""},
              {"namespace", w.value("namespace", "")},
              {"name", w.value("name", "")},
              {"user", {{"username", ""}, {"groups", json::array()}, {"uid", ""}}},
              {"impersonated_user", json()},
              {"source_ips", json::array()},
              {"user_agent", ""},
              {"code", 0},
              {"uid", w.value("uid", "")},
              {"resource_version", w.value("rv", "")},
              {"source", "k8s-watch"}};
  if (meta.contains("cluster") && meta["cluster"].is_string()) row["cluster"] = meta["cluster"];
  return row;
}


namespace {

// Search's filters on one row.
struct RowFilter {
  RowFilter(const EventQuery& query, std::string res)
      : q(query), resource(std::move(res)), kubernetes(query.cloud == kKubernetes) {
    // verb: one verb or a comma-separated list of them.
    for (size_t pos = 0; !q.verb.empty() && pos != std::string::npos;) {
      size_t comma = q.verb.find(',', pos);
      std::string v = q.verb.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
      if (!v.empty()) verbs.push_back(std::move(v));
      pos = comma == std::string::npos ? comma : comma + 1;
    }
  }
  const EventQuery& q;
  std::string resource;
  bool kubernetes;  // cloud=kubernetes: the rows that name no cloud
  std::vector<std::string> verbs;
  bool only_time() const { return q.namespace_.empty() && only_time_and_namespace(); }
  bool only_time_and_namespace() const {
    return q.user.empty() && verbs.empty() && resource.empty() && q.name.empty() && q.stage.empty() &&
           q.code == 0 && q.q.empty() && q.cloud.empty() && q.account.empty() && q.cluster.empty() &&
           q.result.empty();
  }
  // A filter on a field the index counts per hour (and per namespace):
  // user (as authenticated or impersonated: two counted fields, each event
  // under one), verbs, resource or code, with the values it accepts.
  struct Counted {
    std::vector<index::EventIndex::Field> fields;
    std::vector<std::string> values;
  };
  // Besides time and namespace, a filter on exactly that one field.
  std::optional<Counted> OneCountedField() const {
    if (!q.name.empty() || !q.stage.empty() || !q.q.empty() || !q.cluster.empty() || !q.result.empty() ||
        kubernetes || (!q.namespace_.empty() && (!q.cloud.empty() || !q.account.empty())))
      return std::nullopt;
    if (int(!q.user.empty()) + int(!verbs.empty()) + int(!resource.empty()) + int(q.code != 0) +
            int(!q.cloud.empty()) + int(!q.account.empty()) !=
        1)
      return std::nullopt;
    return AnyCountedField();
  }
  // One counted field among the filters, whatever else is asked: an hour
  // where it counts nothing holds no match (the most selective first).
  std::optional<Counted> AnyCountedField() const {
    using F = index::EventIndex::Field;
    // Cloud and account have no per-namespace counts (cloud records have
    // no namespace): with a namespace they are filters on the rows only.
    const bool in_ns = !q.namespace_.empty();
    if (!q.user.empty()) return Counted{{F::kUser, F::kImpersonated}, {q.user}};
    if (!q.account.empty() && !in_ns) return Counted{{F::kAccount}, {q.account}};
    if (!resource.empty()) return Counted{{F::kResource}, {resource}};
    if (q.code) return Counted{{F::kCode}, {std::to_string(q.code)}};
    if (!verbs.empty()) return Counted{{F::kVerb}, verbs};
    if (!q.cloud.empty() && !kubernetes && !in_ns) return Counted{{F::kCloud}, {q.cloud}};
    return std::nullopt;
  }
  bool Matches(const index::EventRowView& r) const {
    if (r.time < q.from || r.time > q.to) return false;
    // A user is who was authenticated or whom they impersonated.
    if ((!q.user.empty() && r.user != q.user && r.as != q.user) ||
        (!verbs.empty() && std::find(verbs.begin(), verbs.end(), r.verb) == verbs.end()) ||
        (!resource.empty() && r.resource != resource) || (!q.namespace_.empty() && r.ns != q.namespace_) ||
        (!q.name.empty() && r.name != q.name) || (!q.stage.empty() && r.stage != q.stage))
      return false;
    if (q.code && r.code != q.code) return false;
    if (!q.cloud.empty() && r.cloud != (kubernetes ? std::string_view() : std::string_view(q.cloud))) return false;
    if ((!q.account.empty() && r.account != q.account) || (!q.cluster.empty() && r.cluster != q.cluster) ||
        (!q.result.empty() && r.result != q.result))
      return false;
    // q: a substring of name, user or namespace.
    if (!q.q.empty() && r.name.find(q.q) == std::string_view::npos && r.user.find(q.q) == std::string_view::npos &&
        r.as.find(q.q) == std::string_view::npos &&
        r.ns.find(q.q) == std::string_view::npos)
      return false;
    return true;
  }
};

enum class Group {
  kNone, kUser, kVerb, kResource, kNamespace, kCode, kSourceIp, kUserAgent, kHour, kDay,
  kCloud, kAccount, kCluster, kResult
};

// The hours a time range spans (the first and last may be partly in it).
std::pair<int64_t, int64_t> HourRange(Micros from, Micros to) { return {index::HourOf(from), index::HourOf(to)}; }

// Is all of hour h inside [from, to]?
bool Covers(int64_t h, Micros from, Micros to) {
  const Micros start = h * index::kHourMicros;
  return start >= from && to >= start + (index::kHourMicros - 1);
}

}  // namespace

StatusOr<json> Questions::Events(const EventQuery& q) const {
  static const std::pair<const char*, Group> kGroups[] = {
      {"user", Group::kUser},         {"verb", Group::kVerb},           {"resource", Group::kResource},
      {"namespace", Group::kNamespace}, {"code", Group::kCode},         {"source_ip", Group::kSourceIp},
      {"user_agent", Group::kUserAgent}, {"hour", Group::kHour},        {"day", Group::kDay},
      // The normalized view's names (docs/sources.md).
      {"actor", Group::kUser},          {"action", Group::kVerb},         {"service", Group::kResource},
      {"cloud", Group::kCloud},         {"account", Group::kAccount},     {"cluster", Group::kCluster},
      {"result", Group::kResult}};
  Group group = Group::kNone;
  if (!q.group_by.empty()) {
    for (const auto& [name_, g] : kGroups)
      if (q.group_by == name_) group = g;
    if (group == Group::kNone)
      return InvalidArgumentError(
          "group_by must be one of user, verb, resource, namespace, code, source_ip, user_agent, hour, day, actor, "
          "action, service, cloud, account, cluster, result");
  }
  if (!q.service.empty() && !q.resource.empty())
    return InvalidArgumentError("give resource or service, not both");
  const RowFilter filter{q, !q.service.empty()    ? q.service
                            : q.resource.empty() ? std::string()
                                                 : kube::ResourceFor(q.resource)};
  // The events of [from, to] lie in the ledger index spans of its hours.
  const auto [first_hour, last_hour] = HourRange(q.from, q.to);
  const std::vector<index::EventIndex::Hour> hours = events_->Hours(first_hour, last_hour);
  auto span_of = [](const std::vector<index::EventIndex::Hour>& hs) {
    std::pair<uint64_t, uint64_t> span{UINT64_MAX, 0};
    for (const auto& h : hs) {
      span.first = std::min(span.first, h.first_index);
      span.second = std::max(span.second, h.last_index + 1);
    }
    return span;
  };
  // How many events of each of hs the counted filter c accepts (in the
  // namespace asked, if one is).
  auto counts_of = [&](const RowFilter::Counted& c,
                       const std::vector<index::EventIndex::Hour>& hs) -> StatusOr<std::vector<uint64_t>> {
    std::vector<int64_t> ids;
    for (const auto& h : hs) ids.push_back(h.hour);
    std::vector<uint64_t> n(hs.size(), 0);
    for (auto field : c.fields)
      for (const auto& v : c.values) {
        auto k = events_->CountsOf(field, ids, q.namespace_, v);
        if (!k.ok()) return IndexRead(k.status());
        for (size_t i = 0; i < n.size(); ++i) n[i] += (*k)[i];
      }
    return n;
  };
  // The hours that can hold a match: those where a counted filter counts
  // something (all of them without one). A user seen in a few hours of a
  // year reads those hours' rows, not the year's.
  auto candidate_hours = [&]() -> StatusOr<std::vector<index::EventIndex::Hour>> {
    const auto c = filter.AnyCountedField();
    if (!c) return hours;
    ASSIGN_OR_RETURN(std::vector<uint64_t> n, counts_of(*c, hours));
    std::vector<index::EventIndex::Hour> kept;
    for (size_t i = 0; i < hours.size(); ++i)
      if (n[i]) kept.push_back(hours[i]);
    return kept;
  };
  // The ledger index spans of hs, merged, ascending.
  auto spans_of = [](const std::vector<index::EventIndex::Hour>& hs) {
    std::vector<std::pair<uint64_t, uint64_t>> spans;
    for (const auto& h : hs) spans.emplace_back(h.first_index, h.last_index + 1);
    std::sort(spans.begin(), spans.end());
    std::vector<std::pair<uint64_t, uint64_t>> merged;
    for (const auto& sp : spans) {
      if (!merged.empty() && sp.first <= merged.back().second) {
        merged.back().second = std::max(merged.back().second, sp.second);
      } else {
        merged.push_back(sp);
      }
    }
    return merged;
  };

  if (group == Group::kNone) {
    ASSIGN_OR_RETURN(const std::vector<index::EventIndex::Hour> candidates, candidate_hours());
    json list = json::array();
    uint64_t next = 0;
    bool full = false;
    for (const auto& [lo, hi] : spans_of(candidates)) {
      if (full) break;
      if (hi <= q.cursor) continue;
      RETURN_IF_ERROR(IndexRead(events_->Scan(std::max(lo, q.cursor), hi, [&](const index::EventRowView& r) {
      if (!filter.Matches(r)) return true;
      if (list.size() == q.limit) {
        next = r.index;
        full = true;
        return false;
      }
      list.push_back({{"index", r.index}, {"time", Time(r.time)}, {"verb", r.verb},
                      {"user", r.user}, {"impersonated_user", r.as.empty() ? json() : json(r.as)},
                      {"resource", r.resource},
                      {"subresource", r.subresource}, {"namespace", r.ns},
                      {"name", r.name}, {"code", r.code}, {"stage", r.stage},
                      {"source_ip", r.ip}, {"user_agent", r.ua}});
      // A cloud record's own fields; a Kubernetes event's cluster.
      json& e = list.back();
      if (!r.cloud.empty()) {
        e["cloud"] = r.cloud;
        e["account"] = r.account;
        e["result"] = r.result;
      }
      if (!r.cluster.empty()) e["cluster"] = r.cluster;
      return true;
    })));
    }
    json j{{"count", list.size()}, {"events", list}};
    j["next_cursor"] = next ? json(next) : json();
    return j;
  }

  // Group-by: counts by value (or by number: code, hour, day).
  std::unordered_map<std::string, uint64_t> by_string;
  std::map<int64_t, uint64_t> by_number;
  uint64_t matched = 0;
  constexpr Micros kDayHours = 24;
  auto floor_div = [](int64_t t, int64_t d) { return t >= 0 ? t / d : (t - d + 1) / d; };
  auto count = [&](const index::EventRowView& r) {
    ++matched;
    switch (group) {
      case Group::kUser: ++by_string[std::string(r.user)]; break;
      case Group::kVerb: ++by_string[std::string(r.verb)]; break;
      case Group::kResource: ++by_string[std::string(r.resource)]; break;
      case Group::kNamespace: ++by_string[std::string(r.ns)]; break;
      case Group::kSourceIp: ++by_string[std::string(r.ip)]; break;
      case Group::kUserAgent: ++by_string[std::string(r.ua)]; break;
      case Group::kCloud: ++by_string[std::string(r.cloud.empty() ? kKubernetes : r.cloud)]; break;
      case Group::kAccount: ++by_string[std::string(r.account)]; break;
      case Group::kCluster: ++by_string[std::string(r.cluster)]; break;
      case Group::kResult: ++by_string[std::string(r.result)]; break;
      case Group::kCode: ++by_number[r.code]; break;
      case Group::kHour: ++by_number[index::HourOf(r.time)]; break;
      case Group::kDay: ++by_number[floor_div(index::HourOf(r.time), kDayHours)]; break;
      case Group::kNone: break;
    }
  };
  auto scan = [&](const std::vector<index::EventIndex::Hour>& hs, Micros from, Micros to) -> Status {
    const auto [lo, hi] = span_of(hs);
    return IndexRead(events_->Scan(lo, hi, [&](const index::EventRowView& r) {
      if (r.time >= from && r.time <= to && filter.Matches(r)) count(r);
      return true;
    }));
  };
  // Which counts a namespace has: those of NamespaceCounted, and its total.
  const bool ns_counted = group == Group::kUser || group == Group::kVerb || group == Group::kResource ||
                          group == Group::kCode || group == Group::kHour || group == Group::kDay ||
                          group == Group::kNamespace;
  const auto counted = group == Group::kHour || group == Group::kDay ? filter.OneCountedField() : std::nullopt;
  // Cluster and result are not counted: always from the rows.
  const bool uncounted = group == Group::kCluster || group == Group::kResult;
  if ((!filter.only_time_and_namespace() && !counted) || (!q.namespace_.empty() && !ns_counted) || uncounted) {
    // The rows of the hours that can hold a match, one span at a time.
    ASSIGN_OR_RETURN(const std::vector<index::EventIndex::Hour> candidates, candidate_hours());
    for (const auto& [lo, hi] : spans_of(candidates))
      RETURN_IF_ERROR(IndexRead(events_->Scan(lo, hi, [&](const index::EventRowView& r) {
        if (r.time >= q.from && r.time <= q.to && filter.Matches(r)) count(r);
        return true;
      })));
  } else if (counted) {
    // Grouped by time with one counted field: whole hours from that field's
    // counts (summed over the values asked for), the edge hours from rows.
    std::vector<index::EventIndex::Hour> whole;
    for (const auto& h : hours) {
      if (Covers(h.hour, q.from, q.to)) {
        whole.push_back(h);
        continue;
      }
      const Micros start = h.hour * index::kHourMicros;
      RETURN_IF_ERROR(scan({h}, std::max(q.from, start), std::min(q.to, start + (index::kHourMicros - 1))));
    }
    ASSIGN_OR_RETURN(std::vector<uint64_t> n, counts_of(*counted, whole));
    for (size_t i = 0; i < whole.size(); ++i) {
      if (n[i] == 0) continue;
      matched += n[i];
      by_number[group == Group::kHour ? whole[i].hour : floor_div(whole[i].hour, kDayHours)] += n[i];
    }
  } else {
    // A namespace (a namespace-limited reader always names one) reads that
    // namespace's counts ('b' keys); its total in an hour is the sum of
    // any field's counts, the verb's being the fewest.
    const bool in_ns = !q.namespace_.empty();
    // Whole hours from their pre-aggregated counts; the partial hours at
    // the edges of [from, to] from their rows. Exact either way.
    index::EventIndex::Field field{};
    switch (group) {
      case Group::kUser: field = index::EventIndex::Field::kUser; break;
      case Group::kVerb: field = index::EventIndex::Field::kVerb; break;
      case Group::kResource: field = index::EventIndex::Field::kResource; break;
      case Group::kNamespace: field = index::EventIndex::Field::kNamespace; break;
      case Group::kCode: field = index::EventIndex::Field::kCode; break;
      case Group::kSourceIp: field = index::EventIndex::Field::kSourceIp; break;
      case Group::kUserAgent: field = index::EventIndex::Field::kUserAgent; break;
      case Group::kCloud: field = index::EventIndex::Field::kCloud; break;
      case Group::kAccount: field = index::EventIndex::Field::kAccount; break;
      default: break;
    }
    for (const auto& h : hours) {
      if (!Covers(h.hour, q.from, q.to)) {
        const Micros start = h.hour * index::kHourMicros;
        RETURN_IF_ERROR(scan({h}, std::max(q.from, start), std::min(q.to, start + (index::kHourMicros - 1))));
        continue;
      }
      if (in_ns && (group == Group::kHour || group == Group::kDay || group == Group::kNamespace)) {
        uint64_t n = 0;
        RETURN_IF_ERROR(IndexRead(events_->NamespaceCounts(index::EventIndex::Field::kVerb, h.hour, q.namespace_,
                                                           [&](std::string_view, uint64_t k) { n += k; })));
        if (n == 0) continue;
        matched += n;
        if (group == Group::kNamespace) {
          by_string[q.namespace_] += n;
        } else {
          by_number[group == Group::kHour ? h.hour : floor_div(h.hour, kDayHours)] += n;
        }
        continue;
      }
      if (group == Group::kHour || group == Group::kDay) {
        matched += h.count;
        by_number[group == Group::kHour ? h.hour : floor_div(h.hour, kDayHours)] += h.count;
        continue;
      }
      auto add = [&](std::string_view value, uint64_t n) {
        matched += n;
        if (group == Group::kCode) {
          int64_t code = 0;
          bool neg = !value.empty() && value[0] == '-';
          for (char c : value.substr(neg ? 1 : 0)) code = code * 10 + (c - '0');
          by_number[neg ? -code : code] += n;
        } else {
          by_string[std::string(value)] += n;
        }
      };
      uint64_t named = 0;  // cloud and account: the events that name one
      RETURN_IF_ERROR(IndexRead(in_ns ? events_->NamespaceCounts(field, h.hour, q.namespace_, add)
                                      : events_->Counts(field, h.hour, [&](std::string_view v, uint64_t n) {
                                          named += n;
                                          add(v, n);
                                        })));
      // Only cloud records are counted by cloud and account: the hour's
      // other events are Kubernetes', with no account.
      if ((group == Group::kCloud || group == Group::kAccount) && h.count > named)
        add(group == Group::kCloud ? kKubernetes : std::string_view(), h.count - named);
    }
  }
  std::vector<std::pair<std::string, uint64_t>> g;
  for (auto& [k, n] : by_string) g.emplace_back(k, n);
  for (const auto& [key, n] : by_number) {
    switch (group) {
      case Group::kCode: g.emplace_back(std::to_string(key), n); break;
      case Group::kHour: g.emplace_back(Time(key * index::kHourMicros).substr(0, 13) + ":00:00Z", n); break;
      default: g.emplace_back(Time(key * kDayHours * index::kHourMicros).substr(0, 10), n); break;
    }
  }
  std::sort(g.begin(), g.end(), [](auto& a, auto& b) { return a.second != b.second ? a.second > b.second : a.first < b.first; });
  json out = json::array();
  for (auto& [k, n] : g) out.push_back({{"key", k}, {"count", n}});
  return json{{"group_by", q.group_by}, {"total", matched}, {"groups", out}};
}

}  // namespace annals::state
