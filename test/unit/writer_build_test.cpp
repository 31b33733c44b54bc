// The writer's API: helpers (db_path_template, URL join, ids, run-record YAML), text keys with
// "auto" page size, input larger than the memory budget, and failures (bad keys, a failing
// store) that must leave a `failed` run record and no _CURRENT.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/json/serialize.hpp>
#include <filesystem>
#include <map>
#include <shardy/local_store.hpp>
#include <shardy/manifest_store.hpp>
#include <shardy/routing.hpp>
#include <shardy/writer.hpp>

#include "support/forwarding_store.hpp"
#include "support/run_io.hpp"
#include "support/test_support.hpp"
#include "writer/run_record.hpp"

namespace fs = std::filesystem;
namespace asio = boost::asio;
using shardy::Key;

namespace {

using shardy::test::run;

using shardy::test::lookup;

std::uint32_t header_page_size(const fs::path& f) {
  const std::string b = shardy::test::read_file(f);
  const std::uint32_t v =
      (static_cast<unsigned char>(b[16]) << 8) | static_cast<unsigned char>(b[17]);
  return v == 1 ? 65536 : v;
}

// Delegates to a real store; put_file fails from the `fail_after`-th call on.
class FailingStore final : public shardy::test::ForwardingStore {
 public:
  FailingStore(std::shared_ptr<ObjectStore> inner, int fail_after)
      : ForwardingStore(std::move(inner)), left_(fail_after) {}
  asio::awaitable<shardy::PutResult> put_file(std::string url, fs::path file,
                                              shardy::PutOptions o) override {
    if (left_-- <= 0) shardy::throw_error(shardy::errc::server_error, "injected upload failure");
    return ForwardingStore::put_file(std::move(url), std::move(file), std::move(o));
  }

 private:
  std::atomic<int> left_;
};

std::string only_run_record(const fs::path& snap) {
  std::vector<fs::path> found;
  if (fs::exists(snap / "runs")) {
    for (auto& e : fs::recursive_directory_iterator(snap / "runs")) {
      if (e.path().filename() == "run.yaml") found.push_back(e.path());
    }
  }
  EXPECT_EQ(found.size(), 1u);
  return found.empty() ? std::string() : shardy::test::read_file(found[0]);
}

}  // namespace

TEST(WriterHelpers, FormatDbPath) {
  EXPECT_EQ(shardy::format_db_path("db={db_id:05d}", 7), "db=00007");
  EXPECT_EQ(shardy::format_db_path("db={db_id:05d}", 123456), "db=123456");
  EXPECT_EQ(shardy::format_db_path("shard-{db_id}", 42), "shard-42");
  EXPECT_EQ(shardy::format_db_path("{db_id:3d}", 5), "  5");
  EXPECT_EQ(shardy::format_db_path("{{x}}{db_id:d}", 5), "{x}5");
  EXPECT_THROW(shardy::format_db_path("db={other}", 1), shardy::error);
  EXPECT_THROW(shardy::format_db_path("db={db_id:x}", 1), shardy::error);
  EXPECT_THROW(shardy::format_db_path("db={db_id", 1), shardy::error);
}

// Spec 1.2 join_s3.
TEST(WriterHelpers, JoinUrl) {
  EXPECT_EQ(shardy::join_url("s3://b/p/", {"/shards/", "run_id=r", "db=00001", "attempt=00"}),
            "s3://b/p/shards/run_id=r/db=00001/attempt=00");
  EXPECT_EQ(shardy::join_url("file:///tmp/x", {"", "a"}), "file:///tmp/x/a");
}

TEST(WriterHelpers, RandomHexIdIsUuid4Hex) {
  const std::string a = shardy::random_hex_id(), b = shardy::random_hex_id();
  EXPECT_EQ(a.size(), 32u);
  EXPECT_NE(a, b);
  EXPECT_EQ(a.find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_EQ(a[12], '4');
}

// Spec 1.6: what yaml.safe_dump(sort_keys=True) writes for the fixture's record.
TEST(WriterRunRecord, SerializesLikeSafeDump) {
  shardy::writer::RunRecord r;
  r.db_path_template = "db={db_id:05d}";
  r.run_id = "4aaad5c105c3ea085935610bf12cfff8";
  r.s3_prefix = "s3://shardy-fixtures/snapshots/kv_small";
  r.shard_prefix = "shards";
  r.status = "succeeded";
  r.writer_type = "python";
  r.manifest_ref =
      "s3://shardy-fixtures/snapshots/kv_small/manifests/"
      "2026-11-22T01:48:24.188262Z_run_id=4aaad5c105c3ea085935610bf12cfff8/manifest";
  r.started_at = *shardy::parse_timestamp("2026-11-22T01:48:24.141649Z");
  r.updated_at = *shardy::parse_timestamp("2026-11-22T01:48:24.188923Z");
  r.lease_expires_at = r.updated_at;
  const std::string fixture =
      shardy::test::read_file(shardy::test::fixtures_dir() /
                              "snapshots/kv_small/runs/"
                              "2026-11-22T01:48:24.141780Z_run_id=4aaad5c105c3ea085935610bf12cfff8_"
                              "48099d4e73e0442daa87ea7c2fadcb7d/run.yaml");
  EXPECT_EQ(shardy::writer::serialize_run_record(r), fixture);
  const auto back = shardy::writer::parse_run_record(fixture);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->status, "succeeded");
  EXPECT_EQ(back->manifest_ref, r.manifest_ref);
  EXPECT_EQ(back->updated_at, r.updated_at);
  EXPECT_FALSE(back->error_message);
}

TEST(WriterRunRecord, YamlScalarQuoting) {
  using shardy::writer::yaml_scalar;
  EXPECT_EQ(yaml_scalar("abc"), "abc");
  EXPECT_EQ(yaml_scalar("123"), "'123'");
  EXPECT_EQ(yaml_scalar("1.5"), "'1.5'");
  EXPECT_EQ(yaml_scalar("true"), "'true'");
  EXPECT_EQ(yaml_scalar("null"), "'null'");
  EXPECT_EQ(yaml_scalar(""), "''");
  EXPECT_EQ(yaml_scalar("a: b"), "'a: b'");
  EXPECT_EQ(yaml_scalar("it's: x"), "'it''s: x'");
  EXPECT_EQ(yaml_scalar("line\nbreak"), "\"line\\nbreak\"");
  const auto back = shardy::writer::parse_run_record("run_id: 'it''s'\nstatus: \"a\\nb\"\n");
  ASSERT_TRUE(back);
  EXPECT_EQ(back->run_id, "it's");
  EXPECT_EQ(back->status, "a\nb");
}

// Text keys with utf8 encoding and page_size auto: custom.sqlite_sidecar.page_size is "auto",
// shards are repaged for their large values, and min/max keys are strings by code point.
TEST(WriterBuild, TextKeysAutoPageSize) {
  const auto dir = shardy::test::make_temp_dir("writer-text");
  std::vector<shardy::Record> recs;
  std::map<std::string, std::string> want;
  for (int i = 0; i < 200; ++i) {
    std::string k = "user:" + std::to_string(i * 7919 % 1000);
    if (i == 3) k = "\xe6\x97\xa5\xe6\x9c\xac";  // 日本
    std::string v(3000 + i, static_cast<char>('a' + i % 26));
    recs.push_back({Key::text(k), v});
    want[k] = v;
  }
  shardy::WriterOptions o;
  o.prefix = "file://" + (dir / "snap").string();
  o.num_dbs = 3;
  o.key_encoding = shardy::KeyEncoding::utf8;
  o.page_size = shardy::kPageSizeAuto;
  asio::io_context io;
  auto store = shardy::make_file_store(io.get_executor());
  const auto res = run(io, shardy::build_snapshot(store, o, shardy::make_record_source(recs)));
  EXPECT_EQ(res.run_id.size(), 32u);  // random uuid4 hex
  auto ms = shardy::make_object_manifest_store(store, o.prefix);
  const auto m = run(io, ms->load_manifest(res.manifest.ref));
  EXPECT_EQ(boost::json::serialize(m.build.custom.at("sqlite_sidecar").at("page_size")),
            "\"auto\"");
  const shardy::Router router(3, shardy::KeyEncoding::utf8);
  std::map<std::uint32_t, std::pair<std::string, std::string>> mm;
  for (auto& [k, v] : want) {
    const auto id = router.shard_for(Key::text(k));
    if (!mm.count(id)) mm[id] = {k, k};
    mm[id].first = std::min(mm[id].first, k);
    mm[id].second = std::max(mm[id].second, k);
  }
  for (const auto& s : m.shards) {
    const fs::path f = fs::path(s.db_url->substr(7)) / "shard.db";
    EXPECT_EQ(header_page_size(f), 16384u);  // p95 ~3190 + key + 12 fits 16384's 4086
    ASSERT_TRUE(s.min_key && s.min_key->is_text());
    EXPECT_EQ(s.min_key->data(), mm[s.db_id].first);
    EXPECT_EQ(s.max_key->data(), mm[s.db_id].second);
  }
  for (auto& [k, v] : want) {
    const auto r = router.route_lookup(Key::text(k));
    const auto all = m.all_shards();
    EXPECT_EQ(lookup(fs::path(all[r.db_id].db_url->substr(7)) / "shard.db", r.storage_key), v);
  }
}

// More input than the memory budget: spill buffers flush many times and shards are streamed
// (not loaded) because their spill exceeds the per-thread share; values are still the last
// writes.
TEST(WriterBuild, InputLargerThanMemoryBudget) {
  const auto dir = shardy::test::make_temp_dir("writer-big");
  std::vector<shardy::Record> recs;
  std::map<std::int64_t, std::string> want;
  for (int i = 0; i < 6000; ++i) {
    const std::int64_t k = (i * 31) % 4000;
    std::string v = std::to_string(i) + std::string(900, 'x');
    recs.push_back({Key::integer(k), v});
    want[k] = v;
  }
  shardy::WriterOptions o;
  o.prefix = "file://" + (dir / "snap").string();
  o.num_dbs = 2;
  o.memory_budget = 1u << 20;  // 1 MiB for ~5.5 MB of input
  o.spill_dir = dir / "scratch";
  o.emit_sidecar = false;
  o.write_run_record = false;
  std::vector<shardy::BuildProgress> seen;
  o.progress = [&](const shardy::BuildProgress& p) { seen.push_back(p); };
  o.progress_interval = 1000;
  asio::io_context io;
  auto store = shardy::make_file_store(io.get_executor());
  const auto res = run(io, shardy::build_snapshot(store, o, shardy::make_record_source(recs)));
  EXPECT_EQ(res.stats.rows_written, 6000u);
  EXPECT_EQ(res.stats.shards_written, 2u);
  EXPECT_EQ(res.stats.distinct_rows, 0u);  // both shards streamed (over the memory share)
  EXPECT_EQ(res.stats.sidecars_written, 0u);
  EXPECT_TRUE(res.run_record.empty());
  EXPECT_FALSE(fs::exists(dir / "snap/runs"));
  ASSERT_FALSE(seen.empty());
  EXPECT_EQ(seen.back().stage, shardy::BuildProgress::phase::done);
  EXPECT_EQ(seen.back().shards_done, 2u);
  // the scratch directory is cleaned up
  EXPECT_TRUE(fs::is_empty(dir / "scratch"));
  const shardy::Router router(2, shardy::KeyEncoding::u64be);
  for (const auto& s : res.shards) {
    EXPECT_FALSE(fs::exists(fs::path(s.db_url->substr(7)) / "shard.sidecar"));
  }
  for (auto& [k, v] : want) {
    const auto r = router.route_lookup(Key::integer(k));
    const auto& s = res.shards[r.db_id];
    ASSERT_EQ(s.db_id, r.db_id);
    EXPECT_EQ(lookup(fs::path(s.db_url->substr(7)) / "shard.db", r.storage_key), v);
  }
}

// A key that cannot be stored (negative int with u64be) fails the build with the key's error;
// the run record says failed; nothing is published.
TEST(WriterBuild, UnencodableKeyFailsAndRecordsFailure) {
  const auto dir = shardy::test::make_temp_dir("writer-badkey");
  std::vector<shardy::Record> recs{{Key::integer(1), "a"}, {Key::integer(-5), "b"}};
  shardy::WriterOptions o;
  o.prefix = "file://" + (dir / "snap").string();
  o.run_id = "badkey";
  asio::io_context io;
  auto store = shardy::make_file_store(io.get_executor());
  try {
    run(io, shardy::build_snapshot(store, o, shardy::make_record_source(recs)));
    FAIL() << "expected an error";
  } catch (const shardy::error& e) {
    EXPECT_EQ(e.code(), shardy::make_error_code(shardy::errc::key_encoding_error));
    EXPECT_NE(std::string(e.what()).find("record 1"), std::string::npos) << e.what();
  }
  const std::string y = only_run_record(dir / "snap");
  EXPECT_NE(y.find("status: failed\n"), std::string::npos) << y;
  EXPECT_NE(y.find("error_type: "), std::string::npos);
  EXPECT_NE(y.find("manifest_ref: null\n"), std::string::npos);
  EXPECT_FALSE(fs::exists(dir / "snap/_CURRENT"));
  EXPECT_FALSE(fs::exists(dir / "snap/manifests"));
}

// An upload failure fails the build through the completion-token API too.
TEST(WriterBuild, UploadFailureFailsTheBuild) {
  const auto dir = shardy::test::make_temp_dir("writer-upload-fail");
  std::vector<shardy::Record> recs;
  for (int i = 0; i < 100; ++i) recs.push_back({Key::integer(i), "v"});
  shardy::WriterOptions o;
  o.prefix = "file://" + (dir / "snap").string();
  o.num_dbs = 8;
  asio::io_context io;
  auto store = std::make_shared<FailingStore>(shardy::make_file_store(io.get_executor()), 3);
  shardy::error_code got;
  shardy::async_build_snapshot(io.get_executor(), store, o, shardy::make_record_source(recs),
                               [&](shardy::error_code ec, shardy::BuildResult) { got = ec; });
  io.run();
  EXPECT_EQ(got, shardy::make_error_code(shardy::errc::server_error));
  EXPECT_NE(only_run_record(dir / "snap").find("status: failed\n"), std::string::npos);
  EXPECT_FALSE(fs::exists(dir / "snap/_CURRENT"));
}

TEST(WriterBuild, RejectsBadOptions) {
  asio::io_context io;
  auto store = shardy::make_file_store(io.get_executor());
  auto attempt = [&](shardy::WriterOptions o) {
    std::vector<shardy::Record> recs{{Key::integer(1), "a"}};
    EXPECT_THROW(run(io, shardy::build_snapshot(store, o, shardy::make_record_source(recs))),
                 shardy::error);
  };
  shardy::WriterOptions base;
  base.prefix = "file:///tmp/shardy-never";
  base.write_run_record = false;
  auto o = base;
  o.num_dbs = 0;
  attempt(o);
  o = base;
  o.page_size = 2048;
  attempt(o);
  o = base;
  o.run_id = "a/b";
  attempt(o);
  o = base;
  o.shard_prefix = "a/b";
  attempt(o);
  o = base;
  o.prefix.clear();
  attempt(o);
  EXPECT_FALSE(fs::exists("/tmp/shardy-never"));
}
