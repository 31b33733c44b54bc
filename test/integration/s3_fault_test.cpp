// S3Client through the fixture's fault-injecting proxy (test/s3server, fault_endpoint): resets
// before and inside a body, EOF, bursts of 500/503/429, stalls longer than the timeout, bodies
// cut short under a correct Content-Length. Every case ends with the correct bytes after
// retries, or with a clear error and no data — never with wrong data. Each test checks that the
// proxy saw exactly the client's attempts and that every injected fault was consumed.
#include <gtest/gtest.h>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/post.hpp>
#include <chrono>
#include <fstream>
#include <future>
#include <shardy/s3_client.hpp>
#include <thread>

#include "s3_test_env.hpp"
#include "support/test_support.hpp"

using namespace shardy;
using namespace shardy::test;
using namespace std::chrono_literals;

namespace {

class S3Faults : public S3ServerTest {
 protected:
  void TearDown() override { clear_faults(path_prefix()); }

  // Writes an object directly (not through the proxy) and returns its bytes.
  std::string seed(const std::string& name, std::size_t size, std::uint64_t seed = 1) {
    auto c = client();
    auto data = random_bytes(size, seed);
    auto [ec, r] = call([&](auto tok) { return c.async_put_object(bucket, key(name), data, tok); });
    EXPECT_FALSE(ec) << r.diagnostics;
    return data;
  }

  // The first-byte timeout of tests whose faults stall for 3 s: well under the stall, and well
  // over a healthy response's first byte on a loaded 2-core machine under ASan (300 ms made
  // EveryFaultInARowThenSuccess time out on a good response once, at load 7).
  static constexpr std::chrono::milliseconds kStallTimeout{1000};

  S3Options proxied(unsigned max_attempts = 5, std::chrono::milliseconds first_byte = 5000ms) {
    auto o = options(/*via_fault_proxy=*/true);
    o.retry.max_attempts = max_attempts;
    o.first_byte_timeout = first_byte;
    return o;
  }

  std::string obj_path(const std::string& name) const { return path_prefix() + name; }

  // The proxy saw `attempts` requests for `name`, `faults` of them faulty, and no fault is left.
  void expect_proxy_saw(const std::string& name, unsigned attempts, unsigned faults) {
    auto s = request_stats(obj_path(name), "proxy");
    EXPECT_EQ(s.requests, attempts);
    EXPECT_EQ(s.faults, faults);
    EXPECT_EQ(pending_faults(obj_path(name)), 0u);
  }

  // GET through the proxy with `faults` injected; returns (ec, result).
  std::tuple<error_code, GetObjectResult> get_with(const std::string& name,
                                                   const std::vector<Fault>& faults, S3Options o) {
    inject_faults(obj_path(name), faults);
    auto c = client(std::move(o));
    return call([&](auto tok) { return c.async_get_object(bucket, key(name), tok); });
  }

  // The case must succeed with exactly `data`; the proxy saw one request per fault plus the
  // successful one.
  void expect_recovers(const std::string& name, const std::string& data,
                       const std::vector<Fault>& faults, S3Options o) {
    auto [ec, r] = get_with(name, faults, std::move(o));
    ASSERT_FALSE(ec) << ec.message() << ": " << r.diagnostics;
    EXPECT_EQ(r.body.size(), data.size());
    EXPECT_TRUE(r.body == data) << "wrong bytes";
    expect_attempts(name, r.attempts, static_cast<unsigned>(faults.size() + 1),
                    static_cast<unsigned>(faults.size()), only_status(faults));
  }

  static bool only_status(const std::vector<Fault>& faults) {
    for (const auto& f : faults)
      if (f.kind != "status") return false;
    return true;
  }

  // The proxy saw `requests` requests (`faults` of them faulty, none left). The client counts
  // every request as an attempt, except that it may resend once, uncounted, when a pooled
  // keep-alive connection fails before any response byte (a connection the server may have
  // closed while idle): so attempts <= requests <= 2 * attempts, and exact for status faults.
  void expect_attempts(const std::string& name, unsigned attempts, unsigned requests,
                       unsigned faults, bool exact) {
    expect_proxy_saw(name, requests, faults);
    if (exact) {
      EXPECT_EQ(attempts, requests);
    } else {
      EXPECT_LE(attempts, requests);
      EXPECT_LE(requests, 2 * attempts);
    }
  }
};

// --- retryable status bursts ----------------------------------------------------------------

TEST_F(S3Faults, SlowDownBurstThenSuccess) {
  auto data = seed("o", 64 * 1024);
  expect_recovers("o", data,
                  {Fault::http_status(503, "SlowDown"), Fault::http_status(503, "SlowDown"),
                   Fault::http_status(503, "SlowDown")},
                  proxied());
}

TEST_F(S3Faults, InternalErrorBurstThenSuccess) {
  auto data = seed("o", 10);
  expect_recovers("o", data, {Fault::http_status(500), Fault::http_status(500)}, proxied());
}

TEST_F(S3Faults, TooManyRequestsThenSuccess) {
  auto data = seed("o", 10);
  expect_recovers("o", data, {Fault::http_status(429, "SlowDown")}, proxied());
}

TEST_F(S3Faults, PersistentServerErrorEndsInAClearError) {
  seed("o", 10);
  auto [ec, r] =
      get_with("o", {Fault::http_status(500), Fault::http_status(500), Fault::http_status(500)},
               proxied(/*max_attempts=*/3));
  EXPECT_TRUE(ec == errc::server_error || ec == errc::retry_budget_exhausted) << ec.message();
  EXPECT_TRUE(r.body.empty());
  EXPECT_EQ(r.attempts, 3u);
  EXPECT_NE(r.diagnostics.find("InternalError"), std::string::npos) << r.diagnostics;
  expect_proxy_saw("o", 3, 3);
}

TEST_F(S3Faults, PersistentSlowDownEndsInAClearError) {
  seed("o", 10);
  auto [ec, r] =
      get_with("o", {Fault::http_status(503, "SlowDown"), Fault::http_status(503, "SlowDown")},
               proxied(/*max_attempts=*/2));
  EXPECT_TRUE(ec == errc::throttled || ec == errc::retry_budget_exhausted) << ec.message();
  EXPECT_TRUE(r.body.empty());
  EXPECT_EQ(r.attempts, 2u);
  EXPECT_NE(r.diagnostics.find("SlowDown"), std::string::npos) << r.diagnostics;
  expect_proxy_saw("o", 2, 2);
}

TEST_F(S3Faults, ForbiddenIsNotRetried) {
  seed("o", 10);
  auto [ec, r] = get_with("o", {Fault::http_status(403, "AccessDenied")}, proxied());
  EXPECT_EQ(ec, errc::access_denied) << ec.message() << ": " << r.diagnostics;
  EXPECT_TRUE(r.body.empty());
  EXPECT_EQ(r.attempts, 1u);
  expect_proxy_saw("o", 1, 1);
}

TEST_F(S3Faults, RetryBudgetBoundsTheRetries) {
  seed("o", 10);
  auto o = proxied(/*max_attempts=*/20);
  o.retry.base_delay = 100ms;
  o.retry.max_delay = 100ms;
  o.retry.total_budget = 250ms;
  std::vector<Fault> burst(20, Fault::http_status(500));
  auto t0 = std::chrono::steady_clock::now();
  auto [ec, r] = get_with("o", burst, o);
  auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_TRUE(ec == errc::retry_budget_exhausted || ec == errc::server_error) << ec.message();
  EXPECT_TRUE(r.body.empty());
  EXPECT_LT(r.attempts, 20u);
  EXPECT_LT(took, 2s);
  EXPECT_EQ(request_stats(obj_path("o"), "proxy").requests, r.attempts);
}

// --- connection faults ----------------------------------------------------------------------

TEST_F(S3Faults, ResetBeforeResponseThenSuccess) {
  auto data = seed("o", 100 * 1024);
  expect_recovers("o", data, {Fault::of("reset_before_response")}, proxied());
}

TEST_F(S3Faults, EofBeforeResponseThenSuccess) {
  auto data = seed("o", 100 * 1024);
  expect_recovers("o", data, {Fault::of("close_before_response")}, proxied());
}

TEST_F(S3Faults, ResetMidBodyThenSuccess) {
  auto data = seed("o", 256 * 1024);
  expect_recovers("o", data, {Fault::cut("reset_mid_body", 100 * 1024)}, proxied());
}

TEST_F(S3Faults, ShortBodyThenSuccess) {
  auto data = seed("o", 256 * 1024);
  expect_recovers("o", data, {Fault::cut("short_body", 128 * 1024)}, proxied());
}

TEST_F(S3Faults, ShortBodyWithoutRetriesIsTruncatedBody) {
  seed("o", 256 * 1024);
  auto [ec, r] = get_with("o", {Fault::cut("short_body", 1000)}, proxied(/*max_attempts=*/1));
  EXPECT_EQ(ec, errc::truncated_body) << ec.message() << ": " << r.diagnostics;
  EXPECT_TRUE(is_retryable(ec));
  EXPECT_TRUE(r.body.empty()) << "a truncated body must never be returned as data";
  expect_proxy_saw("o", 1, 1);
}

TEST_F(S3Faults, ResetMidBodyWithoutRetriesIsConnectionFailed) {
  seed("o", 256 * 1024);
  auto [ec, r] = get_with("o", {Fault::cut("reset_mid_body", 1000)}, proxied(/*max_attempts=*/1));
  EXPECT_TRUE(ec == errc::connection_failed || ec == errc::truncated_body) << ec.message();
  EXPECT_TRUE(is_retryable(ec));
  EXPECT_TRUE(r.body.empty());
  expect_proxy_saw("o", 1, 1);
}

TEST_F(S3Faults, EofBeforeResponseWithoutRetriesIsConnectionFailed) {
  seed("o", 10);
  auto [ec, r] = get_with("o", {Fault::of("close_before_response")}, proxied(/*max_attempts=*/1));
  EXPECT_EQ(ec, errc::connection_failed) << ec.message() << ": " << r.diagnostics;
  EXPECT_TRUE(r.body.empty());
  expect_proxy_saw("o", 1, 1);
}

// A server that resets every request: the uncounted resend on a fresh connection happens at
// most once per attempt, so the total stays bounded.
TEST_F(S3Faults, PersistentResetsAreBounded) {
  seed("o", 10);
  std::vector<Fault> resets(12, Fault::of("reset_before_response"));
  auto [ec, r] = get_with("o", resets, proxied(/*max_attempts=*/3));
  EXPECT_TRUE(ec == errc::connection_failed || ec == errc::retry_budget_exhausted) << ec.message();
  EXPECT_TRUE(r.body.empty());
  EXPECT_EQ(r.attempts, 3u);
  auto s = request_stats(obj_path("o"), "proxy");
  EXPECT_GE(s.requests, 3u);
  EXPECT_LE(s.requests, 6u);
  EXPECT_EQ(s.faults, s.requests);
}

// --- stalls ---------------------------------------------------------------------------------

TEST_F(S3Faults, StallLongerThanTimeoutThenSuccess) {
  auto data = seed("o", 1000);
  auto t0 = std::chrono::steady_clock::now();
  expect_recovers("o", data, {Fault::stall(3000)}, proxied(5, /*first_byte=*/kStallTimeout));
  // The client gave up on the stalled attempt instead of waiting it out.
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2500ms);
}

TEST_F(S3Faults, StallWithoutRetriesIsTimeout) {
  seed("o", 1000);
  auto t0 = std::chrono::steady_clock::now();
  auto [ec, r] = get_with("o", {Fault::stall(3000)}, proxied(1, /*first_byte=*/kStallTimeout));
  auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(ec, errc::timeout) << ec.message() << ": " << r.diagnostics;
  EXPECT_TRUE(r.body.empty());
  EXPECT_GE(took, kStallTimeout - 50ms);
  EXPECT_LT(took, 2500ms);
  expect_proxy_saw("o", 1, 1);
}

TEST_F(S3Faults, StallInsideTheBodyThenSuccess) {
  auto data = seed("o", 200 * 1024);
  expect_recovers("o", data, {Fault::stall(3000, /*after_bytes=*/50 * 1024)},
                  proxied(5, /*first_byte=*/kStallTimeout));
}

TEST_F(S3Faults, OperationTimeoutBoundsAStalledOperation) {
  seed("o", 1000);
  auto o = proxied(5, /*first_byte=*/10s);
  o.operation_timeout = 400ms;
  auto t0 = std::chrono::steady_clock::now();
  auto [ec, r] = get_with("o", {Fault::stall(3000)}, o);
  auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(ec, errc::timeout) << ec.message() << ": " << r.diagnostics;
  EXPECT_TRUE(r.body.empty());
  EXPECT_LT(took, 2500ms);
}

// Cancelling an operation stalled at the proxy ends it with errc::cancelled at once; the
// client's pool serves later requests.
TEST_F(S3Faults, CancelDuringStallLeavesThePoolHealthy) {
  auto data = seed("o", 5000);
  auto c = client(proxied(5, /*first_byte=*/10s));
  {
    auto [ec, r] = call([&](auto tok) { return c.async_get_object(bucket, key("o"), tok); });
    ASSERT_FALSE(ec) << r.diagnostics;
  }
  inject_faults(obj_path("o"), {Fault::stall(3000)});
  boost::asio::cancellation_signal cancel;
  std::promise<std::tuple<error_code, GetObjectResult>> done;
  auto result = done.get_future();
  c.async_get_object(
      bucket, key("o"),
      boost::asio::bind_cancellation_slot(cancel.slot(), [&done](error_code ec, GetObjectResult r) {
        done.set_value({ec, std::move(r)});
      }));
  std::this_thread::sleep_for(300ms);
  auto t0 = std::chrono::steady_clock::now();
  // Cancellation signals are not thread-safe: emit on the thread that runs the operation.
  boost::asio::post(io, [&] { cancel.emit(boost::asio::cancellation_type::terminal); });
  auto [ec, r] = result.get();
  EXPECT_EQ(ec, errc::cancelled) << ec.message() << ": " << r.diagnostics;
  EXPECT_TRUE(r.body.empty());
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s);
  for (int i = 0; i < 3; ++i) {
    auto [gec, g] = call([&](auto tok) { return c.async_get_object(bucket, key("o"), tok); });
    ASSERT_FALSE(gec) << g.diagnostics;
    EXPECT_TRUE(g.body == data);
  }
}

// --- every kind of fault in a row on one GET ------------------------------------------------

TEST_F(S3Faults, EveryFaultInARowThenSuccess) {
  auto data = seed("o", 300 * 1024);
  expect_recovers(
      "o", data,
      {Fault::http_status(503, "SlowDown"), Fault::of("reset_before_response"),
       Fault::cut("short_body", 1), Fault::http_status(500), Fault::of("close_before_response"),
       Fault::stall(3000), Fault::cut("reset_mid_body", 200 * 1024), Fault::stall(3000, 10)},
      proxied(/*max_attempts=*/9, /*first_byte=*/kStallTimeout));
}

// --- other operations -----------------------------------------------------------------------

TEST_F(S3Faults, RangeGetResetMidBodyReturnsTheRightRange) {
  auto data = seed("o", 512 * 1024);
  inject_faults(obj_path("o"),
                {Fault::cut("reset_mid_body", 5000), Fault::cut("short_body", 9000)});
  auto c = client(proxied());
  GetObjectRequest req(ByteRange::bounded(100000, 20000));
  auto [ec, r] = call([&](auto tok) { return c.async_get_object(bucket, key("o"), req, tok); });
  ASSERT_FALSE(ec) << r.diagnostics;
  EXPECT_TRUE(r.body == data.substr(100000, 20000)) << "wrong bytes";
  ASSERT_TRUE(r.content_range);
  EXPECT_EQ(r.content_range->first, 100000u);
  expect_attempts("o", r.attempts, 3, 2, false);
}

TEST_F(S3Faults, HeadAfterSlowDownAndReset) {
  auto data = seed("o", 12345);
  inject_faults(obj_path("o"),
                {Fault::http_status(503, "SlowDown"), Fault::of("reset_before_response")});
  auto c = client(proxied());
  auto [ec, r] = call([&](auto tok) { return c.async_head_object(bucket, key("o"), tok); });
  ASSERT_FALSE(ec) << r.diagnostics;
  EXPECT_EQ(r.size, data.size());
  expect_attempts("o", r.attempts, 3, 2, false);
}

TEST_F(S3Faults, DownloadToFileResumesAfterFaults) {
  auto data = seed("o", 3 << 20, 9);
  inject_faults(obj_path("o"),
                {Fault::cut("reset_mid_body", 1 << 20), Fault::cut("short_body", 1000),
                 Fault::stall(3000, 4096), Fault::http_status(503, "SlowDown")});
  auto c = client(proxied(/*max_attempts=*/6, /*first_byte=*/kStallTimeout));
  auto dir = make_temp_dir("s3faults-download");
  auto [ec, r] = call(
      [&](auto tok) { return c.async_download_to_file(bucket, key("o"), dir / "o.bin", tok); });
  ASSERT_FALSE(ec) << ec.message() << ": " << r.diagnostics;
  EXPECT_EQ(r.size, data.size());
  EXPECT_EQ(std::filesystem::file_size(dir / "o.bin"), data.size());
  EXPECT_EQ(sha256_file_hex(dir / "o.bin"), sha256_hex(data));
  expect_attempts("o", r.attempts, 5, 4, false);
  std::filesystem::remove_all(dir);
}

TEST_F(S3Faults, DownloadToFileWithoutRetriesFailsClearly) {
  seed("o", 1 << 20, 9);
  inject_faults(obj_path("o"), {Fault::cut("short_body", 1000)});
  auto c = client(proxied(/*max_attempts=*/1));
  auto dir = make_temp_dir("s3faults-download1");
  auto [ec, r] = call(
      [&](auto tok) { return c.async_download_to_file(bucket, key("o"), dir / "o.bin", tok); });
  EXPECT_EQ(ec, errc::truncated_body) << ec.message() << ": " << r.diagnostics;
  expect_proxy_saw("o", 1, 1);
  std::filesystem::remove_all(dir);
}

TEST_F(S3Faults, PutRetriedAfterResetAndServerErrors) {
  const auto data = random_bytes(200 * 1024, 5);
  inject_faults(obj_path("p"), {Fault::of("reset_before_response"), Fault::http_status(500),
                                Fault::http_status(503, "SlowDown")});
  auto c = client(proxied());
  auto [ec, r] = call([&](auto tok) { return c.async_put_object(bucket, key("p"), data, tok); });
  ASSERT_FALSE(ec) << ec.message() << ": " << r.diagnostics;
  expect_attempts("p", r.attempts, 4, 3, false);
  auto direct = client();
  auto [gec, g] = call([&](auto tok) { return direct.async_get_object(bucket, key("p"), tok); });
  ASSERT_FALSE(gec) << g.diagnostics;
  EXPECT_TRUE(g.body == data);
  EXPECT_EQ(g.etag, r.etag);
}

TEST_F(S3Faults, PutFromFileRetriedAfterSlowDown) {
  const auto data = random_bytes(2 << 20, 6);
  auto dir = make_temp_dir("s3faults-upload");
  { std::ofstream(dir / "up.bin", std::ios::binary) << data; }
  inject_faults(obj_path("f"),
                {Fault::http_status(503, "SlowDown"), Fault::of("close_before_response")});
  auto c = client(proxied());
  auto [ec, r] = call([&](auto tok) {
    return c.async_put_object_from_file(bucket, key("f"), dir / "up.bin", tok);
  });
  ASSERT_FALSE(ec) << ec.message() << ": " << r.diagnostics;
  expect_attempts("f", r.attempts, 3, 2, false);
  auto direct = client();
  auto [gec, g] = call([&](auto tok) { return direct.async_get_object(bucket, key("f"), tok); });
  ASSERT_FALSE(gec) << g.diagnostics;
  EXPECT_EQ(sha256_hex(g.body), sha256_hex(data));
  std::filesystem::remove_all(dir);
}

TEST_F(S3Faults, ListingRetriedAfterServerErrorAndReset) {
  auto direct = client();
  for (int i = 0; i < 5; ++i) {
    auto [ec, r] = call([&](auto tok) {
      return direct.async_put_object(bucket, key("l/" + std::to_string(i)), "x", tok);
    });
    ASSERT_FALSE(ec) << r.diagnostics;
  }
  // List requests go to /bucket?list-type=2&prefix=...: match them by their prefix parameter
  // (this test's prefix has only unreserved characters, so it appears verbatim).
  const std::string bucket_path = "/" + bucket;
  const std::string query_filter = "prefix=" + prefix;
  inject_faults(bucket_path, {Fault::http_status(500), Fault::cut("reset_mid_body", 100)}, "GET",
                query_filter);
  auto c = client(proxied());
  ListObjectsRequest req(key("l/"));
  auto [ec, l] = call([&](auto tok) { return c.async_list_objects_v2(bucket, req, tok); });
  ASSERT_FALSE(ec) << ec.message() << ": " << l.diagnostics;
  ASSERT_EQ(l.objects.size(), 5u);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(l.objects[i].key, key("l/" + std::to_string(i)));
  EXPECT_LE(l.attempts, 3u);
  EXPECT_GE(l.attempts, 2u);
  EXPECT_EQ(pending_faults(bucket_path, query_filter), 0u);
  clear_faults(bucket_path, query_filter);
}

TEST_F(S3Faults, GetRangesRecoverFromFaults) {
  auto data = seed("o", 1 << 20, 11);
  inject_faults(obj_path("o"), {Fault::cut("reset_mid_body", 100),
                                Fault::http_status(503, "SlowDown"), Fault::cut("short_body", 10)});
  auto c = client(proxied());
  GetRangesRequest req({ByteRange::bounded(0, 1000), ByteRange::bounded(600000, 5000),
                        ByteRange::from((1 << 20) - 10)});
  auto [ec, r] = call([&](auto tok) { return c.async_get_ranges(bucket, key("o"), req, tok); });
  ASSERT_FALSE(ec) << ec.message() << ": " << r.diagnostics;
  ASSERT_EQ(r.bodies.size(), 3u);
  EXPECT_TRUE(r.bodies[0] == data.substr(0, 1000));
  EXPECT_TRUE(r.bodies[1] == data.substr(600000, 5000));
  EXPECT_TRUE(r.bodies[2] == data.substr((1 << 20) - 10));
  EXPECT_EQ(pending_faults(obj_path("o")), 0u);
}

// After resets and stalls the client's pool still serves requests on healthy connections.
TEST_F(S3Faults, PoolStaysHealthyAfterFaults) {
  auto data = seed("o", 4096);
  auto c = client(proxied(5, /*first_byte=*/kStallTimeout));
  inject_faults(obj_path("o"), {Fault::of("reset_before_response"), Fault::cut("short_body", 10),
                                Fault::stall(3000), Fault::cut("reset_mid_body", 100)});
  for (int i = 0; i < 4; ++i) {
    auto [ec, r] = call([&](auto tok) { return c.async_get_object(bucket, key("o"), tok); });
    ASSERT_FALSE(ec) << r.diagnostics;
    EXPECT_TRUE(r.body == data);
  }
  EXPECT_EQ(pending_faults(obj_path("o")), 0u);
  unsigned attempts = 0;
  for (int i = 0; i < 10; ++i) {
    auto [ec, r] = call([&](auto tok) { return c.async_get_object(bucket, key("o"), tok); });
    ASSERT_FALSE(ec) << r.diagnostics;
    EXPECT_TRUE(r.body == data);
    attempts += r.attempts;
  }
  EXPECT_EQ(attempts, 10u);
  EXPECT_EQ(request_stats(obj_path("o"), "proxy").requests, 18u);
}

}  // namespace
