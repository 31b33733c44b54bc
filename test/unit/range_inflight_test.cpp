// In-flight de-duplication of concurrent page misses in the range tier: N reads that miss the
// same page while its request is in flight share that one GET (issue 5), reads of different
// pages do not wait for each other, a failed shared request fails every read waiting on it (and
// leaves nothing behind: the next read sends a new GET), and it works with the LRU disabled.
// Deterministic: the store holds GETs at a gate until the test has seen the other reads join.
// tools/tsan.sh runs these (RangeInflight.*) under ThreadSanitizer.
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <chrono>
#include <future>
#include <map>
#include <optional>
#include <thread>

#include "range_io_thread.hpp"
#include "range_test_support.hpp"
#include "shard/range_source.hpp"

namespace shardy::test {
namespace {

using namespace std::chrono_literals;
using shard::RangeSource;
using shard::RangeSourceOptions;

// A MemoryStore whose GETs wait (asynchronously, on the io thread) while the gate is closed.
class GatedStore final : public MemoryStore {
 public:
  std::atomic<bool> closed{false};
  std::atomic<int> held{0};  // GETs that arrived while closed

  boost::asio::awaitable<GetResult> get(std::string url, GetOptions options = {}) override {
    if (closed) {
      ++held;
      auto ex = co_await boost::asio::this_coro::executor;
      boost::asio::steady_timer t(ex);
      while (closed) {
        t.expires_after(1ms);
        co_await t.async_wait(boost::asio::use_awaitable);
      }
    }
    co_return co_await MemoryStore::get(std::move(url), std::move(options));
  }
};

template <class Pred>
bool wait_for(Pred p) {
  for (int i = 0; i < 10000 && !p(); ++i) std::this_thread::sleep_for(1ms);
  return p();
}

class RangeInflight : public ::testing::Test {
 public:
  void SetUp() override { open_source(1024); }
  void open_source(std::size_t cache_pages) {
    store = std::make_shared<GatedStore>();
    store->load_fixtures("snapshots/kv_small");
    for (const auto& d : fixture_shard_dirs())
      if (d.string().find("/kv_small/") != std::string::npos) dir = d;
    ASSERT_FALSE(dir.empty());
    RangeSourceOptions o;
    o.db_object = fixture_url(dir / "shard.db");
    o.sidecar_object = fixture_url(dir / "shard.sidecar");
    o.page_cache_pages = cache_pages;
    src = boost::asio::co_spawn(io.io, RangeSource::open(store, io.io.get_executor(), o),
                                boost::asio::use_future)
              .get();
    file = read_file(dir / "shard.db");
    ps = src->page_size();
    // Pages the sidecar did not prime (leaves): the last ones of the file.
    for (auto p = static_cast<std::uint32_t>(file.size() / ps); p >= 2 && uncached.size() < 2; --p)
      if (!src->cache().contains(p)) uncached.push_back(p);
    ASSERT_EQ(uncached.size(), 2u);
    store->clear_requests();
  }

  std::string page_bytes(std::uint32_t p) const { return file.substr((p - 1) * ps, ps); }
  std::size_t read_page(std::uint32_t p, std::string& out) {
    out.assign(ps, '\0');
    return src->read(out.data(), ps, std::uint64_t(p - 1) * ps);
  }
  // Reads page p on this thread and checks its bytes.
  void read_and_check_page(std::uint32_t p) {
    std::string out;
    read_page(p, out);
    EXPECT_EQ(out, page_bytes(p));
  }
  // Reads page p; the code of the shardy::error it fails with, if it does, goes into `e`.
  void read_page_noting_error(std::uint32_t p, std::optional<error_code>& e) {
    std::string out;
    try {
      read_page(p, out);
    } catch (const shardy::error& x) {
      e = x.code();
    }
  }

  IoThread io;
  std::shared_ptr<GatedStore> store;
  std::filesystem::path dir;
  std::shared_ptr<RangeSource> src;
  std::string file;
  std::uint32_t ps = 0;
  std::vector<std::uint32_t> uncached;
};

// N threads miss one page: the first sends the GET, the other N-1 join it (counted), 1 request.
void n_misses_share_one_get(RangeInflight& t, std::size_t n) {
  const std::uint32_t p = t.uncached[0];
  t.store->closed = true;
  std::vector<std::string> out(n);
  std::vector<std::thread> threads;
  threads.emplace_back([&] { t.read_page(p, out[0]); });
  ASSERT_TRUE(wait_for([&] { return t.store->held.load() == 1; }));
  for (std::size_t i = 1; i < n; ++i) threads.emplace_back([&, i] { t.read_page(p, out[i]); });
  const bool joined = wait_for([&] { return t.src->metrics().inflight_joins == n - 1; });
  t.store->closed = false;
  for (auto& th : threads) th.join();
  EXPECT_TRUE(joined) << t.src->metrics().inflight_joins;
  EXPECT_EQ(t.src->metrics().inflight_joins, n - 1);
  for (auto& o : out) EXPECT_EQ(o, t.page_bytes(p));
  EXPECT_EQ(t.store->held.load(), 1);
  EXPECT_EQ(t.store->requests().size(), 1u);  // one GET for all n reads
  EXPECT_EQ(t.src->metrics().page_requests, 1u);
}

TEST_F(RangeInflight, TwoMissesOfOnePageShareOneGet) {
  n_misses_share_one_get(*this, 2);
  // Now cached: a third read costs nothing.
  read_and_check_page(uncached[0]);
  EXPECT_EQ(store->requests().size(), 1u);
}

TEST_F(RangeInflight, EightThreadsMissingOnePageCauseOneRequest) {
  n_misses_share_one_get(*this, 8);
}

TEST_F(RangeInflight, SharedGetWithTheLruDisabled) {
  open_source(0);
  n_misses_share_one_get(*this, 4);
  // Nothing is cached: the next read of that page is a new request.
  read_and_check_page(uncached[0]);
  EXPECT_EQ(store->requests().size(), 2u);
}

TEST_F(RangeInflight, MissesOfDifferentPagesDoNotWaitForEachOther) {
  store->closed = true;
  std::string a, b;
  std::thread ta([&] { read_page(uncached[0], a); });
  ASSERT_TRUE(wait_for([&] { return store->held.load() == 1; }));
  std::thread tb([&] { read_page(uncached[1], b); });
  // The second read sends its own GET (it does not join the first).
  EXPECT_TRUE(wait_for([&] { return store->held.load() == 2; }));
  store->closed = false;
  ta.join();
  tb.join();
  EXPECT_EQ(a, page_bytes(uncached[0]));
  EXPECT_EQ(b, page_bytes(uncached[1]));
  EXPECT_EQ(src->metrics().inflight_joins, 0u);
  EXPECT_EQ(store->requests().size(), 2u);
}

TEST_F(RangeInflight, AFailedSharedGetFailsEveryWaitingRead) {
  const std::uint32_t p = uncached[0];
  store->closed = true;
  constexpr std::size_t n = 4;
  std::vector<std::optional<error_code>> errors(n);
  std::vector<std::thread> threads;
  threads.emplace_back([&] { read_page_noting_error(p, errors[0]); });
  ASSERT_TRUE(wait_for([&] { return store->held.load() == 1; }));
  for (std::size_t i = 1; i < n; ++i)
    threads.emplace_back([&, i] { read_page_noting_error(p, errors[i]); });
  const bool joined = wait_for([&] { return src->metrics().inflight_joins == n - 1; });
  // The object changes under the reader: the held GET (If-Match) fails.
  store->set(fixture_url(dir / "shard.db"), file + "x");
  store->closed = false;
  for (auto& th : threads) th.join();
  EXPECT_TRUE(joined);
  for (auto& e : errors) {
    ASSERT_TRUE(e);
    EXPECT_EQ(*e, make_error_code(errc::shard_changed));
  }
  EXPECT_EQ(store->requests().size(), 1u);
}

// A shared GET that fails with a transient error (here: the object is briefly gone) wakes its
// waiters with that error and leaves nothing in flight: the next read sends a new GET and works.
TEST_F(RangeInflight, AfterAFailedSharedGetTheNextReadFetchesAgain) {
  const std::uint32_t p = uncached[0];
  store->closed = true;
  std::optional<error_code> ea, eb;
  std::thread ta([&] { read_page_noting_error(p, ea); });
  ASSERT_TRUE(wait_for([&] { return store->held.load() == 1; }));
  std::thread tb([&] { read_page_noting_error(p, eb); });
  const bool joined = wait_for([&] { return src->metrics().inflight_joins == 1; });
  store->remove_now(fixture_url(dir / "shard.db"));
  store->closed = false;
  ta.join();
  tb.join();
  EXPECT_TRUE(joined);
  ASSERT_TRUE(ea && eb);
  EXPECT_EQ(*ea, make_error_code(errc::object_not_found));
  EXPECT_EQ(*eb, make_error_code(errc::object_not_found));
  EXPECT_EQ(store->requests().size(), 1u);

  store->set(fixture_url(dir / "shard.db"), file);  // back, same bytes and ETag
  read_and_check_page(p);
  EXPECT_EQ(store->requests().size(), 2u);
}

// Many threads reading every leaf page at once, in different orders: every byte right, and no
// page requested twice (pages are cached before their request leaves the in-flight table, and
// the LRU holds the whole file).
TEST_F(RangeInflight, ConcurrentReadsOfAllPagesFetchEachPageOnce) {
  const auto pages = static_cast<std::uint32_t>(file.size() / ps);
  std::vector<std::uint32_t> leaves;
  for (std::uint32_t p = 1; p <= pages; ++p)
    if (!src->cache().contains(p)) leaves.push_back(p);
  ASSERT_GE(leaves.size(), 4u);
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (std::uint32_t t = 0; t < 6; ++t)
    threads.emplace_back([&, t] {
      for (std::size_t i = 0; i < leaves.size(); ++i) {
        // threads 0-2 forwards from different starts, 3-5 backwards
        const std::size_t k =
            (t < 3 ? i + t * leaves.size() / 3 : leaves.size() * 2 - i - t) % leaves.size();
        std::string out;
        read_page(leaves[k], out);
        if (out != page_bytes(leaves[k])) ++wrong;
      }
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0);
  std::map<std::uint64_t, int> offsets;
  for (auto& r : store->requests()) offsets[r.range ? r.range->offset : ~0ull] += 1;
  for (auto& [off, n] : offsets) EXPECT_EQ(n, 1) << "offset " << off;
  const auto m = src->metrics();
  EXPECT_EQ(m.pages_fetched, leaves.size());
  EXPECT_EQ(m.page_requests, store->requests().size());
}

// The Reader's io threads are a thread_pool: a page read there (which would wait for a GET that
// needs those very threads) fails at once with would_deadlock, like on an io_context thread.
TEST(RangeInflightIo, ReadOnAThreadPoolIoThreadFailsInsteadOfDeadlocking) {
  auto store = std::make_shared<MemoryStore>();
  store->load_fixtures("snapshots/kv_small");
  std::filesystem::path dir;
  for (const auto& d : fixture_shard_dirs())
    if (d.string().find("/kv_small/") != std::string::npos) dir = d;
  ASSERT_FALSE(dir.empty());
  boost::asio::thread_pool pool(1);
  RangeSourceOptions o;
  o.db_object = fixture_url(dir / "shard.db");
  auto src = boost::asio::co_spawn(pool, RangeSource::open(store, pool.get_executor(), o),
                                   boost::asio::use_future)
                 .get();
  EXPECT_EQ(read_failure_on(pool.get_executor(), *src), errc::would_deadlock);
  // Off the pool the same read works.
  std::string page(src->page_size(), '\0');
  EXPECT_EQ(src->read(page.data(), page.size(), std::uint64_t(src->page_size()) * 2), page.size());
  pool.join();
}

}  // namespace
}  // namespace shardy::test
