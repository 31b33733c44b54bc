// The SQLite shard keeps each pooled connection inside one read transaction (lib/shard/
// sqlite_shard.cpp, Connection): what a caller can observe of that. A borrowed raw connection
// (F-10 / L-06: shardy offers native access) must still be an ordinary connection in autocommit
// mode, and a failed lookup must not leave the connection unusable.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <fstream>

#include "reader_test_util.hpp"
#include "shard/sqlite_shard.hpp"
#include "support/test_support.hpp"

namespace shardy {
namespace {

using test::be64;

std::vector<std::pair<std::string, std::string>> rows_of(int n) {
  std::vector<std::pair<std::string, std::string>> rows;
  for (int i = 0; i < n; ++i)
    rows.emplace_back(be64(static_cast<std::uint64_t>(i)), std::string(100, 'a' + i % 26));
  return rows;
}

int exec(sqlite3* db, const char* sql) { return sqlite3_exec(db, sql, nullptr, nullptr, nullptr); }

TEST(ShardReadTransaction, BorrowedConnectionIsInAutocommitModeAndTakesItsOwnTransactions) {
  auto dir = test::make_temp_dir("shard-txn-borrow");
  const auto rows = rows_of(500);
  test::write_kv_shard(dir / "shard.db", rows);
  shard::SqliteShardOptions o;
  o.path = (dir / "shard.db").string();
  o.max_connections = 1;  // the lookups and the borrower share one connection
  auto s = shard::open_sqlite_shard(o);
  ASSERT_EQ(s->get(rows[7].first), rows[7].second);
  for (int round = 0; round < 2; ++round) {
    {
      auto lease = s->borrow_connection();
      sqlite3* db = lease.handle();
      ASSERT_NE(db, nullptr);
      EXPECT_EQ(sqlite3_get_autocommit(db), 1) << "round " << round;
      ASSERT_EQ(exec(db, "BEGIN"), SQLITE_OK) << sqlite3_errmsg(db);
      sqlite3_stmt* st = nullptr;
      ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT count(*) FROM kv", -1, &st, nullptr), SQLITE_OK);
      ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
      EXPECT_EQ(sqlite3_column_int(st, 0), 500);
      sqlite3_finalize(st);
      EXPECT_EQ(sqlite3_get_autocommit(db), 0);
      ASSERT_EQ(exec(db, "COMMIT"), SQLITE_OK) << sqlite3_errmsg(db);
      EXPECT_EQ(sqlite3_get_autocommit(db), 1);
    }
    // Back in the pool: lookups on the same (only) connection answer as before.
    for (std::size_t i = 0; i < rows.size(); i += 37)
      EXPECT_EQ(s->get(rows[i].first), rows[i].second);
    EXPECT_EQ(s->get(be64(100000)), std::nullopt);
  }
}

TEST(ShardReadTransaction, FailedLookupLeavesTheConnectionUsable) {
  auto dir = test::make_temp_dir("shard-txn-corrupt");
  const auto rows = rows_of(3000);
  test::write_kv_shard(dir / "shard.db", rows);
  // Overwrite the last page (a leaf of the highest keys) with garbage: lookups that reach it fail.
  const auto path = dir / "shard.db";
  const auto size = std::filesystem::file_size(path);
  ASSERT_GT(size, 8u * 4096u);
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(size - 4096));
    const std::string junk(4096, '\xA5');
    f.write(junk.data(), static_cast<std::streamsize>(junk.size()));
  }
  shard::SqliteShardOptions o;
  o.path = path.string();
  o.max_connections = 1;
  auto s = shard::open_sqlite_shard(o);
  int failures = 0, answers = 0;
  for (auto it = rows.rbegin(); it != rows.rend() && answers < 200; ++it) {
    try {
      auto v = s->get(it->first);
      if (v) {
        EXPECT_EQ(*v, it->second);
        ++answers;
      }
    } catch (const error& e) {
      EXPECT_EQ(e.code(), make_error_code(errc::shard_error)) << e.what();
      ++failures;
    }
    // After every failure, the same connection still answers a key from an intact page.
    EXPECT_EQ(s->get(rows[0].first), rows[0].second);
  }
  EXPECT_GT(failures, 0) << "the corrupted page was never reached";
  EXPECT_EQ(answers, 200);
}

}  // namespace
}  // namespace shardy
