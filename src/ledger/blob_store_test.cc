#include "ledger/blob_store.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "common/bytes.h"
#include "env/fault_injection_env.h"

namespace annals::ledger {
namespace {

namespace fs = std::filesystem;

class BlobStoreTest : public testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "annals-blobs-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
  }
  void TearDown() override { fs::remove_all(root_); }
  std::string root_;
};

TEST_F(BlobStoreTest, PutThenGetByDigest) {
  BlobStore blobs(root_ + "/blobs");
  const std::string payload(300000, 'p');
  const Hash digest = Sha256(payload);
  ASSERT_TRUE(blobs.Put(digest, payload).ok());
  const std::string hex = HexEncode(HashBytes(digest));
  EXPECT_EQ(blobs.PathFor(digest), root_ + "/blobs/" + hex.substr(0, 2) + "/" + hex);
  EXPECT_EQ(fs::file_size(blobs.PathFor(digest)), payload.size());
  auto got = blobs.Get(digest);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, payload);
  // Putting the same blob again is a no-op.
  EXPECT_TRUE(blobs.Put(digest, payload).ok());
}

TEST_F(BlobStoreTest, FullDiskIsResourceExhaustedLeavesNoTmpFileAndPutWorksOnceSpaceReturns) {
  env::FaultInjectionEnv env(env::Env::Default());
  BlobStore blobs(root_ + "/blobs", &env);
  const std::string payload(300000, 'q');
  const Hash digest = Sha256(payload);
  env.FillDisk();
  Status full = blobs.Put(digest, payload);
  ASSERT_FALSE(full.ok());
  // 503 with Retry-After to the client, not 500.
  EXPECT_EQ(full.code(), StatusCode::kResourceExhausted) << full.ToString();
  EXPECT_FALSE(fs::exists(blobs.PathFor(digest)));
  EXPECT_FALSE(fs::exists(blobs.PathFor(digest) + ".tmp")) << "half-written blob left behind";
  env.ReturnSpace();
  ASSERT_TRUE(blobs.Put(digest, payload).ok());
  auto got = blobs.Get(digest);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, payload);
}

TEST_F(BlobStoreTest, MissingBlobIsNotFound) {
  BlobStore blobs(root_ + "/blobs");
  EXPECT_EQ(blobs.Get(Sha256("nothing")).status().code(), StatusCode::kNotFound);
}

TEST_F(BlobStoreTest, AlteredBlobIsDataLossAndPutRepairsIt) {
  BlobStore blobs(root_ + "/blobs");
  const std::string payload = "the original payload";
  const Hash digest = Sha256(payload);
  ASSERT_TRUE(blobs.Put(digest, payload).ok());
  const std::string path = blobs.PathFor(digest);
  fs::permissions(path, fs::perms::owner_write, fs::perm_options::add);
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << "the altered payload!";
  }
  auto got = blobs.Get(digest);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), StatusCode::kDataLoss) << got.status().ToString();
  ASSERT_TRUE(blobs.Put(digest, payload).ok());
  EXPECT_EQ(*blobs.Get(digest), payload);
}

}  // namespace
}  // namespace annals::ledger
