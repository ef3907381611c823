#include "client/cosigning.h"

#include <thread>

#include <nlohmann/json.hpp>
#include <utility>

#include "checkpoint/note.h"
#include "common/bytes.h"
#include "common/log.h"
#include "common/thread_util.h"
#include "witness/witness.h"

namespace annals::client {

struct Cosigning::Slot {
  std::string name;
  std::shared_ptr<const note::CosignatureVerifier> verifier;
  std::unique_ptr<HttpClient> http;  // used by one request at a time (busy)
  Mutex mu;
  bool busy GUARDED_BY(mu) = false;
  // The size the witness holds for this log, as far as this process knows.
  std::optional<uint64_t> known GUARDED_BY(mu);
};

namespace {

using Reply = witness::Reply;

// One add-checkpoint exchange, read. Touches nothing but its slot's client
// and verifier: it may outlive the round that started it.
Reply Exchange(HttpClient* http, const note::CosignatureVerifier& verifier, const std::string& body,
               const std::string& text) {
  auto r = http->Post("/add-checkpoint", body, "text/plain; charset=utf-8");
  if (!r.ok()) return Reply{Reply::kUnavailable, "", 0, std::string(r.status().message())};
  return witness::ReadAddCheckpointAnswer(r->status, r->content_type, r->body, text, verifier);
}

}  // namespace

StatusOr<std::unique_ptr<Cosigning>> Cosigning::Create(witness::Policy policy, ledger::Ledger* ledger,
                                                       Metrics* metrics, CosigningOptions options) {
  const note::Signer& signer = ledger->signer();
  const witness::Policy::Log* log = policy.FindLog(signer.name());
  if (!log || log->verifier->VerifierKey() != signer.VerifierKey())
    return InvalidArgumentError("the witness policy has no `log " + signer.VerifierKey() +
                                "` line: witnesses and verifiers would not know this log");
  std::vector<bool> reachable(policy.witnesses().size());
  for (size_t i = 0; i < reachable.size(); ++i) reachable[i] = !policy.witnesses()[i].url.empty();
  if (!policy.QuorumMet(reachable))
    return InvalidArgumentError("the witness policy's quorum (" + policy.DescribeQuorum() +
                                ") cannot be met by the witnesses it gives a URL for");
  std::unique_ptr<Cosigning> c(new Cosigning(std::move(policy), ledger, metrics, std::move(options)));
  for (const witness::Policy::Witness& w : c->policy_.witnesses()) {
    auto slot = std::make_shared<Slot>();
    slot->name = w.name;
    slot->verifier = w.verifier;
    if (!w.url.empty()) {
      auto http = HttpClient::Create(w.url, c->options_.auth);
      if (!http.ok())
        return InvalidArgumentError("witness " + w.name + " URL " + w.url + ": " +
                                    std::string(http.status().message()));
      slot->http = std::move(*http);
    }
    c->slots_.push_back(std::move(slot));
    MutexLock lock(&c->mu_);
    c->status_.push_back(WitnessStatus{w.name, w.url, false, 0, w.url.empty() ? "no URL to ask it at" : ""});
  }
  return c;
}

Cosigning::Cosigning(witness::Policy policy, ledger::Ledger* ledger, Metrics* metrics, CosigningOptions options)
    : policy_(std::move(policy)), ledger_(ledger), metrics_(metrics), options_(std::move(options)) {}

Cosigning::~Cosigning() { Stop(); }

void Cosigning::Stop() {
  stopped_ = true;
  for (const auto& s : slots_)
    if (s->http) s->http->Abort();
}

std::vector<WitnessStatus> Cosigning::Status() const {
  MutexLock lock(&mu_);
  return status_;
}

namespace {

nlohmann::json RuleJson(const witness::Policy::Rule& r) {
  if (r.witness >= 0) return {{"witness", r.name}};
  nlohmann::json members = nlohmann::json::array();
  for (const auto& m : r.members) members.push_back(RuleJson(m));
  return {{"group", r.name}, {"k", r.k}, {"members", members}};
}

}  // namespace

std::string Cosigning::StatusJson() const {
  nlohmann::json ws = nlohmann::json::array();
  const std::vector<WitnessStatus> st = Status();
  for (size_t i = 0; i < st.size(); ++i) {
    nlohmann::json w{{"name", st[i].name},
                     {"key", policy_.witnesses()[i].verifier->VerifierKey()},
                     {"cosigned_newest", st[i].cosigned},
                     {"cosigned_size", st[i].cosigned_size}};
    if (!st[i].url.empty()) w["url"] = st[i].url;
    if (!st[i].last_error.empty()) w["last_error"] = st[i].last_error;
    ws.push_back(std::move(w));
  }
  nlohmann::json j{{"policy", true},
                   {"quorum", policy_.DescribeQuorum()},
                   {"rule", RuleJson(policy_.QuorumRule())},
                   {"witnesses", ws},
                   {"checkpoint_size", ledger_->CheckpointSize()},
                   {"signed_size", ledger_->SignedSize()}};
  return j.dump() + "\n";
}

StatusOr<std::string> Cosigning::Body(uint64_t old_size, uint64_t size, const std::string& note) const {
  std::string body = "old " + std::to_string(old_size) + "\n";
  if (old_size != 0 && old_size != size) {
    ASSIGN_OR_RETURN(std::vector<Hash> proof, ledger_->ConsistencyProof(old_size, size));
    for (const Hash& h : proof)
      body += Base64Encode(std::string_view(reinterpret_cast<const char*>(h.data()), h.size())) + "\n";
  }
  return body + "\n" + note;
}

std::vector<witness::Reply> Cosigning::Ask(const std::vector<size_t>& which,
                                             const std::vector<std::string>& bodies) {
  struct Round {
    Mutex mu;
    CondVar cv;
    size_t pending GUARDED_BY(mu) = 0;
    std::vector<std::optional<Reply>> replies GUARDED_BY(mu);
  };
  auto round = std::make_shared<Round>();
  std::vector<Reply> out(which.size());
  {
    MutexLock lock(&round->mu);
    round->replies.resize(which.size());
  }
  for (size_t k = 0; k < which.size(); ++k) {
    std::shared_ptr<Slot> slot = slots_[which[k]];
    {
      MutexLock lock(&slot->mu);
      if (slot->busy) {
        out[k].error = "still waiting for the answer to an earlier request";
        continue;
      }
      slot->busy = true;
    }
    {
      MutexLock lock(&round->mu);
      ++round->pending;
    }
    std::thread([round, k, slot, body = bodies[k]] {
      SetThreadName("annals-witness");
      auto note = note::ParseNote(body.substr(body.find("\n\n") + 2));
      Reply r = note.ok() ? Exchange(slot->http.get(), *slot->verifier, body, note->text)
                          : Reply{Reply::kRefused, "", 0, "cannot parse our own checkpoint"};
      {
        MutexLock lock(&slot->mu);
        slot->busy = false;
      }
      MutexLock lock(&round->mu);
      round->replies[k] = std::move(r);
      --round->pending;
      round->cv.NotifyAll();
    }).detach();
  }
  const auto deadline = std::chrono::steady_clock::now() + options_.request_timeout;
  MutexLock lock(&round->mu);
  while (round->pending > 0 && !stopped_)
    if (!round->cv.WaitUntil(&lock, std::min(deadline, std::chrono::steady_clock::now() +
                                                           std::chrono::milliseconds(100))) &&
        std::chrono::steady_clock::now() >= deadline)
      break;
  for (size_t k = 0; k < which.size(); ++k) {
    if (round->replies[k]) {
      out[k] = *round->replies[k];
    } else if (out[k].error.empty()) {
      // The request goes on on its own thread, aborted; the witness is
      // skipped until it ends.
      if (slots_[which[k]]->http) slots_[which[k]]->http->Abort();
      out[k].error = stopped_ ? "stopped" : "no answer within " + std::to_string(options_.request_timeout.count()) + " ms";
    }
  }
  return out;
}

std::string Cosigning::Cosign(const std::string& note, uint64_t size) {
  if (stopped_) return "";
  const auto started = std::chrono::steady_clock::now();
  const size_t n = slots_.size();
  std::vector<std::optional<Reply>> final(n);
  std::vector<uint64_t> sent_old(n, 0);
  auto phase = [&](const std::vector<size_t>& asked) {
    std::vector<size_t> which;
    std::vector<std::string> bodies;
    for (size_t i : asked) {
      auto body = Body(sent_old[i], size, note);
      if (!body.ok()) {
        final[i] = Reply{Reply::kRefused, "", 0, "no consistency proof from " + std::to_string(sent_old[i]) + ": " +
                                                      std::string(body.status().message())};
        continue;
      }
      which.push_back(i);
      bodies.push_back(std::move(*body));
    }
    std::vector<Reply> replies = Ask(which, bodies);
    for (size_t k = 0; k < which.size(); ++k) final[which[k]] = std::move(replies[k]);
  };
  std::vector<size_t> first;
  for (size_t i = 0; i < n; ++i) {
    if (!slots_[i]->http) continue;
    MutexLock lock(&slots_[i]->mu);
    sent_old[i] = slots_[i]->known.value_or(0);
    if (sent_old[i] > size) {
      final[i] = Reply{Reply::kRefused, "", 0,
                       "it holds " + std::to_string(sent_old[i]) + " entries of this log, more than the " +
                           std::to_string(size) + " signed now (the log was rolled back, or another process signs with its key)"};
      continue;
    }
    first.push_back(i);
  }
  phase(first);
  // 409 with the witness's size: ask again from there, once.
  std::vector<size_t> again;
  for (size_t i = 0; i < n; ++i) {
    if (!final[i] || final[i]->kind != Reply::kSize) continue;
    const uint64_t held = final[i]->size;
    if (metrics_) metrics_->Add("annals_witness_size_answers_total", "witness", slots_[i]->name);
    {
      MutexLock lock(&slots_[i]->mu);
      slots_[i]->known = held;
    }
    if (held > size) {
      final[i] = Reply{Reply::kRefused, "", 0,
                       "it holds " + std::to_string(held) + " entries of this log, more than the " + std::to_string(size) +
                           " signed now (the log was rolled back, or another process signs with its key)"};
    } else if (held == sent_old[i]) {
      final[i] = Reply{Reply::kRefused, "", 0, "409 for the size it says it holds (" + std::to_string(held) + ")"};
    } else {
      sent_old[i] = held;
      again.push_back(i);
    }
  }
  if (!again.empty() && !stopped_) phase(again);
  if (stopped_) return "";

  std::vector<bool> cosigned(n, false);
  std::string lines;
  {
    MutexLock lock(&mu_);
    for (size_t i = 0; i < n; ++i) {
      WitnessStatus& st = status_[i];
      if (!final[i]) continue;
      const Reply& r = *final[i];
      const std::string& name = slots_[i]->name;
      if (r.kind == Reply::kCosigned) {
        cosigned[i] = true;
        lines += r.line;
        st.cosigned = true;
        st.cosigned_size = size;
        st.last_error.clear();
        MutexLock slot_lock(&slots_[i]->mu);
        slots_[i]->known = size;
        if (metrics_) metrics_->Add("annals_witness_cosignatures_total", "witness", name);
        continue;
      }
      std::string err = r.kind == Reply::kSize ? "it holds size " + std::to_string(r.size) : r.error;
      if (st.last_error != err) log::Warning("witness %s did not cosign checkpoint %llu: %s", name.c_str(),
                                             static_cast<unsigned long long>(size), err.c_str());
      st.cosigned = false;
      st.last_error = err;
      if (metrics_)
        metrics_->Add(r.kind == Reply::kUnavailable ? "annals_witness_unreachable_total" : "annals_witness_refusals_total",
                      "witness", name);
    }
  }
  const bool met = policy_.QuorumMet(cosigned);
  const auto now = std::chrono::steady_clock::now();
  if (metrics_) {
    metrics_->Set("annals_witness_quorum_met", met ? 1 : 0);
    metrics_->AddNanos("annals_witness_round_seconds_total", "", "",
                       std::chrono::duration_cast<std::chrono::nanoseconds>(now - started).count());
  }
  if (met) {
    behind_since_.reset();
    return note + lines;
  }
  if (!behind_since_) behind_since_ = started;
  if (options_.wait.count() >= 0 && now - *behind_since_ >= options_.wait) {
    log::Warning("checkpoint %llu served without its witness quorum (%s) after waiting %lld ms",
                 static_cast<unsigned long long>(size), policy_.DescribeQuorum().c_str(),
                 static_cast<long long>(options_.wait.count()));
    if (metrics_) metrics_->Add("annals_checkpoints_unwitnessed_total", "", "");
    behind_since_.reset();
    return note + lines;
  }
  return "";
}

}  // namespace annals::client
