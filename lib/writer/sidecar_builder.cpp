#include "writer/sidecar_builder.hpp"

#include <sqlite3.h>
#include <zstd.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <shardy/error.hpp>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "core/sidecar_format.hpp"

namespace shardy::writer {
namespace sf = shardy::sidecar_format;
namespace {

struct FileCloser {
  void operator()(std::FILE* f) const noexcept { std::fclose(f); }
};
using File = std::unique_ptr<std::FILE, FileCloser>;

struct Connection {
  sqlite3* db = nullptr;
  ~Connection() { sqlite3_close_v2(db); }
};

void put_u32(std::string& out, std::uint32_t v) {
  char b[4] = {static_cast<char>(v), static_cast<char>(v >> 8), static_cast<char>(v >> 16),
               static_cast<char>(v >> 24)};
  out.append(b, 4);
}

void put_u64(std::string& out, std::uint64_t v) {
  put_u32(out, static_cast<std::uint32_t>(v));
  put_u32(out, static_cast<std::uint32_t>(v >> 32));
}

// Reads `len` bytes at `offset`; fails if the file is shorter.
void read_at(std::FILE* f, std::uint64_t offset, std::uint8_t* out, std::size_t len,
             const std::filesystem::path& path) {
  if (fseeko(f, static_cast<off_t>(offset), SEEK_SET) != 0 || std::fread(out, 1, len, f) != len) {
    throw_error(errc::shard_error, "short read of " + path.string() + " at offset " +
                                       std::to_string(offset) + " (page_read_short)");
  }
}

std::vector<std::uint32_t> query_pagenos(sqlite3* db, const char* sql,
                                         const std::filesystem::path& path) {
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db, sql, -1, &st, nullptr) != SQLITE_OK) {
    throw_error(errc::unsupported, "dbstat unavailable for " + path.string() + ": " +
                                       sqlite3_errmsg(db) + " (dbstat_unavailable)");
  }
  std::vector<std::uint32_t> out;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    if (sqlite3_column_type(st, 0) == SQLITE_INTEGER) {
      out.push_back(static_cast<std::uint32_t>(sqlite3_column_int64(st, 0)));
    }
  }
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE) {
    throw_error(errc::shard_error, "dbstat query failed for " + path.string());
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::string query_text(sqlite3* db, const char* sql) {
  sqlite3_stmt* st = nullptr;
  std::string out;
  if (sqlite3_prepare_v2(db, sql, -1, &st, nullptr) == SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW) {
    if (const auto* t = sqlite3_column_text(st, 0)) out = reinterpret_cast<const char*>(t);
  }
  sqlite3_finalize(st);
  return out;
}

}  // namespace

SidecarBody build_sidecar_body(const std::filesystem::path& db_file) {
  std::vector<std::uint32_t> pagenos;
  std::vector<std::uint32_t> overflow;
  {
    Connection c;
    if (sqlite3_open_v2(db_file.c_str(), &c.db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
      throw_error(errc::shard_error, "cannot open " + db_file.string() + ": " +
                                         (c.db ? sqlite3_errmsg(c.db) : "out of memory"));
    }
    // Raw page reads are only safe when every committed page lives in the main file.
    std::string mode = query_text(c.db, "PRAGMA journal_mode");
    std::transform(mode.begin(), mode.end(), mode.begin(),
                   [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
    if (mode != "off" && mode != "delete" && mode != "memory" && mode != "truncate" &&
        mode != "persist") {
      throw_error(errc::unsupported, "journal mode '" + mode + "' of " + db_file.string() +
                                         " (unsupported_journal_mode)");
    }
    pagenos = query_pagenos(c.db,
                            "SELECT pageno FROM dbstat WHERE pagetype = 'internal' "
                            "OR name IN ('sqlite_master', 'sqlite_schema') ORDER BY pageno",
                            db_file);
    overflow = query_pagenos(
        c.db, "SELECT pageno FROM dbstat WHERE pagetype = 'overflow' ORDER BY pageno", db_file);
  }

  File f(std::fopen(db_file.c_str(), "rb"));
  if (!f) throw_error(errc::shard_error, "cannot read " + db_file.string());
  std::uint8_t header[100];
  read_at(f.get(), 0, header, sizeof header, db_file);
  std::uint32_t page_size = (std::uint32_t{header[sf::db_header_page_size_offset]} << 8) |
                            header[sf::db_header_page_size_offset + 1];
  if (page_size == 1) page_size = 65536;
  if (page_size < sf::min_page_size || page_size > sf::max_page_size ||
      (page_size & (page_size - 1)) != 0) {
    throw_error(errc::unsupported, "invalid page size in " + db_file.string());
  }
  if (header[sf::db_header_reserved_offset] != 0) {
    throw_error(errc::unsupported,
                "reserved bytes per page in " + db_file.string() + " (reserved_bytes_unsupported)");
  }

  // Stored pages, gap-stripped.
  std::string pages_blob;
  std::vector<std::uint32_t> offsets{0};
  std::vector<std::uint8_t> page(page_size);
  for (std::uint32_t pgno : pagenos) {
    read_at(f.get(), std::uint64_t{pgno - 1} * page_size, page.data(), page_size, db_file);
    const std::size_t base = pgno == 1 ? sf::page1_header_offset : 0;
    const std::uint8_t type = page[base];
    const char* p = reinterpret_cast<const char*>(page.data());
    if (type == sf::interior_index_page || type == sf::interior_table_page ||
        type == sf::leaf_index_page || type == sf::leaf_table_page) {
      const bool interior = type == sf::interior_index_page || type == sf::interior_table_page;
      const std::size_t hdr = interior ? sf::interior_header_len : sf::leaf_header_len;
      const std::size_t ncells = (std::size_t{page[base + 3]} << 8) | page[base + 4];
      std::size_t cca = (std::size_t{page[base + 5]} << 8) | page[base + 6];
      if (cca == 0) cca = 65536;
      const std::size_t cpa_end = base + hdr + 2 * ncells;
      if (cpa_end > page_size || cca > page_size || cca < cpa_end) {
        throw_error(errc::shard_error,
                    "malformed b-tree page " + std::to_string(pgno) + " in " + db_file.string());
      }
      pages_blob.append(p, cpa_end);
      pages_blob.append(p + cca, page_size - cca);
    } else {
      pages_blob.append(p, page_size);
    }
    offsets.push_back(static_cast<std::uint32_t>(pages_blob.size()));
  }

  // Overflow chains: each overflow page starts with its successor (u32 BE, 0 ends the chain);
  // heads are the overflow pages nobody points to.
  std::unordered_map<std::uint32_t, std::uint32_t> successor;
  std::unordered_set<std::uint32_t> overflow_set(overflow.begin(), overflow.end());
  std::unordered_set<std::uint32_t> successors;
  for (std::uint32_t pgno : overflow) {
    std::uint8_t b[4];
    read_at(f.get(), std::uint64_t{pgno - 1} * page_size, b, 4, db_file);
    const std::uint32_t next = (std::uint32_t{b[0]} << 24) | (std::uint32_t{b[1]} << 16) |
                               (std::uint32_t{b[2]} << 8) | b[3];
    if (next != 0 && overflow_set.contains(next)) {
      successor.emplace(pgno, next);
      successors.insert(next);
    }
  }
  std::vector<std::uint32_t> heads;
  for (std::uint32_t pgno : overflow) {  // `overflow` is ascending, so heads are too
    if (!successors.contains(pgno)) heads.push_back(pgno);
  }
  std::vector<std::uint32_t> chain_offsets{0};
  std::vector<std::uint32_t> chain_pages;
  for (std::uint32_t head : heads) {
    std::unordered_set<std::uint32_t> seen{head};
    chain_pages.push_back(head);
    for (auto it = successor.find(head); it != successor.end(); it = successor.find(it->second)) {
      if (!seen.insert(it->second).second) break;  // a cycle: stop (never in a sound file)
      chain_pages.push_back(it->second);
    }
    chain_offsets.push_back(static_cast<std::uint32_t>(chain_pages.size()));
  }

  SidecarBody out;
  out.page_size = page_size;
  out.n_pages = static_cast<std::uint32_t>(pagenos.size());
  out.chain_count = static_cast<std::uint32_t>(heads.size());
  std::string& body = out.body;
  body.reserve(4 * (3 + 2 * pagenos.size() + 2 * heads.size() + chain_pages.size()) +
               pages_blob.size());
  put_u32(body, out.n_pages);
  for (auto v : pagenos) put_u32(body, v);
  for (auto v : offsets) put_u32(body, v);
  put_u32(body, out.chain_count);
  for (auto v : heads) put_u32(body, v);
  for (auto v : chain_offsets) put_u32(body, v);
  for (auto v : chain_pages) put_u32(body, v);
  body += pages_blob;
  return out;
}

std::string compress_sidecar_body(std::string_view body) {
  std::unique_ptr<ZSTD_CCtx, decltype(&ZSTD_freeCCtx)> cctx(ZSTD_createCCtx(), &ZSTD_freeCCtx);
  if (!cctx) throw_error(errc::io_error, "zstd: out of memory");
  ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_compressionLevel, sf::zstd_level);
  ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_checksumFlag, 1);
  std::string out(ZSTD_compressBound(body.size()), '\0');
  const std::size_t n =
      ZSTD_compress2(cctx.get(), out.data(), out.size(), body.data(), body.size());
  if (ZSTD_isError(n)) throw_error(errc::io_error, std::string("zstd: ") + ZSTD_getErrorName(n));
  out.resize(n);
  return out;
}

std::string frame_sidecar(std::uint64_t body_size, std::uint32_t page_size, std::string_view db_tag,
                          std::string_view compressed_frame) {
  if (db_tag.size() > sf::max_tag_len) db_tag = {};
  std::string out;
  out.reserve(sf::tag_offset + db_tag.size() + compressed_frame.size());
  out += sf::magic;
  out.push_back(static_cast<char>(sf::version));
  put_u64(out, body_size);
  put_u32(out, page_size);
  out.push_back(static_cast<char>(db_tag.size()));
  out += db_tag;
  out += compressed_frame;
  return out;
}

std::string build_sidecar(const std::filesystem::path& db_file, std::string_view db_tag) {
  const SidecarBody b = build_sidecar_body(db_file);
  return frame_sidecar(b.body.size(), b.page_size, db_tag, compress_sidecar_body(b.body));
}

}  // namespace shardy::writer
