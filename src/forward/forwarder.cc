#include "forward/forwarder.h"
#include "common/log.h"

#include <cstdio>

#include "common/thread_util.h"

namespace annals::forward {

Forwarder::Forwarder(stream::ChangeFeed* feed, std::unique_ptr<Sink> sink, std::string cursor_path,
                     Metrics* metrics, ForwarderOptions options)
    : feed_(feed),
      sink_(std::move(sink)),
      cursor_(std::move(cursor_path), sink_->target()),
      metrics_(*metrics),
      options_(options) {}

Forwarder::~Forwarder() { Stop(); }

Status Forwarder::Start() {
  ASSIGN_OR_RETURN(pos_, cursor_.Load());
  consumer_ = feed_->Register(sink_->kind(), sink_->target(), pos_, nullptr);
  stop_ = false;
  thread_ = std::thread([this] {
    SetThreadName("annals-forward");
    Run();
  });
  return OkStatus();
}

void Forwarder::Stop() {
  if (!thread_.joinable()) return;
  stop_ = true;
  thread_.join();
  feed_->Unregister(consumer_);
}

void Forwarder::Run() {
  const ledger::Ledger* ledger = feed_->sources().ledger;
  uint64_t saved = pos_;
  auto last_save = std::chrono::steady_clock::now();
  int backoff_ms = 100;
  bool failing = false;
  std::vector<std::shared_ptr<const stream::Change>> batch;
  auto save = [&] {
    if (saved == pos_) return;
    Status s = cursor_.Save(pos_);
    if (!s.ok()) {
      log::Warning("%s forwarder: cannot save position: %s", sink_->kind().c_str(),
                   s.message().c_str());
      return;
    }
    saved = pos_;
    last_save = std::chrono::steady_clock::now();
  };
  while (!stop_) {
    uint64_t end = feed_->WaitFor(pos_, std::chrono::milliseconds(100));
    const uint64_t cp = ledger->CheckpointSize();
    if (options_.wait_for_checkpoint) end = std::min(end, cp);
    if (pos_ >= end) {
      if (options_.wait_for_checkpoint && feed_->next() > pos_)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      if (std::chrono::steady_clock::now() - last_save >= options_.save_interval) save();
      continue;
    }
    batch.clear();
    bool from_buffer;
    Status s = feed_->Read(pos_, std::min<uint64_t>(options_.max_batch, end - pos_), 4u << 20, &batch,
                           &from_buffer);
    if (s.ok() && !batch.empty()) s = sink_->Send(batch, cp);
    if (!s.ok()) {
      if (!failing)
        log::Warning("%s forwarder to %s: %s; retrying from index %llu",
                     sink_->kind().c_str(), sink_->target().c_str(), s.message().c_str(),
                     static_cast<unsigned long long>(pos_));
      failing = true;
      metrics_.Add("annals_forward_errors_total", "kind", sink_->kind());
      for (int i = 0; i < backoff_ms / 20 && !stop_; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      backoff_ms = std::min(backoff_ms * 2, 5000);
      continue;
    }
    if (failing)
      log::Info("%s forwarder to %s: delivering again from index %llu",
                   sink_->kind().c_str(), sink_->target().c_str(), static_cast<unsigned long long>(pos_));
    failing = false;
    backoff_ms = 100;
    pos_ = batch.back()->index + 1;
    consumer_->pos = pos_;
    metrics_.Add("annals_forward_sent_total", "kind", sink_->kind(), batch.size());
    if (std::chrono::steady_clock::now() - last_save >= options_.save_interval) save();
  }
  save();
}

}  // namespace annals::forward
