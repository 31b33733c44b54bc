// Publishing a snapshot with shardy's writer: the data the other examples read.
//
//   example_write_snapshot PREFIX [--object-root DIR] [--records N] [--num-dbs N] [--tag TAG]
//
// Writes N records, integer key k (0 <= k < N) -> value "<TAG>:value-<k>", HASH-sharded over
// num_dbs SQLite shards, and publishes the snapshot (shards, manifest, then _CURRENT) under
// PREFIX, which is file:///abs/dir, or s3://bucket/key (with --object-root DIR the object lives in
// DIR/bucket/key; without it, in S3 configured through the AWS_* environment variables).
// Publishing again under the same prefix with another tag makes a newer snapshot that running
// readers pick up on their next refresh.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <shardy/store.hpp>
#include <shardy/writer.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace asio = boost::asio;

int main(int argc, char** argv) {
  std::string prefix, object_root, tag = "v1";
  long records = 1000, num_dbs = 8;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "missing value for %s\n", argv[i]);
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--object-root")
      object_root = value();
    else if (a == "--records")
      records = std::stol(value());
    else if (a == "--num-dbs")
      num_dbs = std::stol(value());
    else if (a == "--tag")
      tag = value();
    else if (!a.starts_with("--") && prefix.empty())
      prefix = a;
    else {
      std::fprintf(stderr,
                   "usage: %s PREFIX [--object-root DIR] [--records N] [--num-dbs N] [--tag T]\n",
                   argv[0]);
      return 2;
    }
  }
  if (prefix.empty() || records < 0 || num_dbs < 1) {
    std::fprintf(stderr, "usage: %s PREFIX [--object-root DIR] [--records N] [--num-dbs N]\n",
                 argv[0]);
    return 2;
  }

  std::vector<shardy::Record> data;
  data.reserve(static_cast<std::size_t>(records));
  for (long k = 0; k < records; ++k)
    data.push_back(shardy::Record{shardy::Key::integer(k), tag + ":value-" + std::to_string(k)});

  shardy::WriterOptions wo;
  wo.prefix = prefix;
  wo.num_dbs = static_cast<std::uint32_t>(num_dbs);
  wo.key_encoding = shardy::KeyEncoding::u64be;

  asio::io_context io;
  shardy::StoreOptions so;
  so.s3 = shardy::S3Options::from_environment();
  so.object_root = object_root;
  int status = 1;
  // The coroutine form, build_snapshot, reports failures as shardy::error with diagnostics.
  auto on_done = [&status](std::exception_ptr e, shardy::BuildResult r) {
    if (e) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& x) {
        std::fprintf(stderr, "error: %s\n", x.what());
      }
      return;
    }
    std::printf("published %s: %llu records in %u shards, manifest %s\n", r.run_id.c_str(),
                static_cast<unsigned long long>(r.stats.rows_written), r.stats.shards_written,
                r.manifest.ref.c_str());
    status = 0;
  };
  try {
    auto store = shardy::make_object_store(io.get_executor(), so);
    asio::co_spawn(
        io,
        shardy::build_snapshot(store, std::move(wo), shardy::make_record_source(std::move(data))),
        on_done);
    io.run();
  } catch (const std::exception& e) {  // e.g. unusable S3 options
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return status;
}
