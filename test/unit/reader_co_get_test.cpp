// AsyncReader::co_get: the awaitable lookup for asio::awaitable coroutines. A warm local shard
// answers without a round trip through the coroutine's executor (no yield); every other case is
// async_get, with its answers and errors (C-03, D-04, E-09, A-18). (An unopened reader's co_get is
// its async_get: completed from a system thread, which this io_context-based test leaves out.)
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_future.hpp>
#include <shardy/async_reader.hpp>
#include <shardy/rate_limiter.hpp>

#include "reader_snapshot_util.hpp"
#include "support/test_support.hpp"

namespace shardy {
namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;

struct CoGetFixture : ::testing::Test {
  fs::path root = test::make_temp_dir("co-get");
  test::SnapshotWriter snap{root / "objects"};
  asio::thread_pool pool{2};
  // The coroutines' executor. Destroyed after ~CoGetFixture joined the pool: a pool thread that
  // completed an async_get has then surely finished posting to it.
  asio::io_context io;

  CoGetFixture() {
    auto rows = test::rows_for(0, 50, "A");
    rows[60] = "";  // an empty value, distinct from an absent key (D-04)
    snap.manifests->set_current_ref(snap.publish("run1", 4, rows));
  }
  ~CoGetFixture() override { pool.join(); }

  ReaderOptions options(ShardOpenPolicy policy) {
    auto o = snap.reader_options(root / "cache");
    o.shard_open = policy;
    return o;
  }
};

// What one co_get did, seen from the coroutine: the answer (or error), and whether a handler
// posted to the coroutine's io_context just before it ran before the coroutine continued, i.e.
// whether the call went through the executor's queue.
struct Outcome {
  std::optional<Value> value;
  error_code ec;
  bool yielded = false;
};

asio::awaitable<Outcome> observe(asio::io_context& io, const AsyncReader& reader, Key key,
                                 RoutingContext ctx = {}) {
  Outcome out;
  bool ran = false;
  asio::post(io, [&ran] { ran = true; });
  try {
    if (ctx.empty())
      out.value = co_await reader.co_get(std::move(key));
    else
      out.value = co_await reader.co_get(std::move(key), std::move(ctx));
  } catch (const boost::system::system_error& e) {
    out.ec = e.code();
  }
  out.yielded = ran;
  co_return out;
}

// Runs `body` as a coroutine on a fresh single-threaded io_context and returns its result.
template <typename T>
T run_on_io(asio::io_context& io, asio::awaitable<T> body) {
  auto f = asio::co_spawn(io, std::move(body), asio::use_future);
  io.run();
  io.restart();
  return f.get();
}

TEST_F(CoGetFixture, WarmLocalShardAnswersWithoutYielding_D04) {
  auto reader = test::open_async(pool, snap.prefix, options(ShardOpenPolicy::eager));
  for (int k : {0, 7, 49}) {
    auto o = run_on_io(io, observe(io, reader, Key::integer(k)));
    EXPECT_FALSE(o.ec) << o.ec.message();
    EXPECT_EQ(o.value, std::optional<Value>("A:" + std::to_string(k)));
    EXPECT_FALSE(o.yielded) << "key " << k << ": a warm co_get went through the executor";
  }
  auto absent = run_on_io(io, observe(io, reader, Key::integer(1000)));
  EXPECT_FALSE(absent.ec);
  EXPECT_EQ(absent.value, std::nullopt);
  EXPECT_FALSE(absent.yielded);
  auto empty = run_on_io(io, observe(io, reader, Key::integer(60)));
  ASSERT_TRUE(empty.value.has_value());
  EXPECT_TRUE(empty.value->empty());
  // The same observation of async_get sees its hop: the probe can tell the two apart.
  auto hop = [&]() -> asio::awaitable<bool> {
    bool ran = false;
    asio::post(io, [&ran] { ran = true; });
    auto v = co_await reader.async_get(Key::integer(7));
    EXPECT_EQ(v, std::optional<Value>("A:7"));
    co_return ran;
  };
  EXPECT_TRUE(run_on_io(io, hop()));
  reader.close();
}

TEST_F(CoGetFixture, ErrorsAreThrownWithAsyncGetsCodes_D03_E09) {
  auto reader = test::open_async(pool, snap.prefix, options(ShardOpenPolicy::eager));
  // u64be cannot encode a negative integer.
  auto neg = run_on_io(io, observe(io, reader, Key::integer(-1)));
  EXPECT_EQ(neg.ec, make_error_code(errc::key_encoding_error));
  RoutingContext ctx;
  ctx["region"] = "eu";
  auto with_ctx = run_on_io(io, observe(io, reader, Key::integer(3), ctx));
  EXPECT_EQ(with_ctx.ec, make_error_code(errc::invalid_argument));
  reader.close();
  auto closed = run_on_io(io, observe(io, reader, Key::integer(3)));
  EXPECT_EQ(closed.ec, make_error_code(errc::reader_closed));
}

TEST_F(CoGetFixture, ColdShardAndRateLimitedReaderTakeTheAsyncPath_C03) {
  {
    auto reader = test::open_async(pool, snap.prefix, options(ShardOpenPolicy::lazy));
    auto cold = run_on_io(io, observe(io, reader, Key::integer(5)));
    EXPECT_FALSE(cold.ec) << cold.ec.message();
    EXPECT_EQ(cold.value, std::optional<Value>("A:5"));
    EXPECT_TRUE(cold.yielded) << "a cold shard was opened inline";
    auto warm = run_on_io(io, observe(io, reader, Key::integer(5)));
    EXPECT_EQ(warm.value, std::optional<Value>("A:5"));
    EXPECT_FALSE(warm.yielded);
    reader.close();
  }
  {
    auto o = options(ShardOpenPolicy::eager);
    o.rate_limiter = std::make_shared<TokenBucket>(1e6, 1e6);
    auto reader = test::open_async(pool, snap.prefix, o);
    for (int k : {1, 2}) {
      auto limited = run_on_io(io, observe(io, reader, Key::integer(k)));
      EXPECT_EQ(limited.value, std::optional<Value>("A:" + std::to_string(k)));
      EXPECT_TRUE(limited.yielded) << "a rate-limited co_get skipped the limiter";
    }
    reader.close();
  }
}

}  // namespace
}  // namespace shardy
