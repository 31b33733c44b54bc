// Reader: the blocking face of AsyncReader, safe for any number of calling threads at once.
//
//   shardy::Reader reader("s3://bucket/snap", opts);          // owns a small io thread pool
//   std::optional<shardy::Value> v = reader.get(shardy::Key::text("user-123"));
//
// Performance: a get on an open shard runs entirely on the calling thread (pin the snapshot,
// route, check out a SQLite connection, query): no thread hop, so on a downloaded shard it costs
// little more than the SQLite lookup itself. On a range shard (AccessMode::range) the calling
// thread itself waits for the page GETs, which the io threads serve (so a get must never run on
// an io thread; see below). Only when a shard must be opened or downloaded first, for
// multi_get on range shards (shard groups run in parallel on the blocking pool), or when the
// rate limiter makes the call wait asynchronously, does the call hop to the io threads and block
// until they are done.
//
// Calling a blocking method from one of the reader's own io threads (e.g. from inside a handler
// running on the io_context given to the constructor) would deadlock; it fails with
// errc::would_deadlock instead.
//
// Every blocking operation has a throwing form (shardy::error, with diagnostics) and an
// error_code form that never throws.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <functional>
#include <memory>
#include <shardy/async_reader.hpp>

namespace shardy {

class Reader {
 public:
  /// Opens the snapshot (blocking) with its own pool of `io_threads` threads (>= 1).
  explicit Reader(std::string prefix, ReaderOptions options = {}, std::size_t io_threads = 2);
  /// Opens the snapshot (blocking) on the application's io_context, which the application must be
  /// running on other threads.
  Reader(boost::asio::io_context& io, std::string prefix, ReaderOptions options = {});
  /// Closes the reader and, when it owns its pool, joins the threads.
  ~Reader();
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;

  std::optional<Value> get(const Key& key, const RoutingContext& context = {});
  std::optional<Value> get(const Key& key, error_code& ec) noexcept;
  std::vector<std::optional<Value>> multi_get(const std::vector<Key>& keys);
  std::vector<std::optional<Value>> multi_get(const std::vector<Key>& keys,
                                              error_code& ec) noexcept;
  bool refresh();
  bool refresh(error_code& ec) noexcept;

  ShardHandle borrow_shard(std::uint32_t db_id);
  ShardHandle borrow_shard_for_key(const Key& key);
  /// One handle per distinct shard of `keys`, all on one snapshot (F-02; see ShardHandleSet).
  ShardHandleSet borrow_shards_for_keys(const std::vector<Key>& keys);

  ScanCursor scan(std::uint32_t db_id, ScanOptions options = {}) const {
    return async_.scan(db_id, std::move(options));
  }
  ScanCursor scan_all(ScanOptions options = {}) const {
    return async_.scan_all(std::move(options));
  }
  /// The next chunk of a scan; empty when done.
  std::vector<ScanRow> next(ScanCursor& cursor);

  std::uint32_t route_key(const Key& key, const RoutingContext& context = {}) const {
    return async_.route_key(key, context);
  }
  ShardDetail shard_for_key(const Key& key, const RoutingContext& context = {}) const {
    return async_.shard_for_key(key, context);
  }
  std::vector<ShardDetail> shards_for_keys(const std::vector<Key>& keys) const {
    return async_.shards_for_keys(keys);
  }
  std::string encode_key(const Key& key) const { return async_.encode_key(key); }
  KeyEncoding key_encoding() const { return async_.key_encoding(); }
  SnapshotInfo snapshot_info() const { return async_.snapshot_info(); }
  std::vector<ShardDetail> shard_details() const { return async_.shard_details(); }
  ReaderHealth health(std::optional<std::chrono::milliseconds> staleness_threshold = {}) const {
    return async_.health(staleness_threshold);
  }

  /// Idempotent; later calls fail with errc::reader_closed.
  void close() noexcept { async_.close(); }

  /// The asynchronous reader sharing this reader's state.
  const AsyncReader& async() const noexcept { return async_; }

 private:
  void check_thread() const;

  std::unique_ptr<boost::asio::thread_pool> pool_;
  std::function<bool()> on_own_thread_;
  AsyncReader async_;
};

}  // namespace shardy
