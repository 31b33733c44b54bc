// Snapshots for reader unit tests: shards written with plain SQLite into a DirObjectStore, and an
// in-memory ManifestStore holding manifests built with build_manifest.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/thread_pool.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <shardy/async_reader.hpp>
#include <shardy/manifest.hpp>
#include <shardy/manifest_store.hpp>
#include <shardy/reader.hpp>
#include <shardy/routing.hpp>
#include <thread>
#include <vector>

#include "reader_test_util.hpp"
#include "support/test_support.hpp"
#include "support/use_blocking.hpp"

namespace shardy::test {

class MemoryManifestStore final : public ManifestStore {
 public:
  std::atomic<int> manifest_loads{0};
  std::atomic<int> current_loads{0};

  void add(ManifestRef ref, std::string bytes) {
    std::lock_guard l(mu_);
    bytes_[ref.ref] = std::move(bytes);
    history_.insert(history_.begin(), ref);  // newest first
  }
  void set_current_ref(const ManifestRef& ref) {
    std::lock_guard l(mu_);
    current_ = ref;
  }
  void corrupt(const std::string& ref) {
    std::lock_guard l(mu_);
    bytes_[ref] = "this is not a SQLite manifest, just garbage text...";
  }

  boost::asio::awaitable<std::optional<ManifestRef>> load_current() override {
    ++current_loads;
    std::lock_guard l(mu_);
    co_return current_;
  }
  boost::asio::awaitable<Manifest> load_manifest(std::string ref) override {
    ++manifest_loads;
    std::string bytes;
    {
      std::lock_guard l(mu_);
      auto it = bytes_.find(ref);
      if (it == bytes_.end()) throw_error(errc::object_not_found, ref);
      bytes = it->second;
    }
    co_return parse_manifest(std::span<const char>(bytes.data(), bytes.size()));
  }
  boost::asio::awaitable<std::vector<ManifestRef>> list_manifests(std::size_t limit) override {
    std::lock_guard l(mu_);
    std::vector<ManifestRef> out(history_.begin(),
                                 history_.begin() + std::min(limit, history_.size()));
    co_return out;
  }
  boost::asio::awaitable<ManifestRef> publish(const Manifest&) override {
    throw_error(errc::unsupported, "test store");
  }
  boost::asio::awaitable<ManifestRef> set_current(std::string) override {
    throw_error(errc::unsupported, "test store");
  }

 private:
  std::mutex mu_;
  std::map<std::string, std::string> bytes_;
  std::vector<ManifestRef> history_;
  std::optional<ManifestRef> current_;
};

/// Writes snapshots (int keys, u64be) into a DirObjectStore + MemoryManifestStore.
struct SnapshotWriter {
  std::shared_ptr<DirObjectStore> objects;
  std::shared_ptr<MemoryManifestStore> manifests = std::make_shared<MemoryManifestStore>();
  std::string prefix = "s3://bucket/snap";
  int published = 0;

  explicit SnapshotWriter(std::filesystem::path root)
      : objects(std::make_shared<DirObjectStore>(std::move(root))) {}

  /// Options for a reader of these snapshots: this manifest store and object store, its download
  /// cache in `cache`.
  ReaderOptions reader_options(std::filesystem::path cache) const {
    ReaderOptions o;
    o.manifest_store = manifests;
    o.object_store = objects;
    o.local_root = std::move(cache);
    return o;
  }

  /// Publishes key -> value (written in shards by routing) and returns its ref; `make_current`
  /// moves the pointer.
  /// `edit`, if given, changes the manifest before it is serialized (custom fields, sharding).
  ManifestRef publish(const std::string& run_id, std::uint32_t num_dbs,
                      const std::map<std::int64_t, std::string>& rows, bool make_current = true,
                      const std::function<void(Manifest&)>& edit = {}) {
    Router router(num_dbs, KeyEncoding::u64be);
    std::map<std::uint32_t, std::vector<std::pair<std::string, std::string>>> per_shard;
    std::map<std::uint32_t, std::pair<std::int64_t, std::int64_t>> minmax;
    for (auto& [k, v] : rows) {
      auto rr = router.route_write(Key::integer(k));
      per_shard[rr.db_id].emplace_back(rr.storage_key, v);
      auto [it, fresh] = minmax.emplace(rr.db_id, std::make_pair(k, k));
      if (!fresh) {
        it->second.first = std::min(it->second.first, k);
        it->second.second = std::max(it->second.second, k);
      }
    }
    ++published;
    const auto ts = Timestamp(std::chrono::seconds(1700000000 + published * 60));
    Manifest m;
    m.build.run_id = run_id;
    m.build.created_at = ts;
    m.build.created_at_text = format_timestamp(ts);
    m.build.num_dbs = num_dbs;
    m.build.s3_prefix = prefix;
    m.build.key_encoding = KeyEncoding::u64be;
    for (auto& [id, kv] : per_shard) {
      char dir[32];
      std::snprintf(dir, sizeof dir, "db=%05u", id);
      ShardMeta s;
      s.db_id = id;
      s.db_url = prefix + "/shards/run_id=" + run_id + "/" + dir + "/attempt=00";
      auto file = objects->path_of(*s.db_url + "/shard.db");
      write_kv_shard(file, kv);
      s.row_count = static_cast<std::int64_t>(kv.size());
      s.db_bytes = static_cast<std::int64_t>(std::filesystem::file_size(file));
      s.checkpoint_id = "ckpt-" + run_id + "-" + std::to_string(id);
      s.min_key = Key::integer(minmax[id].first);
      s.max_key = Key::integer(minmax[id].second);
      m.shards.push_back(std::move(s));
    }
    if (edit) edit(m);
    ManifestRef ref;
    ref.ref = prefix + "/manifests/" + format_timestamp_dir(ts) + "_run_id=" + run_id + "/manifest";
    ref.run_id = run_id;
    ref.published_at = ts;
    manifests->add(ref, build_manifest(m));
    if (make_current) manifests->set_current_ref(ref);
    return ref;
  }
};

/// Opens an AsyncReader on the pool and waits (errors are thrown on this thread).
inline AsyncReader open_async(boost::asio::thread_pool& pool, const std::string& prefix,
                              ReaderOptions o) {
  return AsyncReader::async_open(pool.get_executor(), prefix, std::move(o), use_blocking);
}

/// Rows k -> "<tag>:k" for k in [from, to).
inline std::map<std::int64_t, std::string> rows_for(int from, int to, const std::string& tag) {
  std::map<std::int64_t, std::string> rows;
  for (int k = from; k < to; ++k) rows[k] = tag + ":" + std::to_string(k);
  return rows;
}

/// A test over snapshots written into root/objects, read with a download cache in root/cache.
struct SnapshotTest : ::testing::Test {
  std::filesystem::path root;
  SnapshotWriter snap;

  explicit SnapshotTest(std::string_view tag) : root(make_temp_dir(tag)), snap(root / "objects") {}

  ReaderOptions options() const { return snap.reader_options(root / "cache"); }

  /// Shard files in the download cache.
  std::size_t cache_entries() const {
    std::size_t n = 0;
    if (!std::filesystem::exists(root / "cache")) return 0;
    for (auto& e : std::filesystem::directory_iterator(root / "cache"))
      n += std::filesystem::exists(e.path() / "shard.db");
    return n;
  }

  /// The two snapshots of refresh_under_load over keys [0, keys): "runA" (4 shards, values
  /// "A:<k>") and "runB" (3 shards, "B:<k>"); runA is current.
  std::pair<ManifestRef, ManifestRef> publish_a_and_b(int keys) {
    auto a = snap.publish("runA", 4, rows_for(0, keys, "A"));
    auto b = snap.publish("runB", 3, rows_for(0, keys, "B"));
    snap.manifests->set_current_ref(a);
    return {a, b};
  }
};

/// SnapshotTest with a 2-thread pool for AsyncReaders, joined at the end of the test.
struct AsyncSnapshotTest : SnapshotTest {
  boost::asio::thread_pool pool{2};

  using SnapshotTest::SnapshotTest;
  ~AsyncSnapshotTest() override { pool.join(); }

  AsyncReader open_async(ReaderOptions o) {
    return test::open_async(pool, snap.prefix, std::move(o));
  }
};

/// Whether v is key k's value in one of the two snapshots of refresh_under_load ("A:k", "B:k").
inline bool one_of(const std::optional<Value>& v, int k) {
  return v && (*v == "A:" + std::to_string(k) || *v == "B:" + std::to_string(k));
}

struct RefreshLoadResult {
  int bad = 0;        ///< answers not from exactly one snapshot
  int answers = 0;    ///< get and multi_get calls answered
  int refreshes = 0;  ///< refresh() calls that swapped the snapshot
};

/// Refresh under load (H-11, B-05): `threads` threads call Reader::get, and for every 4th key a
/// multi_get of 3 keys, over keys [0, keys) while this thread moves _CURRENT between refs `a` and
/// `b` (values "A:<k>" / "B:<k>") `rounds` times and calls refresh(), waiting (at most 5 s) for 10
/// more answers between flips so that reads really interleave. An answer is bad unless it is one
/// of the two values of its key, and a multi_get whose keys come from different snapshots is bad.
inline RefreshLoadResult refresh_under_load(Reader& reader, MemoryManifestStore& manifests,
                                            const ManifestRef& a, const ManifestRef& b, int keys,
                                            int rounds, int threads = 3) {
  std::atomic<bool> stop{false};
  std::atomic<int> bad{0}, answers{0}, refreshes{0};
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t)
    workers.emplace_back([&, t] {
      int i = t;
      while (!stop.load()) {
        i = (i * 31 + 7) % keys;
        if (i % 4 == 0) {
          const int j = (i + 1) % keys, l = (i + 77) % keys;
          std::vector<Key> batch{Key::integer(i), Key::integer(j), Key::integer(l)};
          auto v = reader.multi_get(batch);
          if (!one_of(v[0], i) || !one_of(v[1], j) || !one_of(v[2], l) ||
              (*v[0])[0] != (*v[1])[0] || (*v[0])[0] != (*v[2])[0])
            ++bad;
        } else if (!one_of(reader.get(Key::integer(i)), i)) {
          ++bad;
        }
        ++answers;
      }
    });
  for (int r = 0; r < rounds; ++r) {
    const int seen = answers.load();
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (answers.load() < seen + 10 && std::chrono::steady_clock::now() < until)
      std::this_thread::yield();
    manifests.set_current_ref(r % 2 ? a : b);
    if (reader.refresh()) ++refreshes;
  }
  stop = true;
  for (auto& w : workers) w.join();
  return {bad.load(), answers.load(), refreshes.load()};
}

}  // namespace shardy::test
