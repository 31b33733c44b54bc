// Conformance: every shardyfusion snapshot in ../shared/fixtures, read through the mapped local
// root (bucket shardy-fixtures -> the fixtures folder) with Reader and with AsyncReader, in each
// access tier (download, range, and auto with a threshold that picks range; issue 5 bar "both
// tiers give the same answers"), reproduces expected.jsonl (values, absent keys, error or not,
// route_key), reader_info.json (snapshot_info, shard_details, the manifest actually loaded:
// kv_history_fallback falls back from the corrupt v4 to v3, H-09), the cache behaviour
// (download: a second open downloads nothing, M-03; range: nothing is ever downloaded), the
// manifest history (H-08) and the fallback budget (A-10). The checks are the ones the s3rver
// conformance test runs (test/support/reader_conformance.cpp); the malformed-pointer test (H-03)
// below is specific to this file.
#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/json.hpp>
#include <fstream>
#include <future>
#include <shardy/async_reader.hpp>
#include <shardy/metrics.hpp>
#include <shardy/reader.hpp>

#include "support/reader_conformance.hpp"
#include "support/test_support.hpp"

namespace shardy {
namespace {

namespace asio = boost::asio;
namespace json = boost::json;
namespace fs = std::filesystem;

// How a test reads the fixture: the tier requested, and the tier the snapshot must end up in.
struct Tier {
  const char* name;
  AccessMode requested;
  std::uint64_t range_shard_bytes;  // auto threshold
  AccessMode expected;
};
constexpr Tier kTiers[] = {
    {"download", AccessMode::download, 16ull << 20, AccessMode::download},
    {"range", AccessMode::range, 16ull << 20, AccessMode::range},
    // Every non-empty fixture shard is >= 1 byte: auto must pick range.
    {"auto_range", AccessMode::automatic, 1, AccessMode::range},
    // Fixture shards are KiB-sized: auto with the default thresholds picks download.
    {"auto_default", AccessMode::automatic, 16ull << 20, AccessMode::download},
};

ReaderOptions fixture_options(const fs::path& cache, const Tier& tier) {
  ReaderOptions o;
  o.bucket_dirs["shardy-fixtures"] = test::fixtures_dir();
  o.local_root = cache;
  o.access_mode = tier.requested;
  o.range_shard_bytes = tier.range_shard_bytes;
  o.range.page_cache_pages = 64;  // small enough that lookups evict
  return o;
}

// The checks themselves are shared with the s3rver conformance test
// (test/support/reader_conformance.cpp); here the objects come from the mapped local root.
class ReaderFixtures : public ::testing::TestWithParam<std::tuple<std::string, Tier>> {};

TEST_P(ReaderFixtures, SyncReaderReproducesExpectedAndReaderInfo) {
  const auto& [name, tier] = GetParam();
  test::check_sync_reader(
      name, fixture_options(test::make_temp_dir("conf-" + name + "-" + tier.name), tier),
      tier.expected);
}

TEST_P(ReaderFixtures, AsyncReaderReproducesExpectedAndCacheIsReused) {
  const auto& [name, tier] = GetParam();
  test::check_async_reader(
      name, fixture_options(test::make_temp_dir("conf-async-" + name + "-" + tier.name), tier),
      tier.expected);
}

INSTANTIATE_TEST_SUITE_P(Snapshots, ReaderFixtures,
                         ::testing::Combine(::testing::ValuesIn(test::fixture_snapshot_names()),
                                            ::testing::ValuesIn(kTiers)),
                         [](const auto& info) {
                           return std::get<0>(info.param) + "_" + std::get<1>(info.param).name;
                         });

// History (H-08) and the fallback budget (A-10) through the mapped root; the tier does not matter.
class ReaderFixtureHistory : public ::testing::TestWithParam<std::string> {};

TEST_P(ReaderFixtureHistory, HistoryAndFallbackBudget_H08_A10) {
  test::check_history_and_fallback(
      GetParam(), fixture_options(test::make_temp_dir("conf-hist-" + GetParam()), kTiers[0]));
}

INSTANTIATE_TEST_SUITE_P(Snapshots, ReaderFixtureHistory,
                         ::testing::ValuesIn(test::fixture_snapshot_names()),
                         [](const auto& info) { return info.param; });

// H-03: a malformed _CURRENT (not JSON, or JSON that breaks the pointer schema) is
// errc::manifest_parse_error at open, with no fallback to the older manifests that are right
// there (fallback covers a malformed manifest, H-09, not the pointer), and from refresh, where it
// is reported, not swallowed, while the open reader keeps serving its snapshot. A copy of the
// kv_history_fallback fixture (four manifests; the newest is corrupt, so a good open falls back
// once) under a temp mapped root, so _CURRENT can be broken.
TEST(ReaderPointer, MalformedPointerIsAParseErrorAtOpenAndRefresh_H03) {
  const fs::path root = test::make_temp_dir("reader-h03");
  const fs::path snap = root / "shardy-fixtures" / "snapshots" / "kv_history_fallback";
  fs::create_directories(snap.parent_path());
  fs::copy(test::fixtures_dir() / "snapshots" / "kv_history_fallback", snap,
           fs::copy_options::recursive);
  const std::string good = test::read_file(snap / "_CURRENT");
  auto write_pointer = [&](const std::string& body) {
    std::ofstream(snap / "_CURRENT", std::ios::binary | std::ios::trunc) << body;
  };
  ReaderOptions o;
  o.object_root = root;
  o.local_root = root / "cache";
  o.max_fallback_attempts = 3;
  struct FallbackCount final : MetricsSink {
    std::atomic<int> n{0};
    void on_fallback(std::string_view, std::string_view) override { ++n; }
  };
  auto fallbacks = std::make_shared<FallbackCount>();
  o.metrics = fallbacks;
  const std::string prefix = "s3://shardy-fixtures/snapshots/kv_history_fallback";

  const std::string bad[] = {"not json", "{}", R"({"format_version":1})",
                             R"({"format_version":1,"manifest_ref":42})"};
  for (const auto& body : bad) {
    SCOPED_TRACE(body);
    write_pointer(body);
    try {
      Reader r(prefix, o);
      ADD_FAILURE() << "opened with a malformed _CURRENT";
    } catch (const error& e) {
      EXPECT_EQ(e.code(), make_error_code(errc::manifest_parse_error)) << e.what();
    }
    std::promise<error_code> opened;
    asio::thread_pool pool(1);
    AsyncReader::async_open(pool.get_executor(), prefix, o,
                            [&](error_code ec, AsyncReader) { opened.set_value(ec); });
    EXPECT_EQ(opened.get_future().get(), make_error_code(errc::manifest_parse_error));
    pool.join();
  }
  EXPECT_EQ(fallbacks->n.load(), 0);

  write_pointer(good);
  Reader reader(prefix, o);
  EXPECT_EQ(fallbacks->n.load(), 1);  // the corrupt newest manifest (H-09), as in the fixture
  const auto lines = test::read_lines(test::fixtures_dir() / "expected" / "kv_history_fallback" /
                                      "expected.jsonl");
  ASSERT_FALSE(lines.empty());
  json::object first;
  for (const auto& l : lines) {
    first = json::parse(l).as_object();
    if (first.at("kind") == "written" && first.at("value_hex").is_string()) break;
  }
  ASSERT_TRUE(first.at("value_hex").is_string());
  const Key k = Key::integer(first.at("key").as_int64());
  const auto want = test::from_hex(first.at("value_hex").as_string());
  ASSERT_EQ(reader.get(k), std::optional<Value>(want));
  for (const auto& body : bad) {
    SCOPED_TRACE(body);
    write_pointer(body);
    error_code ec;
    EXPECT_FALSE(reader.refresh(ec));
    EXPECT_EQ(ec, make_error_code(errc::manifest_parse_error));
    EXPECT_THROW(reader.refresh(), error);
    EXPECT_EQ(reader.get(k), std::optional<Value>(want));  // still serving
  }
  EXPECT_EQ(fallbacks->n.load(), 1);
  write_pointer(good);
  EXPECT_FALSE(reader.refresh());  // unchanged pointer
  fs::remove_all(root);
}

}  // namespace
}  // namespace shardy
