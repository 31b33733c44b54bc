// Moving a coroutine from an io thread onto the reader's blocking pool, safely against the pool
// going away (used by the reader's blocking shard calls and by the shard factories' blocking
// open steps).
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <memory>
#include <utility>

namespace shardy::detail {

/// `co_await hop_to(pool, owner)` resumes the calling coroutine on `pool` (a bare
/// `co_await post(pool, use_awaitable)` would resume it on its own executor again). `owner`
/// keeps the pool alive and is held by the posting thread until post() has returned: Asio's
/// scheduler signals its condition variable after unlocking its queue, so the coroutine may
/// already have run on the pool, finished, and its caller dropped the reader (whose destructor
/// destroys the pool) before this thread's signal (TSan saw it: RangeConcurrent.RefreshUnderLoad*
/// with --gtest_repeat=10). Dropping `owner` here may run that destructor on this thread.
inline auto hop_to(boost::asio::any_io_executor pool, std::shared_ptr<const void> owner) {
  auto post_then_release = [](auto handler, boost::asio::any_io_executor to,
                              std::shared_ptr<const void> keep) {
    boost::asio::post(boost::asio::bind_executor(std::move(to), std::move(handler)));
    keep.reset();  // after post() returned
  };
  return boost::asio::async_initiate<const boost::asio::use_awaitable_t<>&, void()>(
      post_then_release, boost::asio::use_awaitable, std::move(pool), std::move(owner));
}

}  // namespace shardy::detail
