// Redactor: replaces the values a Policy names by commitments, in the
// event's own bytes (docs/security.md "Secrets", docs/format/redaction.md).
// Everything else stays byte for byte; the event stays valid JSON of the
// same shape, each redacted value now the JSON string
//
//   "redacted:v1:" + base64url(HMAC-SHA256(key = salt, message = value))
//
// where value is the original value's JSON text exactly as received
// (quotes included for a string) and salt is 32 random bytes of its own.
// The value and salt are returned to be sealed (redact/sealed_store.h),
// never stored in the log: whoever later holds both can show that the
// value is what the entry committed to (Verify), and without the salt a
// low-entropy value cannot be guessed from the commitment.
//
// Takes untrusted bytes (fuzz/redactor_fuzzer.cc): malformed JSON, or
// nesting beyond 64 levels, is an error and nothing is returned.
// Thread-safe (const after construction).
#ifndef ANNALS_REDACT_REDACTOR_H_
#define ANNALS_REDACT_REDACTOR_H_

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <bitset>
#include <vector>

#include "common/sha256.h"
#include "common/status.h"
#include "redact/policy.h"

namespace simdjson::dom {
class element;
}  // namespace simdjson::dom

namespace annals::redact {

using Salt = std::array<uint8_t, 32>;

struct SealedValue {
  std::string pointer;  // RFC 6901 JSON Pointer of the value in the event
  std::string value;    // the value's JSON text as received
  size_t offset = 0;    // where the value began in the received event
  Salt salt{};
  Hash mac{};           // HMAC-SHA256(salt, value)
  std::string commitment() const;
};

struct Redaction {
  std::string payload;               // the redacted event ("" when nothing was redacted)
  std::vector<SealedValue> values;   // in document order
};

inline constexpr std::string_view kCommitmentPrefix = "redacted:v1:";

// The commitment string of a MAC, and back (InvalidArgument if not one).
std::string CommitmentOf(const Hash& mac);
StatusOr<Hash> ParseCommitment(std::string_view commitment);
Hash MacOf(const Salt& salt, std::string_view value);
// Does (value, salt) open this commitment?
bool Verify(std::string_view commitment, std::string_view value, const Salt& salt);

class Redactor {
 public:
  explicit Redactor(Policy policy);
  const Policy& policy() const { return policy_; }
  const std::string& version() const { return version_; }

  // A cheap look at the bytes (one pass over the strings, no parse): false
  // means no rule can apply, so Apply would return nothing.
  // root_kind: the kind of the top-level object when it does not carry
  // one (a watched list's items); as for Apply.
  bool MayApply(std::string_view json, std::string_view root_kind = {}) const;
  // The same look over a document already parsed (its member names and
  // string values, decoded, as json_util::CheckUniqueKeys's walk hands
  // them over): true wherever MayApply(its bytes) is. A parser that walks
  // the document anyway looks with Triggers and always() itself:
  // MayApply(doc) is always() || Triggers(some name or string value).
  bool MayApply(const simdjson::dom::element& doc, std::string_view root_kind = {}) const;
  bool Triggers(std::string_view s) const { return IsTrigger(s); }
  bool always() const { return always_; }
  // Salts come from `salt` (tests), else from OpenSSL's CSPRNG.
  // A kind's rules apply to objects of that kind, to the items of a list
  // of them ("SecretList"), and to the top-level object when root_kind
  // names the kind it lacks.
  StatusOr<Redaction> Apply(std::string_view json, const std::function<Salt()>& salt = {},
                            std::string_view root_kind = {}) const;

  // `meta` (an entry metadata JSON object) with the redaction recorded:
  // "redacted": {"policy": version, "paths": [...]} (at most 64 paths
  // listed; "count" says how many there were).
  std::string RecordInMeta(std::string_view meta, const Redaction& r) const;

 private:
  struct Node;
  class Walk;
  Policy policy_;
  std::string version_;
  // Strings whose presence (as a whole JSON string) sends an event to the
  // parser: kinds, resources and annotation keys as they must appear
  // ("annotations" when an annotation rule is a prefix), member names
  // without regard to case. seen_ has a bit per (length, first letter
  // lower-cased) of some trigger: most strings are dismissed by it.
  static constexpr size_t kMaxTrigger = 64;
  struct Trigger {
    std::string text;  // lower-cased when caseless
    bool caseless;
  };
  bool IsTrigger(std::string_view s) const;
  std::vector<Trigger> triggers_;
  std::bitset<(kMaxTrigger + 1) * 256> seen_;
  bool always_ = false;  // a rule too long to look for: every event is parsed
  size_t max_key_ = 0;  // the longest key rule
};

}  // namespace annals::redact

#endif  // ANNALS_REDACT_REDACTOR_H_
