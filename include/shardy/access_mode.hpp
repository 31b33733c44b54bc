// How a reader reads shard databases (reader-features L-06, L-07, L-08): download each shard.db
// into a local cache, or read it in place with S3 range requests, or choose per snapshot.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace shardy {

enum class AccessMode : std::uint8_t {
  download,  ///< download-and-cache: shard.db is copied to local_root, then read locally
  range,     ///< range reads: shard.db is read in place (page cache, sidecar, ETag-pinned GETs)
  /// Per snapshot (at open and at each refresh), from the manifest's db_bytes: range when any
  /// shard is at least ReaderOptions::range_shard_bytes or all of them add up to at least
  /// ReaderOptions::range_total_bytes, download otherwise (L-08).
  automatic,
};

/// "download" | "range" | "auto".
std::string_view to_string(AccessMode m) noexcept;
/// "download" | "range" | "auto"; nullopt for anything else.
std::optional<AccessMode> parse_access_mode(std::string_view s) noexcept;

}  // namespace shardy
