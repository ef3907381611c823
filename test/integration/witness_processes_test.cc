// Witnesses with real processes (issue 23, docs/witness.md): `annals serve`
// logs and `annals witness` processes over HTTP, fed real audit events
// from the corpus.
//
// The witness side, driven by hand: it cosigns a log's checkpoints as it
// grows (consistency proofs fetched from the log's own
// /v1/proof/consistency), tells a client that is behind its size (409,
// text/x.tlog.size), and refuses a fork: a second log with the same key and
// other entries, at the same size (409) or larger (422); what it cosigned
// survives its restart. Every cosignature is checked with the witness's
// verifier key as it printed it.
//
// The log side (serve --witness-policy) with three witnesses: the served
// checkpoint carries the quorum's cosignatures and `annals verify
// --witness-policy` accepts it; with witnesses down it stays behind (or,
// with a bounded wait, moves unwitnessed and verify refuses it); a log
// restarted learns each witness's size from its 409 and goes on; a fork
// with the same key and a log rolled back from a backup are refused by
// every witness and caught by verify.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "checkpoint/cosignature.h"
#include "checkpoint/note.h"
#include "witness/policy.h"
#include "client/http_client.h"
#include "testutil/log_client.h"
#include "testutil/server_process.h"
#include "testutil/test_macros.h"

namespace annals {
namespace {

using client::HttpClient;
using nlohmann::json;
using testutil::ServeOptions;
using testutil::ServerProcess;
using testutil::TempDir;

constexpr auto kWait = std::chrono::seconds(30);

std::unique_ptr<ServerProcess> StartLog(const TempDir& dir, const std::string& name, const std::string& key,
                                        std::vector<std::string> extra_args = {}) {
  ServeOptions o;
  o.data_dir = dir.Sub(name);
  o.key_file = key;
  o.checkpoint_interval_ms = 20;
  o.extra_args = std::move(extra_args);
  auto s = std::make_unique<ServerProcess>(o);
  EXPECT_OK(s->Start());
  return s;
}

// Appends n real audit events from the corpus (made distinct per tag) and
// returns no earlier than the log has signed `size` entries.
void Append(ServerProcess& log, const std::string& tag, int n, uint64_t size) {
  static const std::vector<std::string> corpus = testutil::CorpusAuditLines();
  ASSERT_FALSE(corpus.empty());
  auto http = HttpClient::Create(log.url()).value();
  std::vector<std::string> lines;
  for (int i = 0; i < n; ++i)
    lines.push_back(testutil::UniqueVariant(corpus[i % corpus.size()], tag + "-" + std::to_string(i)));
  auto first = testutil::PostEvents(http.get(), lines);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  const auto deadline = std::chrono::steady_clock::now() + kWait;
  while (std::chrono::steady_clock::now() < deadline) {
    auto signed_size = testutil::Metric(http.get(), "annals_checkpoint_signed_size");
    ASSERT_TRUE(signed_size.ok()) << signed_size.status().ToString();
    if (*signed_size >= size) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  FAIL() << "the log did not sign " << size << " entries";
}

// Appends as Append and returns the served checkpoint once it covers
// `size` entries.
testutil::SignedCheckpoint Grow(ServerProcess& log, const std::string& tag, int n, uint64_t size) {
  Append(log, tag, n, size);
  auto http = HttpClient::Create(log.url()).value();
  auto verifier = note::Verifier::FromVerifierKey(log.verifier_key()).value();
  auto cp = testutil::WaitForCheckpoint(http.get(), *verifier, size, kWait);
  EXPECT_TRUE(cp.ok()) << cp.status().ToString();
  EXPECT_EQ(cp->cp.size, size);
  return *cp;
}

std::vector<std::string> ProofFrom(ServerProcess& log, uint64_t first, uint64_t second) {
  auto http = HttpClient::Create(log.url()).value();
  auto r = http->Get("/v1/proof/consistency?first=" + std::to_string(first) + "&second=" + std::to_string(second));
  EXPECT_TRUE(r.ok() && r->status == 200) << (r.ok() ? r->body : r.status().ToString());
  std::vector<std::string> out;
  if (!r.ok()) return out;
  const json answer = json::parse(r->body);
  for (const auto& h : answer["hashes"]) out.push_back(h);
  EXPECT_FALSE(out.empty()) << r->body;
  return out;
}

struct Posted {
  int status = 0;
  std::string content_type, body;
};

Posted AddCheckpoint(ServerProcess& witness, uint64_t old_size, const std::vector<std::string>& proof,
                     const std::string& note) {
  auto http = HttpClient::Create(witness.url()).value();
  std::string body = "old " + std::to_string(old_size) + "\n";
  for (const auto& h : proof) body += h + "\n";
  body += "\n" + note;
  auto r = http->Post("/add-checkpoint", body, "text/plain");
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  Posted p;
  if (!r.ok()) return p;
  p.status = r->status;
  p.body = r->body;
  p.content_type = r->content_type;
  return p;
}

// The cosignature in a 200 answer verifies on the checkpoint with the
// witness's key, with a time within the test's run.
void ExpectCosigned(const Posted& p, const std::string& note, const std::string& witness_vkey) {
  ASSERT_EQ(p.status, 200) << p.body;
  auto v = note::CosignatureVerifier::FromVerifierKey(witness_vkey);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  auto n = note::ParseNote(note + p.body);
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  auto t = (*v)->Verify(*n);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch()).count();
  EXPECT_LE(*t, static_cast<uint64_t>(now));
  EXPECT_GE(*t + 300, static_cast<uint64_t>(now));
}

TEST(WitnessProcesses, CosignsAGrowingLogAndRefusesAForkOfIt) {
  TempDir dir;
  // The log's key, shared with a forked copy of it below.
  ASSERT_EQ(testutil::RunAnnals({"keygen", "--name", "example.org/ledger", "--out", dir.Sub("log.key")}).exit_code, 0);
  ASSERT_EQ(testutil::RunAnnals({"keygen", "--name", "witness.example/w1", "--out", dir.Sub("w1.key")}).exit_code, 0);
  auto log = StartLog(dir, "log", dir.Sub("log.key"));
  ServeOptions wo;
  wo.command = "witness";
  wo.data_dir = dir.Sub("w1");
  wo.wait_ready = false;
  wo.extra_args = {"--key", dir.Sub("w1.key"), "--log", log->verifier_key()};
  ServerProcess witness(wo);
  ASSERT_OK(witness.Start());
  const std::string wkey = witness.verifier_key();
  ASSERT_TRUE(wkey.starts_with("witness.example/w1+")) << wkey;

  // The first checkpoint it sees: cosigned.
  auto cp5 = Grow(*log, "a", 5, 5);
  ExpectCosigned(AddCheckpoint(witness, 0, {}, cp5.note), cp5.note, wkey);
  // Grown, with the log's consistency proof: cosigned.
  auto cp12 = Grow(*log, "b", 7, 12);
  ExpectCosigned(AddCheckpoint(witness, 5, ProofFrom(*log, 5, 12), cp12.note), cp12.note, wkey);
  // A client behind the witness learns its size.
  Posted stale = AddCheckpoint(witness, 5, ProofFrom(*log, 5, 12), cp12.note);
  EXPECT_EQ(stale.status, 409);
  EXPECT_EQ(stale.content_type, "text/x.tlog.size");
  EXPECT_EQ(stale.body, "12\n");
  // A bad proof: 422.
  auto cp15 = Grow(*log, "c", 3, 15);
  std::vector<std::string> wrong = ProofFrom(*log, 12, 15);
  ASSERT_FALSE(wrong.empty());
  std::swap(wrong.front(), wrong.back());
  wrong.front()[0] = wrong.front()[0] == 'A' ? 'B' : 'A';
  EXPECT_EQ(AddCheckpoint(witness, 12, wrong, cp15.note).status, 422);

  // A fork: the same key, other entries. At the witness's size: 409; grown
  // past it with its own (valid) proof: 422. Neither is cosigned.
  auto fork = StartLog(dir, "fork", dir.Sub("log.key"));
  ASSERT_EQ(fork->verifier_key(), log->verifier_key());
  auto f12 = Grow(*fork, "forged", 12, 12);
  ASSERT_NE(f12.cp.root, cp12.cp.root);
  Posted same_size = AddCheckpoint(witness, 12, {}, f12.note);
  EXPECT_EQ(same_size.status, 409) << same_size.body;
  EXPECT_NE(same_size.content_type, "text/x.tlog.size");
  auto f20 = Grow(*fork, "forged-more", 8, 20);
  EXPECT_EQ(AddCheckpoint(witness, 12, ProofFrom(*fork, 12, 20), f20.note).status, 422);
  // A rollback to what it cosigned before: refused.
  EXPECT_EQ(AddCheckpoint(witness, 12, {}, cp5.note).status, 400);

  // Restarted, it remembers: the real log goes on from 12.
  ASSERT_OK(witness.Restart());
  Posted again = AddCheckpoint(witness, 0, {}, cp15.note);
  EXPECT_EQ(again.status, 409);
  EXPECT_EQ(again.body, "12\n");
  ExpectCosigned(AddCheckpoint(witness, 12, ProofFrom(*log, 12, 15), cp15.note), cp15.note, wkey);

  // A log it was not told about: 404; not the log's key: 403.
  ASSERT_EQ(testutil::RunAnnals({"keygen", "--name", "example.org/other", "--out", dir.Sub("other.key")}).exit_code, 0);
  auto other = StartLog(dir, "other", dir.Sub("other.key"));
  auto o3 = Grow(*other, "x", 3, 3);
  EXPECT_EQ(AddCheckpoint(witness, 0, {}, o3.note).status, 404);
  ASSERT_EQ(testutil::RunAnnals({"keygen", "--name", "example.org/ledger", "--out", dir.Sub("impostor.key")}).exit_code,
            0);
  auto impostor = StartLog(dir, "impostor", dir.Sub("impostor.key"));
  auto i16 = Grow(*impostor, "y", 16, 16);
  EXPECT_EQ(AddCheckpoint(witness, 15, {}, i16.note).status, 403);
}

// Three `annals witness` processes on fixed ports (so that one can stop
// and come back at its URL), and a policy naming them and the log.
struct Witnesses {
  std::vector<std::unique_ptr<ServerProcess>> procs;
  std::string policy_path;

  Witnesses(const TempDir& dir, const std::string& log_vkey, const std::string& quorum) {
    std::string policy = "# the log and its witnesses (tlog-policy)\nlog " + log_vkey + "\n";
    for (int i = 1; i <= 3; ++i) {
      const std::string name = "w" + std::to_string(i);
      EXPECT_EQ(testutil::RunAnnals({"keygen", "--name", "witness.example/" + name, "--out", dir.Sub(name + ".key")})
                    .exit_code,
                0);
      ServeOptions wo;
      wo.command = "witness";
      wo.data_dir = dir.Sub(name);
      wo.wait_ready = false;
      wo.listen = "127.0.0.1:" + std::to_string(testutil::FreePort());
      wo.extra_args = {"--key", dir.Sub(name + ".key"), "--log", log_vkey};
      procs.push_back(std::make_unique<ServerProcess>(wo));
      EXPECT_OK(procs.back()->Start());
      policy += "witness " + name + " " + procs.back()->verifier_key() + " " + procs.back()->url() + "\n";
    }
    policy += quorum;
    policy_path = dir.Sub("policy");
    std::ofstream(policy_path) << policy;
  }
  ServerProcess& operator[](int i) { return *procs[i - 1]; }
};

// Makes the log's key in dir/log.key; returns its verifier key.
std::string LogKey(const TempDir& dir) {
  auto r = testutil::RunAnnals({"keygen", "--name", "example.org/ledger", "--out", dir.Sub("log.key")});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return r.out.substr(0, r.out.find('\n'));
}

witness::Policy ReadPolicy(const std::string& path) {
  auto text = testutil::ReadFile(path);
  EXPECT_TRUE(text.ok());
  auto p = witness::Policy::Parse(*text);
  EXPECT_TRUE(p.ok()) << p.status().ToString();
  return std::move(*p);
}

std::string Served(ServerProcess& log) {
  auto http = HttpClient::Create(log.url()).value();
  auto r = http->Get("/log/checkpoint");
  EXPECT_TRUE(r.ok() && r->status == 200);
  return r.ok() ? r->body : "";
}

uint64_t MetricOf(ServerProcess& log, const std::string& series) {
  auto http = HttpClient::Create(log.url()).value();
  auto v = testutil::Metric(http.get(), series);
  EXPECT_TRUE(v.ok()) << v.status().ToString();
  return v.ok() ? *v : 0;
}

// Who cosigned the served checkpoint, by the policy's keys (parsed and
// verified here, apart from the server's own check).
std::vector<std::string> WitnessedBy(const witness::Policy& policy, const std::string& note) {
  auto q = witness::CheckQuorum(policy, note);
  EXPECT_TRUE(q.ok()) << q.status().ToString() << "\n" << note;
  if (!q.ok()) return {};
  EXPECT_TRUE(q->problems.empty()) << q->problems.front();
  return q->witnessed;
}

testutil::CommandResult Verify(ServerProcess& log, const std::string& policy, const std::string& state = "") {
  std::vector<std::string> args{"verify", "--url", log.url(), "--witness-policy", policy};
  if (!state.empty()) {
    args.push_back("--state");
    args.push_back(state);
  }
  return testutil::RunAnnals(args);
}

using Names = std::vector<std::string>;

TEST(WitnessedLog, ServesOnlyCheckpointsItsQuorumCosignedAndLearnsWitnessSizesAfterARestart) {
  TempDir dir;
  const std::string log_vkey = LogKey(dir);
  Witnesses w(dir, log_vkey, "group two-of-three 2 w1 w2 w3\nquorum two-of-three\n");
  const witness::Policy policy = ReadPolicy(w.policy_path);
  auto log = StartLog(dir, "log", dir.Sub("log.key"),
                      {"--witness-policy", w.policy_path, "--witness-wait", "forever", "--witness-timeout", "2"});

  // All three cosign; verify with the policy accepts and names them.
  auto cp7 = Grow(*log, "a", 7, 7);
  EXPECT_EQ(WitnessedBy(policy, cp7.note), (Names{"w1", "w2", "w3"}));
  auto v = Verify(*log, w.policy_path);
  EXPECT_EQ(v.exit_code, 0) << v.err;
  EXPECT_NE(v.out.find("witnessed by w1, w2, w3"), std::string::npos) << v.out;

  // Two down: the quorum cannot be met, and the served checkpoint stays
  // where the witnesses saw the log, however much it signs meanwhile.
  ASSERT_OK(w[2].Stop());
  ASSERT_OK(w[3].Stop());
  Append(*log, "b", 5, 12);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_EQ(Served(*log), cp7.note);
  EXPECT_EQ(MetricOf(*log, "annals_checkpoint_size"), 7u);
  EXPECT_GE(MetricOf(*log, "annals_checkpoint_signed_size"), 12u);
  EXPECT_EQ(MetricOf(*log, "annals_witness_quorum_met"), 0u);
  EXPECT_GE(MetricOf(*log, "annals_witness_unreachable_total{witness=\"w2\"}"), 1u);
  EXPECT_EQ(Verify(*log, w.policy_path).exit_code, 0);  // still the witnessed 7

  // One back: two of three again, and the log moves on past what w2 missed.
  ASSERT_OK(w[2].Start());
  auto http = HttpClient::Create(log->url()).value();
  auto verifier = note::Verifier::FromVerifierKey(log_vkey).value();
  auto cp12 = testutil::WaitForCheckpoint(http.get(), *verifier, 12, kWait);
  ASSERT_TRUE(cp12.ok()) << cp12.status().ToString();
  EXPECT_EQ(WitnessedBy(policy, cp12->note), (Names{"w1", "w2"}));
  v = Verify(*log, w.policy_path, dir.Sub("trusted"));
  EXPECT_EQ(v.exit_code, 0) << v.err;
  EXPECT_NE(v.out.find("witnessed by w1, w2\n"), std::string::npos) << v.out;

  // Restarted, the log knows no witness's size: each answers 409 with
  // its own and the log proves consistency from there.
  ASSERT_OK(log->Restart());
  auto cp15 = Grow(*log, "c", 3, cp12->cp.size + 3);
  EXPECT_EQ(WitnessedBy(policy, cp15.note), (Names{"w1", "w2"}));
  EXPECT_GE(MetricOf(*log, "annals_witness_size_answers_total{witness=\"w1\"}"), 1u);
  EXPECT_GE(MetricOf(*log, "annals_witness_size_answers_total{witness=\"w2\"}"), 1u);
  v = Verify(*log, w.policy_path, dir.Sub("trusted"));
  EXPECT_EQ(v.exit_code, 0) << v.err;
}

TEST(WitnessedLog, ABoundedWaitServesTheCheckpointUnwitnessedAndVerifyRefusesIt) {
  TempDir dir;
  const std::string log_vkey = LogKey(dir);
  Witnesses w(dir, log_vkey, "group all-three all w1 w2 w3\nquorum all-three\n");
  const witness::Policy policy = ReadPolicy(w.policy_path);
  ASSERT_OK(w[3].Stop());
  auto log = StartLog(dir, "log", dir.Sub("log.key"),
                      {"--witness-policy", w.policy_path, "--witness-wait", "0.3", "--witness-timeout", "2"});
  auto cp = Grow(*log, "a", 4, 4);
  EXPECT_EQ(WitnessedBy(policy, cp.note), (Names{"w1", "w2"}));
  EXPECT_GE(MetricOf(*log, "annals_checkpoints_unwitnessed_total"), 1u);
  auto v = Verify(*log, w.policy_path);
  EXPECT_EQ(v.exit_code, 2);
  EXPECT_NE(v.err.find("witness quorum not met"), std::string::npos) << v.err;
  EXPECT_NE(v.err.find("cosigned by w1, w2"), std::string::npos) << v.err;
  // An evidence bundle carries the served checkpoint: refused offline too.
  auto exported = testutil::RunAnnals({"export", "--url", log->url(), "--index", "1", "--out", dir.Sub("b.tar"), "--log-key", log_vkey});
  ASSERT_EQ(exported.exit_code, 0) << exported.err;
  auto bundle = testutil::RunAnnals({"verify", "--bundle", dir.Sub("b.tar"), "--witness-policy", w.policy_path});
  EXPECT_EQ(bundle.exit_code, 2);
  EXPECT_NE(bundle.err.find("witness quorum not met"), std::string::npos) << bundle.err;
}

TEST(WitnessedLog, AForkAndARollbackAreRefusedByEveryWitnessAndCaughtByVerify) {
  TempDir dir;
  const std::string log_vkey = LogKey(dir);
  Witnesses w(dir, log_vkey, "group two-of-three 2 w1 w2 w3\nquorum two-of-three\n");
  const witness::Policy policy = ReadPolicy(w.policy_path);
  const std::vector<std::string> witnessed = {"--witness-policy", w.policy_path, "--witness-wait", "forever",
                                              "--witness-timeout", "2"};
  auto log = StartLog(dir, "log", dir.Sub("log.key"), witnessed);
  auto cp6 = Grow(*log, "a", 6, 6);
  ASSERT_EQ(WitnessedBy(policy, cp6.note), (Names{"w1", "w2", "w3"}));
  // A backup at 6, for the rollback below.
  ASSERT_OK(log->Stop());
  ASSERT_OK(testutil::CopyTree(dir.Sub("log"), dir.Sub("backup")));
  ASSERT_OK(log->Start());
  auto cp12 = Grow(*log, "b", 6, 12);
  ASSERT_EQ(WitnessedBy(policy, cp12.note), (Names{"w1", "w2", "w3"}));
  ASSERT_EQ(Verify(*log, w.policy_path, dir.Sub("trusted")).exit_code, 0);

  // A fork: the same key, other entries, the same witnesses. It signs,
  // but no witness cosigns either at the size they hold (another root) or
  // beyond it (a proof from a tree they never saw); after its bounded wait
  // it serves its checkpoint bare, and verify with the policy refuses it.
  auto fork = StartLog(dir, "fork", dir.Sub("log.key"),
                       {"--witness-policy", w.policy_path, "--witness-wait", "0.2", "--witness-timeout", "2"});
  ASSERT_EQ(fork->verifier_key(), log_vkey);
  auto f12 = Grow(*fork, "forged", 12, 12);
  ASSERT_NE(f12.cp.root, cp12.cp.root);
  EXPECT_TRUE(WitnessedBy(policy, f12.note).empty());
  auto f15 = Grow(*fork, "forged-more", 3, 15);
  EXPECT_TRUE(WitnessedBy(policy, f15.note).empty());
  for (const char* name : {"w1", "w2", "w3"}) {
    EXPECT_GE(MetricOf(*fork, std::string("annals_witness_refusals_total{witness=\"") + name + "\"}"), 2u) << name;
    EXPECT_EQ(MetricOf(*fork, std::string("annals_witness_cosignatures_total{witness=\"") + name + "\"}"), 0u);
  }
  EXPECT_NE(fork->StderrText().find("a fork"), std::string::npos);
  auto v = Verify(*fork, w.policy_path);
  EXPECT_EQ(v.exit_code, 2);
  EXPECT_NE(v.err.find("witness quorum not met"), std::string::npos) << v.err;
  EXPECT_NE(v.err.find("cosigned by nobody"), std::string::npos) << v.err;
  fork.reset();

  // A rollback: the log restored from the backup at 6 and grown anew. The
  // witnesses hold 12 of the real history: they refuse every checkpoint
  // of the restored log, which keeps serving its witnessed 6; a verifier
  // that trusted 12 calls it a rollback.
  ASSERT_OK(log->Stop());
  std::filesystem::remove_all(dir.Sub("log"));
  ASSERT_OK(testutil::CopyTree(dir.Sub("backup"), dir.Sub("log")));
  ASSERT_OK(log->Start());
  Append(*log, "rewritten", 10, 16);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(Served(*log), cp6.note);
  for (const char* name : {"w1", "w2", "w3"})
    EXPECT_GE(MetricOf(*log, std::string("annals_witness_refusals_total{witness=\"") + name + "\"}"), 1u) << name;
  EXPECT_NE(log->StderrText().find("rejected the consistency proof"), std::string::npos);
  v = Verify(*log, w.policy_path, dir.Sub("trusted"));
  EXPECT_EQ(v.exit_code, 2);
  EXPECT_NE(v.err.find("rolled back"), std::string::npos) << v.err;
}

}  // namespace
}  // namespace annals
