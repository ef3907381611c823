#include "auth/denials.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "common/log.h"

namespace annals::auth {

namespace {

using nlohmann::json;

constexpr size_t kTargetBytes = 256;
constexpr char kOthers[] = "~";  // after "address:" and "user:": others come last

// reason \0 endpoint \0 caller: records sort by reason, then endpoint.
std::string KeyOf(const std::string& reason, const std::string& endpoint, const std::string& caller) {
  std::string k;
  k.reserve(reason.size() + endpoint.size() + caller.size() + 2);
  k.append(reason).push_back('\0');
  k.append(endpoint).push_back('\0');
  k.append(caller);
  return k;
}

void AddSample(std::vector<std::string>* v, const std::string& s, size_t max) {
  if (s.empty() || v->size() >= max || std::find(v->begin(), v->end(), s) != v->end()) return;
  v->push_back(s);
}

void Merge(DenialLog::Tally* into, const DenialLog::Tally& t, size_t samples) {
  if (into->count == 0) {
    *into = t;
    return;
  }
  into->count += t.count;
  into->first = std::min(into->first, t.first);
  into->last = std::max(into->last, t.last);
  into->callers += t.callers;
  for (const auto& r : t.remotes) AddSample(&into->remotes, r, samples);
  for (const auto& x : t.targets) AddSample(&into->targets, x, samples);
}

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

}  // namespace

DenialLog::DenialLog(DenialLogOptions options, Metrics* metrics, Sink sink)
    : options_(options), metrics_(metrics), sink_(std::move(sink)) {}

DenialLog::~DenialLog() { Stop(); }

void DenialLog::Start() {
  thread_ = std::thread([this] { Loop(); });
}

void DenialLog::Stop() {
  {
    MutexLock lock(&mu_);
    if (stop_) return;
    stop_ = true;
    cv_.NotifyAll();
  }
  if (thread_.joinable()) thread_.join();
  Status s = Flush();
  if (!s.ok()) log::Warning("refused requests of the last window not recorded: %s", s.message().c_str());
}

void DenialLog::Note(const Denial& d) {
  const Micros now = NowMicros();
  const std::string caller = !d.user.empty() ? "user:" + d.user : "address:" + d.remote;
  MutexLock lock(&mu_);
  if (window_.empty()) window_from_ = now;
  std::string key = KeyOf(d.reason, d.endpoint, caller);
  auto it = window_.find(key);
  if (it == window_.end()) {
    if (callers_ >= options_.max_callers) {
      // A flood of distinct callers: one record says how many were folded.
      key = KeyOf(d.reason, d.endpoint, kOthers);
      metrics_->Add("annals_denied_folded_total", "reason", d.reason);
      it = window_.find(key);
      if (it == window_.end()) it = window_.emplace(key, Tally{}).first;
      ++it->second.callers;
    } else {
      ++callers_;
      it = window_.emplace(key, Tally{}).first;
      it->second.user = d.user;
      it->second.method = d.method;
    }
  }
  Tally& t = it->second;
  if (t.count++ == 0) t.first = now;
  t.last = now;
  AddSample(&t.remotes, d.remote, options_.samples);
  AddSample(&t.targets, d.target.substr(0, kTargetBytes), options_.samples);
}

std::vector<DenialLog::Record> DenialLog::Encode(const std::map<std::string, Tally>& window, Micros from,
                                                 Micros to) {
  std::vector<Record> out;
  const std::string rt = FormatRfc3339(to);
  for (const auto& [key, t] : window) {
    const size_t a = key.find('\0'), b = key.find('\0', a + 1);
    const std::string reason = key.substr(0, a), endpoint = key.substr(a + 1, b - a - 1);
    const bool others = key.substr(b + 1) == kOthers;
    json p{{"window", {{"from", FormatRfc3339(from)}, {"to", rt}}},
           {"reason", reason},
           {"endpoint", endpoint},
           {"count", t.count},
           {"first", FormatRfc3339(t.first)},
           {"last", FormatRfc3339(t.last)},
           {"remotes", t.remotes},
           {"targets", t.targets}};
    json d{{"reason", reason}, {"endpoint", endpoint}, {"count", t.count}};
    if (others) {
      p["others"] = true;
      p["callers"] = t.callers;
      d["others"] = true;
    } else {
      p["user"] = t.user;
      p["auth"] = t.method;
      d["user"] = t.user;
      if (t.user.empty() && !t.remotes.empty()) d["remote"] = t.remotes[0];
    }
    json meta{{"v", 1}, {"src", "annals"}, {"rt", rt}, {"ct", "application/json"}, {"type", "annals.denied"},
              {"denied", d}};
    out.push_back(Record{Dump(meta), Dump(p)});
  }
  return out;
}

Status DenialLog::Flush() {
  MutexLock one(&flush_mu_);
  std::map<std::string, Tally> window;
  Micros from;
  {
    MutexLock lock(&mu_);
    window.swap(window_);
    callers_ = 0;
    from = window_from_;
  }
  if (window.empty()) return OkStatus();
  std::vector<Record> records = Encode(window, from, NowMicros());
  const size_t n = records.size();
  Status s = sink_(std::move(records));
  if (s.ok()) {
    metrics_->Add("annals_denied_records_total", "result", "recorded", n);
    return s;
  }
  // Kept for the next window: the counts are not lost to a full disk.
  metrics_->Add("annals_denied_records_total", "result", "failed", n);
  MutexLock lock(&mu_);
  window_from_ = window_.empty() ? from : std::min(from, window_from_);
  for (auto& [key, t] : window) {
    auto it = window_.find(key);
    if (it == window_.end()) {
      const size_t b = key.rfind('\0');
      if (key.compare(b + 1, std::string::npos, kOthers) != 0) {
        if (callers_ >= options_.max_callers) {
          // The bound holds across failed windows too: folded.
          Tally folded = t;
          folded.user.clear();
          folded.method.clear();
          folded.callers = 1;
          Merge(&window_[key.substr(0, b + 1) + kOthers], folded, options_.samples);
          continue;
        }
        ++callers_;
      }
      window_.emplace(key, std::move(t));
    } else {
      Merge(&it->second, t, options_.samples);
    }
  }
  return s;
}

void DenialLog::Loop() {
  MutexLock lock(&mu_);
  while (!stop_) {
    const auto until = std::chrono::steady_clock::now() + options_.window;
    while (!stop_ && std::chrono::steady_clock::now() < until) cv_.WaitUntil(&lock, until);
    if (stop_) break;
    if (window_.empty()) continue;
    lock.Unlock();
    Status s = Flush();
    if (!s.ok()) log::Warning("refused requests not recorded yet (kept for the next window): %s",
                              s.message().c_str());
    lock.Lock();
  }
}

}  // namespace annals::auth
