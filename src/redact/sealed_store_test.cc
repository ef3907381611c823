#include "redact/sealed_store.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "redact/redactor.h"

namespace annals::redact {
namespace {

struct Dir {
  std::string path;
  Dir() {
    char t[] = "/tmp/annals-sealed-XXXXXX";
    path = ::mkdtemp(t);
  }
  ~Dir() { std::filesystem::remove_all(path); }
};

// Whether any file under dir holds the bytes.
bool AnyFileHolds(const std::string& dir, const std::string& needle) {
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    std::ifstream f(e.path(), std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    if (ss.str().find(needle) != std::string::npos) return true;
  }
  return false;
}

Redaction Redacted(const std::string& json) {
  Redactor r(DefaultPolicy());
  auto red = r.Apply(json);
  EXPECT_TRUE(red.ok());
  return *red;
}

SealKey Key(uint8_t b) {
  SealKey k;
  k.fill(b);
  return k;
}

TEST(SealedStore, ValuesComeBackAndOpenTheirCommitments) {
  Dir d;
  const std::string event = R"({"kind":"Secret","data":{"a":"cGxhaW4tdmFsdWUtMQ==","b":"cGxhaW4tdmFsdWUtMg=="}})";
  Redaction red = Redacted(event);
  ASSERT_EQ(red.values.size(), 2u);
  {
    auto s = SealedStore::Open(d.path + "/sealed", std::nullopt);
    ASSERT_TRUE(s.ok()) << s.status().message();
    ASSERT_TRUE((*s)->Put(red.values, {{Sha256(red.payload), Sha256(event)}}).ok());
    ASSERT_TRUE((*s)->Sync().ok());
    ASSERT_TRUE((*s)->Sync().ok());  // nothing new: no-op
  }
  auto s = SealedStore::Open(d.path + "/sealed", std::nullopt);
  ASSERT_TRUE(s.ok());
  for (const auto& v : red.values) {
    auto o = (*s)->Get(v.mac);
    ASSERT_TRUE(o.ok()) << o.status().message();
    EXPECT_EQ(o->value, v.value);
    EXPECT_TRUE(Verify(v.commitment(), o->value, o->salt));
  }
  auto got = (*s)->ReceivedDigest(Sha256(red.payload));
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ(**got, Sha256(event));
  Hash unknown{};
  EXPECT_EQ((*s)->Get(unknown).status().code(), StatusCode::kNotFound);
  // Plain: the values are in the files (this is what --seal-key is for).
  EXPECT_TRUE(AnyFileHolds(d.path, "cGxhaW4tdmFsdWUtMQ=="));
}

TEST(SealedStore, EncryptedValuesAreInNoFileAndNeedTheirKey) {
  Dir d;
  const std::string event = R"({"kind":"Secret","data":{"a":"ZW5jcnlwdGVkLXZhbHVl"}})";
  Redaction red = Redacted(event);
  {
    auto s = SealedStore::Open(d.path + "/sealed", Key(7));
    ASSERT_TRUE(s.ok());
    EXPECT_TRUE((*s)->encrypted());
    ASSERT_TRUE((*s)->Put(red.values, {}).ok());
    ASSERT_TRUE((*s)->Sync().ok());
  }
  EXPECT_FALSE(AnyFileHolds(d.path, "ZW5jcnlwdGVkLXZhbHVl"));
  // Without the key: refused at open. With another: nothing decrypts.
  auto none = SealedStore::Open(d.path + "/sealed", std::nullopt);
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("--seal-key"), std::string::npos);
  {
    auto other = SealedStore::Open(d.path + "/sealed", Key(8));
    ASSERT_TRUE(other.ok());
    EXPECT_EQ((*other)->Get(red.values[0].mac).status().code(), StatusCode::kDataLoss);
  }
  auto right = SealedStore::Open(d.path + "/sealed", Key(7));
  ASSERT_TRUE(right.ok());
  auto o = (*right)->Get(red.values[0].mac);
  ASSERT_TRUE(o.ok()) << o.status().message();
  EXPECT_EQ(o->value, "\"ZW5jcnlwdGVkLXZhbHVl\"");
}

TEST(SealedStore, AKeyIsRefusedForAStoreWrittenWithout) {
  Dir d;
  Redaction red = Redacted(R"({"password":"x"})");
  {
    auto s = SealedStore::Open(d.path + "/sealed", std::nullopt);
    ASSERT_TRUE(s.ok());
    ASSERT_TRUE((*s)->Put(red.values, {}).ok());
  }
  auto k = SealedStore::Open(d.path + "/sealed", Key(1));
  ASSERT_FALSE(k.ok());
  EXPECT_EQ(k.status().code(), StatusCode::kFailedPrecondition);
}

TEST(SealedStore, ErasureLeavesNoFileHoldingTheValueAndNamesItsEntry) {
  Dir d;
  const std::string event = R"({"kind":"Secret","data":{"a":"ZXJhc2UtbWUtcGxlYXNl","b":"a2VlcC1tZS1wbGVhc2U="}})";
  Redaction red = Redacted(event);
  auto s = SealedStore::Open(d.path + "/sealed", std::nullopt);
  ASSERT_TRUE(s.ok());
  ASSERT_TRUE((*s)->Put(red.values, {{Sha256(red.payload), Sha256(event)}}).ok());
  ASSERT_TRUE((*s)->Sync().ok());
  ASSERT_TRUE(AnyFileHolds(d.path, "ZXJhc2UtbWUtcGxlYXNl"));
  ASSERT_TRUE((*s)->Erase(red.values[0].mac, 41, Sha256(red.payload)).ok());
  EXPECT_FALSE(AnyFileHolds(d.path, "ZXJhc2UtbWUtcGxlYXNl"));
  EXPECT_TRUE(AnyFileHolds(d.path, "a2VlcC1tZS1wbGVhc2U="));
  auto gone = (*s)->Get(red.values[0].mac);
  ASSERT_EQ(gone.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(gone.status().message().find("entry 41"), std::string::npos);
  EXPECT_TRUE((*s)->Get(red.values[1].mac).ok());
  auto digest = (*s)->ReceivedDigest(Sha256(red.payload));
  ASSERT_TRUE(digest.ok());
  EXPECT_FALSE(digest->has_value());
}

TEST(SealedStore, SealKeyFiles) {
  Dir d;
  std::ofstream(d.path + "/good") << "  " << std::string(64, 'a') << "\n";
  std::ofstream(d.path + "/short") << std::string(62, 'a');
  std::ofstream(d.path + "/nothex") << std::string(64, 'z');
  auto k = ReadSealKey(d.path + "/good");
  ASSERT_TRUE(k.ok());
  EXPECT_EQ((*k)[0], 0xaa);
  EXPECT_FALSE(ReadSealKey(d.path + "/short").ok());
  EXPECT_FALSE(ReadSealKey(d.path + "/nothex").ok());
  EXPECT_FALSE(ReadSealKey(d.path + "/missing").ok());
}

}  // namespace
}  // namespace annals::redact
