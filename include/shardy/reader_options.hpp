// Options of AsyncReader and Reader: plain aggregates with documented defaults.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <shardy/access_mode.hpp>
#include <shardy/manifest_store.hpp>
#include <shardy/metrics.hpp>
#include <shardy/object_store.hpp>
#include <shardy/rate_limiter.hpp>
#include <shardy/s3_client.hpp>
#include <string>

namespace spdlog {
class logger;
}

namespace shardy {

/// When shards are opened (and, in the download tier, downloaded).
enum class ShardOpenPolicy : std::uint8_t {
  lazy,   ///< on first use (default): open is fast, the first lookup per shard pays
  eager,  ///< all non-empty shards at open and at each refresh, before the swap (A-01)
};

/// The range tier's own settings (reader-features L-07, L-14).
struct RangeReadOptions {
  /// LRU page cache per shard, in database pages; 0 disables it (pages the sidecar primed stay
  /// cached either way).
  std::size_t page_cache_pages = 1024;
  /// Fetch shard.sidecar (interior b-tree pages and the overflow-chain map) once per shard at
  /// open when the manifest announces one (custom.sqlite_sidecar), and prime the page cache with
  /// it. An invalid sidecar, or one bound to another ETag, is ignored (logged).
  bool use_sidecar = true;
  /// SQLite connections per range shard (bounds concurrent lookups on one shard).
  std::size_t max_connections_per_shard = 16;
};

struct ReaderOptions {
  // --- where the snapshot lives ---------------------------------------------------------------
  /// Name of the pointer object under the prefix. Ignored with a custom manifest_store.
  std::string current_pointer_key = "_CURRENT";
  /// A custom manifest store; default: the S3-layout store over `object_store` at the
  /// prefix.
  std::shared_ptr<ManifestStore> manifest_store;
  /// A custom object store; default: built from `object_root` / `s3`.
  std::shared_ptr<ObjectStore> object_store;
  /// Mapped local root: s3://bucket/key is read from <object_root>/bucket/key (no server).
  std::filesystem::path object_root;
  /// Mapped mode, per bucket: s3://<bucket>/key is read from <bucket_dirs[bucket]>/key (other
  /// buckets from object_root, if set). E.g. {"shardy-fixtures": "../shared/fixtures"}.
  std::map<std::string, std::filesystem::path> bucket_dirs;
  /// S3 transport (endpoint, region, addressing, timeouts, retries, credentials).
  S3Options s3;

  // --- access tier (L-06..L-08) -----------------------------------------------------------------
  /// download, range, or automatic (default): chosen per snapshot at open and at each refresh
  /// from the manifest's db_bytes. SnapshotInfo::access_mode tells which one a snapshot uses.
  AccessMode access_mode = AccessMode::automatic;
  /// automatic picks range when any shard's db_bytes is at least this (inclusive) ...
  std::uint64_t range_shard_bytes = 16ull << 20;
  /// ... or when all shards' db_bytes add up to at least this (inclusive).
  std::uint64_t range_total_bytes = 2ull << 30;
  /// Settings of the range tier (used when a snapshot is read with range requests).
  RangeReadOptions range;

  // --- local shard cache (download tier) ------------------------------------------------------
  /// Cache directory for downloaded shards; empty = <system temp dir>/shardy-cache. Shared safely
  /// by several readers and processes (file locks).
  std::filesystem::path local_root;
  /// Downloads running at once per reader.
  std::size_t max_concurrent_downloads = 4;
  /// After a refresh, remove cached files of shards the new snapshot no longer uses, once no
  /// reader (in any process) has them open. false keeps every file (the reference's behaviour).
  bool remove_retired_shards = true;
  /// Memory-mapped bytes per SQLite connection.
  std::int64_t mmap_size = 256ll << 20;
  /// SQLite connections per shard (bounds concurrent lookups on one shard).
  std::size_t max_connections_per_shard = 64;
  /// Longest wait for a free SQLite connection of a shard when all of them are in use, in either
  /// tier (reader-features B-04): only reachable while borrowed shard handles hold connections or
  /// more lookups than connections run on one shard. Past it the lookup or borrow fails with
  /// errc::pool_exhausted (retryable). The wait blocks the calling thread (for AsyncReader's warm
  /// download-tier lookups, an io_context thread), so borrow fewer handles per shard than it has
  /// connections. Must be > 0 (checked at construction, like the reference's ValueError).
  std::chrono::milliseconds pool_checkout_timeout{30000};

  // --- behaviour ------------------------------------------------------------------------------
  /// Cold-start fallback budget (A-10, H-09): when the manifest _CURRENT names is malformed, try
  /// up to this many older manifests, newest first (never one newer than the bad one, H-10).
  /// 0 disables fallback.
  unsigned max_fallback_attempts = 3;
  ShardOpenPolicy shard_open = ShardOpenPolicy::lazy;
  /// Shard groups of one multi_get looked up at once (C-04); also bounds eager opening.
  std::size_t max_concurrency = 64;
  /// Threads of the pool for work that would block an io thread: range-tier lookups of
  /// AsyncReader (the sync Reader runs them on its calling thread), range shard opening, and
  /// download finalisation (fsync). Created on first need; 0 = run that work on the io
  /// executor's threads (only safe for range shards when those are not the threads serving S3).
  std::size_t blocking_threads = 4;

  // --- instrumentation ------------------------------------------------------------------------
  std::shared_ptr<RateLimiter> rate_limiter;  ///< null: unlimited
  /// null: no metrics. When the reader builds its own object store (no `object_store` given) it
  /// also hands this sink to its S3 client (unless `s3.metrics` is set): S3 request, retry and
  /// error events.
  std::shared_ptr<MetricsSink> metrics;
  /// null: the spdlog logger registered as "shardy" if the application registered one, else a
  /// silent logger (the library never prints unless configured, R-01).
  std::shared_ptr<spdlog::logger> logger;
};

/// A scan over encoded keys: [start, end), in chunks of chunk_size rows.
struct ScanOptions {
  std::optional<std::string> start;  ///< inclusive; empty = from the first key
  std::optional<std::string> end;    ///< exclusive; empty = to the last key
  std::size_t chunk_size = 1024;
};

}  // namespace shardy
