// The access tier through the readers (reader-features L-06..L-08; issue 5 "adaptive tier"):
// ReaderOptions::access_mode download / range / automatic, decided per snapshot at open and at
// each refresh from the manifest's db_bytes (both thresholds inclusive), reported by
// snapshot_info().access_mode; range lookups never run on the io threads (a range page read on
// an io thread fails with would_deadlock, so every successful lookup below proves it).
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <shardy/async_reader.hpp>
#include <shardy/local_store.hpp>
#include <shardy/metrics.hpp>
#include <shardy/reader.hpp>

#include "reader_snapshot_util.hpp"
#include "support/test_support.hpp"

namespace shardy {
namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;

std::map<std::int64_t, std::string> rows_for(int from, int to, const std::string& tag,
                                             std::size_t pad = 0) {
  std::map<std::int64_t, std::string> rows;
  for (int k = from; k < to; ++k) rows[k] = tag + ":" + std::to_string(k) + std::string(pad, 'x');
  return rows;
}

// Counts what the tiers do: downloads (download tier) and shards opened from the cache.
struct Counting final : MetricsSink {
  std::atomic<int> downloads{0};
  void on_shard_download(std::uint32_t, std::uint64_t, std::chrono::nanoseconds) override {
    ++downloads;
  }
};

struct ReaderAccess : ::testing::Test {
  fs::path root = test::make_temp_dir("reader-access");
  test::SnapshotWriter snap{root / "objects"};
  asio::thread_pool pool{2};
  std::shared_ptr<Counting> counting = std::make_shared<Counting>();

  // Objects through the mapped store (ranged GETs, MD5 ETags) over the writer's folder.
  ReaderOptions options(AccessMode mode) {
    auto o = snap.reader_options(root / "cache");
    o.object_store = make_mapped_store(pool.get_executor(), root / "objects");
    o.access_mode = mode;
    o.metrics = counting;
    return o;
  }

  std::size_t cached_files() const {
    std::size_t n = 0;
    if (!fs::exists(root / "cache")) return 0;
    for (auto& e : fs::directory_iterator(root / "cache")) n += fs::exists(e.path() / "shard.db");
    return n;
  }

  ~ReaderAccess() override { pool.join(); }
};

std::pair<std::uint64_t, std::uint64_t> largest_and_total(const std::vector<ShardDetail>& d) {
  std::uint64_t largest = 0, total = 0;
  for (auto& s : d) {
    largest = std::max<std::uint64_t>(largest, static_cast<std::uint64_t>(s.db_bytes));
    total += static_cast<std::uint64_t>(s.db_bytes);
  }
  return {largest, total};
}

TEST_F(ReaderAccess, ExplicitRangeReadsInPlaceWithReaderAndAsyncReader_L07) {
  auto rows = rows_for(0, 3000, "r", 150);
  snap.publish("run1", 3, rows);
  {
    Reader reader(snap.prefix, options(AccessMode::range));
    EXPECT_EQ(reader.snapshot_info().access_mode, AccessMode::range);
    for (int k = 0; k < 3000; k += 7)
      ASSERT_EQ(reader.get(Key::integer(k)), std::optional<Value>(rows[k])) << k;
    EXPECT_EQ(reader.get(Key::integer(5000)), std::nullopt);
    std::vector<Key> keys;
    std::vector<std::optional<Value>> want;
    for (int k = 0; k < 3100; k += 31) {
      keys.push_back(Key::integer(k));
      want.push_back(k < 3000 ? std::optional<Value>(rows[k]) : std::nullopt);
    }
    EXPECT_EQ(reader.multi_get(keys), want);
    // A scan reads through the range VFS as well.
    auto cursor = reader.scan(0);
    std::size_t scanned = 0;
    while (!cursor.done()) scanned += reader.next(cursor).size();
    EXPECT_EQ(static_cast<std::int64_t>(scanned), reader.shard_details()[0].row_count);
  }
  EXPECT_EQ(counting->downloads.load(), 0);
  EXPECT_EQ(cached_files(), 0u);

  auto body = [&]() -> asio::awaitable<int> {
    auto reader = co_await AsyncReader::async_open(pool.get_executor(), snap.prefix,
                                                   options(AccessMode::range));
    int bad = 0;
    if (reader.snapshot_info().access_mode != AccessMode::range) ++bad;
    for (int k = 0; k < 3000; k += 13) {
      auto v = co_await reader.async_get(Key::integer(k));
      if (v != std::optional<Value>(rows[k])) ++bad;
    }
    reader.close();
    co_return bad;
  };
  EXPECT_EQ(asio::co_spawn(pool, body(), asio::use_future).get(), 0);
  EXPECT_EQ(counting->downloads.load(), 0);
}

TEST_F(ReaderAccess, ExplicitDownloadDownloadsEvenBigShards_L06) {
  snap.publish("run1", 2, rows_for(0, 500, "d", 100));
  auto o = options(AccessMode::download);
  o.range_shard_bytes = 1;  // would pick range in auto mode
  Reader reader(snap.prefix, o);
  EXPECT_EQ(reader.snapshot_info().access_mode, AccessMode::download);
  EXPECT_EQ(reader.get(Key::integer(3)), std::optional<Value>("d:3" + std::string(100, 'x')));
  EXPECT_EQ(counting->downloads.load(), 1);
  EXPECT_EQ(cached_files(), 1u);
}

TEST_F(ReaderAccess, AutoThresholdsAreInclusive_L08) {
  snap.publish("run1", 4, rows_for(0, 2000, "a", 60));
  std::uint64_t largest = 0, total = 0;
  {
    Reader probe(snap.prefix, options(AccessMode::download));
    std::tie(largest, total) = largest_and_total(probe.shard_details());
  }
  ASSERT_GT(largest, 0u);
  ASSERT_GT(total, largest);
  struct Case {
    std::uint64_t shard, sum;
    AccessMode want;
  };
  const Case cases[] = {
      {largest, total + 1, AccessMode::range},         // a shard at the threshold
      {largest + 1, total + 1, AccessMode::download},  // every shard below, sum below
      {largest + 1, total, AccessMode::range},         // the sum at the budget
      {~0ull, ~0ull, AccessMode::download},
  };
  for (const auto& c : cases) {
    auto o = options(AccessMode::automatic);
    o.range_shard_bytes = c.shard;
    o.range_total_bytes = c.sum;
    Reader reader(snap.prefix, o);
    EXPECT_EQ(reader.snapshot_info().access_mode, c.want) << c.shard << " " << c.sum;
    EXPECT_EQ(reader.get(Key::integer(11)), std::optional<Value>("a:11" + std::string(60, 'x')));
  }
}

TEST_F(ReaderAccess, AutoDecidesAgainAtEachRefresh_L08) {
  // run1: small shards (download); run2: big shards (range); run3: small again (download).
  snap.publish("run1", 2, rows_for(0, 40, "s"));
  auto o = options(AccessMode::automatic);
  o.range_shard_bytes = 64 << 10;
  o.range_total_bytes = 1ull << 40;
  Reader reader(snap.prefix, o);
  EXPECT_EQ(reader.snapshot_info().access_mode, AccessMode::download);
  EXPECT_EQ(reader.get(Key::integer(1)), std::optional<Value>("s:1"));
  EXPECT_EQ(reader.get(Key::integer(2)), std::optional<Value>("s:2"));
  const int downloads_run1 = counting->downloads.load();
  EXPECT_GT(downloads_run1, 0);
  EXPECT_GT(cached_files(), 0u);

  auto big = rows_for(0, 3000, "b", 200);
  snap.publish("run2", 2, big);
  EXPECT_TRUE(reader.refresh());
  EXPECT_EQ(reader.snapshot_info().access_mode, AccessMode::range);
  for (int k = 0; k < 3000; k += 101)
    ASSERT_EQ(reader.get(Key::integer(k)), std::optional<Value>(big[k])) << k;
  EXPECT_EQ(counting->downloads.load(), downloads_run1);  // nothing downloaded for run2
  EXPECT_EQ(cached_files(), 0u);                          // run1's files retired: run2 uses none

  snap.publish("run3", 2, rows_for(0, 40, "t"));
  EXPECT_TRUE(reader.refresh());
  EXPECT_EQ(reader.snapshot_info().access_mode, AccessMode::download);
  EXPECT_EQ(reader.get(Key::integer(1)), std::optional<Value>("t:1"));
  EXPECT_GT(counting->downloads.load(), downloads_run1);
}

TEST(AccessModeNames, RoundTripAndRejects) {
  for (auto m : {AccessMode::download, AccessMode::range, AccessMode::automatic})
    EXPECT_EQ(parse_access_mode(to_string(m)), m);
  EXPECT_EQ(to_string(AccessMode::automatic), "auto");
  EXPECT_FALSE(parse_access_mode("Range"));
  EXPECT_FALSE(parse_access_mode("automatic"));
}

}  // namespace
}  // namespace shardy
