#include <boost/asio/append.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cmath>
#include <shardy/metrics.hpp>
#include <shardy/rate_limiter.hpp>
#include <string>
#include <thread>

namespace shardy {

namespace asio = boost::asio;

void RateLimiter::acquire(std::uint64_t tokens) {
  auto wait = reserve(tokens);
  if (wait.count() > 0) {
    if (metrics_) metrics_->on_rate_limiter_throttled(wait);
    std::this_thread::sleep_for(wait);
  }
}

void RateLimiter::initiate_acquire(asio::any_io_executor ex, std::uint64_t tokens,
                                   asio::any_completion_handler<void(error_code)> handler) {
  std::chrono::nanoseconds wait{};
  try {
    wait = reserve(tokens);
  } catch (const error& e) {
    if (metrics_) metrics_->on_rate_limiter_denied(tokens);
    asio::post(ex, [h = std::move(handler), ec = e.code()]() mutable {
      asio::dispatch(asio::append(std::move(h), ec));
    });
    return;
  }
  if (wait.count() <= 0) {
    asio::post(ex, [h = std::move(handler)]() mutable {
      asio::dispatch(asio::append(std::move(h), error_code{}));
    });
    return;
  }
  if (metrics_) metrics_->on_rate_limiter_throttled(wait);
  auto timer = std::make_shared<asio::steady_timer>(ex, wait);
  auto slot = asio::get_associated_cancellation_slot(handler);
  if (slot.is_connected()) {
    // The slot's handler runs on the thread that emits the cancellation: hop to the timer's
    // executor, where the timer is used.
    slot.assign(
        [timer, ex](asio::cancellation_type) { asio::post(ex, [timer] { timer->cancel(); }); });
  }
  timer->async_wait([this, timer, tokens, h = std::move(handler)](error_code ec) mutable {
    auto slot = asio::get_associated_cancellation_slot(h);
    if (slot.is_connected()) slot.clear();
    if (ec == asio::error::operation_aborted) {
      refund(tokens);
      asio::dispatch(asio::append(std::move(h), make_error_code(errc::cancelled)));
      return;
    }
    asio::dispatch(asio::append(std::move(h), error_code{}));
  });
}

TokenBucket::TokenBucket(double rate_per_second, double burst)
    : rate_(rate_per_second),
      burst_(burst),
      tokens_(burst),
      last_(std::chrono::steady_clock::now()) {
  if (!(rate_per_second > 0) || !std::isfinite(rate_per_second))
    throw_error(errc::invalid_argument, "rate limiter: rate must be > 0");
  if (!(burst >= 1) || !std::isfinite(burst))
    throw_error(errc::invalid_argument, "rate limiter: burst must be >= 1");
}

void TokenBucket::refill(std::chrono::steady_clock::time_point now) {
  const double dt = std::chrono::duration<double>(now - last_).count();
  if (dt > 0) {
    tokens_ = std::min(burst_, tokens_ + dt * rate_);
    last_ = now;
  }
}

std::chrono::nanoseconds TokenBucket::reserve(std::uint64_t tokens) {
  const double n = static_cast<double>(tokens);
  if (n > burst_)
    throw_error(errc::rate_limit_exceeded, "request for " + std::to_string(tokens) +
                                               " tokens exceeds the burst of " +
                                               std::to_string(static_cast<std::uint64_t>(burst_)));
  std::lock_guard lock(mu_);
  refill(std::chrono::steady_clock::now());
  tokens_ -= n;
  if (tokens_ >= 0) return std::chrono::nanoseconds(0);
  return std::chrono::nanoseconds(static_cast<std::int64_t>(std::ceil(-tokens_ / rate_ * 1e9)));
}

void TokenBucket::refund(std::uint64_t tokens) {
  std::lock_guard lock(mu_);
  refill(std::chrono::steady_clock::now());
  tokens_ = std::min(burst_, tokens_ + static_cast<double>(tokens));
}

bool TokenBucket::try_acquire(std::uint64_t tokens) {
  const double n = static_cast<double>(tokens);
  std::lock_guard lock(mu_);
  refill(std::chrono::steady_clock::now());
  if (tokens_ < n) {
    if (metrics_) metrics_->on_rate_limiter_denied(tokens);
    return false;
  }
  tokens_ -= n;
  return true;
}

}  // namespace shardy
