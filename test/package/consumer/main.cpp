// A program outside shardy's build that uses the installed package: it writes a tiny snapshot
// into a local directory with the writer, routes keys, and reads every key back through the
// Reader. Built by test/package/package_test.cmake via find_package, pkg-config and
// add_subdirectory. Exit status 0 only when every value and shard id is as expected.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <filesystem>
#include <iostream>
#include <shardy/local_store.hpp>
#include <shardy/reader.hpp>
#include <shardy/routing.hpp>
#include <shardy/writer.hpp>
#include <string>
#include <vector>

namespace fs = std::filesystem;

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: shardy_consumer WORK_DIR\n";
    return 2;
  }
  const fs::path dir = fs::absolute(argv[1]);
  fs::remove_all(dir);
  fs::create_directories(dir);
  constexpr std::uint32_t kShards = 4;
  constexpr int kKeys = 100;

  std::vector<shardy::Record> records;
  for (int i = 0; i < kKeys; ++i) {
    records.push_back(
        {shardy::Key::text("key-" + std::to_string(i)), "value-" + std::to_string(i)});
  }
  shardy::WriterOptions options;
  options.prefix = "file://" + (dir / "snap").string();
  options.num_dbs = kShards;
  options.key_encoding = shardy::KeyEncoding::utf8;
  options.spill_dir = dir / "spill";

  shardy::BuildResult built;
  {
    boost::asio::io_context io;
    auto store = shardy::make_file_store(io.get_executor());
    auto result = boost::asio::co_spawn(
        io, shardy::build_snapshot(store, options, shardy::make_record_source(records)),
        boost::asio::use_future);
    io.run();
    built = result.get();
  }

  shardy::ReaderOptions reader_options;
  reader_options.local_root = dir / "cache";
  shardy::Reader reader(options.prefix, reader_options, 1);
  const shardy::Router router(kShards, shardy::KeyEncoding::utf8);
  int bad = 0;
  std::vector<int> per_shard(kShards, 0);
  for (int i = 0; i < kKeys; ++i) {
    const auto key = shardy::Key::text("key-" + std::to_string(i));
    const auto value = reader.get(key);
    const std::uint32_t shard = router.shard_for(key);
    ++per_shard[shard];
    if (!value || *value != "value-" + std::to_string(i) || reader.route_key(key) != shard) {
      std::cerr << "mismatch for key-" << i << "\n";
      ++bad;
    }
  }
  if (reader.get(shardy::Key::text("absent"))) {
    std::cerr << "an absent key was found\n";
    ++bad;
  }
  int non_empty = 0;
  for (int n : per_shard) non_empty += n > 0 ? 1 : 0;
  if (built.shards.size() != static_cast<std::size_t>(non_empty) ||
      built.stats.rows_written != static_cast<std::uint64_t>(kKeys)) {
    std::cerr << "build result: " << built.shards.size() << " shards, " << built.stats.rows_written
              << " rows\n";
    ++bad;
  }
  reader.close();
  if (bad != 0) return 1;
  std::cout << "shardy consumer: ok (" << kKeys << " keys in " << built.shards.size()
            << " shards, run " << built.run_id << ")\n";
  return 0;
}
