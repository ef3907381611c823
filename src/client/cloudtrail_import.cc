#include "client/cloudtrail_import.h"

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>

#include "api/paths.h"
#include "common/bytes.h"
#include "common/file_util.h"
#include "common/sha256.h"
#include "ingest/cloud_audit.h"
#include "ingest/cloudtrail_digest.h"

namespace annals::client {

namespace {

using nlohmann::json;
namespace fs = std::filesystem;

constexpr size_t kMaxFile = 64u << 20;

// A file's content, inflated when it is gzip.
StatusOr<std::string> Content(const std::string& bytes) {
  if (!ingest::IsGzip(bytes)) return bytes;
  std::string out;
  RETURN_IF_ERROR(ingest::Gunzip(bytes, kMaxFile, &out));
  return out;
}

bool EndsWithKey(std::string_view rel, std::string_view key) {
  return rel == key || (rel.size() > key.size() && rel.ends_with(key) && rel[rel.size() - key.size() - 1] == '/');
}

struct LocalDigest {
  std::string rel, signature;
  std::optional<ingest::CloudTrailDigest> d;
  std::string verdict = "valid";  // of the file and its signature
  std::string chain;              // "first", "valid" or "INVALID: ..."
};

}  // namespace

StatusOr<CloudTrailImportResult> ImportCloudTrailDigests(HttpClient* http, const std::string& dir,
                                                         const std::map<std::string, std::string>& keys) {
  std::vector<std::string> digest_files, log_files;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    const std::string rel = fs::relative(it->path(), dir, ec).generic_string();
    const std::string name = it->path().filename().string();
    if (name.find("_CloudTrail-Digest_") != std::string::npos && name.ends_with(".json.gz")) {
      digest_files.push_back(rel);
    } else if (name.find("_CloudTrail_") != std::string::npos &&
               (name.ends_with(".json.gz") || name.ends_with(".json"))) {
      log_files.push_back(rel);
    }
  }
  if (ec) return UnavailableError("reading " + dir + ": " + ec.message());
  std::sort(digest_files.begin(), digest_files.end());
  std::sort(log_files.begin(), log_files.end());
  auto read = [&](const std::string& rel) { return ReadFileToString(dir + "/" + rel); };

  CloudTrailImportResult res;
  // Each digest: the file, where it lies, its signature.
  std::vector<LocalDigest> digests;
  for (const auto& rel : digest_files) {
    LocalDigest ld;
    ld.rel = rel;
    auto bytes = read(rel);
    if (!bytes.ok()) return bytes.status();
    auto text = Content(*bytes);
    auto d = text.ok() ? ingest::ParseCloudTrailDigest(*text) : StatusOr<ingest::CloudTrailDigest>(text.status());
    if (!d.ok()) {
      ld.verdict = "INVALID: " + d.status().message();
    } else {
      ld.d = std::move(*d);
      auto sig = ReadFileToString(dir + "/" + rel + ".sig");
      if (!EndsWithKey(rel, ld.d->object)) {
        ld.verdict = "INVALID: has been moved from its original location (" + ld.d->object + ")";
      } else if (!sig.ok()) {
        ld.verdict = "INVALID: no signature (" + rel + ".sig, the object's x-amz-meta-signature)";
      } else {
        ld.signature = AsciiLower(std::string(TrimJsonSpace(*sig)));
        if (Status v = ingest::VerifyDigestSignature(*ld.d, ld.signature, keys); !v.ok())
          ld.verdict = "INVALID: " + v.message();
      }
    }
    digests.push_back(std::move(ld));
  }
  // The chain, oldest first: each digest names the one before it by its
  // place, its hash and its signature.
  std::sort(digests.begin(), digests.end(), [](const LocalDigest& a, const LocalDigest& b) {
    const std::string ea = a.d ? a.d->end : "", eb = b.d ? b.d->end : "";
    return ea != eb ? ea < eb : a.rel < b.rel;
  });
  std::map<std::string, const LocalDigest*> by_object;
  for (const auto& ld : digests)
    if (ld.d) by_object[ld.d->bucket + "/" + ld.d->object] = &ld;
  for (auto& ld : digests) {
    if (!ld.d) continue;
    if (!ld.d->prev_object) {
      ld.chain = "first";
      continue;
    }
    auto it = by_object.find(ld.d->prev_bucket.value_or("") + "/" + *ld.d->prev_object);
    if (it == by_object.end()) {
      ld.chain = "INVALID: the previous digest " + *ld.d->prev_object + " is not here";
    } else if (AsciiLower(ld.d->prev_signature.value_or("")) != it->second->signature) {
      ld.chain = "INVALID: previousDigestSignature is not the signature of " + *ld.d->prev_object;
    } else if (AsciiLower(ld.d->prev_hash.value_or("")) != it->second->d->sha256) {
      ld.chain = "INVALID: previousDigestHashValue is not the SHA-256 of " + *ld.d->prev_object;
    } else {
      ld.chain = "valid";
    }
  }
  // The log files each valid digest vouches for.
  std::map<std::string, std::string> verdict_of;  // local log file -> verdict
  std::map<std::string, std::string> vouched;     // local log file -> the hash a valid digest gives it
  std::vector<std::string> events;                // the outcome records
  for (const auto& ld : digests) {
    ++res.digests;
    const bool ok = ld.verdict == "valid";
    if (ok) ++res.digests_valid;
    // A break in the chain (a digest missing or changed before this one) is
    // reported; the log files this digest's own valid signature vouches
    // for are still taken.
    if (ld.chain.starts_with("INVALID")) ++res.chain_breaks;
    res.lines.push_back("Digest file\t" + ld.rel + "\t" + ld.verdict +
                        (ld.chain.empty() || ld.chain == "valid" || ld.chain == "first" ? "" : " (chain " + ld.chain + ")"));
    if (!ld.d) {
      // Not even readable (an edit that broke its JSON or its gzip): the
      // outcome says so, under the file's place and the SHA-256 of its bytes.
      auto raw = read(ld.rel);
      const std::string sha = raw.ok() ? HexEncode(HashBytes(Sha256(*raw))) : "";
      events.push_back(json{{"specversion", "1.0"},
                            {"type", "annals.cloudtrail.digest"},
                            {"source", "annals:import-cloudtrail-digests"},
                            {"id", ld.rel + "@" + sha},
                            {"datacontenttype", "application/json"},
                            {"data", {{"digest", ld.rel}, {"file_sha256", sha}, {"signature", ld.verdict}}}}
                           .dump());
      continue;
    }
    json files = json::array();
    for (const auto& lf : ld.d->logs) {
      std::string result = "INVALID: not found";
      auto local = std::find_if(log_files.begin(), log_files.end(),
                                [&](const std::string& rel) { return EndsWithKey(rel, lf.object) ||
                                                                     EndsWithKey(rel + ".gz", lf.object); });
      if (!ok) {
        result = "INVALID: its digest is not valid";
      } else if (local != log_files.end()) {
        auto bytes = read(*local);
        if (!bytes.ok()) return bytes.status();
        auto text = Content(*bytes);
        if (!text.ok()) result = "INVALID: " + text.status().message();
        else if (HexEncode(HashBytes(Sha256(*text))) != lf.hash) result = "INVALID: hash value doesn't match";
        else result = "valid";
      }
      if (local != log_files.end()) {
        // A file two digests name (a backfill) is valid if one vouches for it.
        auto& v = verdict_of[*local];
        if (v != "valid") v = result;
        if (result == "valid") vouched[*local] = lf.hash;
      }
      files.push_back({{"object", lf.object}, {"hash", lf.hash}, {"result", result}});
    }
    json data{{"account", ld.d->account},
              {"digest", ld.d->bucket + "/" + ld.d->object},
              {"start", ld.d->start},
              {"end", ld.d->end},
              {"digest_sha256", ld.d->sha256},
              {"signature", ld.verdict},
              {"chain", ld.chain},
              {"log_files", files}};
    // The id names this digest's bytes and signature: importing it again
    // adds nothing; another verdict on the same bytes is a conflict.
    events.push_back(json{{"specversion", "1.0"},
                          {"type", "annals.cloudtrail.digest"},
                          {"source", "annals:import-cloudtrail-digests"},
                          {"id", ld.d->bucket + "/" + ld.d->object + "@" + ld.d->sha256 + ":" + ld.signature},
                          {"time", ld.d->end},
                          {"datacontenttype", "application/json"},
                          {"data", data}}
                         .dump());
  }
  // The outcome first: a log file that fails to post does not lose it.
  if (!events.empty()) {
    std::string body;
    for (const auto& e : events) body += e + "\n";
    ASSIGN_OR_RETURN(HttpResult r, http->Post(api::paths::kIngestEvents, body, "application/x-ndjson"));
    if (r.status != 200) return UnavailableError("recording the outcome: HTTP " + std::to_string(r.status) + " " + r.body);
  }
  for (const auto& rel : log_files) {
    ++res.log_files;
    auto it = verdict_of.find(rel);
    std::string v = it == verdict_of.end() ? "INVALID: no valid digest names it" : it->second;
    // The bytes posted are the bytes hashed: read once more here, so they
    // are checked again (a file changed since it was checked is refused).
    auto bytes = read(rel);
    if (!bytes.ok()) return bytes.status();
    if (v == "valid") {
      auto text = Content(*bytes);
      if (!text.ok() || HexEncode(HashBytes(Sha256(*text))) != vouched[rel]) v = "INVALID: changed while importing";
    }
    res.lines.push_back("Log file\t" + rel + "\t" + v);
    if (v != "valid") continue;
    ++res.log_files_valid;
    ASSIGN_OR_RETURN(HttpResult r, http->Post(api::paths::kIngestAwsCloudTrail, *bytes,
                                              ingest::IsGzip(*bytes) ? "application/gzip" : "application/json"));
    if (r.status != 200) return UnavailableError("POST " + rel + ": HTTP " + std::to_string(r.status) + " " + r.body);
    const json a = json::parse(r.body, nullptr, false);
    res.records_stored += a.value("stored", uint64_t{0});
    res.records_duplicate += a.value("duplicates", uint64_t{0});
  }
  res.lines.push_back(std::to_string(res.digests_valid) + "/" + std::to_string(res.digests) + " digest files valid");
  res.lines.push_back(std::to_string(res.log_files_valid) + "/" + std::to_string(res.log_files) +
                      " log files valid; " + std::to_string(res.records_stored) + " records stored, " +
                      std::to_string(res.records_duplicate) + " already in the ledger");
  return res;
}

}  // namespace annals::client
