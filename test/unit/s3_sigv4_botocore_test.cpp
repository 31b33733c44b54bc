// Cross-check: shardy's request builder + signer against botocore (an independent SigV4
// implementation, Debian's python3-botocore) on a few hundred generated S3 requests with odd
// keys (spaces, unicode, '=', ':', '+', '~', '%', '//'), query parameters, extra headers,
// session tokens, signed and unsigned payloads, both addressing styles, http and https.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <cstdlib>
#include <fstream>
#include <random>

#include "s3/request.hpp"
#include "s3/sigv4.hpp"
#include "support/test_support.hpp"

namespace s3 = shardy::s3;

namespace {

struct Gen {
  std::mt19937_64 rng;
  explicit Gen(std::uint64_t seed) : rng(seed) {}

  std::size_t below(std::size_t n) {
    return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng);
  }
  bool coin(double p = 0.5) { return std::bernoulli_distribution(p)(rng); }

  template <typename T, std::size_t N>
  const T& pick(const T (&a)[N]) {
    return a[below(N)];
  }

  std::string text(std::size_t max_len, bool allow_slash) {
    static const char* pieces[] = {"a",
                                   "Z",
                                   "0",
                                   "9",
                                   "-",
                                   "_",
                                   ".",
                                   "~",
                                   " ",
                                   "  ",
                                   "=",
                                   ":",
                                   "+",
                                   "!",
                                   "*",
                                   "'",
                                   "(",
                                   ")",
                                   "&",
                                   "$",
                                   "@",
                                   ",",
                                   ";",
                                   "?",
                                   "#",
                                   "%",
                                   "%20",
                                   "[",
                                   "]",
                                   "{",
                                   "}",
                                   "^",
                                   "`",
                                   "|",
                                   "\\",
                                   "\"",
                                   "<",
                                   ">",
                                   "\xc3\xa9",
                                   "\xe1\x88\xb4",
                                   "\xf0\x9f\x98\x80",
                                   "\xe4\xb8\xad",
                                   "key",
                                   "shard-00001",
                                   "db"};
    std::string s;
    std::size_t n = 1 + below(max_len);
    for (std::size_t i = 0; i < n; ++i) {
      if (allow_slash && coin(0.15)) {
        s += coin(0.2) ? "//" : "/";
      } else {
        s += pick(pieces);
      }
    }
    return s;
  }

  std::string dns_bucket() {
    static const char* names[] = {"examplebucket",    "my-bucket", "b01",
                                  "shardy-test-data", "a-b-c",     "snapshots"};
    return pick(names);
  }
};

struct Case {
  boost::json::object json;
  std::string expected_authorization;  // ours
  std::string canonical_request;       // ours
};

Case make_case(Gen& g) {
  static const char* methods[] = {"GET", "HEAD", "PUT", "DELETE"};
  static const char* regions[] = {"us-east-1", "eu-west-1", "ap-southeast-2", "us-gov-west-1"};
  static const char* endpoints[] = {"",
                                    "http://127.0.0.1:9000",
                                    "https://127.0.0.1:9443",
                                    "http://localhost",
                                    "https://minio.example.com",
                                    "http://[::1]:8080",
                                    "https://s3.eu-west-1.amazonaws.com:443"};
  Case c;
  std::string method = g.pick(methods);
  std::string region = g.pick(regions);
  std::string endpoint_url = g.pick(endpoints);
  auto endpoint = s3::parse_endpoint(endpoint_url, region);
  auto addressing =
      g.coin() ? shardy::S3Options::Addressing::automatic : shardy::S3Options::Addressing::path;
  std::string bucket = g.coin(0.8) ? g.dns_bucket() : "dotted.bucket.name";
  bool bucket_op = g.coin(0.15);
  std::string key = bucket_op ? "" : g.text(12, true);
  auto address = s3::make_address(endpoint, addressing, bucket, key);

  std::vector<std::pair<std::string, std::string>> query;
  if (bucket_op) {
    method = "GET";
    query.emplace_back("list-type", "2");
    if (g.coin()) query.emplace_back("prefix", g.text(8, true));
    if (g.coin()) query.emplace_back("delimiter", "/");
    if (g.coin()) query.emplace_back("continuation-token", g.text(10, true) + "+/=");
  }
  std::size_t extra_params = g.coin(0.3) ? g.below(3) + 1 : 0;
  for (std::size_t i = 0; i < extra_params; ++i) {
    query.emplace_back(g.text(4, false), g.coin(0.2) ? std::string() : g.text(6, true));
  }

  std::vector<std::pair<std::string, std::string>> headers;
  if (method == "GET" && !bucket_op && g.coin()) headers.emplace_back("Range", "bytes=0-9");
  if (g.coin(0.3)) headers.emplace_back("If-Match", "\"9b2cf535f27731c974343645a3985328\"");
  if (method == "PUT") {
    headers.emplace_back("Content-Type",
                         g.coin() ? "application/octet-stream" : "text/plain;  charset=utf-8");
    if (g.coin(0.3)) headers.emplace_back("If-None-Match", "*");
  }
  if (g.coin(0.2)) headers.emplace_back("x-amz-meta-note", "  spaced   out  value ");

  bool has_body = method == "PUT";
  std::string body = has_body ? g.text(40, true) : std::string();
  bool unsigned_payload = has_body && endpoint.tls && g.coin();
  std::string payload_hash =
      unsigned_payload ? std::string(s3::kUnsignedPayload) : s3::sha256_hex(body);

  shardy::Credentials creds;
  creds.access_key_id = "AKID" + std::to_string(g.below(100000));
  creds.secret_access_key = g.coin() ? "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY" : "s3cr3t/+=x";
  if (g.coin(0.4))
    creds.session_token = "FwoGZXIvYXdzE" + std::to_string(g.below(1000000)) + "//+=tok";

  // A time between 2015 and 2030.
  auto now = std::chrono::system_clock::time_point(
      std::chrono::seconds(1420070400 + static_cast<std::int64_t>(g.below(473040000))));

  s3::RequestParts parts;
  parts.method = method;
  parts.address = &address;
  std::string cq = s3::canonical_query(query);
  parts.canonical_query = cq;
  parts.headers = headers;
  parts.payload_hash = payload_hash;
  auto prepared = s3::prepare_request(parts, creds, region, now);
  for (const auto& [k, v] : prepared.headers) {
    if (k == "authorization") c.expected_authorization = v;
  }
  c.canonical_request = prepared.canonical_request;

  boost::json::object& j = c.json;
  j["method"] = method;
  j["scheme"] = endpoint.tls ? "https" : "http";
  j["host"] = endpoint.host;
  j["port"] = endpoint.default_port ? "" : endpoint.port;
  j["virtual_host"] = address.host != endpoint.host;
  j["bucket"] = bucket;
  j["key"] = key;
  boost::json::array q;
  for (auto& [k, v] : query)
    q.push_back(boost::json::array{boost::json::string(k), boost::json::string(v)});
  j["query"] = std::move(q);
  boost::json::array h;
  for (auto& [k, v] : headers)
    h.push_back(boost::json::array{boost::json::string(k), boost::json::string(v)});
  j["headers"] = std::move(h);
  if (has_body) {
    j["body"] = body;
  } else {
    j["body"] = nullptr;
  }
  j["unsigned_payload"] = unsigned_payload;
  j["access_key"] = creds.access_key_id;
  j["secret_key"] = creds.secret_access_key;
  j["token"] = creds.session_token;
  j["region"] = region;
  j["timestamp"] = s3::amz_date(now);
  return c;
}

}  // namespace

TEST(SigV4Botocore, GeneratedRequestsMatch) {
  if (std::system("/usr/bin/python3 -c 'import botocore' >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "/usr/bin/python3 with botocore (python3-botocore) is not installed";
  }
  constexpr int kCases = 400;
  Gen g(20261122);
  std::vector<Case> cases;
  auto dir = shardy::test::make_temp_dir("sigv4_botocore");
  {
    std::ofstream in(dir / "requests.jsonl", std::ios::binary);
    for (int i = 0; i < kCases; ++i) {
      cases.push_back(make_case(g));
      in << boost::json::serialize(cases.back().json) << '\n';
    }
  }
  std::string cmd = "/usr/bin/python3 " + std::string(SHARDY_SOURCE_DIR) +
                    "/test/tools/sigv4_botocore.py < " + (dir / "requests.jsonl").string() + " > " +
                    (dir / "signed.jsonl").string();
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  auto lines = shardy::test::read_lines(dir / "signed.jsonl");
  ASSERT_EQ(lines.size(), cases.size());
  int mismatches = 0;
  int virtual_hosts = 0, tokens = 0, unsigned_payloads = 0, queries = 0;
  for (std::size_t i = 0; i < cases.size(); ++i) {
    auto theirs = boost::json::parse(lines[i]).as_object();
    const auto& c = cases[i];
    virtual_hosts += c.json.at("virtual_host").as_bool();
    tokens += !c.json.at("token").as_string().empty();
    unsigned_payloads += c.json.at("unsigned_payload").as_bool();
    queries += !c.json.at("query").as_array().empty();
    if (theirs.at("authorization").as_string() != c.expected_authorization) {
      if (++mismatches <= 5) {
        ADD_FAILURE() << "case " << i << ": " << boost::json::serialize(c.json) << "\nours:\n"
                      << c.canonical_request << "\nbotocore:\n"
                      << theirs.at("canonical_request").as_string().c_str();
      }
    }
  }
  EXPECT_EQ(mismatches, 0);
  // The generator really covered the interesting shapes.
  EXPECT_GT(virtual_hosts, 20);
  EXPECT_GT(tokens, 50);
  EXPECT_GT(unsigned_payloads, 10);
  EXPECT_GT(queries, 50);
  std::filesystem::remove_all(dir);
}
