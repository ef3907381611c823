#include "witness/policy.h"

#include <map>
#include <set>
#include <utility>

#include "checkpoint/checkpoint.h"
#include "common/bytes.h"
#include "common/sha256.h"

namespace annals::witness {
namespace {

// The fields of one line: split on spaces and tabs, '#' to the end of the
// line dropped.
std::vector<std::string_view> Fields(std::string_view line) {
  if (size_t hash = line.find('#'); hash != std::string_view::npos) line = line.substr(0, hash);
  return SplitFields(line);
}

bool IsHexKey(std::string_view s) {
  return s.size() == 64 && s.find_first_not_of("0123456789abcdefABCDEF") == std::string_view::npos;
}

// tlog-policy's character set: tab, newline, printable ASCII, and any byte
// with the high bit set (opaque here).
bool AllowedBytes(std::string_view s) {
  for (unsigned char c : s)
    if (c != '\t' && c != '\n' && c != '\r' && c < 0x20) return false;
  for (unsigned char c : s)
    if (c == 0x7f) return false;
  return true;
}

}  // namespace

StatusOr<Policy> Policy::Parse(std::string_view text) {
  if (text.size() > kMaxPolicyBytes)
    return InvalidArgumentError("policy is " + std::to_string(text.size()) + " bytes; at most " +
                                std::to_string(kMaxPolicyBytes) + " are read");
  if (!AllowedBytes(text)) return InvalidArgumentError("policy holds control characters");
  Policy p;
  std::map<std::string, size_t, std::less<>> names;  // witness and group names -> node
  std::set<std::string> keys;                         // every key's bytes, to refuse duplicates
  std::set<std::string> origins;
  names["none"] = 0;
  p.nodes_.push_back(Node{"none", -1, 0, {}});
  bool have_quorum = false;
  size_t line_no = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    const std::vector<std::string_view> f = Fields(line);
    if (f.empty()) continue;
    auto fail = [&](const std::string& why) {
      return InvalidArgumentError("line " + std::to_string(line_no) + ": " + why);
    };
    if (p.logs_.size() + p.nodes_.size() > kMaxPolicyEntries)
      return fail("more than " + std::to_string(kMaxPolicyEntries) + " logs, witnesses and groups");
    const std::string_view kw = f[0];
    if (kw == "log") {
      if (f.size() < 2 || f.size() > 3) return fail("want: log <vkey> [<url>]");
      Log log;
      std::string key;
      if (IsHexKey(f[1])) {
        key = *HexDecode(AsciiLower(std::string(f[1])));
        log.origin = "sigsum.org/v1/tree/" + HexEncode(std::string_view(
                                                 reinterpret_cast<const char*>(Sha256(key).data()), 32));
        auto v = note::Verifier::FromVerifierKey(
            note::VerifierKeyText(log.origin, note::KeyHash(log.origin, key), key));
        if (!v.ok()) return fail(std::string(v.status().message()));
        log.verifier = std::move(*v);
      } else {
        auto v = note::Verifier::FromVerifierKey(f[1]);
        if (!v.ok()) return fail("log key: " + std::string(v.status().message()));
        auto fields = note::ParseVerifierKeyFields(f[1], note::kAlgEd25519);
        if (!fields.ok()) return fail("log key: " + std::string(fields.status().message()));
        key = fields->key;
        log.origin = (*v)->name();
        log.verifier = std::move(*v);
      }
      if (!keys.insert(key).second) return fail("the key of log " + log.origin + " is listed twice");
      if (!origins.insert(log.origin).second) return fail("log " + log.origin + " is listed twice");
      if (f.size() == 3) log.url = f[2];
      p.logs_.push_back(std::move(log));
    } else if (kw == "witness") {
      if (f.size() < 3 || f.size() > 4) return fail("want: witness <name> <vkey> [<url>]");
      const std::string name(f[1]);
      if (names.contains(name)) return fail("the name " + name + " is already defined");
      if (!note::ValidKeyName(name)) return fail("bad witness name " + name);
      std::string key;
      std::string vkey(f[2]);
      if (IsHexKey(f[2])) {
        key = *HexDecode(AsciiLower(vkey));
        vkey = note::VerifierKeyText(name, note::KeyHash(name, key, note::kAlgCosignatureV1), key,
                                     note::kAlgCosignatureV1);
      } else {
        auto fields = note::ParseVerifierKeyFields(vkey, note::kAlgCosignatureV1);
        if (!fields.ok())
          return fail("witness " + name + ": " + std::string(fields.status().message()) +
                      " (witness keys are cosignature/v1 keys, type 0x04)");
        key = fields->key;
      }
      auto v = note::CosignatureVerifier::FromVerifierKey(vkey);
      if (!v.ok()) return fail("witness " + name + ": " + std::string(v.status().message()));
      if (!keys.insert(key).second) return fail("the key of witness " + name + " is listed twice");
      Witness w{name, std::move(*v), f.size() == 4 ? std::string(f[3]) : std::string()};
      names[name] = p.nodes_.size();
      p.nodes_.push_back(Node{name, static_cast<int>(p.witnesses_.size()), 0, {}});
      p.witnesses_.push_back(std::move(w));
    } else if (kw == "group") {
      if (f.size() < 4) return fail("want: group <name> all|any|<k> <name>...");
      const std::string name(f[1]);
      if (names.contains(name)) return fail("the name " + name + " is already defined");
      Node g{name, -1, 0, {}};
      std::set<size_t> seen;
      for (size_t i = 3; i < f.size(); ++i) {
        auto it = names.find(f[i]);
        if (it == names.end()) return fail("group " + name + ": " + std::string(f[i]) + " is not defined above");
        if (it->second == 0) return fail("group " + name + ": none cannot be a member");
        if (!seen.insert(it->second).second)
          return fail("group " + name + ": " + std::string(f[i]) + " is listed twice");
        g.members.push_back(it->second);
      }
      const size_t n = g.members.size();
      if (f[2] == "all") {
        g.k = n;
      } else if (f[2] == "any") {
        g.k = 1;
      } else {
        auto k = ParseDecimal(f[2]);
        if (!k || *k < 1 || *k > n)
          return fail("group " + name + ": k must be all, any or a number from 1 to " + std::to_string(n));
        g.k = *k;
      }
      names[name] = p.nodes_.size();
      p.nodes_.push_back(std::move(g));
    } else if (kw == "quorum") {
      if (f.size() != 2) return fail("want: quorum <name>");
      if (have_quorum) return fail("a second quorum line");
      auto it = names.find(f[1]);
      if (it == names.end()) return fail("quorum " + std::string(f[1]) + " is not defined above");
      p.quorum_ = it->second;
      have_quorum = true;
    } else {
      return fail("unknown keyword " + std::string(kw) + " (log, witness, group, quorum)");
    }
  }
  if (!have_quorum) return InvalidArgumentError("the policy has no quorum line (quorum none asks for no witness)");
  return p;
}

const Policy::Log* Policy::FindLog(std::string_view origin) const {
  for (const Log& l : logs_)
    if (l.origin == origin) return &l;
  return nullptr;
}

bool Policy::Met(size_t node, const std::vector<bool>& cosigned) const {
  const Node& n = nodes_[node];
  if (n.witness >= 0) return static_cast<size_t>(n.witness) < cosigned.size() && cosigned[n.witness];
  size_t met = 0;
  for (size_t m : n.members) met += Met(m, cosigned) ? 1 : 0;
  return met >= n.k;
}

bool Policy::QuorumMet(const std::vector<bool>& cosigned) const { return Met(quorum_, cosigned); }

std::vector<bool> Policy::Cosigned(const note::Note& note, std::vector<std::string>* problems) const {
  std::vector<bool> out(witnesses_.size(), false);
  for (size_t i = 0; i < witnesses_.size(); ++i) {
    auto t = witnesses_[i].verifier->Verify(note);
    if (t.ok()) {
      out[i] = true;
    } else if (t.status().code() != StatusCode::kNotFound && problems) {
      problems->push_back("witness " + witnesses_[i].name + ": " + std::string(t.status().message()));
    }
  }
  return out;
}

std::string Policy::Describe(size_t node) const {
  const Node& n = nodes_[node];
  if (n.witness >= 0 || node == 0) return n.name;
  std::string s = std::to_string(n.k) + " of {";
  for (size_t i = 0; i < n.members.size(); ++i) {
    if (i) s += ", ";
    s += Describe(n.members[i]);
  }
  return s + "}";
}

std::string Policy::DescribeQuorum() const { return Describe(quorum_); }

Policy::Rule Policy::RuleOf(size_t node) const {
  const Node& n = nodes_[node];
  Rule r{n.name, n.witness, n.k, {}};
  for (size_t m : n.members) r.members.push_back(RuleOf(m));
  return r;
}

Policy::Rule Policy::QuorumRule() const { return RuleOf(quorum_); }

StatusOr<QuorumCheck> CheckQuorum(const Policy& policy, std::string_view note_text) {
  ASSIGN_OR_RETURN(note::Note parsed, note::ParseNote(note_text));
  ASSIGN_OR_RETURN(checkpoint::Checkpoint cp, checkpoint::Parse(parsed.text));
  const Policy::Log* log = policy.FindLog(cp.origin);
  if (!log) return UnauthenticatedError("the witness policy lists no log " + cp.origin);
  auto opened = note::OpenNote(note_text, *log->verifier);
  if (!opened.ok()) return UnauthenticatedError("checkpoint of " + cp.origin + ": " + std::string(opened.status().message()));
  QuorumCheck out;
  out.origin = cp.origin;
  out.size = cp.size;
  const std::vector<bool> cosigned = policy.Cosigned(*opened, &out.problems);
  for (size_t i = 0; i < cosigned.size(); ++i)
    (cosigned[i] ? out.witnessed : out.missing).push_back(policy.witnesses()[i].name);
  out.met = policy.QuorumMet(cosigned);
  return out;
}

Status RequireQuorum(const Policy& policy, const QuorumCheck& check) {
  if (check.met) return OkStatus();
  auto join = [](const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
    return s.empty() ? std::string("nobody") : s;
  };
  std::string msg = "witness quorum not met for " + check.origin + " at size " + std::to_string(check.size) +
                    ": the policy wants " + policy.DescribeQuorum() + "; cosigned by " + join(check.witnessed);
  for (const auto& p : check.problems) msg += "; " + p;
  return UnauthenticatedError(msg);
}

}  // namespace annals::witness
