// Manifest v4 (interop spec 2): parse/build round trip, the on-disk shape build writes, and one
// test per validation rule of spec 2.8 (its "Tolerance results" list is the first table below).
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <boost/json/parse.hpp>
#include <cstring>
#include <shardy/manifest.hpp>
#include <shardy/shard_lookup.hpp>

#include "support/test_support.hpp"

namespace shardy {
namespace {

namespace json = boost::json;

Manifest sample() {
  Manifest m;
  m.build.run_id = "4aaad5c105c3ea085935610bf12cfff8";
  m.build.created_at = *parse_timestamp("2026-11-22T01:48:24.187570Z");
  m.build.num_dbs = 8;
  m.build.s3_prefix = "s3://bucket/snap";
  m.build.custom = json::parse(R"({"sqlite_sidecar": {"codec": "zstd", "filename": "shard.sidecar",
      "format_version": 8, "page_size": 4096}, "user": "caf\u00e9 \ud83d\ude00"})")
                       .as_object();
  for (std::uint32_t id : {0u, 3u, 7u}) {
    ShardMeta s;
    s.db_id = id;
    s.db_url = "s3://bucket/snap/shards/run_id=r/db=0000" + std::to_string(id) + "/attempt=00";
    s.row_count = 10 + id;
    s.db_bytes = 4096 * (id + 1);
    s.min_key = Key::integer(id);
    s.max_key = Key::unsigned_integer(9223372036854775807ULL);
    s.checkpoint_id = "e13776df8add4572af5bb7aca0bf820e";
    s.writer_info.duration_ms = 12;
    m.shards.push_back(s);
  }
  return m;
}

std::string built() { return build_manifest(sample()); }

// Applies SQL to a serialized database and returns the new bytes.
std::string mutate(const std::string& bytes, const std::string& sql) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open(":memory:", &db), SQLITE_OK);
  auto* buf = static_cast<unsigned char*>(sqlite3_malloc64(bytes.size()));
  std::memcpy(buf, bytes.data(), bytes.size());
  EXPECT_EQ(sqlite3_deserialize(db, "main", buf, static_cast<sqlite3_int64>(bytes.size()),
                                static_cast<sqlite3_int64>(bytes.size()),
                                SQLITE_DESERIALIZE_FREEONCLOSE | SQLITE_DESERIALIZE_RESIZEABLE),
            SQLITE_OK);
  char* err = nullptr;
  EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err), SQLITE_OK)
      << (err ? err : "") << " in " << sql;
  sqlite3_free(err);
  sqlite3_int64 size = 0;
  unsigned char* out = sqlite3_serialize(db, "main", &size, 0);
  std::string s(reinterpret_cast<char*>(out), static_cast<std::size_t>(size));
  sqlite3_free(out);
  sqlite3_close(db);
  return s;
}

std::string query_text(const std::string& bytes, const std::string& sql) {
  sqlite3* db = nullptr;
  sqlite3_open(":memory:", &db);
  auto* buf = static_cast<unsigned char*>(sqlite3_malloc64(bytes.size()));
  std::memcpy(buf, bytes.data(), bytes.size());
  sqlite3_deserialize(db, "main", buf, static_cast<sqlite3_int64>(bytes.size()),
                      static_cast<sqlite3_int64>(bytes.size()), SQLITE_DESERIALIZE_FREEONCLOSE);
  std::string out;
  sqlite3_stmt* st = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr), SQLITE_OK) << sql;
  while (sqlite3_step(st) == SQLITE_ROW) {
    auto* t = sqlite3_column_text(st, 0);
    out += t ? reinterpret_cast<const char*>(t) : "NULL";
    out += "\n";
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return out;
}

// Parses and returns the diagnostics ("" on success).
std::string parse_error(const std::string& bytes) {
  error_code ec;
  std::string diag;
  parse_manifest(bytes, ec, &diag);
  if (!ec) return "";
  EXPECT_EQ(ec, errc::manifest_parse_error);
  EXPECT_FALSE(diag.empty());
  return diag;
}

#define EXPECT_RULE(bytes, rule)                                                       \
  do {                                                                                 \
    std::string d_ = parse_error(bytes);                                               \
    EXPECT_NE(d_.find("rule '" rule "'"), std::string::npos) << "diagnostics: " << d_; \
  } while (0)

const char* kCategorical =
    R"({"cel_columns": {"region": "string"}, "cel_expr": "region", "hash_algorithm": "xxh3_64", "routing_values": ["ap", "eu", "us"], "strategy": "cel"})";

// ---- spec 2.8 "Tolerance results" ----------------------------------------------------------

TEST(ManifestTolerance, HashShardingWithoutNullKeysIsAccepted) {
  auto b = mutate(
      built(),
      R"(UPDATE build_meta SET sharding='{"hash_algorithm": "xxh3_64", "strategy": "hash"}')");
  EXPECT_EQ(parse_error(b), "");
  b = mutate(built(), R"(UPDATE build_meta SET sharding='{"hash_algorithm": "xxh3_64"}')");
  EXPECT_EQ(parse_manifest(b).build.sharding.strategy, ShardingStrategy::hash);  // default
}

TEST(ManifestTolerance, ShardingExtraKeyIsRejected) {
  EXPECT_RULE(
      mutate(
          built(),
          R"(UPDATE build_meta SET sharding='{"hash_algorithm": "xxh3_64", "max_keys_per_shard": 10, "strategy": "hash"}')"),
      "sharding.extra_key");
}

TEST(ManifestTolerance, UpperCaseStrategyIsRejected) {
  EXPECT_RULE(
      mutate(
          built(),
          R"(UPDATE build_meta SET sharding='{"hash_algorithm": "xxh3_64", "strategy": "HASH"}')"),
      "sharding.strategy");
}

TEST(ManifestTolerance, UnknownKeyEncodingIsRejected) {
  EXPECT_RULE(mutate(built(), "UPDATE build_meta SET key_encoding='u64le'"), "key_encoding");
  EXPECT_RULE(mutate(built(), "UPDATE build_meta SET key_encoding='U64BE'"), "key_encoding");
}

TEST(ManifestTolerance, FormatVersionOtherThan4IsRejected) {
  for (int v : {1, 2, 3, 5}) {
    SCOPED_TRACE(v);
    EXPECT_RULE(mutate(built(), "UPDATE build_meta SET format_version=" + std::to_string(v)),
                "format_version");
  }
}

TEST(ManifestTolerance, ZeroNumDbsIsRejected) {
  EXPECT_RULE(mutate(built(), "UPDATE build_meta SET num_dbs=0; DELETE FROM shards"), "num_dbs");
  EXPECT_RULE(mutate(built(), "UPDATE build_meta SET num_dbs=-3; DELETE FROM shards"), "num_dbs");
}

TEST(ManifestTolerance, CategoricalWithEmptyRoutingValuesAndOneDbIsAccepted) {
  auto b = mutate(
      built(),
      R"(UPDATE build_meta SET num_dbs=1, sharding='{"cel_columns": {"region": "string"}, "cel_expr": "region", "hash_algorithm": "xxh3_64", "routing_values": [], "strategy": "cel"}'; DELETE FROM shards)");
  EXPECT_EQ(parse_error(b), "");
  auto m = parse_manifest(b);
  EXPECT_EQ(m.build.sharding.strategy, ShardingStrategy::cel);
  ASSERT_TRUE(m.build.sharding.routing_values);
  EXPECT_TRUE(m.build.sharding.routing_values->empty());
}

TEST(ManifestTolerance, DuplicateOrMixedRoutingValuesAreRejected) {
  auto with = [](const std::string& values, int n) {
    return mutate(
        built(),
        "DELETE FROM shards; UPDATE build_meta SET num_dbs=" + std::to_string(n) +
            R"(, sharding='{"cel_columns": {"region": "string"}, "cel_expr": "region", "hash_algorithm": "xxh3_64", "routing_values": )" +
            values + R"(, "strategy": "cel"}')");
  };
  EXPECT_EQ(parse_error(with(R"(["ap", "eu", "us"])", 3)), "");
  EXPECT_EQ(parse_error(with("[-1, 2, 10]", 3)), "");
  EXPECT_RULE(with(R"(["ap", "eu", "ap"])", 3), "sharding.routing_values");
  EXPECT_RULE(with("[1, 2, 1]", 3), "sharding.routing_values");
  EXPECT_RULE(with(R"(["1", 1])", 2), "sharding.routing_values");
  EXPECT_RULE(with(R"(["a", null])", 2), "sharding.routing_values");
  EXPECT_RULE(with("[true, false]", 2), "sharding.routing_values");
  EXPECT_RULE(with("[1.5, 2]", 2), "sharding.routing_values");
  // cardinality: num_dbs == max(1, len(routing_values))
  EXPECT_RULE(with(R"(["ap", "eu", "us"])", 4), "routing_values.cardinality");
}

TEST(ManifestTolerance, RoutingValuesWithHashAreRejected) {
  EXPECT_RULE(
      mutate(
          built(),
          R"(UPDATE build_meta SET sharding='{"hash_algorithm": "xxh3_64", "routing_values": [1], "strategy": "hash"}')"),
      "sharding.routing_values");
}

TEST(ManifestTolerance, FloatMinKeyIsRejected) {
  EXPECT_RULE(mutate(built(), "UPDATE shards SET min_key='1.5' WHERE db_id=0"), "shards.min_key");
  EXPECT_RULE(mutate(built(), "UPDATE shards SET max_key='[1]' WHERE db_id=0"), "shards.max_key");
  EXPECT_RULE(mutate(built(), "UPDATE shards SET max_key='not json' WHERE db_id=0"),
              "shards.max_key");
}

TEST(ManifestTolerance, EmptyShardsTableIsAccepted) {
  auto m = parse_manifest(mutate(built(), "DELETE FROM shards"));
  EXPECT_TRUE(m.shards.empty());
  auto all = m.all_shards();
  ASSERT_EQ(all.size(), 8u);
  for (std::uint32_t i = 0; i < 8; ++i) {
    EXPECT_EQ(all[i].db_id, i);
    EXPECT_FALSE(all[i].db_url);
    EXPECT_EQ(all[i].row_count, 0);
  }
}

// ---- the remaining rules of 2.2-2.8 --------------------------------------------------------

TEST(ManifestRules, MagicAndSqlite) {
  EXPECT_RULE(std::string("not a manifest at all, 130 bytes of garbage"), "magic");
  EXPECT_RULE(std::string(), "magic");
  std::string b = built();
  EXPECT_RULE(b.substr(0, 16), "sqlite");  // magic only
  std::string torn = b.substr(0, 100) + std::string(b.size() - 100, '\xee');
  EXPECT_FALSE(parse_error(torn).empty());
  EXPECT_RULE(mutate(b, "DROP TABLE shards"), "sqlite");
  EXPECT_RULE(mutate(b, "DROP TABLE build_meta"), "sqlite");
}

TEST(ManifestRules, ColumnsByNameExtraToleratedMissingRejected) {
  auto extra = mutate(built(),
                      "ALTER TABLE shards ADD COLUMN sidecar_decompressed_bytes INTEGER; "
                      "ALTER TABLE build_meta ADD COLUMN zzz TEXT");
  EXPECT_EQ(parse_error(extra), "");
  EXPECT_RULE(mutate(built(), "ALTER TABLE shards DROP COLUMN db_bytes"), "column");
  EXPECT_RULE(mutate(built(), "ALTER TABLE build_meta DROP COLUMN key_col"), "column");
  // Columns in another order are found by name.
  auto reordered = mutate(built(),
                          "CREATE TABLE s2 AS SELECT writer_info, checkpoint_id, max_key, min_key, "
                          "db_bytes, row_count, attempt, db_url, db_id FROM shards; DROP TABLE "
                          "shards; ALTER TABLE s2 RENAME TO shards");
  auto m = parse_manifest(reordered);
  ASSERT_EQ(m.shards.size(), 3u);
  EXPECT_EQ(m.shards[2].db_id, 7u);
  EXPECT_EQ(m.shards[2].db_bytes, 4096 * 8);
}

TEST(ManifestRules, BuildMetaRows) {
  EXPECT_RULE(mutate(built(), "DELETE FROM build_meta"), "build_meta.rows");
  // Only the first row is read.
  auto two = mutate(built(),
                    "INSERT INTO build_meta SELECT * FROM build_meta; UPDATE build_meta "
                    "SET run_id='second' WHERE rowid=2");
  EXPECT_EQ(parse_manifest(two).build.run_id, "4aaad5c105c3ea085935610bf12cfff8");
}

TEST(ManifestRules, TypesAndNulls) {
  EXPECT_RULE(mutate(built(), "UPDATE build_meta SET num_dbs='eight'"), "num_dbs");
  EXPECT_EQ(parse_manifest(mutate(built(), "UPDATE build_meta SET num_dbs=8.0")).build.num_dbs, 8u);
  EXPECT_RULE(mutate(built(), "UPDATE build_meta SET run_id=x'ff00'"), "run_id");  // not UTF-8
  EXPECT_EQ(parse_manifest(mutate(built(), "UPDATE build_meta SET run_id=CAST('r1' AS BLOB)"))
                .build.run_id,
            "r1");
  EXPECT_RULE(mutate(built(), "UPDATE build_meta SET created_at='yesterday'"), "created_at");
  EXPECT_RULE(mutate(built(), "UPDATE shards SET attempt='x' WHERE db_id=3"), "attempt");
  EXPECT_RULE(mutate(built(), "UPDATE shards SET row_count=1.5 WHERE db_id=3"), "row_count");
}

TEST(ManifestRules, ShardingJsonAndCel) {
  EXPECT_RULE(mutate(built(), "UPDATE build_meta SET sharding='{'"), "sharding.json");
  EXPECT_RULE(mutate(built(), "UPDATE build_meta SET sharding='[]'"), "sharding.json");
  EXPECT_RULE(mutate(built(), R"(UPDATE build_meta SET sharding='{"strategy": "hash"}')"),
              "sharding.hash_algorithm");
  EXPECT_RULE(mutate(built(), R"(UPDATE build_meta SET sharding='{"hash_algorithm": "xxh64"}')"),
              "sharding.hash_algorithm");
  EXPECT_RULE(
      mutate(built(),
             R"(UPDATE build_meta SET sharding='{"hash_algorithm": "xxh3_64", "cel_expr": "x"}')"),
      "sharding.cel_expr");
  EXPECT_RULE(
      mutate(
          built(),
          R"(UPDATE build_meta SET sharding='{"hash_algorithm": "xxh3_64", "cel_columns": {"x": "int"}}')"),
      "sharding.cel_columns");
  // CEL direct mode (no routing values) is valid; CEL needs expr and typed columns.
  auto direct = mutate(
      built(),
      R"(UPDATE build_meta SET sharding='{"cel_columns": {"key": "int"}, "cel_expr": "shard_hash(key) % 8u", "hash_algorithm": "xxh3_64", "strategy": "cel"}')");
  auto m = parse_manifest(direct);
  EXPECT_EQ(m.build.sharding.cel_expr, "shard_hash(key) % 8u");
  EXPECT_RULE(
      mutate(
          built(),
          R"(UPDATE build_meta SET sharding='{"cel_columns": {"key": "int"}, "hash_algorithm": "xxh3_64", "strategy": "cel"}')"),
      "sharding.cel_expr");
  EXPECT_RULE(
      mutate(
          built(),
          R"(UPDATE build_meta SET sharding='{"cel_columns": {}, "cel_expr": "key", "hash_algorithm": "xxh3_64", "strategy": "cel"}')"),
      "sharding.cel_columns");
  EXPECT_RULE(
      mutate(
          built(),
          R"(UPDATE build_meta SET sharding='{"cel_columns": {"key": "integer"}, "cel_expr": "key", "hash_algorithm": "xxh3_64", "strategy": "cel"}')"),
      "sharding.cel_columns");
  auto cat = mutate(built(),
                    std::string("DELETE FROM shards; UPDATE build_meta SET num_dbs=3, sharding='") +
                        kCategorical + "'");
  auto mc = parse_manifest(cat);
  ASSERT_TRUE(mc.build.sharding.routing_values);
  EXPECT_EQ(mc.build.sharding.routing_values->size(), 3u);
  EXPECT_EQ((*mc.build.sharding.cel_columns)["region"], "string");
}

TEST(ManifestRules, Custom) {
  EXPECT_TRUE(
      parse_manifest(mutate(built(), "UPDATE build_meta SET custom=''")).build.custom.empty());
  EXPECT_RULE(mutate(built(), "UPDATE build_meta SET custom='[]'"), "custom");
  EXPECT_RULE(mutate(built(), "UPDATE build_meta SET custom='{'"), "custom");
}

TEST(ManifestRules, ShardIds) {
  EXPECT_RULE(mutate(built(), "UPDATE shards SET db_id=8 WHERE db_id=7"), "shards.db_id_range");
  EXPECT_RULE(mutate(built(), "UPDATE shards SET db_id=-1 WHERE db_id=7"), "shards.db_id_range");
  // Without the PRIMARY KEY a table can hold duplicate ids.
  auto dup = mutate(built(),
                    "CREATE TABLE s2 AS SELECT * FROM shards; DROP TABLE shards; ALTER TABLE s2 "
                    "RENAME TO shards; UPDATE shards SET db_id=3 WHERE db_id=7");
  EXPECT_RULE(dup, "shards.db_id_unique");
  Manifest m = sample();
  m.build.num_dbs = 2;
  try {
    validate_manifest(m);
    ADD_FAILURE();
  } catch (const error& e) {
    EXPECT_NE(e.diagnostics().find("shards.count"), std::string::npos) << e.diagnostics();
  }
}

TEST(ManifestRules, NonNegativeCounts) {
  EXPECT_RULE(mutate(built(), "UPDATE shards SET row_count=-1 WHERE db_id=0"),
              "shards.non_negative");
  EXPECT_RULE(mutate(built(), "UPDATE shards SET attempt=-1 WHERE db_id=0"), "shards.non_negative");
  EXPECT_RULE(mutate(built(), "UPDATE shards SET db_bytes=-1 WHERE db_id=0"),
              "shards.non_negative");
}

TEST(ManifestRules, WriterInfo) {
  auto m = parse_manifest(mutate(
      built(),
      R"(UPDATE shards SET writer_info='{"attempt": 2, "extra": [1], "stage_id": 7}' WHERE db_id=0;
                  UPDATE shards SET writer_info='{}' WHERE db_id=3)"));
  EXPECT_EQ(m.shards[0].writer_info.attempt, 2);
  EXPECT_EQ(m.shards[0].writer_info.stage_id, 7);
  EXPECT_FALSE(m.shards[0].writer_info.task_attempt_id);
  EXPECT_TRUE(m.shards[0].writer_info_json.contains("extra"));
  EXPECT_EQ(m.shards[1].writer_info.attempt, 0);
  EXPECT_RULE(mutate(built(), "UPDATE shards SET writer_info='nope' WHERE db_id=0"),
              "shards.writer_info");
  EXPECT_RULE(mutate(built(), "UPDATE shards SET writer_info='[]' WHERE db_id=0"),
              "shards.writer_info");
  EXPECT_RULE(mutate(built(), R"(UPDATE shards SET writer_info='{"attempt": "x"}' WHERE db_id=0)"),
              "shards.writer_info");
}

TEST(ManifestRules, MinMaxKeysKeepFullPrecision) {
  auto m = parse_manifest(mutate(built(), R"(
      UPDATE shards SET min_key='-9223372036854775808', max_key='18446744073709551615' WHERE db_id=0;
      UPDATE shards SET min_key='"\r\n"', max_key='"\udbff\udfff"' WHERE db_id=3;
      UPDATE shards SET min_key=NULL, max_key='null' WHERE db_id=7)"));
  EXPECT_EQ(m.shards[0].min_key, Key::integer(INT64_MIN));
  EXPECT_EQ(m.shards[0].max_key, Key::unsigned_integer(UINT64_MAX));
  EXPECT_EQ(m.shards[1].min_key, Key::text("\r\n"));
  EXPECT_EQ(m.shards[1].max_key, Key::text("\xf4\x8f\xbf\xbf"));  // U+10FFFF
  EXPECT_FALSE(m.shards[2].min_key);
  EXPECT_FALSE(m.shards[2].max_key);
}

// ---- build ---------------------------------------------------------------------------------

TEST(ManifestBuild, RoundTrip) {
  Manifest in = sample();
  in.shards[1].db_url.reset();  // an empty shard row (NULL db_url) is legal
  in.shards[1].checkpoint_id.reset();
  in.shards[1].min_key = Key::text("caf\xc3\xa9");
  in.shards[1].max_key = Key::text("\xf0\x9f\x98\x80 \"q\" \\ \x01");
  in.shards[2].writer_info.stage_id = 4;
  in.shards[2].writer_info.task_attempt_id = 99;
  in.shards[2].attempt = 3;
  Manifest out = parse_manifest(build_manifest(in));
  EXPECT_EQ(out.build.run_id, in.build.run_id);
  EXPECT_EQ(out.build.created_at, in.build.created_at);
  EXPECT_EQ(out.build.created_at_text, "2026-11-22T01:48:24.187570Z");
  EXPECT_EQ(out.build.num_dbs, in.build.num_dbs);
  EXPECT_EQ(out.build.s3_prefix, in.build.s3_prefix);
  EXPECT_EQ(out.build.key_col, "_key");
  EXPECT_EQ(out.build.db_path_template, "db={db_id:05d}");
  EXPECT_EQ(out.build.shard_prefix, "shards");
  EXPECT_EQ(out.build.format_version, 4);
  EXPECT_EQ(out.build.key_encoding, KeyEncoding::u64be);
  EXPECT_EQ(out.build.custom, in.build.custom);
  ASSERT_EQ(out.shards.size(), in.shards.size());
  for (std::size_t i = 0; i < in.shards.size(); ++i) {
    SCOPED_TRACE(i);
    const auto &a = in.shards[i], &b = out.shards[i];
    EXPECT_EQ(a.db_id, b.db_id);
    EXPECT_EQ(a.db_url, b.db_url);
    EXPECT_EQ(a.attempt, b.attempt);
    EXPECT_EQ(a.row_count, b.row_count);
    EXPECT_EQ(a.db_bytes, b.db_bytes);
    EXPECT_EQ(a.min_key, b.min_key);
    EXPECT_EQ(a.max_key, b.max_key);
    EXPECT_EQ(a.checkpoint_id, b.checkpoint_id);
    EXPECT_EQ(a.writer_info.attempt, b.writer_info.attempt);
    EXPECT_EQ(a.writer_info.duration_ms, b.writer_info.duration_ms);
    EXPECT_EQ(a.writer_info.stage_id, b.writer_info.stage_id);
    EXPECT_EQ(a.writer_info.task_attempt_id, b.writer_info.task_attempt_id);
  }
  EXPECT_EQ(out.total_row_count(), 10 + 13 + 17);

  // CEL categorical round trip
  Manifest cel = sample();
  cel.shards.clear();
  cel.build.num_dbs = 3;
  cel.build.key_encoding = KeyEncoding::utf8;
  cel.build.sharding.strategy = ShardingStrategy::cel;
  cel.build.sharding.cel_expr = "region";
  cel.build.sharding.cel_columns = json::object{{"region", "string"}};
  cel.build.sharding.routing_values = json::array{"ap", "eu", "us"};
  auto bytes = build_manifest(cel);
  EXPECT_EQ(query_text(bytes, "SELECT sharding FROM build_meta"), std::string(kCategorical) + "\n");
  Manifest cel2 = parse_manifest(bytes);
  EXPECT_EQ(cel2.build.sharding.routing_values, cel.build.sharding.routing_values);
  EXPECT_EQ(cel2.build.key_encoding, KeyEncoding::utf8);
}

TEST(ManifestBuild, FileShapeMatchesSpec) {
  std::string b = built();
  ASSERT_GE(b.size(), 100u);
  EXPECT_EQ(b.substr(0, 16), std::string("SQLite format 3\0", 16));
  EXPECT_EQ(b[18], 1);  // rollback journal, not WAL (spec 2.1)
  EXPECT_EQ(b[19], 1);
  EXPECT_EQ((static_cast<unsigned char>(b[16]) << 8) | static_cast<unsigned char>(b[17]), 4096);
  // Exactly the two tables of spec 2.2, and nothing else.
  EXPECT_EQ(query_text(b, "SELECT type || ' ' || name FROM sqlite_master ORDER BY name"),
            "table build_meta\ntable shards\n");
  std::string fixture_manifest;
  for (auto& e : std::filesystem::recursive_directory_iterator(test::fixtures_dir() /
                                                               "snapshots/kv_small/manifests"))
    if (e.path().filename() == "manifest") fixture_manifest = test::read_file(e.path());
  ASSERT_FALSE(fixture_manifest.empty());
  // The CREATE statements are the reference's, character for character.
  EXPECT_EQ(query_text(b, "SELECT sql FROM sqlite_master ORDER BY name"),
            query_text(fixture_manifest, "SELECT sql FROM sqlite_master ORDER BY name"));
  EXPECT_EQ(
      query_text(b, "SELECT sharding FROM build_meta"),
      R"({"cel_columns": null, "cel_expr": null, "hash_algorithm": "xxh3_64", "routing_values": null, "strategy": "hash"})"
      "\n");
  EXPECT_EQ(
      query_text(b, "SELECT custom FROM build_meta"),
      R"({"sqlite_sidecar": {"codec": "zstd", "filename": "shard.sidecar", "format_version": 8, "page_size": 4096}, "user": "caf\u00e9 \ud83d\ude00"})"
      "\n");
  EXPECT_EQ(query_text(b, "SELECT created_at FROM build_meta"), "2026-11-22T01:48:24.187570Z\n");
  EXPECT_EQ(query_text(b, "SELECT writer_info FROM shards WHERE db_id=0"),
            R"({"attempt": 0, "duration_ms": 12, "stage_id": null, "task_attempt_id": null})"
            "\n");
  EXPECT_EQ(query_text(b, "SELECT min_key || '|' || max_key FROM shards WHERE db_id=3"),
            "3|9223372036854775807\n");
  EXPECT_EQ(query_text(b, "SELECT typeof(min_key) FROM shards WHERE db_id=3"), "text\n");
  // The same manifest from the reference parses the same way.
  EXPECT_EQ(parse_error(fixture_manifest), "");
}

TEST(ManifestBuild, KeysAndStringsAreEscapedLikeJsonDumps) {
  Manifest m = sample();
  m.shards[0].min_key = Key::text(std::string("\0\x7f\xc3\xa9\xf4\x8f\xbf\xbf", 8));
  m.shards[0].max_key = Key::bytes("plain");  // bytes keys are stored as their UTF-8 text
  auto b = build_manifest(m);
  EXPECT_EQ(query_text(b, "SELECT min_key || '|' || max_key FROM shards WHERE db_id=0"),
            R"("\u0000\u007f\u00e9\udbff\udfff"|"plain")"
            "\n");
  m.shards[0].max_key = Key::bytes("\xff\xfe");
  try {
    build_manifest(m);
    ADD_FAILURE() << "non-UTF-8 bytes key accepted";
  } catch (const error& e) {
    EXPECT_TRUE(e.code() == errc::invalid_argument || e.code() == errc::manifest_parse_error);
  }
  m = sample();
  m.build.custom["f"] = json::array{1.5, 1e16, 1e-5, 0.0001, 100.0, -0.0, 123456789.125};
  m.build.custom["n"] = nullptr;
  m.build.custom["b"] = true;
  m.build.custom["A"] = json::object{{"z", 1}, {"a", 2}};
  EXPECT_EQ(
      query_text(build_manifest(m), "SELECT custom FROM build_meta"),
      R"({"A": {"a": 2, "z": 1}, "b": true, "f": [1.5, 1e+16, 1e-05, 0.0001, 100.0, -0.0, 123456789.125], "n": null, "sqlite_sidecar": {"codec": "zstd", "filename": "shard.sidecar", "format_version": 8, "page_size": 4096}, "user": "caf\u00e9 \ud83d\ude00"})"
      "\n");
}

TEST(ManifestBuild, ValidatesFirst) {
  Manifest m = sample();
  m.build.format_version = 3;
  EXPECT_THROW(build_manifest(m), error);
  m = sample();
  m.shards[1].db_id = 0;
  try {
    build_manifest(m);
    ADD_FAILURE();
  } catch (const error& e) {
    EXPECT_EQ(e.code(), errc::manifest_parse_error);
    EXPECT_NE(e.diagnostics().find("shards.db_id_unique"), std::string::npos);
  }
  m = sample();
  m.shards[1].db_id = 8;
  EXPECT_THROW(validate_manifest(m), error);
  m = sample();
  m.build.sharding.routing_values = json::array{1};
  EXPECT_THROW(validate_manifest(m), error);
}

// ---- A-13 KV gate --------------------------------------------------------------------------

TEST(ManifestKvGate, VectorOnlyManifestsAreRefusedForKvReads) {
  Manifest m = sample();
  EXPECT_NO_THROW(check_kv_readable(m));
  m.build.custom["vector"] = json::object{{"dim", 4}, {"metric", "l2"}};
  // It still parses (history/rollback must see it) ...
  Manifest parsed = parse_manifest(build_manifest(m));
  // ... but a KV reader refuses it.
  try {
    check_kv_readable(parsed);
    ADD_FAILURE();
  } catch (const error& e) {
    EXPECT_EQ(e.code(), errc::unsupported);
  }
  m.build.custom["vector"].as_object()["unified"] = false;
  EXPECT_THROW(check_kv_readable(m), error);
  m.build.custom["vector"].as_object()["unified"] = true;
  EXPECT_NO_THROW(check_kv_readable(m));
  m.build.custom["vector"] = "not an object";
  EXPECT_NO_THROW(check_kv_readable(m));
}

// ---- E-15: LazyShardLookup --------------------------------------------------------------------

// Diagnostics of a shardy::error thrown by f ("" when nothing is thrown).
template <typename F>
std::string thrown(F&& f) {
  try {
    f();
  } catch (const error& e) {
    EXPECT_EQ(e.code(), errc::manifest_parse_error) << e.diagnostics();
    return e.diagnostics();
  }
  return "";
}

void expect_same_shard(const ShardMeta& got, const ShardMeta& want) {
  EXPECT_EQ(got.db_id, want.db_id);
  EXPECT_EQ(got.db_url, want.db_url) << want.db_id;
  EXPECT_EQ(got.attempt, want.attempt) << want.db_id;
  EXPECT_EQ(got.row_count, want.row_count) << want.db_id;
  EXPECT_EQ(got.db_bytes, want.db_bytes) << want.db_id;
  EXPECT_EQ(got.min_key, want.min_key) << want.db_id;
  EXPECT_EQ(got.max_key, want.max_key) << want.db_id;
  EXPECT_EQ(got.checkpoint_id, want.checkpoint_id) << want.db_id;
  EXPECT_EQ(got.writer_info.duration_ms, want.writer_info.duration_ms) << want.db_id;
  EXPECT_EQ(got.writer_info_json, want.writer_info_json) << want.db_id;
}

// A 100k-shard manifest (rows for every third id, the others empty): the lookup decodes no row
// when it is built, then exactly one per id asked for, the same record parse_manifest gives
// (synthesized empty ones for ids without a row), from the LRU cache when asked again; routing
// needs no row at all.
TEST(LazyShardLookup, HundredThousandShardsAreReadOnDemand_E15) {
  Manifest big = sample();
  big.build.num_dbs = 100000;
  big.shards.clear();
  for (std::uint32_t id = 0; id < big.build.num_dbs; id += 3) {
    ShardMeta s;
    s.db_id = id;
    s.db_url = "s3://bucket/snap/shards/run_id=r/db=" + std::to_string(id) + "/attempt=00";
    s.row_count = id + 1;
    s.db_bytes = 4096;
    s.min_key = Key::integer(id);
    s.max_key = Key::integer(id + 1000);
    s.checkpoint_id = "c" + std::to_string(id);
    s.writer_info.duration_ms = id % 100;
    big.shards.push_back(std::move(s));
  }
  const std::string bytes = build_manifest(big);
  const Manifest full = parse_manifest(bytes);
  const auto all = full.all_shards();

  LazyShardLookup lazy(bytes, 4);
  EXPECT_EQ(lazy.stats().rows_read, 0u);
  EXPECT_EQ(lazy.build().num_dbs, 100000u);
  EXPECT_EQ(lazy.build().run_id, full.build.run_id);
  EXPECT_EQ(lazy.build().custom, full.build.custom);

  // Routing needs no shard row.
  const Router router = lazy.router();
  for (std::int64_t k = 0; k < 1000; ++k)
    EXPECT_EQ(router.shard_for(Key::integer(k)),
              Router(full.build.num_dbs, full.build.key_encoding).shard_for(Key::integer(k)));
  EXPECT_EQ(lazy.stats().rows_read, 0u);

  for (std::uint32_t id : {0u, 1u, 3u, 99999u}) expect_same_shard(lazy.shard(id), all[id]);
  EXPECT_EQ(lazy.stats().rows_read, 4u);  // rows for 0, 3 and 99999; none for 1
  EXPECT_EQ(lazy.stats().cached, 4u);
  EXPECT_FALSE(lazy.shard(1).db_url);  // the synthesized empty shard (A-14), from the cache
  EXPECT_EQ(lazy.shard(1).row_count, 0);
  EXPECT_EQ(lazy.stats().cache_hits, 2u);
  EXPECT_EQ(lazy.stats().rows_read, 4u);

  // LRU with room for 4: a fifth id evicts the least recently used one (0), not 3.
  expect_same_shard(lazy.shard(50001), all[50001]);
  EXPECT_EQ(lazy.stats().rows_read, 5u);
  EXPECT_EQ(lazy.stats().cached, 4u);
  expect_same_shard(lazy.shard(3), all[3]);
  EXPECT_EQ(lazy.stats().cache_hits, 3u);
  expect_same_shard(lazy.shard(0), all[0]);
  EXPECT_EQ(lazy.stats().rows_read, 6u);

  error_code ec;
  lazy.shard(100000, ec);
  EXPECT_EQ(ec, errc::invalid_argument);
  EXPECT_THROW(lazy.shard(std::uint32_t(-1)), error);

  // No cache: every call reads its row.
  LazyShardLookup uncached(bytes, 0);
  uncached.shard(3);
  uncached.shard(3);
  EXPECT_EQ(uncached.stats().rows_read, 2u);
  EXPECT_EQ(uncached.stats().cached, 0u);
}

// build_meta is validated at construction with parse_manifest's rules; shard rows only when they
// are read, with the per-row rules (the rest of the manifest stays readable).
TEST(LazyShardLookup, RulesAtConstructionAndPerRow_E15) {
  EXPECT_NE(thrown([] {
              LazyShardLookup l(mutate(built(), "UPDATE build_meta SET format_version=3"));
            }).find("rule 'format_version'"),
            std::string::npos);
  EXPECT_NE(thrown([] {
              LazyShardLookup l(std::string("not a manifest at all, no"));
            }).find("rule 'magic'"),
            std::string::npos);
  EXPECT_NE(thrown([] {
              LazyShardLookup l(mutate(built(), "UPDATE shards SET db_id=8 WHERE db_id=7"));
            }).find("rule 'shards.db_id_range'"),
            std::string::npos);

  // A bad row: parse_manifest refuses the whole manifest; the lazy lookup serves the good rows
  // and refuses that one, each time it is asked for.
  const auto bad = mutate(built(), "UPDATE shards SET row_count=-1 WHERE db_id=3");
  EXPECT_NE(parse_error(bad).find("shards.non_negative"), std::string::npos);
  LazyShardLookup lazy(bad);
  const auto all = parse_manifest(built()).all_shards();
  expect_same_shard(lazy.shard(0), all[0]);
  expect_same_shard(lazy.shard(7), all[7]);
  for (int i = 0; i < 2; ++i)
    EXPECT_NE(thrown([&] { lazy.shard(3); }).find("rule 'shards.non_negative'"), std::string::npos);
  error_code ec;
  lazy.shard(3, ec);
  EXPECT_EQ(ec, errc::manifest_parse_error);
  const auto badkey = mutate(built(), "UPDATE shards SET min_key='1.5' WHERE db_id=7");
  EXPECT_NE(thrown([&] { LazyShardLookup(badkey).shard(7); }).find("rule 'shards.min_key'"),
            std::string::npos);

  // Without the INTEGER primary key, a duplicate id is found when it is read; ids stored as
  // text are range-checked one by one at construction.
  const auto dup = mutate(built(),
                          "CREATE TABLE s2 AS SELECT * FROM shards; DROP TABLE shards; ALTER TABLE "
                          "s2 RENAME TO shards; UPDATE shards SET db_id=3 WHERE db_id=7");
  EXPECT_NE(thrown([&] { LazyShardLookup(dup).shard(3); }).find("rule 'shards.db_id_unique'"),
            std::string::npos);
  const auto text_ids = mutate(built(),
                               "CREATE TABLE s2 AS SELECT * FROM shards; DROP TABLE shards; ALTER "
                               "TABLE s2 RENAME TO shards; UPDATE shards SET db_id='9' WHERE "
                               "db_id=7");
  EXPECT_NE(thrown([&] { LazyShardLookup l(text_ids); }).find("rule 'shards.db_id_range'"),
            std::string::npos);

  // CEL manifests parse; routing them is refused as in the readers.
  const auto cel = mutate(built(), std::string("UPDATE build_meta SET sharding='") + kCategorical +
                                       "', num_dbs=3; DELETE FROM shards WHERE db_id>2");
  LazyShardLookup cel_lookup(cel);
  try {
    cel_lookup.router();
    ADD_FAILURE() << "routed a CEL snapshot";
  } catch (const error& e) {
    EXPECT_EQ(e.code(), errc::unsupported);
  }
}

}  // namespace
}  // namespace shardy
