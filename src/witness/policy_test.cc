#include "witness/policy.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "checkpoint/checkpoint.h"
#include "checkpoint/cosignature.h"
#include "checkpoint/note.h"
#include "common/bytes.h"
#include "common/sha256.h"

namespace annals::witness {
namespace {

struct Keys {
  std::unique_ptr<note::Signer> log;
  std::vector<std::unique_ptr<note::Cosigner>> witnesses;
};

Keys MakeKeys(const std::string& origin, int witnesses) {
  Keys k;
  k.log = note::Signer::FromPrivateKey(*note::GeneratePrivateKey(origin)).value();
  for (int i = 0; i < witnesses; ++i)
    k.witnesses.push_back(
        note::Cosigner::FromPrivateKey(*note::GeneratePrivateKey("w" + std::to_string(i) + ".example")).value());
  return k;
}

// A checkpoint of `size` signed by the log and cosigned by the witnesses
// whose index is listed.
std::string Checkpoint(const Keys& k, uint64_t size, const std::vector<int>& cosigners) {
  checkpoint::Checkpoint cp{k.log->name(), size, Sha256("root " + std::to_string(size)), {}};
  std::string text = cp.Marshal();
  std::string note = *k.log->SignNote(text);
  for (int i : cosigners) note += *k.witnesses[i]->Cosign(text, 1767225600 + i);
  return note;
}

std::string PolicyText(const Keys& k, const std::string& groups) {
  std::string p = "# a comment line\n  log " + k.log->VerifierKey() + " https://log.example/\n";
  for (size_t i = 0; i < k.witnesses.size(); ++i)
    p += "witness\tw" + std::to_string(i) + " " + k.witnesses[i]->VerifierKey() + " http://127.0.0.1:1/  # trailing\n";
  return p + groups;
}

TEST(Policy, ParsesTheTlogPolicyFormatAndCountsNestedGroups) {
  Keys k = MakeKeys("example.org/log", 4);
  auto p = Policy::Parse(PolicyText(k, "group g1 2 w0 w1 w2\ngroup g2 all g1 w3\n\nquorum g2\n"));
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  ASSERT_EQ(p->logs().size(), 1u);
  EXPECT_EQ(p->logs()[0].origin, "example.org/log");
  EXPECT_EQ(p->logs()[0].url, "https://log.example/");
  ASSERT_EQ(p->witnesses().size(), 4u);
  EXPECT_EQ(p->witnesses()[2].name, "w2");
  EXPECT_EQ(p->witnesses()[2].url, "http://127.0.0.1:1/");
  EXPECT_EQ(p->DescribeQuorum(), "2 of {2 of {w0, w1, w2}, w3}");
  EXPECT_TRUE(p->QuorumMet({true, false, true, true}));
  EXPECT_FALSE(p->QuorumMet({true, true, true, false}));  // w3 is needed
  EXPECT_FALSE(p->QuorumMet({true, false, false, true}));  // one of g1 is not enough
  EXPECT_TRUE(p->QuorumMet({true, true, true, true}));

  auto any = Policy::Parse(PolicyText(k, "group g any w0 w1\nquorum g\n"));
  ASSERT_TRUE(any.ok());
  EXPECT_TRUE(any->QuorumMet({false, true, false, false}));
  EXPECT_FALSE(any->QuorumMet({false, false, true, true}));
  auto none = Policy::Parse(PolicyText(k, "quorum none\n"));
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->QuorumMet({false, false, false, false}));
  auto one = Policy::Parse(PolicyText(k, "quorum w1\n"));
  ASSERT_TRUE(one.ok());
  EXPECT_TRUE(one->QuorumMet({false, true, false, false}));
  EXPECT_FALSE(one->QuorumMet({true, false, true, true}));
}

// The Sigsum form: hex keys, the witness's key named by the policy's name.
// remora.n621.de's key is published both as a vkey (transparency-dev's
// formats tests) and in hex (a Sigsum policy): both must be the same
// cosignature key, ID da77ade7.
TEST(Policy, ReadsSigsumHexKeysAsCosignatureKeysNamedByThePolicy) {
  const std::string hex = "ebcdeb78e7fdb2ef9227b2c1ef11e94600b55b4d6d9a57877e31ee89e59adc36";
  Keys k = MakeKeys("ignored", 0);
  const std::string log_hex = HexEncode(k.log->public_key());
  auto p = Policy::Parse("log " + log_hex + "\nwitness remora.n621.de " + hex + "\nquorum none\n");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  auto w = Policy::Parse("witness remora.n621.de " + hex + "\nquorum remora.n621.de\n");
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  EXPECT_EQ(w->witnesses()[0].verifier->VerifierKey(),
            "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2");
  // A Sigsum log's origin is derived from its key.
  EXPECT_EQ(p->logs()[0].origin.rfind("sigsum.org/v1/tree/", 0), 0u);
  EXPECT_EQ(p->logs()[0].origin.size(), std::string("sigsum.org/v1/tree/").size() + 64);
}

TEST(Policy, RefusesWhatTheFormatForbids) {
  Keys k = MakeKeys("example.org/log", 3);
  const std::string w0 = k.witnesses[0]->VerifierKey();
  const std::string base = PolicyText(k, "");
  const std::vector<std::pair<std::string, std::string>> bad = {
      {base, "no quorum line"},
      {base + "quorum w0\nquorum w1\n", "second quorum"},
      {base + "quorum nobody\n", "not defined above"},
      {base + "group g 2 w0 w5\nquorum g\n", "w5 is not defined above"},
      {base + "group g 1 w0 w0\nquorum g\n", "listed twice"},
      {base + "group g 3 w0 w1\nquorum g\n", "k must be"},
      {base + "group g 0 w0 w1\nquorum g\n", "k must be"},
      {base + "group g 01 w0 w1\nquorum g\n", "k must be"},
      {base + "group g any none\nquorum g\n", "none cannot be a member"},
      {base + "quorum g\ngroup g any w0\n", "not defined above"},
      {base + "witness w0 " + w0 + "\nquorum w0\n", "already defined"},
      {base + "witness none " + w0 + "\nquorum none\n", "already defined"},
      {base + "witness wx " + w0 + "\nquorum none\n", "listed twice"},
      {base + "group w1 any w0\nquorum none\n", "already defined"},
      // A note-signing key (0x01) is not a cosignature key.
      {"witness w " + k.log->VerifierKey() + "\nquorum w\n", "0x04"},
      {"log " + w0 + "\nquorum none\n", "log key"},
      {base + "log " + k.log->VerifierKey() + "\nquorum none\n", "listed twice"},
      {base + "witness w9\nquorum none\n", "want: witness"},
      {base + "frobnicate w0\nquorum none\n", "unknown keyword"},
      {base + "witness w9 abc+12345678+BOvN\nquorum none\n", "witness w9"},
      {"quorum none\n\x01", "control characters"},
  };
  for (const auto& [text, want] : bad) {
    auto p = Policy::Parse(text);
    ASSERT_FALSE(p.ok()) << text;
    EXPECT_EQ(p.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(p.status().message().find(want), std::string::npos) << p.status().message() << "\nwant: " << want;
  }
  // The line is named.
  auto p = Policy::Parse("quorum none\n\nbogus\n");
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("line 3:"), std::string::npos) << p.status().message();
}

TEST(Policy, CheckQuorumCountsOnlyCosignaturesThatVerify) {
  Keys k = MakeKeys("example.org/log", 3);
  auto p = Policy::Parse(PolicyText(k, "group g 2 w0 w1 w2\nquorum g\n")).value();

  auto two = CheckQuorum(p, Checkpoint(k, 7, {0, 2}));
  ASSERT_TRUE(two.ok()) << two.status().ToString();
  EXPECT_TRUE(two->met);
  EXPECT_EQ(two->size, 7u);
  EXPECT_EQ(two->witnessed, (std::vector<std::string>{"w0", "w2"}));
  EXPECT_EQ(two->missing, (std::vector<std::string>{"w1"}));
  EXPECT_TRUE(RequireQuorum(p, *two).ok());

  auto one = CheckQuorum(p, Checkpoint(k, 7, {1}));
  ASSERT_TRUE(one.ok());
  EXPECT_FALSE(one->met);
  Status s = RequireQuorum(p, *one);
  EXPECT_EQ(s.code(), StatusCode::kUnauthenticated);
  EXPECT_NE(s.message().find("2 of {w0, w1, w2}; cosigned by w1"), std::string::npos) << s.message();

  // A cosignature moved onto another checkpoint does not count, and is
  // reported.
  std::string seven = Checkpoint(k, 7, {0, 1});
  std::string eight = Checkpoint(k, 8, {});
  const size_t cut = seven.find("\n— w");
  auto moved = CheckQuorum(p, eight + seven.substr(cut + 1));
  ASSERT_TRUE(moved.ok()) << moved.status().ToString();
  EXPECT_FALSE(moved->met);
  EXPECT_TRUE(moved->witnessed.empty());
  EXPECT_EQ(moved->problems.size(), 2u);

  // Cosignatures by keys outside the policy are ignored.
  Keys other = MakeKeys("example.org/log", 3);
  std::string text = Checkpoint(k, 9, {}).substr(0, Checkpoint(k, 9, {}).find("\n\n") + 1);
  std::string foreign = Checkpoint(k, 9, {});
  for (auto& w : other.witnesses) foreign += *w->Cosign(text, 1767225600);
  auto ignored = CheckQuorum(p, foreign);
  ASSERT_TRUE(ignored.ok());
  EXPECT_FALSE(ignored->met);
  EXPECT_TRUE(ignored->problems.empty());

  // Not this policy's log, or not its key.
  Keys stranger = MakeKeys("example.org/other", 0);
  EXPECT_EQ(CheckQuorum(p, Checkpoint(stranger, 3, {})).status().code(), StatusCode::kUnauthenticated);
  Keys impostor = MakeKeys("example.org/log", 0);
  EXPECT_EQ(CheckQuorum(p, Checkpoint(impostor, 3, {})).status().code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(CheckQuorum(p, "not a note").status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace annals::witness
