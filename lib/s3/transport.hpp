// The HTTP/1.1 transport of the S3 client: keep-alive connection pools per endpoint over TCP or
// TLS, timeouts, cancellation. Implemented with Beast in transport.cpp (the only Beast/TLS
// translation unit); this header has no Beast or OpenSSL in it.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "s3/request.hpp"

namespace shardy::s3 {

struct ResponseHead {
  unsigned status = 0;
  bool keep_alive = true;
  std::optional<std::uint64_t> content_length;
  std::string etag;
  std::string content_type;
  std::string content_range;
  std::string last_modified;
  std::string request_id;
};

/// Receives a 2xx response body as it arrives (streaming downloads). Error responses are never
/// given to a sink; they are buffered into TransportResponse::body.
class BodySink {
 public:
  virtual ~BodySink() = default;
  /// Called once, after the header of a 2xx response; may throw shardy::error to refuse it.
  virtual void begin(const ResponseHead& head) = 0;
  virtual void write(const char* data, std::size_t n) = 0;
};

struct TransportRequest {
  const Address* address = nullptr;
  const PreparedRequest* prepared = nullptr;
  std::string_view body;                             ///< in-memory body
  const std::filesystem::path* body_file = nullptr;  ///< or a file streamed as the body
  std::uint64_t body_file_size = 0;
  bool head = false;         ///< HEAD: the response has no body whatever its Content-Length
  BodySink* sink = nullptr;  ///< 2xx bodies go here when set
  /// Absolute deadline of the whole operation (time_point::max() = none).
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
};

struct TransportResponse {
  ResponseHead head;
  std::string body;  ///< the body unless it went to the sink
};

/// Host name resolution: (host, port) -> endpoints; throws (boost::system::system_error or
/// shardy::error) on failure. The default is Asio's resolver (the system's getaddrinfo).
using Resolver = std::function<boost::asio::awaitable<std::vector<boost::asio::ip::tcp::endpoint>>(
    std::string host, std::string port)>;

class Transport {
 public:
  /// Throws shardy::error(errc::tls_error) when the CA file cannot be loaded. `resolver` replaces
  /// the system resolver (tests); either way resolution counts against the connect timeout.
  Transport(boost::asio::any_io_executor executor, const S3Options& options,
            Resolver resolver = {});
  ~Transport();
  Transport(const Transport&) = delete;
  Transport& operator=(const Transport&) = delete;

  /// One request/response exchange (no retries except a transparent resend when a pooled
  /// keep-alive connection turns out to be closed by the server before any response byte).
  /// That resend also applies to PUTs: if a server had applied the first one and then dropped
  /// the connection without answering, a create-only PUT would see its own object (412).
  /// Throws shardy::error: timeout, connection_failed, truncated_body, protocol_error,
  /// tls_error, cancelled; a sink's own errors pass through.
  boost::asio::awaitable<TransportResponse> send(const TransportRequest& request);

  /// Connections opened so far (for tests of keep-alive reuse).
  std::uint64_t connections_opened() const noexcept;
  /// Idle connections currently pooled across all endpoints.
  std::size_t idle_connections() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace shardy::s3
