#include "api/watch.h"

#include <algorithm>
#include "common/log.h"

#include <cstdio>
#include <nlohmann/json.hpp>
#include <set>

#include "kube/resources.h"
#include "common/bytes.h"
#include "state/k8s_object.h"
#include "stream/watch_format.h"

namespace annals::api {

namespace {

constexpr size_t kBatchBytes = 256 << 10;  // one write
constexpr size_t kMaxScan = 8192;          // entries looked at per turn on the io thread
constexpr int64_t kStuckAbortMs = 30000;   // behind the buffer with a write pending this long

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::shared_ptr<const std::string> Text(std::string s) {
  return std::make_shared<const std::string>(std::move(s));
}

// The event that ends a stream (watch_format.h).
std::shared_ptr<const std::string> ErrorFrame(const nlohmann::json& e) {
  return Text(std::string("event: ") + stream::kErrorEvent + "\n" + stream::kFieldData + e.dump() +
              stream::kFrameEnd);
}

}  // namespace

StatusOr<WatchOptions> ParseWatchRequest(const Target& t, const HttpRequest& req, uint64_t head,
                                           uint64_t log_end) {
  static const std::set<std::string> kKnown = {"from", "type", "user", "verb", "resource", "namespace",
                                               "name", "stage", "code", "selector", "heartbeat"};
  for (const auto& [k, v] : t.params)
    if (!kKnown.count(k))
      return InvalidArgumentError("unknown watch parameter " + k +
                                  " (known: from, type, user, verb, resource, namespace, name, "
                                  "stage, code, selector, heartbeat)");
  WatchOptions o;
  o.remote = req.remote;
  o.from = head;
  if (const std::string* f = t.Param("from")) {
    auto n = ParseDecimal(*f);
    if (!n) return InvalidArgumentError("from must be a ledger index: " + *f);
    o.from = *n;
  }
  std::string last = req.Header("Last-Event-ID");
  if (!last.empty()) {
    auto n = ParseDecimal(last);
    if (!n || *n == UINT64_MAX) return InvalidArgumentError("Last-Event-ID must be a ledger index: " + last);
    o.from = *n + 1;  // the last one the client has; resume after it
  }
  // A position past the end was never served by this log: a typo, or a
  // client of another (or rolled back) log. Not a silent wait.
  if (o.from > std::max(head, log_end))
    return InvalidArgumentError("position " + std::to_string(o.from) + " is beyond the end of the log (" +
                                std::to_string(std::max(head, log_end)) + " entries)");
  auto str = [&](const char* k) {
    const std::string* v = t.Param(k);
    return v ? *v : std::string();
  };
  stream::ChangeFilter& f = o.filter;
  f.type = str("type");
  f.user = str("user");
  f.verb = str("verb");
  f.resource = str("resource").empty() ? "" : kube::ResourceFor(str("resource"));
  f.namespace_ = str("namespace");
  f.name = str("name");
  f.stage = str("stage");
  f.cluster = str("cluster");
  if (const std::string* c = t.Param("code")) {
    auto n = ParseDecimal(*c);
    if (!n || *n > 999) return InvalidArgumentError("code must be an HTTP status code");
    f.code = static_cast<int>(*n);
  }
  if (const std::string* s = t.Param("selector"); s && !s->empty()) {
    auto sel = state::LabelSelector::Parse(*s);
    if (!sel.ok()) return sel.status();
    f.selector = std::move(*sel);
  }
  if (const std::string* h = t.Param("heartbeat")) {
    auto n = ParseDecimal(*h);
    if (!n || *n < 1 || *n > 3600) return InvalidArgumentError("heartbeat must be 1..3600 seconds");
    o.heartbeat = std::chrono::seconds(*n);
  }
  return o;
}

WatchSession::WatchSession(stream::ChangeFeed* feed, Metrics* metrics, WatchOptions options)
    : feed_(feed), metrics_(*metrics), options_(std::move(options)), pos_(options_.from) {}

void WatchSession::Start(std::shared_ptr<ResponseStream> stream) {
  stream_ = std::move(stream);
  std::weak_ptr<WatchSession> weak = shared_from_this();
  consumer_ = feed_->Register("watch", options_.remote, pos_, [weak](bool tick) {
    if (auto self = weak.lock()) self->Wake(tick);
  });
  stream_->OnClose([self = shared_from_this()] { self->Finish(); });
  last_write_ms_ = NowMs();
  // retry: how long a browser's EventSource waits before it reconnects.
  stream_->Write({Text(": annals watch from " + std::to_string(pos_) + "\nretry: " + std::to_string(stream::kRetryMillis) + "\n\n")},
                 [self = shared_from_this()](bool ok) {
                   if (!ok) return self->Finish();
                   self->Pump();
                 });
}

void WatchSession::Pump() {
  if (done_) return;
  stuck_since_ms_ = 0;
  std::vector<std::shared_ptr<const std::string>> pieces;
  size_t bytes = 0, scanned = 0, sent = 0;
  std::vector<std::shared_ptr<const stream::Change>> cs;
  while (bytes < kBatchBytes && scanned < kMaxScan) {
    const uint64_t head = feed_->next();
    if (pos_ >= head) break;
    if (live_ && pos_ < feed_->buffer_begin()) return CutOff(head - pos_);
    cs.clear();
    bool from_buffer = false;
    Status s = feed_->Read(pos_, 1024, kBatchBytes - bytes, &cs, &from_buffer);
    if (!s.ok()) {
      log::Warning("watch from %s: %s", options_.remote.c_str(), s.message().c_str());
      nlohmann::json e{{"error", s.message()}, {"reason", "read"}};
      stream_->Write({ErrorFrame(e)},
                     [self = shared_from_this()](bool) { self->stream_->Close(); });
      done_ = true;
      return;
    }
    if (cs.empty()) break;
    if (from_buffer) live_ = true;
    for (auto& c : cs) {
      ++scanned;
      pos_ = c->index + 1;
      if (!options_.filter.Matches(*c)) continue;
      bytes += c->frame.size();
      ++sent;
      pieces.emplace_back(c, &c->frame);  // shares the Change's lifetime
    }
  }
  consumer_->pos = pos_;
  if (!pieces.empty()) {
    metrics_.Add("annals_watch_events_sent_total", "kind", "watch", sent);
    last_write_ms_ = NowMs();
    stream_->Write(std::move(pieces), [self = shared_from_this()](bool ok) {
      if (!ok) return self->Finish();
      self->Pump();
    });
    return;
  }
  if (pos_ < feed_->next()) {  // looked at kMaxScan entries, none matched: yield
    stream_->Post([self = shared_from_this()] { self->Pump(); });
    return;
  }
  if (NowMs() - last_write_ms_ >= options_.heartbeat.count()) {
    last_write_ms_ = NowMs();
    stream_->Write({Text(stream::kHeartbeat)}, [self = shared_from_this()](bool ok) {
      if (!ok) return self->Finish();
      self->Pump();
    });
    return;
  }
  waiting_ = true;
  // A change that arrived between the check above and here woke nobody.
  if (feed_->next() > pos_ && waiting_.exchange(false))
    stream_->Post([self = shared_from_this()] { self->Pump(); });
}

void WatchSession::Wake(bool tick) {
  if (done_) return;
  if (tick) {
    if (!waiting_) {
      // A write is pending. A client that stops reading altogether never
      // lets Pump see that it fell behind: drop it after a while.
      // One reading from the log (not live) is held to it too: it never
      // falls behind the buffer, and would keep its write, its changes and
      // its connection for ever.
      if (!live_ || consumer_->pos.load() < feed_->buffer_begin()) {
        int64_t now = NowMs(), since = stuck_since_ms_.load();
        if (since == 0) {
          stuck_since_ms_ = now;
        } else if (now - since > kStuckAbortMs) {
          metrics_.Add("annals_watch_disconnects_total", "reason", "stuck");
          log::Warning("watch from %s: not reading; disconnected",
                       options_.remote.c_str());
          done_ = true;
          stream_->Abort();
        }
      }
      return;
    }
    if (NowMs() - last_write_ms_ < options_.heartbeat.count()) return;
  }
  if (waiting_.exchange(false)) stream_->Post([self = shared_from_this()] { self->Pump(); });
}

void WatchSession::CutOff(uint64_t behind) {
  metrics_.Add("annals_watch_disconnects_total", "reason", "slow");
  log::Warning("watch from %s: %llu entries behind, past the buffer; disconnected",
               options_.remote.c_str(), static_cast<unsigned long long>(behind));
  nlohmann::json e{{"error", "subscriber too slow: " + std::to_string(behind) +
                                 " entries behind, more than the server buffers; reconnect with "
                                 "Last-Event-ID to resume"},
                   {"reason", stream::kReasonSlow},
                   {"resume_from", pos_}};
  done_ = true;
  stream_->Write({ErrorFrame(e)},
                 [self = shared_from_this()](bool) { self->stream_->Close(); });
}

void WatchSession::Finish() {
  done_ = true;
  if (consumer_) feed_->Unregister(consumer_);
}

}  // namespace annals::api
