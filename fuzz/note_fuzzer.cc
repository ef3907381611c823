// Feeds arbitrary bytes to note::ParseNote and checkpoint::Parse. Neither may
// crash; a note that parses must re-serialise to exactly the input, and a
// checkpoint that parses must re-marshal to exactly its text.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "checkpoint/checkpoint.h"
#include "checkpoint/note.h"
#include "common/bytes.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  using annals::note::Note;
  using annals::note::Signature;

  auto body = annals::checkpoint::Parse(input);
  if (body.ok() && body->Marshal() != input) std::abort();

  annals::StatusOr<Note> note = annals::note::ParseNote(input);
  if (!note.ok()) return 0;
  std::string out = note->text + "\n";
  for (const Signature& sig : note->signatures) {
    std::string blob;
    annals::PutBigEndian32(&blob, sig.key_hash);
    blob += sig.signature;
    out += "\xe2\x80\x94 " + sig.name + " " + annals::Base64Encode(blob) + "\n";
  }
  if (out != input) std::abort();

  auto cp = annals::checkpoint::Parse(note->text);
  if (cp.ok() && cp->Marshal() != note->text) std::abort();
  return 0;
}
