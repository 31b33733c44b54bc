// Using shardy::AsyncReader from C++20 coroutines in an Asio application.
//
//   example_coroutine_reader PREFIX [--object-root DIR] [--local-root DIR]
//                            [--refresh-interval-ms N] [--refreshes N] [--wait-for-change]
//                            KEY...
//
// Opens the snapshot at PREFIX (file:///dir, or s3://bucket/key; --object-root DIR reads
// s3://bucket/key from DIR/bucket/key without a server), looks each integer KEY up with
// co_await reader.async_get(...), then all of them at once with async_multi_get (results come
// back in input order), then runs a refresh loop on a steady_timer: every interval it calls
// async_refresh(), which swaps in a newer snapshot atomically when _CURRENT moved. With
// --wait-for-change the loop runs until a refresh changes the snapshot (at most --refreshes
// times) and the keys are looked up again on the new snapshot.
//
// Output lines (stable, the example's test checks them):
//   opened <manifest_ref> run_id=<run id> num_dbs=<n>
//   get <key> = <value> | get <key> absent
//   multi_get <n> keys: <found> found
//   refresh <i>: unchanged | refresh <i>: now <manifest_ref>
//
// Every co_await below uses the default completion token (boost::asio::deferred). Note for g++ 12
// users: name arguments before co_await-ing a call that takes them (no temporaries or capturing
// lambdas inside a co_await expression) — see docs/conventions.md.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <optional>
#include <shardy/async_reader.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "command_line.hpp"

namespace asio = boost::asio;

namespace {

struct Args {
  std::string prefix;
  shardy::ReaderOptions options;
  std::vector<std::int64_t> keys;
  std::chrono::milliseconds refresh_interval{500};
  int refreshes = 3;
  bool wait_for_change = false;
};

// Values are bytes: printable ASCII as is, anything else as \xNN.
std::string printable(const shardy::Value& v) {
  std::string out;
  for (unsigned char c : v) {
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      char buf[5];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  return out;
}

void print_value(std::int64_t key, const std::optional<shardy::Value>& v) {
  if (v)
    std::printf("get %lld = %s\n", static_cast<long long>(key), printable(*v).c_str());
  else
    std::printf("get %lld absent\n", static_cast<long long>(key));
}

asio::awaitable<void> get_each(const shardy::AsyncReader& reader, const Args& args) {
  for (std::int64_t k : args.keys) {
    auto key = shardy::Key::integer(k);
    std::optional<shardy::Value> v = co_await reader.async_get(std::move(key));
    print_value(k, v);
  }
}

asio::awaitable<int> run(Args args) {
  auto ex = co_await asio::this_coro::executor;
  shardy::AsyncReader reader =
      co_await shardy::AsyncReader::async_open(ex, args.prefix, args.options);
  auto info = reader.snapshot_info();
  std::printf("opened %s run_id=%s num_dbs=%u\n", info.manifest_ref.c_str(), info.run_id.c_str(),
              info.num_dbs);

  co_await get_each(reader, args);

  std::vector<shardy::Key> keys;
  for (std::int64_t k : args.keys) keys.push_back(shardy::Key::integer(k));
  auto many = co_await reader.async_multi_get(std::move(keys));
  std::size_t found = 0;
  for (auto& v : many) found += v.has_value();
  std::printf("multi_get %zu keys: %zu found\n", many.size(), found);
  std::fflush(stdout);

  // The refresh loop. A service would run this forever beside its request handling (see
  // http_server.cpp); here it is bounded.
  asio::steady_timer timer(ex);
  bool changed = false;
  for (int i = 1; i <= args.refreshes && !(changed && args.wait_for_change); ++i) {
    timer.expires_after(args.refresh_interval);
    co_await timer.async_wait(asio::use_awaitable);
    changed = co_await reader.async_refresh();
    if (changed)
      std::printf("refresh %d: now %s\n", i, reader.snapshot_info().manifest_ref.c_str());
    else
      std::printf("refresh %d: unchanged\n", i);
    std::fflush(stdout);
  }
  if (args.wait_for_change && !changed) {
    std::fprintf(stderr, "the snapshot did not change within %d refreshes\n", args.refreshes);
    reader.close();
    co_return 3;
  }
  if (changed) co_await get_each(reader, args);

  reader.close();  // idempotent; calls after it fail with shardy::errc::reader_closed
  co_return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  examples::CommandLine cl(argc, argv,
                           "PREFIX [--object-root DIR] [--local-root DIR] [--refresh-interval-ms N]"
                           " [--refreshes N] [--wait-for-change] KEY...");
  while (cl.next()) {
    if (cl.reader_option(args.options)) continue;
    std::string_view a = cl.arg();
    if (a == "--refresh-interval-ms")
      args.refresh_interval = std::chrono::milliseconds(std::stol(cl.value()));
    else if (a == "--refreshes")
      args.refreshes = std::stoi(cl.value());
    else if (a == "--wait-for-change")
      args.wait_for_change = true;
    else if (cl.is_flag())
      cl.usage();
    else if (args.prefix.empty())
      args.prefix = a;
    else
      args.keys.push_back(std::stoll(std::string(a)));
  }
  if (args.prefix.empty()) cl.usage();

  asio::io_context io;
  int status = 1;
  auto on_done = [&status](std::exception_ptr e, int rc) {
    if (!e) {
      status = rc;
      return;
    }
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& x) {  // shardy::error carries the diagnostics in what()
      std::fprintf(stderr, "error: %s\n", x.what());
    }
  };
  asio::co_spawn(io, run(std::move(args)), on_done);
  io.run();
  return status;
}
