#include "writer/sqlite_shard_builder.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <cmath>
#include <shardy/error.hpp>
#include <string>
#include <system_error>

namespace shardy::writer {
namespace {

[[noreturn]] void fail(sqlite3* db, std::string_view what, const std::filesystem::path& path) {
  std::string msg = std::string(what) + " (" + path.string() + ")";
  if (db != nullptr) msg += ": " + std::string(sqlite3_errmsg(db));
  throw_error(errc::shard_error, std::move(msg));
}

void exec(sqlite3* db, const char* sql, const std::filesystem::path& path) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = std::string(sql) + " failed (" + path.string() + "): " + (err ? err : "?");
    sqlite3_free(err);
    throw_error(errc::shard_error, std::move(msg));
  }
}

// Runs a single-value query and returns column 0 as int64 (0 when NULL or no row).
std::int64_t query_int(sqlite3* db, const char* sql, const std::filesystem::path& path,
                       std::int64_t bind = -1) {
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db, sql, -1, &st, nullptr) != SQLITE_OK) fail(db, sql, path);
  if (bind >= 0) sqlite3_bind_int64(st, 1, bind);
  std::int64_t v = 0;
  const int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    v = sqlite3_column_int64(st, 0);
  } else if (rc != SQLITE_DONE) {
    sqlite3_finalize(st);
    fail(db, sql, path);
  }
  sqlite3_finalize(st);
  return v;
}

struct Connection {
  sqlite3* db = nullptr;
  ~Connection() { sqlite3_close_v2(db); }
};

}  // namespace

bool is_supported_page_size(std::uint32_t page_size) noexcept {
  return std::find(std::begin(kSupportedPageSizes), std::end(kSupportedPageSizes), page_size) !=
         std::end(kSupportedPageSizes);
}

std::uint32_t inline_payload_limit(std::uint32_t page_size) noexcept {
  return ((page_size - 12) * 64 / 255) - 23;
}

std::uint32_t recommend_page_size(std::uint64_t p95_value_bytes,
                                  std::uint64_t max_key_bytes) noexcept {
  const std::uint64_t required = p95_value_bytes + max_key_bytes + 12;  // + cell overhead
  for (std::uint32_t size : kSupportedPageSizes) {
    if (inline_payload_limit(size) >= required) return size;
  }
  return kSupportedPageSizes[std::size(kSupportedPageSizes) - 1];
}

SqliteShardBuilder::SqliteShardBuilder(const std::filesystem::path& path, std::uint32_t page_size)
    : path_(path) {
  if (!is_supported_page_size(page_size)) {
    throw_error(errc::invalid_argument, "unsupported shard page size " + std::to_string(page_size) +
                                            " (4096, 8192, 16384, 32768 or 65536)");
  }
  std::error_code ec;
  std::filesystem::remove(path, ec);
  if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) !=
      SQLITE_OK) {
    std::string msg = "cannot create shard " + path.string() + ": " +
                      (db_ ? sqlite3_errmsg(db_) : "out of memory");
    sqlite3_close_v2(db_);
    db_ = nullptr;
    throw_error(errc::shard_error, std::move(msg));
  }
  try {
    const std::string ps = "PRAGMA page_size = " + std::to_string(page_size);
    exec(db_, ps.c_str(), path_);
    exec(db_, "PRAGMA journal_mode = OFF", path_);
    exec(db_, "PRAGMA synchronous = OFF", path_);
    exec(db_, "PRAGMA cache_size = -2000", path_);
    exec(db_, "PRAGMA locking_mode = EXCLUSIVE", path_);
    exec(db_, "PRAGMA temp_store = MEMORY", path_);
    const std::string create = std::string(kKvSchema);
    exec(db_, create.c_str(), path_);
    exec(db_, "BEGIN", path_);
    if (sqlite3_prepare_v3(db_, "INSERT OR REPLACE INTO kv (k, v) VALUES (?, ?)", -1,
                           SQLITE_PREPARE_PERSISTENT, &insert_, nullptr) != SQLITE_OK) {
      fail(db_, "prepare insert", path_);
    }
  } catch (...) {
    sqlite3_finalize(insert_);
    sqlite3_close_v2(db_);
    db_ = nullptr;
    throw;
  }
}

SqliteShardBuilder::~SqliteShardBuilder() {
  sqlite3_finalize(insert_);
  if (db_ != nullptr) sqlite3_close_v2(db_);  // unfinished: the transaction is rolled back
}

void SqliteShardBuilder::put(std::string_view key, std::string_view value) {
  // SQLITE_STATIC: the caller's buffers outlive the step. A zero-length value must still be a
  // BLOB, never NULL: pass a non-null pointer.
  static const char kEmpty = 0;
  sqlite3_bind_blob64(insert_, 1, key.empty() ? &kEmpty : key.data(), key.size(), SQLITE_STATIC);
  sqlite3_bind_blob64(insert_, 2, value.empty() ? &kEmpty : value.data(), value.size(),
                      SQLITE_STATIC);
  const int rc = sqlite3_step(insert_);
  sqlite3_reset(insert_);
  if (rc != SQLITE_DONE) {
    const int ext = sqlite3_extended_errcode(db_);
    if (ext == SQLITE_FULL) throw_error(errc::disk_full, "shard " + path_.string() + ": disk full");
    fail(db_, "insert", path_);
  }
}

void SqliteShardBuilder::finish() {
  if (db_ == nullptr) throw_error(errc::shard_error, "shard already finished");
  sqlite3_finalize(insert_);
  insert_ = nullptr;
  exec(db_, "COMMIT", path_);
  exec(db_, "PRAGMA optimize", path_);
  if (sqlite3_close(db_) != SQLITE_OK) fail(db_, "close", path_);
  db_ = nullptr;
}

std::uint32_t apply_auto_page_size(const std::filesystem::path& path) {
  Connection c;
  if (sqlite3_open_v2(path.c_str(), &c.db, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK) {
    fail(c.db, "open for page-size analysis", path);
  }
  const auto current = static_cast<std::uint32_t>(query_int(c.db, "PRAGMA page_size", path));
  const std::int64_t rows = query_int(c.db, "SELECT count(*) FROM kv", path);
  if (rows <= 0) return current;
  // Nearest rank: rank = ceil(0.95 * N) (1-based), OFFSET rank - 1, in double arithmetic as the
  // reference computes it.
  const auto rank = static_cast<std::int64_t>(std::ceil(static_cast<double>(rows) * 0.95));
  const std::int64_t offset = std::max<std::int64_t>(0, rank - 1);
  const std::int64_t p95 =
      query_int(c.db, "SELECT length(v) FROM kv ORDER BY length(v) LIMIT 1 OFFSET ?", path, offset);
  const std::int64_t max_key = query_int(c.db, "SELECT max(length(k)) FROM kv", path);
  const std::uint32_t target =
      recommend_page_size(static_cast<std::uint64_t>(p95), static_cast<std::uint64_t>(max_key));
  if (target == current) return current;
  const std::string ps = "PRAGMA page_size = " + std::to_string(target);
  exec(c.db, ps.c_str(), path);
  exec(c.db, "VACUUM", path);
  return static_cast<std::uint32_t>(query_int(c.db, "PRAGMA page_size", path));
}

}  // namespace shardy::writer
