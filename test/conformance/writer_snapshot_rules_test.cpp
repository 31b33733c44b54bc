// Snapshots written by shardy's writer satisfy every rule shardyfusion's reader applies
// (interop spec 2.8 and the "Writing snapshots Python can read" checklist of section 8), one
// test per rule, checked on the raw objects (not through shardy's own parser), and then parsed
// back with parse_manifest and read back by routing.
// libstdc++ 12 <regex> trips a false -Wmaybe-uninitialized at -O1 with sanitizers.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <zstd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/json.hpp>
#include <cstring>
#include <filesystem>
#include <map>
#include <random>
#include <regex>
#include <set>
#include <shardy/local_store.hpp>
#include <shardy/manifest.hpp>
#include <shardy/manifest_store.hpp>
#include <shardy/routing.hpp>
#include <shardy/writer.hpp>

#include "core/sidecar_format.hpp"
#include "support/run_io.hpp"
#include "support/test_support.hpp"
#include "writer/sqlite_shard_builder.hpp"

namespace fs = std::filesystem;
namespace asio = boost::asio;
namespace json = boost::json;
using shardy::Key;
using shardy::test::read_file;

namespace {

using shardy::test::run;

// Keeps a sqlite3* over a copy of the bytes (sqlite3_deserialize), as the Python reader does.
struct MemDb {
  sqlite3* db = nullptr;
  explicit MemDb(const std::string& bytes) {
    sqlite3_open(":memory:", &db);
    auto* buf = static_cast<unsigned char*>(sqlite3_malloc64(bytes.size()));
    std::memcpy(buf, bytes.data(), bytes.size());
    EXPECT_EQ(sqlite3_deserialize(db, "main", buf, static_cast<sqlite3_int64>(bytes.size()),
                                  static_cast<sqlite3_int64>(bytes.size()),
                                  SQLITE_DESERIALIZE_FREEONCLOSE | SQLITE_DESERIALIZE_READONLY),
              SQLITE_OK);
  }
  ~MemDb() { sqlite3_close(db); }
  // Rows as maps column-name -> (type, text/blob bytes).
  std::vector<std::map<std::string, std::pair<int, std::string>>> rows(const std::string& sql) {
    sqlite3_stmt* st = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr), SQLITE_OK)
        << sql << ": " << sqlite3_errmsg(db);
    std::vector<std::map<std::string, std::pair<int, std::string>>> out;
    while (st && sqlite3_step(st) == SQLITE_ROW) {
      std::map<std::string, std::pair<int, std::string>> r;
      for (int i = 0; i < sqlite3_column_count(st); ++i) {
        const int type = sqlite3_column_type(st, i);
        std::string v;
        if (type == SQLITE_BLOB) {
          v.assign(static_cast<const char*>(sqlite3_column_blob(st, i)),
                   static_cast<std::size_t>(sqlite3_column_bytes(st, i)));
        } else if (type != SQLITE_NULL) {
          v = reinterpret_cast<const char*>(sqlite3_column_text(st, i));
        }
        r[sqlite3_column_name(st, i)] = {type, v};
      }
      out.push_back(std::move(r));
    }
    sqlite3_finalize(st);
    return out;
  }
};

using shardy::test::lookup;

// One snapshot, written once for the whole suite: int keys (u64be), 64 shards, 300 records of
// which 40 rewrite an earlier key (the last write must win), so several shards stay empty
// (expected ~ 64 * (1 - 1/64)^260 ≈ 1.1; we use few distinct keys to get more empties).
class WriterSnapshotRules : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new fs::path(shardy::test::make_temp_dir("writer-rules"));
    prefix_ = new std::string("file://" + (*dir_ / "snap").string());
    std::mt19937_64 rng(42);
    std::vector<shardy::Record> records;
    expected_ = new std::map<std::int64_t, std::string>();
    records_per_key_ = new std::map<std::int64_t, int>();
    for (int i = 0; i < 100; ++i) {
      std::int64_t k = i < 60 ? static_cast<std::int64_t>(rng() >> 1) % 1000000
                              : (*expected_).begin()->first;  // rewrite the first key
      if (i >= 60 && i < 80) k = std::next(expected_->begin(), i - 60)->first;
      std::string v = i % 17 == 0 ? std::string() : "value-" + std::to_string(i);
      if (i == 5) v = std::string("\0\x01\xff", 3);  // binary
      records.push_back(shardy::Record{Key::integer(k), v});
      (*expected_)[k] = v;
      (*records_per_key_)[k] += 1;
    }
    shardy::WriterOptions o;
    o.prefix = *prefix_;
    o.num_dbs = 64;
    o.key_encoding = shardy::KeyEncoding::u64be;
    o.run_id = "rules0001";
    o.custom_manifest_fields["team"] = "search";
    asio::io_context io;
    auto store = shardy::make_file_store(io.get_executor());
    result_ = new shardy::BuildResult(
        run(io, shardy::build_snapshot(store, o, shardy::make_record_source(records))));
  }
  static void TearDownTestSuite() {
    delete result_;
    delete expected_;
    delete records_per_key_;
    delete prefix_;
    delete dir_;
  }

  static fs::path local(std::string_view url) {
    EXPECT_EQ(url.substr(0, 7), "file://");
    return fs::path(std::string(url.substr(7)));
  }
  static std::string manifest_bytes() { return read_file(local(result_->manifest.ref)); }

  static fs::path* dir_;
  static std::string* prefix_;
  static std::map<std::int64_t, std::string>* expected_;
  static std::map<std::int64_t, int>* records_per_key_;
  static shardy::BuildResult* result_;
};
fs::path* WriterSnapshotRules::dir_;
std::string* WriterSnapshotRules::prefix_;
std::map<std::int64_t, std::string>* WriterSnapshotRules::expected_;
std::map<std::int64_t, int>* WriterSnapshotRules::records_per_key_;
shardy::BuildResult* WriterSnapshotRules::result_;

// --- _CURRENT (spec 1.4) -----------------------------------------------------------------------

TEST_F(WriterSnapshotRules, CurrentPointerByteFormat) {
  const std::string cur = read_file(local(*prefix_ + "/_CURRENT"));
  EXPECT_NE(cur.back(), '\n');
  EXPECT_EQ(cur.find(' '), std::string::npos);  // compact separators
  const std::regex re(R"re(\{"format_version":1,"manifest_content_type":"application/x-sqlite3",)re"
                      R"re("manifest_ref":"([^"]+)","run_id":"rules0001",)re"
                      R"re("updated_at":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z"\})re");
  std::smatch m;
  ASSERT_TRUE(std::regex_match(cur, m, re)) << cur;
  EXPECT_EQ(m[1].str(), result_->manifest.ref);
}

// --- manifest object (spec 1.5, 2.1, 2.2) ------------------------------------------------------

TEST_F(WriterSnapshotRules, ManifestPathHasSixDigitFraction) {
  const std::string re_text =
      "^" + std::regex_replace(*prefix_, std::regex(R"([.^$|()\[\]{}*+?\\])"), R"(\$&)") +
      R"(/manifests/(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z_run_id=[^/]+)/manifest$)";
  std::smatch m;
  ASSERT_TRUE(std::regex_match(result_->manifest.ref, m, std::regex(re_text)))
      << result_->manifest.ref;
  EXPECT_NE(m[1].str().find("_run_id=rules0001"), std::string::npos);
}

TEST_F(WriterSnapshotRules, ManifestMagic) {
  EXPECT_EQ(manifest_bytes().substr(0, 16), std::string("SQLite format 3\0", 16));
}

TEST_F(WriterSnapshotRules, ManifestNotWal) {
  const std::string b = manifest_bytes();
  EXPECT_EQ(b[18], 1);
  EXPECT_EQ(b[19], 1);
  EXPECT_FALSE(fs::exists(local(result_->manifest.ref).string() + "-wal"));
}

TEST_F(WriterSnapshotRules, ManifestColumnsByName) {
  MemDb db(manifest_bytes());
  std::set<std::string> meta, shards;
  for (auto& r : db.rows("PRAGMA table_info(build_meta)")) meta.insert(r["name"].second);
  for (auto& r : db.rows("PRAGMA table_info(shards)")) shards.insert(r["name"].second);
  EXPECT_EQ(meta, (std::set<std::string>{"run_id", "created_at", "num_dbs", "s3_prefix", "key_col",
                                         "sharding", "db_path_template", "shard_prefix",
                                         "format_version", "key_encoding", "custom"}));
  EXPECT_EQ(shards, (std::set<std::string>{"db_id", "db_url", "attempt", "row_count", "db_bytes",
                                           "min_key", "max_key", "checkpoint_id", "writer_info"}));
  EXPECT_EQ(db.rows("SELECT * FROM build_meta").size(), 1u);
}

// --- build_meta (spec 2.3, 2.4, 2.5) -----------------------------------------------------------

TEST_F(WriterSnapshotRules, FormatVersion4) {
  MemDb db(manifest_bytes());
  auto r = db.rows("SELECT * FROM build_meta")[0];
  EXPECT_EQ(r["format_version"], std::make_pair(SQLITE_INTEGER, std::string("4")));
}

TEST_F(WriterSnapshotRules, NumDbsAndEnumsAndText) {
  MemDb db(manifest_bytes());
  auto r = db.rows("SELECT * FROM build_meta")[0];
  EXPECT_EQ(r["num_dbs"], std::make_pair(SQLITE_INTEGER, std::string("64")));
  EXPECT_EQ(r["key_encoding"].second, "u64be");
  EXPECT_EQ(r["run_id"].second, "rules0001");
  EXPECT_EQ(r["s3_prefix"].second, *prefix_);
  EXPECT_EQ(r["key_col"].second, "_key");
  EXPECT_EQ(r["db_path_template"].second, "db={db_id:05d}");
  EXPECT_EQ(r["shard_prefix"].second, "shards");
  EXPECT_TRUE(std::regex_match(r["created_at"].second,
                               std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z)")));
}

TEST_F(WriterSnapshotRules, ShardingHasExactlyTheFiveKeys) {
  MemDb db(manifest_bytes());
  EXPECT_EQ(
      db.rows("SELECT sharding FROM build_meta")[0]["sharding"].second,
      R"({"cel_columns": null, "cel_expr": null, "hash_algorithm": "xxh3_64", "routing_values": null, "strategy": "hash"})");
}

TEST_F(WriterSnapshotRules, CustomCarriesSqliteSidecarExactly) {
  MemDb db(manifest_bytes());
  EXPECT_EQ(
      db.rows("SELECT custom FROM build_meta")[0]["custom"].second,
      R"({"sqlite_sidecar": {"codec": "zstd", "filename": "shard.sidecar", "format_version": 8, "page_size": 4096}, "team": "search"})");
}

// --- shards rows (spec 2.6, 2.8 step 5) --------------------------------------------------------

TEST_F(WriterSnapshotRules, DbIdRangeAndUniqueness) {
  MemDb db(manifest_bytes());
  std::set<std::int64_t> ids;
  const auto rows = db.rows("SELECT db_id FROM shards");
  EXPECT_LE(rows.size(), 64u);
  for (auto& r : rows) {
    const auto id = std::stoll(r.at("db_id").second);
    EXPECT_GE(id, 0);
    EXPECT_LT(id, 64);
    EXPECT_TRUE(ids.insert(id).second);
  }
}

TEST_F(WriterSnapshotRules, EmptyShardsOmitted) {
  const shardy::Router router(64, shardy::KeyEncoding::u64be);
  std::set<std::uint32_t> nonempty;
  for (auto& [k, v] : *expected_) nonempty.insert(router.shard_for(Key::integer(k)));
  ASSERT_LT(nonempty.size(), 64u);  // the data leaves some shards empty
  MemDb db(manifest_bytes());
  std::set<std::uint32_t> rows;
  for (auto& r : db.rows("SELECT db_id FROM shards")) rows.insert(std::stoul(r.at("db_id").second));
  EXPECT_EQ(rows, nonempty);
  // ... and no objects at all for the empty ones.
  for (std::uint32_t id = 0; id < 64; ++id) {
    char name[16];
    std::snprintf(name, sizeof name, "db=%05u", id);
    const fs::path d = *dir_ / "snap/shards/run_id=rules0001" / name;
    EXPECT_EQ(fs::exists(d), nonempty.count(id) == 1) << name;
  }
}

TEST_F(WriterSnapshotRules, RowCountsCountEveryRecord) {
  const shardy::Router router(64, shardy::KeyEncoding::u64be);
  std::map<std::uint32_t, std::int64_t> want;
  for (auto& [k, n] : *records_per_key_) want[router.shard_for(Key::integer(k))] += n;
  MemDb db(manifest_bytes());
  std::int64_t total = 0;
  for (auto& r : db.rows("SELECT db_id, row_count, attempt FROM shards")) {
    EXPECT_EQ(std::stoll(r["row_count"].second), want[std::stoul(r["db_id"].second)]);
    EXPECT_EQ(r["attempt"].second, "0");
    total += std::stoll(r["row_count"].second);
  }
  EXPECT_EQ(total, 100);
  EXPECT_EQ(result_->stats.rows_written, 100u);
}

TEST_F(WriterSnapshotRules, DbUrlLayoutAndDbBytesEqualsFileSize) {
  MemDb db(manifest_bytes());
  for (auto& r : db.rows("SELECT db_id, db_url, db_bytes FROM shards")) {
    char tail[64];
    std::snprintf(tail, sizeof tail, "/shards/run_id=rules0001/db=%05d/attempt=00",
                  std::stoi(r["db_id"].second));
    EXPECT_EQ(r["db_url"].second, *prefix_ + tail);
    EXPECT_EQ(r["db_bytes"].first, SQLITE_INTEGER);
    EXPECT_EQ(std::stoull(r["db_bytes"].second),
              fs::file_size(local(r["db_url"].second) / "shard.db"));
  }
}

TEST_F(WriterSnapshotRules, CheckpointIdsAre32HexAndUnique) {
  MemDb db(manifest_bytes());
  std::set<std::string> seen;
  for (auto& r : db.rows("SELECT checkpoint_id FROM shards")) {
    EXPECT_TRUE(std::regex_match(r["checkpoint_id"].second, std::regex("[0-9a-f]{32}")));
    EXPECT_TRUE(seen.insert(r["checkpoint_id"].second).second);
  }
}

TEST_F(WriterSnapshotRules, WriterInfoIsTheReferenceObject) {
  MemDb db(manifest_bytes());
  for (auto& r : db.rows("SELECT writer_info FROM shards")) {
    EXPECT_TRUE(std::regex_match(
        r["writer_info"].second,
        std::regex(
            R"(\{"attempt": 0, "duration_ms": \d+, "stage_id": null, "task_attempt_id": null\})")))
        << r["writer_info"].second;
  }
}

TEST_F(WriterSnapshotRules, MinMaxKeysAreRawJsonIntegers) {
  const shardy::Router router(64, shardy::KeyEncoding::u64be);
  std::map<std::uint32_t, std::pair<std::int64_t, std::int64_t>> want;
  for (auto& [k, v] : *expected_) {
    const auto id = router.shard_for(Key::integer(k));
    auto it = want.find(id);
    if (it == want.end()) {
      want[id] = {k, k};
    } else {
      it->second.first = std::min(it->second.first, k);
      it->second.second = std::max(it->second.second, k);
    }
  }
  MemDb db(manifest_bytes());
  for (auto& r : db.rows("SELECT db_id, min_key, max_key FROM shards")) {
    const auto& w = want.at(std::stoul(r["db_id"].second));
    EXPECT_EQ(r["min_key"], std::make_pair(SQLITE_TEXT, std::to_string(w.first)));
    EXPECT_EQ(r["max_key"], std::make_pair(SQLITE_TEXT, std::to_string(w.second)));
  }
}

// --- shard files (spec 4.1) --------------------------------------------------------------------

TEST_F(WriterSnapshotRules, ShardFilesMagicNotWalExactSchema) {
  for (const auto& s : result_->shards) {
    const fs::path f = local(*s.db_url) / "shard.db";
    const std::string b = read_file(f);
    EXPECT_EQ(b.substr(0, 16), std::string("SQLite format 3\0", 16));
    EXPECT_EQ(b[18], 1);
    EXPECT_EQ(b[19], 1);
    EXPECT_EQ((static_cast<unsigned char>(b[16]) << 8) | static_cast<unsigned char>(b[17]), 4096);
    MemDb db(b);
    auto rows = db.rows("SELECT type, name, sql FROM sqlite_master WHERE type = 'table'");
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(rows[0]["sql"].second, shardy::writer::kKvSchema);
  }
}

// --- sidecars (spec 4.5) -----------------------------------------------------------------------

TEST_F(WriterSnapshotRules, SidecarValidAndBoundToTheShardETag) {
  namespace sf = shardy::sidecar_format;
  asio::io_context io;
  auto store = shardy::make_file_store(io.get_executor());
  for (const auto& s : result_->shards) {
    const std::string obj = read_file(local(*s.db_url) / "shard.sidecar");
    ASSERT_GT(obj.size(), sf::tag_offset);
    EXPECT_EQ(obj.substr(0, 4), sf::magic);
    EXPECT_EQ(static_cast<std::uint8_t>(obj[sf::version_offset]), sf::version);
    std::uint64_t body_size;
    std::memcpy(&body_size, obj.data() + sf::body_size_offset, 8);
    std::uint32_t page_size;
    std::memcpy(&page_size, obj.data() + sf::page_size_offset, 4);
    EXPECT_EQ(page_size, 4096u);
    const std::size_t tl = static_cast<unsigned char>(obj[sf::tag_len_offset]);
    const std::string tag = obj.substr(sf::tag_offset, tl);
    const auto head = run(io, store->head(*s.db_url + "/shard.db"));
    EXPECT_EQ(tag, head.etag);
    EXPECT_FALSE(tag.empty());
    std::string body(body_size, '\0');
    const std::string frame = obj.substr(sf::tag_offset + tl);
    EXPECT_EQ(ZSTD_decompress(body.data(), body.size(), frame.data(), frame.size()), body_size);
  }
}

// --- run record (spec 1.6) ---------------------------------------------------------------------

TEST_F(WriterSnapshotRules, RunRecordSucceededWithManifestRef) {
  ASSERT_FALSE(result_->run_record.empty());
  EXPECT_TRUE(std::regex_search(
      result_->run_record,
      std::regex(
          R"(/runs/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z_run_id=rules0001_[0-9a-f]{32}/run\.yaml$)")));
  const std::string y = read_file(local(result_->run_record));
  EXPECT_NE(y.find("status: succeeded\n"), std::string::npos) << y;
  EXPECT_NE(y.find("manifest_ref: " + result_->manifest.ref + "\n"), std::string::npos) << y;
  EXPECT_NE(y.find("run_id: rules0001\n"), std::string::npos);
  EXPECT_NE(y.find("error_message: null\n"), std::string::npos);
}

// --- round trip: parse_manifest and reading values back by routing ------------------------------

TEST_F(WriterSnapshotRules, ParsesBackAndEveryKeyReturnsItsLastValue) {
  const std::string bytes = manifest_bytes();
  const shardy::Manifest m =
      shardy::parse_manifest(std::span<const char>(bytes.data(), bytes.size()));
  EXPECT_EQ(m.build.run_id, "rules0001");
  EXPECT_EQ(m.build.num_dbs, 64u);
  EXPECT_EQ(m.total_row_count(), 100);
  asio::io_context io;
  auto store = shardy::make_file_store(io.get_executor());
  auto ms = shardy::make_object_manifest_store(store, *prefix_);
  const auto cur = run(io, ms->load_current());
  ASSERT_TRUE(cur);
  EXPECT_EQ(cur->ref, result_->manifest.ref);
  const auto listed = run(io, ms->list_manifests(10));
  ASSERT_EQ(listed.size(), 1u);  // the directory regex accepts our manifest
  EXPECT_EQ(listed[0].ref, result_->manifest.ref);

  const auto all = m.all_shards();
  const shardy::Router router(m.build.num_dbs, m.build.key_encoding);
  for (auto& [k, v] : *expected_) {
    const auto r = router.route_lookup(Key::integer(k));
    ASSERT_TRUE(all[r.db_id].db_url) << k;
    EXPECT_EQ(lookup(local(*all[r.db_id].db_url) / "shard.db", r.storage_key), v) << k;
  }
  // A key never written is absent.
  const auto r = router.route_lookup(Key::integer(2000000));
  if (all[r.db_id].db_url) {
    EXPECT_EQ(lookup(local(*all[r.db_id].db_url) / "shard.db", r.storage_key), "<absent>");
  }
}

}  // namespace
