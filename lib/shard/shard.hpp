// The shard layer's internal interface: one open shard database (ShardReader) and the way shards
// are opened (ShardFactory). The reader (lib/reader) only talks to these two classes; each
// access tier implements them:
//   - download-and-cache (lib/shard/download_cache.*): shard.db streamed into a local cache and
//     opened immutable + mmap; lookups are local memory reads (about 1 us);
//   - range reads (lib/shard/range_*, the `range` helper): a SQLite VFS over S3 range GETs, whose
//     lookups block on S3.
//
// Threading (architecture.md "Threading"):
//   - ShardReader::get/scan/borrow_connection are blocking and thread-safe: any number of threads
//     may call them at once on one shard (each call checks out its own SQLite connection).
//   - A reader whose threading() is `caller_thread` never waits on the network: the reader calls
//     it directly on the calling thread (sync Reader fast path) or on an io_context thread.
//   - A reader whose threading() is `blocking_pool` may wait on S3: the reader never calls it on an
//     io_context thread; it runs the call on its blocking pool
//     (ShardOpenContext::blocking_executor) so that the io_context stays free to serve the very S3
//     requests the call waits for.
//   - ShardFactory::open is a coroutine on ShardOpenContext::executor (an io executor). It may
//     co_await S3; it must not block that thread for long (run blocking setup on the blocking
//     executor).
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/json/object.hpp>
#include <cstdint>
#include <memory>
#include <optional>
#include <shardy/key.hpp>
#include <shardy/manifest.hpp>
#include <shardy/object_store.hpp>
#include <string>
#include <string_view>
#include <vector>

struct sqlite3;

namespace shardy {
class MetricsSink;
}

namespace spdlog {
class logger;
}

namespace shardy::shard {

/// One stored row: encoded key bytes and value bytes.
struct Row {
  std::string key;
  Value value;
};

/// Exclusive use of one of a shard's SQLite connections (for raw SQL through the borrowed-handle
/// API). The connection goes back to the shard's pool when the lease is destroyed. The lease also
/// keeps the shard itself alive.
class ConnectionLease {
 public:
  ConnectionLease() = default;
  ConnectionLease(sqlite3* handle, std::shared_ptr<void> release_guard)
      : handle_(handle), guard_(std::move(release_guard)) {}
  sqlite3* handle() const noexcept { return handle_; }
  explicit operator bool() const noexcept { return handle_ != nullptr; }

 private:
  sqlite3* handle_ = nullptr;
  std::shared_ptr<void> guard_;  // its deleter returns the connection
};

enum class LookupThreading : std::uint8_t {
  caller_thread,  ///< local memory/disk reads only: safe on any thread, including io threads
  blocking_pool,  ///< may block on the network: never on an io_context thread
};

/// Bounds of a scan over encoded keys: [start, end) with an optional exclusive start (used to
/// continue after the last key of a previous chunk). An empty optional means unbounded.
struct ScanBounds {
  std::optional<std::string> start;
  bool start_exclusive = false;
  std::optional<std::string> end;  ///< exclusive
};

class ShardReader {
 public:
  virtual ~ShardReader() = default;

  /// Point lookup of an already-encoded storage key. nullopt = absent; an empty value is a value.
  /// Blocking, thread-safe. Throws shardy::error (errc::shard_error, ...) on failure.
  virtual std::optional<Value> get(std::string_view storage_key) = 0;

  /// Up to `limit` rows with keys inside `bounds`, in ascending key (memcmp) order.
  /// Blocking, thread-safe.
  virtual std::vector<Row> scan(const ScanBounds& bounds, std::size_t limit) = 0;

  /// A connection for raw SQL (read-only). Blocking (may wait for a free connection).
  virtual ConnectionLease borrow_connection() = 0;

  /// Which threads may call get/scan (see the file comment).
  virtual LookupThreading threading() const noexcept = 0;
};

/// Everything a factory needs to open one shard of one snapshot.
struct ShardOpenContext {
  boost::asio::any_io_executor executor;           ///< io executor (S3 requests run here)
  boost::asio::any_io_executor blocking_executor;  ///< for work that blocks a thread (see below)
  /// Keeps blocking_executor's pool alive: pass it to detail::hop_to (core/blocking_hop.hpp).
  std::shared_ptr<const void> blocking_owner;
  std::shared_ptr<ObjectStore> objects;
  ShardMeta meta;              ///< db_id, db_url (set), db_bytes, checkpoint_id, ...
  std::string db_object;       ///< "<db_url>/shard.db"
  std::string run_id;          ///< the snapshot's run id
  boost::json::object custom;  ///< the manifest's build_meta.custom (e.g. "sqlite_sidecar")
  std::shared_ptr<MetricsSink> metrics;    ///< may be null
  std::shared_ptr<spdlog::logger> logger;  ///< never null (a silent logger by default)
};

class ShardFactory {
 public:
  virtual ~ShardFactory() = default;
  /// Opens one non-empty shard. Throws shardy::error on failure.
  virtual boost::asio::awaitable<std::shared_ptr<ShardReader>> open(ShardOpenContext ctx) = 0;

  /// Called when a snapshot state that used the shard is retired by a refresh and the shard is
  /// not part of the new state (same db_url and checkpoint_id): the factory may drop cached
  /// files once nobody uses them. Default: nothing.
  virtual void retire(const ShardMeta& /*meta*/) {}

  /// Whether open() needs ShardOpenContext::blocking_executor (the reader creates its blocking
  /// pool only for factories that do; it is empty otherwise).
  virtual bool needs_blocking_executor() const noexcept { return false; }
};

}  // namespace shardy::shard
