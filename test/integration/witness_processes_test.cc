// Witnesses with real processes (issue 23, docs/witness.md): `annals serve`
// logs and `annals witness` processes over HTTP. The witness cosigns a
// log's checkpoints as it grows (consistency proofs fetched from the log's
// own /v1/proof/consistency), tells a client that is behind its size
// (409, text/x.tlog.size), and refuses a fork: a second log with the same
// key and other entries, at the same size (409) or larger (422); what it
// cosigned survives its restart. Every cosignature is checked with the
// witness's verifier key as it printed it.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "checkpoint/cosignature.h"
#include "checkpoint/note.h"
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

std::unique_ptr<ServerProcess> StartLog(const TempDir& dir, const std::string& name, const std::string& key) {
  ServeOptions o;
  o.data_dir = dir.Sub(name);
  o.key_file = key;
  o.checkpoint_interval_ms = 20;
  auto s = std::make_unique<ServerProcess>(o);
  EXPECT_OK(s->Start());
  return s;
}

// Appends n event lines (distinct per tag) and returns the signed
// checkpoint once it covers `size` entries.
testutil::SignedCheckpoint Grow(ServerProcess& log, const std::string& tag, int n, uint64_t size) {
  auto http = HttpClient::Create(log.url()).value();
  std::string lines;
  for (int i = 0; i < n; ++i) lines += json{{"tag", tag}, {"i", i}}.dump() + "\n";
  auto r = http->Post("/v1/ingest/events", lines, "application/x-ndjson");
  EXPECT_TRUE(r.ok() && r->status == 200) << (r.ok() ? r->body : r.status().ToString());
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

}  // namespace
}  // namespace annals
