// Producer of the SQLite page-cache sidecar, format v8 (interop spec 4.5), from a finished
// shard.db. Byte-compatible with shardyfusion's producer: the same page selection (dbstat:
// interior pages and schema pages), the same overflow-chain map, gap stripping, zstd level 3
// with a content checksum. Blocking (reads the local file).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace shardy::writer {

/// The decompressed sidecar body and what it describes.
struct SidecarBody {
  std::string body;             ///< n, pagenos, offsets, C, heads, chain offsets, chains, pages
  std::uint32_t page_size = 0;  ///< from the database
  std::uint32_t n_pages = 0;
  std::uint32_t chain_count = 0;
};

/// Builds the body from a shard file. Throws errc::shard_error when the file cannot be read,
/// errc::unsupported when a sidecar must not be produced (dbstat missing, WAL journal mode,
/// non-zero reserved bytes per page, an invalid page size).
SidecarBody build_sidecar_body(const std::filesystem::path& db_file);

/// One zstd frame (level 3, with content checksum) of `body`.
std::string compress_sidecar_body(std::string_view body);

/// The sidecar object: the uncompressed v8 prefix (db_tag omitted when longer than 255 bytes)
/// followed by `compressed_frame`.
std::string frame_sidecar(std::uint64_t body_size, std::uint32_t page_size, std::string_view db_tag,
                          std::string_view compressed_frame);

/// build_sidecar_body + compress + frame, bound to `db_tag` (the ETag of the uploaded shard.db).
std::string build_sidecar(const std::filesystem::path& db_file, std::string_view db_tag);

}  // namespace shardy::writer
