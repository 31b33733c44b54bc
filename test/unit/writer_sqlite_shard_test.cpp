// SQLite shard builder (interop spec 4.1) and per-shard spill (larger-than-memory input).
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <filesystem>
#include <map>
#include <random>
#include <shardy/error.hpp>
#include <string>

#include "support/test_support.hpp"
#include "writer/shard_spill.hpp"
#include "writer/sqlite_shard_builder.hpp"

namespace fs = std::filesystem;
using namespace shardy::writer;

namespace {

struct Db {
  sqlite3* db = nullptr;
  explicit Db(const fs::path& p) {
    EXPECT_EQ(sqlite3_open_v2(p.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  }
  ~Db() { sqlite3_close_v2(db); }
  std::vector<std::vector<std::string>> rows(const std::string& sql) {
    sqlite3_stmt* st = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr), SQLITE_OK) << sql;
    std::vector<std::vector<std::string>> out;
    while (sqlite3_step(st) == SQLITE_ROW) {
      std::vector<std::string> r;
      for (int i = 0; i < sqlite3_column_count(st); ++i) {
        const void* b = sqlite3_column_blob(st, i);
        r.emplace_back(static_cast<const char*>(b),
                       static_cast<std::size_t>(sqlite3_column_bytes(st, i)));
      }
      out.push_back(std::move(r));
    }
    sqlite3_finalize(st);
    return out;
  }
  std::string one(const std::string& sql) {
    auto r = rows(sql);
    return r.empty() ? std::string("<none>") : r[0][0];
  }
};

std::map<std::string, std::string> contents(const fs::path& p) {
  Db d(p);
  std::map<std::string, std::string> out;
  for (auto& r : d.rows("SELECT k, v FROM kv")) out[r[0]] = r[1];
  return out;
}

}  // namespace

// Spec 4.1: exactly one table with this literal schema text, keys and values stored as BLOBs.
TEST(WriterSqliteShard, ExactSchemaAndBlobColumns) {
  const auto dir = shardy::test::make_temp_dir("shard-schema");
  const auto path = dir / "shard.db";
  SqliteShardBuilder b(path, 4096);
  b.put(std::string("\0\0\0\0\0\0\0\x2a", 8), "value");
  b.put("k2", "");
  b.finish();
  Db d(path);
  EXPECT_EQ(d.one("SELECT sql FROM sqlite_master WHERE name='kv'"), kKvSchema);
  EXPECT_EQ(d.one("SELECT count(*) FROM sqlite_master WHERE type='table'"), "1");
  EXPECT_EQ(d.one("SELECT count(*) FROM kv WHERE typeof(k) <> 'blob' OR typeof(v) <> 'blob'"), "0");
  EXPECT_EQ(d.one("SELECT hex(v) FROM kv WHERE k = x'000000000000002a'"), "76616C7565");
  // an empty value is an empty BLOB, not NULL
  EXPECT_EQ(d.one("SELECT typeof(v) || length(v) FROM kv WHERE k = CAST('k2' AS BLOB)"), "blob0");
}

// Spec 4.1 header: write/read version 1/1 (rollback journal, not WAL), page size, no reserved
// bytes, UTF-8, no journal file left behind.
TEST(WriterSqliteShard, HeaderIsNotWalAndHasThePageSize) {
  const auto dir = shardy::test::make_temp_dir("shard-header");
  for (std::uint32_t ps : kSupportedPageSizes) {
    const auto path = dir / ("shard-" + std::to_string(ps) + ".db");
    SqliteShardBuilder b(path, ps);
    b.put("a", "1");
    b.finish();
    const std::string bytes = shardy::test::read_file(path);
    ASSERT_GE(bytes.size(), 100u);
    EXPECT_EQ(bytes.substr(0, 16), std::string("SQLite format 3\0", 16));
    EXPECT_EQ(bytes[18], 1);
    EXPECT_EQ(bytes[19], 1);
    EXPECT_EQ(bytes[20], 0);
    const std::uint32_t hdr_ps = (std::uint32_t(static_cast<unsigned char>(bytes[16])) << 8) |
                                 static_cast<unsigned char>(bytes[17]);
    EXPECT_EQ(hdr_ps == 1 ? 65536u : hdr_ps, ps);
    EXPECT_EQ(bytes.size() % ps, 0u);
    EXPECT_EQ(bytes[59], 1);  // text encoding UTF-8 (big-endian u32 at 56)
    EXPECT_FALSE(fs::exists(path.string() + "-journal"));
    EXPECT_FALSE(fs::exists(path.string() + "-wal"));
  }
}

TEST(WriterSqliteShard, InsertOrReplaceLastWriteWins) {
  const auto dir = shardy::test::make_temp_dir("shard-lww");
  const auto path = dir / "shard.db";
  SqliteShardBuilder b(path, 4096);
  b.put("k", "first");
  b.put("x", "only");
  b.put("k", "second");
  b.finish();
  const auto c = contents(path);
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c.at("k"), "second");
  EXPECT_EQ(c.at("x"), "only");
}

TEST(WriterSqliteShard, RejectsUnsupportedPageSize) {
  const auto dir = shardy::test::make_temp_dir("shard-bad-ps");
  EXPECT_THROW(SqliteShardBuilder(dir / "a.db", 2048), shardy::error);
  EXPECT_THROW(SqliteShardBuilder(dir / "b.db", 5000), shardy::error);
}

// Spec 4.1: inline limits 4096→1002, 8192→2030, 16384→4086, 32768→8198, 65536→16422.
TEST(WriterSqliteShard, InlineLimitsAndRecommendation) {
  EXPECT_EQ(inline_payload_limit(4096), 1002u);
  EXPECT_EQ(inline_payload_limit(8192), 2030u);
  EXPECT_EQ(inline_payload_limit(16384), 4086u);
  EXPECT_EQ(inline_payload_limit(32768), 8198u);
  EXPECT_EQ(inline_payload_limit(65536), 16422u);
  EXPECT_EQ(recommend_page_size(0, 8), 4096u);
  EXPECT_EQ(recommend_page_size(1002 - 12 - 8, 8), 4096u);
  EXPECT_EQ(recommend_page_size(1002 - 12 - 8 + 1, 8), 8192u);
  EXPECT_EQ(recommend_page_size(3000, 8), 16384u);
  EXPECT_EQ(recommend_page_size(16422 - 20, 8), 65536u);
  EXPECT_EQ(recommend_page_size(1 << 20, 8), 65536u);  // never fits: the largest
}

// "auto": p95 by nearest rank. 100 values: 95 of 3000 bytes and 5 of 10 bytes → p95 = 3000 →
// 16384. With 94 large ones the 95th smallest is large too; with 5 large of 100 it is small.
TEST(WriterSqliteShard, AutoPageSizeUsesNearestRankP95) {
  const auto dir = shardy::test::make_temp_dir("shard-auto");
  auto build = [&](const fs::path& p, int large, int large_size) {
    SqliteShardBuilder b(p, 4096);
    for (int i = 0; i < 100; ++i) {
      b.put("key" + std::to_string(i), std::string(i < large ? large_size : 10, 'v'));
    }
    b.finish();
    return apply_auto_page_size(p);
  };
  EXPECT_EQ(build(dir / "a.db", 95, 3000), 16384u);
  EXPECT_EQ(build(dir / "b.db", 5, 3000), 4096u);   // p95 is the 95th smallest = 10 bytes
  EXPECT_EQ(build(dir / "c.db", 6, 3000), 16384u);  // rank 95 of 100 lands on a large one
  EXPECT_EQ(build(dir / "d.db", 100, 1500), 8192u);
  Db d(dir / "a.db");
  EXPECT_EQ(d.one("PRAGMA page_size"), "16384");
  EXPECT_EQ(d.one("SELECT count(*) FROM kv"), "100");
  const std::string bytes = shardy::test::read_file(dir / "a.db");
  EXPECT_EQ(bytes[18], 1);  // still not WAL after VACUUM
}

// Spill → shard: sorted (in memory) and streamed (over the limit) builds hold the same rows,
// the last write of every key wins, and the input record count includes duplicates.
TEST(WriterShardSpill, SortedAndStreamedBuildsAgreeAndLastWriteWins) {
  const auto dir = shardy::test::make_temp_dir("spill");
  ShardSpill spill(dir / "spill", 3, 1024);  // a tiny buffer: many flushes
  std::map<std::string, std::string> expect[3];
  std::mt19937 rng(7);
  for (int i = 0; i < 5000; ++i) {
    const std::uint32_t db = rng() % 3;
    const std::string k = "key-" + std::to_string(rng() % 1500);
    const std::string v = "value-" + std::to_string(i) + std::string(rng() % 64, 'x');
    spill.add(db, k, v);
    expect[db][k] = v;
  }
  spill.flush();
  std::uint64_t total = 0;
  for (std::uint32_t db = 0; db < 3; ++db) {
    total += spill.records(db);
    const auto sorted = build_shard_from_spill(spill.path(db), dir / ("s" + std::to_string(db)),
                                               4096, 64 << 20, spill.records(db));
    EXPECT_TRUE(sorted.sorted);
    EXPECT_EQ(sorted.input_records, spill.records(db));
    EXPECT_EQ(sorted.distinct_keys, expect[db].size());
    const auto streamed = build_shard_from_spill(spill.path(db), dir / ("t" + std::to_string(db)),
                                                 4096, 16, spill.records(db));
    EXPECT_FALSE(streamed.sorted);
    EXPECT_EQ(streamed.input_records, spill.records(db));
    EXPECT_EQ(contents(dir / ("s" + std::to_string(db))), expect[db]);
    EXPECT_EQ(contents(dir / ("t" + std::to_string(db))), expect[db]);
    EXPECT_EQ(sorted.db_bytes, fs::file_size(dir / ("s" + std::to_string(db))));
  }
  EXPECT_EQ(total, 5000u);
}

TEST(WriterShardSpill, AutoPageSizeFromSpill) {
  const auto dir = shardy::test::make_temp_dir("spill-auto");
  ShardSpill spill(dir / "spill", 1, 1 << 20);
  for (int i = 0; i < 50; ++i) spill.add(0, "k" + std::to_string(i), std::string(5000, 'z'));
  spill.flush();
  const auto st = build_shard_from_spill(spill.path(0), dir / "a.db", 0, 64 << 20, 50);
  EXPECT_EQ(st.page_size, 32768u);  // 5000 + 3 + 12 > 4086, <= 8198
  Db d(dir / "a.db");
  EXPECT_EQ(d.one("PRAGMA page_size"), "32768");
}
