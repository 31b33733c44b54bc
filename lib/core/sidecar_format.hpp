// Wire constants of the SQLite page-cache sidecar, format v8 (interop spec 4.5), shared by the
// producer (writer) and the decoder (range reader). Constants only: no logic, no dependencies.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace shardy::sidecar_format {

inline constexpr std::string_view magic = "SQPC";
inline constexpr std::uint8_t version = 8;
inline constexpr std::string_view filename = "shard.sidecar";
inline constexpr std::string_view codec = "zstd";
inline constexpr int zstd_level = 3;

// Uncompressed little-endian prefix: magic[4] version u8, body_size u64, page_size u32,
// tag_len u8, db_tag[tag_len], then one zstd frame (with content checksum) holding the body.
inline constexpr std::size_t version_offset = 4;
inline constexpr std::size_t body_size_offset = 5;
inline constexpr std::size_t page_size_offset = 13;
inline constexpr std::size_t tag_len_offset = 17;
inline constexpr std::size_t tag_offset = 18;
inline constexpr std::size_t max_tag_len = 255;  // longer tags are omitted (tag_len 0)

inline constexpr std::uint32_t min_page_size = 512;
inline constexpr std::uint32_t max_page_size = 65536;

// Gap stripping (b-tree page header fields are big-endian).
inline constexpr std::size_t page1_header_offset = 100;  // the database header precedes page 1's
inline constexpr std::uint8_t interior_index_page = 2;
inline constexpr std::uint8_t interior_table_page = 5;
inline constexpr std::uint8_t leaf_index_page = 10;
inline constexpr std::uint8_t leaf_table_page = 13;
inline constexpr std::size_t interior_header_len = 12;
inline constexpr std::size_t leaf_header_len = 8;
inline constexpr std::size_t db_header_page_size_offset = 16;  // u16 BE; 1 means 65536
inline constexpr std::size_t db_header_reserved_offset = 20;   // must be 0 to strip

}  // namespace shardy::sidecar_format
