// async_multi_get over shards that are all open and local: the groups are cut into one chunk per
// core and looked up at once (ReaderCore::lookup_warm_groups). Answers stay in input order, and a
// failing shard still fails the whole call with its error (C-04, D-05, D-09).
#include <gtest/gtest.h>

#include <boost/asio/thread_pool.hpp>
#include <fstream>
#include <shardy/async_reader.hpp>

#include "reader_snapshot_util.hpp"
#include "support/test_support.hpp"

namespace shardy {
namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;

std::vector<std::optional<Value>> multi_get(const AsyncReader& reader, std::vector<Key> keys) {
  return reader.async_multi_get(std::move(keys), test::use_blocking);
}

TEST(ReaderWarmFanOut, AnswersInOrderAndAFailingShardFailsTheCall_C04_D09) {
  const fs::path root = test::make_temp_dir("warm-fanout");
  test::SnapshotWriter snap{root / "objects"};
  snap.publish("run1", 8, test::rows_for(0, 300, "W"));
  const std::uint32_t bad = Router(8, KeyEncoding::u64be).route_lookup(Key::integer(5)).db_id;
  {
    // Every page after the header page of one shard becomes garbage (same size, so the download
    // is accepted): lookups in that shard fail, the others are intact.
    char dir[32];
    std::snprintf(dir, sizeof dir, "db=%05u", bad);
    const auto file =
        snap.objects->path_of(snap.prefix + "/shards/run_id=run1/" + dir + "/attempt=00/shard.db");
    const auto size = fs::file_size(file);
    ASSERT_GT(size, 4096u);
    std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(4096);
    const std::string junk(size - 4096, '\xA5');
    f.write(junk.data(), static_cast<std::streamsize>(junk.size()));
  }
  asio::thread_pool pool(2);
  auto o = snap.reader_options(root / "cache");
  o.shard_open = ShardOpenPolicy::eager;  // every shard warm: the chunked path
  auto reader = test::open_async(pool, snap.prefix, o);

  std::vector<Key> good, all;
  for (int k = 299; k >= 0; --k) {  // descending: input order differs from shard order
    all.push_back(Key::integer(k));
    if (reader.route_key(Key::integer(k)) != bad) good.push_back(Key::integer(k));
  }
  good.push_back(Key::integer(5000));  // absent
  good.push_back(good.front());        // a duplicate
  ASSERT_GT(good.size(), 200u);
  auto got = multi_get(reader, good);
  ASSERT_EQ(got.size(), good.size());
  for (std::size_t i = 0; i < good.size(); ++i) {
    const auto k = *good[i].as_int64();
    if (k < 300)
      EXPECT_EQ(got[i], std::optional<Value>("W:" + std::to_string(k))) << "key " << k;
    else
      EXPECT_EQ(got[i], std::nullopt);
  }
  try {
    multi_get(reader, all);
    ADD_FAILURE() << "a multi_get through a corrupt shard succeeded";
  } catch (const boost::system::system_error& e) {
    EXPECT_EQ(e.code(), make_error_code(errc::shard_error)) << e.what();
  }
  // The failure left the pool usable: the same call over the intact shards answers again.
  EXPECT_EQ(multi_get(reader, good), got);
  reader.close();
  pool.join();
}

}  // namespace
}  // namespace shardy
