#include "checkpoint/checkpoint.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "checkpoint/note.h"
#include "common/bytes.h"

namespace annals::checkpoint {
namespace {

const std::filesystem::path kVectors =
    std::filesystem::path(ANNALS_CORPUS_DIR) / "notes-checkpoints" / "signed-note-vectors.json";

constexpr std::string_view kRoot = "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=";

std::string Body(std::string_view origin, std::string_view size, std::string_view root) {
  return std::string(origin) + "\n" + std::string(size) + "\n" + std::string(root) + "\n";
}

void ExpectInvalid(std::string_view text, std::string_view why) {
  auto c = Parse(text);
  ASSERT_FALSE(c.ok()) << why;
  EXPECT_EQ(c.status().code(), StatusCode::kInvalidArgument) << why;
}

TEST(CheckpointTest, SpecExampleParses) {
  auto c = Parse(Body("example.com/behind-the-sofa", "20852163", kRoot));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->origin, "example.com/behind-the-sofa");
  EXPECT_EQ(c->size, 20852163u);
  EXPECT_EQ(Base64Encode(HashBytes(c->root)), kRoot);
  EXPECT_TRUE(c->extensions.empty());
}

// Every checkpoint in the public vectors parses and re-marshals exactly; the
// plain signed notes (prose) do not parse as checkpoints.
TEST(CheckpointTest, PublicVectorsParseExactlyWhenTheyAreCheckpoints) {
  std::ifstream in(kVectors);
  std::stringstream ss;
  ss << in.rdbuf();
  const nlohmann::json vectors = nlohmann::json::parse(ss.str())["vectors"];
  int checkpoints = 0;
  for (const auto& v : vectors) {
    const std::string id = v["id"];
    SCOPED_TRACE(id);
    const std::string data = v["note"];
    std::string text = data;
    if (auto n = note::ParseNote(data); n.ok()) text = n->text;
    const bool is_checkpoint = id.find("checkpoint") != std::string::npos ||
                               id.find("tlog") != std::string::npos || id.starts_with("ct-");
    auto c = Parse(text);
    ASSERT_EQ(c.ok(), is_checkpoint) << c.status().ToString();
    if (!is_checkpoint) continue;
    ++checkpoints;
    EXPECT_EQ(c->Marshal(), text);
    if (v.contains("origin")) {
      EXPECT_EQ(c->origin, v["origin"].get<std::string>());
    }
    if (id == "golang-tlog-tree-unsigned") {
      EXPECT_EQ(c->origin, "go.sum database tree");
      EXPECT_EQ(c->size, 123456789012u);
      EXPECT_EQ(c->root, Sha256(std::string("\0hello world", 12)));  // RFC 6962 leaf
    }
  }
  EXPECT_EQ(checkpoints, 8);
}

TEST(CheckpointTest, MarshalRoundTripsWithExtensions) {
  Checkpoint c;
  c.origin = "annals.example/cluster-1";
  c.size = 18446744073709551615u;
  for (size_t i = 0; i < c.root.size(); ++i) c.root[i] = static_cast<unsigned char>(i * 7);
  c.extensions = {"ext one", "\xe2\x80\x94 looks like a sig"};
  std::string text = c.Marshal();
  auto p = Parse(text);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->origin, c.origin);
  EXPECT_EQ(p->size, c.size);
  EXPECT_EQ(p->root, c.root);
  EXPECT_EQ(p->extensions, c.extensions);
  EXPECT_EQ(p->Marshal(), text);
}

TEST(CheckpointTest, ZeroSizeIsAllowed) { EXPECT_TRUE(Parse(Body("o", "0", kRoot)).ok()); }

TEST(CheckpointTest, SizeMustBeStrictDecimal) {
  ExpectInvalid(Body("o", "01", kRoot), "leading zero");
  ExpectInvalid(Body("o", "00", kRoot), "double zero");
  ExpectInvalid(Body("o", "-1", kRoot), "negative");
  ExpectInvalid(Body("o", "+1", kRoot), "plus sign");
  ExpectInvalid(Body("o", " 1", kRoot), "leading space");
  ExpectInvalid(Body("o", "1 ", kRoot), "trailing space");
  ExpectInvalid(Body("o", "0x10", kRoot), "hex");
  ExpectInvalid(Body("o", "", kRoot), "empty");
  ExpectInvalid(Body("o", "18446744073709551616", kRoot), "overflow");
  EXPECT_TRUE(Parse(Body("o", "18446744073709551615", kRoot)).ok());
}

TEST(CheckpointTest, RootMustBe32BytesOfCanonicalBase64) {
  ExpectInvalid(Body("o", "1", Base64Encode(std::string(31, 'r'))), "31 bytes");
  ExpectInvalid(Body("o", "1", Base64Encode(std::string(33, 'r'))), "33 bytes");
  ExpectInvalid(Body("o", "1", ""), "empty root");
  ExpectInvalid(Body("o", "1", "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2J="), "stray bits");
  ExpectInvalid(Body("o", "1", "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I"), "no padding");
  ExpectInvalid(Body("o", "1", "CsUYapGGPo4dkMgIAUqom_Xajj7h2fB2MPA3j2jxq2I="), "url alphabet");
  ExpectInvalid(Body("o", "1", HexEncode(std::string(32, 'r'))), "hex root");
}

TEST(CheckpointTest, StructureIsStrict) {
  ExpectInvalid("", "empty");
  ExpectInvalid(Body("", "1", kRoot), "empty origin");
  ExpectInvalid("o\n1\n", "two lines");
  ExpectInvalid(Body("o", "1", kRoot).substr(0, 4 + kRoot.size()), "no final newline");
  ExpectInvalid(Body("o", "1", kRoot) + "\n", "empty extension line");
  ExpectInvalid(Body("o", "1", kRoot) + "ext\n\nmore\n", "empty line between extensions");
  ExpectInvalid(Body("o", "1", kRoot) + "ext", "unterminated extension");
  ExpectInvalid("o\r\n1\r\n" + std::string(kRoot) + "\r\n", "CRLF");
  ExpectInvalid(Body("o\tx", "1", kRoot), "tab in origin");
  ExpectInvalid(Body("o\xff", "1", kRoot), "invalid UTF-8 origin");
  ExpectInvalid(Body("o", "1", kRoot) + "e\x01\n", "control char in extension");
  auto ok = Parse(Body("o", "1", kRoot) + "ext\n");
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->extensions, std::vector<std::string>{"ext"});
}

}  // namespace
}  // namespace annals::checkpoint
