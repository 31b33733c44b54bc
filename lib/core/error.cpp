#include <shardy/error.hpp>

namespace shardy {
namespace {

class category final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "shardy"; }

  std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
      case errc::invalid_argument:
        return "invalid argument";
      case errc::invalid_url:
        return "invalid URL";
      case errc::key_not_routable:
        return "key cannot be routed";
      case errc::key_encoding_error:
        return "key does not fit the key encoding";
      case errc::manifest_parse_error:
        return "manifest parse error";
      case errc::no_current_pointer:
        return "no current pointer";
      case errc::unsupported:
        return "unsupported snapshot feature";
      case errc::object_not_found:
        return "object not found";
      case errc::precondition_failed:
        return "precondition failed";
      case errc::invalid_range:
        return "requested range not satisfiable";
      case errc::access_denied:
        return "access denied";
      case errc::signature_mismatch:
        return "signature does not match";
      case errc::throttled:
        return "throttled by the server";
      case errc::server_error:
        return "server error";
      case errc::s3_error:
        return "S3 error";
      case errc::timeout:
        return "timed out";
      case errc::connection_failed:
        return "connection failed";
      case errc::truncated_body:
        return "response body shorter than its Content-Length";
      case errc::protocol_error:
        return "protocol error";
      case errc::tls_error:
        return "TLS error";
      case errc::credentials_error:
        return "credentials error";
      case errc::retry_budget_exhausted:
        return "retry budget exhausted";
      case errc::io_error:
        return "local I/O error";
      case errc::disk_full:
        return "no space left on device";
      case errc::shard_error:
        return "shard error";
      case errc::shard_changed:
        return "shard object changed";
      case errc::reader_closed:
        return "reader closed";
      case errc::reader_not_open:
        return "reader not open";
      case errc::would_deadlock:
        return "blocking call from the reader's own io_context thread";
      case errc::rate_limit_exceeded:
        return "request exceeds the rate limiter's burst";
      case errc::pool_exhausted:
        return "no free shard connection within the checkout timeout";
      case errc::cancelled:
        return "operation cancelled";
      case errc::publish_error:
        return "publish failed";
    }
    return "unknown shardy error " + std::to_string(ev);
  }
};

}  // namespace

const boost::system::error_category& error_category() noexcept {
  static const category instance;
  return instance;
}

bool is_retryable(const error_code& ec) noexcept {
  if (ec.category() != error_category()) return false;
  switch (static_cast<errc>(ec.value())) {
    case errc::throttled:
    case errc::server_error:
    case errc::timeout:
    case errc::connection_failed:
    case errc::truncated_body:
    case errc::pool_exhausted:
      return true;
    default:
      return false;
  }
}

error::error(error_code ec, std::string diagnostics)
    : boost::system::system_error(ec, diagnostics.empty() ? std::string{} : diagnostics),
      diagnostics_(std::move(diagnostics)) {}

error::error(errc e, std::string diagnostics) : error(make_error_code(e), std::move(diagnostics)) {}

void throw_error(error_code ec, std::string diagnostics) {
  throw error(ec, std::move(diagnostics));
}
void throw_error(errc e, std::string diagnostics) { throw error(e, std::move(diagnostics)); }

}  // namespace shardy
