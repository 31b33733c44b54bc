// The range tier gives the reference's answers (reader-features L-07, L-14; issue 5 bar "both
// tiers give the same answers"): every fixture snapshot is opened through the mapped object
// store, every non-empty shard through the range shard factory (sidecar on and off), and every
// key of expected.jsonl is routed, encoded and looked up through the range shard.
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/json.hpp>
#include <map>
#include <shardy/local_store.hpp>
#include <shardy/manifest_store.hpp>
#include <shardy/routing.hpp>
#include <thread>

#include "shard/range_shard.hpp"
#include "support/test_support.hpp"

namespace shardy {
namespace {

namespace asio = boost::asio;
namespace json = boost::json;

std::string s(const json::value& v) { return std::string(v.as_string()); }

struct Env {
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
  std::thread io_thread{[this] { io.run(); }};
  asio::thread_pool blocking{2};
  ~Env() {
    work.reset();
    io_thread.join();
    blocking.join();
  }
  template <class T>
  T run(asio::awaitable<T> a) {
    return asio::co_spawn(io, std::move(a), asio::use_future).get();
  }
};

struct Mode {
  const char* snapshot;
  bool sidecar;
};

class RangeConformance : public ::testing::TestWithParam<Mode> {};

TEST_P(RangeConformance, EveryExpectedKeyThroughTheRangeTier) {
  const Mode mode = GetParam();
  const auto expected_dir = test::fixtures_dir() / "expected" / mode.snapshot;
  const json::value info_doc = json::parse(test::read_file(expected_dir / "reader_info.json"));
  const json::object& info = info_doc.as_object();
  Env env;
  auto objects =
      make_mapped_store(env.io.get_executor(), {}, {{"shardy-fixtures", test::fixtures_dir()}});
  auto mstore = make_object_manifest_store(objects, s(info.at("s3_prefix")));
  // The manifest the reference reader loaded (kv_history_fallback: not _CURRENT's).
  const std::string ref = s(info.at("loaded_manifest_ref"));
  Manifest manifest = env.run(mstore->load_manifest(ref));
  const auto all = manifest.all_shards();

  shard::RangeShardOptions ro;
  ro.page_cache_pages = 64;  // small, so that eviction is exercised
  ro.sidecar = mode.sidecar ? shard::RangeShardOptions::sidecar_mode::automatic
                            : shard::RangeShardOptions::sidecar_mode::never;
  auto factory = shard::make_range_shard_factory(ro);
  std::map<std::uint32_t, std::shared_ptr<shard::ShardReader>> shards;
  for (const auto& m : all) {
    if (!m.db_url) continue;
    shard::ShardOpenContext ctx;
    ctx.executor = env.io.get_executor();
    ctx.blocking_executor = env.blocking.get_executor();
    ctx.objects = objects;
    ctx.meta = m;
    ctx.db_object = *m.db_url + "/shard.db";
    ctx.run_id = manifest.build.run_id;
    ctx.custom = manifest.build.custom;
    shards[m.db_id] = env.run(factory->open(std::move(ctx)));
    ASSERT_EQ(shards[m.db_id]->threading(), shard::LookupThreading::blocking_pool);
  }
  ASSERT_FALSE(shards.empty());

  Router router(manifest.build.num_dbs, manifest.build.key_encoding);
  std::map<std::string, std::size_t> counts;
  for (const std::string& line : test::read_lines(expected_dir / "expected.jsonl")) {
    SCOPED_TRACE(line.substr(0, 200));
    const json::value doc = json::parse(line);
    const json::object& e = doc.as_object();
    const std::string type = s(e.at("key_type"));
    const bool want_error = e.contains("get_error") || e.at("shard_id").is_null();
    std::optional<Key> key;
    error_code ec;
    if (type == "int") {
      Key k = Key::parse_integer(s(e.at("key_dec")), ec);
      if (ec) {
        EXPECT_TRUE(want_error);
        continue;
      }
      key = k;
    } else if (type == "str") {
      key = Key::text(test::from_hex(s(e.at("key_utf8_hex"))));
    } else {
      key = Key::bytes(test::from_hex(s(e.at("key_hex"))));
    }
    RouteResult r = router.route_lookup(*key, ec);
    if (want_error) {
      EXPECT_TRUE(ec);
      ++counts["error"];
      continue;
    }
    ASSERT_FALSE(ec) << ec.message();
    std::optional<Value> got;
    if (auto it = shards.find(r.db_id); it != shards.end()) got = it->second->get(r.storage_key);
    const json::value& want = e.at("value_hex");
    if (want.is_null()) {
      EXPECT_FALSE(got) << test::to_hex(got.value_or(""));
      ++counts["none"];
    } else {
      ASSERT_TRUE(got);
      EXPECT_EQ(test::to_hex(*got), s(want));
      ++counts["value"];
    }
  }
  EXPECT_GT(counts["value"], 0u);
  EXPECT_GE(counts["none"], 200u);

  // Every shard used its sidecar when asked to (all fixture sidecars are valid and bound).
  std::uint64_t requests = 0;
  for (auto& [id, sh] : shards) {
    auto m = shard::range_metrics(*sh);
    ASSERT_TRUE(m);
    EXPECT_EQ(m->sidecar_used, mode.sidecar)
        << "shard " << id << " " << shard::to_string(m->sidecar_reject);
    EXPECT_EQ(m->sidecar_requests, mode.sidecar ? 1u : 0u);
    requests += m->requests;
  }
  std::printf("[ %s sidecar=%d ] value=%zu none=%zu error=%zu, %llu requests over %zu shards\n",
              mode.snapshot, int(mode.sidecar), counts["value"], counts["none"], counts["error"],
              static_cast<unsigned long long>(requests), shards.size());
}

INSTANTIATE_TEST_SUITE_P(
    Fixtures, RangeConformance,
    ::testing::Values(Mode{"kv_small", true}, Mode{"kv_small", false}, Mode{"kv_str", true},
                      Mode{"kv_str", false}, Mode{"kv_sparse", true}, Mode{"kv_sparse", false},
                      Mode{"kv_history_fallback", true}, Mode{"kv_history_fallback", false}),
    [](const auto& p) {
      return std::string(p.param.snapshot) + (p.param.sidecar ? "_sidecar" : "_plain");
    });

}  // namespace
}  // namespace shardy
