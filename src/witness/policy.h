// Policy: which logs a checkpoint may come from and which witnesses must
// have cosigned it, in the C2SP tlog-policy format (also Sigsum's, whose
// keys are hex; docs/witness.md "Policies"):
//
//   log <vkey> [<url>]
//   witness <name> <vkey> [<url>]
//   group <name> all|any|<k> <name>...
//   quorum <name>
//
// Fields are separated by spaces and tabs; '#' starts a comment that runs
// to the end of the line. Witness keys are cosignature keys (vkey type
// 0x04) or 64 hex digits, read as a cosignature key named by the witness's
// name. A log key is an Ed25519 vkey (0x01) whose name is the log's origin,
// or hex (a Sigsum log: origin sigsum.org/v1/tree/<hex SHA-256 of the key>).
// A group counts its members (witnesses or groups defined before it) that
// are satisfied; `none` is the predefined empty quorum. Immutable once
// parsed; thread-safe.
#ifndef ANNALS_WITNESS_POLICY_H_
#define ANNALS_WITNESS_POLICY_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "checkpoint/cosignature.h"
#include "checkpoint/note.h"
#include "common/status.h"

namespace annals::witness {

// Bounds on what a policy may define (tlog-policy asks for at least 32 each).
inline constexpr size_t kMaxPolicyEntries = 256;
inline constexpr size_t kMaxPolicyBytes = 64 << 10;

class Policy {
 public:
  struct Log {
    std::string origin;
    std::shared_ptr<const note::Verifier> verifier;
    std::string url;  // may be empty
  };
  struct Witness {
    std::string name;  // the policy's name for it
    std::shared_ptr<const note::CosignatureVerifier> verifier;
    std::string url;  // its submission prefix; may be empty
  };

  // InvalidArgument "line N: ..." for anything malformed or inconsistent
  // (unknown or duplicate names, duplicate keys, a group's k outside 1..n,
  // no or two quorum lines).
  static StatusOr<Policy> Parse(std::string_view text);

  const std::vector<Log>& logs() const { return logs_; }
  const std::vector<Witness>& witnesses() const { return witnesses_; }
  // The log whose origin this is, or nullptr.
  const Log* FindLog(std::string_view origin) const;

  // Whether the witnesses marked true (indexes into witnesses()) meet the
  // quorum.
  bool QuorumMet(const std::vector<bool>& cosigned) const;
  // Which witnesses' cosignatures on note verify. A cosignature by a
  // policy witness's key that does not verify is reported in *problems
  // (one line each) and not counted.
  std::vector<bool> Cosigned(const note::Note& note, std::vector<std::string>* problems) const;
  // The quorum rule in words ("2 of {a, b, c}", "none").
  std::string DescribeQuorum() const;
  // The quorum rule as a tree, for clients that evaluate it themselves
  // (the console): a witness (witness >= 0, its index) or a group whose
  // k members must be met (`none`: a group of k = 0).
  struct Rule {
    std::string name;
    int witness = -1;
    size_t k = 0;
    std::vector<Rule> members;
  };
  Rule QuorumRule() const;

 private:
  struct Node {
    std::string name;
    int witness = -1;       // index into witnesses_ for a witness node
    size_t k = 0;           // for a group: how many members must be met
    std::vector<size_t> members;  // node indexes
  };
  bool Met(size_t node, const std::vector<bool>& cosigned) const;
  std::string Describe(size_t node) const;
  Rule RuleOf(size_t node) const;

  std::vector<Log> logs_;
  std::vector<Witness> witnesses_;
  std::vector<Node> nodes_;
  size_t quorum_ = 0;
};

// A checkpoint held against a policy.
struct QuorumCheck {
  std::string origin;
  uint64_t size = 0;
  std::vector<std::string> witnessed;  // policy names whose cosignatures verify
  std::vector<std::string> missing;    // the other policy witnesses
  std::vector<std::string> problems;   // cosignatures by policy keys that do not verify
  bool met = false;
};
// Parses `note` (a checkpoint), checks it is signed by the policy's log of
// its origin and which witnesses cosigned it. InvalidArgument for a
// malformed note; Unauthenticated for an unknown origin or a bad or
// missing log signature. A quorum not met is not an error here (met).
StatusOr<QuorumCheck> CheckQuorum(const Policy& policy, std::string_view note);
// Unauthenticated "witness quorum not met: ..." unless check.met.
Status RequireQuorum(const Policy& policy, const QuorumCheck& check);

}  // namespace annals::witness

#endif  // ANNALS_WITNESS_POLICY_H_
