// Builds one SQLite KV shard file exactly as shardyfusion's SqliteAdapter does (interop spec
// 4.1): table `kv(k BLOB PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID`, the writer pragmas, one
// transaction of INSERT OR REPLACE (the last write of a key wins), COMMIT, PRAGMA optimize.
// Blocking (local disk); one builder per thread.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string_view>

struct sqlite3;
struct sqlite3_stmt;

namespace shardy::writer {

/// The exact schema text stored in sqlite_master (readers and tests compare it).
inline constexpr std::string_view kKvSchema =
    "CREATE TABLE kv (k BLOB PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID";

/// The page sizes shardyfusion accepts for shards, ascending.
inline constexpr std::uint32_t kSupportedPageSizes[] = {4096, 8192, 16384, 32768, 65536};
bool is_supported_page_size(std::uint32_t page_size) noexcept;

/// SQLite's WITHOUT ROWID inline payload limit for a page size: ((U-12)*64/255)-23.
std::uint32_t inline_payload_limit(std::uint32_t page_size) noexcept;

/// "auto": the smallest supported page size whose inline limit holds p95 + max_key + 12 bytes,
/// else the largest.
std::uint32_t recommend_page_size(std::uint64_t p95_value_bytes,
                                  std::uint64_t max_key_bytes) noexcept;

class SqliteShardBuilder {
 public:
  /// Creates `path` (replacing any file there) at `page_size` (a supported size), applies the
  /// writer pragmas, creates `kv` and begins the transaction. Throws errc::shard_error.
  SqliteShardBuilder(const std::filesystem::path& path, std::uint32_t page_size);
  ~SqliteShardBuilder();
  SqliteShardBuilder(const SqliteShardBuilder&) = delete;
  SqliteShardBuilder& operator=(const SqliteShardBuilder&) = delete;

  /// INSERT OR REPLACE, key and value bound as BLOBs.
  void put(std::string_view key, std::string_view value);
  /// COMMIT, PRAGMA optimize, close. The file is complete afterwards.
  void finish();

 private:
  sqlite3* db_ = nullptr;
  sqlite3_stmt* insert_ = nullptr;
  std::filesystem::path path_;
};

/// The "auto" page-size step (spec 4.1): reopens a finished shard, computes the nearest-rank p95
/// of length(v) and the max length(k), and when the recommended size differs from the file's,
/// rewrites it with `PRAGMA page_size=N; VACUUM`. Returns the final page size. An empty `kv`
/// keeps the file as it is.
std::uint32_t apply_auto_page_size(const std::filesystem::path& path);

}  // namespace shardy::writer
