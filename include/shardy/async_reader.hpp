// AsyncReader: serves point lookups, multi-key lookups and scans from a published snapshot, and
// swaps atomically to newer snapshots (architecture.md; reader-features A-H).
//
// Usage (coroutine, on the application's executor):
//   auto reader = co_await shardy::AsyncReader::async_open(ex, "s3://bucket/snap", opts);
//   std::optional<shardy::Value> v = co_await reader.async_get(shardy::Key::integer(42));
//   bool changed = co_await reader.async_refresh();
//
// Every async function takes a completion token (default boost::asio::deferred, so `co_await`
// works; use_future, callbacks, as_tuple, cancel_after work too), completes with
// void(error_code, T), and never completes inline. The handler runs on its associated executor
// (for a coroutine: the coroutine's executor); without one, on the reader's executor.
//
// Thread safety: an AsyncReader (a cheap, copyable handle to shared state) may be used from any
// number of threads at once. Snapshot state is immutable and reference counted: every operation
// pins the state it started on and finishes on it, even if a refresh swaps in a newer one or the
// reader is closed meanwhile (H-11, B-05, C-06).
//
// Errors (shardy::errc): reader_closed after close(); key_not_routable / key_encoding_error for
// keys the snapshot cannot take (D-03); invalid_argument for a routing context on a HASH
// snapshot (E-09); storage and shard errors as they happen. Absent keys are std::nullopt.
#pragma once

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/append.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/defer.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/system_executor.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/json/object.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <shardy/error.hpp>
#include <shardy/key.hpp>
#include <shardy/reader_options.hpp>
#include <shardy/routing.hpp>
#include <shardy/snapshot_info.hpp>
#include <string>
#include <type_traits>
#include <vector>

struct sqlite3;

namespace shardy {

namespace detail {
class ReaderCore;
struct SnapshotState;
struct ScanState;
struct HandleState;

/// The warm path of async_get, compiled in the library: when the key's shard is open and its
/// lookups never wait on the network (a downloaded shard), looks the key up now, on the calling
/// thread, and returns true with the result in (ec, out); otherwise returns false and the caller
/// takes the asynchronous path. Never throws. The overload without a context is async_get(key).
bool try_get_now(ReaderCore& core, const Key& key, const boost::json::object& ctx, error_code& ec,
                 std::optional<Value>& out) noexcept;
bool try_get_now(ReaderCore& core, const Key& key, error_code& ec,
                 std::optional<Value>& out) noexcept;
/// The reader's executor (where handlers without an associated executor run).
boost::asio::any_io_executor reader_executor(const ReaderCore& core) noexcept;

/// Completes `handler` with `args` as a continuation (boost::asio::defer): never inside the
/// calling function, on the handler's associated executor, else on the reader's executor. One
/// hop, with no type erasure, so that a warm lookup costs little more than the SQLite lookup
/// itself: when the associated executor is an any_io_executor that holds a plain thread_pool or
/// io_context executor (a coroutine spawned on one), the hop goes through that executor directly
/// instead of through the type-erased require/prefer/execute calls (same queue, same semantics).
template <typename Handler, typename... Args>
void complete_deferred(Handler handler, const ReaderCore& core, Args&&... args) {
  namespace asio = boost::asio;
  using handler_executor = asio::associated_executor_t<Handler>;
  if constexpr (std::is_same_v<handler_executor, asio::system_executor>) {
    asio::defer(asio::bind_executor(reader_executor(core),
                                    asio::append(std::move(handler), std::forward<Args>(args)...)));
  } else if constexpr (std::is_same_v<handler_executor, asio::any_io_executor>) {
    const handler_executor ex = asio::get_associated_executor(handler);
    if (const auto* pool = ex.template target<asio::thread_pool::executor_type>()) {
      asio::defer(asio::bind_executor(
          *pool, asio::append(std::move(handler), std::forward<Args>(args)...)));
      return;
    }
    if (const auto* io = ex.template target<asio::io_context::executor_type>()) {
      asio::defer(
          asio::bind_executor(*io, asio::append(std::move(handler), std::forward<Args>(args)...)));
      return;
    }
    asio::defer(asio::append(std::move(handler), std::forward<Args>(args)...));
  } else {
    asio::defer(asio::append(std::move(handler), std::forward<Args>(args)...));
  }
}

/// The initiation of async_get: the warm path now (see try_get_now), else the coroutine path.
struct InitiateGet {
  template <typename Handler>
  void operator()(Handler handler, std::shared_ptr<ReaderCore> core, Key key) const {
    if (core) {
      error_code ec;
      std::optional<Value> v;
      if (try_get_now(*core, key, ec, v)) {
        complete_deferred(std::move(handler), *core, ec, std::move(v));
        return;
      }
    }
    start(std::move(handler), std::move(core), std::move(key), boost::json::object());
  }
  template <typename Handler>
  void operator()(Handler handler, std::shared_ptr<ReaderCore> core, Key key,
                  boost::json::object ctx) const {
    if (core) {
      error_code ec;
      std::optional<Value> v;
      if (try_get_now(*core, key, ctx, ec, v)) {
        complete_deferred(std::move(handler), *core, ec, std::move(v));
        return;
      }
    }
    start(std::move(handler), std::move(core), std::move(key), std::move(ctx));
  }
  template <typename Handler>
  static void start(Handler handler, std::shared_ptr<ReaderCore> core, Key key,
                    boost::json::object ctx);
};
}  // namespace detail

/// Column values for CEL routing (E-08). shardy routes HASH snapshots only: a non-empty context
/// on a HASH snapshot fails with errc::invalid_argument (E-09); CEL snapshots are refused at open
/// with errc::unsupported.
using RoutingContext = boost::json::object;

/// One row of a scan: the stored (encoded) key, the value and its shard.
struct ScanRow {
  std::uint32_t db_id = 0;
  std::string key;
  Value value;
};

/// Position of a scan over one shard or over all shards (in db_id order). It pins the snapshot it
/// was created on, so a scan sees one snapshot from start to end. Created by scan()/scan_all();
/// advanced by async_next()/next(). Not thread-safe (one consumer at a time).
class ScanCursor {
 public:
  ScanCursor() = default;
  /// True once every row was returned.
  bool done() const noexcept;

 private:
  friend class detail::ReaderCore;
  std::shared_ptr<detail::ScanState> s_;
};

/// A borrowed shard (F-01..F-06): keeps its snapshot alive, reads already-encoded keys without
/// routing, metrics or rate limiting (F-07), and exposes a SQLite connection of the shard for raw
/// read-only SQL. Move-only RAII; releasing it never closes the shard for others. The connection
/// is exclusively this handle's while the handle lives. An empty shard (no db_url) has no
/// connection: native_handle() is null and get() returns nullopt.
class ShardHandle {
 public:
  ShardHandle() = default;
  ShardHandle(ShardHandle&&) noexcept = default;
  ShardHandle& operator=(ShardHandle&&) noexcept = default;
  ~ShardHandle();

  explicit operator bool() const noexcept { return s_ != nullptr; }
  std::uint32_t db_id() const;
  const ShardDetail& detail() const;
  /// The shard's SQLite connection (read-only, immutable), or null for an empty shard.
  sqlite3* native_handle() const;
  /// Lookup of an encoded storage key (see AsyncReader::encode_key). Blocking.
  std::optional<Value> get(std::string_view storage_key) const;
  /// Lookups of encoded keys, in input order (F-04). Blocking.
  std::vector<std::optional<Value>> multi_get(const std::vector<std::string>& storage_keys) const;
  /// Releases the snapshot pin now (idempotent).
  void release() noexcept;

 private:
  friend class detail::ReaderCore;
  std::shared_ptr<detail::HandleState> s_;
};

/// Handles for many keys borrowed in one call (F-02): one handle per distinct shard the keys route
/// to (each holds one of that shard's connections; the reference hands out one per distinct key),
/// all pinning the same snapshot, on which every key was routed. handles[handle_of_key[i]] serves
/// keys[i]; handles are in order of first appearance.
struct ShardHandleSet {
  std::vector<ShardHandle> handles;
  std::vector<std::size_t> handle_of_key;
  ShardHandle& for_key(std::size_t i) { return handles.at(handle_of_key.at(i)); }
};

class AsyncReader {
 public:
  using executor_type = boost::asio::any_io_executor;

  /// An unopened reader: every call fails with errc::reader_not_open; health() is unhealthy.
  AsyncReader() = default;

  /// Opens the snapshot at `prefix` (s3://bucket/prefix or file:///dir; trailing '/' ignored):
  /// reads the pointer, loads and validates the manifest (falling back to older manifests on
  /// errc::manifest_parse_error, see ReaderOptions::max_fallback_attempts), builds the router and
  /// the shard set, and opens every shard when shard_open is eager. The reader runs its work on
  /// `ex`. Completion: void(error_code, AsyncReader).
  template <boost::asio::completion_token_for<void(error_code, AsyncReader)> Token =
                boost::asio::deferred_t>
  static auto async_open(executor_type ex, std::string prefix, ReaderOptions options = {},
                         Token&& token = {}) {
    return boost::asio::async_initiate<Token, void(error_code, AsyncReader)>(
        [](auto handler, executor_type ex, std::string prefix, ReaderOptions options) {
          initiate_open(std::move(ex), std::move(prefix), std::move(options), std::move(handler));
        },
        token, std::move(ex), std::move(prefix), std::move(options));
  }

  /// Looks one key up. Completion: void(error_code, std::optional<Value>).
  template <boost::asio::completion_token_for<void(error_code, std::optional<Value>)> Token =
                boost::asio::deferred_t>
  auto async_get(Key key, Token&& token = {}) const {
    return boost::asio::async_initiate<Token, void(error_code, std::optional<Value>)>(
        detail::InitiateGet{}, token, core_, std::move(key));
  }
  template <boost::asio::completion_token_for<void(error_code, std::optional<Value>)> Token =
                boost::asio::deferred_t>
  auto async_get(Key key, RoutingContext context, Token&& token = {}) const {
    return boost::asio::async_initiate<Token, void(error_code, std::optional<Value>)>(
        detail::InitiateGet{}, token, core_, std::move(key), std::move(context));
  }

  /// Looks one key up from a boost::asio::awaitable coroutine: `auto v = co_await
  /// reader.co_get(key);`. When the key's shard is open and local (a downloaded shard) and no
  /// rate limiter is set, the lookup runs at once and the coroutine continues without a round trip
  /// through its executor's queue: on a busy thread pool that round trip (a lock shared by all
  /// threads, and the coroutine moving to whichever thread takes it) costs about as much as the
  /// lookup itself (benchmark/reader_lookup_bench, (b)). Otherwise it is `co_await
  /// async_get(key)`. Errors are thrown as boost::system::system_error, as `co_await async_get`
  /// throws them. Unlike async_get, a warm co_get does not yield: a coroutine that does many in a
  /// row keeps its thread for as long as a loop of synchronous lookups would.
  boost::asio::awaitable<std::optional<Value>> co_get(Key key) const;
  boost::asio::awaitable<std::optional<Value>> co_get(Key key, RoutingContext context) const;

  /// Looks many keys up: one result per input key, in input order (duplicates included). Keys are
  /// grouped by shard and the groups run in parallel (bounded by max_concurrency). All or
  /// nothing (D-09): if any key cannot be routed or encoded, or any shard fails, the call fails
  /// with the error of the lowest failing db_id (routing/encoding errors: the first such key).
  /// Completion: void(error_code, std::vector<std::optional<Value>>).
  template <boost::asio::completion_token_for<void(error_code, std::vector<std::optional<Value>>)>
                Token = boost::asio::deferred_t>
  auto async_multi_get(std::vector<Key> keys, Token&& token = {}) const {
    return boost::asio::async_initiate<Token, void(error_code, std::vector<std::optional<Value>>)>(
        [](auto handler, std::shared_ptr<detail::ReaderCore> core, std::vector<Key> keys) {
          initiate_multi_get(std::move(core), std::move(keys), std::move(handler));
        },
        token, core_, std::move(keys));
  }

  /// Reads the pointer; if it names another manifest, builds the new snapshot state off to the
  /// side and swaps it in atomically (H-11). Completion: void(error_code, bool changed).
  /// Unchanged pointer: false, without loading anything. Malformed new manifest: false, the old
  /// snapshot keeps serving (logged). Other failures (no pointer, storage errors, shard open
  /// errors with eager opening): an error, and the old snapshot keeps serving (H-12).
  /// Refreshes are serialized.
  template <
      boost::asio::completion_token_for<void(error_code, bool)> Token = boost::asio::deferred_t>
  auto async_refresh(Token&& token = {}) const {
    return boost::asio::async_initiate<Token, void(error_code, bool)>(
        [](auto handler, std::shared_ptr<detail::ReaderCore> core) {
          initiate_refresh(std::move(core), std::move(handler));
        },
        token, core_);
  }

  /// Borrows the shard `db_id` (opening/downloading it if needed).
  /// Completion: void(error_code, ShardHandle).
  template <boost::asio::completion_token_for<void(error_code, ShardHandle)> Token =
                boost::asio::deferred_t>
  auto async_borrow_shard(std::uint32_t db_id, Token&& token = {}) const {
    return boost::asio::async_initiate<Token, void(error_code, ShardHandle)>(
        [](auto handler, std::shared_ptr<detail::ReaderCore> core, std::uint32_t id) {
          initiate_borrow(std::move(core), id, std::move(handler));
        },
        token, core_, db_id);
  }
  /// Borrows the shard a key routes to (F-01), routed on the snapshot the handle pins (so a
  /// concurrent refresh cannot hand out a shard of another snapshot). Routing errors complete
  /// with an error and leave nothing pinned (F-08).
  template <boost::asio::completion_token_for<void(error_code, ShardHandle)> Token =
                boost::asio::deferred_t>
  auto async_borrow_shard_for_key(Key key, Token&& token = {}) const {
    return boost::asio::async_initiate<Token, void(error_code, ShardHandle)>(
        [](auto handler, std::shared_ptr<detail::ReaderCore> core, Key key) {
          initiate_borrow_key(std::move(core), std::move(key), std::move(handler));
        },
        token, core_, std::move(key));
  }

  /// Borrows the shards of many keys at once (F-02, see ShardHandleSet), opening them as needed.
  /// Empty `keys` give an empty set (still failing on a closed reader). Routing errors or a shard
  /// that fails to open complete with an error and leave nothing pinned or borrowed.
  /// Completion: void(error_code, ShardHandleSet).
  template <boost::asio::completion_token_for<void(error_code, ShardHandleSet)> Token =
                boost::asio::deferred_t>
  auto async_borrow_shards_for_keys(std::vector<Key> keys, Token&& token = {}) const {
    return boost::asio::async_initiate<Token, void(error_code, ShardHandleSet)>(
        [](auto handler, std::shared_ptr<detail::ReaderCore> core, std::vector<Key> keys) {
          initiate_borrow_keys(std::move(core), std::move(keys), std::move(handler));
        },
        token, core_, std::move(keys));
  }

  /// The next chunk of a scan (at most chunk_size rows; empty when the scan is done).
  /// Completion: void(error_code, std::vector<ScanRow>).
  template <boost::asio::completion_token_for<void(error_code, std::vector<ScanRow>)> Token =
                boost::asio::deferred_t>
  auto async_next(ScanCursor& cursor, Token&& token = {}) const {
    return boost::asio::async_initiate<Token, void(error_code, std::vector<ScanRow>)>(
        [](auto handler, std::shared_ptr<detail::ReaderCore> core, ScanCursor* c) {
          initiate_next(std::move(core), c, std::move(handler));
        },
        token, core_, &cursor);
  }

  // --- synchronous, no I/O (C-08) ---------------------------------------------------------------
  // These work on the current snapshot and throw shardy::error (reader_closed after close()).

  /// The shard of a key (E-10).
  std::uint32_t route_key(const Key& key, const RoutingContext& context = {}) const;
  /// The manifest record of the key's shard (E-11); synthesized for empty shards.
  ShardDetail shard_for_key(const Key& key, const RoutingContext& context = {}) const;
  /// One record per input key, in input order (E-12).
  std::vector<ShardDetail> shards_for_keys(const std::vector<Key>& keys) const;
  /// The stored form of a key under the snapshot's key encoding (E-13), for ShardHandle::get.
  std::string encode_key(const Key& key) const;
  KeyEncoding key_encoding() const;  ///< of the current snapshot (E-14)
  SnapshotInfo snapshot_info() const;
  std::vector<ShardDetail> shard_details() const;
  /// Never fails, never does I/O; see ReaderHealth for how the age is measured.
  ReaderHealth health(std::optional<std::chrono::milliseconds> staleness_threshold = {}) const;
  /// A scan over one shard / over all shards in db_id order, on the current snapshot.
  ScanCursor scan(std::uint32_t db_id, ScanOptions options = {}) const;
  ScanCursor scan_all(ScanOptions options = {}) const;

  /// Closes the reader (idempotent): later calls fail with errc::reader_closed; operations in
  /// flight and borrowed handles finish on the snapshot they pinned, whose shards close when the
  /// last of them lets go.
  void close() noexcept;
  bool is_open() const noexcept;

  executor_type get_executor() const;

 private:
  friend class Reader;
  friend struct detail::InitiateGet;
  explicit AsyncReader(std::shared_ptr<detail::ReaderCore> core) : core_(std::move(core)) {}

  static void initiate_open(
      executor_type ex, std::string prefix, ReaderOptions options,
      boost::asio::any_completion_handler<void(error_code, AsyncReader)> handler);
  static void initiate_get(
      std::shared_ptr<detail::ReaderCore> core, Key key, RoutingContext ctx,
      boost::asio::any_completion_handler<void(error_code, std::optional<Value>)> handler);
  static void initiate_multi_get(
      std::shared_ptr<detail::ReaderCore> core, std::vector<Key> keys,
      boost::asio::any_completion_handler<void(error_code, std::vector<std::optional<Value>>)>
          handler);
  static void initiate_refresh(std::shared_ptr<detail::ReaderCore> core,
                               boost::asio::any_completion_handler<void(error_code, bool)> handler);
  static void initiate_borrow(
      std::shared_ptr<detail::ReaderCore> core, std::uint32_t db_id,
      boost::asio::any_completion_handler<void(error_code, ShardHandle)> handler);
  static void initiate_borrow_key(
      std::shared_ptr<detail::ReaderCore> core, Key key,
      boost::asio::any_completion_handler<void(error_code, ShardHandle)> handler);
  static void initiate_borrow_keys(
      std::shared_ptr<detail::ReaderCore> core, std::vector<Key> keys,
      boost::asio::any_completion_handler<void(error_code, ShardHandleSet)> handler);
  static void initiate_next(
      std::shared_ptr<detail::ReaderCore> core, ScanCursor* cursor,
      boost::asio::any_completion_handler<void(error_code, std::vector<ScanRow>)> handler);

  const detail::ReaderCore& core() const;

  std::shared_ptr<detail::ReaderCore> core_;
};

template <typename Handler>
void detail::InitiateGet::start(Handler handler, std::shared_ptr<ReaderCore> core, Key key,
                                boost::json::object ctx) {
  AsyncReader::initiate_get(std::move(core), std::move(key), std::move(ctx), std::move(handler));
}

}  // namespace shardy
