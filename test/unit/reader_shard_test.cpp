// The shard layer: SQLite shards (L-06 lookups, scans, borrowed connections) and the
// download-and-cache tier (M-01..M-05).
#include <gtest/gtest.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_future.hpp>
#include <future>
#include <mutex>
#include <shardy/metrics.hpp>
#include <thread>

#include "reader_test_util.hpp"
#include "shard/download_cache.hpp"
#include "shard/sqlite_shard.hpp"
#include "support/test_support.hpp"

namespace shardy {
namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using test::be64;

std::vector<std::pair<std::string, std::string>> sample_rows(int n) {
  std::vector<std::pair<std::string, std::string>> rows;
  for (int i = 0; i < n; ++i)
    rows.emplace_back(be64(static_cast<std::uint64_t>(i) * 2), "value-" + std::to_string(i));
  return rows;
}

TEST(ReaderShard, LookupDistinguishesAbsentFromEmpty_D04) {
  auto dir = test::make_temp_dir("shard-get");
  auto rows = sample_rows(100);
  rows.emplace_back(be64(1001), "");                  // empty value
  rows.emplace_back(std::string(), "for-empty-key");  // empty key
  rows.emplace_back(std::string("a\0b", 3), std::string("x\0y", 3));
  test::write_kv_shard(dir / "shard.db", rows);
  shard::SqliteShardOptions o;
  o.path = (dir / "shard.db").string();
  auto s = shard::open_sqlite_shard(o);
  EXPECT_EQ(s->threading(), shard::LookupThreading::caller_thread);
  EXPECT_EQ(s->get(be64(10)), std::optional<Value>("value-5"));
  EXPECT_EQ(s->get(be64(11)), std::nullopt);
  auto empty = s->get(be64(1001));
  ASSERT_TRUE(empty.has_value());
  EXPECT_TRUE(empty->empty());
  EXPECT_EQ(s->get(""), std::optional<Value>("for-empty-key"));
  EXPECT_EQ(s->get(std::string("a\0b", 3)), std::optional<Value>(std::string("x\0y", 3)));
  EXPECT_EQ(s->get(std::string("a", 1)), std::nullopt);  // a prefix is a different key
}

TEST(ReaderShard, OpenFailsClearlyOnMissingOrForeignFile) {
  auto dir = test::make_temp_dir("shard-bad");
  shard::SqliteShardOptions o;
  o.path = (dir / "missing.db").string();
  try {
    shard::open_sqlite_shard(o);
    FAIL() << "opened a missing file";
  } catch (const error& e) {
    EXPECT_EQ(e.code(), make_error_code(errc::shard_error));
  }
  { std::ofstream(dir / "junk.db") << "this is not a database at all, just some text....."; }
  o.path = (dir / "junk.db").string();
  EXPECT_THROW(shard::open_sqlite_shard(o), error);
}

TEST(ReaderShard, ScanInChunksCoversHalfOpenRange) {
  auto dir = test::make_temp_dir("shard-scan");
  test::write_kv_shard(dir / "shard.db", sample_rows(50));  // keys 0,2,...,98
  shard::SqliteShardOptions o;
  o.path = (dir / "shard.db").string();
  auto s = shard::open_sqlite_shard(o);
  shard::ScanBounds b;
  b.start = be64(10);
  b.end = be64(21);
  std::vector<std::string> keys;
  for (;;) {
    auto chunk = s->scan(b, 3);
    for (auto& r : chunk) keys.push_back(r.key);
    if (chunk.size() < 3) break;
    b.start = chunk.back().key;
    b.start_exclusive = true;
  }
  std::vector<std::string> want;
  for (int k = 10; k < 21; k += 2) want.push_back(be64(static_cast<std::uint64_t>(k)));
  EXPECT_EQ(keys, want);
  // Unbounded scan returns everything in order.
  auto all = s->scan(shard::ScanBounds{}, 1000);
  ASSERT_EQ(all.size(), 50u);
  EXPECT_EQ(all.front().value, "value-0");
  EXPECT_TRUE(
      std::is_sorted(all.begin(), all.end(), [](auto& a, auto& b) { return a.key < b.key; }));
}

TEST(ReaderShard, ConcurrentLookupsOnOneShardAndBorrowedConnection) {
  auto dir = test::make_temp_dir("shard-mt");
  test::write_kv_shard(dir / "shard.db", sample_rows(1000));
  shard::SqliteShardOptions o;
  o.path = (dir / "shard.db").string();
  o.max_connections = 3;  // fewer than the threads: callers wait for a free connection
  auto s = shard::open_sqlite_shard(o);
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 2000; ++i) {
        int k = (i * 7 + t) % 1000;
        auto v = s->get(be64(static_cast<std::uint64_t>(k) * 2));
        if (!v || *v != "value-" + std::to_string(k)) ++wrong;
      }
    });
  {
    // Raw SQL through a borrowed connection while the threads run.
    auto lease = s->borrow_connection();
    ASSERT_TRUE(lease);
    sqlite3_stmt* st = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2(lease.handle(), "SELECT count(*) FROM kv", -1, &st, nullptr),
              SQLITE_OK);
    ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
    EXPECT_EQ(sqlite3_column_int(st, 0), 1000);
    sqlite3_finalize(st);
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);
}

// A shard file of `rows` sample rows opened with a pool of `max_connections` connections and a
// 20 s checkout timeout (long enough that a test which waits for it fails visibly).
std::shared_ptr<shard::ShardReader> open_pooled_shard(const std::string& tag, int rows,
                                                      std::size_t max_connections) {
  auto dir = test::make_temp_dir(tag);
  test::write_kv_shard(dir / "shard.db", sample_rows(rows));
  shard::SqliteShardOptions o;
  o.path = (dir / "shard.db").string();
  o.max_connections = max_connections;
  o.checkout_timeout = std::chrono::milliseconds(20000);
  return shard::open_sqlite_shard(o);
}

// Connections go back to the returning thread's home slot (no lock on the warm path). A caller
// waiting for a connection (all max_connections in use) must get one as soon as it is returned,
// even though it is parked in another thread's slot: not after checkout_timeout, and not an
// error.
TEST(ReaderShard, ReturnedConnectionServesAWaiterAtOnce_B04) {
  auto s = open_pooled_shard("shard-handover", 10, 1);
  for (int round = 0; round < 3; ++round) {
    auto lease = s->borrow_connection();  // the only connection
    ASSERT_TRUE(lease);
    std::atomic<bool> started{false};
    std::optional<Value> got;
    std::chrono::steady_clock::duration waited{};
    std::thread waiter([&] {
      started = true;
      const auto t0 = std::chrono::steady_clock::now();
      got = s->get(be64(4));
      waited = std::chrono::steady_clock::now() - t0;
    });
    while (!started) std::this_thread::yield();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    lease = {};  // returned on this thread: parked in its home slot, then handed over
    waiter.join();
    EXPECT_EQ(got, std::optional<Value>("value-2"));
    EXPECT_LT(waited, std::chrono::seconds(10)) << "round " << round;
    // The connection now sits in the waiter's (finished) thread's slot; this thread still gets it.
    EXPECT_EQ(s->get(be64(6)), std::optional<Value>("value-3"));
  }
}

// More threads than home slots and fewer connections than threads: every lookup is right and
// nothing waits for checkout_timeout (the pool never reports exhaustion while connections come
// back).
TEST(ReaderShard, ManyThreadsShareFewConnections) {
  auto s = open_pooled_shard("shard-many", 500, 2);
  std::atomic<int> wrong{0}, failed{0};
  std::vector<std::thread> threads;
  const auto t0 = std::chrono::steady_clock::now();
  for (int t = 0; t < 12; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 500; ++i) {
        const int k = (i * 13 + t) % 500;
        try {
          auto v = s->get(be64(static_cast<std::uint64_t>(k) * 2));
          if (!v || *v != "value-" + std::to_string(k)) ++wrong;
        } catch (const error&) {
          ++failed;
        }
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(failed.load(), 0);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(15));
}

// --- download-and-cache ---------------------------------------------------------------------

struct CacheFixture {
  fs::path objects_root = test::make_temp_dir("cache-objects");
  fs::path cache_root = objects_root / "cache";
  std::shared_ptr<test::DirObjectStore> store =
      std::make_shared<test::DirObjectStore>(objects_root);
  asio::io_context io;
  std::shared_ptr<spdlog::logger> logger =
      std::make_shared<spdlog::logger>("test", std::make_shared<spdlog::sinks::null_sink_mt>());

  ShardMeta write_shard(std::uint32_t db_id, const std::string& run, int rows) {
    auto url = "s3://bucket/snap/shards/run_id=" + run + "/db=0000" + std::to_string(db_id) +
               "/attempt=00";
    auto file = store->path_of(url + "/shard.db");
    test::write_kv_shard(file, sample_rows(rows));
    ShardMeta m;
    m.db_id = db_id;
    m.db_url = url;
    m.checkpoint_id = "ckpt-" + run;
    m.db_bytes = static_cast<std::int64_t>(fs::file_size(file));
    m.row_count = rows;
    return m;
  }

  shard::ShardOpenContext context(const ShardMeta& m) {
    shard::ShardOpenContext c;
    c.executor = io.get_executor();
    c.objects = store;
    c.meta = m;
    c.db_object = *m.db_url + "/shard.db";
    c.logger = logger;
    return c;
  }

  std::shared_ptr<shard::ShardReader> open(shard::ShardFactory& f, const ShardMeta& m) {
    auto fut = asio::co_spawn(io, f.open(context(m)), asio::use_future);
    io.restart();
    io.run();
    return fut.get();
  }
};

shard::DownloadCacheOptions cache_options(const fs::path& root) {
  shard::DownloadCacheOptions o;
  o.root = root;
  return o;
}

TEST(ReaderDownloadCache, SecondOpenDownloadsNothing_M03) {
  CacheFixture f;
  auto m = f.write_shard(0, "r1", 200);
  {
    auto factory = shard::make_download_shard_factory(cache_options(f.cache_root));
    auto s = f.open(*factory, m);
    EXPECT_EQ(s->get(be64(4)), std::optional<Value>("value-2"));
    EXPECT_EQ(f.store->downloads.load(), 1);
    auto s2 = f.open(*factory, m);  // same process, same entry
    EXPECT_EQ(s2->get(be64(6)), std::optional<Value>("value-3"));
    EXPECT_EQ(f.store->downloads.load(), 1);
  }
  // "Restart": a new factory over the same directory finds the complete entry.
  auto factory = shard::make_download_shard_factory(cache_options(f.cache_root));
  auto s = f.open(*factory, m);
  EXPECT_EQ(s->get(be64(8)), std::optional<Value>("value-4"));
  EXPECT_EQ(f.store->downloads.load(), 1);
  auto dir = shard::cache_entry_dir(f.cache_root, *m.db_url, *m.checkpoint_id);
  EXPECT_TRUE(fs::exists(dir / "shard.db"));
  auto identity = test::read_file(dir / "identity.json");
  EXPECT_NE(identity.find(*m.db_url), std::string::npos);
  EXPECT_NE(identity.find("etag-"), std::string::npos);  // the ETag is recorded
  // A different checkpoint id is a different entry: downloaded again.
  m.checkpoint_id = "other";
  f.open(*factory, m);
  EXPECT_EQ(f.store->downloads.load(), 2);
}

TEST(ReaderDownloadCache, SizeMismatchIsAnErrorAndLeavesNothing) {
  CacheFixture f;
  auto m = f.write_shard(1, "r1", 50);
  m.db_bytes += 1;
  auto factory = shard::make_download_shard_factory(cache_options(f.cache_root));
  try {
    f.open(*factory, m);
    FAIL();
  } catch (const error& e) {
    EXPECT_EQ(e.code(), make_error_code(errc::shard_error)) << e.what();
  }
  auto dir = shard::cache_entry_dir(f.cache_root, *m.db_url, *m.checkpoint_id);
  EXPECT_FALSE(fs::exists(dir / "shard.db"));
  for (auto& e : fs::directory_iterator(dir))
    EXPECT_EQ(e.path().filename().string().find(".tmp."), std::string::npos) << e.path();
}

// Records the thread of the metrics events the download tier reports around its finalisation.
struct ThreadRecordingMetrics final : MetricsSink {
  std::mutex mu;
  std::vector<std::thread::id> progress_threads, download_threads;
  void on_shard_download_progress(std::uint32_t, std::uint64_t, std::uint64_t) override {
    std::lock_guard lk(mu);
    progress_threads.push_back(std::this_thread::get_id());
  }
  void on_shard_download(std::uint32_t, std::uint64_t, std::chrono::nanoseconds) override {
    std::lock_guard lk(mu);
    download_threads.push_back(std::this_thread::get_id());
  }
};

// Finalising a download (size check, fsync, identity file, rename) blocks on the disk: with a
// blocking executor it runs there, not on the io thread that serves S3, and the coroutine comes
// back to the io executor afterwards: the download itself reports progress on the io thread, a
// size mismatch fails on the pool (the factory's exception is thrown there: seen by a coroutine
// that awaits the open and records its thread and code; the exception itself stays on that
// thread, which ThreadSanitizer needs: tools/tsan.sh), and on_shard_download comes after the
// hop back.
// In a reader: ReaderFixture.DownloadFinalisationRunsOffTheIoThreads.
TEST(ReaderDownloadCache, FinalisationRunsOnTheBlockingExecutor) {
  CacheFixture f;
  asio::thread_pool blocking(1);
  std::promise<std::thread::id> probe;
  asio::post(blocking, [&probe] { probe.set_value(std::this_thread::get_id()); });
  const std::thread::id pool_thread = probe.get_future().get();
  const std::thread::id io_thread = std::this_thread::get_id();  // f.io runs here
  auto metrics = std::make_shared<ThreadRecordingMetrics>();
  auto factory = shard::make_download_shard_factory(cache_options(f.cache_root));
  std::thread::id failed_on;
  error_code failed_code;
  auto open = [&](const ShardMeta& m) {
    auto c = f.context(m);
    c.blocking_executor = blocking.get_executor();
    c.metrics = metrics;
    auto body =
        [&](shard::ShardOpenContext ctx) -> asio::awaitable<std::shared_ptr<shard::ShardReader>> {
      try {
        co_return co_await factory->open(std::move(ctx));
      } catch (const error& e) {
        failed_on = std::this_thread::get_id();
        failed_code = e.code();
      }
      co_return nullptr;
    };
    auto fut = asio::co_spawn(f.io, body(std::move(c)), asio::use_future);
    // Run the io executor here until the open is done (it may be out of work for a moment while
    // the coroutine is on the blocking pool); bounded.
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (fut.wait_for(std::chrono::seconds(0)) != std::future_status::ready &&
           std::chrono::steady_clock::now() < until) {
      f.io.restart();
      f.io.run_for(std::chrono::milliseconds(10));
    }
    EXPECT_EQ(fut.wait_for(std::chrono::seconds(0)), std::future_status::ready);
    return fut;
  };

  auto bad = f.write_shard(6, "r1", 50);
  bad.db_bytes += 1;  // fails the size check of the finalisation
  auto failed = open(bad);
  EXPECT_EQ(failed.get(), nullptr);
  EXPECT_TRUE(failed_code) << "the size mismatch did not fail the open";
  EXPECT_EQ(failed_on, pool_thread) << "finalised on the io thread";

  auto good = f.write_shard(7, "r1", 50);
  auto opened = open(good);
  auto s = opened.get();
  EXPECT_EQ(s->get(be64(2)), std::optional<Value>("value-1"));
  std::lock_guard lk(metrics->mu);
  ASSERT_FALSE(metrics->progress_threads.empty());
  for (auto t : metrics->progress_threads)
    EXPECT_EQ(t, io_thread) << "downloaded off the io thread";
  ASSERT_EQ(metrics->download_threads.size(), 1u);
  EXPECT_EQ(metrics->download_threads[0], io_thread) << "not back on the io executor";
  blocking.join();
}

TEST(ReaderDownloadCache, DiskFullLeavesNothingCorrupt) {
  CacheFixture f;
  auto m = f.write_shard(2, "r1", 300);
  f.store->fail_download_with = static_cast<int>(errc::disk_full);
  auto factory = shard::make_download_shard_factory(cache_options(f.cache_root));
  try {
    f.open(*factory, m);
    FAIL();
  } catch (const error& e) {
    EXPECT_EQ(e.code(), make_error_code(errc::disk_full)) << e.what();
  }
  auto dir = shard::cache_entry_dir(f.cache_root, *m.db_url, *m.checkpoint_id);
  ASSERT_TRUE(fs::exists(dir));
  for (auto& e : fs::directory_iterator(dir)) {
    auto name = e.path().filename().string();
    EXPECT_TRUE(name == ".lock") << "left behind: " << name;
  }
  // Space comes back: the next open succeeds.
  f.store->fail_download_with = 0;
  auto s = f.open(*factory, m);
  EXPECT_EQ(s->get(be64(0)), std::optional<Value>("value-0"));
}

TEST(ReaderDownloadCache, UnwritableCacheIsAnIoError) {
  CacheFixture f;
  auto m = f.write_shard(3, "r1", 10);
  std::ofstream(f.objects_root / "plainfile") << "x";
  auto factory = shard::make_download_shard_factory(cache_options(f.objects_root / "plainfile"));
  try {
    f.open(*factory, m);
    FAIL();
  } catch (const error& e) {
    EXPECT_EQ(e.code(), make_error_code(errc::io_error)) << e.what();
  }
}

TEST(ReaderDownloadCache, RetireRemovesOnlyUnusedEntries_M05) {
  CacheFixture f;
  auto m = f.write_shard(4, "r1", 10);
  auto factory = shard::make_download_shard_factory(cache_options(f.cache_root));
  auto dir = shard::cache_entry_dir(f.cache_root, *m.db_url, *m.checkpoint_id);
  auto s = f.open(*factory, m);
  factory->retire(m);  // still open here: kept
  EXPECT_TRUE(fs::exists(dir / "shard.db"));
  EXPECT_EQ(s->get(be64(2)), std::optional<Value>("value-1"));
  s.reset();
  factory->retire(m);
  EXPECT_FALSE(fs::exists(dir));
}

TEST(ReaderDownloadCache, ProcessesSharingACacheDownloadOnce_M03) {
  CacheFixture f;
  auto m = f.write_shard(5, "r1", 2000);
  // Four child processes open the same shard at once; the store counts per process, so each
  // child reports through its exit status whether it downloaded.
  std::vector<pid_t> kids;
  for (int i = 0; i < 4; ++i) {
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      int code = 0;
      try {
        asio::io_context io;
        auto store = std::make_shared<test::DirObjectStore>(f.objects_root);
        auto factory = shard::make_download_shard_factory(cache_options(f.cache_root));
        shard::ShardOpenContext c;
        c.executor = io.get_executor();
        c.objects = store;
        c.meta = m;
        c.db_object = *m.db_url + "/shard.db";
        c.logger = f.logger;
        auto fut = asio::co_spawn(io, factory->open(c), asio::use_future);
        io.run();
        auto s = fut.get();
        code = s->get(be64(10)) == std::optional<Value>("value-5") ? 0 : 3;
        if (code == 0) code = store->downloads.load() == 1 ? 10 : 0;
      } catch (...) {
        code = 4;
      }
      ::_exit(code);
    }
    kids.push_back(pid);
  }
  int downloaded = 0;
  for (pid_t k : kids) {
    int status = 0;
    ::waitpid(k, &status, 0);
    ASSERT_TRUE(WIFEXITED(status));
    int code = WEXITSTATUS(status);
    ASSERT_TRUE(code == 0 || code == 10) << "child failed with " << code;
    downloaded += code == 10;
  }
  EXPECT_EQ(downloaded, 1);
}

}  // namespace
}  // namespace shardy
