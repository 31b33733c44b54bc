// The reader's shared implementation behind AsyncReader and Reader.
//
// Snapshot state (SnapshotState) is built completely before it is published and never changes
// afterwards, except for its shard slots, which open lazily (each slot has its own async mutex so
// a shard is opened once, and a lock-free pointer for the warm path). The current state sits
// behind a mutex-protected shared_ptr: pinning = copying that shared_ptr; a refresh swaps it.
// Whoever drops the last pin of a retired state destroys it, which closes its shards and lets
// the download cache drop files the newer state does not use.
#pragma once

#include <array>
#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/thread_pool.hpp>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <shardy/async_reader.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "shard/async_semaphore.hpp"
#include "shard/shard.hpp"

namespace shardy::detail {

struct ShardSlot {
  explicit ShardSlot(ShardMeta m) : meta(std::move(m)) {}
  ShardMeta meta;
  /// Set once the shard is open (release/acquire); the warm path reads only this.
  std::atomic<shard::ShardReader*> ready{nullptr};
  std::shared_ptr<shard::ShardReader> reader;  // written once, under open_mutex
  shard::AsyncSemaphore open_mutex{1};
};

struct SnapshotState {
  ManifestRef loaded;   ///< the manifest this state serves
  ManifestRef current;  ///< what _CURRENT named when it was loaded
  Manifest manifest;
  Router router;
  std::vector<std::unique_ptr<ShardSlot>> slots;  ///< one per db_id
  std::shared_ptr<shard::ShardFactory> factory;
  AccessMode access = AccessMode::download;  ///< the tier `factory` implements

  /// Set when a refresh replaces this state: on destruction, shards whose (db_url, checkpoint)
  /// the newer state does not use are handed to factory->retire().
  std::mutex retire_mu;
  bool retired = false;
  std::set<std::pair<std::string, std::string>> keep;

  SnapshotState(ManifestRef l, ManifestRef c, Manifest m);
  ~SnapshotState();
};

struct ScanState {
  std::shared_ptr<SnapshotState> state;
  std::uint32_t db_id = 0;
  std::uint32_t last_db_id = 0;  ///< inclusive
  shard::ScanBounds bounds;      ///< start advances as chunks are returned
  std::optional<std::string> initial_start;
  std::size_t chunk_size = 1024;
  bool done = false;
};

struct HandleState {
  std::shared_ptr<SnapshotState> state;
  ShardSlot* slot = nullptr;
  std::shared_ptr<shard::ShardReader> reader;  // null for an empty shard
  shard::ConnectionLease lease;
};

/// Where a lookup goes: the shard and the stored form of the key.
struct LookupRoute {
  std::uint32_t db_id = 0;
  std::string_view storage_key;  ///< points into the caller's buffer or into the key
};

/// Router::route_lookup without heap allocation, for the common cases: non-negative integer keys
/// under u64be (and u32be when they fit) and text/bytes keys under utf8/raw. Returns false, and
/// leaves `out` alone, for every other case (including every error case); the caller then uses
/// Router::route_lookup. `buf` holds an encoded integer key.
bool route_lookup_fast(const Router& router, const Key& key, char (&buf)[8],
                       LookupRoute& out) noexcept;

class ReaderCore;

/// A pin of the current snapshot state for the duration of one synchronous warm lookup, taken
/// without touching any cache line that other threads write: the state pointer is published in
/// one of the core's hazard slots (a thread keeps using the same slot, so the slot's line stays in
/// its core's cache). Whoever replaces or drops the state (install, close) waits until no slot
/// holds it before releasing its reference, so the state outlives the lookup. Falls back to a
/// shared_ptr pin when every slot is busy. Lookups that can wait (coroutines, handles, scans)
/// use ReaderCore::pin() instead.
class WarmPin {
 public:
  /// Throws reader_closed / reader_not_open like ReaderCore::pin().
  explicit WarmPin(const ReaderCore& core);
  ~WarmPin();
  WarmPin(const WarmPin&) = delete;
  WarmPin& operator=(const WarmPin&) = delete;
  SnapshotState* operator->() const noexcept { return st_; }
  SnapshotState& operator*() const noexcept { return *st_; }

 private:
  std::atomic<SnapshotState*>* slot_ = nullptr;
  SnapshotState* st_ = nullptr;
  std::shared_ptr<SnapshotState> fallback_;
};

class ReaderCore : public std::enable_shared_from_this<ReaderCore> {
 public:
  ReaderCore(boost::asio::any_io_executor ex, std::string prefix, ReaderOptions options);
  ~ReaderCore();

  boost::asio::any_io_executor executor() const { return ex_; }
  const ReaderOptions& options() const { return opts_; }
  spdlog::logger& log() const { return *logger_; }

  // --- coroutines (run on ex_)
  // --------------------------------------------------------------------
  boost::asio::awaitable<void> open();
  boost::asio::awaitable<std::optional<Value>> get(Key key, RoutingContext ctx, bool charge);
  boost::asio::awaitable<std::vector<std::optional<Value>>> multi_get(std::vector<Key> keys,
                                                                      bool charge);
  boost::asio::awaitable<bool> refresh();
  /// Borrows shard `db_id`, or, when `key` is given, the shard the key routes to on the state
  /// this call pins (routing and pinning on one snapshot).
  boost::asio::awaitable<ShardHandle> borrow(std::uint32_t db_id, std::optional<Key> key = {});
  boost::asio::awaitable<ShardHandleSet> borrow_for_keys(std::vector<Key> keys);
  boost::asio::awaitable<std::vector<ScanRow>> next(ScanCursor* cursor);

  // --- synchronous pieces --------------------------------------------------------------------
  /// The current state, pinned; throws reader_closed / reader_not_open.
  std::shared_ptr<SnapshotState> pin() const;
  /// Routes a key on `st` (context must be empty for HASH snapshots).
  RouteResult route(const SnapshotState& st, const Key& key, const RoutingContext& ctx) const;

  /// The warm path: the value if the key's shard is open and safe to read on this thread
  /// (caller_thread tier, or any tier when `may_block`: the sync Reader's calling thread, which
  /// is not an io thread, may wait on S3 itself); `served` false when the caller must take the
  /// async path. Throws on routing/encoding/shard errors. No rate limiting, no metrics (callers
  /// do both).
  std::optional<Value> try_get_local(const Key& key, const RoutingContext& ctx, bool& served,
                                     bool may_block = false);
  /// Whether every shard of `ids` is open and local (or empty): multi_get's warm fan-out.
  static bool all_warm_local(const SnapshotState& st, const std::vector<std::uint32_t>& ids);
  boost::asio::awaitable<void> lookup_warm_groups(
      const SnapshotState& st, const std::vector<std::uint32_t>& ids,
      const std::vector<std::vector<std::string>>& keys,
      std::vector<std::vector<std::optional<Value>>>& parts);
  /// Like try_get_local for many keys: served only if every involved shard is warm.
  std::vector<std::optional<Value>> try_multi_get_local(const std::vector<Key>& keys, bool& served);

  ScanCursor make_scan(std::uint32_t first, std::uint32_t last, ScanOptions o) const;
  boost::asio::awaitable<ShardHandle> borrow_on(std::shared_ptr<SnapshotState> st,
                                                std::uint32_t db_id);
  static ShardHandle make_handle(std::shared_ptr<HandleState> s) {
    ShardHandle h;
    h.s_ = std::move(s);
    return h;
  }

  void close() noexcept;
  bool closed() const noexcept { return closed_.load(std::memory_order_acquire); }
  bool opened() const noexcept { return opened_.load(std::memory_order_acquire); }

  /// The executor for lookups that block on the network (a pool created on first need).
  boost::asio::any_io_executor blocking_executor();

  void note_get(std::chrono::steady_clock::time_point start, bool found) const;
  void note_multi_get(std::chrono::steady_clock::time_point start,
                      const std::vector<std::optional<Value>>& v) const;
  void acquire_tokens_blocking(std::uint64_t n);

 private:
  boost::asio::awaitable<std::shared_ptr<SnapshotState>> build_state(ManifestRef loaded,
                                                                     ManifestRef current,
                                                                     Manifest manifest);
  boost::asio::awaitable<std::shared_ptr<shard::ShardReader>> ensure_open(
      std::shared_ptr<SnapshotState> st, std::uint32_t db_id);
  boost::asio::awaitable<void> open_all(std::shared_ptr<SnapshotState> st);
  boost::asio::awaitable<std::optional<Value>> lookup(std::shared_ptr<SnapshotState> st,
                                                      std::uint32_t db_id, std::string key);
  boost::asio::awaitable<void> lookup_group(std::shared_ptr<SnapshotState> st, std::uint32_t db_id,
                                            const std::vector<std::string>* keys,
                                            std::vector<std::optional<Value>>* out);
  boost::asio::awaitable<void> acquire_tokens(std::uint64_t n);
  void install(std::shared_ptr<SnapshotState> st);
  shard::ShardOpenContext open_context(const SnapshotState& st, const ShardMeta& m);
  /// download or range for a manifest (L-08), from the options.
  AccessMode choose_access(const Manifest& m) const;
  /// The reader's factory of a tier (created on first use, shared by its snapshots).
  std::shared_ptr<shard::ShardFactory> factory_for(AccessMode mode);

  friend class WarmPin;
  /// Publishes `st` as the current state (under state_mu_); returns the previous one after no
  /// warm lookup uses it any more.
  std::shared_ptr<SnapshotState> swap_state(std::shared_ptr<SnapshotState> st);

  boost::asio::any_io_executor ex_;
  std::string prefix_;
  ReaderOptions opts_;
  std::shared_ptr<spdlog::logger> logger_;
  std::shared_ptr<ObjectStore> objects_;
  std::shared_ptr<ManifestStore> manifests_;
  std::mutex factory_mu_;
  std::shared_ptr<shard::ShardFactory> download_factory_;
  std::shared_ptr<shard::ShardFactory> range_factory_;

  mutable std::mutex state_mu_;
  std::shared_ptr<SnapshotState> state_;
  /// state_.get(), readable without the mutex (WarmPin); written under state_mu_.
  std::atomic<SnapshotState*> current_{nullptr};
  struct alignas(64) HazardSlot {
    std::atomic<SnapshotState*> ptr{nullptr};
  };
  static constexpr std::size_t kHazardSlots = 64;
  mutable std::array<HazardSlot, kHazardSlots> hazards_;
  std::atomic<bool> closed_{false};
  std::atomic<bool> opened_{false};
  shard::AsyncSemaphore refresh_mutex_{1};

  std::mutex pool_mu_;
  std::unique_ptr<boost::asio::thread_pool> blocking_pool_;
};

/// The object store a reader uses when none is given (mapped root or S3).
std::shared_ptr<ObjectStore> default_object_store(boost::asio::any_io_executor ex,
                                                  const ReaderOptions& o,
                                                  const std::string& prefix);
/// The shard factories of a reader's two tiers, from its options.
std::shared_ptr<shard::ShardFactory> make_download_factory(const ReaderOptions& o);
std::shared_ptr<shard::ShardFactory> make_range_factory(const ReaderOptions& o);
/// The "shardy" spdlog logger if registered, else a silent one.
std::shared_ptr<spdlog::logger> default_logger();

}  // namespace shardy::detail
