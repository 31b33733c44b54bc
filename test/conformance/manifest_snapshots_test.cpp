// Every shardyfusion-written snapshot in fixtures/snapshots, opened through the ManifestStore over
// the mapped local store (bucket shardy-fixtures -> the fixtures folder): _CURRENT, the manifest
// and the history match expected/<name>/reader_info.json, and routing + a direct SQLite lookup in
// each shard reproduce expected.jsonl (shard ids, values, absent keys, error-or-not).
// Reader-feature rows: H-09 (cold-start fallback), A-14 (empty shards), D-* (get semantics).
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/json.hpp>
#include <map>
#include <shardy/local_store.hpp>
#include <shardy/manifest_store.hpp>
#include <shardy/routing.hpp>

#include "support/run_io.hpp"
#include "support/test_support.hpp"

namespace shardy {
namespace {

namespace asio = boost::asio;
namespace json = boost::json;
using test::from_hex;
using test::to_hex;

using shardy::test::run;

std::string s(const json::value& v) { return std::string(v.as_string()); }

Timestamp ts(const json::value& v) {
  auto t = parse_timestamp(v.as_string());
  EXPECT_TRUE(t) << v;
  return t.value_or(Timestamp{});
}

// reader_info.json's min/max: a JSON number (int) or a string; null when absent.
void expect_key(const std::optional<Key>& got, const json::value& want, const char* what) {
  SCOPED_TRACE(what);
  if (want.is_null()) {
    EXPECT_FALSE(got);
    return;
  }
  ASSERT_TRUE(got);
  if (want.is_string()) {
    EXPECT_EQ(*got, Key::text(want.as_string()));
  } else if (want.is_uint64()) {
    EXPECT_EQ(*got, Key::unsigned_integer(want.as_uint64()));
  } else {
    EXPECT_EQ(*got, Key::integer(want.as_int64()));
  }
}

std::optional<std::int64_t> opt_int(const json::value& v) {
  if (v.is_null()) return std::nullopt;
  return v.to_number<std::int64_t>();
}

// Opens shard.db files read-only and immutable, straight from the fixtures folder.
class ShardFiles {
 public:
  ~ShardFiles() {
    for (auto& [k, db] : dbs_) sqlite3_close(db);
  }
  // Returns the value, nullopt when absent.
  std::optional<std::string> get(const std::string& db_url, const std::string& key) {
    sqlite3* db = open(db_url);
    sqlite3_stmt* st = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db, "SELECT v FROM kv WHERE k = ?", -1, &st, nullptr), SQLITE_OK);
    sqlite3_bind_blob(st, 1, key.data(), static_cast<int>(key.size()), SQLITE_TRANSIENT);
    std::optional<std::string> out;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
      auto* p = static_cast<const char*>(sqlite3_column_blob(st, 0));
      out.emplace(p ? p : "", static_cast<std::size_t>(sqlite3_column_bytes(st, 0)));
    } else {
      EXPECT_EQ(rc, SQLITE_DONE) << sqlite3_errmsg(db);
    }
    sqlite3_finalize(st);
    return out;
  }

 private:
  sqlite3* open(const std::string& db_url) {
    auto it = dbs_.find(db_url);
    if (it != dbs_.end()) return it->second;
    const std::string bucket = "s3://shardy-fixtures/";
    EXPECT_TRUE(db_url.starts_with(bucket)) << db_url;
    std::string path =
        (test::fixtures_dir() / (db_url.substr(bucket.size()) + "/shard.db")).string();
    std::string uri = "file:";
    for (char c : path) {  // '?', '#' and '%' are special in URI file names
      if (c == '?' || c == '#' || c == '%') {
        char buf[4];
        std::snprintf(buf, sizeof buf, "%%%02X", static_cast<unsigned char>(c));
        uri += buf;
      } else {
        uri.push_back(c);
      }
    }
    uri += "?immutable=1";
    sqlite3* db = nullptr;
    int rc = sqlite3_open_v2(uri.c_str(), &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, nullptr);
    EXPECT_EQ(rc, SQLITE_OK) << path;
    dbs_[db_url] = db;
    return db;
  }
  std::map<std::string, sqlite3*> dbs_;
};

class SnapshotConformance : public ::testing::TestWithParam<const char*> {};

TEST_P(SnapshotConformance, ManifestStoreAndLookupsMatchTheReference) {
  const std::string name = GetParam();
  const auto expected_dir = test::fixtures_dir() / "expected" / name;
  json::object info = json::parse(test::read_file(expected_dir / "reader_info.json")).as_object();
  asio::io_context io;
  auto objects =
      make_mapped_store(io.get_executor(), {}, {{"shardy-fixtures", test::fixtures_dir()}});
  auto store = make_object_manifest_store(objects, s(info.at("s3_prefix")));

  // _CURRENT
  auto current = run(io, store->load_current());
  ASSERT_TRUE(current);
  const auto& cp = info.at("current_pointer").as_object();
  EXPECT_EQ(current->ref, s(cp.at("ref")));
  EXPECT_EQ(current->run_id, s(cp.at("run_id")));
  EXPECT_EQ(current->published_at, ts(cp.at("published_at")));

  // History, newest first with directory timestamps.
  auto history = run(io, store->list_manifests(1000));
  const auto& want_history = info.at("list_manifests").as_array();
  ASSERT_EQ(history.size(), want_history.size());
  for (std::size_t i = 0; i < history.size(); ++i) {
    const auto& w = want_history[i].as_object();
    EXPECT_EQ(history[i].ref, s(w.at("ref")));
    EXPECT_EQ(history[i].run_id, s(w.at("run_id")));
    EXPECT_EQ(history[i].published_at, ts(w.at("published_at")));
  }

  // The manifest: the current one, or (H-09) the first of the newest max_fallback_attempts+1
  // that parses when the current one is malformed.
  const std::string loaded_ref = s(info.at("loaded_manifest_ref"));
  std::optional<Manifest> manifest;
  std::string used_ref;
  try {
    manifest = run(io, store->load_manifest(current->ref));
    used_ref = current->ref;
  } catch (const error& e) {
    ASSERT_EQ(e.code(), errc::manifest_parse_error) << e.what();
    EXPECT_NE(e.diagnostics().find("rule 'magic'"), std::string::npos) << e.diagnostics();
    for (const auto& cand : run(io, store->list_manifests(3 + 1))) {
      if (cand.ref == current->ref) continue;
      try {
        manifest = run(io, store->load_manifest(cand.ref));
        used_ref = cand.ref;
        break;
      } catch (const error& e2) {
        ASSERT_EQ(e2.code(), errc::manifest_parse_error);
      }
    }
  }
  ASSERT_TRUE(manifest);
  EXPECT_EQ(used_ref, loaded_ref);
  EXPECT_EQ(name == "kv_history_fallback", used_ref != current->ref);
  EXPECT_NO_THROW(check_kv_readable(*manifest));

  const auto& lm = info.at("loaded_manifest").as_object();
  const auto& req = lm.at("required").as_object();
  const BuildMeta& b = manifest->build;
  EXPECT_EQ(b.run_id, s(req.at("run_id")));
  EXPECT_EQ(b.created_at, ts(req.at("created_at")));
  EXPECT_EQ(b.num_dbs, req.at("num_dbs").to_number<std::uint32_t>());
  EXPECT_EQ(b.s3_prefix, s(req.at("s3_prefix")));
  EXPECT_EQ(b.key_col, s(req.at("key_col")));
  EXPECT_EQ(b.db_path_template, s(req.at("db_path_template")));
  EXPECT_EQ(b.shard_prefix, s(req.at("shard_prefix")));
  EXPECT_EQ(b.format_version, req.at("format_version").to_number<std::int64_t>());
  EXPECT_EQ(to_string(b.key_encoding), s(req.at("key_encoding")));
  EXPECT_EQ(to_string(b.key_encoding), s(info.at("key_encoding")));
  const auto& sh = req.at("sharding").as_object();
  EXPECT_EQ(s(sh.at("strategy")), b.sharding.strategy == ShardingStrategy::hash ? "hash" : "cel");
  EXPECT_EQ(b.sharding.hash_algorithm, s(sh.at("hash_algorithm")));
  EXPECT_TRUE(sh.at("routing_values").is_null() && !b.sharding.routing_values);
  EXPECT_TRUE(sh.at("cel_expr").is_null() && !b.sharding.cel_expr);
  EXPECT_TRUE(sh.at("cel_columns").is_null() && !b.sharding.cel_columns);
  EXPECT_EQ(json::value(b.custom), lm.at("custom"));

  const auto& want_shards = lm.at("shards").as_array();
  ASSERT_EQ(manifest->shards.size(), want_shards.size());
  for (std::size_t i = 0; i < want_shards.size(); ++i) {
    SCOPED_TRACE("shard row " + std::to_string(i));
    const auto& w = want_shards[i].as_object();
    const ShardMeta& m = manifest->shards[i];
    EXPECT_EQ(m.db_id, w.at("db_id").to_number<std::uint32_t>());
    EXPECT_EQ(m.db_url, w.at("db_url").is_null() ? std::nullopt
                                                 : std::optional<std::string>(s(w.at("db_url"))));
    EXPECT_EQ(m.attempt, w.at("attempt").to_number<std::int64_t>());
    EXPECT_EQ(m.row_count, w.at("row_count").to_number<std::int64_t>());
    EXPECT_EQ(m.db_bytes, w.at("db_bytes").to_number<std::int64_t>());
    expect_key(m.min_key, w.at("min_key"), "min_key");
    expect_key(m.max_key, w.at("max_key"), "max_key");
    EXPECT_EQ(m.checkpoint_id, s(w.at("checkpoint_id")));
    const auto& wi = w.at("writer_info").as_object();
    EXPECT_EQ(m.writer_info.attempt, wi.at("attempt").to_number<std::int64_t>());
    EXPECT_EQ(m.writer_info.duration_ms, wi.at("duration_ms").to_number<std::int64_t>());
    EXPECT_EQ(m.writer_info.stage_id, opt_int(wi.at("stage_id")));
    EXPECT_EQ(m.writer_info.task_attempt_id, opt_int(wi.at("task_attempt_id")));
  }

  // one entry per db_id, empty shards synthesized.
  auto all = manifest->all_shards();
  const auto& details = info.at("shard_details").as_array();
  ASSERT_EQ(all.size(), details.size());
  for (std::size_t i = 0; i < all.size(); ++i) {
    const auto& d = details[i].as_object();
    EXPECT_EQ(all[i].db_id, d.at("db_id").to_number<std::uint32_t>());
    EXPECT_EQ(all[i].row_count, d.at("row_count").to_number<std::int64_t>());
    EXPECT_EQ(all[i].db_url.has_value(), !d.at("db_url").is_null());
    expect_key(all[i].min_key, d.at("min_key"), "detail min_key");
  }
  EXPECT_EQ(manifest->total_row_count(),
            info.at("snapshot_info").at("row_count").to_number<std::int64_t>());

  // Every key of expected.jsonl: route, encode, look up in the shard's SQLite file.
  Router router(b.num_dbs, b.key_encoding);
  ShardFiles shards;
  std::map<std::string, std::size_t> counts;
  for (const std::string& line : test::read_lines(expected_dir / "expected.jsonl")) {
    SCOPED_TRACE(line.substr(0, 240));
    json::object e = json::parse(line).as_object();
    const std::string type = s(e.at("key_type"));
    const bool want_route_error = e.at("shard_id").is_null();
    const bool want_get_error = e.contains("get_error");
    const json::value& want_value = e.at("value_hex");
    ++counts[s(e.at("kind"))];

    std::optional<Key> key;
    if (type == "int") {
      error_code ec;
      Key k = Key::parse_integer(s(e.at("key_dec")), ec);
      if (ec) {  // beyond uint64: unroutable, and get raises
        EXPECT_TRUE(want_route_error);
        EXPECT_TRUE(want_get_error);
        ++counts["error"];
        continue;
      }
      key = k;
    } else if (type == "str") {
      key = Key::text(from_hex(s(e.at("key_utf8_hex"))));
    } else {
      key = Key::bytes(from_hex(s(e.at("key_hex"))));
    }
    error_code ec;
    std::uint32_t shard = router.shard_for(*key, ec);
    if (want_route_error) {
      EXPECT_EQ(ec, errc::key_not_routable);
      EXPECT_TRUE(want_get_error);
      ++counts["error"];
      continue;
    }
    ASSERT_FALSE(ec);
    EXPECT_EQ(shard, e.at("shard_id").to_number<std::uint32_t>());
    RouteResult r = router.route_lookup(*key, ec);
    if (want_get_error) {
      EXPECT_EQ(ec, errc::key_encoding_error);
      ++counts["error"];
      continue;
    }
    ASSERT_FALSE(ec) << ec.message();
    std::optional<std::string> got;
    if (all[r.db_id].db_url) got = shards.get(*all[r.db_id].db_url, r.storage_key);
    if (want_value.is_null()) {
      EXPECT_FALSE(got) << "unexpected value " << to_hex(got.value_or(""));
      ++counts["none"];
    } else {
      ASSERT_TRUE(got);
      EXPECT_EQ(to_hex(*got), s(want_value));
      ++counts["value"];
    }
  }
  std::string summary;
  for (auto& [k, v] : counts) summary += k + "=" + std::to_string(v) + " ";
  RecordProperty("counts", summary);
  std::printf("[ %s ] %s\n", name.c_str(), summary.c_str());
  EXPECT_GT(counts["value"], 0u);
  EXPECT_GE(counts["absent"], 200u);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, SnapshotConformance,
                         ::testing::Values("kv_small", "kv_str", "kv_sparse",
                                           "kv_history_fallback"));

}  // namespace
}  // namespace shardy
