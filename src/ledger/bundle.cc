#include "ledger/bundle.h"

#include <cstdio>

#include "checkpoint/checkpoint.h"
#include "checkpoint/note.h"
#include "common/bytes.h"
#include "common/tar.h"
#include "ledger/entry.h"
#include "merkle/merkle.h"

namespace annals::ledger {

namespace {

constexpr char kMagicLine[] = "annals-bundle 1";
constexpr char kManifest[] = "manifest";
constexpr char kCheckpoint[] = "checkpoint";

std::string EntryName(uint64_t i) { return "entries/" + std::to_string(i); }
std::string ProofName(uint64_t i) { return "proofs/" + std::to_string(i); }
std::string PayloadName(uint64_t i) { return "payloads/" + std::to_string(i); }

// "<key>: <value>" (the manifest's lines), or nullopt.
std::optional<std::string_view> Field(std::string_view line, std::string_view key) {
  if (line.size() <= key.size() + 1 || !line.starts_with(key) || line[key.size()] != ' ')
    return std::nullopt;
  return line.substr(key.size() + 1);
}

std::vector<std::string_view> Lines(std::string_view s) {
  std::vector<std::string_view> out;
  while (!s.empty()) {
    const size_t nl = s.find('\n');
    if (nl == std::string_view::npos) {
      out.push_back(s);  // no final newline: caught by the re-encoding check
      break;
    }
    out.push_back(s.substr(0, nl));
    s.remove_prefix(nl + 1);
  }
  return out;
}

std::string Manifest(const std::string& origin, const std::string& key, uint64_t size,
                     const std::vector<BundleEntry>& entries) {
  std::string m = std::string(kMagicLine) + "\norigin " + origin + "\nkey " + key +
                  "\ntree_size " + std::to_string(size) + "\nentries " +
                  std::to_string(entries.size()) + "\n";
  for (const auto& e : entries) m += std::to_string(e.index) + "\n";
  return m;
}

std::string ProofText(const std::vector<Hash>& proof) {
  std::string s;
  for (const Hash& h : proof) {
    s += Base64Encode(std::string_view(reinterpret_cast<const char*>(h.data()), h.size()));
    s += '\n';
  }
  return s;
}

}  // namespace

StatusOr<std::string> EncodeBundle(const Bundle& b) {
  ASSIGN_OR_RETURN(note::Note n, note::ParseNote(b.checkpoint));
  ASSIGN_OR_RETURN(checkpoint::Checkpoint cp, checkpoint::Parse(n.text));
  for (size_t k = 0; k < b.entries.size(); ++k) {
    if (k > 0 && b.entries[k].index <= b.entries[k - 1].index)
      return InvalidArgumentError("bundle entries must be in ascending index order, once each");
    if (b.entries[k].index >= cp.size)
      return InvalidArgumentError("entry " + std::to_string(b.entries[k].index) +
                                  " is not under the checkpoint (size " + std::to_string(cp.size) + ")");
  }
  std::vector<tar::File> files;
  files.push_back({kManifest, Manifest(cp.origin, b.key, cp.size, b.entries)});
  files.push_back({kCheckpoint, b.checkpoint});
  for (const auto& e : b.entries) {
    files.push_back({EntryName(e.index), e.entry});
    files.push_back({ProofName(e.index), ProofText(e.proof)});
    if (!e.payload.empty()) {
      auto dec = DecodeEntry(e.entry);
      if (!dec.ok() || !dec->external)
        return InvalidArgumentError("entry " + std::to_string(e.index) +
                                    " carries its payload itself: a bundle takes only blob payloads");
      files.push_back({PayloadName(e.index), e.payload});
    }
  }
  return tar::Write(files);
}

StatusOr<BundleReport> VerifyBundle(std::string_view bytes, std::string_view vkey, Bundle* out) {
  ASSIGN_OR_RETURN(auto verifier, note::Verifier::FromVerifierKey(vkey));
  auto files = tar::Read(bytes, 2 + 3 * kMaxBundleEntries);
  if (!files.ok()) return DataLossError("bundle: " + files.status().message());
  if (files->size() < 2 || (*files)[0].name != kManifest || (*files)[1].name != kCheckpoint)
    return DataLossError("bundle: does not start with its manifest and checkpoint");

  // The manifest, strictly: it must be exactly what EncodeBundle writes.
  const std::string& manifest = (*files)[0].data;
  const auto lines = Lines(manifest);
  if (lines.size() < 5 || lines[0] != kMagicLine)
    return DataLossError("bundle manifest: not an annals-bundle 1 manifest");
  auto origin = Field(lines[1], "origin");
  auto key = Field(lines[2], "key");
  auto size_text = Field(lines[3], "tree_size");
  auto count_text = Field(lines[4], "entries");
  std::optional<uint64_t> size, count;
  if (size_text) size = ParseDecimal(*size_text);
  if (count_text) count = ParseDecimal(*count_text);
  if (!origin || !key || !size || !count || *count != lines.size() - 5)
    return DataLossError("bundle manifest: bad header lines");
  if (*count > kMaxBundleEntries || files->size() < 2 + 2 * *count ||
      files->size() > 2 + 3 * *count)
    return DataLossError("bundle: the manifest lists " + std::to_string(*count) +
                         " entries, the archive holds " + std::to_string(files->size()) + " members");
  std::vector<BundleEntry> entries;
  for (uint64_t k = 0; k < *count; ++k) {
    auto index = ParseDecimal(lines[5 + k]);
    if (!index || (k > 0 && *index <= entries.back().index))
      return DataLossError("bundle manifest: entry line " + std::to_string(k) +
                           " is not an index above the one before");
    entries.push_back({*index, {}, {}, {}});
  }
  // The key named must be the key given: same name and key hash.
  char hash[9];
  std::snprintf(hash, sizeof(hash), "%08x", verifier->key_hash());
  if (*key != verifier->name() + "+" + hash)
    return DataLossError("bundle: made for key " + std::string(*key) + ", not " +
                         verifier->name() + "+" + hash);

  // The checkpoint: signed by that key, for that origin and size.
  const std::string& note_text = (*files)[1].data;
  auto opened = note::OpenNote(note_text, *verifier);
  if (!opened.ok()) return DataLossError("bundle checkpoint: " + opened.status().message());
  auto cp = checkpoint::Parse(opened->text);
  if (!cp.ok()) return DataLossError("bundle checkpoint: " + cp.status().message());
  if (cp->origin != verifier->name() || cp->origin != *origin || cp->size != *size)
    return DataLossError("bundle checkpoint: origin " + cp->origin + " size " +
                         std::to_string(cp->size) + " disagree with the manifest and key");
  // Canonical manifest: nothing in it that the writer would not put there.
  if (manifest != Manifest(cp->origin, std::string(*key), cp->size, entries))
    return DataLossError("bundle manifest: not in canonical form");

  BundleReport report;
  report.origin = cp->origin;
  report.tree_size = cp->size;
  size_t m = 2;  // the next member
  for (uint64_t k = 0; k < *count; ++k) {
    BundleEntry& e = entries[k];
    if (files->size() < m + 2)
      return DataLossError("bundle: " + EntryName(e.index) + " or its proof is missing");
    const tar::File& ef = (*files)[m];
    const tar::File& pf = (*files)[m + 1];
    m += 2;
    if (ef.name != EntryName(e.index) || pf.name != ProofName(e.index))
      return DataLossError("bundle: member " + ef.name + " where " + EntryName(e.index) +
                           " was due");
    const tar::File* payload = nullptr;
    if (m < files->size() && (*files)[m].name == PayloadName(e.index)) payload = &(*files)[m++];
    const std::string where = EntryName(e.index);
    if (e.index >= cp->size)
      return DataLossError(where + ": not under the checkpoint (size " + std::to_string(cp->size) + ")");
    for (std::string_view line : Lines(pf.data)) {
      auto h = Base64Decode(line);
      if (!h || h->size() != sizeof(Hash))
        return DataLossError(ProofName(e.index) + ": not one base64 SHA-256 hash per line");
      Hash hash_bytes;
      std::copy(h->begin(), h->end(), reinterpret_cast<char*>(hash_bytes.data()));
      e.proof.push_back(hash_bytes);
    }
    if (ProofText(e.proof) != pf.data)
      return DataLossError(ProofName(e.index) + ": not in canonical form");
    auto dec = DecodeEntry(ef.data);
    if (!dec.ok()) return DataLossError(where + ": " + dec.status().message());
    if (dec->external) ++report.external_payloads;
    if (payload != nullptr) {
      if (!dec->external)
        return DataLossError(PayloadName(e.index) + ": the entry holds its payload itself");
      if (payload->data.size() != dec->payload_size || Sha256(payload->data) != dec->payload_digest)
        return DataLossError(PayloadName(e.index) + ": not the payload the entry names (SHA-256 " +
                             HexEncode(std::string_view(
                                 reinterpret_cast<const char*>(dec->payload_digest.data()), 32)) +
                             ", " + std::to_string(dec->payload_size) + " bytes)");
      e.payload = payload->data;
      ++report.external_payloads_included;
    }
    Status in = merkle::VerifyInclusion(e.index, cp->size, merkle::HashLeaf(ef.data), e.proof,
                                        cp->root);
    if (!in.ok())
      return DataLossError(where + ": not the entry the checkpoint's tree holds at " +
                           std::to_string(e.index) + " (" + in.message() + ")");
    e.entry = ef.data;
    report.indexes.push_back(e.index);
  }
  if (m != files->size())
    return DataLossError("bundle: member " + (*files)[m].name + " is not one the manifest names");
  if (out) {
    out->checkpoint = note_text;
    out->key = std::string(*key);
    out->entries = std::move(entries);
  }
  return report;
}

}  // namespace annals::ledger
