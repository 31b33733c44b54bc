// What a reader can tell about the snapshot it serves (reader-features G-01..G-05).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <shardy/access_mode.hpp>
#include <shardy/manifest.hpp>
#include <string>
#include <string_view>

namespace shardy {

/// Summary of the pinned snapshot (G-01).
struct SnapshotInfo {
  std::string run_id;
  std::uint32_t num_dbs = 0;
  ShardingStrategy sharding = ShardingStrategy::hash;
  Timestamp created_at{};      ///< the writer's build_meta.created_at
  std::string manifest_ref;    ///< the manifest the reader loaded
  std::string current_ref;     ///< what _CURRENT named (differs after a cold-start fallback)
  Timestamp published_at{};    ///< publish time of the loaded manifest (see ReaderHealth)
  std::int64_t row_count = 0;  ///< sum of the shards' row counts (duplicates included)
  KeyEncoding key_encoding = KeyEncoding::u64be;
  std::string hash_algorithm;
  /// The tier this snapshot is read with: download or range (never automatic; L-08).
  AccessMode access_mode = AccessMode::download;
};

/// Per-shard entries (G-02, E-11): shard_details() returns one ShardMeta per db_id in
/// [0, num_dbs), with synthesized empty entries (no db_url, row_count 0) for shards the manifest
/// leaves out.
using ShardDetail = ShardMeta;

enum class HealthStatus : std::uint8_t { healthy, degraded, unhealthy };
std::string_view to_string(HealthStatus s) noexcept;

/// health() never does I/O and never fails (G-03).
///
/// manifest_age is measured from the publish time of the snapshot the reader serves: the
/// updated_at of the _CURRENT pointer that named it (or, after a cold-start fallback, the
/// timestamp in the manifest's directory name). This differs from the reference, which measures
/// the reader object's lifetime (G-04): a reader that keeps refreshing onto fresh snapshots stays
/// healthy, and one stuck on an old snapshot turns degraded. Status is `degraded` when a
/// threshold is given and the age is strictly greater than it; `unhealthy` when the reader is
/// closed (or not open).
struct ReaderHealth {
  HealthStatus status = HealthStatus::unhealthy;
  std::string manifest_ref;
  std::chrono::milliseconds manifest_age{0};
  std::uint32_t num_shards = 0;
  bool is_closed = false;
};

}  // namespace shardy
