// make_object_store: dispatch by scheme (file://, s3:// mapped to a local root), s3:// URL
// parsing. The S3-backed store itself is exercised against s3rver in the integration tests.
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <fstream>
#include <shardy/store.hpp>

#include "support/run_io.hpp"
#include "support/test_support.hpp"

namespace asio = boost::asio;

namespace {

using shardy::test::run;

}  // namespace

TEST(S3Url, Parse) {
  auto u = shardy::parse_s3_url("s3://bucket/a/b c/%20/");
  EXPECT_EQ(u.bucket, "bucket");
  EXPECT_EQ(u.key, "a/b c/%20/");  // verbatim
  EXPECT_EQ(shardy::parse_s3_url("s3://bucket").key, "");
  EXPECT_EQ(shardy::parse_s3_url("s3://bucket/").key, "");
  for (const char* bad : {"s3://", "s3:///key", "file:///x", "S3://b/k", "http://b/k", ""}) {
    try {
      shardy::parse_s3_url(bad);
      ADD_FAILURE() << bad;
    } catch (const shardy::error& e) {
      EXPECT_EQ(e.code(), shardy::errc::invalid_url) << bad;
    }
  }
}

TEST(ObjectStoreFactory, DispatchesByScheme) {
  auto root = shardy::test::make_temp_dir("store_factory");
  asio::io_context io;
  shardy::StoreOptions opts;
  opts.object_root = root / "mapped";
  auto store = shardy::make_object_store(io.get_executor(), opts);

  // s3:// goes to the mapped root: <root>/bucket/key.
  run(io, store->put("s3://bkt/dir/k1", std::string("mapped bytes")));
  EXPECT_EQ(shardy::test::read_file(root / "mapped" / "bkt" / "dir" / "k1"), "mapped bytes");
  auto got = run(io, store->get("s3://bkt/dir/k1"));
  EXPECT_EQ(got.body, "mapped bytes");
  auto listed = run(io, store->list("s3://bkt/dir/"));
  ASSERT_EQ(listed.objects.size(), 1u);
  EXPECT_EQ(listed.objects[0].url, "s3://bkt/dir/k1");

  // file:// goes to the local file store.
  std::string file_url = "file://" + (root / "plain.txt").string();
  run(io, store->put(file_url, std::string("file bytes")));
  EXPECT_EQ(shardy::test::read_file(root / "plain.txt"), "file bytes");
  EXPECT_EQ(run(io, store->head(file_url)).size, 10u);

  // Other schemes: invalid_url, as an exception from the coroutine.
  try {
    run(io, store->get("gs://bucket/key"));
    FAIL() << "gs:// accepted";
  } catch (const shardy::error& e) {
    EXPECT_EQ(e.code(), shardy::errc::invalid_url);
  }
  std::filesystem::remove_all(root);
}

TEST(ObjectStoreFactory, RejectsBadS3Options) {
  asio::io_context io;
  shardy::StoreOptions opts;
  opts.s3.endpoint = "ftp://nope";
  try {
    shardy::make_object_store(io.get_executor(), opts);
    FAIL() << "bad endpoint accepted";
  } catch (const shardy::error& e) {
    EXPECT_EQ(e.code(), shardy::errc::invalid_url);
  }
}
