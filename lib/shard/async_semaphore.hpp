// A counting semaphore for coroutines: bounds concurrent downloads and fan-out. Waiters are
// resumed in FIFO order through their own executors (never inline in release()).
#pragma once

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cstddef>
#include <deque>
#include <mutex>

namespace shardy::shard {

class AsyncSemaphore {
 public:
  /// `count` units available at first (0: acquirers wait for a release, i.e. a latch).
  explicit AsyncSemaphore(std::size_t count) : count_(count) {}

  /// Completes (never inline) once a unit is available.
  template <typename Token>
  auto async_acquire(Token&& token) {
    return boost::asio::async_initiate<Token, void()>(
        [this](auto handler) {
          boost::asio::any_io_executor ex = boost::asio::get_associated_executor(handler);
          std::unique_lock lock(mu_);
          if (count_ > 0) {
            --count_;
            lock.unlock();
            boost::asio::post(ex, [h = std::move(handler)]() mutable { std::move(h)(); });
          } else {
            waiters_.push_back(Waiter{std::move(ex), std::move(handler)});
          }
        },
        token);
  }

  void release() {
    std::unique_lock lock(mu_);
    if (waiters_.empty()) {
      ++count_;
      return;
    }
    auto w = std::move(waiters_.front());
    waiters_.pop_front();
    lock.unlock();
    boost::asio::post(w.executor, [h = std::move(w.handler)]() mutable { std::move(h)(); });
  }

  /// RAII release for coroutines.
  class Permit {
   public:
    explicit Permit(AsyncSemaphore* s) : s_(s) {}
    Permit(Permit&& o) noexcept : s_(o.s_) { o.s_ = nullptr; }
    Permit& operator=(Permit&&) = delete;
    ~Permit() {
      if (s_) s_->release();
    }

   private:
    AsyncSemaphore* s_;
  };

 private:
  std::mutex mu_;
  std::size_t count_;
  struct Waiter {
    boost::asio::any_io_executor executor;
    boost::asio::any_completion_handler<void()> handler;
  };
  std::deque<Waiter> waiters_;
};

}  // namespace shardy::shard
