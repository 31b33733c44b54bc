// SigV4 against AWS's published vectors: the aws-sig-v4-test-suite (service "service",
// AKIDEXAMPLE, 2015-08-30T12:36:00Z) and the S3 documentation's header-auth examples
// (examplebucket, AKIAIOSFODNN7EXAMPLE, 2013-05-24). Expected values are the published ones.
#include <gtest/gtest.h>

#include "s3/sigv4.hpp"

namespace s3 = shardy::s3;

namespace {

constexpr std::string_view kSuiteKeyId = "AKIDEXAMPLE";
constexpr std::string_view kSuiteSecret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
constexpr s3::SigningScope kSuiteScope{"20150830T123600Z", "us-east-1", "service"};
constexpr std::string_view kSuiteCredential =
    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, ";

// A body-less GET of the suite's host at the suite's date, signed with the suite's key.
s3::Signature sign_suite_get(std::string_view canonical_uri, std::string_view canonical_query) {
  s3::SigningRequest r{"GET",
                       canonical_uri,
                       canonical_query,
                       {{"host", "example.amazonaws.com"}, {"x-amz-date", "20150830T123600Z"}},
                       s3::kEmptySha256};
  return s3::sign(r, kSuiteScope, kSuiteKeyId, kSuiteSecret);
}

constexpr std::string_view kS3KeyId = "AKIAIOSFODNN7EXAMPLE";
constexpr std::string_view kS3Secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
constexpr s3::SigningScope kS3Scope{"20130524T000000Z", "us-east-1", "s3"};

}  // namespace

TEST(SigV4Primitives, HashesAndEncoding) {
  EXPECT_EQ(s3::sha256_hex(""), s3::kEmptySha256);
  s3::Sha256 h;
  h.update("Welcome to ", 11);
  h.update("Amazon S3.", 10);
  EXPECT_EQ(h.hex_digest(), "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
  EXPECT_EQ(s3::uri_encode("a b/c+d=e:f~g_h.i-j", true), "a%20b/c%2Bd%3De%3Af~g_h.i-j");
  EXPECT_EQ(s3::uri_encode("a/b", false), "a%2Fb");
  EXPECT_EQ(s3::uri_encode("\xe1\x88\xb4", true), "%E1%88%B4");
  EXPECT_EQ(s3::uri_encode(std::string_view("\0\x7f\xff", 3), true), "%00%7F%FF");
  EXPECT_EQ(s3::canonical_query({{"prefix", "J"}, {"max-keys", "2"}}), "max-keys=2&prefix=J");
  EXPECT_EQ(s3::canonical_query({{"b", "x y"}, {"a", ""}, {"b", "A"}, {"list-type", "2"}}),
            "a=&b=A&b=x%20y&list-type=2");
  EXPECT_EQ(s3::amz_date(std::chrono::system_clock::time_point(std::chrono::seconds(1440938160))),
            "20150830T123600Z");
}

// aws-sig-v4-test-suite/get-vanilla
TEST(SigV4Suite, GetVanilla) {
  s3::SigningRequest r{"GET",
                       "/",
                       "",
                       {{"Host", "example.amazonaws.com"}, {"X-Amz-Date", "20150830T123600Z"}},
                       s3::kEmptySha256};
  auto s = s3::sign(r, kSuiteScope, kSuiteKeyId, kSuiteSecret);
  EXPECT_EQ(
      s.canonical_request,
      "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n" +
          std::string(s3::kEmptySha256));
  EXPECT_EQ(s.string_to_sign,
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n"
            "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63");
  EXPECT_EQ(s.authorization,
            std::string(kSuiteCredential) +
                "SignedHeaders=host;x-amz-date, "
                "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
}

// aws-sig-v4-test-suite/get-vanilla-query-order-key-case
TEST(SigV4Suite, GetVanillaQueryOrderKeyCase) {
  auto q = s3::canonical_query({{"Param2", "value2"}, {"Param1", "value1"}});
  EXPECT_EQ(q, "Param1=value1&Param2=value2");
  auto s = sign_suite_get("/", q);
  EXPECT_EQ(s3::sha256_hex(s.canonical_request),
            "816cd5b414d056048ba4f7c5386d6e0533120fb1fcfa93762cf0fc39e2cf19e0");
  EXPECT_EQ(s.signature, "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500");
}

// aws-sig-v4-test-suite/post-x-www-form-urlencoded
TEST(SigV4Suite, PostFormUrlencoded) {
  std::string body = "Param1=value1";
  auto hash = s3::sha256_hex(body);
  EXPECT_EQ(hash, "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e");
  s3::SigningRequest r{"POST",
                       "/",
                       "",
                       {{"Content-Type", "application/x-www-form-urlencoded"},
                        {"Host", "example.amazonaws.com"},
                        {"X-Amz-Date", "20150830T123600Z"}},
                       hash};
  auto s = s3::sign(r, kSuiteScope, kSuiteKeyId, kSuiteSecret);
  EXPECT_EQ(s.string_to_sign.substr(s.string_to_sign.rfind('\n') + 1),
            "42a5e5bb34198acb3e84da4f085bb7927f2bc277ca766e6d19c73c2154021281");
  EXPECT_EQ(s.authorization,
            std::string(kSuiteCredential) +
                "SignedHeaders=content-type;host;x-amz-date, "
                "Signature=ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a");
}

// aws-sig-v4-test-suite/post-sts-token/post-sts-header-after: the session token is a signed
// header.
TEST(SigV4Suite, PostStsHeaderAfter) {
  constexpr std::string_view token =
      "AQoDYXdzEPT//////////"
      "wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwth"
      "Ax7mSEI/"
      "qkPpKPi/"
      "kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcH"
      "NVXAkiY9q6d+"
      "xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+"
      "scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==";
  s3::SigningRequest r{"POST",
                       "/",
                       "",
                       {{"host", "example.amazonaws.com"},
                        {"x-amz-date", "20150830T123600Z"},
                        {"x-amz-security-token", token}},
                       s3::kEmptySha256};
  auto s = s3::sign(r, kSuiteScope, kSuiteKeyId, kSuiteSecret);
  EXPECT_EQ(s.string_to_sign.substr(s.string_to_sign.rfind('\n') + 1),
            "c237e1b440d4c63c32ca95b5b99481081cb7b13c7e40434868e71567c1a882f6");
  EXPECT_EQ(s.authorization,
            std::string(kSuiteCredential) +
                "SignedHeaders=host;x-amz-date;x-amz-security-token, "
                "Signature=85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead");
}

// aws-sig-v4-test-suite/get-utf8: the path is percent-encoded once, upper-case hex.
TEST(SigV4Suite, GetUtf8) {
  auto uri = "/" + s3::uri_encode("\xe1\x88\xb4", true);
  auto s = sign_suite_get(uri, "");
  EXPECT_EQ(s3::sha256_hex(s.canonical_request),
            "2a0a97d02205e45ce2e994789806b19270cfbbb0921b278ccf58f5249ac42102");
}

// aws-sig-v4-test-suite/get-header-key-duplicate: repeated names join in order with ','.
TEST(SigV4Suite, GetHeaderKeyDuplicate) {
  s3::SigningRequest r{"GET",
                       "/",
                       "",
                       {{"Host", "example.amazonaws.com"},
                        {"My-Header1", "value2"},
                        {"My-Header1", "value2"},
                        {"My-Header1", "value1"},
                        {"X-Amz-Date", "20150830T123600Z"}},
                       s3::kEmptySha256};
  auto s = s3::sign(r, kSuiteScope, kSuiteKeyId, kSuiteSecret);
  EXPECT_NE(s.canonical_request.find("my-header1:value2,value2,value1\n"), std::string::npos);
  EXPECT_EQ(s.signature, "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea");
}

// S3 docs, header-based auth, "GET Object": a Range header and x-amz-content-sha256.
TEST(SigV4S3Examples, GetObjectRange) {
  s3::SigningRequest r{"GET",
                       "/test.txt",
                       "",
                       {{"Host", "examplebucket.s3.amazonaws.com"},
                        {"Range", "bytes=0-9"},
                        {"x-amz-content-sha256", s3::kEmptySha256},
                        {"x-amz-date", "20130524T000000Z"}},
                       s3::kEmptySha256};
  auto s = s3::sign(r, kS3Scope, kS3KeyId, kS3Secret);
  EXPECT_EQ(s3::sha256_hex(s.canonical_request),
            "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972");
  EXPECT_EQ(s.authorization,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
            "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
            "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
}

// S3 docs, "GET Bucket (List Objects)": query parameters sorted.
TEST(SigV4S3Examples, ListObjects) {
  auto q = s3::canonical_query({{"prefix", "J"}, {"max-keys", "2"}});
  s3::SigningRequest r{"GET",
                       "/",
                       q,
                       {{"Host", "examplebucket.s3.amazonaws.com"},
                        {"x-amz-content-sha256", s3::kEmptySha256},
                        {"x-amz-date", "20130524T000000Z"}},
                       s3::kEmptySha256};
  auto s = s3::sign(r, kS3Scope, kS3KeyId, kS3Secret);
  EXPECT_EQ(s.signature, "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
}

// S3 docs, "PUT Object": a '$' in the key is encoded, the body hash is signed.
TEST(SigV4S3Examples, PutObject) {
  auto hash = s3::sha256_hex("Welcome to Amazon S3.");
  auto uri = "/" + s3::uri_encode("test$file.text", true);
  EXPECT_EQ(uri, "/test%24file.text");
  s3::SigningRequest r{"PUT",
                       uri,
                       "",
                       {{"Host", "examplebucket.s3.amazonaws.com"},
                        {"Date", "Fri, 24 May 2013 00:00:00 GMT"},
                        {"x-amz-date", "20130524T000000Z"},
                        {"x-amz-storage-class", "REDUCED_REDUNDANCY"},
                        {"x-amz-content-sha256", hash}},
                       hash};
  auto s = s3::sign(r, kS3Scope, kS3KeyId, kS3Secret);
  EXPECT_EQ(s.signed_headers, "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class");
  EXPECT_EQ(s.signature, "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
}

TEST(SigV4, HeaderValuesTrimmedAndCollapsed) {
  s3::SigningRequest r{
      "GET", "/", "", {{"host", "h"}, {"X-Note", "  one   two  "}}, s3::kEmptySha256};
  auto s = s3::sign(r, kSuiteScope, kSuiteKeyId, kSuiteSecret);
  EXPECT_NE(s.canonical_request.find("\nx-note:one two\n"), std::string::npos);
  // A different secret, region or date changes the signature.
  auto other = s3::sign(r, kSuiteScope, kSuiteKeyId, "other");
  EXPECT_NE(other.signature, s.signature);
  s3::SigningScope eu{"20150830T123600Z", "eu-west-1", "service"};
  EXPECT_NE(s3::sign(r, eu, kSuiteKeyId, kSuiteSecret).signature, s.signature);
}
