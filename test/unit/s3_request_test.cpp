// Endpoints, addressing styles and prepared (signed) requests.
#include <gtest/gtest.h>

#include "s3/request.hpp"
#include "s3/sigv4.hpp"

namespace s3 = shardy::s3;
using Addressing = shardy::S3Options::Addressing;

TEST(S3Endpoint, AwsDefaultAndOverrides) {
  auto aws = s3::parse_endpoint("", "eu-west-1");
  EXPECT_TRUE(aws.aws);
  EXPECT_TRUE(aws.tls);
  EXPECT_EQ(aws.host, "s3.eu-west-1.amazonaws.com");
  EXPECT_EQ(aws.port, "443");

  auto local = s3::parse_endpoint("http://127.0.0.1:9000", "us-east-1");
  EXPECT_FALSE(local.aws);
  EXPECT_FALSE(local.tls);
  EXPECT_EQ(local.host, "127.0.0.1");
  EXPECT_EQ(local.port, "9000");
  EXPECT_FALSE(local.default_port);

  auto https = s3::parse_endpoint("https://minio.example.com/", "us-east-1");
  EXPECT_TRUE(https.tls);
  EXPECT_EQ(https.port, "443");
  EXPECT_TRUE(https.default_port);

  auto v6 = s3::parse_endpoint("http://[::1]:8080", "us-east-1");
  EXPECT_EQ(v6.host, "::1");
  EXPECT_EQ(v6.port, "8080");

  for (const char* bad : {"ftp://host", "127.0.0.1:9000", "http://", "http://h/path",
                          "http://u:p@h", "http://h?x=1", "not a url"}) {
    try {
      s3::parse_endpoint(bad, "us-east-1");
      ADD_FAILURE() << bad;
    } catch (const shardy::error& e) {
      EXPECT_EQ(e.code(), shardy::errc::invalid_url) << bad;
    }
  }
}

TEST(S3Addressing, DnsCompatibleBuckets) {
  EXPECT_TRUE(s3::dns_compatible_bucket("my-bucket", true));
  EXPECT_TRUE(s3::dns_compatible_bucket("b01", true));
  EXPECT_FALSE(s3::dns_compatible_bucket("ab", true));
  EXPECT_FALSE(s3::dns_compatible_bucket("My-Bucket", true));
  EXPECT_FALSE(s3::dns_compatible_bucket("-bucket", true));
  EXPECT_FALSE(s3::dns_compatible_bucket("bucket_name", true));
  EXPECT_FALSE(s3::dns_compatible_bucket("dotted.bucket", true));  // TLS wildcard
  EXPECT_TRUE(s3::dns_compatible_bucket("dotted.bucket", false));
  EXPECT_FALSE(s3::dns_compatible_bucket("a..b", false));
  EXPECT_FALSE(s3::dns_compatible_bucket("192.168.1.1", false));
  EXPECT_FALSE(s3::dns_compatible_bucket(std::string(64, 'a'), true));
}

TEST(S3Addressing, VirtualHostAndPathStyle) {
  auto aws = s3::parse_endpoint("", "us-east-1");
  auto a = s3::make_address(aws, Addressing::automatic, "my-bucket", "dir/a b+c.txt");
  EXPECT_EQ(a.host, "my-bucket.s3.us-east-1.amazonaws.com");
  EXPECT_EQ(a.host_header, "my-bucket.s3.us-east-1.amazonaws.com");
  EXPECT_EQ(a.path, "/dir/a%20b%2Bc.txt");
  EXPECT_TRUE(a.tls);

  // Not DNS-compatible: automatic falls back to path style.
  auto p = s3::make_address(aws, Addressing::automatic, "dotted.bucket", "k");
  EXPECT_EQ(p.host, "s3.us-east-1.amazonaws.com");
  EXPECT_EQ(p.path, "/dotted.bucket/k");

  // A custom endpoint defaults to path style; virtual-host on request.
  auto local = s3::parse_endpoint("http://localhost:9000", "us-east-1");
  auto lp = s3::make_address(local, Addressing::automatic, "bucket", "x/y/\xc3\xa9");
  EXPECT_EQ(lp.host, "localhost");
  EXPECT_EQ(lp.host_header, "localhost:9000");
  EXPECT_EQ(lp.path, "/bucket/x/y/%C3%A9");
  EXPECT_EQ(lp.port, "9000");
  EXPECT_FALSE(lp.tls);
  auto lv = s3::make_address(local, Addressing::virtual_host, "bucket", "k");
  EXPECT_EQ(lv.host, "bucket.localhost");
  EXPECT_EQ(lv.host_header, "bucket.localhost:9000");
  EXPECT_EQ(lv.path, "/k");

  // Bucket-level requests (ListObjectsV2).
  EXPECT_EQ(s3::make_address(local, Addressing::path, "bucket", "").path, "/bucket");
  EXPECT_EQ(s3::make_address(aws, Addressing::virtual_host, "bucket", "").path, "/");

  // IPv6 literal: bracketed Host header.
  auto v6 = s3::parse_endpoint("http://[::1]:8080", "us-east-1");
  EXPECT_EQ(s3::make_address(v6, Addressing::automatic, "b", "k").host_header, "[::1]:8080");

  // Keys keep '/' (including empty segments) and encode everything else that is reserved.
  EXPECT_EQ(s3::make_address(local, Addressing::path, "b", "a//b/./../~=:").path,
            "/b/a//b/./../~%3D%3A");
}

TEST(S3Endpoint, ConnectToOverride) {
  auto none = s3::parse_endpoint("http://s3.localhost:9000", "us-east-1");
  EXPECT_TRUE(none.connect_host.empty());
  EXPECT_TRUE(none.connect_port.empty());

  auto ip = s3::parse_endpoint("http://s3.localhost:9000", "us-east-1", "127.0.0.1");
  EXPECT_EQ(ip.host, "s3.localhost");
  EXPECT_EQ(ip.connect_host, "127.0.0.1");
  EXPECT_EQ(ip.connect_port, "9000");  // the endpoint's port

  auto ip_port = s3::parse_endpoint("https://s3.example.com", "us-east-1", "10.0.0.7:9443");
  EXPECT_EQ(ip_port.port, "443");
  EXPECT_EQ(ip_port.connect_host, "10.0.0.7");
  EXPECT_EQ(ip_port.connect_port, "9443");

  auto v6 = s3::parse_endpoint("http://s3.localhost:9000", "us-east-1", "[::1]:8080");
  EXPECT_EQ(v6.connect_host, "::1");
  EXPECT_EQ(v6.connect_port, "8080");
  auto v6_bare = s3::parse_endpoint("http://s3.localhost:9000", "us-east-1", "[::1]");
  EXPECT_EQ(v6_bare.connect_host, "::1");
  EXPECT_EQ(v6_bare.connect_port, "9000");

  auto name = s3::parse_endpoint("", "eu-west-1", "vpce-1.s3.eu-west-1.vpce.amazonaws.com");
  EXPECT_EQ(name.host, "s3.eu-west-1.amazonaws.com");
  EXPECT_EQ(name.connect_host, "vpce-1.s3.eu-west-1.vpce.amazonaws.com");
  EXPECT_EQ(name.connect_port, "443");

  for (const char* bad : {"user@127.0.0.1", "127.0.0.1:0", "127.0.0.1:x", "127.0.0.1:99999",
                          "http://127.0.0.1", "127.0.0.1/path", ":9000"}) {
    try {
      s3::parse_endpoint("http://s3.localhost:9000", "us-east-1", bad);
      ADD_FAILURE() << bad;
    } catch (const shardy::error& e) {
      EXPECT_EQ(e.code(), shardy::errc::invalid_url) << bad;
      EXPECT_NE(std::string(e.what()).find("connect_to"), std::string::npos) << e.what();
    }
  }
}

TEST(S3Addressing, ConnectToKeepsTheVirtualHostInHostHeaderAndSignature) {
  auto ep = s3::parse_endpoint("http://s3.localhost:9000", "us-east-1", "127.0.0.1");
  auto a = s3::make_address(ep, Addressing::virtual_host, "my-bucket", "dir/a b");
  EXPECT_EQ(a.host, "my-bucket.s3.localhost");  // TLS SNI / verification name
  EXPECT_EQ(a.port, "9000");
  EXPECT_EQ(a.connect_host, "127.0.0.1");  // where the TCP connection goes
  EXPECT_EQ(a.connect_port, "9000");
  EXPECT_EQ(a.host_header, "my-bucket.s3.localhost:9000");
  EXPECT_EQ(a.path, "/dir/a%20b");

  shardy::Credentials creds{"AKID", "SECRET", "", std::nullopt};
  s3::RequestParts parts;
  parts.method = "GET";
  parts.address = &a;
  parts.payload_hash = s3::kEmptySha256;
  auto now = std::chrono::system_clock::time_point(std::chrono::seconds(1440938160));
  auto r = s3::prepare_request(parts, creds, "us-east-1", now);
  EXPECT_EQ(r.target, "/dir/a%20b");
  std::map<std::string, std::string> h(r.headers.begin(), r.headers.end());
  EXPECT_EQ(h["host"], "my-bucket.s3.localhost:9000");
  EXPECT_NE(r.canonical_request.find("\nhost:my-bucket.s3.localhost:9000\n"), std::string::npos)
      << r.canonical_request;
  EXPECT_EQ(r.canonical_request.find("127.0.0.1"), std::string::npos) << r.canonical_request;

  // The signature is the one of the same request without the override.
  auto plain_ep = s3::parse_endpoint("http://s3.localhost:9000", "us-east-1");
  auto plain = s3::make_address(plain_ep, Addressing::virtual_host, "my-bucket", "dir/a b");
  EXPECT_TRUE(plain.connect_host.empty());
  parts.address = &plain;
  auto r2 = s3::prepare_request(parts, creds, "us-east-1", now);
  std::map<std::string, std::string> h2(r2.headers.begin(), r2.headers.end());
  EXPECT_EQ(h2["authorization"], h["authorization"]);

  // Path style with an override: path keeps the bucket, Host header stays the endpoint's.
  auto p = s3::make_address(ep, Addressing::path, "my-bucket", "k");
  EXPECT_EQ(p.host_header, "s3.localhost:9000");
  EXPECT_EQ(p.path, "/my-bucket/k");
  EXPECT_EQ(p.connect_host, "127.0.0.1");
}

TEST(S3PreparedRequest, HeadersTargetAndAuthorization) {
  auto ep = s3::parse_endpoint("http://127.0.0.1:9000", "us-east-1");
  auto addr = s3::make_address(ep, Addressing::path, "bucket", "a b");
  shardy::Credentials creds{"AKID", "SECRET", "TOKEN", std::nullopt};
  auto q = s3::canonical_query({{"list-type", "2"}, {"prefix", "x y"}});
  s3::RequestParts parts;
  parts.method = "GET";
  parts.address = &addr;
  parts.canonical_query = q;
  parts.headers = {{"range", "bytes=0-9"}};
  parts.payload_hash = s3::kEmptySha256;
  auto now = std::chrono::system_clock::time_point(std::chrono::seconds(1440938160));
  s3::SigningKeyCache cache;
  auto r = s3::prepare_request(parts, creds, "us-east-1", now, &cache);
  EXPECT_EQ(r.method, "GET");
  EXPECT_EQ(r.target, "/bucket/a%20b?list-type=2&prefix=x%20y");
  std::map<std::string, std::string> h(r.headers.begin(), r.headers.end());
  EXPECT_EQ(h["host"], "127.0.0.1:9000");
  EXPECT_EQ(h["x-amz-date"], "20150830T123600Z");
  EXPECT_EQ(h["x-amz-security-token"], "TOKEN");
  EXPECT_EQ(h["x-amz-content-sha256"], s3::kEmptySha256);
  EXPECT_NE(h["authorization"].find("Credential=AKID/20150830/us-east-1/s3/aws4_request, "
                                    "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date;"
                                    "x-amz-security-token, Signature="),
            std::string::npos);
  // The cache gives the same key as deriving it afresh.
  auto again = s3::prepare_request(parts, creds, "us-east-1", now);
  EXPECT_EQ(again.headers.back().second, r.headers.back().second);
}
