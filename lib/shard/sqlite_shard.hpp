// A SQLite shard (table kv(k BLOB PRIMARY KEY, v BLOB) WITHOUT ROWID) opened read-only, with a
// pool of connections so that many threads can look up one shard at once. Each connection keeps
// its prepared statements; a lookup checks one out, binds the key as a BLOB, steps, and returns it.
// A connection goes back to the returning thread's home slot, so a thread keeps reusing "its"
// connection without a lock and without pulling the connection's SQLite state from another core
// (on 2 threads, a shared LIFO pool cost about 15% of async_get throughput); callers that find
// their slot empty fall back to the locked pool (idle list, new connection, another thread's
// parked connection, or a bounded wait).
//
// Shards are immutable once published, so the download tier opens them as
// "file:<path>?immutable=1" with SQLITE_OPEN_NOMUTEX and memory mapping: no shared lock and no
// change-counter check per statement (toolchain.md: ~1 us per lookup instead of ~4 us).
// The range tier reuses this class with its own VFS (SqliteShardOptions::vfs).
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "shard/shard.hpp"

namespace shardy::shard {

struct SqliteShardOptions {
  /// The database to open: a filesystem path (opened as a URI with immutable=1), or, when `vfs` is
  /// set, the name passed to that VFS.
  std::string path;
  /// A registered SQLite VFS name; empty = the default VFS.
  std::string vfs;
  /// Open with immutable=1 (no locking, no change detection). Right for any published shard.
  bool immutable = true;
  /// PRAGMA mmap_size for each connection (0 disables memory mapping).
  std::int64_t mmap_size = 256ll << 20;
  /// PRAGMA cache_size in KiB per connection (negative per SQLite convention is applied as -N).
  int cache_size_kib = 2048;
  /// Upper bound on connections opened for this shard (concurrent lookups beyond it wait).
  std::size_t max_connections = 64;
  /// Longest wait for a free connection once max_connections are in use; then
  /// error(errc::pool_exhausted) (reader-features B-04).
  std::chrono::milliseconds checkout_timeout{30000};
  /// Declared threading of the lookups (download tier: caller_thread).
  LookupThreading threading = LookupThreading::caller_thread;
  /// Kept alive as long as the shard (e.g. a cache-entry lock, or VFS state).
  std::shared_ptr<void> keep_alive;
};

/// Opens the shard and one connection (to fail early on a corrupt or missing file).
/// Throws shardy::error(errc::shard_error) with SQLite's message on failure.
std::shared_ptr<ShardReader> open_sqlite_shard(SqliteShardOptions options);

}  // namespace shardy::shard
