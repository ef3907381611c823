#include "stream/change_feed.h"
#include "common/log.h"

#include <algorithm>
#include <cstdio>

#include "common/thread_util.h"
#include <map>

namespace annals::stream {

namespace {
constexpr uint64_t kChunk = 4096;
}

ChangeFeed::ChangeFeed(ChangeSources sources, state::Projector* projector, ChangeFeedOptions options)
    : sources_(sources), projector_(projector), options_(options) {}

ChangeFeed::~ChangeFeed() { Stop(); }

void ChangeFeed::Start() {
  {
    WriterLock lock(&buf_mu_);
    next_ = sources_.store->applied();
  }
  stop_ = false;
  thread_ = std::thread([this] {
    SetThreadName("annals-feed");
    Run();
  });
}

void ChangeFeed::Stop() {
  stop_ = true;
  {
    MutexLock lock(&wait_mu_);
  }
  wait_cv_.NotifyAll();
  if (thread_.joinable()) thread_.join();
}

uint64_t ChangeFeed::next() const {
  ReaderLock lock(&buf_mu_);
  return next_;
}

uint64_t ChangeFeed::buffer_begin() const {
  ReaderLock lock(&buf_mu_);
  return next_ - buf_.size();
}

void ChangeFeed::Run() {
  auto last_tick = std::chrono::steady_clock::now();
  while (!stop_) {
    uint64_t n = next();
    uint64_t durable = sources_.ledger->WaitForDurable(n, std::chrono::milliseconds(50));
    if (durable > n && !stop_) {
      Status s = Advance(durable);
      if (!s.ok()) {
        log::Warning("change feed: %s", s.message().c_str());
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
      }
    }
    auto now = std::chrono::steady_clock::now();
    if (now - last_tick >= options_.tick) {
      last_tick = now;
      WakeAll(true);
    }
  }
}

Status ChangeFeed::Advance(uint64_t durable) {
  // The feed reports what changed, which needs the projection to have the
  // entries: apply them now rather than wait for the projector's next poll.
  RETURN_IF_ERROR(projector_->CatchUp());
  const uint64_t end = std::min(durable, sources_.store->applied());
  uint64_t begin = next();
  while (begin < end && !stop_) {
    const uint64_t stop = std::min(end, begin + kChunk);
    bool anyone;
    {
      MutexLock lock(&consumers_mu_);
      anyone = !consumers_.empty();
    }
    if (!anyone) {
      // Nobody to deliver to: building every entry's change would double
      // the CPU of ingest. Skip ahead with an empty buffer; a consumer that
      // comes later at an earlier position reads those entries from disk.
      {
        WriterLock lock(&buf_mu_);
        buf_.clear();
        buf_bytes_ = 0;
        next_ = stop;
      }
      {
        MutexLock lock(&wait_mu_);
      }
      wait_cv_.NotifyAll();
      WakeAll(false);  // one may have registered since the check
      begin = stop;
      continue;
    }
    std::vector<std::shared_ptr<const Change>> made;
    made.reserve(stop - begin);
    RETURN_IF_ERROR(sources_.ledger->ReadEntries(begin, stop, [&](uint64_t i, std::string_view e) {
      ASSIGN_OR_RETURN(auto c, MakeChange(sources_, i, e));
      made.push_back(std::move(c));
      return OkStatus();
    }));
    {
      WriterLock lock(&buf_mu_);
      for (auto& c : made) {
        buf_bytes_ += c->frame.size();
        buf_.push_back(std::move(c));
      }
      next_ = stop;
      while (!buf_.empty() &&
             (buf_.size() > options_.buffer_entries || buf_bytes_ > options_.buffer_bytes)) {
        buf_bytes_ -= buf_.front()->frame.size();
        buf_.pop_front();
      }
    }
    {
      MutexLock lock(&wait_mu_);
    }
    wait_cv_.NotifyAll();
    WakeAll(false);
    begin = stop;
  }
  return OkStatus();
}

void ChangeFeed::WakeAll(bool tick) {
  std::vector<std::shared_ptr<Consumer>> cs;
  {
    MutexLock lock(&consumers_mu_);
    cs = consumers_;
  }
  for (auto& c : cs)
    if (c->wake) c->wake(tick);
}

Status ChangeFeed::Read(uint64_t pos, size_t max_entries, size_t max_bytes,
                        std::vector<std::shared_ptr<const Change>>* out, bool* from_buffer) const {
  uint64_t end;
  {
    ReaderLock lock(&buf_mu_);
    end = next_;
    const uint64_t begin = next_ - buf_.size();
    if (pos >= end) {
      *from_buffer = true;
      return OkStatus();
    }
    if (pos >= begin) {
      *from_buffer = true;
      size_t bytes = 0;
      for (uint64_t i = pos; i < end && max_entries > 0 && bytes < max_bytes; ++i, --max_entries) {
        const auto& c = buf_[i - begin];
        bytes += c->frame.size();
        out->push_back(c);
      }
      return OkStatus();
    }
    end = std::min(begin, pos + max_entries);
  }
  *from_buffer = false;
  size_t bytes = 0;
  // Entries below next_ are applied by the store; encode them again.
  return sources_.ledger->ReadEntries(pos, end, [&](uint64_t i, std::string_view e) -> Status {
    if (bytes >= max_bytes) return OkStatus();
    ASSIGN_OR_RETURN(auto c, MakeChange(sources_, i, e));
    bytes += c->frame.size();
    out->push_back(std::move(c));
    return OkStatus();
  });
}

uint64_t ChangeFeed::WaitFor(uint64_t pos, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  MutexLock lock(&wait_mu_);
  while (next() <= pos && !stop_)
    if (!wait_cv_.WaitUntil(&lock, deadline)) break;
  return next();
}

std::shared_ptr<ChangeFeed::Consumer> ChangeFeed::Register(std::string kind, std::string name,
                                                           uint64_t pos,
                                                           std::function<void(bool)> wake) {
  auto c = std::make_shared<Consumer>();
  c->kind = std::move(kind);
  c->name = std::move(name);
  c->pos = pos;
  c->wake = std::move(wake);
  MutexLock lock(&consumers_mu_);
  c->id = next_consumer_id_++;
  consumers_.push_back(c);
  return c;
}

void ChangeFeed::Unregister(const std::shared_ptr<Consumer>& c) {
  MutexLock lock(&consumers_mu_);
  std::erase(consumers_, c);
}

std::string ChangeFeed::RenderMetrics() const {
  const uint64_t head = next();
  std::string out;
  std::map<std::string, uint64_t> by_kind = {{"watch", 0}};
  // The largest lag per labels: a forwarder by its target (configured,
  // few), every /v1/watch subscriber as one series (their addresses would
  // make a new series per connection).
  std::map<std::string, uint64_t> lag_by_labels;
  {
    MutexLock lock(&consumers_mu_);
    for (const auto& c : consumers_) {
      ++by_kind[c->kind];
      uint64_t p = c->pos.load();
      std::string labels = "kind=\"" + c->kind + "\"";
      if (c->kind != "watch") {
        std::string name;
        for (char ch : c->name) {
          if (ch == '"' || ch == '\\') name += '\\';
          if (ch == '\n') {
            name += "\\n";
            continue;
          }
          name += ch;
        }
        labels += ",name=\"" + name + "\"";
      }
      uint64_t& l = lag_by_labels[labels];
      l = std::max(l, head > p ? head - p : 0);
    }
  }
  std::string lag;
  for (const auto& [labels, l] : lag_by_labels)
    lag += "annals_consumer_lag_entries{" + labels + "} " + std::to_string(l) + "\n";
  out += "# TYPE annals_feed_next_index gauge\nannals_feed_next_index " + std::to_string(head) + "\n";
  out += "# TYPE annals_consumers gauge\n";
  for (const auto& [k, n] : by_kind)
    out += "annals_consumers{kind=\"" + k + "\"} " + std::to_string(n) + "\n";
  out += "# TYPE annals_consumer_lag_entries gauge\n" + lag;
  return out;
}

}  // namespace annals::stream
