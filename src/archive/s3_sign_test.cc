#include "archive/s3_sign.h"

#include <gtest/gtest.h>

namespace annals::archive {
namespace {

const S3Credentials kAwsExample{"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", ""};

// AWS's documented example "GET Object" (S3 API reference, "Signature
// Calculations for the Authorization Header: Transferring Payload in a
// Single Chunk").
TEST(SignV4, MatchesAwsGetObjectExample) {
  SigV4Request r;
  r.method = "GET";
  r.canonical_uri = "/test.txt";
  r.headers = {{"host", "examplebucket.s3.amazonaws.com"},
               {"range", "bytes=0-9"},
               {"x-amz-content-sha256", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
               {"x-amz-date", "20130524T000000Z"}};
  r.payload_sha256_hex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
  r.amz_date = "20130524T000000Z";
  r.region = "us-east-1";
  EXPECT_EQ(SignV4(r, kAwsExample),
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
            "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
            "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
  // Header order and surrounding spaces do not change the signature; a
  // changed value does.
  SigV4Request shuffled = r;
  std::swap(shuffled.headers[0], shuffled.headers[3]);
  shuffled.headers[1].second = "  bytes=0-9 ";
  EXPECT_EQ(SignV4(shuffled, kAwsExample), SignV4(r, kAwsExample));
  SigV4Request other = r;
  other.headers[1].second = "bytes=0-10";
  EXPECT_NE(SignV4(other, kAwsExample), SignV4(r, kAwsExample));
}

TEST(SignV4, Helpers) {
  EXPECT_EQ(UriEncodePath("/b/tile/0/x001/234.p/7"), "/b/tile/0/x001/234.p/7");
  EXPECT_EQ(UriEncodePath("/a b/c$d"), "/a%20b/c%24d");
  EXPECT_EQ(AmzDate(1369353600), "20130524T000000Z");
  // RFC 1321's test suite: MD5("abc").
  EXPECT_EQ(Md5Hex("abc"), "900150983cd24fb0d6963f7d28e17f72");
  EXPECT_EQ(ContentMd5(""), "1B2M2Y8AsgTpgAmY7PhCfg==");
}

TEST(ParseS3Url, BucketAndPrefix) {
  auto l = ParseS3Url("s3://annals-log/prod/eu-1/");
  ASSERT_TRUE(l.ok()) << l.status().message();
  EXPECT_EQ(l->bucket, "annals-log");
  EXPECT_EQ(l->prefix, "prod/eu-1");
  EXPECT_EQ(l->Key("checkpoint"), "prod/eu-1/checkpoint");
  EXPECT_EQ(l->Url(), "s3://annals-log/prod/eu-1");
  auto bare = ParseS3Url("s3://annals-log");
  ASSERT_TRUE(bare.ok());
  EXPECT_EQ(bare->Key("tile/0/000"), "tile/0/000");
  for (const char* bad : {"http://b/p", "s3://", "s3://ab", "s3://Upper/p", "s3://-bucket", "s3://b..c/p",
                          "s3://bucket/a//b", "s3://bucket/../x", "s3://bucket/./x"})
    EXPECT_FALSE(ParseS3Url(bad).ok()) << bad;
}

TEST(ParseCredentialsFile, ProfilesAndErrors) {
  const char* text =
      "# comment\n[default]\naws_access_key_id = AK1\naws_secret_access_key=SK1\n\n"
      "[ci]\naws_access_key_id=AK2\naws_secret_access_key = SK2\naws_session_token = T2\n";
  auto d = ParseCredentialsFile(text, "default");
  ASSERT_TRUE(d.ok()) << d.status().message();
  EXPECT_EQ(d->access_key, "AK1");
  EXPECT_EQ(d->secret_key, "SK1");
  EXPECT_EQ(d->session_token, "");
  auto ci = ParseCredentialsFile(text, "ci");
  ASSERT_TRUE(ci.ok());
  EXPECT_EQ(ci->session_token, "T2");
  EXPECT_EQ(ParseCredentialsFile(text, "nope").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(ParseCredentialsFile("[default]\naws_access_key_id=A\n", "default").status().code(),
            StatusCode::kNotFound);
  auto bad = ParseCredentialsFile("[default\n", "default");
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("line 1"), std::string::npos);
  EXPECT_EQ(ParseCredentialsFile("[default]\njunk\n", "default").status().code(),
            StatusCode::kInvalidArgument);
}

TEST(S3ErrorCode, ReadsTheCode) {
  EXPECT_EQ(S3ErrorCode("<?xml version=\"1.0\"?><Error><Code>AccessDenied</Code><Message>x</Message></Error>"),
            "AccessDenied");
  EXPECT_EQ(S3ErrorCode("no xml"), "");
  EXPECT_EQ(S3ErrorCode("<Code>has space</Code>"), "");
  EXPECT_EQ(S3ErrorCode("<Code>unterminated"), "");
}

TEST(ArchiveState, RoundTripsAndRejectsDamage) {
  ArchiveState s{"s3://b/p", 512, 700, 65536};
  auto back = ParseArchiveState(s.Encode());
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(back->target, "s3://b/p");
  EXPECT_EQ(back->full_through, 512u);
  EXPECT_EQ(back->size, 700u);
  EXPECT_EQ(back->next_segment, 65536u);
  const std::string good = s.Encode();
  EXPECT_FALSE(ParseArchiveState(good.substr(0, good.size() - 1)).ok());  // no final newline
  EXPECT_FALSE(ParseArchiveState(good + "x").ok());
  std::string v2 = good;
  v2[15] = '2';
  EXPECT_FALSE(ParseArchiveState(v2).ok());
  ArchiveState odd{"s3://b/p", 500, 700, 0};
  EXPECT_EQ(ParseArchiveState(odd.Encode()).status().code(), StatusCode::kDataLoss);
  EXPECT_FALSE(ParseArchiveState("annals-archive 1\ntarget s3://b\nfull-through 01\nsize 1\nnext-segment 0\n").ok());
}

}  // namespace
}  // namespace annals::archive
