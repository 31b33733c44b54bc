// Decoder and validator of the SQLite page-cache sidecar, format v8 (interop spec 4.5).
//
// Pure: no I/O, thread-safe. A sidecar is an optional accelerator, so a bad one is never an
// error: decoding returns a named rejection reason (for logs and metrics) and the caller reads
// the shard plainly.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace shardy::shard {

/// Why a sidecar was not used. Every rule of spec 4.5 has its own reason.
enum class SidecarReject : std::uint8_t {
  none = 0,
  truncated_prefix,              ///< shorter than the fixed prefix or its db_tag
  bad_magic,                     ///< not "SQPC"
  newer_version,                 ///< version > 8: treated as absent
  older_version,                 ///< version < 8 (older layouts are not read)
  bad_page_size,                 ///< not a power of two in [512, 65536]
  body_too_large,                ///< body_size beyond the decoder's limit
  zstd_error,                    ///< not exactly one valid zstd frame
  zstd_no_checksum,              ///< the frame has no content checksum
  zstd_checksum_mismatch,        ///< the frame's content checksum does not match
  body_size_mismatch,            ///< decompressed length != body_size
  body_truncated,                ///< the body ends inside its arrays
  pageno_zero,                   ///< a page number of 0 (they are 1-based)
  pagenos_not_ascending,         ///< pagenos not strictly ascending
  offsets_bad_start,             ///< offsets[0] != 0
  offsets_decreasing,            ///< offsets decrease
  offsets_bad_end,               ///< offsets[n] != the length of the pages blob
  chain_heads_not_ascending,     ///< chain_heads not strictly ascending
  chain_offsets_bad_start,       ///< chain_offsets[0] != 0
  chain_offsets_not_increasing,  ///< chain_offsets not strictly increasing
  chain_offsets_bad_end,         ///< chain_offsets[C] != M
  chain_head_mismatch,           ///< a chain does not start with its head
  page_bad_header,               ///< a stored b-tree page too short for its own header/gap
  reconstructed_page_size,       ///< a reconstructed page is not exactly page_size bytes
  db_page_size_mismatch,         ///< page_size != the database header's (page 1)
  db_reserved_bytes,             ///< page 1 says reserved bytes != 0 (stripping invalid)
  unbound,                       ///< tag_len 0: not bound to a shard.db ETag
  tag_mismatch,                  ///< db_tag != the live shard.db ETag
  page_beyond_file,              ///< a stored or chain page beyond the shard's page count
  fetch_failed,                  ///< the sidecar could not be fetched (absent or error)
};

inline constexpr std::size_t sidecar_reject_count =
    static_cast<std::size_t>(SidecarReject::fetch_failed) + 1;

/// A stable snake_case name ("bad_magic"), for logs and metric labels.
std::string_view to_string(SidecarReject r) noexcept;

/// A decoded, validated sidecar. Pages are reconstructed (gap re-inserted as zeros).
struct Sidecar {
  std::uint8_t version = 0;
  std::uint64_t body_size = 0;
  std::uint32_t page_size = 0;
  std::string db_tag;  ///< as stored (may carry quotes / W/)

  std::vector<std::uint32_t> pagenos;  ///< 1-based, strictly ascending
  std::vector<std::string> pages;      ///< pages[i] is page pagenos[i], page_size bytes each

  std::vector<std::uint32_t> chain_heads;    ///< strictly ascending
  std::vector<std::uint32_t> chain_offsets;  ///< C+1 indexes into chain_pages
  std::vector<std::uint32_t> chain_pages;    ///< every chain, head first, in traversal order

  std::size_t chain_count() const noexcept { return chain_heads.size(); }
  /// The pages of chain i (head first).
  std::span<const std::uint32_t> chain(std::size_t i) const noexcept;
  /// The stored page, or nullptr.
  const std::string* page(std::uint32_t pageno) const noexcept;
};

struct SidecarDecodeResult {
  std::optional<Sidecar> sidecar;  ///< set iff reason == none
  SidecarReject reason = SidecarReject::none;
  std::string detail;  ///< what exactly failed (for logs)
};

struct SidecarLimits {
  std::uint64_t max_body_size = 512ull << 20;
};

/// Decodes and validates every structural rule of spec 4.5 (prefix, zstd frame and checksum,
/// body size, ordering, offsets, chains, page reconstruction, page 1's header when stored).
SidecarDecodeResult decode_sidecar(std::string_view bytes, SidecarLimits limits = {});

/// An ETag in canonical form: surrounding whitespace, a weak `W/` prefix and the surrounding
/// double quotes removed, so that `"abc"`, `W/"abc"` and `abc` compare equal.
std::string normalize_etag(std::string_view etag);

/// The binding rules against the live shard.db: bound (tag_len > 0), tag == ETag (normalized
/// on both sides), page size == the database header's when known, every page number within
/// the file when its size is known. Returns none when the sidecar may be used.
SidecarReject check_sidecar_binding(const Sidecar& s, std::string_view db_etag,
                                    std::optional<std::uint32_t> db_page_size,
                                    std::optional<std::uint64_t> db_bytes,
                                    std::string* detail = nullptr);

/// The page size stored in a SQLite database header (bytes 16-17 BE, 1 = 65536), or nullopt if
/// `header` is shorter than 18 bytes or the value is not a power of two in [512, 65536].
std::optional<std::uint32_t> sqlite_header_page_size(std::string_view header) noexcept;

/// Gap stripping as the producer does it (spec 4.5); used by tests and mutation helpers.
/// Returns the page unchanged when it is not a b-tree page or its header is inconsistent.
std::string strip_page_gap(std::string_view page, std::uint32_t pageno);

/// Re-inserts the gap of a stored page; nullopt (with reason) when it cannot be exactly
/// page_size bytes.
std::optional<std::string> reconstruct_page(std::string_view stored, std::uint32_t pageno,
                                            std::uint32_t page_size,
                                            SidecarReject* reason = nullptr);

}  // namespace shardy::shard
