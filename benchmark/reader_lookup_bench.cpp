// Reader lookup benchmarks, each a ratio to raw sqlite3 prepared-statement lookups of the same
// keys on the same shard files in the same run (baseline opened "file:...?immutable=1" with
// SQLITE_OPEN_NOMUTEX, statement prepared once, value copied into a std::string like the reader;
// autocommit, so every lookup begins and ends its own read transaction):
//   (a) warm sync Reader::get, p50 latency            (target <= 1.5x raw)
//   (b) AsyncReader::async_get throughput, 64 coroutines on 2 threads  (target >= 0.7x raw on 2
//       threads)
//   (c) multi_get of 1000 keys over 64 shards (sync warm path, and async fan-out)
// The reader keeps each pooled connection in one read transaction (lib/shard/sqlite_shard.cpp),
// which the plain baseline does not; so (a) and (b) also print, for reference, the ratio to a
// second baseline that does the same ("raw+txn"): that one is the reader's own overhead.
// Usage: reader_lookup_bench [rows_total=200000] [parts=ab] [lookups_per_thread=200000]
//   parts: a = sections (a) and (c) sync, b = sections (b) and (c) async ("b" alone, with fewer
//   lookups, is handy for profiling the async path under callgrind).
#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <future>
#include <map>
#include <memory>
#include <random>
#include <shardy/async_reader.hpp>
#include <shardy/local_store.hpp>
#include <shardy/manifest_store.hpp>
#include <shardy/reader.hpp>
#include <thread>

namespace asio = boost::asio;
namespace fs = std::filesystem;
using clk = std::chrono::steady_clock;
using namespace shardy;

namespace {

constexpr std::uint32_t kShards = 64;

struct Raw {
  std::vector<sqlite3*> dbs;
  std::vector<sqlite3_stmt*> stmts;
  explicit Raw(const std::vector<std::string>& files, bool hold_read_transaction = false) {
    for (auto& f : files) {
      sqlite3* db = nullptr;
      std::string uri = "file:" + f + "?mode=ro&immutable=1";
      sqlite3_open_v2(uri.c_str(), &db,
                      SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_URI, nullptr);
      sqlite3_exec(db, "PRAGMA mmap_size=268435456", nullptr, nullptr, nullptr);
      sqlite3_stmt* s = nullptr;
      sqlite3_prepare_v3(db, "SELECT v FROM kv WHERE k = ?1", -1, SQLITE_PREPARE_PERSISTENT, &s,
                         nullptr);
      if (hold_read_transaction) sqlite3_exec(db, "BEGIN", nullptr, nullptr, nullptr);
      dbs.push_back(db);
      stmts.push_back(s);
    }
  }
  ~Raw() {
    for (auto* s : stmts) sqlite3_finalize(s);
    for (auto* d : dbs) sqlite3_close(d);
  }
  std::optional<std::string> get(std::uint32_t shard, const std::string& key) {
    auto* s = stmts[shard];
    sqlite3_bind_blob(s, 1, key.data(), static_cast<int>(key.size()), SQLITE_STATIC);
    std::optional<std::string> out;
    if (sqlite3_step(s) == SQLITE_ROW)
      out.emplace(static_cast<const char*>(sqlite3_column_blob(s, 0)),
                  static_cast<std::size_t>(sqlite3_column_bytes(s, 0)));
    sqlite3_reset(s);
    return out;
  }
};

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

}  // namespace

int main(int argc, char** argv) {
  const int rows_total = argc > 1 ? std::atoi(argv[1]) : 200000;
  const std::string parts = argc > 2 ? argv[2] : "ab";
  auto root = fs::temp_directory_path() / ("shardy-bench-" + std::to_string(::getpid()));
  fs::remove_all(root);
  const std::string prefix = "s3://bench/snap";
  const std::string run = "0123456789abcdef0123456789abcdef";
  Router router(kShards, KeyEncoding::u64be);

  // --- build the snapshot: 64 kv shards, 100-byte values ---------------------------------------
  std::vector<std::vector<std::pair<std::string, std::string>>> per(kShards);
  for (int k = 0; k < rows_total; ++k) {
    auto rr = router.route_write(Key::integer(k));
    per[rr.db_id].emplace_back(rr.storage_key, std::string(100, static_cast<char>('a' + k % 26)));
  }
  Manifest m;
  m.build.run_id = run;
  m.build.created_at =
      std::chrono::time_point_cast<std::chrono::microseconds>(std::chrono::system_clock::now());
  m.build.created_at_text = format_timestamp(m.build.created_at);
  m.build.num_dbs = kShards;
  m.build.s3_prefix = prefix;
  std::vector<std::string> files;
  for (std::uint32_t id = 0; id < kShards; ++id) {
    char dir[32];
    std::snprintf(dir, sizeof dir, "db=%05u", id);
    ShardMeta s;
    s.db_id = id;
    s.db_url = prefix + "/shards/run_id=" + run + "/" + dir + "/attempt=00";
    auto file =
        root / "bench" / "snap" / "shards" / ("run_id=" + run) / dir / "attempt=00" / "shard.db";
    fs::create_directories(file.parent_path());
    sqlite3* db = nullptr;
    sqlite3_open(file.c_str(), &db);
    sqlite3_exec(db,
                 "PRAGMA page_size=4096; PRAGMA journal_mode=OFF; CREATE TABLE kv (k BLOB PRIMARY "
                 "KEY, v BLOB NOT NULL) WITHOUT ROWID; BEGIN;",
                 nullptr, nullptr, nullptr);
    sqlite3_stmt* st = nullptr;
    sqlite3_prepare_v2(db, "INSERT INTO kv VALUES (?1, ?2)", -1, &st, nullptr);
    for (auto& [k, v] : per[id]) {
      sqlite3_bind_blob(st, 1, k.data(), static_cast<int>(k.size()), SQLITE_STATIC);
      sqlite3_bind_blob(st, 2, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
      sqlite3_step(st);
      sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr);
    sqlite3_close(db);
    s.row_count = static_cast<std::int64_t>(per[id].size());
    s.db_bytes = static_cast<std::int64_t>(fs::file_size(file));
    std::string checkpoint = "c";  // not "c" + ...: a g++ 12 -Wrestrict false positive
    checkpoint += std::to_string(id);
    s.checkpoint_id = std::move(checkpoint);
    m.shards.push_back(s);
    files.push_back(file.string());
  }
  {
    asio::io_context io;
    auto store = make_object_manifest_store(make_mapped_store(io.get_executor(), root), prefix);
    auto f = asio::co_spawn(io, store->publish(m), asio::use_future);
    io.run();
    f.get();
  }

  // --- keys: a random sample, mostly present --------------------------------------------------
  std::mt19937_64 rng(42);
  std::vector<Key> keys;
  std::vector<std::pair<std::uint32_t, std::string>> raw_keys;
  for (int i = 0; i < 20000; ++i) {
    auto k =
        static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(rows_total + rows_total / 10));
    keys.push_back(Key::integer(k));
    auto rr = router.route_lookup(keys.back());
    raw_keys.emplace_back(rr.db_id, rr.storage_key);
  }

  ReaderOptions opts;
  opts.object_root = root;
  opts.local_root = root / "cache";
  opts.shard_open = ShardOpenPolicy::eager;
  Raw raw(files);
  Raw raw_txn(files, /*hold_read_transaction=*/true);

  // (a) warm sync get p50: interleave rounds of raw and reader to share conditions.
  std::vector<double> raw_ns, reader_ns, raw_txn_ns;
  std::size_t sink = 0;
  if (parts.find('a') != std::string::npos) {
    Reader reader(prefix, opts);
    for (auto& k : keys) sink += reader.get(k).has_value();  // warm
    auto time_raw = [&](Raw& r, std::vector<double>& ns) {
      for (auto& [id, k] : raw_keys) {
        auto t0 = clk::now();
        auto v = r.get(id, k);
        auto t1 = clk::now();
        sink += v.has_value();
        ns.push_back(std::chrono::duration<double, std::nano>(t1 - t0).count());
      }
    };
    for (int round = 0; round < 5; ++round) {
      time_raw(raw, raw_ns);
      time_raw(raw_txn, raw_txn_ns);
      for (auto& k : keys) {
        auto t0 = clk::now();
        auto v = reader.get(k);
        auto t1 = clk::now();
        sink += v.has_value();
        reader_ns.push_back(std::chrono::duration<double, std::nano>(t1 - t0).count());
      }
    }
    const double rp50 = percentile(raw_ns, 0.5), gp50 = percentile(reader_ns, 0.5);
    std::printf(
        "(a) warm sync get p50: raw %.0f ns, Reader %.0f ns, ratio %.2fx (p99 raw %.0f, Reader "
        "%.0f)\n",
        rp50, gp50, gp50 / rp50, percentile(raw_ns, 0.99), percentile(reader_ns, 0.99));
    std::printf("    reference: raw+txn p50 %.0f ns, Reader / raw+txn %.2fx\n",
                percentile(raw_txn_ns, 0.5), gp50 / percentile(raw_txn_ns, 0.5));

    // (c) multi_get 1000 keys over 64 shards, sync warm path.
    std::vector<Key> batch(keys.begin(), keys.begin() + 1000);
    std::vector<double> raw_b, mg_b;
    for (int r = 0; r < 50; ++r) {
      auto t0 = clk::now();
      for (int i = 0; i < 1000; ++i)
        sink += raw.get(raw_keys[i].first, raw_keys[i].second).has_value();
      auto t1 = clk::now();
      auto v = reader.multi_get(batch);
      auto t2 = clk::now();
      sink += v.size();
      raw_b.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
      mg_b.push_back(std::chrono::duration<double, std::micro>(t2 - t1).count());
    }
    std::printf(
        "(c) multi_get 1000 keys / 64 shards, sync Reader: raw loop %.0f us, multi_get %.0f us, "
        "ratio %.2fx\n",
        percentile(raw_b, 0.5), percentile(mg_b, 0.5),
        percentile(mg_b, 0.5) / percentile(raw_b, 0.5));
  }

  // (b) async throughput: 64 coroutines on 2 threads vs raw on 2 threads. The two alternate,
  // kRounds rounds each, so both see the same machine conditions; medians are reported. The raw
  // baseline opens its connections and prepares its statements before the clock starts (the
  // reader's are opened eagerly at open), and both sides look up the same key sequence.
  if (parts.find('b') != std::string::npos) {
    constexpr int kRounds = 5;
    const int per_thread = argc > 3 ? std::atoi(argv[3]) : 200000;
    std::atomic<std::size_t> found{0};
    std::vector<std::unique_ptr<Raw>> raws;
    for (int t = 0; t < 2; ++t) raws.push_back(std::make_unique<Raw>(files));
    for (int t = 0; t < 2; ++t) raws.push_back(std::make_unique<Raw>(files, true));
    auto raw_round = [&](bool txn) {
      std::atomic<bool> go{false};
      std::vector<std::thread> ts;
      for (int t = 0; t < 2; ++t)
        ts.emplace_back([&, t] {
          while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
          Raw& mine = *raws[static_cast<std::size_t>(t + (txn ? 2 : 0))];
          std::size_t f = 0;
          for (int i = 0; i < per_thread; ++i) {
            auto& [id, k] = raw_keys[static_cast<std::size_t>(i * 2 + t) % raw_keys.size()];
            f += mine.get(id, k).has_value();
          }
          found += f;
        });
      auto t0 = clk::now();
      go.store(true, std::memory_order_release);
      for (auto& t : ts) t.join();
      return 2.0 * per_thread / std::chrono::duration<double>(clk::now() - t0).count();
    };

    asio::thread_pool pool(2);
    auto reader =
        AsyncReader::async_open(pool.get_executor(), prefix, opts, asio::use_future).get();
    const int coros = 64, per_coro = 2 * per_thread / coros;
    auto worker = [&](int c) -> asio::awaitable<void> {
      std::size_t f = 0;
      for (int i = 0; i < per_coro; ++i)
        f +=
            (co_await reader.async_get(keys[static_cast<std::size_t>(i * coros + c) % keys.size()]))
                .has_value();
      found += f;
    };
    // The same coroutines through co_get (no executor round trip for a warm local shard).
    auto co_worker = [&](int c) -> asio::awaitable<void> {
      std::size_t f = 0;
      for (int i = 0; i < per_coro; ++i)
        f += (co_await reader.co_get(keys[static_cast<std::size_t>(i * coros + c) % keys.size()]))
                 .has_value();
      found += f;
    };
    auto async_round = [&](bool co) {
      std::vector<std::future<void>> fs_;
      auto t1 = clk::now();
      for (int c = 0; c < coros; ++c)
        fs_.push_back(asio::co_spawn(pool, co ? co_worker(c) : worker(c), asio::use_future));
      for (auto& f : fs_) f.get();
      return static_cast<double>(coros) * per_coro /
             std::chrono::duration<double>(clk::now() - t1).count();
    };
    // The same 64 coroutines on 2 threads, but each thread runs its own io_context (32 coroutines
    // each) instead of both sharing the thread_pool's queue: the deployment that avoids Asio's
    // shared scheduler lock (the hop of every async_get goes through the coroutine's executor).
    auto per_thread_round = [&] {
      std::vector<std::unique_ptr<asio::io_context>> ctxs;
      for (int t = 0; t < 2; ++t) ctxs.push_back(std::make_unique<asio::io_context>(1));
      std::vector<std::future<void>> fs_;
      for (int c = 0; c < coros; ++c)
        fs_.push_back(
            asio::co_spawn(*ctxs[static_cast<std::size_t>(c % 2)], worker(c), asio::use_future));
      auto t1 = clk::now();
      std::vector<std::thread> ts;
      for (auto& ctx : ctxs) ts.emplace_back([&ctx] { ctx->run(); });
      for (auto& t : ts) t.join();
      for (auto& f : fs_) f.get();
      return static_cast<double>(coros) * per_coro /
             std::chrono::duration<double>(clk::now() - t1).count();
    };
    for (int c = 0; c < 200; ++c)
      sink += reader.async_get(keys[c], asio::use_future).get().has_value();
    std::vector<double> raw_ops, async_ops, ratios, txn_ops, ctx_ops, co_ops;
    for (int r = 0; r < kRounds; ++r) {
      raw_ops.push_back(raw_round(false));
      async_ops.push_back(async_round(false));
      txn_ops.push_back(raw_round(true));
      ctx_ops.push_back(per_thread_round());
      co_ops.push_back(async_round(true));
      ratios.push_back(async_ops.back() / raw_ops.back());
      std::printf(
          "(b) round %d: raw (2 threads) %.0f ops/s, AsyncReader %.0f ops/s, ratio %.2fx; "
          "raw+txn %.0f ops/s; io_context per thread %.0f ops/s; co_get %.0f ops/s\n",
          r + 1, raw_ops.back(), async_ops.back(), ratios.back(), txn_ops.back(), ctx_ops.back(),
          co_ops.back());
    }
    const double raw_med = percentile(raw_ops, 0.5), async_med = percentile(async_ops, 0.5);
    std::printf(
        "(b) async get throughput, 64 coroutines / 2 threads: raw (2 threads) %.0f ops/s, "
        "AsyncReader %.0f ops/s, ratio %.2fx (median of %d rounds; median per-round ratio %.2fx)\n",
        raw_med, async_med, async_med / raw_med, kRounds, percentile(ratios, 0.5));
    std::printf("    reference: raw+txn (2 threads) %.0f ops/s, AsyncReader / raw+txn %.2fx\n",
                percentile(txn_ops, 0.5), async_med / percentile(txn_ops, 0.5));
    std::printf(
        "    io_context per thread: AsyncReader %.0f ops/s, ratio %.2fx raw, %.2fx raw+txn\n",
        percentile(ctx_ops, 0.5), percentile(ctx_ops, 0.5) / raw_med,
        percentile(ctx_ops, 0.5) / percentile(txn_ops, 0.5));
    std::printf(
        "    co_get (thread_pool): AsyncReader %.0f ops/s, ratio %.2fx raw, %.2fx raw+txn\n",
        percentile(co_ops, 0.5), percentile(co_ops, 0.5) / raw_med,
        percentile(co_ops, 0.5) / percentile(txn_ops, 0.5));
    sink += found.load();

    // (c') async multi_get (fan-out across shards on the 2 io threads).
    std::vector<Key> batch(keys.begin(), keys.begin() + 1000);
    std::vector<double> mg;
    for (int r = 0; r < 50; ++r) {
      auto t2 = clk::now();
      auto v = reader.async_multi_get(batch, asio::use_future).get();
      mg.push_back(std::chrono::duration<double, std::micro>(clk::now() - t2).count());
      sink += v.size();
    }
    std::printf("(c) multi_get 1000 keys / 64 shards, AsyncReader fan-out: %.0f us (median)\n",
                percentile(mg, 0.5));
    reader.close();
    pool.join();
  }
  std::printf("(checksum %zu)\n", sink);
  fs::remove_all(root);
  return 0;
}
