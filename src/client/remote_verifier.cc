#include "client/remote_verifier.h"

#include <cstring>
#include <vector>

#include "api/paths.h"
#include "checkpoint/checkpoint.h"
#include "checkpoint/note.h"
#include "client/http_client.h"
#include "common/bytes.h"
#include "common/file_util.h"
#include "merkle/merkle.h"
#include "merkle/tile.h"

namespace annals::client {

namespace {

using merkle::kTileHeight;
using merkle::kTileWidth;

StatusOr<std::string> Fetch(HttpClient* c, const std::string& path) {
  ASSIGN_OR_RETURN(HttpResult r, c->Get(path));
  if (r.status != 200)
    return UnavailableError("GET " + path + ": HTTP " + std::to_string(r.status) + " " + r.body);
  return std::move(r.body);
}

StatusOr<checkpoint::Checkpoint> OpenCheckpoint(std::string_view note_text,
                                                const note::Verifier& v) {
  ASSIGN_OR_RETURN(note::Note n, note::OpenNote(note_text, v));
  ASSIGN_OR_RETURN(checkpoint::Checkpoint cp, checkpoint::Parse(n.text));
  if (cp.origin != v.name())
    return DataLossError("checkpoint origin " + cp.origin + " is not the key's " + v.name());
  return cp;
}

std::string TileUrl(std::string_view root, bool entries, uint64_t level, uint64_t index, uint64_t width) {
  return std::string(root) + merkle::FormatTilePath({entries, level, index, width});
}

// An annals server serves its log under /log/; a bucket the archiver
// writes (or any C2SP tlog-tiles log) holds it at the URL itself. The
// server's form is tried first; a 4xx answer there (a bucket answers 403
// or 404) tries the bare one. Sets *root to the prefix the log's paths
// take.
StatusOr<std::string> FetchCheckpointNote(HttpClient* c, std::string* root) {
  ASSIGN_OR_RETURN(HttpResult r, c->Get(api::paths::kCheckpoint));
  if (r.status == 200) {
    *root = api::paths::kLogRoot;
    return std::move(r.body);
  }
  if (r.status >= 400 && r.status < 500) {
    ASSIGN_OR_RETURN(HttpResult bare, c->Get("/checkpoint"));
    if (bare.status == 200) {
      *root = "/";
      return std::move(bare.body);
    }
  }
  return UnavailableError(std::string("GET ") + api::paths::kCheckpoint + ": HTTP " + std::to_string(r.status) +
                          " " + r.body);
}

}  // namespace

StatusOr<checkpoint::Checkpoint> FetchCheckpoint(HttpClient* http, const std::string& verifier_key) {
  ASSIGN_OR_RETURN(auto verifier, note::Verifier::FromVerifierKey(verifier_key));
  ASSIGN_OR_RETURN(std::string note_text, Fetch(http, api::paths::kCheckpoint));
  auto cp = OpenCheckpoint(note_text, *verifier);
  if (!cp.ok()) return DataLossError("served checkpoint: " + cp.status().message());
  return cp;
}

Status VerifyRemote(const std::string& url, const std::string& verifier_key,
                    const std::string& state_file,
                    const std::function<void(uint64_t, uint64_t)>& progress,
                    RemoteVerifyResult* result, const ClientAuth& auth, const witness::Policy* policy) {
  ASSIGN_OR_RETURN(auto verifier, note::Verifier::FromVerifierKey(verifier_key));
  ASSIGN_OR_RETURN(auto http, HttpClient::Create(url, auth));
  std::string root;
  ASSIGN_OR_RETURN(std::string note_text, FetchCheckpointNote(http.get(), &root));
  if (policy) {
    auto q = witness::CheckQuorum(*policy, note_text);
    if (!q.ok()) return DataLossError("served checkpoint: " + q.status().message());
    RETURN_IF_ERROR(witness::RequireQuorum(*policy, *q));
    result->witnessed = q->witnessed;
  }
  auto cp_or = OpenCheckpoint(note_text, *verifier);
  if (!cp_or.ok()) return DataLossError("served checkpoint: " + cp_or.status().message());
  const checkpoint::Checkpoint cp = *cp_or;

  bool have_old = false;
  checkpoint::Checkpoint old;
  if (!state_file.empty() && FileExists(state_file)) {
    ASSIGN_OR_RETURN(std::string old_note, ReadFileToString(state_file));
    auto o = OpenCheckpoint(old_note, *verifier);
    if (!o.ok()) return FailedPreconditionError("state file " + state_file + ": " + o.status().message());
    old = *o;
    have_old = true;
    if (cp.size < old.size)
      return DataLossError("log rolled back: served checkpoint has size " + std::to_string(cp.size) +
                           " but size " + std::to_string(old.size) + " was trusted before");
    result->previous_size = old.size;
  }

  merkle::CompactRange range;
  std::vector<std::vector<Hash>> pending(1);
  Status tile_status;
  auto check_tile = [&](uint64_t level, uint64_t index, const std::vector<Hash>& want) -> Status {
    std::string path = TileUrl(root, false, level, index, want.size());
    ASSIGN_OR_RETURN(std::string have, Fetch(http.get(), path));
    if (have.size() != want.size() * 32)
      return DataLossError(path + ": " + std::to_string(have.size()) + " bytes, want " +
                           std::to_string(want.size() * 32));
    const uint64_t span = uint64_t{1} << (kTileHeight * level);
    for (size_t k = 0; k < want.size(); ++k)
      if (std::memcmp(have.data() + k * 32, want[k].data(), 32) != 0)
        return DataLossError(path + ": hash " + std::to_string(k) +
                             " does not match the entries from " +
                             std::to_string((index * kTileWidth + k) * span));
    ++result->tiles;
    return OkStatus();
  };
  auto check_root_at_old = [&]() -> Status {
    if (have_old && range.size() == old.size && range.Root() != old.root)
      return DataLossError("fork: the served entries below size " + std::to_string(old.size) +
                           " do not hash to the checkpoint trusted before");
    return OkStatus();
  };
  RETURN_IF_ERROR(check_root_at_old());

  const uint64_t bundles = (cp.size + kTileWidth - 1) / kTileWidth;
  for (uint64_t b = 0; b < bundles; ++b) {
    const uint64_t width = std::min<uint64_t>(kTileWidth, cp.size - b * kTileWidth);
    std::string path = TileUrl(root, true, 0, b, width);
    ASSIGN_OR_RETURN(std::string bundle, Fetch(http.get(), path));
    std::string_view v = bundle;
    for (uint64_t k = 0; k < width; ++k) {
      if (v.size() < 2) return DataLossError(path + ": bundle ends after " + std::to_string(k) + " entries");
      uint16_t len = GetBigEndian16(v.data());
      if (v.size() - 2 < len) return DataLossError(path + ": entry " + std::to_string(b * kTileWidth + k) + " truncated");
      Hash leaf = merkle::HashLeaf(v.substr(2, len));
      v.remove_prefix(2 + len);
      range.Append(leaf, [&](uint64_t level, uint64_t index, const Hash& h) {
        if (!tile_status.ok() || level % kTileHeight) return;
        uint64_t tl = level / kTileHeight;
        if (tl >= pending.size()) pending.resize(tl + 1);
        pending[tl].push_back(h);
        if (pending[tl].size() == kTileWidth) {
          tile_status = check_tile(tl, index / kTileWidth, pending[tl]);
          pending[tl].clear();
        }
      });
      RETURN_IF_ERROR(tile_status);
      RETURN_IF_ERROR(check_root_at_old());
    }
    if (!v.empty()) return DataLossError(path + ": trailing bytes after " + std::to_string(width) + " entries");
    if (progress) progress(b + 1, bundles);
  }
  // The partial tiles at the right edge of each level.
  for (uint64_t tl = 0; tl < pending.size(); ++tl) {
    if (pending[tl].empty()) continue;
    uint64_t index = (cp.size >> (kTileHeight * tl)) / kTileWidth;
    RETURN_IF_ERROR(check_tile(tl, index, pending[tl]));
  }
  if (range.Root() != cp.root)
    return DataLossError("the served entries do not hash to the checkpoint's root at size " +
                         std::to_string(cp.size));
  result->size = cp.size;
  result->checkpoint = note_text;
  if (!state_file.empty()) RETURN_IF_ERROR(WriteFileAtomic(state_file, note_text, 0644));
  return OkStatus();
}

}  // namespace annals::client
