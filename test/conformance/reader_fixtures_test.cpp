// Conformance: every shardyfusion snapshot in ../shared/fixtures, read through the mapped local
// root (bucket shardy-fixtures -> the fixtures folder) with Reader and with AsyncReader, in each
// access tier (download, range, and auto with a threshold that picks range; issue 5 bar "both
// tiers give the same answers"), reproduces expected.jsonl (values, absent keys, error or not,
// route_key), reader_info.json (snapshot_info, shard_details, the manifest actually loaded:
// kv_history_fallback falls back from the corrupt v4 to v3, H-09) and the cache behaviour
// (download: a second open downloads nothing, M-03; range: nothing is ever downloaded).
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

#include "support/test_support.hpp"

namespace shardy {
namespace {

namespace asio = boost::asio;
namespace json = boost::json;
namespace fs = std::filesystem;

struct Case {
  std::optional<Key> key;  // nullopt: the key itself cannot be built (integer beyond u64)
  std::optional<std::uint32_t> shard_id;
  std::optional<std::string> value;  // expected value
  bool get_error = false;
  std::string line;
};

std::vector<Case> load_cases(const std::string& name) {
  std::vector<Case> out;
  for (auto& line : test::read_lines(test::fixtures_dir() / "expected" / name / "expected.jsonl")) {
    auto o = json::parse(line).as_object();
    Case c;
    c.line = line;
    const std::string type(o.at("key_type").as_string());
    if (type == "int") {
      error_code ec;
      auto k = Key::parse_integer(std::string(o.at("key_dec").as_string()), ec);
      if (!ec) c.key = k;
    } else if (type == "str") {
      c.key = Key::text(test::from_hex(std::string(o.at("key_utf8_hex").as_string())));
    } else {
      c.key = Key::bytes(test::from_hex(std::string(o.at("key_hex").as_string())));
    }
    if (!o.at("shard_id").is_null())
      c.shard_id = static_cast<std::uint32_t>(o.at("shard_id").to_number<std::int64_t>());
    if (!o.at("value_hex").is_null())
      c.value = test::from_hex(std::string(o.at("value_hex").as_string()));
    c.get_error = o.contains("get_error");
    out.push_back(std::move(c));
  }
  return out;
}

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

std::size_t cached_shard_files(const fs::path& cache) {
  std::size_t n = 0;
  if (!fs::exists(cache)) return 0;
  for (auto& e : fs::directory_iterator(cache)) n += fs::exists(e.path() / "shard.db");
  return n;
}

std::vector<std::string> snapshot_names() {
  std::vector<std::string> names;
  for (auto& e : fs::directory_iterator(test::fixtures_dir() / "expected"))
    names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

json::object reader_info(const std::string& name) {
  return json::parse(test::read_file(test::fixtures_dir() / "expected" / name / "reader_info.json"))
      .as_object();
}

std::optional<Key> json_key(const json::value& v) {
  if (v.is_null()) return std::nullopt;
  if (v.is_string()) return Key::text(std::string(v.as_string()));
  if (v.is_uint64()) return Key::unsigned_integer(v.as_uint64());
  return Key::integer(v.to_number<std::int64_t>());
}

class ReaderFixtures : public ::testing::TestWithParam<std::tuple<std::string, Tier>> {};

TEST_P(ReaderFixtures, SyncReaderReproducesExpectedAndReaderInfo) {
  const auto name = std::get<0>(GetParam());
  const Tier tier = std::get<1>(GetParam());
  auto info = reader_info(name);
  auto cache = test::make_temp_dir("conf-" + name + "-" + tier.name);
  Reader reader(std::string(info.at("s3_prefix").as_string()), fixture_options(cache, tier));
  EXPECT_EQ(reader.snapshot_info().access_mode, tier.expected);
  std::size_t checked = 0;
  for (auto& c : load_cases(name)) {
    if (!c.key) {
      EXPECT_TRUE(c.get_error) << c.line;
      continue;
    }
    if (c.shard_id) {
      EXPECT_EQ(reader.route_key(*c.key), *c.shard_id) << c.line;
    } else {
      EXPECT_THROW(reader.route_key(*c.key), error) << c.line;
    }
    error_code ec;
    auto v = reader.get(*c.key, ec);
    if (c.get_error) {
      EXPECT_TRUE(ec) << c.line;
    } else {
      EXPECT_FALSE(ec) << ec.message() << " " << c.line;
      EXPECT_EQ(v, c.value) << c.line;
    }
    ++checked;
  }
  EXPECT_GT(checked, 100u);

  // reader_info.json (G-01, G-02)
  auto si = reader.snapshot_info();
  const auto& esi = info.at("snapshot_info").as_object();
  EXPECT_EQ(si.run_id, esi.at("run_id").as_string());
  EXPECT_EQ(si.num_dbs, esi.at("num_dbs").to_number<std::uint32_t>());
  EXPECT_EQ(si.manifest_ref, esi.at("manifest_ref").as_string());
  EXPECT_EQ(si.manifest_ref, info.at("loaded_manifest_ref").as_string());
  EXPECT_EQ(si.current_ref, info.at("current_pointer").as_object().at("ref").as_string());
  EXPECT_EQ(si.row_count, esi.at("row_count").to_number<std::int64_t>());
  EXPECT_EQ(to_string(si.key_encoding), esi.at("key_encoding").as_string());
  EXPECT_EQ(si.hash_algorithm, esi.at("hash_algorithm").as_string());
  EXPECT_EQ(si.sharding, ShardingStrategy::hash);
  EXPECT_EQ(si.created_at, parse_timestamp(std::string(esi.at("created_at").as_string())));
  auto details = reader.shard_details();
  const auto& eds = info.at("shard_details").as_array();
  ASSERT_EQ(details.size(), eds.size());
  for (std::size_t i = 0; i < details.size(); ++i) {
    const auto& e = eds[i].as_object();
    EXPECT_EQ(details[i].db_id, e.at("db_id").to_number<std::uint32_t>());
    EXPECT_EQ(details[i].row_count, e.at("row_count").to_number<std::int64_t>());
    EXPECT_EQ(details[i].min_key, json_key(e.at("min_key"))) << i;
    EXPECT_EQ(details[i].max_key, json_key(e.at("max_key"))) << i;
    if (e.at("db_url").is_null())
      EXPECT_FALSE(details[i].db_url) << i;
    else
      EXPECT_EQ(details[i].db_url, std::optional<std::string>(e.at("db_url").as_string())) << i;
  }
  EXPECT_EQ(reader.health().status, HealthStatus::healthy);
  if (tier.expected == AccessMode::range) {
    EXPECT_EQ(cached_shard_files(cache), 0u);
  } else {
    EXPECT_GT(cached_shard_files(cache), 0u);
  }
}

TEST_P(ReaderFixtures, AsyncReaderReproducesExpectedAndCacheIsReused) {
  const auto name = std::get<0>(GetParam());
  const Tier tier = std::get<1>(GetParam());
  auto info = reader_info(name);
  const std::string prefix(info.at("s3_prefix").as_string());
  auto cache = test::make_temp_dir("conf-async-" + name + "-" + tier.name);
  auto cases = load_cases(name);
  asio::thread_pool pool(2);
  for (int round = 0; round < 2; ++round) {
    auto o = fixture_options(cache, tier);
    auto prom = std::make_shared<PrometheusCollector>();
    o.metrics = prom;
    auto body = [&]() -> asio::awaitable<int> {
      auto reader = co_await AsyncReader::async_open(pool.get_executor(), prefix, o);
      int mismatches = 0;
      if (reader.snapshot_info().access_mode != tier.expected) {
        ++mismatches;
        ADD_FAILURE() << "access mode " << to_string(reader.snapshot_info().access_mode);
      }
      for (auto& c : cases) {
        if (!c.key) continue;
        auto r = co_await reader.async_get(*c.key, asio::as_tuple(asio::use_awaitable));
        const error_code ec = std::get<0>(r);
        const bool ok = c.get_error ? bool(ec) : (!ec && std::get<1>(r) == c.value);
        if (!ok) {
          ++mismatches;
          ADD_FAILURE() << c.line << " -> " << ec.message();
        }
      }
      // multi_get of every key whose get succeeds, in one call, same answers (D-05).
      std::vector<Key> keys;
      std::vector<std::optional<std::string>> want;
      for (auto& c : cases)
        if (c.key && !c.get_error) {
          keys.push_back(*c.key);
          want.push_back(c.value);
        }
      auto got = co_await reader.async_multi_get(keys);
      if (got != want) ++mismatches;
      reader.close();
      co_return mismatches;
    };
    EXPECT_EQ(asio::co_spawn(pool, body(), asio::use_future).get(), 0);
    auto text = prom->render();
    if (tier.expected == AccessMode::range) {
      // Read in place: nothing downloaded, nothing in the cache, in either round.
      EXPECT_NE(text.find("shardy_shard_downloads_total 0\n"), std::string::npos) << text;
      EXPECT_EQ(cached_shard_files(cache), 0u);
    } else if (round == 1) {
      // Second open on the same cache: nothing downloaded (M-03).
      EXPECT_NE(text.find("shardy_shard_downloads_total 0\n"), std::string::npos) << text;
      EXPECT_EQ(text.find("shardy_shard_cache_hits_total 0\n"), std::string::npos) << text;
    } else {
      EXPECT_EQ(text.find("shardy_shard_downloads_total 0\n"), std::string::npos) << text;
    }
  }
  pool.join();
}

INSTANTIATE_TEST_SUITE_P(Snapshots, ReaderFixtures,
                         ::testing::Combine(::testing::ValuesIn(snapshot_names()),
                                            ::testing::ValuesIn(kTiers)),
                         [](const auto& info) {
                           return std::get<0>(info.param) + "_" + std::get<1>(info.param).name;
                         });

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
