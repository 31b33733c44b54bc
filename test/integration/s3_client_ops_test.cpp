// S3Client against the fixture's S3 server (s3rver behind a SigV4-verifying front end on
// 127.0.0.1): every operation, ranges, preconditions, listings over pages, streaming to and
// from files, a 64 MiB object both ways, and authentication failures.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <future>
#include <shardy/s3_client.hpp>

#include "s3_common_checks.hpp"
#include "s3_test_env.hpp"
#include "support/test_support.hpp"

namespace asio = boost::asio;
using namespace shardy;
using namespace shardy::test;

namespace {

class S3Ops : public S3ServerTest {
 protected:
  // PUTs `body` under key(name) and returns the ETag (the test fails on an error).
  std::string put(S3Client& c, const std::string& name, const std::string& body,
                  const std::string& type = "application/octet-stream") {
    auto [ec, r] = call([&](auto tok) {
      return c.async_put_object(bucket, key(name), body, PutObjectRequest(type), tok);
    });
    EXPECT_FALSE(ec) << ec.message() << ": " << r.diagnostics;
    return r.etag;
  }
};

TEST_F(S3Ops, PutGetHeadDelete) {
  auto c = client();
  const std::string body = "hello, shardy\n";
  auto etag = put(c, "obj.txt", body, "text/plain");
  ASSERT_EQ(etag.size(), 34u) << etag;  // "<md5 hex>"
  EXPECT_EQ(etag.front(), '"');
  EXPECT_EQ(etag.back(), '"');

  auto [ec, g] = call([&](auto tok) { return c.async_get_object(bucket, key("obj.txt"), tok); });
  ASSERT_FALSE(ec) << ec.message() << ": " << g.diagnostics;
  EXPECT_EQ(g.status, 200u);
  EXPECT_EQ(g.body, body);
  EXPECT_EQ(g.size, body.size());
  EXPECT_EQ(g.etag, etag);
  EXPECT_EQ(g.content_type, "text/plain");
  EXPECT_FALSE(g.content_range);
  EXPECT_EQ(g.attempts, 1u);

  auto [hec, h] = call([&](auto tok) { return c.async_head_object(bucket, key("obj.txt"), tok); });
  ASSERT_FALSE(hec) << h.diagnostics;
  EXPECT_EQ(h.size, body.size());
  EXPECT_EQ(h.etag, etag);
  EXPECT_EQ(h.content_type, "text/plain");
  EXPECT_TRUE(h.last_modified.has_value());

  auto [dec, d] =
      call([&](auto tok) { return c.async_delete_object(bucket, key("obj.txt"), tok); });
  ASSERT_FALSE(dec) << d.diagnostics;
  auto [gec2, g2] = call([&](auto tok) { return c.async_get_object(bucket, key("obj.txt"), tok); });
  EXPECT_EQ(gec2, errc::object_not_found) << gec2.message();
  EXPECT_TRUE(g2.body.empty());
  EXPECT_NE(g2.diagnostics.find("NoSuchKey"), std::string::npos) << g2.diagnostics;
  auto [hec2, h2] =
      call([&](auto tok) { return c.async_head_object(bucket, key("obj.txt"), tok); });
  EXPECT_EQ(hec2, errc::object_not_found) << hec2.message();
  // Deleting a missing key succeeds, as in S3.
  auto [dec2, d2] =
      call([&](auto tok) { return c.async_delete_object(bucket, key("obj.txt"), tok); });
  EXPECT_FALSE(dec2) << d2.diagnostics;
}

TEST_F(S3Ops, ContentTypeAndEmptyObject) {
  auto c = client();
  put(c, "data.json", "{}", "application/json");
  put(c, "empty", "");
  auto [ec, h] = call([&](auto tok) { return c.async_head_object(bucket, key("data.json"), tok); });
  ASSERT_FALSE(ec) << h.diagnostics;
  EXPECT_EQ(h.content_type, "application/json");
  auto [eec, e] = call([&](auto tok) { return c.async_get_object(bucket, key("empty"), tok); });
  ASSERT_FALSE(eec) << e.diagnostics;
  EXPECT_EQ(e.body, "");
  EXPECT_EQ(e.size, 0u);
}

TEST_F(S3Ops, OddKeysRoundTrip) {
  auto c = client();
  for (std::string name : {"with space", "plus+sign", "tilde~", "uni-\xc3\xa9\xe4\xb8\xad",
                           "bang!*'()", "a=b&c?d", "semi;colon", "dir/sub/x.y", "percent%41"}) {
    SCOPED_TRACE(name);
    put(c, name, "v:" + name);
    auto [ec, g] = call([&](auto tok) { return c.async_get_object(bucket, key(name), tok); });
    ASSERT_FALSE(ec) << ec.message() << ": " << g.diagnostics;
    EXPECT_EQ(g.body, "v:" + name);
  }
}

// Spec ranges on a 10-byte object: bounded, open, suffix, one byte, clipped at the end.
TEST_F(S3Ops, Ranges) {
  auto c = client();
  const std::string body = "0123456789";
  put(c, "digits", body);
  struct Case {
    ByteRange range;
    std::string want;
    std::uint64_t first, last;
  };
  const Case cases[] = {
      {ByteRange::bounded(0, 1), "0", 0, 0},       {ByteRange::bounded(2, 3), "234", 2, 4},
      {ByteRange::bounded(5, 100), "56789", 5, 9}, {ByteRange::bounded(9, 1), "9", 9, 9},
      {ByteRange::from(3), "3456789", 3, 9},       {ByteRange::from(0), body, 0, 9},
      {ByteRange::suffix(3), "789", 7, 9},         {ByteRange::suffix(1), "9", 9, 9},
      {ByteRange::suffix(20), body, 0, 9},
  };
  for (const auto& k : cases) {
    SCOPED_TRACE(k.want);
    GetObjectRequest req(k.range);
    auto [ec, g] =
        call([&](auto tok) { return c.async_get_object(bucket, key("digits"), req, tok); });
    ASSERT_FALSE(ec) << ec.message() << ": " << g.diagnostics;
    EXPECT_EQ(g.status, 206u);
    EXPECT_EQ(g.body, k.want);
    ASSERT_TRUE(g.content_range);
    EXPECT_EQ(g.content_range->first, k.first);
    EXPECT_EQ(g.content_range->last, k.last);
    EXPECT_EQ(g.content_range->total, 10u);
    EXPECT_EQ(g.size, 10u);
    EXPECT_EQ(g.range_offset(), k.first);
  }
}

TEST_F(S3Ops, RangeStartingPastTheEndIsInvalidRange) {
  auto c = client();
  put(c, "digits", "0123456789");
  put(c, "empty", "");
  for (auto [name, range] :
       {std::pair{"digits", ByteRange::from(10)}, std::pair{"digits", ByteRange::bounded(11, 5)},
        std::pair{"empty", ByteRange::bounded(0, 1)}}) {
    SCOPED_TRACE(name);
    GetObjectRequest req(range);
    auto [ec, g] = call([&](auto tok) { return c.async_get_object(bucket, key(name), req, tok); });
    EXPECT_EQ(ec, errc::invalid_range) << ec.message() << ": " << g.diagnostics;
    EXPECT_EQ(g.status, 416u);
    EXPECT_TRUE(g.body.empty());
    EXPECT_EQ(g.attempts, 1u);
    EXPECT_FALSE(is_retryable(ec));
  }
}

TEST_F(S3Ops, CreateOnlyConflictIsPreconditionFailed) {
  auto c = client();
  PutObjectRequest create("text/plain", /*create_only=*/true);
  auto [ec1, p1] =
      call([&](auto tok) { return c.async_put_object(bucket, key("once"), "first", create, tok); });
  ASSERT_FALSE(ec1) << p1.diagnostics;
  auto [ec2, p2] = call(
      [&](auto tok) { return c.async_put_object(bucket, key("once"), "second", create, tok); });
  EXPECT_EQ(ec2, errc::precondition_failed) << ec2.message() << ": " << p2.diagnostics;
  EXPECT_EQ(p2.status, 412u);
  EXPECT_NE(p2.diagnostics.find("PreconditionFailed"), std::string::npos) << p2.diagnostics;
  EXPECT_FALSE(is_retryable(ec2));
  auto [gec, g] = call([&](auto tok) { return c.async_get_object(bucket, key("once"), tok); });
  ASSERT_FALSE(gec);
  EXPECT_EQ(g.body, "first");
}

TEST_F(S3Ops, CreateOnlyRaceHasExactlyOneWinner) {
  auto c = client();
  std::vector<std::future<std::tuple<error_code, PutObjectResult>>> futures;
  for (int i = 0; i < 8; ++i)
    futures.push_back(c.async_put_object(bucket, key("race"), "writer " + std::to_string(i),
                                         PutObjectRequest("text/plain", true), use_future_tuple));
  int won = 0, lost = 0;
  for (auto& f : futures) {
    auto [ec, r] = f.get();
    if (!ec)
      ++won;
    else if (ec == errc::precondition_failed)
      ++lost;
    else
      ADD_FAILURE() << ec.message() << ": " << r.diagnostics;
  }
  EXPECT_EQ(won, 1);
  EXPECT_EQ(lost, 7);
}

TEST_F(S3Ops, IfMatchOnPutAndGet) {
  auto c = client();
  auto v1 = put(c, "doc", "v1");
  PutObjectRequest replace_v1("text/plain", false, v1);
  auto [ec, p] =
      call([&](auto tok) { return c.async_put_object(bucket, key("doc"), "v2", replace_v1, tok); });
  ASSERT_FALSE(ec) << p.diagnostics;
  auto v2 = p.etag;
  EXPECT_NE(v1, v2);
  // v1 is stale now.
  auto [ec2, p2] =
      call([&](auto tok) { return c.async_put_object(bucket, key("doc"), "v3", replace_v1, tok); });
  EXPECT_EQ(ec2, errc::precondition_failed) << ec2.message() << ": " << p2.diagnostics;

  GetObjectRequest stale(std::nullopt, v1);
  auto [gec, g] =
      call([&](auto tok) { return c.async_get_object(bucket, key("doc"), stale, tok); });
  EXPECT_EQ(gec, errc::precondition_failed) << gec.message();
  EXPECT_TRUE(g.body.empty());
  GetObjectRequest current(ByteRange::bounded(1, 1), v2);
  auto [gec2, g2] =
      call([&](auto tok) { return c.async_get_object(bucket, key("doc"), current, tok); });
  ASSERT_FALSE(gec2) << g2.diagnostics;
  EXPECT_EQ(g2.body, "2");
}

TEST_F(S3Ops, ListObjectsV2OverManyPages) {
  auto c = client();
  constexpr int n = 1050;  // > 1000: at least two pages
  std::vector<std::future<std::tuple<error_code, PutObjectResult>>> inflight;
  auto drain = [&] {
    for (auto& f : inflight) {
      auto [ec, r] = f.get();
      ASSERT_FALSE(ec) << r.diagnostics;
    }
    inflight.clear();
  };
  for (int i = 0; i < n; ++i) {
    char name[32];
    std::snprintf(name, sizeof name, "many/k%05d", i);
    inflight.push_back(c.async_put_object(bucket, key(name), "x", use_future_tuple));
    if (inflight.size() == 16) drain();
  }
  drain();

  ListObjectsRequest all(key("many/"));
  auto [ec, l] = call([&](auto tok) { return c.async_list_objects_v2(bucket, all, tok); });
  ASSERT_FALSE(ec) << l.diagnostics;
  ASSERT_EQ(l.objects.size(), static_cast<std::size_t>(n));
  EXPECT_GE(l.pages, 2u);
  EXPECT_TRUE(l.next_continuation_token.empty());
  for (int i = 0; i < n; ++i) {
    char name[32];
    std::snprintf(name, sizeof name, "many/k%05d", i);
    ASSERT_EQ(l.objects[i].key, key(name));
    EXPECT_EQ(l.objects[i].size, 1u);
  }

  // One page at a time, resumed from the continuation token.
  ListObjectsResult p1, p2;
  ASSERT_NO_FATAL_FAILURE(list_first_page_then_rest(c, bucket, key("many/"), 0, p1, p2));
  EXPECT_EQ(p1.objects.size(), 1000u);
  ASSERT_EQ(p2.objects.size(), static_cast<std::size_t>(n - 1000));
  EXPECT_EQ(p2.objects.front().key, key("many/k01000"));
}

TEST_F(S3Ops, ListWithDelimiterAndCommonPrefixes) {
  auto c = client();
  for (const char* k : {"tree/a/1", "tree/a/2", "tree/b/1", "tree/top", "tree/zz", "other"})
    put(c, k, "t");
  ListObjectsRequest req(key("tree/"), "/");
  auto [ec, l] = call([&](auto tok) { return c.async_list_objects_v2(bucket, req, tok); });
  ASSERT_FALSE(ec) << l.diagnostics;
  ASSERT_EQ(l.common_prefixes.size(), 2u);
  EXPECT_EQ(l.common_prefixes[0], key("tree/a/"));
  EXPECT_EQ(l.common_prefixes[1], key("tree/b/"));
  ASSERT_EQ(l.objects.size(), 2u);
  EXPECT_EQ(l.objects[0].key, key("tree/top"));
  EXPECT_EQ(l.objects[1].key, key("tree/zz"));

  ListObjectsRequest none(key("nothing-here/"));
  auto [ec2, l2] = call([&](auto tok) { return c.async_list_objects_v2(bucket, none, tok); });
  ASSERT_FALSE(ec2) << l2.diagnostics;
  EXPECT_TRUE(l2.objects.empty());
  EXPECT_TRUE(l2.common_prefixes.empty());
}

TEST_F(S3Ops, UploadFromFileAndDownloadToFile) {
  auto c = client();
  auto dir = make_temp_dir("s3ops-files");
  const std::string data = random_bytes(300 * 1024 + 7, 42);
  { std::ofstream(dir / "up.bin", std::ios::binary) << data; }
  auto [uec, u] = call([&](auto tok) {
    return c.async_put_object_from_file(bucket, key("file.bin"), dir / "up.bin", tok);
  });
  ASSERT_FALSE(uec) << u.diagnostics;
  std::atomic<std::uint64_t> last_done{0}, last_total{0};
  std::atomic<int> calls{0};
  DownloadRequest req({}, [&](std::uint64_t done, std::uint64_t total) {
    last_done = done;
    last_total = total;
    ++calls;
  });
  auto [dec, d] = call([&](auto tok) {
    return c.async_download_to_file(bucket, key("file.bin"), dir / "down.bin", req, tok);
  });
  ASSERT_FALSE(dec) << d.diagnostics;
  EXPECT_EQ(d.size, data.size());
  EXPECT_EQ(d.etag, u.etag);
  EXPECT_EQ(read_file(dir / "down.bin"), data);
  EXPECT_GE(calls.load(), 1);
  EXPECT_EQ(last_done.load(), data.size());
  EXPECT_EQ(last_total.load(), data.size());

  auto [mec, m] = call([&](auto tok) {
    return c.async_download_to_file(bucket, key("missing.bin"), dir / "missing.bin", tok);
  });
  EXPECT_EQ(mec, errc::object_not_found) << mec.message();
  std::filesystem::remove_all(dir);
}

// 64 MiB streamed up from a file and down to a file; SHA-256 compared end to end.
TEST_F(S3Ops, LargeObjectStreamedBothWays) {
  auto c = client();
  auto dir = make_temp_dir("s3ops-large");
  constexpr std::size_t size = 64u << 20;
  std::string data = random_bytes(size, 7);
  const auto want = sha256_hex(data);
  { std::ofstream(dir / "up.bin", std::ios::binary) << data; }
  data.clear();
  data.shrink_to_fit();
  auto [uec, u] = call([&](auto tok) {
    return c.async_put_object_from_file(bucket, key("large.bin"), dir / "up.bin", tok);
  });
  ASSERT_FALSE(uec) << u.diagnostics;
  std::filesystem::remove(dir / "up.bin");

  std::atomic<std::uint64_t> last_done{0};
  DownloadRequest req({}, [&](std::uint64_t done, std::uint64_t) { last_done = done; });
  auto [dec, d] = call([&](auto tok) {
    return c.async_download_to_file(bucket, key("large.bin"), dir / "down.bin", req, tok);
  });
  ASSERT_FALSE(dec) << d.diagnostics;
  EXPECT_EQ(d.size, size);
  EXPECT_EQ(std::filesystem::file_size(dir / "down.bin"), size);
  EXPECT_EQ(sha256_file_hex(dir / "down.bin"), want);
  EXPECT_EQ(last_done.load(), size);

  // The tail through a suffix range of the same object.
  GetObjectRequest tail(ByteRange::suffix(1000));
  auto [gec, g] =
      call([&](auto tok) { return c.async_get_object(bucket, key("large.bin"), tail, tok); });
  ASSERT_FALSE(gec) << g.diagnostics;
  ASSERT_TRUE(g.content_range);
  EXPECT_EQ(g.content_range->first, size - 1000);
  EXPECT_EQ(g.body, random_bytes(size, 7).substr(size - 1000));
  std::filesystem::remove_all(dir);
}

TEST_F(S3Ops, GetRangesCoalescesAndReturnsExactBytes) {
  auto c = client();
  const std::string data = random_bytes(1 << 20, 3);
  put(c, "ranges.bin", data);
  GetRangesRequest req({ByteRange::bounded(0, 100), ByteRange::bounded(200, 50),
                        ByteRange::bounded(500000, 4096), ByteRange::bounded(501000, 10),
                        ByteRange::from((1 << 20) - 5)});
  auto [ec, r] =
      call([&](auto tok) { return c.async_get_ranges(bucket, key("ranges.bin"), req, tok); });
  ASSERT_FALSE(ec) << r.diagnostics;
  ASSERT_EQ(r.bodies.size(), 5u);
  EXPECT_EQ(r.bodies[0], data.substr(0, 100));
  EXPECT_EQ(r.bodies[1], data.substr(200, 50));
  EXPECT_EQ(r.bodies[2], data.substr(500000, 4096));
  EXPECT_EQ(r.bodies[3], data.substr(501000, 10));
  EXPECT_EQ(r.bodies[4], data.substr((1 << 20) - 5));
  EXPECT_EQ(r.object_size, data.size());
  EXPECT_LT(r.requests, 5u);
  EXPECT_GE(r.requests, 1u);
  // The server saw exactly the requests the client reports.
  EXPECT_EQ(request_stats(path_prefix() + "ranges.bin", "front", "GET").requests, r.requests);
}

TEST_F(S3Ops, RequestCountsMatchTheServer) {
  auto c = client();
  put(c, "counted", "abc");
  unsigned attempts = 0;
  for (int i = 0; i < 20; ++i) {
    auto [ec, g] = call([&](auto tok) { return c.async_get_object(bucket, key("counted"), tok); });
    ASSERT_FALSE(ec) << g.diagnostics;
    ASSERT_EQ(g.body, "abc");
    attempts += g.attempts;
  }
  EXPECT_EQ(attempts, 20u);
  auto gets = request_stats(path_prefix() + "counted", "front", "GET");
  EXPECT_EQ(gets.requests, 20u);
  EXPECT_EQ(gets.connections, 1u) << "sequential requests should share one keep-alive connection";
  EXPECT_EQ(request_stats(path_prefix() + "counted", "front", "PUT").requests, 1u);
}

// 48 GETs at once through a pool of at most 4 connections: every body right, never more than
// 4 connections opened.
TEST_F(S3Ops, ConcurrentGetsShareABoundedPool) {
  auto direct = client();
  std::vector<std::string> bodies;
  for (int i = 0; i < 6; ++i) {
    bodies.push_back(random_bytes(20000 + i, i));
    put(direct, "p/" + std::to_string(i), bodies.back());
  }
  auto o = options();
  o.max_connections_per_endpoint = 4;
  auto c = client(o);
  std::vector<std::future<std::tuple<error_code, GetObjectResult>>> futures;
  for (int i = 0; i < 48; ++i)
    futures.push_back(
        c.async_get_object(bucket, key("p/" + std::to_string(i % 6)), use_future_tuple));
  for (int i = 0; i < 48; ++i) {
    auto [ec, r] = futures[i].get();
    ASSERT_FALSE(ec) << r.diagnostics;
    EXPECT_TRUE(r.body == bodies[i % 6]) << "wrong bytes for request " << i;
  }
  auto s = request_stats(path_prefix() + "p/", "front", "GET");
  EXPECT_EQ(s.requests, 48u);
  EXPECT_LE(s.connections, 4u);
  EXPECT_GE(s.connections, 1u);
}

TEST_F(S3Ops, WrongSecretIsSignatureMismatch) {
  auto c = client(with_wrong_secret(options(), info));
  auto [ec, g] = get_with_bad_signature(c, bucket, key("anything"));
  EXPECT_EQ(g.attempts, 1u);
  EXPECT_FALSE(is_retryable(ec));
  auto [pec, p] = call([&](auto tok) { return c.async_put_object(bucket, key("x"), "data", tok); });
  EXPECT_EQ(pec, errc::signature_mismatch) << pec.message() << ": " << p.diagnostics;
}

TEST_F(S3Ops, UnknownAccessKeyIsAccessDenied) {
  auto o = options();
  o.credentials = make_static_credentials({"NO-SUCH-KEY", "secret", "", std::nullopt});
  auto c = client(o);
  auto [ec, g] = call([&](auto tok) { return c.async_head_object(bucket, key("anything"), tok); });
  EXPECT_TRUE(ec);
  EXPECT_FALSE(is_retryable(ec)) << ec.message();
  EXPECT_EQ(g.status, 403u);
  EXPECT_EQ(g.attempts, 1u);
  auto [lec, l] = call(
      [&](auto tok) { return c.async_list_objects_v2(bucket, ListObjectsRequest(key("")), tok); });
  EXPECT_EQ(lec, errc::access_denied) << lec.message() << ": " << l.diagnostics;
  EXPECT_NE(l.diagnostics.find("InvalidAccessKeyId"), std::string::npos) << l.diagnostics;
}

TEST_F(S3Ops, SessionTokenIsSentAndChecked) {
  if (info.session_access_key.empty()) GTEST_SKIP() << "server has no session credential";
  auto o = options();
  o.credentials = make_static_credentials(
      {info.session_access_key, info.session_secret_key, info.session_token, std::nullopt});
  auto c = client(o);
  auto [ec, p] =
      call([&](auto tok) { return c.async_put_object(bucket, key("session"), "s", tok); });
  ASSERT_FALSE(ec) << ec.message() << ": " << p.diagnostics;
  auto [gec, g] = call([&](auto tok) { return c.async_get_object(bucket, key("session"), tok); });
  ASSERT_FALSE(gec) << g.diagnostics;
  EXPECT_EQ(g.body, "s");

  o.credentials = make_static_credentials(
      {info.session_access_key, info.session_secret_key, "wrong-token", std::nullopt});
  auto bad = client(o);
  auto [bec, b] = call([&](auto tok) { return bad.async_get_object(bucket, key("session"), tok); });
  EXPECT_TRUE(bec);
  EXPECT_EQ(b.status, 403u);
  EXPECT_NE(b.diagnostics.find("InvalidToken"), std::string::npos) << b.diagnostics;
}

}  // namespace
