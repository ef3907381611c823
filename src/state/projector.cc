#include "state/projector.h"
#include "common/thread_util.h"

#include <cstdio>

#include "ledger/entry.h"

namespace annals::state {

namespace {
constexpr uint64_t kChunk = 4096;
}

Status Projector::CatchUp() {
  std::lock_guard lock(mu_);
  const uint64_t end = ledger_->DurableSize();
  uint64_t begin = store_->applied();
  while (begin < end) {
    const uint64_t stop = std::min(end, begin + kChunk);
    RETURN_IF_ERROR(ledger_->ReadEntries(begin, stop, [&](uint64_t i, std::string_view e) {
      auto d = ledger::DecodeEntry(e);
      if (!d.ok()) return d.status();
      if (!d->external) return store_->Apply(i, d->meta, d->payload);
      auto blob = ledger_->GetBlob(d->payload_digest);
      if (!blob.ok()) return blob.status();
      return store_->Apply(i, d->meta, *blob);
    }));
    store_->SetApplied(stop);
    begin = stop;
  }
  cv_.notify_all();
  return OkStatus();
}

void Projector::Start() {
  stop_ = false;
  thread_ = std::thread([this] {
    SetThreadName("annals-project");
    Run();
  });
}

void Projector::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void Projector::Run() {
  while (!stop_) {
    Status s = CatchUp();
    if (!s.ok()) std::fprintf(stderr, "annals: projector: %s\n", s.message().c_str());
    std::this_thread::sleep_for(std::chrono::milliseconds(s.ok() ? 10 : 1000));
  }
}

bool Projector::WaitForApplied(uint64_t n, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (store_->applied() < n) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, std::chrono::milliseconds(5));
  }
  return true;
}

}  // namespace annals::state
