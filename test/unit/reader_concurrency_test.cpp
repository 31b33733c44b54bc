// Reader concurrency tests, written to be run under ThreadSanitizer (tools/tsan.sh runs every
// test whose name contains "Concurrent", plus the refresh-under-load test of reader_async_test):
// many threads and coroutines calling multi_get at once on cold and warm shards (B-02, C-04,
// D-05), close() while calls are in flight (A-17, A-18, B-07, C-06), and refresh racing with
// borrowed handles and scans (B-05, F-06). Each test also checks its answers, so it fails
// without a sanitizer too.
#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <future>
#include <set>
#include <shardy/async_reader.hpp>
#include <shardy/metrics.hpp>
#include <shardy/reader.hpp>
#include <thread>

#include "reader_snapshot_util.hpp"
#include "support/test_support.hpp"

namespace shardy {
namespace {

namespace asio = boost::asio;

using test::rows_for;

// Every reader here also records metrics (their counters are shared by all threads).
struct ConcurrencyFixture : test::AsyncSnapshotTest {
  ConcurrencyFixture() : AsyncSnapshotTest("reader-conc") {}

  ReaderOptions options() const {
    auto o = AsyncSnapshotTest::options();
    o.metrics = std::make_shared<PrometheusCollector>();
    return o;
  }
};

// Keys spread over every shard, some absent, with duplicates.
std::vector<Key> batch(int seed, int n) {
  std::vector<Key> keys;
  for (int i = 0; i < n; ++i) keys.push_back(Key::integer((seed * 37 + i * 11) % 260));
  return keys;
}

bool batch_ok(const std::vector<Key>& keys, const std::vector<std::optional<Value>>& got,
              const std::string& tag) {
  if (got.size() != keys.size()) return false;
  for (std::size_t i = 0; i < keys.size(); ++i) {
    const auto k = *keys[i].as_int64();
    const bool ok = k < 200 ? got[i] == std::optional<Value>(tag + ":" + std::to_string(k))
                            : !got[i].has_value();
    if (!ok) return false;
  }
  return true;
}

// Sync multi_get from 4 threads while the shards are still cold (the first calls open and
// download them concurrently through the async path), then warm (caller-thread path).
TEST_F(ConcurrencyFixture, ConcurrentSyncMultiGetColdAndWarm_B02_D05) {
  snap.publish("run1", 8, rows_for(0, 200, "m"));
  Reader reader(snap.prefix, options(), 2);
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 150; ++i) {
        auto keys = batch(t * 1000 + i, 1 + (i % 23));
        if (!batch_ok(keys, reader.multi_get(keys), "m")) ++wrong;
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(snap.objects->downloads.load(), 8);  // each shard downloaded once despite the race
}

// 64 coroutines on a 2-thread pool issuing async_multi_get (fan-out over shards) and async_get.
TEST_F(ConcurrencyFixture, ConcurrentAsyncMultiGetFanOut_C04) {
  snap.publish("run1", 16, rows_for(0, 200, "a"));
  auto o = options();
  o.max_concurrency = 4;        // fewer slots than shard groups: groups queue on the semaphore
  auto reader = open_async(o);  // on the fixture's 2-thread pool
  std::atomic<int> wrong{0}, done{0};
  auto worker = [](AsyncReader r, int seed, std::atomic<int>* wrong,
                   std::atomic<int>* done) -> asio::awaitable<void> {
    for (int i = 0; i < 20; ++i) {
      auto keys = batch(seed * 100 + i, 2 + (i % 40));
      auto got = co_await r.async_multi_get(keys, asio::use_awaitable);
      if (!batch_ok(keys, got, "a")) ++*wrong;
      auto one = co_await r.async_get(Key::integer(i), asio::use_awaitable);
      if (one != std::optional<Value>("a:" + std::to_string(i))) ++*wrong;
    }
    ++*done;
  };
  std::vector<std::future<void>> futures;
  for (int c = 0; c < 64; ++c)
    futures.push_back(asio::co_spawn(pool, worker(reader, c, &wrong, &done), asio::use_future));
  for (auto& f : futures) f.get();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(done.load(), 64);
  reader.close();
}

// close() while sync and async calls are in flight: every call either answers correctly or fails
// with reader_closed; nothing hangs, nothing else fails; later calls fail with reader_closed;
// a handle borrowed before close keeps working (B-07, F-06).
TEST_F(ConcurrencyFixture, ConcurrentCloseDuringCalls_A18_B07_C06) {
  snap.publish("run1", 6, rows_for(0, 200, "c"));
  Reader reader(snap.prefix, options(), 2);
  auto handle = reader.borrow_shard_for_key(Key::integer(5));
  const std::string enc5 = reader.encode_key(Key::integer(5));
  std::atomic<int> answered{0}, closed_errors{0}, other_errors{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t)
    threads.emplace_back([&, t] {
      while (!go.load()) std::this_thread::yield();
      for (int i = 0; i < 400; ++i) {
        error_code ec;
        if (i % 3 == 0) {
          auto keys = batch(t * 400 + i, 9);
          auto got = reader.multi_get(keys, ec);
          if (!ec && !batch_ok(keys, got, "c")) ++other_errors;
        } else {
          const int k = (t * 53 + i) % 200;
          auto v = reader.get(Key::integer(k), ec);
          if (!ec && v != std::optional<Value>("c:" + std::to_string(k))) ++other_errors;
        }
        if (!ec)
          ++answered;
        else if (ec == make_error_code(errc::reader_closed))
          ++closed_errors;
        else
          ++other_errors;
      }
    });
  // Async calls in flight at the same time, on the reader's own executor.
  const AsyncReader& ar = reader.async();
  // (Boost 1.81's as_tuple(use_future) does not compile: callbacks into promises instead.)
  std::vector<std::future<error_code>> pending;
  go = true;
  for (int i = 0; i < 40; ++i) {
    auto p = std::make_shared<std::promise<error_code>>();
    pending.push_back(p->get_future());
    auto keys = batch(i, 12);
    ar.async_multi_get(
        keys, [p, keys, &other_errors](error_code ec, std::vector<std::optional<Value>> v) {
          if (!ec && !batch_ok(keys, v, "c")) ++other_errors;
          p->set_value(ec);
        });
  }
  while (answered.load() < 50) std::this_thread::yield();
  reader.close();
  for (auto& t : threads) t.join();
  for (auto& f : pending) {
    auto ec = f.get();
    if (ec && ec != make_error_code(errc::reader_closed)) ++other_errors;
  }
  EXPECT_EQ(other_errors.load(), 0);
  EXPECT_GE(answered.load(), 50);
  EXPECT_GT(closed_errors.load(), 0);
  error_code ec;
  reader.get(Key::integer(1), ec);
  EXPECT_EQ(ec, make_error_code(errc::reader_closed));
  EXPECT_EQ(handle.get(enc5), std::optional<Value>("c:5"));
  handle.release();
}

// Refresh flipping between two snapshots while other threads borrow handles and scan: a handle
// or a scan sees exactly the snapshot it pinned from start to end (B-05, F-06).
TEST_F(ConcurrencyFixture, ConcurrentRefreshWithHandlesAndScans_B05_F06) {
  const auto [a, b] = publish_a_and_b(120);
  auto o = options();
  o.remove_retired_shards = true;
  Reader reader(snap.prefix, o, 2);
  std::atomic<bool> stop{false};
  std::atomic<int> bad{0}, handles{0}, scans{0};
  std::thread borrower([&] {
    int i = 0;
    while (!stop.load()) {
      const int k = (i++ * 7) % 120;
      auto h = reader.borrow_shard_for_key(Key::integer(k));
      // Routed on the snapshot the handle pins: the key is in that shard, whichever snapshot
      // it is (A has 4 shards, B 3; routing on one and borrowing from the other would miss or
      // name a shard that does not exist).
      auto v = h.get(reader.encode_key(Key::integer(k)));
      if (!v || (*v != "A:" + std::to_string(k) && *v != "B:" + std::to_string(k))) ++bad;
      ++handles;
    }
  });
  std::thread scanner([&] {
    while (!stop.load()) {
      ScanOptions so;
      so.chunk_size = 7;
      auto c = reader.scan_all(so);
      std::set<char> tags;
      std::size_t rows = 0;
      while (!c.done())
        for (auto& r : reader.next(c)) {
          tags.insert(r.value[0]);
          ++rows;
        }
      if (tags.size() != 1 || rows != 120) ++bad;
      ++scans;
    }
  });
  for (int r = 0; r < 30; ++r) {
    snap.manifests->set_current_ref(r % 2 ? a : b);
    EXPECT_TRUE(reader.refresh());
    const int h0 = handles.load();
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (handles.load() < h0 + 3 && std::chrono::steady_clock::now() < until)
      std::this_thread::yield();
  }
  stop = true;
  borrower.join();
  scanner.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_GT(handles.load(), 30);
  EXPECT_GT(scans.load(), 0);
}

}  // namespace
}  // namespace shardy
