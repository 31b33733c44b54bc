// The io thread of the RangeSource tests, and reads made on it: a read on one of the source's own
// io threads must fail at once (errc::would_deadlock) instead of waiting for a request that
// thread would have to serve.
#pragma once

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <cstdint>
#include <future>
#include <shardy/error.hpp>
#include <thread>

#include "shard/range_source.hpp"

namespace shardy::test {

/// An io_context with one thread, standing in for the reader's io threads.
struct IoThread {
  boost::asio::io_context io;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work{io.get_executor()};
  std::thread thread{[this] { io.run(); }};
  ~IoThread() {
    work.reset();
    thread.join();
  }
};

/// Reads 64 bytes of page 3 of `src` on `ex` and returns the errc the read failed with, or
/// errc{} when it worked.
template <typename Executor>
errc read_failure_on(const Executor& ex, shard::RangeSource& src) {
  std::promise<errc> result;
  boost::asio::post(ex, [&] {
    try {
      char b[64];
      src.read(b, sizeof b, std::uint64_t(src.page_size()) * 2);
      result.set_value(errc{});
    } catch (const shardy::error& e) {
      result.set_value(static_cast<errc>(e.code().value()));
    }
  });
  return result.get_future().get();
}

}  // namespace shardy::test
