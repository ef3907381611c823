#include "common/sha256.h"

#include <gtest/gtest.h>

#include <string>

#include "common/bytes.h"

namespace annals {
namespace {

std::string Hex(const Hash& h) { return HexEncode(HashBytes(h)); }

// FIPS 180-2 examples.
TEST(Sha256Test, KnownVectors) {
  EXPECT_EQ(Hex(Sha256("")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Hex(Sha256("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Hex(Sha256("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(Hex(Sha256(std::string(1000000, 'a'))),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256Test, PartsEqualsHashOfConcatenation) {
  EXPECT_EQ(Sha256Parts({"a", "b", "c"}), Sha256("abc"));
  EXPECT_EQ(Sha256Parts({}), Sha256(""));
  EXPECT_EQ(Sha256Parts({std::string_view("\x00", 1), "leaf"}),
            Sha256(std::string_view("\x00leaf", 5)));
  EXPECT_NE(Sha256Parts({"ab", "c"}), Sha256("abd"));
}

}  // namespace
}  // namespace annals
