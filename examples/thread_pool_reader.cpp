// Many threads calling the blocking shardy::Reader at once.
//
//   example_thread_pool_reader PREFIX [--object-root DIR] [--local-root DIR] [--threads N]
//                              [--lookups N] [--key-space K]
//
// One Reader (it owns a small io thread pool for opening and downloading shards) is shared by
// N application threads; each does `lookups` gets of integer keys (thread t, lookup i asks for
// key (t * lookups + i) mod K). A warm lookup runs entirely on the calling thread — no hop to the
// reader's io threads — so the threads scale like raw SQLite lookups would. The error_code form
// (`get(key, ec)`) never throws; the other form throws shardy::error.
//
// Output lines (stable, the example's test checks them):
//   opened <manifest_ref> num_dbs=<n>
//   thread <t>: <found> found, <absent> absent, <bytes> value bytes
//   total: <lookups> lookups, <found> found, <absent> absent, <bytes> value bytes, <errors> errors
//   rate: <lookups/s>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <shardy/reader.hpp>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "command_line.hpp"

namespace {

struct Counts {
  std::uint64_t found = 0, absent = 0, bytes = 0, errors = 0;
};

}  // namespace

int main(int argc, char** argv) {
  std::string prefix;
  shardy::ReaderOptions options;
  long threads = 8, lookups = 10000, key_space = 2000;
  examples::CommandLine cl(argc, argv,
                           "PREFIX [--object-root DIR] [--local-root DIR] [--threads N]"
                           " [--lookups N] [--key-space K]");
  while (cl.next()) {
    if (cl.reader_option(options)) continue;
    std::string_view a = cl.arg();
    if (a == "--threads")
      threads = std::stol(cl.value());
    else if (a == "--lookups")
      lookups = std::stol(cl.value());
    else if (a == "--key-space")
      key_space = std::stol(cl.value());
    else if (cl.is_flag() || !prefix.empty())
      cl.usage();
    else
      prefix = a;
  }
  if (prefix.empty() || threads < 1 || lookups < 0 || key_space < 1) cl.usage();

  try {
    shardy::Reader reader(prefix, options);  // blocks until the snapshot is open
    auto info = reader.snapshot_info();
    std::printf("opened %s num_dbs=%u\n", info.manifest_ref.c_str(), info.num_dbs);

    std::vector<Counts> counts(static_cast<std::size_t>(threads));
    std::vector<std::thread> pool;
    const auto start = std::chrono::steady_clock::now();
    for (long t = 0; t < threads; ++t) {
      pool.emplace_back([&, t] {
        Counts& c = counts[static_cast<std::size_t>(t)];
        for (long i = 0; i < lookups; ++i) {
          const auto key = shardy::Key::integer((t * lookups + i) % key_space);
          shardy::error_code ec;
          auto v = reader.get(key, ec);
          if (ec) {
            ++c.errors;
          } else if (v) {
            ++c.found;
            c.bytes += v->size();
          } else {
            ++c.absent;
          }
        }
      });
    }
    for (auto& th : pool) th.join();
    const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;

    Counts total;
    for (std::size_t t = 0; t < counts.size(); ++t) {
      const Counts& c = counts[t];
      std::printf("thread %zu: %llu found, %llu absent, %llu value bytes\n", t,
                  static_cast<unsigned long long>(c.found),
                  static_cast<unsigned long long>(c.absent),
                  static_cast<unsigned long long>(c.bytes));
      total.found += c.found;
      total.absent += c.absent;
      total.bytes += c.bytes;
      total.errors += c.errors;
    }
    std::printf("total: %llu lookups, %llu found, %llu absent, %llu value bytes, %llu errors\n",
                static_cast<unsigned long long>(threads * lookups),
                static_cast<unsigned long long>(total.found),
                static_cast<unsigned long long>(total.absent),
                static_cast<unsigned long long>(total.bytes),
                static_cast<unsigned long long>(total.errors));
    std::printf("rate: %.0f lookups/s\n",
                took.count() > 0 ? static_cast<double>(threads * lookups) / took.count() : 0.0);
    return total.errors == 0 ? 0 : 1;
  } catch (const std::exception& e) {  // shardy::error: code and diagnostics in what()
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
