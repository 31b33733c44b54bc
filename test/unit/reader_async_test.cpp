// AsyncReader and Reader over an in-memory manifest store and directory-backed objects:
// lookups (D rows), refresh (H-11..H-13), fallback (H-09, H-10), close (A-18, C-06), handles
// (F rows), scans, health (G rows), cache cleanup (M-05), rate limiting (P rows), metrics (Q) and
// logging (R).
#include <gtest/gtest.h>
#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>
#include <sqlite3.h>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <shardy/async_reader.hpp>
#include <shardy/metrics.hpp>
#include <shardy/rate_limiter.hpp>
#include <shardy/reader.hpp>
#include <thread>

#include "reader_snapshot_util.hpp"
#include "shard/download_cache.hpp"
#include "support/test_support.hpp"

namespace shardy {
namespace {

namespace asio = boost::asio;

using test::rows_for;
using test::use_blocking;

struct ReaderFixture : test::AsyncSnapshotTest {
  ReaderFixture() : AsyncSnapshotTest("reader") {}
};

TEST_F(ReaderFixture, AsyncGetValuesAbsentAndEmpty_D01_D04) {
  auto rows = rows_for(0, 200, "v1");
  rows[500] = "";  // empty value
  snap.publish("run1", 4, rows);
  auto reader = open_async(options());
  EXPECT_EQ(reader.async_get(Key::integer(7), use_blocking), std::optional<Value>("v1:7"));
  EXPECT_EQ(reader.async_get(Key::integer(9999), use_blocking), std::nullopt);
  auto empty = reader.async_get(Key::integer(500), use_blocking);
  ASSERT_TRUE(empty.has_value());
  EXPECT_TRUE(empty->empty());
  // Warm path (shard now open) gives the same answers.
  EXPECT_EQ(reader.async_get(Key::integer(7), use_blocking), std::optional<Value>("v1:7"));
  // D-03: encoding and routing errors are errors, not absent.
  try {
    reader.async_get(Key::integer(-1), use_blocking);
    FAIL();
  } catch (const boost::system::system_error& e) {
    EXPECT_EQ(e.code(), make_error_code(errc::key_encoding_error));
  }
  try {
    reader.async_get(Key::unsigned_integer(1ull << 63), use_blocking);
    FAIL();
  } catch (const boost::system::system_error& e) {
    EXPECT_EQ(e.code(), make_error_code(errc::key_not_routable));
  }
  // E-09: a routing context on a HASH snapshot.
  RoutingContext ctx;
  ctx["region"] = "eu";
  try {
    reader.async_get(Key::integer(1), ctx, use_blocking);
    FAIL();
  } catch (const boost::system::system_error& e) {
    EXPECT_EQ(e.code(), make_error_code(errc::invalid_argument));
  }
}

TEST_F(ReaderFixture, CoroutineUseWithDefaultToken) {
  snap.publish("run1", 3, rows_for(0, 50, "c"));
  auto body = [&]() -> asio::awaitable<std::string> {
    auto ex = co_await asio::this_coro::executor;
    auto reader = co_await AsyncReader::async_open(ex, snap.prefix, options());
    auto v = co_await reader.async_get(Key::integer(3));
    std::vector<Key> keys;
    keys.push_back(Key::integer(4));
    keys.push_back(Key::integer(1000));
    auto many = co_await reader.async_multi_get(std::move(keys));
    co_return v.value_or("-") + "|" + many[0].value_or("-") + "|" + many[1].value_or("-");
  };
  EXPECT_EQ(asio::co_spawn(pool, body(), use_blocking), "c:3|c:4|-");
}

// Finalising a download (size check, fsync, rename) blocks on the disk: in a reader it runs on
// the reader's blocking pool, not on the io threads that serve S3 (here the test thread runs the
// io_context, the reader's only io thread), and the lookup comes back to the io thread after it.
// A failed shard open is counted once (the download cache used to report it as well: 2 per
// failure in a reader).
TEST_F(ReaderFixture, DownloadFinalisationRunsOffTheIoThreads) {
  const auto rows = rows_for(0, 100, "f");
  const Router router(2, KeyEncoding::u64be);
  std::int64_t bad_key = -1, good_key = -1;  // a key on shard 0 (broken) and one on shard 1
  for (const auto& [k, v] : rows) {
    auto& slot = router.shard_for(Key::integer(k)) == 0 ? bad_key : good_key;
    if (slot < 0) slot = k;
  }
  ASSERT_GE(bad_key, 0);
  ASSERT_GE(good_key, 0);
  snap.publish("run1", 2, rows, true, [](Manifest& m) {
    for (auto& s : m.shards)
      if (s.db_id == 0) s.db_bytes += 1;  // the finalisation's size check fails
  });
  struct Recorder final : MetricsSink {
    std::mutex mu;
    std::vector<std::thread::id> open_errors, downloads;
    void on_shard_open_error(std::uint32_t) override {
      std::lock_guard lk(mu);
      open_errors.push_back(std::this_thread::get_id());
    }
    void on_shard_download(std::uint32_t, std::uint64_t, std::chrono::nanoseconds) override {
      std::lock_guard lk(mu);
      downloads.push_back(std::this_thread::get_id());
    }
  };
  auto recorder = std::make_shared<Recorder>();
  auto o = options();
  o.metrics = recorder;
  asio::io_context io;
  auto work = asio::make_work_guard(io);
  error_code bad_ec;
  std::optional<Value> good;
  auto body = [&]() -> asio::awaitable<void> {
    auto reader = co_await AsyncReader::async_open(io.get_executor(), snap.prefix, o);
    try {
      co_await reader.async_get(Key::integer(bad_key));
    } catch (const boost::system::system_error& e) {
      bad_ec = e.code();
    }
    good = co_await reader.async_get(Key::integer(good_key));
    reader.close();
  };
  std::exception_ptr failure;
  asio::co_spawn(io, body(), [&](std::exception_ptr e) {
    failure = e;
    work.reset();
  });
  io.run();  // on this thread only
  if (failure) std::rethrow_exception(failure);
  EXPECT_EQ(bad_ec, make_error_code(errc::shard_error));
  EXPECT_EQ(good, std::optional<Value>("f:" + std::to_string(good_key)));
  std::lock_guard lk(recorder->mu);
  ASSERT_EQ(recorder->open_errors.size(), 1u);
  EXPECT_NE(recorder->open_errors[0], std::this_thread::get_id()) << "finalised on the io thread";
  ASSERT_EQ(recorder->downloads.size(), 1u);
  EXPECT_EQ(recorder->downloads[0], std::this_thread::get_id()) << "not back on the io thread";
}

TEST_F(ReaderFixture, MultiGetOrderDuplicatesAndAllOrNothing_D05_D10) {
  snap.publish("run1", 8, rows_for(0, 300, "m"));
  auto reader = open_async(options());
  std::vector<Key> keys;
  for (int k : {250, 3, 250, 100000, 17, 3}) keys.push_back(Key::integer(k));
  auto got = reader.async_multi_get(keys, use_blocking);
  ASSERT_EQ(got.size(), keys.size());
  EXPECT_EQ(got[0], std::optional<Value>("m:250"));
  EXPECT_EQ(got[1], std::optional<Value>("m:3"));
  EXPECT_EQ(got[2], std::optional<Value>("m:250"));
  EXPECT_EQ(got[3], std::nullopt);
  EXPECT_EQ(got[4], std::optional<Value>("m:17"));
  EXPECT_EQ(got[5], std::optional<Value>("m:3"));
  EXPECT_TRUE(reader.async_multi_get(std::vector<Key>{}, use_blocking).empty());
  keys.push_back(Key::integer(-5));  // cannot be encoded: the whole call fails (D-09)
  EXPECT_THROW(reader.async_multi_get(keys, use_blocking), boost::system::system_error);
}

TEST_F(ReaderFixture, SyncReaderManyThreads_B02) {
  snap.publish("run1", 5, rows_for(0, 1000, "s"));
  Reader reader(snap.prefix, options());
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 2000; ++i) {
        int k = (i * 13 + t * 7) % 1200;
        auto v = reader.get(Key::integer(k));
        bool ok = k < 1000 ? v == std::optional<Value>("s:" + std::to_string(k)) : !v;
        if (!ok) ++wrong;
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);
  std::vector<Key> keys{Key::integer(1), Key::integer(2000), Key::integer(999)};
  auto got = reader.multi_get(keys);
  EXPECT_EQ(got, (std::vector<std::optional<Value>>{"s:1", std::nullopt, "s:999"}));
  error_code ec;
  reader.get(Key::integer(-1), ec);
  EXPECT_EQ(ec, make_error_code(errc::key_encoding_error));
}

TEST_F(ReaderFixture, RefreshSwapsUnchangedIsNoopMalformedKeepsOld_H11_H12) {
  snap.publish("run1", 4, rows_for(0, 100, "v1"));
  Reader reader(snap.prefix, options());
  EXPECT_EQ(reader.get(Key::integer(5)), std::optional<Value>("v1:5"));
  const int loads = snap.manifests->manifest_loads.load();
  EXPECT_FALSE(reader.refresh());  // unchanged pointer: nothing loaded
  EXPECT_EQ(snap.manifests->manifest_loads.load(), loads);

  auto h = reader.borrow_shard_for_key(Key::integer(5));  // pins the v1 snapshot (F-06)
  const std::string enc5 = reader.encode_key(Key::integer(5));
  snap.publish("run2", 3, rows_for(50, 150, "v2"));
  EXPECT_TRUE(reader.refresh());
  EXPECT_EQ(reader.get(Key::integer(5)), std::nullopt);
  EXPECT_EQ(reader.get(Key::integer(120)), std::optional<Value>("v2:120"));
  EXPECT_EQ(reader.snapshot_info().run_id, "run2");
  EXPECT_EQ(reader.shard_details().size(), 3u);          // E-16
  EXPECT_EQ(h.get(enc5), std::optional<Value>("v1:5"));  // old snapshot still readable

  auto bad = snap.publish("run3", 2, rows_for(0, 10, "v3"));
  snap.manifests->corrupt(bad.ref);
  EXPECT_FALSE(reader.refresh());  // malformed: old state kept
  EXPECT_EQ(reader.get(Key::integer(120)), std::optional<Value>("v2:120"));
  EXPECT_EQ(reader.snapshot_info().run_id, "run2");
}

TEST_F(ReaderFixture, ColdStartFallbackNeverGoesNewer_H09_H10) {
  auto m1 = snap.publish("run1", 2, rows_for(0, 10, "v1"));
  auto m2 = snap.publish("run2", 2, rows_for(0, 10, "v2"));
  auto m3 = snap.publish("run3", 2, rows_for(0, 10, "v3"), /*make_current=*/false);
  // A rollback to m2, whose manifest is then found corrupt: the reader must land on m1 (older),
  // never on m3 (newer), unlike the reference.
  snap.manifests->set_current_ref(m2);
  snap.manifests->corrupt(m2.ref);
  Reader reader(snap.prefix, options());
  EXPECT_EQ(reader.get(Key::integer(3)), std::optional<Value>("v1:3"));
  auto info = reader.snapshot_info();
  EXPECT_EQ(info.manifest_ref, m1.ref);
  EXPECT_EQ(info.current_ref, m2.ref);
  EXPECT_FALSE(reader.refresh());  // pointer unchanged since open: cheap no-op

  // Fallback disabled: the parse error surfaces.
  auto o = options();
  o.max_fallback_attempts = 0;
  try {
    Reader r2(snap.prefix, o);
    FAIL();
  } catch (const error& e) {
    EXPECT_EQ(e.code(), make_error_code(errc::manifest_parse_error));
  }
  // Nothing usable below the bad one: an error naming the failure.
  snap.manifests->corrupt(m1.ref);
  try {
    Reader r3(snap.prefix, options());
    FAIL();
  } catch (const error& e) {
    EXPECT_EQ(e.code(), make_error_code(errc::manifest_parse_error));
  }
  (void)m3;
}

TEST_F(ReaderFixture, MissingPointerIsAnError_H02) {
  try {
    Reader reader(snap.prefix, options());
    FAIL();
  } catch (const error& e) {
    EXPECT_EQ(e.code(), make_error_code(errc::no_current_pointer));
  }
}

TEST_F(ReaderFixture, CloseIsIdempotentAndHandlesSurvive_A18_F06) {
  snap.publish("run1", 2, rows_for(0, 20, "v"));
  auto reader = open_async(options());
  auto handle = reader.async_borrow_shard_for_key(Key::integer(4), use_blocking);
  ASSERT_TRUE(handle);
  ASSERT_NE(handle.native_handle(), nullptr);
  reader.close();
  reader.close();
  try {
    reader.async_get(Key::integer(4), use_blocking);
    FAIL();
  } catch (const boost::system::system_error& e) {
    EXPECT_EQ(e.code(), make_error_code(errc::reader_closed));
  }
  EXPECT_THROW(reader.snapshot_info(), error);
  EXPECT_THROW(reader.async_refresh(use_blocking), boost::system::system_error);
  auto h = reader.health();
  EXPECT_EQ(h.status, HealthStatus::unhealthy);
  EXPECT_TRUE(h.is_closed);
  // Raw SQL through the handle still works on the pinned snapshot.
  sqlite3_stmt* st = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(handle.native_handle(), "SELECT count(*) FROM kv", -1, &st, nullptr),
            SQLITE_OK);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int64(st, 0), handle.detail().row_count);
  sqlite3_finalize(st);
  EXPECT_TRUE(handle.get(test::be64(4)).has_value());
}

TEST_F(ReaderFixture, UnopenedReaderFails_C02) {
  AsyncReader reader;
  EXPECT_EQ(reader.health().status, HealthStatus::unhealthy);
  EXPECT_FALSE(reader.health().is_closed);
  try {
    reader.async_get(Key::integer(1), use_blocking);
    FAIL();
  } catch (const boost::system::system_error& e) {
    EXPECT_EQ(e.code(), make_error_code(errc::reader_not_open));
  }
}

TEST_F(ReaderFixture, ScansInChunksAcrossShards) {
  snap.publish("run1", 4, rows_for(0, 103, "x"));
  Reader reader(snap.prefix, options());
  ScanOptions o;
  o.chunk_size = 10;
  auto cursor = reader.scan_all(o);
  std::map<std::string, std::string> seen;
  std::size_t chunks = 0;
  while (!cursor.done()) {
    auto rows = reader.next(cursor);
    EXPECT_LE(rows.size(), 10u);
    chunks += !rows.empty();
    for (auto& r : rows) {
      EXPECT_EQ(
          reader.route_key(Key::integer(static_cast<std::int64_t>(std::stoll(r.value.substr(2))))),
          r.db_id);
      EXPECT_TRUE(seen.emplace(r.key, r.value).second) << "duplicate row";
    }
  }
  EXPECT_EQ(seen.size(), 103u);
  EXPECT_GE(chunks, 11u);
  // One shard, bounded: [enc(10), enc(20)).
  ScanOptions b;
  b.start = reader.encode_key(Key::integer(10));
  b.end = reader.encode_key(Key::integer(20));
  b.chunk_size = 3;
  std::size_t n = 0;
  for (std::uint32_t id = 0; id < 4; ++id) {
    auto c = reader.scan(id, b);
    while (!c.done())
      for (auto& r : reader.next(c)) {
        EXPECT_GE(r.key, *b.start);
        EXPECT_LT(r.key, *b.end);
        ++n;
      }
  }
  EXPECT_EQ(n, 10u);
}

TEST_F(ReaderFixture, HealthAgeFromPublishTime_G03) {
  snap.publish("run1", 2, rows_for(0, 5, "h"));  // published in 2023: old
  Reader reader(snap.prefix, options());
  auto h = reader.health();
  EXPECT_EQ(h.status, HealthStatus::healthy);  // no threshold
  EXPECT_EQ(h.num_shards, 2u);
  EXPECT_GT(h.manifest_age, std::chrono::hours(24 * 365));
  EXPECT_EQ(reader.health(std::chrono::hours(1)).status, HealthStatus::degraded);
  EXPECT_EQ(reader.health(std::chrono::hours(24 * 365 * 100)).status, HealthStatus::healthy);
}

TEST_F(ReaderFixture, EagerOpensAllLazyNone_A01) {
  snap.publish("run1", 6, rows_for(0, 100, "e"));
  auto lazy = options();
  { Reader r(snap.prefix, lazy); }
  EXPECT_EQ(snap.objects->downloads.load(), 0);
  auto eager = options();
  eager.shard_open = ShardOpenPolicy::eager;
  Reader r(snap.prefix, eager);
  EXPECT_EQ(snap.objects->downloads.load(), 6);
  r.get(Key::integer(1));
  EXPECT_EQ(snap.objects->downloads.load(), 6);
}

TEST_F(ReaderFixture, RefreshRemovesRetiredCacheFiles_M05) {
  snap.publish("run1", 2, rows_for(0, 50, "a"));
  auto o = options();
  o.shard_open = ShardOpenPolicy::eager;
  Reader reader(snap.prefix, o);
  EXPECT_EQ(cache_entries(), 2u);
  snap.publish("run2", 2, rows_for(0, 50, "b"));
  EXPECT_TRUE(reader.refresh());
  EXPECT_EQ(cache_entries(), 2u);  // the run1 files are gone, run2's are there
  EXPECT_EQ(reader.get(Key::integer(3)), std::optional<Value>("b:3"));
}

TEST_F(ReaderFixture, WouldDeadlockOnOwnIoThread) {
  snap.publish("run1", 2, rows_for(0, 10, "d"));
  asio::io_context io;
  auto work = asio::make_work_guard(io);
  std::thread t([&] { io.run(); });
  {
    Reader reader(io, snap.prefix, options());
    EXPECT_EQ(reader.get(Key::integer(1)), std::optional<Value>("d:1"));
    std::promise<error_code> p;
    asio::post(io, [&] {
      error_code ec;
      reader.get(Key::integer(1), ec);
      p.set_value(ec);
    });
    EXPECT_EQ(p.get_future().get(), make_error_code(errc::would_deadlock));
  }
  work.reset();
  t.join();
}

TEST_F(ReaderFixture, RateLimiterOversizedRequestFailsAtOnce_P04) {
  snap.publish("run1", 2, rows_for(0, 10, "r"));
  auto o = options();
  o.rate_limiter = std::make_shared<TokenBucket>(1000.0, 5.0);
  Reader reader(snap.prefix, o);
  std::vector<Key> keys(6, Key::integer(1));
  try {
    reader.multi_get(keys);
    FAIL();
  } catch (const error& e) {
    EXPECT_EQ(e.code(), make_error_code(errc::rate_limit_exceeded));
  }
  keys.pop_back();
  EXPECT_EQ(reader.multi_get(keys).size(), 5u);
  auto a = open_async(o);
  try {
    a.async_multi_get(std::vector<Key>(6, Key::integer(1)), use_blocking);
    FAIL();
  } catch (const boost::system::system_error& e) {
    EXPECT_EQ(e.code(), make_error_code(errc::rate_limit_exceeded));
  }
}

TEST(ReaderRateLimiter, TokenBucketWaitsAndCancels_P02) {
  EXPECT_THROW(TokenBucket(0, 1), error);
  EXPECT_THROW(TokenBucket(10, 0.5), error);
  TokenBucket b(20.0, 2.0);  // 2 at once, then one per 50 ms
  EXPECT_TRUE(b.try_acquire(2));
  EXPECT_FALSE(b.try_acquire(1));
  asio::io_context io;
  const auto t0 = std::chrono::steady_clock::now();
  error_code first = make_error_code(errc::io_error);
  b.async_acquire(io.get_executor(), 1, [&](error_code ec) { first = ec; });
  io.run();
  const auto waited = std::chrono::steady_clock::now() - t0;
  EXPECT_FALSE(first);
  EXPECT_GE(waited, std::chrono::milliseconds(30));
  // Cancellation gives the tokens back.
  io.restart();
  asio::cancellation_signal sig;
  error_code second;
  b.async_acquire(io.get_executor(), 2,
                  asio::bind_cancellation_slot(sig.slot(), [&](error_code ec) { second = ec; }));
  asio::post(io, [&] { sig.emit(asio::cancellation_type::terminal); });
  io.run();
  EXPECT_EQ(second, make_error_code(errc::cancelled));
  // 3 tokens > burst: refused at once.
  io.restart();
  error_code third;
  b.async_acquire(io.get_executor(), 3, [&](error_code ec) { third = ec; });
  io.run();
  EXPECT_EQ(third, make_error_code(errc::rate_limit_exceeded));
}

TEST_F(ReaderFixture, MetricsAndPrometheusText_Q03_Q13) {
  snap.publish("run1", 2, rows_for(0, 10, "q"));
  auto o = options();
  auto prom = std::make_shared<PrometheusCollector>();
  o.metrics = prom;
  Reader reader(snap.prefix, o);
  reader.get(Key::integer(1));
  reader.get(Key::integer(1));
  reader.get(Key::integer(99));
  reader.multi_get({Key::integer(1), Key::integer(2), Key::integer(100)});
  error_code ec;
  reader.get(Key::integer(-3), ec);
  reader.refresh();
  auto text = prom->render();
  EXPECT_NE(text.find("shardy_reader_gets_total 3\n"), std::string::npos) << text;
  EXPECT_NE(text.find("shardy_reader_get_results_total{result=\"hit\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("shardy_reader_get_results_total{result=\"miss\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("shardy_reader_multi_get_keys_total 3\n"), std::string::npos);
  EXPECT_NE(text.find("shardy_reader_errors_total{operation=\"get\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("shardy_reader_refreshes_total{changed=\"false\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("shardy_shard_downloads_total 2\n"), std::string::npos) << text;
  EXPECT_NE(text.find("shardy_reader_get_duration_seconds_count 3\n"), std::string::npos);
  EXPECT_NE(text.find("# TYPE shardy_reader_get_duration_seconds histogram"), std::string::npos);
}

TEST_F(ReaderFixture, LogsThroughTheShardyLoggerOnlyWhenConfigured_R01_R05) {
  snap.publish("run1", 2, rows_for(0, 10, "l"));
  auto ring = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(64);
  auto logger = std::make_shared<spdlog::logger>("shardy", ring);
  logger->set_level(spdlog::level::debug);
  spdlog::register_logger(logger);
  {
    Reader reader(snap.prefix, options());
    reader.get(Key::integer(1));
  }
  spdlog::drop("shardy");
  auto lines = ring->last_formatted();
  bool initialized = false, downloaded = false;
  for (auto& l : lines) {
    initialized |= l.find("reader_initialized") != std::string::npos;
    downloaded |= l.find("shard_download_finished") != std::string::npos;
  }
  EXPECT_TRUE(initialized);
  EXPECT_TRUE(downloaded);
}

}  // namespace
}  // namespace shardy

namespace shardy {
namespace {

// Refresh under load: readers on several threads while another thread flips _CURRENT between
// two snapshots and refreshes. Every answer must come from exactly one snapshot, and one
// multi_get must never mix them (the state is pinned for the whole call).
TEST_F(ReaderFixture, RefreshUnderLoadAnswersBelongToOneSnapshot_H11_B05) {
  const auto [a, b] = publish_a_and_b(200);
  auto o = options();
  o.remove_retired_shards = true;
  Reader reader(snap.prefix, o);
  const auto r = test::refresh_under_load(reader, *snap.manifests, a, b, 200, 40);
  EXPECT_EQ(r.bad, 0);
  EXPECT_EQ(r.refreshes, 40);
  EXPECT_GE(r.answers, 400);
}

}  // namespace
}  // namespace shardy
