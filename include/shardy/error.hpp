// shardy's error codes, its error category, and the exception type of the throwing API.
//
// Every shardy operation reports failure as a boost::system::error_code in shardy's own
// category (shardy::errc), plus a human-readable diagnostics string. Throwing overloads throw
// shardy::error, which carries both. "Key not found" is never an error: lookups return
// std::optional.
#pragma once

#include <boost/system/error_code.hpp>
#include <boost/system/system_error.hpp>
#include <string>
#include <string_view>

namespace shardy {

using boost::system::error_code;

enum class errc : int {
  // --- caller input -------------------------------------------------------------------------
  invalid_argument = 1,  ///< a bad option or argument
  invalid_url,           ///< a URL shardy cannot use (scheme, bucket, key)
  key_not_routable,  ///< the key cannot be routed (e.g. an integer outside the signed 64-bit range)
  key_encoding_error,  ///< the key does not fit the snapshot's key_encoding
  // --- snapshot format ------------------------------------------------------------------------
  manifest_parse_error,  ///< _CURRENT or a manifest is malformed or fails validation
  no_current_pointer,    ///< the prefix has no _CURRENT pointer (nothing published)
  unsupported,           ///< a valid snapshot feature shardy does not implement (e.g. CEL, SlateDB)
  // --- object stores / S3 -----------------------------------------------------------------------
  object_not_found,     ///< 404 / NoSuchKey / missing file
  precondition_failed,  ///< 412: If-Match / If-None-Match did not hold
  invalid_range,        ///< 416: the requested range is not satisfiable
  access_denied,        ///< 403 (other than a signature mismatch)
  signature_mismatch,   ///< 403 SignatureDoesNotMatch: wrong secret or a signing bug
  throttled,            ///< 429, 503 SlowDown
  server_error,         ///< 5xx
  s3_error,           ///< any other S3 error response (see diagnostics for Code/Message/RequestId)
  timeout,            ///< connect, first-byte or whole-operation timeout
  connection_failed,  ///< resolve/connect failure, reset, EOF mid-response
  truncated_body,     ///< a body shorter than its Content-Length
  protocol_error,     ///< malformed HTTP or XML from the server
  tls_error,          ///< TLS handshake or certificate verification failure
  credentials_error,  ///< no usable credentials, or a provider failed
  retry_budget_exhausted,  ///< retries stopped by the attempt limit or the total retry budget
  // --- local resources ---------------------------------------------------------------------------
  io_error,       ///< a local file operation failed
  disk_full,      ///< ENOSPC / EDQUOT while writing the local cache or output
  shard_error,    ///< a shard database could not be opened or queried
  shard_changed,  ///< a shard object changed under the reader (ETag mismatch)
  // --- reader lifecycle
  // ----------------------------------------------------------------------------
  reader_closed,        ///< the reader was closed
  reader_not_open,      ///< the reader was used before it was opened
  would_deadlock,       ///< a blocking call was made from a thread of the reader's own io_context
  pool_exhausted,       ///< no SQLite connection of a shard came free within pool_checkout_timeout
                        ///< (B-04)
  rate_limit_exceeded,  ///< a request for more tokens than the rate limiter's burst
  cancelled,            ///< the operation was cancelled
  publish_error,        ///< a publish step failed (see diagnostics)
};

/// The category of shardy::errc. Its name is "shardy".
const boost::system::error_category& error_category() noexcept;

inline error_code make_error_code(errc e) noexcept {
  return error_code(static_cast<int>(e), error_category());
}

/// True when retrying the same operation may succeed: timeouts, connection failures, 5xx,
/// throttling, truncated bodies. False for everything else (including success).
bool is_retryable(const error_code& ec) noexcept;

/// The exception thrown by shardy's throwing overloads: an error code plus diagnostics.
class error : public boost::system::system_error {
 public:
  error(error_code ec, std::string diagnostics);
  explicit error(errc e, std::string diagnostics = {});

  /// The human-readable detail (may be empty). what() includes it.
  const std::string& diagnostics() const noexcept { return diagnostics_; }

 private:
  std::string diagnostics_;
};

/// Throws shardy::error(ec, diagnostics).
[[noreturn]] void throw_error(error_code ec, std::string diagnostics = {});
[[noreturn]] void throw_error(errc e, std::string diagnostics = {});

}  // namespace shardy

namespace boost::system {
template <>
struct is_error_code_enum<shardy::errc> : std::true_type {};
}  // namespace boost::system
