// Conformance over real S3: every shardyfusion snapshot in ../shared/fixtures, uploaded to the
// test server's bucket shardy-fixtures by the fixture step s3server_upload_fixtures (same keys,
// so the absolute s3:// URLs in the manifests resolve), read with Reader and with AsyncReader
// through S3 (path-style, SigV4 checked by the server): expected.jsonl (values, absent keys,
// error or not, route_key), reader_info.json (snapshot_info, shard_details), the history listed
// with ListObjectsV2 (H-08), the kv_history_fallback cold-start fallback (H-09, H-10), A-10, and
// the download cache (M-03), in both access tiers (download, and range: in-place range GETs).
// Same checks as the mapped-root test (test/support/reader_conformance.cpp); here the requests
// really go through the S3 client.
#include <gtest/gtest.h>

#include <shardy/credentials.hpp>
#include <shardy/reader.hpp>

#include "s3_test_env.hpp"
#include "support/reader_conformance.hpp"
#include "support/test_support.hpp"

namespace shardy {
namespace {

ReaderOptions s3_options(const std::string& tag) {
  const auto& info = test::s3server();
  ReaderOptions o;
  o.s3.endpoint = info.endpoint;
  o.s3.region = info.region;
  o.s3.addressing = S3Options::Addressing::path;
  o.s3.credentials = make_static_credentials({info.access_key, info.secret_key, "", std::nullopt});
  o.s3.connect_timeout = std::chrono::milliseconds(5000);
  o.s3.first_byte_timeout = std::chrono::milliseconds(20000);
  o.local_root = test::make_temp_dir(tag);
  return o;
}

class ReaderS3Fixtures : public ::testing::TestWithParam<std::string> {};

// Both access tiers over the same server (issue 5: "both tiers give the same answers"): download
// streams shard.db into the cache; range reads it in place with If-Match range GETs (and the
// sidecar when its ETag binding holds for the server's ETags).
class ReaderS3FixtureTiers : public ::testing::TestWithParam<std::tuple<std::string, AccessMode>> {
 protected:
  ReaderOptions options(const std::string& tag) const {
    const auto& [name, tier] = GetParam();
    auto o = s3_options(tag + name + "-" + std::string(to_string(tier)));
    o.access_mode = tier;
    return o;
  }
};

TEST_P(ReaderS3FixtureTiers, SyncReaderReproducesExpectedAndReaderInfo) {
  const auto& [name, tier] = GetParam();
  const auto before = test::request_stats("/shardy-fixtures/snapshots/" + name + "/");
  test::check_sync_reader(name, options("s3conf-"), tier);
  // The answers really came through the server (pointer, manifest, shard reads).
  const auto after = test::request_stats("/shardy-fixtures/snapshots/" + name + "/");
  EXPECT_GE(after.requests, before.requests + 3);
}

TEST_P(ReaderS3FixtureTiers, AsyncReaderReproducesExpectedAndCacheIsReused) {
  const auto& [name, tier] = GetParam();
  test::check_async_reader(name, options("s3conf-async-"), tier);
}

INSTANTIATE_TEST_SUITE_P(Snapshots, ReaderS3FixtureTiers,
                         ::testing::Combine(::testing::ValuesIn(test::fixture_snapshot_names()),
                                            ::testing::Values(AccessMode::download,
                                                              AccessMode::range)),
                         [](const auto& info) {
                           return std::get<0>(info.param) + "_" +
                                  std::string(to_string(std::get<1>(info.param)));
                         });

TEST_P(ReaderS3Fixtures, HistoryAndFallbackBudget_H08_A10) {
  test::check_history_and_fallback(GetParam(), s3_options("s3conf-hist-" + GetParam()));
}

TEST(ReaderS3, WrongSecretFailsToOpenWithSignatureMismatch) {
  auto o = s3_options("s3conf-badkey");
  const auto& info = test::s3server();
  o.s3.credentials = make_static_credentials({info.access_key, "not-the-secret", "", std::nullopt});
  o.s3.retry.max_attempts = 1;
  try {
    Reader reader(test::fixture_prefix("kv_small"), o);
    FAIL() << "opened with a wrong secret";
  } catch (const error& e) {
    EXPECT_EQ(e.code(), make_error_code(errc::signature_mismatch)) << e.what();
  }
}

INSTANTIATE_TEST_SUITE_P(Snapshots, ReaderS3Fixtures,
                         ::testing::ValuesIn(test::fixture_snapshot_names()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace shardy
