// Reader-feature rows of groups A-H not covered elsewhere (see docs/reader-features-status.md):
// the KV gate for vector-only snapshots at open and at refresh, CEL snapshots refused
// (E-04), partial eager-open failures, concurrent refreshes (B-06), close during a
// refresh (C-05), handles released from a foreign thread (C-07), a missing manifest object
// (H-06), shard failures during an eager refresh (H-12) and pool exhaustion (B-04) and borrowing
// for many keys (F-02).
#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/thread_pool.hpp>
#include <future>
#include <set>
#include <shardy/async_reader.hpp>
#include <shardy/metrics.hpp>
#include <shardy/reader.hpp>
#include <thread>

#include "reader_snapshot_util.hpp"
#include "support/error_of.hpp"
#include "support/test_support.hpp"

namespace shardy {
namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;
namespace json = boost::json;

using test::open_async;
using test::rows_for;
using test::use_blocking;

struct RowsFixture : test::SnapshotTest {
  RowsFixture() : SnapshotTest("reader-rows") {}
};

void vector_only(Manifest& m) {
  json::object v;
  v["dim"] = 4;
  v["metric"] = "cosine";
  v["backend"] = "sqlite-vec";
  m.build.custom["vector"] = std::move(v);
}

using shardy::test::error_of;

// a vector-only snapshot (custom.vector without "unified": true) is refused with
// errc::unsupported at open (no fallback to an older manifest: it is not a parse error) and at
// refresh (the old snapshot keeps serving). A unified snapshot opens. Unlike the reference, the
// async reader applies the gate too.
TEST_F(RowsFixture, VectorOnlySnapshotRefusedAtOpenAndRefresh_A13) {
  snap.publish("good", 2, rows_for(0, 20, "g"));
  snap.publish("vec", 2, rows_for(0, 20, "v"), true, vector_only);
  EXPECT_EQ(error_of([&] { Reader r(snap.prefix, options()); }), errc::unsupported);
  asio::thread_pool pool(1);
  try {
    open_async(pool, snap.prefix, options());
    ADD_FAILURE() << "AsyncReader opened a vector-only snapshot";
  } catch (const boost::system::system_error& e) {
    EXPECT_EQ(e.code(), make_error_code(errc::unsupported));
  }
  pool.join();

  snap.publish("unified", 2, rows_for(0, 20, "u"), true, [](Manifest& m) {
    vector_only(m);
    m.build.custom["vector"].as_object()["unified"] = true;
  });
  Reader reader(snap.prefix, options());
  EXPECT_EQ(reader.get(Key::integer(3)), std::optional<Value>("u:3"));

  snap.publish("vec2", 3, rows_for(0, 20, "w"), true, vector_only);
  EXPECT_EQ(error_of([&] { reader.refresh(); }), errc::unsupported);
  EXPECT_EQ(reader.snapshot_info().run_id, "unified");
  EXPECT_EQ(reader.get(Key::integer(3)), std::optional<Value>("u:3"));
}

// E-04: CEL-sharded snapshots are refused at open with errc::unsupported (no CEL runtime).
TEST_F(RowsFixture, CelShardedSnapshotRefused_E04) {
  snap.publish("cel", 2, rows_for(0, 10, "c"), true, [](Manifest& m) {
    m.build.sharding.strategy = ShardingStrategy::cel;
    m.build.sharding.cel_expr = "shard_hash(key) % 2u";
    json::object cols;
    cols["key"] = "int";
    m.build.sharding.cel_columns = std::move(cols);
  });
  EXPECT_EQ(error_of([&] { Reader r(snap.prefix, options()); }), errc::unsupported);
}

// eager opening where one shard cannot be fetched fails with that shard's error (code
// preserved), and the reader is not half-open.
TEST_F(RowsFixture, EagerOpenPartialFailureReportsTheShardError_A15) {
  snap.publish("run1", 4, rows_for(0, 100, "e"));
  const auto url = "s3://bucket/snap/shards/run_id=run1/db=00002/attempt=00/shard.db";
  ASSERT_TRUE(fs::remove(snap.objects->path_of(url)));
  auto o = options();
  o.shard_open = ShardOpenPolicy::eager;
  EXPECT_EQ(error_of([&] { Reader r(snap.prefix, o); }), errc::object_not_found);
  // Lazily, the same snapshot opens and serves the other shards.
  Reader lazy(snap.prefix, options());
  std::size_t served = 0;
  for (int k = 0; k < 100; ++k) {
    error_code ec;
    auto v = lazy.get(Key::integer(k), ec);
    if (lazy.route_key(Key::integer(k)) == 2) {
      EXPECT_EQ(ec, make_error_code(errc::object_not_found)) << k;
    } else {
      EXPECT_EQ(v, std::optional<Value>("e:" + std::to_string(k))) << k;
      ++served;
    }
  }
  EXPECT_GT(served, 50u);
}

// B-04: with every connection of a shard held by borrowed handles, a lookup on that shard waits
// pool_checkout_timeout and then fails with errc::pool_exhausted (retryable) instead of hanging;
// other shards are unaffected, and releasing a handle makes the same lookup succeed. A timeout of
// zero is refused at construction (B-01). Both tiers share the checkout (range: same class).
TEST_F(RowsFixture, PoolExhaustionFailsAfterTheCheckoutTimeout_B04) {
  snap.publish("run1", 2, rows_for(0, 20, "p"));
  auto zero = options();
  zero.pool_checkout_timeout = std::chrono::milliseconds(0);
  EXPECT_EQ(error_of([&] { Reader r(snap.prefix, zero); }), errc::invalid_argument);

  for (AccessMode mode : {AccessMode::download, AccessMode::range}) {
    SCOPED_TRACE(mode == AccessMode::download ? "download" : "range");
    auto o = options();
    o.access_mode = mode;
    o.max_connections_per_shard = 1;
    o.range.max_connections_per_shard = 1;
    o.pool_checkout_timeout = std::chrono::milliseconds(50);
    Reader reader(snap.prefix, o);
    int on0 = -1, on1 = -1;
    for (int k = 0; k < 20 && (on0 < 0 || on1 < 0); ++k)
      (reader.route_key(Key::integer(k)) == 0 ? on0 : on1) = k;
    ASSERT_GE(on0, 0);
    ASSERT_GE(on1, 0);

    ShardHandle held = reader.borrow_shard(0);
    ASSERT_NE(held.native_handle(), nullptr);
    const auto t0 = std::chrono::steady_clock::now();
    error_code ec;
    auto v = reader.get(Key::integer(on0), ec);
    const auto waited = std::chrono::steady_clock::now() - t0;
    EXPECT_EQ(ec, make_error_code(errc::pool_exhausted));
    EXPECT_TRUE(is_retryable(ec));
    EXPECT_FALSE(v.has_value());
    EXPECT_GE(waited, std::chrono::milliseconds(50));
    EXPECT_LT(waited, std::chrono::seconds(5));
    // A second borrow of the same shard waits and fails the same way.
    EXPECT_EQ(error_of([&] { auto h = reader.borrow_shard(0); }), errc::pool_exhausted);
    // The other shard still answers.
    EXPECT_EQ(reader.get(Key::integer(on1)), std::optional<Value>("p:" + std::to_string(on1)));

    // A lookup blocked on the pool gets the connection as soon as the handle is released.
    std::thread releaser([&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      held.release();
    });
    auto got = reader.get(Key::integer(on0), ec);
    releaser.join();
    if (ec) {
      // The release raced past the 50 ms window (a loaded machine): retry, as a caller would.
      EXPECT_EQ(ec, make_error_code(errc::pool_exhausted));
      got = reader.get(Key::integer(on0));
    }
    EXPECT_EQ(got, std::optional<Value>("p:" + std::to_string(on0)));

    // The async reader fails the same way.
    asio::thread_pool pool(2);
    AsyncReader ar = open_async(pool, snap.prefix, o);
    ShardHandle held2 = ar.async_borrow_shard(0, use_blocking);
    try {
      ar.async_get(Key::integer(on0), use_blocking);
      ADD_FAILURE() << "async get succeeded with the pool exhausted";
    } catch (const boost::system::system_error& e) {
      EXPECT_EQ(e.code(), make_error_code(errc::pool_exhausted));
    }
    held2.release();
    EXPECT_EQ(ar.async_get(Key::integer(on0), use_blocking),
              std::optional<Value>("p:" + std::to_string(on0)));
    ar.close();
    pool.join();
  }
}

// B-06: refreshes are serialized; two threads refreshing towards the same new manifest: exactly
// one swaps (true), the other finds it current (false), and the manifest is loaded once.
TEST_F(RowsFixture, ConcurrentRefreshesSwapOnce_B06) {
  snap.publish("run1", 2, rows_for(0, 10, "a"));
  Reader reader(snap.prefix, options());
  for (int round = 0; round < 10; ++round) {
    snap.publish("next" + std::to_string(round), 2, rows_for(0, 10, "r" + std::to_string(round)));
    const int loads = snap.manifests->manifest_loads.load();
    std::atomic<int> changed{0};
    std::vector<std::thread> ts;
    for (int t = 0; t < 2; ++t) ts.emplace_back([&] { changed += reader.refresh() ? 1 : 0; });
    for (auto& t : ts) t.join();
    EXPECT_EQ(changed.load(), 1) << round;
    EXPECT_EQ(snap.manifests->manifest_loads.load(), loads + 1) << round;
    EXPECT_EQ(reader.get(Key::integer(1)),
              std::optional<Value>("r" + std::to_string(round) + ":1"));
  }
}

// A manifest store whose load_manifest can be held at a gate (blocking its io thread), to
// interleave close() with a refresh.
class GatedManifestStore final : public ManifestStore {
 public:
  explicit GatedManifestStore(std::shared_ptr<ManifestStore> inner) : inner_(std::move(inner)) {}
  std::atomic<bool> armed{false};
  std::promise<void> entered;
  std::promise<void> release;

  asio::awaitable<std::optional<ManifestRef>> load_current() override {
    return inner_->load_current();
  }
  asio::awaitable<Manifest> load_manifest(std::string ref) override {
    if (armed.exchange(false)) {
      entered.set_value();
      release.get_future().wait();
    }
    return inner_->load_manifest(std::move(ref));
  }
  asio::awaitable<std::vector<ManifestRef>> list_manifests(std::size_t limit) override {
    return inner_->list_manifests(limit);
  }
  asio::awaitable<ManifestRef> publish(const Manifest& m) override { return inner_->publish(m); }
  asio::awaitable<ManifestRef> set_current(std::string ref) override {
    return inner_->set_current(std::move(ref));
  }

 private:
  std::shared_ptr<ManifestStore> inner_;
};

// C-05 / B-06: close() while a refresh is building the new state: the refresh fails with
// reader_closed and installs nothing (the reference installs a state nobody closes); the new
// snapshot's shards (eager) are not left in use.
TEST_F(RowsFixture, CloseDuringRefreshDiscardsTheNewState_C05) {
  snap.publish("run1", 2, rows_for(0, 10, "a"));
  auto gated = std::make_shared<GatedManifestStore>(snap.manifests);
  auto o = options();
  o.manifest_store = gated;
  o.shard_open = ShardOpenPolicy::eager;
  Reader reader(snap.prefix, o);
  snap.publish("run2", 3, rows_for(0, 10, "b"));
  gated->armed = true;
  auto refreshed = std::async(std::launch::async, [&] {
    error_code ec;
    reader.refresh(ec);
    return ec;
  });
  gated->entered.get_future().wait();
  reader.close();
  gated->release.set_value();
  EXPECT_EQ(refreshed.get(), make_error_code(errc::reader_closed));
  error_code ec;
  reader.get(Key::integer(1), ec);
  EXPECT_EQ(ec, make_error_code(errc::reader_closed));
  EXPECT_EQ(reader.health().status, HealthStatus::unhealthy);
}

// C-07: a handle that outlives a refresh and is released from a thread that runs no io_context
// still lets its snapshot close (its cache files, retired by the refresh, are removed then).
TEST_F(RowsFixture, HandleReleasedOnForeignThreadClosesRetiredSnapshot_C07_F05) {
  snap.publish("run1", 2, rows_for(0, 50, "a"));
  auto o = options();
  o.shard_open = ShardOpenPolicy::eager;
  Reader reader(snap.prefix, o);
  auto handle = reader.borrow_shard_for_key(Key::integer(3));
  const auto enc = reader.encode_key(Key::integer(3));
  snap.publish("run2", 2, rows_for(0, 50, "b"));
  EXPECT_TRUE(reader.refresh());
  EXPECT_EQ(cache_entries(), 4u);  // run1's files stay while the handle pins run1
  EXPECT_EQ(handle.get(enc), std::optional<Value>("a:3"));
  std::thread([h = std::move(handle)]() mutable {
    h.release();
    h.release();  // idempotent (F-05)
  }).join();
  EXPECT_EQ(cache_entries(), 2u);
  EXPECT_EQ(reader.get(Key::integer(3)), std::optional<Value>("b:3"));
}

// H-06: _CURRENT names a manifest object that does not exist: a storage error (not a parse
// error), so no fallback to the older, good manifest.
TEST_F(RowsFixture, MissingManifestObjectIsAStorageErrorWithoutFallback_H06) {
  snap.publish("run1", 2, rows_for(0, 10, "a"));
  ManifestRef ghost;
  ghost.ref = snap.prefix + "/manifests/2030-01-01T00:00:00.000000Z_run_id=ghost/manifest";
  ghost.run_id = "ghost";
  snap.manifests->set_current_ref(ghost);
  EXPECT_EQ(error_of([&] { Reader r(snap.prefix, options()); }), errc::object_not_found);
}

// H-12: with eager opening, a refresh whose shards cannot be fetched fails with the shard error
// and the old snapshot keeps serving.
TEST_F(RowsFixture, EagerRefreshShardFailureKeepsTheOldSnapshot_H12) {
  snap.publish("run1", 2, rows_for(0, 30, "a"));
  auto o = options();
  o.shard_open = ShardOpenPolicy::eager;
  Reader reader(snap.prefix, o);
  snap.publish("run2", 2, rows_for(0, 30, "b"));
  ASSERT_TRUE(fs::remove(
      snap.objects->path_of("s3://bucket/snap/shards/run_id=run2/db=00001/attempt=00/shard.db")));
  EXPECT_EQ(error_of([&] { reader.refresh(); }), errc::object_not_found);
  EXPECT_EQ(reader.snapshot_info().run_id, "run1");
  for (int k = 0; k < 30; ++k)
    EXPECT_EQ(reader.get(Key::integer(k)), std::optional<Value>("a:" + std::to_string(k)));
}

// E-11..E-14, F-04, F-07, F-08: metadata per key, the public key encoder, handle batch reads
// (no metrics), and a routing failure while borrowing pins nothing (the retired snapshot's cache
// files go away at the next refresh).
TEST_F(RowsFixture, KeyMetadataEncoderAndHandleBatch_E11_E14_F04_F07_F08) {
  // 16 shards, 5 keys: most shards are empty and absent from the manifest.
  std::map<std::int64_t, std::string> rows;
  for (int k : {1, 2, 3, 42, 1000}) rows[k] = "v" + std::to_string(k);
  snap.publish("run1", 16, rows);
  auto o = options();
  auto prom = std::make_shared<PrometheusCollector>();
  o.metrics = prom;
  o.shard_open = ShardOpenPolicy::eager;
  Reader reader(snap.prefix, o);
  EXPECT_EQ(reader.key_encoding(), KeyEncoding::u64be);            // E-14
  EXPECT_EQ(reader.encode_key(Key::integer(42)), test::be64(42));  // E-13
  EXPECT_EQ(error_of([&] { reader.encode_key(Key::integer(-1)); }), errc::key_encoding_error);
  std::vector<Key> keys;
  for (int k = 0; k < 40; ++k) keys.push_back(Key::integer(k));
  auto metas = reader.shards_for_keys(keys);  // E-12: one per input key, in order
  ASSERT_EQ(metas.size(), keys.size());
  std::size_t empty = 0;
  for (std::size_t i = 0; i < keys.size(); ++i) {
    const auto id = reader.route_key(keys[i]);
    EXPECT_EQ(metas[i].db_id, id);
    const auto one = reader.shard_for_key(keys[i]);  // E-11
    EXPECT_EQ(one.db_id, id);
    EXPECT_EQ(one.db_url, metas[i].db_url);
    if (!one.db_url) {
      EXPECT_EQ(one.row_count, 0);  // synthesized empty shard
      ++empty;
    } else {
      EXPECT_GT(one.row_count, 0);
    }
  }
  EXPECT_GT(empty, 0u);

  auto h = reader.borrow_shard_for_key(Key::integer(42));
  const auto before = prom->render();
  auto got = h.multi_get({reader.encode_key(Key::integer(42)), test::be64(9999)});  // F-04
  EXPECT_EQ(got, (std::vector<std::optional<Value>>{"v42", std::nullopt}));
  EXPECT_EQ(h.get(test::be64(42)), std::optional<Value>("v42"));
  EXPECT_EQ(prom->render(), before);  // F-07: handle reads are not instrumented
  h.release();

  // F-08: a key that cannot be routed fails the borrow and leaves nothing pinned.
  EXPECT_EQ(error_of([&] { reader.borrow_shard_for_key(Key::unsigned_integer(1ull << 63)); }),
            errc::key_not_routable);
  std::size_t nonempty = 0;
  for (const auto& d : reader.shard_details()) nonempty += d.db_url.has_value();
  EXPECT_EQ(cache_entries(), nonempty);  // eager: every non-empty shard downloaded
  snap.publish("run2", 2, rows);
  EXPECT_TRUE(reader.refresh());
  EXPECT_EQ(reader.get(Key::integer(42)), std::optional<Value>("v42"));
  EXPECT_LE(cache_entries(), 2u);  // run1's files removed: nothing pinned run1
}

// F-02: borrowing for many keys in one call gives one handle per distinct shard (not per key: each
// handle holds a connection), duplicates share a handle, every handle serves its keys and pins
// the snapshot the keys were routed on (a refresh after the borrow does not move them). Empty
// input gives an empty set, but a closed reader still fails (the reference's concurrent reader
// skips that check). A key that cannot be routed fails the whole call and borrows nothing.
TEST_F(RowsFixture, BorrowForManyKeysOneHandlePerShard_F02) {
  snap.publish("run1", 4, rows_for(0, 40, "m"));
  Reader reader(snap.prefix, options());
  std::vector<Key> keys;
  for (int k : {3, 7, 3, 11, 19, 23, 7, 31}) keys.push_back(Key::integer(k));
  std::set<std::uint32_t> shards;
  for (const auto& k : keys) shards.insert(reader.route_key(k));
  ASSERT_GE(shards.size(), 2u);

  auto check = [&](ShardHandleSet& set, const std::string& tag) {
    ASSERT_EQ(set.handle_of_key.size(), keys.size());
    EXPECT_EQ(set.handles.size(), shards.size());
    EXPECT_EQ(set.handle_of_key[0], set.handle_of_key[2]);  // key 3 twice
    EXPECT_EQ(set.handle_of_key[1], set.handle_of_key[6]);  // key 7 twice
    for (std::size_t i = 0; i < keys.size(); ++i) {
      auto& h = set.for_key(i);
      EXPECT_EQ(h.db_id(), reader.route_key(keys[i])) << i;
      EXPECT_EQ(h.get(reader.encode_key(keys[i])),
                std::optional<Value>(tag + ":" + std::to_string(*keys[i].as_int64())))
          << i;
    }
  };
  auto set = reader.borrow_shards_for_keys(keys);
  check(set, "m");
  snap.publish("run2", 4, rows_for(0, 40, "n"));
  ASSERT_TRUE(reader.refresh());
  check(set, "m");  // pinned on run1
  EXPECT_EQ(reader.get(keys[0]), std::optional<Value>("n:3"));
  set = ShardHandleSet{};

  asio::thread_pool pool(2);
  AsyncReader ar = open_async(pool, snap.prefix, options());
  auto aset = ar.async_borrow_shards_for_keys(keys, use_blocking);
  check(aset, "n");
  EXPECT_TRUE(ar.async_borrow_shards_for_keys({}, use_blocking).handles.empty());
  aset = ShardHandleSet{};
  ar.close();
  try {
    ar.async_borrow_shards_for_keys({}, use_blocking);
    ADD_FAILURE() << "borrowed from a closed reader";
  } catch (const boost::system::system_error& e) {
    EXPECT_EQ(e.code(), make_error_code(errc::reader_closed));
  }
  pool.join();

  EXPECT_TRUE(reader.borrow_shards_for_keys({}).handles.empty());
  auto bad = keys;
  bad.push_back(Key::unsigned_integer(1ull << 63));
  EXPECT_EQ(error_of([&] { reader.borrow_shards_for_keys(bad); }), errc::key_not_routable);
  reader.close();
  EXPECT_EQ(error_of([&] { reader.borrow_shards_for_keys({}); }), errc::reader_closed);
}

}  // namespace
}  // namespace shardy
