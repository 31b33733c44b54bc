// The range tier under concurrency (issue 5; tools/tsan.sh runs RangeConcurrent.* and
// RangeInflight.* under ThreadSanitizer): many threads (Reader) and coroutines (AsyncReader)
// looking up keys on the same range shards at once, cold and then warm, and while another thread
// keeps refreshing between two snapshots. Each test checks every answer; the cold/warm tests also
// count the store's requests: no page of a shard is requested twice (concurrent misses of one
// page share one GET; the page cache holds every page), and the warm round sends no request at
// all. So they fail without a sanitizer too.
#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <future>
#include <map>
#include <mutex>
#include <shardy/async_reader.hpp>
#include <shardy/local_store.hpp>
#include <shardy/reader.hpp>
#include <thread>

#include "reader_snapshot_util.hpp"
#include "support/forwarding_store.hpp"
#include "support/test_support.hpp"

namespace shardy {
namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;

// Delegates to the mapped store and counts GETs per (object, range offset).
class CountingStore final : public test::ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;

  std::size_t gets() const {
    std::lock_guard lk(mu_);
    std::size_t n = 0;
    for (auto& [k, c] : gets_) n += c;
    return n;
  }
  // (object, offset) pairs requested more than once.
  std::vector<std::string> repeated() const {
    std::lock_guard lk(mu_);
    std::vector<std::string> out;
    for (auto& [k, c] : gets_)
      if (c > 1)
        out.push_back(k.first + " @" + std::to_string(k.second) + " x" + std::to_string(c));
    return out;
  }

  asio::awaitable<GetResult> get(std::string url, GetOptions options = {}) override {
    {
      std::lock_guard lk(mu_);
      gets_[{url, options.range ? options.range->offset : ~0ull}] += 1;
    }
    co_return co_await ForwardingStore::get(std::move(url), std::move(options));
  }

 private:
  mutable std::mutex mu_;
  std::map<std::pair<std::string, std::uint64_t>, int> gets_;
};

std::map<std::int64_t, std::string> rows_for(int n) {
  std::map<std::int64_t, std::string> rows;
  for (int k = 0; k < n; ++k) rows[k] = "v:" + std::to_string(k) + std::string(150, 'x');
  return rows;
}

struct RangeConcurrent : ::testing::Test {
  fs::path root = test::make_temp_dir("range-conc");
  test::SnapshotWriter snap{root / "objects"};
  asio::thread_pool pool{2};
  std::shared_ptr<CountingStore> store =
      std::make_shared<CountingStore>(make_mapped_store(pool.get_executor(), root / "objects"));

  ReaderOptions options() {
    auto o = snap.reader_options(root / "cache");
    o.object_store = store;
    o.access_mode = AccessMode::range;
    o.range.page_cache_pages = 4096;  // more than the shards' pages: nothing is evicted
    return o;
  }
  AsyncReader open_async() {
    return asio::co_spawn(pool,
                          AsyncReader::async_open(pool.get_executor(), snap.prefix, options(),
                                                  asio::use_awaitable),
                          asio::use_future)
        .get();
  }
  ~RangeConcurrent() override { pool.join(); }
};

TEST_F(RangeConcurrent, ReaderThreadsColdThenWarmOnOneShard) {
  constexpr int n = 3000;
  auto rows = rows_for(n);
  snap.publish("run1", 1, rows);  // one shard of ~600 KB: every thread reads the same pages
  Reader reader(snap.prefix, options(), 2);
  ASSERT_EQ(reader.snapshot_info().access_mode, AccessMode::range);
  std::atomic<int> wrong{0};
  auto round = [&] {
    std::vector<std::thread> threads;
    for (int t = 0; t < 6; ++t)
      threads.emplace_back([&, t] {
        for (int i = 0; i < n; i += 5) {
          const int k = (t % 2 ? n - 1 - i : i + t * 397) % n;
          if (reader.get(Key::integer(k)) != std::optional<Value>(rows[k])) ++wrong;
        }
        if (reader.get(Key::integer(n + t))) ++wrong;  // absent
      });
    for (auto& th : threads) th.join();
  };
  round();
  EXPECT_EQ(wrong.load(), 0);
  const std::size_t cold = store->gets();
  EXPECT_GT(cold, 10u);
  EXPECT_EQ(store->repeated(), std::vector<std::string>{});  // no page fetched twice
  round();                                                   // warm: the same keys again
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(store->gets(), cold);
}

TEST_F(RangeConcurrent, AsyncReaderCoroutinesColdThenWarm) {
  constexpr int n = 2000;
  auto rows = rows_for(n);
  snap.publish("run1", 3, rows);
  auto reader = open_async();
  ASSERT_EQ(reader.snapshot_info().access_mode, AccessMode::range);
  std::atomic<int> wrong{0};
  auto worker = [](AsyncReader r, int seed, const std::map<std::int64_t, std::string>* rows,
                   std::atomic<int>* wrong) -> asio::awaitable<void> {
    for (int i = 0; i < 100; ++i) {
      const int k = (seed * 61 + i * 17) % n;
      auto v = co_await r.async_get(Key::integer(k), asio::use_awaitable);
      if (v != std::optional<Value>(rows->at(k))) ++*wrong;
    }
  };
  auto round = [&] {
    std::vector<std::future<void>> futures;
    for (int c = 0; c < 32; ++c)
      futures.push_back(asio::co_spawn(pool, worker(reader, c, &rows, &wrong), asio::use_future));
    for (auto& f : futures) f.get();
  };
  round();
  EXPECT_EQ(wrong.load(), 0);
  const std::size_t cold = store->gets();
  EXPECT_GT(cold, 10u);
  EXPECT_EQ(store->repeated(), std::vector<std::string>{});
  round();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(store->gets(), cold);
  reader.close();
}

// Refresh under load in range mode (issue 4's bar, for the range tier): reader threads call get
// and multi_get while another thread flips _CURRENT between two snapshots and refreshes. Every
// refresh opens the new state's range shards cold (new sources, page caches, VFSs) while lookups
// still finish on the old state's: every answer must come from exactly one snapshot, and one
// multi_get must never mix them.
std::map<std::int64_t, std::string> tagged_rows(int n, const std::string& tag) {
  std::map<std::int64_t, std::string> rows;
  for (int k = 0; k < n; ++k) rows[k] = tag + ":" + std::to_string(k);
  return rows;
}

using test::one_of;

TEST_F(RangeConcurrent, RefreshUnderLoadAnswersBelongToOneSnapshot) {
  auto a = snap.publish("runA", 4, tagged_rows(300, "A"));
  auto b = snap.publish("runB", 3, tagged_rows(300, "B"));
  snap.manifests->set_current_ref(a);
  Reader reader(snap.prefix, options(), 2);
  ASSERT_EQ(reader.snapshot_info().access_mode, AccessMode::range);
  const auto r = test::refresh_under_load(reader, *snap.manifests, a, b, 300, 20);
  EXPECT_EQ(r.bad, 0);
  EXPECT_EQ(r.refreshes, 20);
  EXPECT_GE(r.answers, 200);
  EXPECT_EQ(reader.snapshot_info().access_mode, AccessMode::range);
}

// The same with AsyncReader: 16 coroutines on the 2-thread pool looking up while a thread
// refreshes through async_refresh.
TEST_F(RangeConcurrent, AsyncRefreshUnderLoadAnswersBelongToOneSnapshot) {
  auto a = snap.publish("runA", 4, tagged_rows(300, "A"));
  auto b = snap.publish("runB", 3, tagged_rows(300, "B"));
  snap.manifests->set_current_ref(a);
  auto reader = open_async();
  ASSERT_EQ(reader.snapshot_info().access_mode, AccessMode::range);
  std::atomic<bool> stop{false};
  std::atomic<int> bad{0}, answers{0}, refreshes{0};
  auto worker = [](AsyncReader r, int seed, std::atomic<bool>* stop, std::atomic<int>* bad,
                   std::atomic<int>* answers) -> asio::awaitable<void> {
    int i = seed;
    while (!stop->load()) {
      i = (i * 31 + 7) % 300;
      if (i % 4 == 0) {
        std::vector<Key> keys{Key::integer(i), Key::integer((i + 5) % 300)};
        auto v = co_await r.async_multi_get(std::move(keys), asio::use_awaitable);
        if (!one_of(v[0], i) || !one_of(v[1], (i + 5) % 300) || (*v[0])[0] != (*v[1])[0]) ++*bad;
      } else {
        auto v = co_await r.async_get(Key::integer(i), asio::use_awaitable);
        if (!one_of(v, i)) ++*bad;
      }
      ++*answers;
    }
  };
  std::vector<std::future<void>> futures;
  for (int c = 0; c < 16; ++c)
    futures.push_back(
        asio::co_spawn(pool, worker(reader, c, &stop, &bad, &answers), asio::use_future));
  for (int r = 0; r < 20; ++r) {
    const int seen = answers.load();
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (answers.load() < seen + 10 && std::chrono::steady_clock::now() < until)
      std::this_thread::yield();
    snap.manifests->set_current_ref(r % 2 ? a : b);
    if (reader.async_refresh(asio::use_future).get()) ++refreshes;
  }
  stop = true;
  for (auto& f : futures) f.get();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(refreshes.load(), 20);
  EXPECT_GE(answers.load(), 200);
  reader.close();
}

}  // namespace
}  // namespace shardy
