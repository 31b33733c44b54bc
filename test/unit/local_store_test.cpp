// The local ObjectStores (file:// and mapped s3://): S3 semantics for ETags, preconditions,
// ranges, listings and missing objects.
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/json/parse.hpp>
#include <fstream>
#include <shardy/local_store.hpp>
#include <thread>

#include "support/error_of.hpp"
#include "support/run_io.hpp"
#include "support/test_support.hpp"

namespace shardy {
namespace {

namespace asio = boost::asio;

using shardy::test::run;

using shardy::test::error_of;

constexpr const char* kEmptyEtag = "\"d41d8cd98f00b204e9800998ecf8427e\"";
constexpr const char* kHelloEtag = "\"5d41402abc4b2a76b9719d911017c592\"";

struct LocalStoreTest : ::testing::Test {
  asio::io_context io;
  std::filesystem::path dir = test::make_temp_dir("local_store");
  std::shared_ptr<ObjectStore> files = make_file_store(io.get_executor());
  std::string url(const std::string& key) { return "file://" + (dir / key).string(); }
  void TearDown() override { std::filesystem::remove_all(dir); }
};

TEST_F(LocalStoreTest, PutGetHeadWithMd5Etags) {
  // Names as in a snapshot: ':' and '='.
  std::string u = url("snap/manifests/2026-03-14T10:30:00.000000Z_run_id=r1/manifest");
  PutOptions po;
  auto put = run(io, files->put(u, "hello", po));
  EXPECT_EQ(put.etag, kHelloEtag);
  GetOptions go;
  auto got = run(io, files->get(u, go));
  EXPECT_EQ(got.body, "hello");
  EXPECT_EQ(got.etag, kHelloEtag);
  EXPECT_EQ(got.object_size, 5u);
  EXPECT_EQ(got.range_offset, 0u);
  auto info = run(io, files->head(u));
  EXPECT_EQ(info.size, 5u);
  EXPECT_EQ(info.etag, kHelloEtag);
  EXPECT_EQ(info.url, u);
  EXPECT_TRUE(info.last_modified);
  EXPECT_EQ(test::read_file(dir / "snap/manifests/2026-03-14T10:30:00.000000Z_run_id=r1/manifest"),
            "hello");
  // Overwrite: new content, new ETag (the cache follows the file).
  run(io, files->put(u, "", po));
  EXPECT_EQ(run(io, files->head(u)).etag, kEmptyEtag);
  // A file changed behind the store's back is re-hashed.
  {
    std::ofstream(dir / "snap/manifests/2026-03-14T10:30:00.000000Z_run_id=r1/manifest") << "hello";
  }
  EXPECT_EQ(run(io, files->get(u, go)).etag, kHelloEtag);
}

TEST_F(LocalStoreTest, MissingObjects) {
  GetOptions go;
  EXPECT_EQ(error_of([&] { run(io, files->get(url("nope"), go)); }), errc::object_not_found);
  EXPECT_EQ(error_of([&] { run(io, files->head(url("no/such/dir/x"))); }), errc::object_not_found);
  EXPECT_EQ(error_of([&] { run(io, files->download(url("nope"), dir / "out", {}, {})); }),
            errc::object_not_found);
  run(io, files->remove(url("nope")));  // deleting a missing object succeeds
  std::filesystem::create_directories(dir / "adir");
  EXPECT_EQ(error_of([&] { run(io, files->get(url("adir"), go)); }), errc::object_not_found);
  PutOptions po;
  run(io, files->put(url("gone"), "x", po));
  run(io, files->remove(url("gone")));
  EXPECT_EQ(error_of([&] { run(io, files->head(url("gone"))); }), errc::object_not_found);
}

TEST_F(LocalStoreTest, RangesHaveS3Semantics) {
  PutOptions po;
  std::string u = url("r");
  run(io, files->put(u, "0123456789", po));
  auto get = [&](ByteRange r) {
    GetOptions go;
    go.range = r;
    return run(io, files->get(u, go));
  };
  auto a = get(ByteRange::bounded(2, 3));
  EXPECT_EQ(a.body, "234");
  EXPECT_EQ(a.range_offset, 2u);
  EXPECT_EQ(a.object_size, 10u);
  EXPECT_EQ(get(ByteRange::bounded(8, 100)).body, "89");  // clipped at the end
  EXPECT_EQ(get(ByteRange::from(7)).body, "789");
  auto s = get(ByteRange::suffix(3));
  EXPECT_EQ(s.body, "789");
  EXPECT_EQ(s.range_offset, 7u);
  EXPECT_EQ(get(ByteRange::suffix(50)).body, "0123456789");  // longer than the object: all
  EXPECT_EQ(error_of([&] { get(ByteRange::bounded(10, 1)); }), errc::invalid_range);
  EXPECT_EQ(error_of([&] { get(ByteRange::from(10)); }), errc::invalid_range);
  EXPECT_EQ(error_of([&] { get(ByteRange::suffix(0)); }), errc::invalid_range);
  EXPECT_EQ(error_of([&] { get(ByteRange::bounded(0, 0)); }), errc::invalid_argument);
  run(io, files->put(u, "", po));
  EXPECT_EQ(error_of([&] { get(ByteRange::bounded(0, 1)); }), errc::invalid_range);
  EXPECT_EQ(error_of([&] { get(ByteRange::suffix(1)); }), errc::invalid_range);
}

TEST_F(LocalStoreTest, Preconditions) {
  std::string u = url("p/obj");
  PutOptions create;
  create.if_none_match = true;
  EXPECT_EQ(run(io, files->put(u, "hello", create)).etag, kHelloEtag);
  EXPECT_EQ(error_of([&] { run(io, files->put(u, "other", create)); }), errc::precondition_failed);
  GetOptions go;
  EXPECT_EQ(run(io, files->get(u, go)).body, "hello");
  PutOptions replace;
  replace.if_match = kEmptyEtag;
  EXPECT_EQ(error_of([&] { run(io, files->put(u, "x", replace)); }), errc::precondition_failed);
  replace.if_match = kHelloEtag;
  EXPECT_EQ(run(io, files->put(u, "", replace)).etag, kEmptyEtag);
  PutOptions missing;
  missing.if_match = kEmptyEtag;
  EXPECT_EQ(error_of([&] { run(io, files->put(url("p/none"), "x", missing)); }),
            errc::precondition_failed);
  go.if_match = kHelloEtag;  // stale pin
  EXPECT_EQ(error_of([&] { run(io, files->get(u, go)); }), errc::precondition_failed);
  go.if_match = kEmptyEtag;
  EXPECT_EQ(run(io, files->get(u, go)).body, "");
  // No temp files are left behind by failed writes.
  for (auto& e : std::filesystem::directory_iterator(dir / "p"))
    EXPECT_EQ(e.path().filename().string().find(".shardy-tmp-"), std::string::npos);
}

TEST_F(LocalStoreTest, CreateOnlyIsAtomicAcrossThreads) {
  std::string u = url("race");
  std::atomic<int> won{0}, lost{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&, t] {
      asio::io_context own;
      PutOptions po;
      po.if_none_match = true;
      try {
        run(own, files->put(u, "writer " + std::to_string(t), po));
        ++won;
      } catch (const error& e) {
        if (e.code() == errc::precondition_failed) ++lost;
      }
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(won, 1);
  EXPECT_EQ(lost, 7);
}

TEST_F(LocalStoreTest, ListingLikeListObjectsV2) {
  PutOptions po;
  for (const char* k : {"x/c", "x/a/b/2", "x/ab", "x/a/1", "y/z", "x/a=1:2/m"})
    run(io, files->put(url(k), k, po));
  { std::ofstream(dir / "x" / ".shardy-tmp-123-c") << "in flight"; }
  auto names = [&](const ListResult& r) {
    std::string s;
    for (auto& o : r.objects) s += o.url.substr(url("").size()) + ",";
    s += "|";
    for (auto& p : r.common_prefixes) s += p.substr(url("").size()) + ",";
    return s;
  };
  ListOptions flat;
  EXPECT_EQ(names(run(io, files->list(url("x/"), flat))), "x/a/1,x/a/b/2,x/a=1:2/m,x/ab,x/c,|");
  ListOptions delim;
  delim.delimiter = "/";
  EXPECT_EQ(names(run(io, files->list(url("x/"), delim))), "x/ab,x/c,|x/a/,x/a=1:2/,");
  EXPECT_EQ(names(run(io, files->list(url("x/a"), delim))), "x/ab,|x/a/,x/a=1:2/,");
  EXPECT_EQ(names(run(io, files->list(url("x/a/"), delim))), "x/a/1,|x/a/b/,");
  EXPECT_EQ(names(run(io, files->list(url("x/nothing/"), delim))), "|");
  EXPECT_EQ(names(run(io, files->list(url("missing-dir/"), flat))), "|");
  delim.max_keys = 2;  // objects and prefixes count together, in key order
  EXPECT_EQ(names(run(io, files->list(url("x/"), delim))), "|x/a/,x/a=1:2/,");
  auto r = run(io, files->list(url("x/c"), flat));
  ASSERT_EQ(r.objects.size(), 1u);
  EXPECT_EQ(r.objects[0].size, 3u);
  EXPECT_EQ(r.objects[0].etag, run(io, files->head(url("x/c"))).etag);
}

TEST_F(LocalStoreTest, PutFileAndDownload) {
  std::string big(3 * 1024 * 1024 + 17, '\0');
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 131 % 251);
  { std::ofstream(dir / "src.bin", std::ios::binary) << big; }
  PutOptions po;
  auto put = run(io, files->put_file(url("obj/shard.db"), dir / "src.bin", po));
  GetOptions go;
  EXPECT_EQ(run(io, files->get(url("obj/shard.db"), go)).body, big);
  std::uint64_t last_done = 0, calls = 0;
  auto info = run(io, files->download(
                          url("obj/shard.db"), dir / "copy.bin",
                          [&](std::uint64_t done, std::uint64_t total) {
                            EXPECT_EQ(total, big.size());
                            EXPECT_GE(done, last_done);
                            last_done = done;
                            ++calls;
                          },
                          put.etag));
  EXPECT_EQ(info.etag, put.etag);
  EXPECT_EQ(info.size, big.size());
  EXPECT_EQ(last_done, big.size());
  EXPECT_GE(calls, 2u);
  EXPECT_EQ(test::read_file(dir / "copy.bin"), big);
  EXPECT_EQ(error_of([&] {
              run(io, files->download(url("obj/shard.db"), dir / "copy2.bin", {}, kEmptyEtag));
            }),
            errc::precondition_failed);
}

TEST_F(LocalStoreTest, UrlsItCannotMapAreRejected) {
  GetOptions go;
  EXPECT_EQ(error_of([&] { run(io, files->get("s3://b/k", go)); }), errc::invalid_url);
  EXPECT_EQ(error_of([&] { run(io, files->get("file://relative/x", go)); }), errc::invalid_url);
  EXPECT_EQ(error_of([&] { run(io, files->get(url("a/../b"), go)); }), errc::invalid_url);
  EXPECT_EQ(error_of([&] { run(io, files->get(url("a//b"), go)); }), errc::invalid_url);
  auto mapped = make_mapped_store(io.get_executor(), dir);
  EXPECT_EQ(error_of([&] { run(io, mapped->get("file:///etc/passwd", go)); }), errc::invalid_url);
  EXPECT_EQ(error_of([&] { run(io, mapped->get("s3://b/../../etc/passwd", go)); }),
            errc::invalid_url);
  EXPECT_EQ(error_of([&] { run(io, mapped->get("s3://../x", go)); }), errc::invalid_url);
  EXPECT_EQ(error_of([&] { run(io, mapped->get("s3://b", go)); }), errc::invalid_url);
  EXPECT_EQ(error_of([&] { run(io, mapped->get("s3://b/dir/", go)); }), errc::invalid_url);
}

TEST_F(LocalStoreTest, MappedStoreMapsBucketsToFolders) {
  auto mapped = make_mapped_store(io.get_executor(), dir);
  PutOptions po;
  run(io, mapped->put("s3://bkt/snap/_CURRENT", "{}", po));
  EXPECT_EQ(test::read_file(dir / "bkt/snap/_CURRENT"), "{}");
  ListOptions lo;
  auto r = run(io, mapped->list("s3://bkt/", lo));
  ASSERT_EQ(r.objects.size(), 1u);
  EXPECT_EQ(r.objects[0].url, "s3://bkt/snap/_CURRENT");
  lo.delimiter = "/";
  r = run(io, mapped->list("s3://bkt", lo));
  ASSERT_EQ(r.common_prefixes.size(), 1u);
  EXPECT_EQ(r.common_prefixes[0], "s3://bkt/snap/");
  // Per-bucket folders; unmapped buckets fail when there is no root.
  auto only = make_mapped_store(io.get_executor(), {}, {{"fx", dir / "bkt"}});
  GetOptions go;
  EXPECT_EQ(run(io, only->get("s3://fx/snap/_CURRENT", go)).body, "{}");
  EXPECT_EQ(error_of([&] { run(io, only->get("s3://bkt/snap/_CURRENT", go)); }), errc::invalid_url);
  auto both = make_mapped_store(io.get_executor(), dir, {{"fx", dir / "bkt"}});
  EXPECT_EQ(run(io, both->get("s3://bkt/snap/_CURRENT", go)).body, "{}");
  lo.delimiter.clear();
  r = run(io, both->list("s3://fx/snap/", lo));
  ASSERT_EQ(r.objects.size(), 1u);
  EXPECT_EQ(r.objects[0].url, "s3://fx/snap/_CURRENT");
  lo.delimiter = "/";
  r = run(io, mapped->list("s3://bkt", lo));
  ASSERT_EQ(r.common_prefixes.size(), 1u);
  EXPECT_EQ(r.common_prefixes[0], "s3://bkt/snap/");
}

// The fixtures' sidecars carry each shard.db's S3 ETag: the mapped store must report the same.
TEST(LocalStoreFixtures, EtagsMatchTheReferenceHeads) {
  asio::io_context io;
  auto store =
      make_mapped_store(io.get_executor(), {}, {{"shardy-fixtures", test::fixtures_dir()}});
  std::size_t checked = 0;
  for (const char* name : {"kv_small", "kv_sparse"}) {
    auto sidecars = boost::json::parse(
        test::read_file(test::fixtures_dir() / "expected" / name / "sidecars.json"));
    for (const auto& s : sidecars.as_array()) {
      const auto& o = s.as_object();
      std::string db = std::string(o.at("db_url").as_string()) + "/shard.db";
      auto info = run(io, store->head(db));
      EXPECT_EQ(info.etag, o.at("db_head_e_tag").as_string()) << db;
      EXPECT_EQ(info.size, o.at("db_bytes").to_number<std::uint64_t>());
      ++checked;
    }
  }
  EXPECT_GT(checked, 20u);
}

}  // namespace
}  // namespace shardy
