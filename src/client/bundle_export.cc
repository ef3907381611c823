#include "client/bundle_export.h"

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "api/paths.h"
#include "checkpoint/checkpoint.h"
#include "checkpoint/note.h"
#include "common/bytes.h"
#include "ledger/entry.h"

namespace annals::client {

namespace {

StatusOr<nlohmann::json> GetJson(HttpClient* http, const std::string& path) {
  ASSIGN_OR_RETURN(HttpResult r, http->Get(path));
  if (r.status != 200)
    return UnavailableError("GET " + path + ": HTTP " + std::to_string(r.status) + ": " +
                            r.body.substr(0, 300));
  auto j = nlohmann::json::parse(r.body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return DataLossError("GET " + path + ": not JSON");
  return j;
}

StatusOr<Hash> DecodeHash(const nlohmann::json& j) {
  if (!j.is_string()) return DataLossError("a proof hash is not a string");
  auto b = Base64Decode(j.get<std::string>());
  if (!b || b->size() != sizeof(Hash)) return DataLossError("a proof hash is not base64 SHA-256");
  Hash h;
  std::copy(b->begin(), b->end(), reinterpret_cast<char*>(h.data()));
  return h;
}

}  // namespace

StatusOr<std::string> ExportBundle(HttpClient* http, const std::string& verifier_key,
                                   std::vector<uint64_t> indexes, ledger::BundleReport* report) {
  std::sort(indexes.begin(), indexes.end());
  indexes.erase(std::unique(indexes.begin(), indexes.end()), indexes.end());
  if (indexes.size() > ledger::kMaxBundleEntries)
    return InvalidArgumentError("at most " + std::to_string(ledger::kMaxBundleEntries) +
                                " entries in one bundle");
  ASSIGN_OR_RETURN(auto verifier, note::Verifier::FromVerifierKey(verifier_key));
  ASSIGN_OR_RETURN(HttpResult cr, http->Get(api::paths::kCheckpoint));
  if (cr.status != 200) return UnavailableError("GET /log/checkpoint: HTTP " + std::to_string(cr.status));
  auto opened = note::OpenNote(cr.body, *verifier);
  if (!opened.ok()) return DataLossError("served checkpoint: " + opened.status().message());
  ASSIGN_OR_RETURN(checkpoint::Checkpoint cp, checkpoint::Parse(opened->text));

  ledger::Bundle b;
  b.checkpoint = cr.body;
  char hash[9];
  std::snprintf(hash, sizeof(hash), "%08x", verifier->key_hash());
  b.key = verifier->name() + "+" + hash;
  for (uint64_t i : indexes) {
    if (i >= cp.size)
      return FailedPreconditionError("entry " + std::to_string(i) +
                                     " is newer than the latest checkpoint (size " +
                                     std::to_string(cp.size) + "); ask again in a second");
    ASSIGN_OR_RETURN(nlohmann::json e, GetJson(http, api::paths::kEntriesPrefix + std::to_string(i) +
                                                          "?payload=base64"));
    if (!e.contains("entry") || !e["entry"].is_string())
      return DataLossError("entry " + std::to_string(i) + ": no entry bytes in the answer");
    auto bytes = Base64Decode(e["entry"].get<std::string>());
    if (!bytes) return DataLossError("entry " + std::to_string(i) + ": entry is not base64");
    ASSIGN_OR_RETURN(nlohmann::json p,
                     GetJson(http, std::string(api::paths::kInclusionProof) + "?index=" +
                                       std::to_string(i) + "&tree_size=" + std::to_string(cp.size)));
    ledger::BundleEntry be;
    be.index = i;
    be.entry = std::move(*bytes);
    // A payload kept in the blob store (over 64 KiB) goes in with it.
    if (auto dec = ledger::DecodeEntry(be.entry); dec.ok() && dec->external) {
      if (!e.contains("payload_base64") || !e["payload_base64"].is_string())
        return DataLossError("entry " + std::to_string(i) + ": no payload in the answer");
      auto payload = Base64Decode(e["payload_base64"].get<std::string>());
      if (!payload) return DataLossError("entry " + std::to_string(i) + ": payload is not base64");
      be.payload = std::move(*payload);
    }
    if (!p.contains("hashes") || !p["hashes"].is_array())
      return DataLossError("inclusion proof of " + std::to_string(i) + ": no hashes");
    for (const auto& h : p["hashes"]) {
      ASSIGN_OR_RETURN(Hash hh, DecodeHash(h));
      be.proof.push_back(hh);
    }
    b.entries.push_back(std::move(be));
  }
  ASSIGN_OR_RETURN(std::string tar_bytes, ledger::EncodeBundle(b));
  // What is handed over verifies: a server answering wrong entries or
  // proofs fails here, not at the auditor's.
  auto checked = ledger::VerifyBundle(tar_bytes, verifier_key);
  if (!checked.ok()) return DataLossError("the served log's answers do not verify: " + checked.status().message());
  if (report) *report = *checked;
  return tar_bytes;
}

StatusOr<std::vector<uint64_t>> IndexesOfAnswer(HttpClient* http, const std::string& query) {
  std::vector<uint64_t> out;
  std::string path = query;
  for (;;) {
    ASSIGN_OR_RETURN(nlohmann::json j, GetJson(http, path));
    if (!j.contains("events") || !j["events"].is_array())
      return InvalidArgumentError("the answer lists no events to export");
    for (const auto& e : j["events"]) {
      if (!e.contains("index") || !e["index"].is_number_unsigned())
        return DataLossError("an event in the answer has no index");
      out.push_back(e["index"].get<uint64_t>());
      if (out.size() > ledger::kMaxBundleEntries)
        return InvalidArgumentError("more than " + std::to_string(ledger::kMaxBundleEntries) +
                                    " events: narrow the question");
    }
    if (!j.contains("next_cursor") || !j["next_cursor"].is_number_unsigned()) return out;
    path = query + (query.find('?') == std::string::npos ? "?" : "&") + "cursor=" +
           std::to_string(j["next_cursor"].get<uint64_t>());
  }
}

}  // namespace annals::client
