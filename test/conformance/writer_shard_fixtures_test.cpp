// The shard builder reproduces shardyfusion's shard files byte for byte (interop spec 4.1).
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <boost/json.hpp>
#include <filesystem>
#include <map>
#include <memory>
#include <shardy/routing.hpp>
#include <string>

#include "support/digest_hex.hpp"
#include "support/test_support.hpp"
#include "writer/sqlite_shard_builder.hpp"

namespace fs = std::filesystem;
using shardy::test::fixtures_dir;
using shardy::test::read_file;
using shardy::test::sha256_hex;

namespace {

fs::path local_path(std::string_view url) {
  constexpr std::string_view bucket = "s3://shardy-fixtures/";
  EXPECT_EQ(url.substr(0, bucket.size()), bucket);
  return fixtures_dir() / std::string(url.substr(bucket.size()));
}

}  // namespace

// The shard builder reproduces shardyfusion's shard files: routing each fixture input record
// (in input order) and inserting it with INSERT OR REPLACE gives the same rows as the reference
// shard; the manifest's row_count (duplicates included) equals our per-shard record count.

namespace {

std::map<std::string, std::string> kv_rows(const fs::path& p) {
  sqlite3* db = nullptr;
  sqlite3_open_v2(p.c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db, "SELECT k, v FROM kv", -1, &st, nullptr);
  std::map<std::string, std::string> out;
  while (sqlite3_step(st) == SQLITE_ROW) {
    auto blob = [&](int i) {
      return std::string(static_cast<const char*>(sqlite3_column_blob(st, i)),
                         static_cast<std::size_t>(sqlite3_column_bytes(st, i)));
    };
    out[blob(0)] = blob(1);
  }
  sqlite3_finalize(st);
  sqlite3_close_v2(db);
  return out;
}

}  // namespace

TEST(WriterShardFixtures, RebuiltShardsHoldTheReferenceRows) {
  for (const std::string name : {"kv_small", "kv_str", "kv_sparse"}) {
    SCOPED_TRACE(name);
    const fs::path exp = fixtures_dir() / "expected" / name;
    const auto info = boost::json::parse(read_file(exp / "reader_info.json")).as_object();
    const auto& required = info.at("loaded_manifest").at("required").as_object();
    const auto num_dbs = required.at("num_dbs").to_number<std::uint32_t>();
    const auto enc = *shardy::parse_key_encoding(required.at("key_encoding").as_string());
    const shardy::Router router(num_dbs, enc);
    const fs::path tmp = shardy::test::make_temp_dir("writer-fixture-" + name);
    std::map<std::uint32_t, std::unique_ptr<shardy::writer::SqliteShardBuilder>> builders;
    std::map<std::uint32_t, std::int64_t> counts;
    for (const auto& line : shardy::test::read_lines(exp / "input.jsonl")) {
      const auto rec = boost::json::parse(line).as_object();
      const std::string type(rec.at("key_type").as_string());
      const shardy::Key key =
          type == "int"
              ? shardy::Key::parse_integer(rec.at("key_dec").as_string())
              : shardy::Key::text(shardy::test::from_hex(rec.at("key_utf8_hex").as_string()));
      const auto r = router.route_write(key);
      auto& b = builders[r.db_id];
      if (!b) {
        b = std::make_unique<shardy::writer::SqliteShardBuilder>(
            tmp / (std::to_string(r.db_id) + ".db"), 4096);
      }
      b->put(r.storage_key, shardy::test::from_hex(rec.at("value_hex").as_string()));
      ++counts[r.db_id];
    }
    const auto& shards = info.at("loaded_manifest").at("shards").as_array();
    ASSERT_EQ(shards.size(), builders.size());  // empty shards have no row and no file
    for (const auto& s : shards) {
      const auto id = s.at("db_id").to_number<std::uint32_t>();
      SCOPED_TRACE(id);
      ASSERT_TRUE(builders.count(id));
      builders[id]->finish();
      EXPECT_EQ(s.at("row_count").to_number<std::int64_t>(), counts[id]);
      const fs::path ref = local_path(s.at("db_url").as_string()) / "shard.db";
      const fs::path mine = tmp / (std::to_string(id) + ".db");
      EXPECT_EQ(kv_rows(mine), kv_rows(ref));
      EXPECT_EQ(fs::file_size(mine), fs::file_size(ref));
      // Same SQLite (3.40.1), same statements, same order: the very same bytes.
      EXPECT_EQ(sha256_hex(read_file(mine)), sha256_hex(read_file(ref)));
    }
  }
}
