#include "shard/sidecar.hpp"

#include <zstd.h>
#include <zstd_errors.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <memory>

#include "core/sidecar_format.hpp"

namespace shardy::shard {

namespace sf = sidecar_format;

namespace {

std::uint32_t load_u32le(const char* p) noexcept {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return std::uint32_t(u[0]) | std::uint32_t(u[1]) << 8 | std::uint32_t(u[2]) << 16 |
         std::uint32_t(u[3]) << 24;
}
std::uint64_t load_u64le(const char* p) noexcept {
  return std::uint64_t(load_u32le(p)) | std::uint64_t(load_u32le(p + 4)) << 32;
}
std::uint16_t load_u16be(const char* p) noexcept {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return static_cast<std::uint16_t>(u[0] << 8 | u[1]);
}

bool valid_page_size(std::uint64_t ps) noexcept {
  return ps >= sf::min_page_size && ps <= sf::max_page_size && std::has_single_bit(ps);
}

bool is_btree_type(unsigned char t) noexcept {
  return t == sf::interior_index_page || t == sf::interior_table_page || t == sf::leaf_index_page ||
         t == sf::leaf_table_page;
}

// The b-tree page layout fields gap stripping needs: cell pointer array end and cell content
// area start. nullopt when `page` is too short to hold them.
struct GapBounds {
  std::size_t cpa_end;
  std::size_t cca;
};
std::optional<GapBounds> gap_bounds(std::string_view page, std::uint32_t pageno) noexcept {
  const std::size_t base = pageno == 1 ? sf::page1_header_offset : 0;
  if (page.size() <= base) return std::nullopt;
  const auto type = static_cast<unsigned char>(page[base]);
  if (!is_btree_type(type)) return GapBounds{0, 0};  // stored whole
  const std::size_t hdr = (type == sf::interior_index_page || type == sf::interior_table_page)
                              ? sf::interior_header_len
                              : sf::leaf_header_len;
  if (page.size() < base + 7) return std::nullopt;
  const std::size_t ncells = load_u16be(page.data() + base + 3);
  std::size_t cca = load_u16be(page.data() + base + 5);
  if (cca == 0) cca = 65536;
  return GapBounds{base + hdr + 2 * ncells, cca};
}

// Little-endian u32 reader over the decompressed body.
struct BodyCursor {
  std::string_view body;
  std::size_t pos = 0;
  std::size_t remaining() const noexcept { return body.size() - pos; }
  bool u32(std::uint32_t& v) noexcept {
    if (remaining() < 4) return false;
    v = load_u32le(body.data() + pos);
    pos += 4;
    return true;
  }
  bool u32s(std::uint64_t count, std::vector<std::uint32_t>& out) {
    if (count > remaining() / 4) return false;
    out.resize(count);
    for (auto& v : out) {
      v = load_u32le(body.data() + pos);
      pos += 4;
    }
    return true;
  }
};

SidecarDecodeResult reject(SidecarReject r, std::string detail) {
  SidecarDecodeResult out;
  out.reason = r;
  out.detail = std::move(detail);
  return out;
}

}  // namespace

std::string_view to_string(SidecarReject r) noexcept {
  switch (r) {
    case SidecarReject::none:
      return "none";
    case SidecarReject::truncated_prefix:
      return "truncated_prefix";
    case SidecarReject::bad_magic:
      return "bad_magic";
    case SidecarReject::newer_version:
      return "newer_version";
    case SidecarReject::older_version:
      return "older_version";
    case SidecarReject::bad_page_size:
      return "bad_page_size";
    case SidecarReject::body_too_large:
      return "body_too_large";
    case SidecarReject::zstd_error:
      return "zstd_error";
    case SidecarReject::zstd_no_checksum:
      return "zstd_no_checksum";
    case SidecarReject::zstd_checksum_mismatch:
      return "zstd_checksum_mismatch";
    case SidecarReject::body_size_mismatch:
      return "body_size_mismatch";
    case SidecarReject::body_truncated:
      return "body_truncated";
    case SidecarReject::pageno_zero:
      return "pageno_zero";
    case SidecarReject::pagenos_not_ascending:
      return "pagenos_not_ascending";
    case SidecarReject::offsets_bad_start:
      return "offsets_bad_start";
    case SidecarReject::offsets_decreasing:
      return "offsets_decreasing";
    case SidecarReject::offsets_bad_end:
      return "offsets_bad_end";
    case SidecarReject::chain_heads_not_ascending:
      return "chain_heads_not_ascending";
    case SidecarReject::chain_offsets_bad_start:
      return "chain_offsets_bad_start";
    case SidecarReject::chain_offsets_not_increasing:
      return "chain_offsets_not_increasing";
    case SidecarReject::chain_offsets_bad_end:
      return "chain_offsets_bad_end";
    case SidecarReject::chain_head_mismatch:
      return "chain_head_mismatch";
    case SidecarReject::page_bad_header:
      return "page_bad_header";
    case SidecarReject::reconstructed_page_size:
      return "reconstructed_page_size";
    case SidecarReject::db_page_size_mismatch:
      return "db_page_size_mismatch";
    case SidecarReject::db_reserved_bytes:
      return "db_reserved_bytes";
    case SidecarReject::unbound:
      return "unbound";
    case SidecarReject::tag_mismatch:
      return "tag_mismatch";
    case SidecarReject::page_beyond_file:
      return "page_beyond_file";
    case SidecarReject::fetch_failed:
      return "fetch_failed";
  }
  return "unknown";
}

std::span<const std::uint32_t> Sidecar::chain(std::size_t i) const noexcept {
  if (i >= chain_heads.size()) return {};
  return std::span<const std::uint32_t>(chain_pages)
      .subspan(chain_offsets[i], chain_offsets[i + 1] - chain_offsets[i]);
}

const std::string* Sidecar::page(std::uint32_t pageno) const noexcept {
  auto it = std::lower_bound(pagenos.begin(), pagenos.end(), pageno);
  if (it == pagenos.end() || *it != pageno) return nullptr;
  return &pages[static_cast<std::size_t>(it - pagenos.begin())];
}

std::optional<std::uint32_t> sqlite_header_page_size(std::string_view header) noexcept {
  if (header.size() < sf::db_header_page_size_offset + 2) return std::nullopt;
  std::uint32_t ps = load_u16be(header.data() + sf::db_header_page_size_offset);
  if (ps == 1) ps = 65536;
  if (!valid_page_size(ps)) return std::nullopt;
  return ps;
}

std::string strip_page_gap(std::string_view page, std::uint32_t pageno) {
  auto b = gap_bounds(page, pageno);
  if (!b || b->cca == 0 || b->cca < b->cpa_end || b->cca > page.size()) return std::string(page);
  std::string out(page.substr(0, b->cpa_end));
  out.append(page.substr(b->cca));
  return out;
}

std::optional<std::string> reconstruct_page(std::string_view stored, std::uint32_t pageno,
                                            std::uint32_t page_size, SidecarReject* reason) {
  auto fail = [&](SidecarReject r) -> std::optional<std::string> {
    if (reason) *reason = r;
    return std::nullopt;
  };
  auto b = gap_bounds(stored, pageno);
  if (!b) return fail(SidecarReject::page_bad_header);
  if (b->cca == 0) {  // not a b-tree page: stored whole
    if (stored.size() != page_size) return fail(SidecarReject::reconstructed_page_size);
    return std::string(stored);
  }
  if (b->cpa_end > stored.size() || b->cca < b->cpa_end || b->cca > page_size)
    return fail(SidecarReject::page_bad_header);
  const std::size_t gap = b->cca - b->cpa_end;
  if (stored.size() + gap != page_size) return fail(SidecarReject::reconstructed_page_size);
  std::string out;
  out.reserve(page_size);
  out.append(stored.substr(0, b->cpa_end));
  out.append(gap, '\0');
  out.append(stored.substr(b->cpa_end));
  return out;
}

SidecarDecodeResult decode_sidecar(std::string_view bytes, SidecarLimits limits) {
  using R = SidecarReject;
  if (bytes.size() < sf::tag_offset) return reject(R::truncated_prefix, "shorter than 18 bytes");
  if (bytes.substr(0, sf::magic.size()) != sf::magic) return reject(R::bad_magic, "not SQPC");
  const auto version = static_cast<std::uint8_t>(bytes[sf::version_offset]);
  if (version > sf::version) return reject(R::newer_version, "version " + std::to_string(version));
  if (version < sf::version) return reject(R::older_version, "version " + std::to_string(version));
  const std::uint64_t body_size = load_u64le(bytes.data() + sf::body_size_offset);
  const std::uint32_t page_size = load_u32le(bytes.data() + sf::page_size_offset);
  if (!valid_page_size(page_size))
    return reject(R::bad_page_size, "page_size " + std::to_string(page_size));
  const std::size_t tag_len = static_cast<unsigned char>(bytes[sf::tag_len_offset]);
  if (bytes.size() < sf::tag_offset + tag_len)
    return reject(R::truncated_prefix, "db_tag runs past the end");
  if (body_size > limits.max_body_size)
    return reject(R::body_too_large, "body_size " + std::to_string(body_size));

  Sidecar s;
  s.version = version;
  s.body_size = body_size;
  s.page_size = page_size;
  s.db_tag = std::string(bytes.substr(sf::tag_offset, tag_len));

  // Exactly one zstd frame, carrying a content checksum.
  const std::string_view frame = bytes.substr(sf::tag_offset + tag_len);
  const std::size_t frame_size = ZSTD_findFrameCompressedSize(frame.data(), frame.size());
  if (ZSTD_isError(frame_size))
    return reject(R::zstd_error, std::string("frame: ") + ZSTD_getErrorName(frame_size));
  if (frame_size != frame.size())
    return reject(R::zstd_error, "trailing bytes after the zstd frame");
  // Frame header: magic 0xFD2FB528 (LE), then the descriptor whose bit 2 is the checksum flag.
  if (frame.size() < 5 || load_u32le(frame.data()) != 0xFD2FB528u)
    return reject(R::zstd_error, "not a zstd data frame");
  if (!(static_cast<unsigned char>(frame[4]) & 0x04))
    return reject(R::zstd_no_checksum, "frame without content checksum");
  const unsigned long long content_size = ZSTD_getFrameContentSize(frame.data(), frame.size());
  if (content_size == ZSTD_CONTENTSIZE_ERROR) return reject(R::zstd_error, "bad frame header");
  if (content_size != ZSTD_CONTENTSIZE_UNKNOWN && content_size != body_size)
    return reject(R::body_size_mismatch, "frame content size " + std::to_string(content_size) +
                                             " != body_size " + std::to_string(body_size));

  // One spare byte of output detects a body longer than body_size.
  std::string body(static_cast<std::size_t>(body_size) + 1, '\0');
  {
    std::unique_ptr<ZSTD_DCtx, decltype(&ZSTD_freeDCtx)> dctx(ZSTD_createDCtx(), ZSTD_freeDCtx);
    if (!dctx) return reject(R::zstd_error, "out of memory");
    ZSTD_inBuffer in{frame.data(), frame.size(), 0};
    ZSTD_outBuffer out{body.data(), body.size(), 0};
    std::size_t ret = 1;
    while (ret != 0) {
      ret = ZSTD_decompressStream(dctx.get(), &out, &in);
      if (ZSTD_isError(ret)) {
        if (ZSTD_getErrorCode(ret) == ZSTD_error_checksum_wrong)
          return reject(R::zstd_checksum_mismatch, "content checksum mismatch");
        return reject(R::zstd_error, ZSTD_getErrorName(ret));
      }
      if (ret != 0 && out.pos == out.size)
        return reject(R::body_size_mismatch, "body longer than body_size");
      if (ret != 0 && in.pos == in.size && out.pos < out.size)
        return reject(R::zstd_error, "truncated frame");
    }
    if (out.pos != body_size)
      return reject(R::body_size_mismatch, "decompressed " + std::to_string(out.pos) +
                                               " != body_size " + std::to_string(body_size));
    body.resize(out.pos);
  }

  BodyCursor c{body};
  std::uint32_t n = 0;
  if (!c.u32(n) || !c.u32s(n, s.pagenos)) return reject(R::body_truncated, "pagenos");
  for (std::size_t i = 0; i < s.pagenos.size(); ++i) {
    if (s.pagenos[i] == 0) return reject(R::pageno_zero, "pagenos[" + std::to_string(i) + "]");
    if (i > 0 && s.pagenos[i] <= s.pagenos[i - 1])
      return reject(R::pagenos_not_ascending, "pagenos[" + std::to_string(i) + "]");
  }
  std::vector<std::uint32_t> offsets;
  if (!c.u32s(std::uint64_t(n) + 1, offsets)) return reject(R::body_truncated, "offsets");
  if (offsets[0] != 0) return reject(R::offsets_bad_start, "offsets[0] != 0");
  for (std::size_t i = 1; i < offsets.size(); ++i)
    if (offsets[i] < offsets[i - 1])
      return reject(R::offsets_decreasing, "offsets[" + std::to_string(i) + "]");

  std::uint32_t chains = 0;
  if (!c.u32(chains) || !c.u32s(chains, s.chain_heads))
    return reject(R::body_truncated, "chain_heads");
  for (std::size_t i = 0; i < s.chain_heads.size(); ++i) {
    if (s.chain_heads[i] == 0)
      return reject(R::pageno_zero, "chain_heads[" + std::to_string(i) + "]");
    if (i > 0 && s.chain_heads[i] <= s.chain_heads[i - 1])
      return reject(R::chain_heads_not_ascending, "chain_heads[" + std::to_string(i) + "]");
  }
  if (!c.u32s(std::uint64_t(chains) + 1, s.chain_offsets))
    return reject(R::body_truncated, "chain_offsets");
  if (s.chain_offsets[0] != 0) return reject(R::chain_offsets_bad_start, "chain_offsets[0] != 0");
  for (std::size_t i = 1; i < s.chain_offsets.size(); ++i)
    if (s.chain_offsets[i] <= s.chain_offsets[i - 1])
      return reject(R::chain_offsets_not_increasing, "chain_offsets[" + std::to_string(i) + "]");
  // M is implied by chain_offsets[C]; the chain pages and then exactly the pages blob follow.
  const std::uint64_t m = s.chain_offsets.back();
  if (m > c.remaining() / 4)
    return reject(R::chain_offsets_bad_end,
                  "chain_offsets[C] = " + std::to_string(m) + " exceeds the body");
  c.u32s(m, s.chain_pages);
  for (std::size_t i = 0; i < s.chain_heads.size(); ++i)
    if (s.chain_pages[s.chain_offsets[i]] != s.chain_heads[i])
      return reject(R::chain_head_mismatch, "chain " + std::to_string(i));
  for (auto p : s.chain_pages)
    if (p == 0) return reject(R::pageno_zero, "chain_pages");

  const std::string_view blob = c.body.substr(c.pos);
  if (offsets.back() != blob.size())
    return reject(R::offsets_bad_end, "offsets[n] = " + std::to_string(offsets.back()) +
                                          ", pages blob is " + std::to_string(blob.size()));

  s.pages.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    SidecarReject why = R::none;
    auto page = reconstruct_page(blob.substr(offsets[i], offsets[i + 1] - offsets[i]), s.pagenos[i],
                                 page_size, &why);
    if (!page) return reject(why, "page " + std::to_string(s.pagenos[i]));
    s.pages.push_back(std::move(*page));
  }
  if (const std::string* p1 = s.page(1)) {
    const auto hdr_ps = sqlite_header_page_size(*p1);
    if (!hdr_ps || *hdr_ps != page_size)
      return reject(R::db_page_size_mismatch, "page 1 header disagrees with page_size");
    if ((*p1)[sf::db_header_reserved_offset] != 0)
      return reject(R::db_reserved_bytes, "page 1 reserves bytes per page");
  }

  SidecarDecodeResult out;
  out.sidecar = std::move(s);
  return out;
}

std::string normalize_etag(std::string_view etag) {
  auto trim = [](std::string_view v) {
    while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
    while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
    return v;
  };
  etag = trim(etag);
  if (etag.starts_with("W/") || etag.starts_with("w/")) etag.remove_prefix(2);
  if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"')
    etag = etag.substr(1, etag.size() - 2);
  return std::string(etag);
}

SidecarReject check_sidecar_binding(const Sidecar& s, std::string_view db_etag,
                                    std::optional<std::uint32_t> db_page_size,
                                    std::optional<std::uint64_t> db_bytes, std::string* detail) {
  auto fail = [&](SidecarReject r, std::string d) {
    if (detail) *detail = std::move(d);
    return r;
  };
  if (s.db_tag.empty()) return fail(SidecarReject::unbound, "tag_len 0");
  const std::string want = normalize_etag(db_etag);
  if (want.empty() || normalize_etag(s.db_tag) != want)
    return fail(SidecarReject::tag_mismatch,
                "sidecar tag " + s.db_tag + " != shard.db ETag " + std::string(db_etag));
  if (db_page_size && *db_page_size != s.page_size)
    return fail(SidecarReject::db_page_size_mismatch,
                "sidecar page_size " + std::to_string(s.page_size) + " != database's " +
                    std::to_string(*db_page_size));
  if (db_bytes) {
    const std::uint64_t npages = (*db_bytes + s.page_size - 1) / s.page_size;
    const bool beyond = (!s.pagenos.empty() && s.pagenos.back() > npages) ||
                        std::any_of(s.chain_pages.begin(), s.chain_pages.end(),
                                    [&](std::uint32_t p) { return p > npages; });
    if (beyond)
      return fail(SidecarReject::page_beyond_file,
                  "a page beyond the file's " + std::to_string(npages) + " pages");
  }
  return SidecarReject::none;
}

}  // namespace shardy::shard
