// Steps that the path-style tests (S3Ops) and the virtual-host tests (S3VirtualHost) both take.
#pragma once

#include <gtest/gtest.h>

#include <cstddef>
#include <optional>
#include <shardy/credentials.hpp>
#include <shardy/s3_client.hpp>
#include <string>
#include <tuple>

#include "s3_test_env.hpp"

namespace shardy::test {

/// Lists `prefix` in two requests: `first` is the first page (at most `max_keys` keys; 0: the
/// server's page size), which must say that more follow; `rest` is everything after it, resumed
/// from that page's continuation token. Fails the test on an error (use ASSERT_NO_FATAL_FAILURE).
inline void list_first_page_then_rest(S3Client& c, const std::string& bucket,
                                      const std::string& prefix, std::size_t max_keys,
                                      ListObjectsResult& first, ListObjectsResult& rest) {
  ListObjectsRequest one_page(prefix);
  one_page.max_keys = max_keys;
  one_page.all_pages = false;
  auto [ec1, p1] = c.async_list_objects_v2(bucket, one_page, use_future_tuple).get();
  ASSERT_FALSE(ec1) << p1.diagnostics;
  ASSERT_FALSE(p1.next_continuation_token.empty());
  ListObjectsRequest resumed(prefix);
  resumed.continuation_token = p1.next_continuation_token;
  auto [ec2, p2] = c.async_list_objects_v2(bucket, resumed, use_future_tuple).get();
  ASSERT_FALSE(ec2) << p2.diagnostics;
  first = std::move(p1);
  rest = std::move(p2);
}

/// `o` with the fixture's access key and a wrong secret.
inline S3Options with_wrong_secret(S3Options o, const S3ServerInfo& info) {
  o.credentials = make_static_credentials({info.access_key, "not-the-secret", "", std::nullopt});
  return o;
}

/// A GET by a client whose secret is wrong: checks that the server refused it as
/// SignatureDoesNotMatch (403, errc::signature_mismatch) and returns the outcome.
inline std::tuple<error_code, GetObjectResult> get_with_bad_signature(S3Client& c,
                                                                      const std::string& bucket,
                                                                      const std::string& key) {
  auto [ec, g] = c.async_get_object(bucket, key, use_future_tuple).get();
  EXPECT_EQ(ec, errc::signature_mismatch) << ec.message() << ": " << g.diagnostics;
  EXPECT_EQ(g.status, 403u);
  EXPECT_NE(g.diagnostics.find("SignatureDoesNotMatch"), std::string::npos) << g.diagnostics;
  return {ec, std::move(g)};
}

}  // namespace shardy::test
