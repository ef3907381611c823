#include "client/reveal.h"

#include <nlohmann/json.hpp>

#include "checkpoint/checkpoint.h"
#include "checkpoint/note.h"
#include "common/bytes.h"
#include "common/sha256.h"
#include "merkle/merkle.h"
#include "redact/redactor.h"

namespace annals::client {

namespace {

using nlohmann::json;

StatusOr<json> GetJson(HttpClient* http, const std::string& path) {
  ASSIGN_OR_RETURN(HttpResult r, http->Get(path));
  json j = json::parse(r.body, nullptr, false);
  if (r.status != 200) {
    const std::string why = j.is_object() && j.contains("error") && j["error"].is_string()
                                ? j["error"].get<std::string>()
                                : r.body;
    if (r.status == 404) return NotFoundError(why);
    if (r.status == 403 || r.status == 401) return PermissionDeniedError(why);
    if (r.status == 412 || r.status == 409) return FailedPreconditionError(why);
    return UnavailableError("server answered " + std::to_string(r.status) + ": " + why);
  }
  if (!j.is_object()) return DataLossError("the server's answer to " + path + " is not a JSON object");
  return j;
}

std::string Escape(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      char b[4];
      std::snprintf(b, sizeof b, "%%%02X", c);
      out += b;
    }
  }
  return out;
}

}  // namespace

StatusOr<Revealed> Reveal(HttpClient* http, uint64_t index, const std::string& path, const std::string& vkey) {
  const std::string n = std::to_string(index);
  ASSIGN_OR_RETURN(json sealed, GetJson(http, "/v1/sealed?index=" + n + "&path=" + Escape(path)));
  ASSIGN_OR_RETURN(json entry, GetJson(http, "/v1/entries/" + n + "?payload=base64"));
  Revealed out;
  if (!sealed["value"].is_string() || !sealed["salt"].is_string() || !entry["entry"].is_string())
    return DataLossError("the server's answer lacks the value, the salt or the entry");
  out.value = sealed["value"].get<std::string>();
  auto salt_bytes = Base64Decode(sealed["salt"].get<std::string>());
  if (!salt_bytes || salt_bytes->size() != 32) return DataLossError("the server sent a salt that is not 32 bytes");
  redact::Salt salt;
  std::copy(salt_bytes->begin(), salt_bytes->end(), salt.begin());
  // The commitment as the entry holds it: from the entry's own bytes.
  auto raw = Base64Decode(entry["entry"].get<std::string>());
  if (!raw) return DataLossError("the entry is not base64");
  if (!entry.contains("payload_base64") || !entry["payload_base64"].is_string())
    return DataLossError("the server's answer lacks the entry's payload");
  auto payload = Base64Decode(entry["payload_base64"].get<std::string>());
  if (!payload) return DataLossError("the payload is not base64");
  json doc = json::parse(*payload, nullptr, false);
  json::json_pointer ptr;
  try {
    ptr = json::json_pointer(path);
  } catch (const json::exception&) {
    return InvalidArgumentError("not a JSON Pointer: " + path);
  }
  if (doc.is_discarded() || !doc.contains(ptr) || !doc.at(ptr).is_string())
    return NotFoundError("entry " + n + " holds no commitment at " + path);
  out.commitment = doc.at(ptr).get<std::string>();
  out.opens = redact::Verify(out.commitment, out.value, salt);
  if (!out.opens)
    return DataLossError("the value the server revealed does not open the commitment in entry " + n);
  if (vkey.empty()) return out;
  // The entry is the one the log signed: its leaf under the checkpoint's root.
  ASSIGN_OR_RETURN(auto verifier, note::Verifier::FromVerifierKey(vkey));
  if (!entry["checkpoint"].is_string() || !entry["inclusion_proof"].is_object())
    return UnavailableError("entry " + n + " is not in a checkpoint yet; try again in a moment");
  ASSIGN_OR_RETURN(note::Note note, note::OpenNote(entry["checkpoint"].get<std::string>(), *verifier));
  ASSIGN_OR_RETURN(checkpoint::Checkpoint cp, checkpoint::Parse(note.text));
  std::vector<Hash> proof;
  for (const auto& h : entry["inclusion_proof"]["hashes"]) {
    auto b = h.is_string() ? Base64Decode(h.get<std::string>()) : std::nullopt;
    if (!b || b->size() != 32) return DataLossError("a proof hash is not 32 bytes");
    Hash x;
    std::copy(b->begin(), b->end(), x.begin());
    proof.push_back(x);
  }
  // The payload the commitment was read from is the entry's: inline in
  // it, or (a blob) named by its digest in it.
  const Hash digest = Sha256(*payload);
  if (raw->find(*payload) == std::string::npos && raw->find(HashBytes(digest)) == std::string::npos)
    return DataLossError("entry " + n + "'s payload is not the one the entry the proof covers holds");
  Status s = merkle::VerifyInclusion(index, cp.size, merkle::HashLeaf(*raw), proof, cp.root);
  if (!s.ok()) return DataLossError("entry " + n + " is not in the signed checkpoint: " + s.message());
  out.in_signed_checkpoint = true;
  out.checkpoint_size = cp.size;
  return out;
}

StatusOr<uint64_t> Erase(HttpClient* http, uint64_t index, const std::string& path, const std::string& reason) {
  json body{{"index", index}, {"path", path}, {"reason", reason}};
  ASSIGN_OR_RETURN(HttpResult r, http->Post("/v1/erase", body.dump(), "application/json"));
  json j = json::parse(r.body, nullptr, false);
  if (r.status != 200) {
    const std::string why = j.is_object() && j.contains("error") && j["error"].is_string()
                                ? j["error"].get<std::string>()
                                : r.body;
    return FailedPreconditionError("server answered " + std::to_string(r.status) + ": " + why);
  }
  if (!j.is_object() || !j["entry"].is_number_unsigned()) return DataLossError("the server's answer has no entry");
  return j["entry"].get<uint64_t>();
}

}  // namespace annals::client
