// The range shard factory and the adaptive tier choice (reader-features L-07, L-08, L-09).
#include "shard/range_shard.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_future.hpp>
#include <thread>

#include "unit/range_test_support.hpp"

namespace shardy::test {
namespace {

using shard::AccessMode;

TEST(RangeAdaptive, L08Thresholds) {
  constexpr std::uint64_t MiB = 1ull << 20;
  const std::vector<std::uint64_t> one_big{16 * MiB}, one_below{16 * MiB - 1}, none{};
  EXPECT_EQ(shard::decide_access_mode(one_big), AccessMode::range);
  EXPECT_EQ(shard::decide_access_mode(one_below), AccessMode::download);
  EXPECT_EQ(shard::decide_access_mode(none), AccessMode::download);
  std::vector<std::uint64_t> many(200, 11 * MiB);  // 2200 MiB >= 2 GiB in total
  EXPECT_EQ(shard::decide_access_mode(many), AccessMode::range);
  std::vector<std::uint64_t> budget(2, 1ull << 30);  // exactly 2 GiB (inclusive)
  shard::AdaptivePolicy p;
  p.per_shard_threshold = 4ull << 30;
  EXPECT_EQ(shard::decide_access_mode(budget, p), AccessMode::range);
  budget[1] -= 1;
  EXPECT_EQ(shard::decide_access_mode(budget, p), AccessMode::download);
  p.per_shard_threshold = 1;  // configurable
  EXPECT_EQ(shard::decide_access_mode(one_below, p), AccessMode::range);

  // Empty shards (no db_url) do not count.
  std::vector<ShardMeta> metas(3);
  metas[0].db_url = "s3://b/x";
  metas[0].db_bytes = 16 * MiB;
  EXPECT_EQ(shard::decide_access_mode(std::span<const ShardMeta>(metas)), AccessMode::range);
  metas[0].db_bytes = 1;
  EXPECT_EQ(shard::decide_access_mode(std::span<const ShardMeta>(metas)), AccessMode::download);
}

TEST(RangeAdaptive, AccessModeNames) {
  for (auto m : {AccessMode::download, AccessMode::range, AccessMode::automatic})
    EXPECT_EQ(shard::parse_access_mode(shard::to_string(m)), m);
  EXPECT_FALSE(shard::parse_access_mode("mmap"));
  EXPECT_FALSE(shard::parse_access_mode(""));
}

struct Pools {
  boost::asio::io_context io;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work{io.get_executor()};
  std::thread io_thread{[this] { io.run(); }};
  boost::asio::thread_pool blocking{2};
  ~Pools() {
    work.reset();
    io_thread.join();
    blocking.join();
  }
};

class RangeShardTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store = std::make_shared<MemoryStore>();
    store->load_fixtures("snapshots/kv_small");
    for (const auto& d : fixture_shard_dirs())
      if (d.string().find("kv_small") != std::string::npos) dirs.push_back(d);
    ASSERT_FALSE(dirs.empty());
  }
  std::shared_ptr<shard::ShardReader> open(shard::RangeShardOptions o, bool announce_sidecar) {
    shard::ShardOpenContext ctx;
    ctx.executor = pools.io.get_executor();
    ctx.blocking_executor = pools.blocking.get_executor();
    ctx.objects = store;
    ctx.meta.db_url = fixture_url(dirs[0]);
    ctx.meta.db_bytes = static_cast<std::int64_t>(std::filesystem::file_size(dirs[0] / "shard.db"));
    ctx.db_object = *ctx.meta.db_url + "/shard.db";
    if (announce_sidecar)
      ctx.custom["sqlite_sidecar"] =
          boost::json::object{{"filename", "shard.sidecar"}, {"format_version", 8}};
    auto f = shard::make_range_shard_factory(o);
    return boost::asio::co_spawn(pools.io, f->open(std::move(ctx)), boost::asio::use_future).get();
  }
  Pools pools;
  std::shared_ptr<MemoryStore> store;
  std::vector<std::filesystem::path> dirs;
};

TEST_F(RangeShardTest, SidecarIsFetchedOnlyWhenAnnouncedOrForced) {
  using mode = shard::RangeShardOptions::sidecar_mode;
  shard::RangeShardOptions o;
  auto announced = open(o, true);
  EXPECT_TRUE(shard::range_metrics(*announced)->sidecar_used);
  store->clear_requests();
  auto unannounced = open(o, false);
  EXPECT_EQ(shard::range_metrics(*unannounced)->sidecar_requests, 0u);
  EXPECT_EQ(store->count("shard.sidecar"), 0u);
  o.sidecar = mode::always;
  EXPECT_TRUE(shard::range_metrics(*open(o, false))->sidecar_used);
  o.sidecar = mode::never;
  EXPECT_FALSE(shard::range_metrics(*open(o, true))->sidecar_used);
}

TEST_F(RangeShardTest, LookupsScansAndChangedObjects) {
  auto sh = open({}, true);
  EXPECT_EQ(sh->threading(), shard::LookupThreading::blocking_pool);
  const auto rows = sh->scan({}, 1000000);
  ASSERT_GT(rows.size(), 100u);
  for (std::size_t i = 0; i < rows.size(); i += 13) EXPECT_EQ(sh->get(rows[i].key), rows[i].value);
  EXPECT_FALSE(sh->get(std::string(8, '\xff')));
  const auto cold = shard::range_metrics(*sh)->page_requests;
  EXPECT_GT(cold, 0u);
  for (std::size_t i = 0; i < rows.size(); i += 13) EXPECT_EQ(sh->get(rows[i].key), rows[i].value);
  EXPECT_EQ(shard::range_metrics(*sh)->page_requests, cold);  // warm: 0 requests

  // The object changes under a fresh reader: its first uncached read fails with shard_changed.
  auto fresh = open({}, true);
  store->set(fixture_url(dirs[0] / "shard.db"), read_file(dirs[1] / "shard.db"));
  try {
    fresh->get(rows[rows.size() / 2].key);
    ADD_FAILURE() << "lookup on a changed object succeeded";
  } catch (const shardy::error& e) {
    EXPECT_EQ(e.code(), errc::shard_changed) << e.what();
  }
}

}  // namespace
}  // namespace shardy::test
