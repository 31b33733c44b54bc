// Retry decisions and backoff bounds of the S3 client.
#include <gtest/gtest.h>

#include "s3/retry.hpp"

namespace s3 = shardy::s3;
using shardy::errc;

TEST(S3Retry, StatusClassification) {
  EXPECT_EQ(s3::classify_status(404, "NoSuchKey"), errc::object_not_found);
  EXPECT_EQ(s3::classify_status(404, ""), errc::object_not_found);  // HEAD has no body
  EXPECT_EQ(s3::classify_status(412, "PreconditionFailed"), errc::precondition_failed);
  EXPECT_EQ(s3::classify_status(409, "ConditionalRequestConflict"), errc::precondition_failed);
  EXPECT_EQ(s3::classify_status(416, "InvalidRange"), errc::invalid_range);
  EXPECT_EQ(s3::classify_status(403, "SignatureDoesNotMatch"), errc::signature_mismatch);
  EXPECT_EQ(s3::classify_status(403, "AccessDenied"), errc::access_denied);
  EXPECT_EQ(s3::classify_status(403, ""), errc::access_denied);
  EXPECT_EQ(s3::classify_status(429, ""), errc::throttled);
  EXPECT_EQ(s3::classify_status(503, "SlowDown"), errc::throttled);
  EXPECT_EQ(s3::classify_status(503, "ServiceUnavailable"), errc::server_error);
  EXPECT_EQ(s3::classify_status(500, "InternalError"), errc::server_error);
  EXPECT_EQ(s3::classify_status(502, ""), errc::server_error);
  EXPECT_EQ(s3::classify_status(400, "RequestTimeout"), errc::timeout);
  EXPECT_EQ(s3::classify_status(400, "InvalidArgument"), errc::s3_error);
  EXPECT_EQ(s3::classify_status(409, "BucketAlreadyExists"), errc::s3_error);
}

TEST(S3Retry, WhatIsRetried) {
  for (auto e : {errc::throttled, errc::server_error, errc::timeout, errc::connection_failed,
                 errc::truncated_body}) {
    EXPECT_TRUE(s3::retryable(e)) << static_cast<int>(e);
    EXPECT_TRUE(shardy::is_retryable(make_error_code(e)));
  }
  for (auto e : {errc::object_not_found, errc::precondition_failed, errc::invalid_range,
                 errc::access_denied, errc::signature_mismatch, errc::s3_error,
                 errc::protocol_error, errc::tls_error, errc::credentials_error, errc::cancelled,
                 errc::io_error, errc::disk_full, errc::invalid_argument}) {
    EXPECT_FALSE(s3::retryable(e)) << static_cast<int>(e);
  }
}

TEST(S3Retry, BackoffCapsGrowAndAreBounded) {
  shardy::RetryPolicy p;
  p.base_delay = std::chrono::milliseconds(100);
  p.max_delay = std::chrono::milliseconds(1000);
  EXPECT_EQ(s3::backoff_cap(p, 1).count(), 100);
  EXPECT_EQ(s3::backoff_cap(p, 2).count(), 200);
  EXPECT_EQ(s3::backoff_cap(p, 3).count(), 400);
  EXPECT_EQ(s3::backoff_cap(p, 4).count(), 800);
  EXPECT_EQ(s3::backoff_cap(p, 5).count(), 1000);
  EXPECT_EQ(s3::backoff_cap(p, 1000).count(), 1000);  // no overflow
  p.base_delay = std::chrono::milliseconds(0);
  EXPECT_EQ(s3::backoff_cap(p, 3).count(), 0);
}

TEST(S3Retry, FullJitterStaysWithinCapAndSpreads) {
  shardy::RetryPolicy p;
  p.base_delay = std::chrono::milliseconds(50);
  p.max_delay = std::chrono::milliseconds(400);
  std::mt19937 rng(1);
  for (unsigned n = 1; n <= 8; ++n) {
    auto cap = s3::backoff_cap(p, n).count();
    std::int64_t lo = cap, hi = 0;
    for (int i = 0; i < 2000; ++i) {
      auto d = s3::backoff_delay(p, n, rng).count();
      ASSERT_GE(d, 0);
      ASSERT_LE(d, cap);
      lo = std::min(lo, d);
      hi = std::max(hi, d);
    }
    // Full jitter: the whole interval is used, not just the top.
    EXPECT_LE(lo, cap / 10) << n;
    EXPECT_GE(hi, cap * 9 / 10) << n;
  }
}

TEST(S3Retry, AttemptsAndBudget) {
  shardy::RetryPolicy p;
  p.max_attempts = 3;
  p.total_budget = std::chrono::milliseconds(1000);
  using std::chrono::milliseconds;
  EXPECT_TRUE(s3::may_retry(p, 1, milliseconds(0), milliseconds(10)));
  EXPECT_TRUE(s3::may_retry(p, 2, milliseconds(0), milliseconds(10)));
  EXPECT_FALSE(s3::may_retry(p, 3, milliseconds(0), milliseconds(10)));    // attempt limit
  EXPECT_FALSE(s3::may_retry(p, 1, milliseconds(995), milliseconds(10)));  // budget
  EXPECT_TRUE(s3::may_retry(p, 1, milliseconds(985), milliseconds(10)));
  p.max_attempts = 1;
  EXPECT_FALSE(s3::may_retry(p, 1, milliseconds(0), milliseconds(0)));
}
