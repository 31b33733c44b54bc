#include "support/reader_conformance.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/json.hpp>
#include <filesystem>
#include <shardy/async_reader.hpp>
#include <shardy/manifest_store.hpp>
#include <shardy/metrics.hpp>
#include <shardy/reader.hpp>

#include "reader/reader_core.hpp"
#include "support/test_support.hpp"

namespace shardy::test {

namespace asio = boost::asio;
namespace json = boost::json;
namespace fs = std::filesystem;

namespace {

std::optional<Key> json_key(const json::value& v) {
  if (v.is_null()) return std::nullopt;
  if (v.is_string()) return Key::text(std::string(v.as_string()));
  if (v.is_uint64()) return Key::unsigned_integer(v.as_uint64());
  return Key::integer(v.to_number<std::int64_t>());
}

Timestamp json_ts(const json::value& v) {
  auto t = parse_timestamp(v.as_string());
  EXPECT_TRUE(t) << v;
  return t.value_or(Timestamp{});
}

bool falls_back(const json::object& info) {
  return info.at("loaded_manifest_ref") != info.at("current_pointer").as_object().at("ref");
}

void check_snapshot_info(const SnapshotInfo& si, const json::object& info) {
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
  EXPECT_EQ(si.created_at, json_ts(esi.at("created_at")));
}

void check_shard_details(const std::vector<ShardDetail>& details, const json::object& info) {
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
}

// One value of a counter in the Prometheus text ("name value\n"), or -1 if absent.
long long counter(const std::string& text, const std::string& name) {
  auto pos = text.find("\n" + name + " ");
  if (pos == std::string::npos) return -1;
  return std::stoll(text.substr(pos + name.size() + 2));
}

// Shard files the download tier left in a cache root (one folder per cached shard).
std::size_t cached_shard_files(const fs::path& cache) {
  std::size_t n = 0;
  if (cache.empty() || !fs::exists(cache)) return 0;
  for (auto& e : fs::directory_iterator(cache)) n += fs::exists(e.path() / "shard.db");
  return n;
}

}  // namespace

std::vector<std::string> fixture_snapshot_names() {
  std::vector<std::string> names;
  for (auto& e : fs::directory_iterator(fixtures_dir() / "expected"))
    names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

std::vector<ExpectedCase> load_expected_cases(const std::string& name) {
  std::vector<ExpectedCase> out;
  for (auto& line : read_lines(fixtures_dir() / "expected" / name / "expected.jsonl")) {
    auto o = json::parse(line).as_object();
    ExpectedCase c;
    c.line = line;
    const std::string type(o.at("key_type").as_string());
    if (type == "int") {
      error_code ec;
      auto k = Key::parse_integer(std::string(o.at("key_dec").as_string()), ec);
      if (!ec) c.key = k;
    } else if (type == "str") {
      c.key = Key::text(from_hex(std::string(o.at("key_utf8_hex").as_string())));
    } else {
      c.key = Key::bytes(from_hex(std::string(o.at("key_hex").as_string())));
    }
    if (!o.at("shard_id").is_null())
      c.shard_id = static_cast<std::uint32_t>(o.at("shard_id").to_number<std::int64_t>());
    if (!o.at("value_hex").is_null())
      c.value = from_hex(std::string(o.at("value_hex").as_string()));
    c.get_error = o.contains("get_error");
    out.push_back(std::move(c));
  }
  return out;
}

json::object load_reader_info(const std::string& name) {
  return json::parse(read_file(fixtures_dir() / "expected" / name / "reader_info.json"))
      .as_object();
}

std::string fixture_prefix(const std::string& name) {
  return std::string(load_reader_info(name).at("s3_prefix").as_string());
}

void check_sync_reader(const std::string& name, ReaderOptions options, AccessMode tier) {
  SCOPED_TRACE("snapshot " + name + ", tier " + std::string(to_string(tier)));
  auto info = load_reader_info(name);
  auto prom = std::make_shared<PrometheusCollector>();
  options.metrics = prom;
  Reader reader(std::string(info.at("s3_prefix").as_string()), options);
  EXPECT_EQ(reader.snapshot_info().access_mode, tier);
  std::size_t checked = 0;
  for (auto& c : load_expected_cases(name)) {
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
  check_snapshot_info(reader.snapshot_info(), info);
  check_shard_details(reader.shard_details(), info);
  EXPECT_EQ(reader.health().status, HealthStatus::healthy);
  // H-09: exactly the snapshot whose current manifest is corrupt took the fallback.
  const auto text = prom->render();
  EXPECT_EQ(counter(text, "shardy_reader_fallbacks_total"), falls_back(info) ? 1 : 0) << text;
  if (tier == AccessMode::range) {
    EXPECT_EQ(counter(text, "shardy_shard_downloads_total"), 0) << text;
    EXPECT_EQ(cached_shard_files(options.local_root), 0u);
  } else {
    EXPECT_GT(cached_shard_files(options.local_root), 0u);
  }
}

void check_async_reader(const std::string& name, ReaderOptions options, AccessMode tier) {
  SCOPED_TRACE("snapshot " + name + ", tier " + std::string(to_string(tier)));
  auto info = load_reader_info(name);
  const std::string prefix(info.at("s3_prefix").as_string());
  auto cases = load_expected_cases(name);
  asio::thread_pool pool(2);
  for (int round = 0; round < 2; ++round) {
    auto o = options;
    auto prom = std::make_shared<PrometheusCollector>();
    o.metrics = prom;
    std::optional<SnapshotInfo> si;
    auto body = [&]() -> asio::awaitable<int> {
      auto reader = co_await AsyncReader::async_open(pool.get_executor(), prefix, o);
      int mismatches = 0;
      if (reader.snapshot_info().access_mode != tier) {
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
      std::vector<std::optional<Value>> want;
      for (auto& c : cases)
        if (c.key && !c.get_error) {
          keys.push_back(*c.key);
          want.push_back(c.value);
        }
      auto got = co_await reader.async_multi_get(keys);
      if (got != want) {
        ++mismatches;
        ADD_FAILURE() << "multi_get of " << keys.size() << " keys differs";
      }
      si = reader.snapshot_info();
      reader.close();
      co_return mismatches;
    };
    EXPECT_EQ(asio::co_spawn(pool, body(), asio::use_future).get(), 0);
    ASSERT_TRUE(si);
    check_snapshot_info(*si, info);
    auto text = prom->render();
    if (tier == AccessMode::range) {
      // Read in place: nothing downloaded, nothing in the cache, in either round.
      EXPECT_EQ(counter(text, "shardy_shard_downloads_total"), 0) << text;
      EXPECT_EQ(cached_shard_files(options.local_root), 0u);
    } else if (round == 1) {
      // Second open on the same cache: nothing downloaded (M-03).
      EXPECT_EQ(counter(text, "shardy_shard_downloads_total"), 0) << text;
      EXPECT_GT(counter(text, "shardy_shard_cache_hits_total"), 0) << text;
    } else {
      EXPECT_GT(counter(text, "shardy_shard_downloads_total"), 0) << text;
    }
  }
  pool.join();
}

void check_history_and_fallback(const std::string& name, ReaderOptions options) {
  SCOPED_TRACE("snapshot " + name);
  auto info = load_reader_info(name);
  const std::string prefix(info.at("s3_prefix").as_string());
  {
    asio::io_context io;
    auto objects = options.object_store
                       ? options.object_store
                       : detail::default_object_store(io.get_executor(), options, prefix);
    auto store = make_object_manifest_store(objects, prefix);
    auto f = asio::co_spawn(io, store->list_manifests(1000), asio::use_future);
    io.run();
    auto history = f.get();
    const auto& want = info.at("list_manifests").as_array();
    ASSERT_EQ(history.size(), want.size());
    for (std::size_t i = 0; i < history.size(); ++i) {
      const auto& w = want[i].as_object();
      EXPECT_EQ(history[i].ref, w.at("ref").as_string()) << i;
      EXPECT_EQ(history[i].run_id, w.at("run_id").as_string()) << i;
      EXPECT_EQ(history[i].published_at, json_ts(w.at("published_at"))) << i;
    }
  }
  // no fallback budget -> the corrupt manifest's parse error surfaces.
  options.max_fallback_attempts = 0;
  if (falls_back(info)) {
    try {
      Reader reader(prefix, options);
      ADD_FAILURE() << "opened " << reader.snapshot_info().manifest_ref << " without fallback";
    } catch (const error& e) {
      EXPECT_EQ(e.code(), make_error_code(errc::manifest_parse_error)) << e.what();
    }
  } else {
    Reader reader(prefix, options);
    EXPECT_EQ(reader.snapshot_info().manifest_ref, info.at("loaded_manifest_ref").as_string());
  }
}

}  // namespace shardy::test
