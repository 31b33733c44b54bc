// Routing a key to a shard, and encoding it for storage (interop spec section 3).
//
//   db_id = XXH3_64(seed 0, canonical_bytes(key)) mod num_dbs      (unsigned 64-bit)
//
// canonical_bytes: integer -> 8-byte signed little-endian (only [-2^63, 2^63-1]); text -> its
// UTF-8 bytes; bytes -> as they are. The storage encoding (key_encoding) is independent of it.
// Everything here is pure and thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <shardy/error.hpp>
#include <shardy/key.hpp>
#include <string>
#include <string_view>

namespace shardy {

/// The manifest's build_meta.key_encoding.
enum class KeyEncoding : std::uint8_t { u64be, u32be, utf8, raw };

/// "u64be" / "u32be" / "utf8" / "raw" (exact, lowercase); nullopt for anything else.
std::optional<KeyEncoding> parse_key_encoding(std::string_view s) noexcept;
std::string_view to_string(KeyEncoding e) noexcept;

/// The bytes that are hashed for routing. Fails with errc::key_not_routable for integers
/// outside the signed 64-bit range.
std::string canonical_bytes(const Key& key, error_code& ec);
std::string canonical_bytes(const Key& key);

/// XXH3-64 with seed 0 (libxxhash).
std::uint64_t xxh3_64(std::string_view bytes) noexcept;

/// hash mod num_dbs (num_dbs > 0).
inline std::uint32_t shard_for_hash(std::uint64_t hash, std::uint32_t num_dbs) noexcept {
  return static_cast<std::uint32_t>(hash % num_dbs);
}

/// The writer's storage encoding (shardyfusion serde.make_key_encoder): u64be takes integers in
/// [0, 2^64-1]; u32be integers in [0, 2^32-1]; utf8/raw take text or bytes. Anything else fails
/// with errc::key_encoding_error.
std::string encode_key_for_write(const Key& key, KeyEncoding encoding, error_code& ec);
std::string encode_key_for_write(const Key& key, KeyEncoding encoding);

/// The reader's lookup encoding (SnapshotRouter.encode_lookup_key): like the writer's, except
/// that u64be passes an 8-byte bytes key through unchanged and u32be a 4-byte one.
std::string encode_key_for_lookup(const Key& key, KeyEncoding encoding, error_code& ec);
std::string encode_key_for_lookup(const Key& key, KeyEncoding encoding);

/// Where a key goes: its shard and its stored key bytes.
struct RouteResult {
  std::uint32_t db_id = 0;
  std::string storage_key;
};

/// HASH routing for one snapshot (num_dbs, key_encoding). Cheap to copy. The constructor throws
/// errc::invalid_argument when num_dbs is 0.
class Router {
 public:
  Router(std::uint32_t num_dbs, KeyEncoding encoding);

  std::uint32_t num_dbs() const noexcept { return num_dbs_; }
  KeyEncoding key_encoding() const noexcept { return encoding_; }

  /// The shard of a key (errc::key_not_routable on failure). Routing never depends on the
  /// encoding; a key that routes may still fail to encode.
  std::uint32_t shard_for(const Key& key, error_code& ec) const;
  std::uint32_t shard_for(const Key& key) const;

  /// Shard and lookup-encoded storage key (route first, then encode, as the reference does).
  RouteResult route_lookup(const Key& key, error_code& ec) const;
  RouteResult route_lookup(const Key& key) const;
  /// Shard and write-encoded storage key.
  RouteResult route_write(const Key& key, error_code& ec) const;
  RouteResult route_write(const Key& key) const;

 private:
  std::uint32_t num_dbs_;
  KeyEncoding encoding_;
};

}  // namespace shardy
