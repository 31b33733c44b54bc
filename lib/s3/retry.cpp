#include "s3/retry.hpp"

namespace shardy::s3 {

errc classify_status(unsigned status, std::string_view code) noexcept {
  if (code == "SlowDown" || code == "Throttling" || code == "ThrottlingException" ||
      code == "RequestLimitExceeded" || code == "TooManyRequestsException") {
    return errc::throttled;
  }
  if (code == "RequestTimeout") return errc::timeout;  // 400: the server gave up on our socket
  if (code == "SignatureDoesNotMatch") return errc::signature_mismatch;
  if (code == "InvalidAccessKeyId" || code == "ExpiredToken" || code == "InvalidToken") {
    return errc::access_denied;
  }
  if (code == "ConditionalRequestConflict") return errc::precondition_failed;
  switch (status) {
    case 404:
      return errc::object_not_found;
    case 412:
      return errc::precondition_failed;
    case 416:
      return errc::invalid_range;
    case 401:
    case 403:
      return errc::access_denied;
    case 429:
      return errc::throttled;
    default:
      break;
  }
  if (status >= 500 && status <= 599) return errc::server_error;
  return errc::s3_error;
}

bool retryable(errc e) noexcept {
  // One definition of "retryable" for the whole library: shardy::is_retryable.
  return is_retryable(make_error_code(e));
}

std::chrono::milliseconds backoff_cap(const RetryPolicy& policy, unsigned n) noexcept {
  if (n == 0) n = 1;
  auto base = policy.base_delay.count();
  auto max = policy.max_delay.count();
  if (base <= 0 || max <= 0) return std::chrono::milliseconds(0);
  std::int64_t cap = base;
  for (unsigned i = 1; i < n && cap < max; ++i) cap *= 2;
  return std::chrono::milliseconds(cap < max ? cap : max);
}

bool may_retry(const RetryPolicy& policy, unsigned attempts_made,
               std::chrono::steady_clock::duration elapsed,
               std::chrono::milliseconds delay) noexcept {
  if (attempts_made >= policy.max_attempts) return false;
  return elapsed + delay < policy.total_budget;
}

}  // namespace shardy::s3
