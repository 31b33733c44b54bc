// Retry decisions and backoff for S3 requests (pure).
#pragma once

#include <chrono>
#include <cstdint>
#include <random>
#include <shardy/error.hpp>
#include <shardy/s3_client.hpp>
#include <string_view>

namespace shardy::s3 {

/// The shardy error for an HTTP error status and the S3 error Code ("" when the body had
/// none). 2xx is never passed here.
errc classify_status(unsigned status, std::string_view s3_code) noexcept;

/// Whether an attempt that failed with `e` may be retried (5xx, throttling, timeouts,
/// connection failures, truncated bodies). Other 4xx, local errors and cancellation: never.
bool retryable(errc e) noexcept;

/// The upper bound of the n-th backoff (n = 1 for the sleep after the first failure):
/// min(max_delay, base_delay * 2^(n-1)).
std::chrono::milliseconds backoff_cap(const RetryPolicy& policy, unsigned n) noexcept;

/// Full jitter: uniform in [0, backoff_cap(policy, n)].
template <typename Rng>
std::chrono::milliseconds backoff_delay(const RetryPolicy& policy, unsigned n, Rng& rng) {
  auto cap = backoff_cap(policy, n).count();
  if (cap <= 0) return std::chrono::milliseconds(0);
  std::uniform_int_distribution<std::int64_t> dist(0, cap);
  return std::chrono::milliseconds(dist(rng));
}

/// Whether another attempt may start: attempts so far < max_attempts, and after sleeping
/// `delay` the operation would still be within the total budget (`elapsed` since its start).
bool may_retry(const RetryPolicy& policy, unsigned attempts_made,
               std::chrono::steady_clock::duration elapsed,
               std::chrono::milliseconds delay) noexcept;

}  // namespace shardy::s3
