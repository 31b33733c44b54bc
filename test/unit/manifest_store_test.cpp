// The object-backed ManifestStore over a temp dir (spec 1.4, 1.5, 5.1).
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/json/parse.hpp>
#include <fstream>
#include <shardy/local_store.hpp>
#include <shardy/manifest_store.hpp>

#include "support/error_of.hpp"
#include "support/run_io.hpp"
#include "support/test_support.hpp"

namespace shardy {
namespace {

namespace asio = boost::asio;

using shardy::test::run;

using shardy::test::error_of;

Manifest small_manifest(std::string run_id, std::uint32_t num_dbs = 4) {
  Manifest m;
  m.build.run_id = std::move(run_id);
  m.build.created_at =
      std::chrono::time_point_cast<std::chrono::microseconds>(std::chrono::system_clock::now());
  m.build.num_dbs = num_dbs;
  m.build.s3_prefix = "s3://bkt/snap";
  ShardMeta s;
  s.db_id = 1;
  s.db_url = "s3://bkt/snap/shards/run_id=" + m.build.run_id + "/db=00001/attempt=00";
  s.row_count = 3;
  s.db_bytes = 8192;
  s.min_key = Key::integer(1);
  s.max_key = Key::integer(99);
  m.shards.push_back(s);
  return m;
}

void touch(const std::filesystem::path& p, const std::string& body = "x") {
  std::filesystem::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << body;
}

struct ManifestStoreTest : ::testing::Test {
  asio::io_context io;
  std::filesystem::path dir = test::make_temp_dir("manifest_store");
  std::shared_ptr<ObjectStore> objects = make_mapped_store(io.get_executor(), dir);
  std::shared_ptr<ManifestStore> store = make_object_manifest_store(objects, "s3://bkt/snap/");
  void TearDown() override { std::filesystem::remove_all(dir); }
};

TEST_F(ManifestStoreTest, NothingPublishedYet) {
  EXPECT_FALSE(run(io, store->load_current()));
  EXPECT_TRUE(run(io, store->list_manifests(10)).empty());
}

TEST_F(ManifestStoreTest, PublishThenLoad) {
  Manifest m = small_manifest("run-a");
  ManifestRef ref = run(io, store->publish(m));
  // <P>/manifests/<TS 6 digits>_run_id=<R>/manifest
  const std::string base = "s3://bkt/snap/manifests/";
  ASSERT_TRUE(ref.ref.starts_with(base)) << ref.ref;
  std::string dirname = ref.ref.substr(base.size());
  EXPECT_EQ(dirname.substr(27), "_run_id=run-a/manifest");
  EXPECT_EQ(dirname.substr(0, 27), format_timestamp_dir(ref.published_at));
  EXPECT_EQ(ref.run_id, "run-a");

  // _CURRENT: sorted compact JSON naming the manifest.
  std::string current = test::read_file(dir / "bkt/snap/_CURRENT");
  EXPECT_TRUE(current.starts_with(
      R"({"format_version":1,"manifest_content_type":"application/x-sqlite3","manifest_ref":")"))
      << current;
  auto p = parse_current_pointer(current);
  EXPECT_EQ(p.manifest_ref, ref.ref);
  EXPECT_GE(p.updated_at, ref.published_at);  // pointer time is taken after the manifest time

  auto cur = run(io, store->load_current());
  ASSERT_TRUE(cur);
  EXPECT_EQ(cur->ref, ref.ref);
  EXPECT_EQ(cur->run_id, "run-a");
  EXPECT_EQ(cur->published_at, p.updated_at);
  Manifest back = run(io, store->load_manifest(cur->ref));
  EXPECT_EQ(back.build.run_id, "run-a");
  EXPECT_EQ(back.build.num_dbs, 4u);
  ASSERT_EQ(back.shards.size(), 1u);
  EXPECT_EQ(back.shards[0].db_url, m.shards[0].db_url);
  // The object is a SQLite file.
  EXPECT_TRUE(test::read_file(dir / "bkt/snap/manifests" / dirname).starts_with("SQLite format 3"));
}

TEST_F(ManifestStoreTest, ListNewestFirstWithPatternAndLimit) {
  const std::filesystem::path m = dir / "bkt/snap/manifests";
  std::string valid = build_manifest(small_manifest("r"));
  touch(m / "2026-03-14T10:30:00.000001Z_run_id=older/manifest", valid);
  touch(m / "2026-03-15T10:30:00.000000Z_run_id=newest/manifest", valid);
  touch(m / "2026-03-14T10:30:00.500000Z_run_id=b/manifest", valid);
  touch(m / "2026-03-14T10:30:00.500000Z_run_id=a/manifest", valid);  // same time as b
  // Skipped: not matching ^\d{4}-...\.\d{6}Z_run_id=[^/]+/?$
  touch(m / "2026-03-16T10:30:00Z_run_id=nofraction/manifest", valid);
  touch(m / "2026-03-16T10:30:00.12345Z_run_id=five/manifest", valid);
  touch(m / "garbage/manifest", valid);
  touch(m / "2026-03-16T10:30:00.000000Z_run_id=/manifest", valid);
  touch(m / "2026-03-17T10:30:00.000000Z_run_id=nomanifest/other", valid);  // listed anyway
  touch(m / "loose-file", valid);
  auto refs = run(io, store->list_manifests(10));
  std::vector<std::string> runs;
  for (auto& r : refs) runs.push_back(r.run_id);
  EXPECT_EQ(runs, (std::vector<std::string>{"nomanifest", "newest", "a", "b", "older"}));
  EXPECT_EQ(refs[1].ref,
            "s3://bkt/snap/manifests/2026-03-15T10:30:00.000000Z_run_id=newest/manifest");
  EXPECT_EQ(refs[1].published_at, *parse_timestamp("2026-03-15T10:30:00Z"));
  EXPECT_EQ(run(io, store->list_manifests(2)).size(), 2u);
  EXPECT_EQ(run(io, store->list_manifests(0)).size(), 0u);
  EXPECT_EQ(run(io, store->list_manifests(2))[1].run_id, "newest");
}

TEST_F(ManifestStoreTest, SetCurrentRollsBack) {
  ManifestRef first = run(io, store->publish(small_manifest("first")));
  ManifestRef second = run(io, store->publish(small_manifest("second")));
  EXPECT_EQ(run(io, store->load_current())->run_id, "second");
  auto history = run(io, store->list_manifests(10));
  ASSERT_EQ(history.size(), 2u);
  EXPECT_EQ(history[0].ref, second.ref);
  EXPECT_EQ(history[1].ref, first.ref);
  ManifestRef back = run(io, store->set_current(first.ref));
  EXPECT_EQ(back.run_id, "first");
  auto cur = run(io, store->load_current());
  EXPECT_EQ(cur->ref, first.ref);
  EXPECT_EQ(cur->run_id, "first");
  EXPECT_EQ(cur->published_at, back.published_at);
  EXPECT_EQ(error_of([&] { run(io, store->set_current("s3://bkt/snap/manifests/x/manifest")); }),
            errc::invalid_argument);
  // Not validated: a ref to nothing is accepted (spec 5.1).
  EXPECT_EQ(run(io, store->set_current("s3://bkt/snap/x_run_id=ghost/manifest")).run_id, "ghost");
}

TEST_F(ManifestStoreTest, MalformedPointerAndManifest) {
  touch(dir / "bkt/snap/_CURRENT", "{not json");
  EXPECT_EQ(error_of([&] { run(io, store->load_current()); }), errc::manifest_parse_error);
  touch(dir / "bkt/snap/manifests/m", "not sqlite");
  EXPECT_EQ(error_of([&] { run(io, store->load_manifest("s3://bkt/snap/manifests/m")); }),
            errc::manifest_parse_error);
  EXPECT_EQ(error_of([&] { run(io, store->load_manifest("s3://bkt/snap/manifests/none")); }),
            errc::object_not_found);
}

TEST_F(ManifestStoreTest, RefBucketIsReplacedByTheConfiguredOne) {
  // spec 1.4: Python reads the ref's key from its own bucket.
  touch(dir / "bkt/snap/manifests/m", build_manifest(small_manifest("mine")));
  touch(dir / "elsewhere/snap/manifests/m", build_manifest(small_manifest("theirs")));
  EXPECT_EQ(run(io, store->load_manifest("s3://elsewhere/snap/manifests/m")).build.run_id, "mine");
}

TEST_F(ManifestStoreTest, FilePrefixAndCustomNames) {
  auto files = make_file_store(io.get_executor());
  ManifestStoreOptions o;
  o.manifest_name = "m.sqlite";
  o.current_pointer_key = "POINTER";
  auto fstore = make_object_manifest_store(files, "file://" + (dir / "local").string(), o);
  ManifestRef ref = run(io, fstore->publish(small_manifest("loc")));
  EXPECT_TRUE(ref.ref.starts_with("file://" + (dir / "local/manifests/").string())) << ref.ref;
  EXPECT_TRUE(ref.ref.ends_with("_run_id=loc/m.sqlite"));
  EXPECT_TRUE(std::filesystem::exists(dir / "local/POINTER"));
  EXPECT_EQ(run(io, fstore->load_current())->ref, ref.ref);
  EXPECT_EQ(run(io, fstore->list_manifests(5)).at(0).ref, ref.ref);
  EXPECT_EQ(run(io, fstore->load_manifest(ref.ref)).build.run_id, "loc");
  EXPECT_THROW(make_object_manifest_store(files, "/no/scheme"), error);
}

TEST_F(ManifestStoreTest, PublishValidatesFirstAndWritesNothingOnFailure) {
  Manifest bad = small_manifest("bad");
  bad.build.format_version = 3;
  EXPECT_EQ(error_of([&] { run(io, store->publish(bad)); }), errc::manifest_parse_error);
  EXPECT_EQ(error_of([&] { run(io, store->publish(small_manifest("a/b"))); }),
            errc::invalid_argument);
  EXPECT_FALSE(std::filesystem::exists(dir / "bkt/snap"));
}

// Sends every manifest PUT to one fixed key, so that two publishes meet at the same object.
class OneManifestKey final : public ObjectStore {
 public:
  OneManifestKey(std::shared_ptr<ObjectStore> inner, std::string fixed)
      : inner_(std::move(inner)), fixed_(std::move(fixed)) {}
  asio::awaitable<GetResult> get(std::string url, GetOptions o) override {
    co_return co_await inner_->get(redirect(std::move(url)), std::move(o));
  }
  asio::awaitable<ObjectInfo> head(std::string url) override {
    co_return co_await inner_->head(redirect(std::move(url)));
  }
  asio::awaitable<PutResult> put(std::string url, std::string body, PutOptions o) override {
    if (url.find("/manifests/") != std::string::npos) manifest_puts.push_back(o);
    co_return co_await inner_->put(redirect(std::move(url)), std::move(body), std::move(o));
  }
  asio::awaitable<PutResult> put_file(std::string url, std::filesystem::path f,
                                      PutOptions o) override {
    co_return co_await inner_->put_file(redirect(std::move(url)), std::move(f), std::move(o));
  }
  asio::awaitable<void> remove(std::string url) override {
    co_await inner_->remove(redirect(std::move(url)));
  }
  asio::awaitable<ListResult> list(std::string prefix, ListOptions o) override {
    co_return co_await inner_->list(std::move(prefix), std::move(o));
  }
  asio::awaitable<ObjectInfo> download(std::string url, std::filesystem::path f, ProgressCallback p,
                                       std::string if_match) override {
    co_return co_await inner_->download(redirect(std::move(url)), std::move(f), std::move(p),
                                        std::move(if_match));
  }
  std::vector<PutOptions> manifest_puts;

 private:
  std::string redirect(std::string url) const {
    return url.find("/manifests/") != std::string::npos ? fixed_ : url;
  }
  std::shared_ptr<ObjectStore> inner_;
  std::string fixed_;
};

// Manifests are immutable (spec 1.3): publish creates them with If-None-Match; another
// manifest at the same key is not replaced (and _CURRENT stays), the same bytes again (a retried
// PUT whose first attempt landed) count as published.
TEST_F(ManifestStoreTest, ManifestsAreCreateOnly) {
  const std::string fixed = "s3://bkt/snap/manifests/2026-01-01T00:00:00.000000Z_run_id=a/manifest";
  auto one = std::make_shared<OneManifestKey>(objects, fixed);
  auto ms = make_object_manifest_store(one, "s3://bkt/snap");
  const Manifest a = small_manifest("a");
  run(io, ms->publish(a));
  ASSERT_EQ(one->manifest_puts.size(), 1u);
  EXPECT_TRUE(one->manifest_puts[0].if_none_match);
  EXPECT_EQ(one->manifest_puts[0].content_type, "application/x-sqlite3");

  EXPECT_EQ(error_of([&] { run(io, ms->publish(small_manifest("b"))); }),
            errc::precondition_failed);
  auto cur = run(io, ms->load_current());
  ASSERT_TRUE(cur);
  EXPECT_EQ(cur->run_id, "a");  // _CURRENT untouched by the failed publish
  EXPECT_EQ(run(io, ms->load_manifest(fixed)).build.run_id, "a");

  const ManifestRef again = run(io, ms->publish(a));  // identical bytes: idempotent
  EXPECT_EQ(again.run_id, "a");
  cur = run(io, ms->load_current());
  ASSERT_TRUE(cur);
  EXPECT_EQ(cur->ref, again.ref);
}

}  // namespace
}  // namespace shardy
