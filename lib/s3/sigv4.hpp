// AWS Signature Version 4 (header auth) as pure functions: hashing, URI encoding, canonical
// query/headers, the canonical request, the string to sign and the Authorization header.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace shardy::s3 {

inline constexpr std::string_view kEmptySha256 =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
inline constexpr std::string_view kUnsignedPayload = "UNSIGNED-PAYLOAD";

std::string to_hex(const unsigned char* data, std::size_t n);
std::string sha256_hex(std::string_view data);
/// HMAC-SHA256(key, data), 32 raw bytes.
std::array<unsigned char, 32> hmac_sha256(std::string_view key, std::string_view data);

/// Incremental SHA-256 (for streamed bodies).
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(const void* data, std::size_t n);
  std::string hex_digest();  ///< finishes the hash

 private:
  struct State;
  std::unique_ptr<State> state_;
};

/// RFC 3986 percent-encoding as SigV4 wants it: every byte except A-Z a-z 0-9 - . _ ~ becomes
/// %XX (upper-case hex); '/' is kept when `keep_slash` (S3 object keys in paths).
void uri_encode(std::string_view in, bool keep_slash, std::string& out);
std::string uri_encode(std::string_view in, bool keep_slash);

/// The canonical query string of raw (unencoded) parameters: each name and value encoded,
/// pairs sorted by encoded name then value, joined with '&' ("name=" for an empty value). The
/// same string is sent on the wire, so the server sees exactly what was signed.
std::string canonical_query(std::vector<std::pair<std::string, std::string>> params);

/// "YYYYMMDDTHHMMSSZ".
std::string amz_date(std::chrono::system_clock::time_point t);

struct SigningRequest {
  std::string_view method;           ///< "GET"
  std::string_view canonical_uri;    ///< already encoded, e.g. "/bucket/a%20b/c"
  std::string_view canonical_query;  ///< already canonical (see canonical_query)
  /// Headers to sign (any case, any order; values trimmed and inner spaces collapsed here).
  /// Must include host and x-amz-date (and x-amz-security-token / x-amz-content-sha256 for S3).
  std::vector<std::pair<std::string_view, std::string_view>> headers;
  std::string_view payload_hash;  ///< hex SHA-256 of the body, or UNSIGNED-PAYLOAD
};

struct SigningScope {
  std::string_view amz_date;  ///< "20150830T123600Z"
  std::string_view region;
  std::string_view service;  ///< "s3"
};

struct Signature {
  std::string canonical_request;
  std::string string_to_sign;
  std::string signed_headers;  ///< "host;x-amz-date"
  std::string signature;       ///< hex
  std::string authorization;   ///< the Authorization header value
};

/// The signing key HMAC chain for (secret, date, region, service).
std::array<unsigned char, 32> signing_key(std::string_view secret, std::string_view date8,
                                          std::string_view region, std::string_view service);

Signature sign(const SigningRequest& request, const SigningScope& scope,
               std::string_view access_key_id, const std::array<unsigned char, 32>& key);

/// Convenience: derives the key and signs.
Signature sign(const SigningRequest& request, const SigningScope& scope,
               std::string_view access_key_id, std::string_view secret_access_key);

}  // namespace shardy::s3
