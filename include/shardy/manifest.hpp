// The _CURRENT pointer and the v4 SQLite manifest (interop spec sections 1.4, 1.5, 2).
// Parsing and building are pure (no I/O) and thread-safe. Parse failures are
// errc::manifest_parse_error, with diagnostics naming the rule that failed.
#pragma once

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <chrono>
#include <cstdint>
#include <optional>
#include <shardy/error.hpp>
#include <shardy/key.hpp>
#include <shardy/routing.hpp>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace shardy {

using Timestamp = std::chrono::sys_time<std::chrono::microseconds>;

/// Parses the datetime forms the reference accepts (spec 1.4): "YYYY-MM-DD[T ]HH:MM:SS[.f+]"
/// with "Z", "+HH:MM"/"-HH:MM" or no offset (UTC), and integer Unix seconds.
std::optional<Timestamp> parse_timestamp(std::string_view s) noexcept;
/// pydantic's JSON form: "YYYY-MM-DDTHH:MM:SS[.ffffff]Z" (fraction omitted when zero).
std::string format_timestamp(Timestamp t);
/// The manifest directory form: "YYYY-MM-DDTHH:MM:SS.ffffffZ" (always 6 digits).
std::string format_timestamp_dir(Timestamp t);

// ---------------------------------------------------------------------------------------------
// _CURRENT

struct CurrentPointer {
  std::int64_t format_version = 1;
  std::string manifest_content_type = "application/x-sqlite3";
  std::string manifest_ref;  ///< absolute URL of the manifest object
  std::string run_id;
  Timestamp updated_at{};
};

CurrentPointer parse_current_pointer(std::string_view json, error_code& ec,
                                     std::string* diagnostics = nullptr);
CurrentPointer parse_current_pointer(std::string_view json);
/// Sorted keys, compact separators, no trailing newline (byte-identical to shardyfusion).
std::string serialize_current_pointer(const CurrentPointer& p);

// ---------------------------------------------------------------------------------------------
// Manifest v4

enum class ShardingStrategy : std::uint8_t { hash, cel };

struct ShardingSpec {
  ShardingStrategy strategy = ShardingStrategy::hash;
  std::string hash_algorithm = "xxh3_64";
  std::optional<std::string> cel_expr;
  std::optional<boost::json::object> cel_columns;    ///< name -> type string
  std::optional<boost::json::array> routing_values;  ///< CEL categorical tokens
};

struct BuildMeta {
  std::string run_id;
  Timestamp created_at{};
  std::string created_at_text;  ///< as stored (parse keeps it; build writes format_timestamp)
  std::uint32_t num_dbs = 0;
  std::string s3_prefix;
  std::string key_col = "_key";
  ShardingSpec sharding;
  std::string db_path_template = "db={db_id:05d}";
  std::string shard_prefix = "shards";
  std::int64_t format_version = 4;
  KeyEncoding key_encoding = KeyEncoding::u64be;
  boost::json::object custom;
};

struct WriterInfo {
  std::int64_t attempt = 0;
  std::int64_t duration_ms = 0;
  std::optional<std::int64_t> stage_id;
  std::optional<std::int64_t> task_attempt_id;
};

struct ShardMeta {
  std::uint32_t db_id = 0;
  std::optional<std::string> db_url;  ///< nullopt: an empty shard
  std::int64_t attempt = 0;
  std::int64_t row_count = 0;
  std::int64_t db_bytes = 0;
  std::optional<Key> min_key;  ///< integer or text (raw, un-encoded key)
  std::optional<Key> max_key;
  std::optional<std::string> checkpoint_id;
  WriterInfo writer_info;
  boost::json::object writer_info_json;  ///< as stored (extra keys preserved)
};

struct Manifest {
  BuildMeta build;
  /// The manifest's rows, ordered by db_id (empty shards are usually absent).
  std::vector<ShardMeta> shards;

  /// One entry per db_id in [0, num_dbs): rows from `shards`, and synthesized empty entries
  /// (no db_url, row_count 0, db_bytes 0) for the missing ids.
  std::vector<ShardMeta> all_shards() const;
  std::int64_t total_row_count() const noexcept;
};

/// Parses and validates manifest bytes (magic, sqlite3_deserialize, columns by name, every rule
/// of spec 2.8). JSON integers keep full 64-bit precision.
///
/// Failures are errc::manifest_parse_error with diagnostics "manifest rule '<rule>': <detail>".
/// Rules: magic, sqlite (SQLite cannot open/query it: missing table...), column (a missing
/// column), build_meta.rows, <column name> (wrong type or NULL), created_at, num_dbs,
/// format_version, key_encoding, sharding.json, sharding.extra_key, sharding.strategy,
/// sharding.hash_algorithm, sharding.cel_expr, sharding.cel_columns, sharding.routing_values,
/// routing_values.cardinality, custom, shards.db_id_range, shards.db_id_unique, shards.count,
/// shards.non_negative, shards.min_key, shards.max_key, shards.writer_info.
///
/// Lax like pydantic: integer columns also take integral REALs and decimal TEXT, text columns
/// take BLOBs holding UTF-8, extra columns and extra writer_info keys are ignored, column names
/// match case-insensitively (Python's sqlite3.Row). JSON floats, booleans, NaN/Infinity and
/// integers beyond 64 bits are rejected where the reference would coerce or accept them
/// (min/max keys must be a JSON integer, string or null).
/// A valid vector-only manifest parses: the KV gate is check_kv_readable, not a parse rule.
Manifest parse_manifest(std::span<const char> bytes, error_code& ec,
                        std::string* diagnostics = nullptr);
Manifest parse_manifest(std::span<const char> bytes);

/// Checks the semantic rules of spec 2.8 on an in-memory manifest (what build_manifest and the
/// writer rely on). Throws errc::manifest_parse_error naming the rule.
void validate_manifest(const Manifest& m);

/// The KV-reader compatibility gate (reader-features A-13): throws errc::unsupported when
/// custom.vector is an object without "unified": true (a vector-only snapshot). It is deliberately
/// not part of parse_manifest: such a manifest is well-formed (history, rollback and cleanup list
/// and load it), and a parse error would make a KV reader silently fall back to an older manifest,
/// whereas shardyfusion's sync KV readers fail without fallback. KV readers call it after loading
/// (at open and at refresh).
void check_kv_readable(const Manifest& m);

/// Builds a valid v4 SQLite manifest file (not WAL; exactly the schema of spec 2.2; sharding JSON
/// with only the five allowed keys). Validates first. The JSON columns are written like Python's
/// json.dumps(sort_keys=True): default separators, ASCII-escaped; created_at is
/// format_timestamp(created_at); writer_info holds the four WriterInfo fields (writer_info_json is
/// not written); a bytes min/max key is stored as its UTF-8 decoding (errc::invalid_argument when
/// it is not UTF-8, as the reference cannot publish it either).
std::string build_manifest(const Manifest& m);

}  // namespace shardy
