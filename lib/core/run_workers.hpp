// Runs a fixed number of worker coroutines at once and waits for all of them: the shape shared by
// the S3 multi-range fetch and the writer's upload lanes
// (each worker pulls tasks from a shared counter until none are left).
//
// Not boost::asio::experimental::make_parallel_group over a range: Boost 1.81's ranged launch
// reads the range (range.size()) after starting the operations, so when they run on other threads
// and all finish first, the awaiting coroutine resumes and frees the range under it (an ASan
// heap-use-after-free seen in the range tier's conformance tests with a parallel chain fetch, since
// reverted).
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cstddef>
#include <exception>
#include <memory>

namespace shardy::detail {

/// co_spawns `workers` coroutines made by `make_worker()` on `ex` and resumes when every one has
/// finished; returns the first exception a worker ended with (in completion order), or null. The
/// caller's state the workers reference stays alive: this returns only after the last one ends.
template <typename MakeWorker>
boost::asio::awaitable<std::exception_ptr> run_workers(boost::asio::any_io_executor ex,
                                                       std::size_t workers,
                                                       MakeWorker make_worker) {
  using Done = boost::asio::experimental::concurrent_channel<void(boost::system::error_code,
                                                                  std::exception_ptr)>;
  // Shared with the reporting handlers (room for every report, so try_send never fails): the
  // last one may still be inside try_send when this coroutine resumes on another thread.
  auto done = std::make_shared<Done>(co_await boost::asio::this_coro::executor, workers);
  for (std::size_t w = 0; w < workers; ++w)
    boost::asio::co_spawn(ex, make_worker(), [done](std::exception_ptr e) {
      done->try_send(boost::system::error_code{}, std::move(e));
    });
  std::exception_ptr first;
  const auto token = boost::asio::as_tuple(boost::asio::use_awaitable);
  for (std::size_t w = 0; w < workers; ++w) {
    auto [ec, e] = co_await done->async_receive(token);
    if (!first) first = e;
  }
  co_return first;
}

}  // namespace shardy::detail
