// The tests' synchronous driver for one coroutine: spawns it on a single-threaded io_context,
// runs the context until it is idle (restarting it first, so it can be called repeatedly), and
// returns the coroutine's result or rethrows its exception.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <utility>

namespace shardy::test {

template <typename T>
T run(boost::asio::io_context& io, boost::asio::awaitable<T> coroutine) {
  auto result = boost::asio::co_spawn(io, std::move(coroutine), boost::asio::use_future);
  io.restart();
  io.run();
  return result.get();
}

}  // namespace shardy::test
