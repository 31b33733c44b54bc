// S3Client: an asynchronous S3 client (HTTP/1.1 over TCP or TLS, SigV4, a keep-alive connection
// pool per endpoint, timeouts, retries with backoff and full jitter).
//
// Every operation takes a completion token (default boost::asio::deferred, so `co_await` works;
// use_awaitable, use_future, callbacks, as_tuple(...) and bind_cancellation_slot(...) work too)
// and completes with `void(error_code, XxxResult)`. Errors are in shardy's category (errc).
//
// Diagnostics: every result derives from S3Response, whose `diagnostics` string is filled when
// the operation fails (the S3 error's Code, Message and RequestId, or the transport detail), and
// the result is delivered even on failure. To see it, complete with as_tuple:
//
//   auto [ec, r] = co_await client.async_get_object("b", "k", as_tuple(deferred));
//   if (ec) throw shardy::error(ec, r.diagnostics);
//
// With a token that throws (deferred / use_awaitable in a coroutine) a failure throws
// boost::system::system_error carrying only the code.
//
// Cancellation: each operation honours the completion handler's cancellation slot (terminal,
// partial and total cancellation all stop it). Boost 1.81 has no asio::cancel_after; use
// bind_cancellation_slot with a timer, or awaitable_operators `op || timer.async_wait(...)`.
// A cancelled operation completes with errc::cancelled; the connection it used is closed, the
// rest of the pool stays usable.
//
// Threads: an S3Client is a cheap, copyable handle to shared state (copies share the pool);
// it may be used from any number of threads and coroutines at once. Operations run on the
// executor given at construction; handlers are invoked through their associated executor.
//
// g++ 12.2 rule for callers: do not brace-initialise a request inside a co_await operand
// (`co_await c.async_get_object(b, k, GetObjectRequest{...})` is double-freed by g++ 12.2);
// the request structs have constructors: use parentheses or a named local.
#pragma once

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/deferred.hpp>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <shardy/credentials.hpp>
#include <shardy/error.hpp>
#include <shardy/object_store.hpp>  // ByteRange, ProgressCallback
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace shardy {

class MetricsSink;  // shardy/metrics.hpp

/// Retries: exponential backoff with full jitter (sleep uniform in [0, min(max_delay,
/// base_delay * 2^n)]) on 5xx, 429, 503 SlowDown, connection reset/EOF, truncated bodies and
/// timeouts. Other 4xx are never retried.
struct RetryPolicy {
  unsigned max_attempts = 5;                      ///< attempts in total (1 = never retry)
  std::chrono::milliseconds base_delay{50};       ///< first backoff cap
  std::chrono::milliseconds max_delay{5000};      ///< cap of any one backoff
  std::chrono::milliseconds total_budget{30000};  ///< no new attempt after this much time
                                                  ///< since the operation started
};

struct S3Options {
  /// "" = AWS (https://s3.<region>.amazonaws.com). Otherwise a base URL such as
  /// "http://127.0.0.1:9000" or "https://minio.internal:9443" (no path).
  std::string endpoint;
  std::string region = "us-east-1";

  enum class Addressing : std::uint8_t {
    automatic,     ///< virtual-host for AWS with DNS-compatible buckets, path-style otherwise
    path,          ///< http://endpoint/bucket/key
    virtual_host,  ///< http://bucket.endpoint/key
  };
  Addressing addressing = Addressing::automatic;

  /// Connect to this address instead of the host the request's URL names, like curl's
  /// `--connect-to ::HOST:PORT`: "host", "host:port" or "[v6]:port" (the port defaults to the
  /// endpoint's). Only the TCP destination changes: the Host header, the SigV4 signature, TLS
  /// SNI and certificate verification all keep the URL's host (with virtual-host addressing
  /// "bucket.s3.example.com"). Use it to reach virtual-host names that do not resolve here
  /// (e.g. endpoint "http://s3.localhost:9000" + virtual_host + connect_to "127.0.0.1"), or to
  /// pin an endpoint to one address. A name given here is resolved on every new connection,
  /// under connect_timeout. "" = connect to the URL's host.
  std::string connect_to;

  bool verify_tls = true;  ///< false only for tests (self-signed servers)
  std::string ca_file;     ///< PEM bundle to trust instead of the system store ("" = system)

  std::chrono::milliseconds connect_timeout{5000};  ///< resolve + TCP connect + TLS handshake
  /// Time from sending a request to its response header; also the longest silence allowed
  /// while a body is being read or sent.
  std::chrono::milliseconds first_byte_timeout{30000};
  /// Whole operation, retries included; 0 = no limit (streamed transfers of GiB-sized objects
  /// usually want none and rely on first_byte_timeout to catch stalls).
  std::chrono::milliseconds operation_timeout{0};

  RetryPolicy retry;

  std::size_t max_connections_per_endpoint = 64;  ///< open connections (busy + idle) per host
  std::chrono::milliseconds idle_timeout{30000};  ///< idle pooled connections are closed after

  /// nullptr = make_default_credentials() at client construction (environment, then the
  /// AWS_PROFILE profile of ~/.aws/credentials and ~/.aws/config).
  std::shared_ptr<CredentialsProvider> credentials;

  /// Body bytes above which PUTs are signed UNSIGNED-PAYLOAD instead of hashing the body
  /// (hashing a file means reading it twice). Bodies over plain http are always hashed.
  std::uint64_t unsigned_payload_threshold = 1 << 20;

  /// Request metrics (reader-features Q-12); null = none. The client calls, from its executor:
  /// on_s3_request(op) for every HTTP request it sends (each attempt, so retries count too),
  /// on_s3_retry(op, attempt) before each retry (attempt = the number of the attempt about to be
  /// sent: 2 for the first retry), and on_s3_error(op) once per operation that fails for good
  /// (including a GET of a missing key: object_not_found). `op` is the S3 API name: GetObject
  /// (also for downloads and each coalesced range request), HeadObject, PutObject, DeleteObject,
  /// ListObjectsV2 (one request per page).
  std::shared_ptr<MetricsSink> metrics;

  /// Options filled from the environment, read now: AWS_REGION / AWS_DEFAULT_REGION (else the
  /// profile's `region` in ~/.aws/config), AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL (else the
  /// profile's endpoint_url). Fields the environment does not set keep their defaults.
  static S3Options from_environment();
};

/// What every result carries, on success and on failure.
struct S3Response {
  unsigned status = 0;      ///< HTTP status of the last attempt (0 = no response)
  unsigned attempts = 0;    ///< requests sent (1 + retries)
  std::string request_id;   ///< x-amz-request-id of the last response
  std::string diagnostics;  ///< on failure: S3 Code/Message/RequestId or transport detail
};

struct GetObjectRequest {
  std::optional<ByteRange> range;  ///< whole object when empty
  std::string if_match;            ///< fail with precondition_failed unless the ETag matches

  GetObjectRequest() = default;
  explicit GetObjectRequest(std::optional<ByteRange> r, std::string if_match_etag = {})
      : range(r), if_match(std::move(if_match_etag)) {}
};

/// Content-Range of a 206 response: bytes first-last/total.
struct ContentRange {
  std::uint64_t first = 0;
  std::uint64_t last = 0;   ///< inclusive
  std::uint64_t total = 0;  ///< size of the whole object
};

struct HeadObjectResult : S3Response {
  std::uint64_t size = 0;
  std::string etag;  ///< with its double quotes, as S3 sends it
  std::string content_type;
  std::optional<std::chrono::system_clock::time_point> last_modified;
};

struct GetObjectResult : HeadObjectResult {
  std::string body;
  std::optional<ContentRange> content_range;  ///< set for 206 responses; size = total
  std::uint64_t range_offset() const noexcept { return content_range ? content_range->first : 0; }
};

struct PutObjectRequest {
  std::string content_type = "application/octet-stream";
  bool if_none_match = false;  ///< If-None-Match: * (create only)
  std::string if_match;        ///< If-Match: replace only this ETag

  PutObjectRequest() = default;
  explicit PutObjectRequest(std::string type, bool create_only = false,
                            std::string if_match_etag = {})
      : content_type(std::move(type)),
        if_none_match(create_only),
        if_match(std::move(if_match_etag)) {}
};

struct PutObjectResult : S3Response {
  std::string etag;
};

struct DeleteObjectResult : S3Response {};

struct ListObjectsRequest {
  std::string prefix;
  std::string delimiter;           ///< "" = flat listing
  std::size_t max_keys = 0;        ///< stop after this many keys + prefixes (0 = no limit)
  std::string continuation_token;  ///< start from here ("" = from the start)
  bool all_pages = true;           ///< follow continuation tokens to the end

  ListObjectsRequest() = default;
  explicit ListObjectsRequest(std::string p, std::string d = {})
      : prefix(std::move(p)), delimiter(std::move(d)) {}
};

struct ListedObject {
  std::string key;
  std::uint64_t size = 0;
  std::string etag;
  std::optional<std::chrono::system_clock::time_point> last_modified;
};

struct ListObjectsResult : S3Response {
  std::vector<ListedObject> objects;         ///< in S3's order (sorted by key)
  std::vector<std::string> common_prefixes;  ///< in S3's order
  std::string next_continuation_token;       ///< "" when the listing is complete
  unsigned pages = 0;
};

struct DownloadRequest {
  std::string if_match;       ///< pin to this ETag (precondition_failed otherwise)
  ProgressCallback progress;  ///< called from the client's executor as bytes arrive

  DownloadRequest() = default;
  explicit DownloadRequest(std::string if_match_etag, ProgressCallback cb = {})
      : if_match(std::move(if_match_etag)), progress(std::move(cb)) {}
};

/// A download writes the object to the file (created or truncated). A retried download resumes
/// with a Range pinned to the first response's ETag (If-Match), so the file is never a mix of two
/// versions; on failure the file's content is unspecified (callers use a temporary path).
struct DownloadResult : S3Response {
  std::uint64_t size = 0;
  std::string etag;
};

struct GetRangesRequest {
  std::vector<ByteRange> ranges;              ///< bounded or from-offset ranges (no suffix ranges)
  std::uint64_t max_gap = 64 * 1024;          ///< merge ranges closer than this
  std::uint64_t max_request_bytes = 8 << 20;  ///< don't merge beyond this span
  std::size_t max_parallel = 8;               ///< requests in flight at once
  std::string if_match;                       ///< pin every request to this ETag

  GetRangesRequest() = default;
  explicit GetRangesRequest(std::vector<ByteRange> r, std::string if_match_etag = {})
      : ranges(std::move(r)), if_match(std::move(if_match_etag)) {}
};

struct GetRangesResult : S3Response {
  std::vector<std::string> bodies;  ///< bodies[i] = bytes of ranges[i] (clipped at the end)
  std::string etag;                 ///< ETag of the object (identical across requests)
  std::uint64_t object_size = 0;
  unsigned requests = 0;  ///< HTTP requests after coalescing
};

namespace detail {
class S3ClientImpl;
}

class S3Client {
 public:
  using executor_type = boost::asio::any_io_executor;

  template <typename R>
  using handler = boost::asio::any_completion_handler<void(error_code, R)>;

  /// Throws shardy::error (errc::invalid_argument / invalid_url) for unusable options, and
  /// errc::tls_error when the CA file cannot be loaded.
  S3Client(executor_type executor, S3Options options);
  ~S3Client();
  S3Client(const S3Client&) = default;
  S3Client& operator=(const S3Client&) = default;
  S3Client(S3Client&&) noexcept = default;
  S3Client& operator=(S3Client&&) noexcept = default;

  executor_type get_executor() const noexcept;
  const S3Options& options() const noexcept;

  // --- GetObject ------------------------------------------------------------------------------
  template <typename Token = boost::asio::deferred_t>
  auto async_get_object(std::string_view bucket, std::string_view key, GetObjectRequest request,
                        Token&& token = {}) {
    return boost::asio::async_initiate<Token, void(error_code, GetObjectResult)>(
        [impl = impl_](auto h, std::string b, std::string k, GetObjectRequest r) {
          start_get_object(impl, std::move(b), std::move(k), std::move(r), std::move(h));
        },
        token, std::string(bucket), std::string(key), std::move(request));
  }
  template <typename Token = boost::asio::deferred_t>
  requires(!std::is_convertible_v<Token, GetObjectRequest>) auto async_get_object(
      std::string_view bucket, std::string_view key, Token&& token = {}) {
    return async_get_object(bucket, key, GetObjectRequest(), std::forward<Token>(token));
  }

  // --- HeadObject -----------------------------------------------------------------------------
  template <typename Token = boost::asio::deferred_t>
  auto async_head_object(std::string_view bucket, std::string_view key, Token&& token = {}) {
    return boost::asio::async_initiate<Token, void(error_code, HeadObjectResult)>(
        [impl = impl_](auto h, std::string b, std::string k) {
          start_head_object(impl, std::move(b), std::move(k), std::move(h));
        },
        token, std::string(bucket), std::string(key));
  }

  // --- PutObject ------------------------------------------------------------------------------
  template <typename Token = boost::asio::deferred_t>
  auto async_put_object(std::string_view bucket, std::string_view key, std::string body,
                        PutObjectRequest request, Token&& token = {}) {
    return boost::asio::async_initiate<Token, void(error_code, PutObjectResult)>(
        [impl = impl_](auto h, std::string b, std::string k, std::string body, PutObjectRequest r) {
          start_put_object(impl, std::move(b), std::move(k), std::move(body), std::move(r),
                           std::move(h));
        },
        token, std::string(bucket), std::string(key), std::move(body), std::move(request));
  }
  template <typename Token = boost::asio::deferred_t>
  requires(!std::is_convertible_v<Token, PutObjectRequest>) auto async_put_object(
      std::string_view bucket, std::string_view key, std::string body, Token&& token = {}) {
    return async_put_object(bucket, key, std::move(body), PutObjectRequest(),
                            std::forward<Token>(token));
  }

  /// Streams the file up (one PUT; S3 accepts up to 5 GiB per PUT).
  template <typename Token = boost::asio::deferred_t>
  auto async_put_object_from_file(std::string_view bucket, std::string_view key,
                                  std::filesystem::path file, PutObjectRequest request,
                                  Token&& token = {}) {
    return boost::asio::async_initiate<Token, void(error_code, PutObjectResult)>(
        [impl = impl_](auto h, std::string b, std::string k, std::filesystem::path f,
                       PutObjectRequest r) {
          start_put_object_from_file(impl, std::move(b), std::move(k), std::move(f), std::move(r),
                                     std::move(h));
        },
        token, std::string(bucket), std::string(key), std::move(file), std::move(request));
  }
  template <typename Token = boost::asio::deferred_t>
  requires(!std::is_convertible_v<Token, PutObjectRequest>) auto async_put_object_from_file(
      std::string_view bucket, std::string_view key, std::filesystem::path file,
      Token&& token = {}) {
    return async_put_object_from_file(bucket, key, std::move(file), PutObjectRequest(),
                                      std::forward<Token>(token));
  }

  // --- DeleteObject (a missing key succeeds, as in S3) ----------------------------------------
  template <typename Token = boost::asio::deferred_t>
  auto async_delete_object(std::string_view bucket, std::string_view key, Token&& token = {}) {
    return boost::asio::async_initiate<Token, void(error_code, DeleteObjectResult)>(
        [impl = impl_](auto h, std::string b, std::string k) {
          start_delete_object(impl, std::move(b), std::move(k), std::move(h));
        },
        token, std::string(bucket), std::string(key));
  }

  // --- ListObjectsV2 --------------------------------------------------------------------------
  template <typename Token = boost::asio::deferred_t>
  auto async_list_objects_v2(std::string_view bucket, ListObjectsRequest request,
                             Token&& token = {}) {
    return boost::asio::async_initiate<Token, void(error_code, ListObjectsResult)>(
        [impl = impl_](auto h, std::string b, ListObjectsRequest r) {
          start_list_objects_v2(impl, std::move(b), std::move(r), std::move(h));
        },
        token, std::string(bucket), std::move(request));
  }

  // --- Streaming download to a file -----------------------------------------------------------
  template <typename Token = boost::asio::deferred_t>
  auto async_download_to_file(std::string_view bucket, std::string_view key,
                              std::filesystem::path file, DownloadRequest request,
                              Token&& token = {}) {
    return boost::asio::async_initiate<Token, void(error_code, DownloadResult)>(
        [impl = impl_](auto h, std::string b, std::string k, std::filesystem::path f,
                       DownloadRequest r) {
          start_download_to_file(impl, std::move(b), std::move(k), std::move(f), std::move(r),
                                 std::move(h));
        },
        token, std::string(bucket), std::string(key), std::move(file), std::move(request));
  }
  template <typename Token = boost::asio::deferred_t>
  requires(!std::is_convertible_v<Token, DownloadRequest>) auto async_download_to_file(
      std::string_view bucket, std::string_view key, std::filesystem::path file,
      Token&& token = {}) {
    return async_download_to_file(bucket, key, std::move(file), DownloadRequest(),
                                  std::forward<Token>(token));
  }

  // --- Multi-range fetch (coalesces nearby ranges into fewer GETs) ----------------------------
  template <typename Token = boost::asio::deferred_t>
  auto async_get_ranges(std::string_view bucket, std::string_view key, GetRangesRequest request,
                        Token&& token = {}) {
    return boost::asio::async_initiate<Token, void(error_code, GetRangesResult)>(
        [impl = impl_](auto h, std::string b, std::string k, GetRangesRequest r) {
          start_get_ranges(impl, std::move(b), std::move(k), std::move(r), std::move(h));
        },
        token, std::string(bucket), std::string(key), std::move(request));
  }

 private:
  using impl_ptr = std::shared_ptr<detail::S3ClientImpl>;
  static void start_get_object(const impl_ptr&, std::string, std::string, GetObjectRequest,
                               handler<GetObjectResult>);
  static void start_head_object(const impl_ptr&, std::string, std::string,
                                handler<HeadObjectResult>);
  static void start_put_object(const impl_ptr&, std::string, std::string, std::string,
                               PutObjectRequest, handler<PutObjectResult>);
  static void start_put_object_from_file(const impl_ptr&, std::string, std::string,
                                         std::filesystem::path, PutObjectRequest,
                                         handler<PutObjectResult>);
  static void start_delete_object(const impl_ptr&, std::string, std::string,
                                  handler<DeleteObjectResult>);
  static void start_list_objects_v2(const impl_ptr&, std::string, ListObjectsRequest,
                                    handler<ListObjectsResult>);
  static void start_download_to_file(const impl_ptr&, std::string, std::string,
                                     std::filesystem::path, DownloadRequest,
                                     handler<DownloadResult>);
  static void start_get_ranges(const impl_ptr&, std::string, std::string, GetRangesRequest,
                               handler<GetRangesResult>);

  impl_ptr impl_;
};

}  // namespace shardy
