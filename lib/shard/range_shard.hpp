// The range tier (reader-features L-07, L-08, L-14; interop spec 4.2, 4.5): SQLite shards read in
// place through the ObjectStore, and the per-snapshot choice between download and range.
//
// A range shard is a RangeSource (page cache + sidecar + ETag-pinned range GETs) behind its own
// SQLite VFS, queried through the pooled SqliteShard. Its lookups block on S3, so its threading()
// is blocking_pool: the reader runs them on its blocking pool, never on an io thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <shardy/access_mode.hpp>
#include <span>
#include <string_view>

#include "shard/range_source.hpp"
#include "shard/shard.hpp"

namespace shardy::shard {

struct RangeShardOptions {
  std::size_t page_cache_pages = 1024;  ///< per shard; 0 disables the LRU (L-07)
  /// auto: fetch shard.sidecar when the manifest announces it (custom.sqlite_sidecar);
  /// always: try it for every shard; never: read plainly.
  enum class sidecar_mode : std::uint8_t { automatic, always, never };
  sidecar_mode sidecar = sidecar_mode::automatic;
  std::uint32_t max_gap_pages = 0;                    ///< see RangeSourceOptions
  bool prefetch_chains = true;                        ///< see RangeSourceOptions
  std::size_t max_connections = 16;                   ///< SQLite connections per shard
  std::chrono::milliseconds checkout_timeout{30000};  ///< wait for a free connection (B-04)
  int sqlite_cache_kib = 2048;                        ///< SQLite's own page cache per connection
};

std::shared_ptr<ShardFactory> make_range_shard_factory(RangeShardOptions options = {});

/// The request counters of a shard opened by the range factory; nullopt for other shards.
std::optional<RangeReadMetrics> range_metrics(const ShardReader& shard);

// --- the adaptive tier (L-08) -----------------------------------------------------------------

// The public names (shardy/access_mode.hpp), also visible as shard::AccessMode.
using ::shardy::AccessMode;
using ::shardy::parse_access_mode;
using ::shardy::to_string;

struct AdaptivePolicy {
  std::uint64_t per_shard_threshold = 16ull << 20;  ///< range if any shard is at least this big
  std::uint64_t total_budget = 2ull << 30;          ///< range if all shards add up to this
};

/// download or range for one snapshot from its shards' db_bytes (both thresholds inclusive;
/// no shards -> download).
AccessMode decide_access_mode(std::span<const std::uint64_t> shard_sizes,
                              const AdaptivePolicy& policy = {}) noexcept;
AccessMode decide_access_mode(std::span<const ShardMeta> shards,
                              const AdaptivePolicy& policy = {}) noexcept;

}  // namespace shardy::shard
