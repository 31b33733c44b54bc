// Building S3 requests without any I/O: endpoints, addressing styles, and signed header sets.
// The transport (lib/s3/http_client.cpp) only sends what this produces.
#pragma once

#include <array>
#include <chrono>
#include <mutex>
#include <shardy/credentials.hpp>
#include <shardy/s3_client.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace shardy::s3 {

/// Where requests go: parsed from S3Options::endpoint (or AWS's regional endpoint).
struct Endpoint {
  bool tls = true;
  std::string host;  ///< DNS name or IP (IPv6 without brackets)
  std::string port;  ///< always set ("443", "80", ...)
  bool default_port = true;
  bool aws = false;  ///< the AWS endpoint (no override)
  /// S3Options::connect_to: where to connect instead of the request's host ("" = no override).
  std::string connect_host;  ///< DNS name or IP (IPv6 without brackets)
  std::string connect_port;  ///< set whenever connect_host is
};

/// Throws shardy::error(errc::invalid_url) for an endpoint that is not http(s)://host[:port][/]
/// or a `connect_to` that is not host[:port] / [v6][:port].
Endpoint parse_endpoint(std::string_view endpoint, std::string_view region,
                        std::string_view connect_to = {});

/// True when `bucket` can be a DNS label (virtual-host addressing): 3-63 chars of a-z 0-9 - and
/// (over http only) '.', starting and ending with a letter or digit, not an IP address.
bool dns_compatible_bucket(std::string_view bucket, bool tls);

/// Where one request goes: the host to connect to (and for TLS SNI), the Host header and the
/// encoded path (the canonical URI).
struct Address {
  std::string host;  ///< connect / SNI host
  std::string port;
  std::string connect_host;  ///< connect here instead of host:port when set (SNI stays host)
  std::string connect_port;
  bool tls = true;
  std::string host_header;  ///< host[:port] ([v6]:port for IPv6)
  std::string path;         ///< "/bucket/a%20b" or "/a%20b"; "/bucket" or "/" for bucket ops
};

/// `key` empty = a bucket-level request (ListObjectsV2).
Address make_address(const Endpoint& endpoint, S3Options::Addressing addressing,
                     std::string_view bucket, std::string_view key);

/// Derives SigV4 signing keys, remembering the last one (keys change once a day).
class SigningKeyCache {
 public:
  std::array<unsigned char, 32> get(std::string_view secret, std::string_view date8,
                                    std::string_view region);

 private:
  std::mutex mutex_;
  std::string secret_, date8_, region_;
  std::array<unsigned char, 32> key_{};
};

/// A request ready to send: every header (including Host and Authorization) and the target.
struct PreparedRequest {
  std::string method;
  std::string target;  ///< path[?query]
  std::vector<std::pair<std::string, std::string>> headers;
  std::string canonical_request;  ///< for diagnostics of SignatureDoesNotMatch
};

struct RequestParts {
  std::string_view method;
  const Address* address = nullptr;
  std::string_view canonical_query;  ///< from s3::canonical_query
  /// Extra headers, all signed (Range, If-Match, Content-Type, ...).
  std::vector<std::pair<std::string, std::string>> headers;
  std::string_view payload_hash;  ///< hex SHA-256 or UNSIGNED-PAYLOAD
};

PreparedRequest prepare_request(RequestParts parts, const Credentials& credentials,
                                std::string_view region, std::chrono::system_clock::time_point now,
                                SigningKeyCache* cache = nullptr);

}  // namespace shardy::s3
