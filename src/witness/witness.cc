#include "witness/witness.h"

#include <chrono>

#include "checkpoint/checkpoint.h"
#include "common/bytes.h"
#include "common/file_util.h"
#include "common/sha256.h"

namespace annals::witness {

namespace {

Answer Refuse(int status, std::string message) {
  Answer a;
  a.status = status;
  a.body = std::move(message);
  a.body += '\n';
  return a;
}

uint64_t SystemNow() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count());
}

}  // namespace

StatusOr<AddCheckpointRequest> ParseAddCheckpoint(std::string_view body) {
  if (body.size() > kMaxRequestBytes)
    return InvalidArgumentError("request body larger than " + std::to_string(kMaxRequestBytes) + " bytes");
  // The first empty line ends the proof: a checkpoint's origin line is
  // never empty, so the note's own blank line comes later.
  const size_t blank = body.find("\n\n");
  if (blank == std::string_view::npos) return InvalidArgumentError("no empty line before the checkpoint");
  std::string_view head = body.substr(0, blank + 1);
  AddCheckpointRequest r;
  r.checkpoint = std::string(body.substr(blank + 2));
  bool first = true;
  while (!head.empty()) {
    const size_t nl = head.find('\n');
    std::string_view line = head.substr(0, nl);
    head.remove_prefix(nl + 1);
    if (first) {
      first = false;
      if (!line.starts_with("old ")) return InvalidArgumentError("the first line is not \"old <size>\"");
      auto n = ParseDecimal(line.substr(4));
      if (!n) return InvalidArgumentError("old size is not a decimal without leading zeros");
      r.old_size = *n;
      continue;
    }
    if (r.proof.size() == kMaxProofLines)
      return InvalidArgumentError("more than " + std::to_string(kMaxProofLines) + " consistency proof lines");
    auto h = Base64Decode(line);
    if (!h || h->size() != 32u)
      return InvalidArgumentError("proof line " + std::to_string(r.proof.size() + 1) + " is not a base64 32-byte hash");
    Hash hash;
    std::copy(h->begin(), h->end(), reinterpret_cast<char*>(hash.data()));
    r.proof.push_back(hash);
  }
  if (first) return InvalidArgumentError("no old size line");
  return r;
}

StatusOr<std::unique_ptr<Witness>> Witness::Open(Options options) {
  std::unique_ptr<Witness> w(new Witness());
  ASSIGN_OR_RETURN(w->cosigner_, note::Cosigner::FromPrivateKey(options.key));
  if (!options.now) options.now = SystemNow;
  RETURN_IF_ERROR(MakeDirs(options.dir));
  MutexLock l(&w->mu_);
  for (const std::string& vkey : options.logs) {
    ASSIGN_OR_RETURN(auto v, note::Verifier::FromVerifierKey(vkey));
    Log& log = w->logs_[v->name()];
    log.keys.push_back(std::move(v));
  }
  w->options_ = std::move(options);
  for (auto& [origin, log] : w->logs_) {
    const std::string file = w->StateFile(origin);
    if (!FileExists(file)) continue;
    ASSIGN_OR_RETURN(std::string text, ReadFileToString(file));
    auto cp = checkpoint::Parse(text);
    if (!cp.ok() || cp->origin != origin)
      return DataLossError("witness state " + file + " is not a checkpoint of " + origin);
    log.size = cp->size;
    log.root = cp->root;
    log.seen = true;
  }
  return w;
}

std::string Witness::StateFile(std::string_view origin) const {
  // One file per log, named by its origin's hash (an origin is any text).
  return options_.dir + "/" + HexEncode(HashBytes(Sha256(origin)));
}

bool Witness::Latest(std::string_view origin, uint64_t* size, Hash* root) const {
  MutexLock l(&mu_);
  auto it = logs_.find(origin);
  if (it == logs_.end() || !it->second.seen) {
    *size = 0;
    return false;
  }
  *size = it->second.size;
  *root = it->second.root;
  return true;
}

Answer Witness::AddCheckpoint(std::string_view body) {
  auto req = ParseAddCheckpoint(body);
  if (!req.ok()) return Refuse(400, req.status().message());
  auto note = note::ParseNote(req->checkpoint);
  if (!note.ok()) return Refuse(400, "checkpoint: " + note.status().message());
  auto cp = checkpoint::Parse(note->text);
  if (!cp.ok()) return Refuse(400, "checkpoint: " + cp.status().message());
  MutexLock l(&mu_);
  auto it = logs_.find(cp->origin);
  if (it == logs_.end()) return Refuse(404, "unknown log " + cp->origin);
  Log& log = it->second;
  // Signed by one of the log's keys (others' signatures are ignored; a bad
  // one by a known key refuses the note).
  bool signed_by_log = false;
  for (const auto& key : log.keys) {
    auto opened = note::OpenNote(req->checkpoint, *key);
    if (opened.ok()) {
      signed_by_log = true;
    } else if (opened.status().message().starts_with("invalid signature")) {
      return Refuse(403, opened.status().message());
    }
  }
  if (!signed_by_log) return Refuse(403, "no valid signature by a key of " + cp->origin);
  if (req->old_size > cp->size)
    return Refuse(400, "old size " + std::to_string(req->old_size) + " is above the checkpoint's " +
                           std::to_string(cp->size));
  if (req->old_size != log.size) {
    Answer a;
    a.status = 409;
    a.content_type = std::string(kSizeContentType);
    a.body = std::to_string(log.size) + "\n";
    return a;
  }
  if (req->old_size == 0 && !req->proof.empty()) return Refuse(400, "a proof from size 0 must be empty");
  if (log.seen && req->old_size == cp->size) {
    if (cp->root != log.root) {
      // A fork: the same size with another root, both signed by the log.
      Answer a;
      a.status = 409;
      a.body = "a checkpoint of size " + std::to_string(cp->size) + " with another root was cosigned\n";
      return a;
    }
  } else if (req->old_size > 0) {
    Status s = merkle::VerifyConsistency(req->old_size, cp->size, req->proof, log.root, cp->root);
    if (!s.ok()) return Refuse(422, "consistency proof from " + std::to_string(req->old_size) + ": " + s.message());
  }
  // Persisted before the answer, so that no restart can cosign a rollback.
  if (!log.seen || cp->size != log.size) {
    Status s = WriteFileAtomic(StateFile(cp->origin), note->text);
    if (!s.ok()) return Refuse(500, "cannot persist the checkpoint: " + s.message());
    log.size = cp->size;
    log.root = cp->root;
    log.seen = true;
  }
  auto line = cosigner_->Cosign(note->text, options_.now());
  if (!line.ok()) return Refuse(500, line.status().message());
  Answer a;
  a.body = std::move(*line);
  return a;
}

Reply ReadAddCheckpointAnswer(int status, std::string_view content_type, std::string_view body,
                              std::string_view text, const note::CosignatureVerifier& verifier) {
  auto brief = [](std::string_view b) {
    std::string out(b.substr(0, 200));
    for (char& c : out)
      if (static_cast<unsigned char>(c) < 0x20) c = ' ';
    while (!out.empty() && out.back() == ' ') out.pop_back();
    return out;
  };
  if (status == 200) {
    // One or more signature lines; only this witness's counts.
    size_t pos = 0;
    while (pos < body.size()) {
      size_t end = body.find('\n', pos);
      if (end == std::string_view::npos) break;
      std::string line(body.substr(pos, end + 1 - pos));
      pos = end + 1;
      auto cosigned = note::ParseNote(std::string(text) + "\n" + line);
      if (cosigned.ok() && verifier.Verify(*cosigned).ok()) return Reply{Reply::kCosigned, line, 0, ""};
    }
    return Reply{Reply::kRefused, "", 0, "answered 200 without a valid cosignature by its key"};
  }
  if (status == 409 && content_type == kSizeContentType) {
    if (body.ends_with('\n')) {
      if (auto held = ParseDecimal(body.substr(0, body.size() - 1))) return Reply{Reply::kSize, "", *held, ""};
    }
    return Reply{Reply::kRefused, "", 0, "409 with a malformed size: " + brief(body)};
  }
  std::string why = "HTTP " + std::to_string(status);
  if (status == 409) why += " (it holds another tree of this size: a fork)";
  if (status == 422) why += " (it rejected the consistency proof)";
  if (!body.empty()) why += ": " + brief(body);
  return Reply{status >= 500 || status < 100 ? Reply::kUnavailable : Reply::kRefused, "", 0, why};
}

}  // namespace annals::witness
