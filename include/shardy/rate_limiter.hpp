// Rate limiting for reader operations (reader-features P-01..P-06): a token bucket with a rate
// and a burst. A get costs 1 token, a multi_get one per input key (duplicates included, P-05);
// borrowed handles, refresh and metadata calls cost nothing.
//
// Differences from the reference, on purpose: a request for more tokens than the burst fails at
// once with errc::rate_limit_exceeded (the reference waits forever, P-04), a rate <= 0 or a burst
// < 1 is rejected at construction, and waiting is cancellable (the tokens are given back).
#pragma once

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/deferred.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <shardy/error.hpp>

namespace shardy {

class MetricsSink;

class RateLimiter {
 public:
  virtual ~RateLimiter() = default;

  /// Takes `tokens` now, on credit if need be, and returns how long the caller must wait before
  /// going ahead (zero: go now). Reservations are served in arrival order. Throws
  /// errc::rate_limit_exceeded when `tokens` exceeds the burst. Thread-safe.
  virtual std::chrono::nanoseconds reserve(std::uint64_t tokens) = 0;
  /// Gives back the tokens of a reservation that was abandoned (its wait was cancelled).
  virtual void refund(std::uint64_t tokens) = 0;
  /// Takes `tokens` only if they are available now, without credit.
  virtual bool try_acquire(std::uint64_t tokens) = 0;

  /// Blocks the calling thread until `tokens` are granted.
  void acquire(std::uint64_t tokens);

  /// Waits asynchronously on `ex` until `tokens` are granted. Completion: void(error_code) with
  /// errc::rate_limit_exceeded (at once, nothing taken) when tokens > burst, errc::cancelled when
  /// the operation is cancelled (per-operation cancellation, any type; the tokens are refunded).
  /// Never completes inline.
  template <boost::asio::completion_token_for<void(error_code)> Token = boost::asio::deferred_t>
  auto async_acquire(boost::asio::any_io_executor ex, std::uint64_t tokens, Token&& token = {}) {
    return boost::asio::async_initiate<Token, void(error_code)>(
        [](auto handler, RateLimiter* self, boost::asio::any_io_executor ex, std::uint64_t n) {
          self->initiate_acquire(std::move(ex), n, std::move(handler));
        },
        token, this, std::move(ex), tokens);
  }

  /// Metrics for throttling (P-06): set by the reader that uses the limiter, may be null.
  void set_metrics(std::shared_ptr<MetricsSink> metrics) { metrics_ = std::move(metrics); }

 protected:
  std::shared_ptr<MetricsSink> metrics_;

 private:
  void initiate_acquire(boost::asio::any_io_executor ex, std::uint64_t tokens,
                        boost::asio::any_completion_handler<void(error_code)> handler);
};

/// A thread-safe token bucket: starts full with `burst` tokens and refills continuously at `rate`
/// tokens per second on the steady clock.
class TokenBucket final : public RateLimiter {
 public:
  /// Throws errc::invalid_argument for rate <= 0 or burst < 1.
  TokenBucket(double rate_per_second, double burst);

  std::chrono::nanoseconds reserve(std::uint64_t tokens) override;
  void refund(std::uint64_t tokens) override;
  bool try_acquire(std::uint64_t tokens) override;

  double rate() const noexcept { return rate_; }
  double burst() const noexcept { return burst_; }

 private:
  void refill(std::chrono::steady_clock::time_point now);  // with mu_ held

  const double rate_;
  const double burst_;
  std::mutex mu_;
  double tokens_;  // may go negative: reservations on credit
  std::chrono::steady_clock::time_point last_;
};

}  // namespace shardy
