// The reader's warm lookup path: allocation-free routing agrees with Router::route_lookup
// (interop spec 3.1-3.3), async_get completes through a deferred hop, never inline (D rows), and
// lock-free snapshot pins survive refreshes that retire and delete the old state (H-11, B-05).
#include <gtest/gtest.h>

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <functional>
#include <future>
#include <random>
#include <shardy/async_reader.hpp>
#include <shardy/reader.hpp>
#include <thread>

#include "reader/reader_core.hpp"
#include "reader_snapshot_util.hpp"
#include "support/test_support.hpp"

namespace shardy {
namespace {

namespace asio = boost::asio;

// Every key the fast path takes must route and encode exactly as Router::route_lookup; every key
// it declines must be one route_lookup either rejects or encodes differently than it could.
TEST(ReaderWarmPath, FastRoutingMatchesRouteLookup) {
  std::mt19937_64 rng(7);
  std::vector<Key> keys;
  for (std::int64_t v : {0LL, 1LL, 42LL, 255LL, 256LL, 4294967295LL, 4294967296LL,
                         9223372036854775807LL, -1LL, -42LL})
    keys.push_back(Key::integer(v));
  keys.push_back(Key::unsigned_integer(18446744073709551615ull));
  keys.push_back(Key::unsigned_integer(9223372036854775808ull));
  for (int i = 0; i < 2000; ++i) {
    keys.push_back(Key::integer(static_cast<std::int64_t>(rng() >> (i % 64))));
    keys.push_back(Key::integer(static_cast<std::int64_t>(rng())));  // about half negative
  }
  for (const std::string& s :
       std::vector<std::string>{"", "a", "user:42", std::string("\0\0", 2), std::string(999, 'x'),
                                std::string("12345678")}) {
    keys.push_back(Key::text(s));
    keys.push_back(Key::bytes(s));
  }
  int fast = 0, declined = 0;
  for (auto enc : {KeyEncoding::u64be, KeyEncoding::u32be, KeyEncoding::utf8, KeyEncoding::raw}) {
    for (std::uint32_t n : {1u, 5u, 8u, 64u, 100u}) {
      Router router(n, enc);
      for (auto& k : keys) {
        char buf[8];
        detail::LookupRoute lr;
        error_code ec;
        auto rr = router.route_lookup(k, ec);
        if (detail::route_lookup_fast(router, k, buf, lr)) {
          ++fast;
          ASSERT_FALSE(ec) << k.to_string() << " " << to_string(enc);
          EXPECT_EQ(lr.db_id, rr.db_id) << k.to_string() << " " << to_string(enc) << " " << n;
          EXPECT_EQ(std::string(lr.storage_key), rr.storage_key) << k.to_string();
        } else {
          ++declined;
          // Declined cases are errors, or the pass-through of 8/4-byte bytes keys (u64be/u32be).
          EXPECT_TRUE(ec ||
                      (k.is_bytes() && (enc == KeyEncoding::u64be || enc == KeyEncoding::u32be)))
              << k.to_string() << " " << to_string(enc);
        }
      }
    }
  }
  EXPECT_GT(fast, 10000);
  EXPECT_GT(declined, 1000);
}

using test::rows_for;
using test::use_blocking;

struct WarmPathFixture : test::AsyncSnapshotTest {
  WarmPathFixture() : AsyncSnapshotTest("warm") {}

  ReaderOptions options() const {
    auto o = AsyncSnapshotTest::options();
    o.shard_open = ShardOpenPolicy::eager;
    return o;
  }
};

// A warm async_get initiated from one of the reader's own threads (where a deferred completion
// lands in that thread's private queue) must still not run its handler inside async_get, and
// must run it on the handler's associated executor (a strand here), else on the reader's.
TEST_F(WarmPathFixture, AsyncGetNeverCompletesInline) {
  snap.manifests->set_current_ref(snap.publish("run1", 4, rows_for(0, 50, "A")));
  auto reader = open_async(options());
  auto strand = asio::make_strand(pool.get_executor());
  std::promise<void> done;
  std::atomic<int> inline_calls{0}, completions{0}, wrong_executor{0}, wrong_value{0};
  asio::post(pool, [&] {
    const int n = 20;
    for (int i = 0; i < n; ++i) {
      // Plain callbacks (no associated executor): they run on the reader's executor.
      auto in_call = std::make_shared<std::atomic<bool>>(true);
      reader.async_get(Key::integer(i), [&, i, in_call, caller = std::this_thread::get_id()](
                                            error_code ec, std::optional<Value> v) {
        if (*in_call && std::this_thread::get_id() == caller) ++inline_calls;
        if (ec || !v || *v != "A:" + std::to_string(i)) ++wrong_value;
        if (!pool.get_executor().running_in_this_thread()) ++wrong_executor;
        if (++completions == 2 * n) done.set_value();
      });
      *in_call = false;
      // Callbacks bound to a strand run on that strand.
      auto in_call2 = std::make_shared<std::atomic<bool>>(true);
      auto on_strand = [&, i, in_call2, caller = std::this_thread::get_id()](
                           error_code ec, std::optional<Value> v) {
        if (*in_call2 && std::this_thread::get_id() == caller) ++inline_calls;
        if (ec || !v || *v != "A:" + std::to_string(i)) ++wrong_value;
        if (!strand.running_in_this_thread()) ++wrong_executor;
        if (++completions == 2 * n) done.set_value();
      };
      reader.async_get(Key::integer(i), asio::bind_executor(strand, on_strand));
      *in_call2 = false;
    }
  });
  ASSERT_EQ(done.get_future().wait_for(std::chrono::seconds(30)), std::future_status::ready);
  EXPECT_EQ(inline_calls.load(), 0);
  EXPECT_EQ(wrong_executor.load(), 0);
  EXPECT_EQ(wrong_value.load(), 0);
  reader.close();
}

// Coroutines awaiting warm lookups resume on their own executor, whatever it is: the thread pool
// itself and an io_context (whose hop skips the type-erased executor calls), a strand of the pool
// (which keeps the generic path), with and without a routing context. A handler posted just
// before each lookup runs before the coroutine resumes: the completion is a real hop through the
// executor's queue, never inline.
TEST_F(WarmPathFixture, AwaitedGetResumesOnTheCoroutinesExecutorAfterAHop) {
  snap.manifests->set_current_ref(snap.publish("run1", 4, rows_for(0, 50, "A")));
  auto reader = open_async(options());
  asio::io_context io;
  auto strand = asio::make_strand(pool.get_executor());
  std::atomic<int> wrong_value{0}, wrong_executor{0}, not_hopped{0}, done{0};
  // `on` answers whether the current thread runs the coroutine's executor; `mark` posts a
  // handler to it that sets the flag.
  auto worker = [&](std::function<bool()> on,
                    std::function<void(std::atomic<bool>*)> mark) -> asio::awaitable<void> {
    for (int i = 0; i < 50; ++i) {
      std::atomic<bool> marked{false};
      mark(&marked);
      auto key = Key::integer(i);
      std::optional<Value> v;
      if (i % 2) {
        auto v1 = co_await reader.async_get(std::move(key));
        v = std::move(v1);
      } else {
        RoutingContext none;
        auto v2 = co_await reader.async_get(std::move(key), std::move(none));
        v = std::move(v2);
      }
      if (!v || *v != "A:" + std::to_string(i)) ++wrong_value;
      if (!on()) ++wrong_executor;
      if (!marked.load()) ++not_hopped;
    }
    ++done;
  };
  auto io_ex = io.get_executor();
  auto on_io = [io_ex] { return io_ex.running_in_this_thread(); };
  auto mark_io = [io_ex](std::atomic<bool>* f) { asio::post(io_ex, [f] { f->store(true); }); };
  auto on_strand = [strand] { return strand.running_in_this_thread(); };
  auto mark_strand = [strand](std::atomic<bool>* f) {
    asio::post(strand, [f] { f->store(true); });
  };
  auto f_io = asio::co_spawn(io, worker(on_io, mark_io), asio::use_future);
  auto f_strand = asio::co_spawn(strand, worker(on_strand, mark_strand), asio::use_future);
  // On the 2-thread pool the marker may run on the other thread at any time, so only the
  // executor is checked there; the hop itself is checked on the single-threaded io_context and on
  // the strand (both run their handlers in order).
  auto pool_ex = pool.get_executor();
  auto on_pool = [pool_ex] { return pool_ex.running_in_this_thread(); };
  auto mark_pool = [](std::atomic<bool>* f) { f->store(true); };
  auto f_pool = asio::co_spawn(pool, worker(on_pool, mark_pool), asio::use_future);
  std::thread io_thread([&] { io.run(); });
  ASSERT_EQ(f_io.wait_for(std::chrono::seconds(30)), std::future_status::ready);
  ASSERT_EQ(f_strand.wait_for(std::chrono::seconds(30)), std::future_status::ready);
  ASSERT_EQ(f_pool.wait_for(std::chrono::seconds(30)), std::future_status::ready);
  io_thread.join();
  f_io.get();
  f_strand.get();
  f_pool.get();
  EXPECT_EQ(done.load(), 3);
  EXPECT_EQ(wrong_value.load(), 0);
  EXPECT_EQ(wrong_executor.load(), 0);
  EXPECT_EQ(not_hopped.load(), 0);
  reader.close();
}

// Coroutines looking keys up through the warm path while another thread keeps refreshing between
// two snapshots whose retired shard files are deleted: every answer belongs to one snapshot, and
// (under ASan) no lookup touches a retired state.
TEST_F(WarmPathFixture, AsyncGetsDuringRefreshesBelongToOneSnapshot_H11) {
  const auto [a, b] = publish_a_and_b(100);
  auto o = options();
  o.remove_retired_shards = true;
  auto reader = open_async(o);
  std::atomic<bool> stop{false};
  std::atomic<int> bad{0}, answers{0};
  auto worker = [&](int c) -> asio::awaitable<void> {
    int i = c;
    while (!stop.load()) {
      i = (i * 31 + 7) % 100;
      auto key = Key::integer(i);
      auto v = co_await reader.async_get(std::move(key));
      if (!v || (*v != "A:" + std::to_string(i) && *v != "B:" + std::to_string(i))) ++bad;
      ++answers;
    }
  };
  std::vector<std::future<void>> workers;
  for (int c = 0; c < 8; ++c) workers.push_back(asio::co_spawn(pool, worker(c), asio::use_future));
  int changed = 0;
  for (int r = 0; r < 30; ++r) {
    const int seen = answers.load();
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (answers.load() < seen + 20 && std::chrono::steady_clock::now() < until)
      std::this_thread::yield();
    snap.manifests->set_current_ref(r % 2 ? a : b);
    changed += reader.async_refresh(use_blocking) ? 1 : 0;
  }
  stop = true;
  for (auto& w : workers) w.get();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(changed, 30);
  EXPECT_GE(answers.load(), 600);
  reader.close();
}

}  // namespace
}  // namespace shardy
