// The S3 test server of the CTest fixture "s3server" (test/s3server), as the integration tests
// see it: endpoints and keys from its info file, its admin API (request counts, fault scripts),
// and a base fixture that runs an io_context on a thread for S3Client calls.
#pragma once

#include <gtest/gtest.h>

#include <boost/asio/async_result.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <filesystem>
#include <future>
#include <memory>
#include <optional>
#include <shardy/s3_client.hpp>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace shardy::test {

/// Completion token: the operation returns std::future<std::tuple<error_code, R>> (Boost 1.81's
/// as_tuple(use_future) does not compile). The result arrives even on failure, diagnostics
/// included.
struct use_future_tuple_t {};
inline constexpr use_future_tuple_t use_future_tuple{};

struct S3ServerInfo {
  std::string endpoint;        // http://127.0.0.1:PORT, SigV4-verifying front end
  std::string fault_endpoint;  // http://127.0.0.1:PORT, fault-injecting proxy in front of it
  std::string region;
  std::string access_key;
  std::string secret_key;
  std::string session_access_key;
  std::string session_secret_key;
  std::string session_token;
  std::string bucket;
  std::uint16_t port = 0;
  std::uint16_t fault_port = 0;
};

/// Reads $SHARDY_S3SERVER_INFO, else <build>/s3server/s3server.json (written by fixture.sh).
/// Throws std::runtime_error with a hint when the fixture did not run.
const S3ServerInfo& s3server();

/// Counts of requests the server saw whose raw path starts with `path_prefix`
/// ("/bucket/prefix/"), as recorded by the front end ("front") or the fault proxy ("proxy").
struct RequestStats {
  unsigned requests = 0;
  unsigned connections = 0;  // distinct client connections those requests came on
  unsigned faults = 0;       // proxy only: requests that had a fault injected
};
RequestStats request_stats(std::string_view path_prefix, std::string_view via = "front",
                           std::string_view method = {});

/// One fault of the proxy's script; see test/s3server/README.md.
struct Fault {
  std::string kind;  // status, reset_before_response, close_before_response, reset_mid_body,
                     // short_body, stall, stall_mid_body
  unsigned status = 0;
  std::string code;
  unsigned ms = 0;
  std::optional<std::uint64_t> after_bytes;

  static Fault http_status(unsigned s, std::string c = {}) {
    Fault f;
    f.kind = "status";
    f.status = s;
    f.code = std::move(c);
    return f;
  }
  static Fault of(std::string k) {
    Fault f;
    f.kind = std::move(k);
    return f;
  }
  static Fault cut(std::string k, std::uint64_t after) {
    Fault f;
    f.kind = std::move(k);
    f.after_bytes = after;
    return f;
  }
  static Fault stall(unsigned ms_, std::optional<std::uint64_t> after = std::nullopt) {
    Fault f;
    f.kind = after ? "stall_mid_body" : "stall";
    f.ms = ms_;
    f.after_bytes = after;
    return f;
  }
};

/// The next requests through the fault proxy whose path starts with `path_prefix` (and whose
/// method is `method`, if given) get these faults, one each, in order.
/// `query_contains`, if given, must occur in the raw query string.
void inject_faults(std::string_view path_prefix, const std::vector<Fault>& faults,
                   std::string_view method = {}, std::string_view query_contains = {});
/// Faults not yet used / removed, of the rules whose prefix starts with `path_prefix` (and whose
/// query filter is `query_contains`, if given).
unsigned pending_faults(std::string_view path_prefix, std::string_view query_contains = {});
void clear_faults(std::string_view path_prefix, std::string_view query_contains = {});

/// "<test-name>-<random>": a key prefix of its own for each test (tests run in parallel).
std::string unique_prefix();

/// Deterministic pseudo-random bytes.
std::string random_bytes(std::size_t n, std::uint64_t seed);
std::string sha256_hex(std::string_view data);
std::string sha256_file_hex(const std::filesystem::path& p);

/// Base fixture: an io_context running on its own thread, and S3 options for the server.
class S3ServerTest : public ::testing::Test {
 protected:
  S3ServerTest();
  ~S3ServerTest() override;

  /// Path-style, static keys of the fixture, plain http to the front end (or the fault proxy);
  /// short retry delays so that fault tests stay fast.
  S3Options options(bool via_fault_proxy = false) const;
  S3Client client(bool via_fault_proxy = false);
  S3Client client(S3Options o);

  /// Runs one operation to completion and returns std::tuple<error_code, R>:
  ///   call([&](auto tok) { return c.async_x(..., tok); })
  template <typename Start>
  auto call(Start start) {
    return start(use_future_tuple).get();
  }

  /// "/bucket/prefix/" for request_stats / inject_faults.
  std::string path_prefix() const { return "/" + bucket + "/" + prefix + "/"; }
  std::string key(std::string_view name) const { return prefix + "/" + std::string(name); }

  const S3ServerInfo& info;
  std::string bucket;
  std::string prefix;
  boost::asio::io_context io;

 private:
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  std::thread thread_;
};

}  // namespace shardy::test

template <typename R>
struct boost::asio::async_result<shardy::test::use_future_tuple_t, void(shardy::error_code, R)> {
  using return_type = std::future<std::tuple<shardy::error_code, R>>;

  template <typename Initiation, typename Token, typename... Args>
  static return_type initiate(Initiation&& initiation, Token&&, Args&&... args) {
    auto promise = std::make_shared<std::promise<std::tuple<shardy::error_code, R>>>();
    auto future = promise->get_future();
    std::forward<Initiation>(initiation)(
        [promise](shardy::error_code ec, R r) {
          promise->set_value({ec, std::move(r)});
        },
        std::forward<Args>(args)...);
    return future;
  }
};
