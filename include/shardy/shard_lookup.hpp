// A manifest's shard records read one at a time, on demand (reader-features E-15).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <shardy/error.hpp>
#include <shardy/manifest.hpp>
#include <shardy/routing.hpp>
#include <span>

namespace shardy {

/// A v4 manifest whose shard rows are decoded only when asked for, for snapshots with very many
/// shards (num_dbs in the hundreds of thousands) when a tool or service needs the records of a
/// few of them: parse_manifest decodes and keeps every row; this keeps the manifest's SQLite
/// database and reads one row by its primary key. The counterpart of the reference's
/// `SqliteShardLookup` / `SnapshotRouter.from_build_meta`; no reader class uses it.
///
/// Construction copies the bytes into a read-only in-memory SQLite database, parses and
/// validates build_meta exactly like parse_manifest (same rules, same diagnostics), and checks
/// the range of the shard ids with one min/max query (two b-tree descents on the db_id primary
/// key): no shard row is decoded. shard(id) reads that one row, validates it with
/// parse_manifest's per-row rules (shards.db_id_unique, shards.non_negative, shards.min_key,
/// shards.max_key, shards.writer_info, column types) and keeps the record in an LRU cache of
/// `cache_size` records (0: no cache). An id without a row is the synthesized empty record of
/// Manifest::all_shards() (A-14: no db_url, counts 0). Failures are errc::manifest_parse_error
/// with diagnostics "manifest rule '<rule>': <detail>", as parse_manifest's. Rules that need
/// every row are not checked (shards.count follows from unique ids in range when db_id is the
/// primary key, as the spec's schema has it; a duplicate id fails when that id is read).
///
/// Thread safety: every member may be called from many threads at once (shard() and stats()
/// serialise on an internal mutex). Movable, not copyable; a moved-from object may only be
/// destroyed or assigned to.
class LazyShardLookup {
 public:
  static constexpr std::size_t default_cache_size = 4096;

  explicit LazyShardLookup(std::span<const char> manifest_bytes,
                           std::size_t cache_size = default_cache_size);
  ~LazyShardLookup();
  LazyShardLookup(LazyShardLookup&&) noexcept;
  LazyShardLookup& operator=(LazyShardLookup&&) noexcept;

  /// The validated build_meta row.
  const BuildMeta& build() const noexcept;

  /// HASH routing of this snapshot (num_dbs, key_encoding): routing reads no shard rows.
  /// errc::unsupported for CEL sharding (as the readers).
  Router router() const;

  /// The record of `db_id`. errc::invalid_argument when db_id >= num_dbs;
  /// errc::manifest_parse_error when its row breaks a rule (the next call reads it again).
  ShardMeta shard(std::uint32_t db_id) const;
  ShardMeta shard(std::uint32_t db_id, error_code& ec) const noexcept;

  struct Stats {
    std::uint64_t rows_read = 0;   ///< shard() calls answered from the database
    std::uint64_t cache_hits = 0;  ///< shard() calls answered from the cache
    std::size_t cached = 0;        ///< records in the cache now
  };
  Stats stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace shardy
