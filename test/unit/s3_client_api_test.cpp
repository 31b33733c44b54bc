// The S3Client's public API shape: every completion-token style compiles and completes exactly
// once, with diagnostics, when the server cannot be reached. No network: 127.0.0.1 on a closed
// port.
#include <gtest/gtest.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <shardy/s3_client.hpp>

namespace asio = boost::asio;

namespace {

// A port that nothing listens on: bind, read the port, close.
unsigned short closed_port(asio::io_context& io) {
  asio::ip::tcp::acceptor a(io, {asio::ip::make_address("127.0.0.1"), 0});
  auto port = a.local_endpoint().port();
  a.close();
  return port;
}

shardy::S3Options unreachable_options(asio::io_context& io) {
  shardy::S3Options o;
  o.endpoint = "http://127.0.0.1:" + std::to_string(closed_port(io));
  o.region = "us-east-1";
  o.retry.max_attempts = 2;
  o.retry.base_delay = std::chrono::milliseconds(1);
  o.credentials = shardy::make_static_credentials({"AKID", "SECRET", "", std::nullopt});
  return o;
}

}  // namespace

TEST(S3ClientApi, CallbackCompletesOnceWithError) {
  asio::io_context io;
  shardy::S3Client client(io.get_executor(), unreachable_options(io));
  int calls = 0;
  client.async_get_object("bucket", "key", [&](shardy::error_code ec, shardy::GetObjectResult r) {
    ++calls;
    EXPECT_TRUE(ec);
    EXPECT_FALSE(r.diagnostics.empty());
  });
  io.run();
  EXPECT_EQ(calls, 1);
}

TEST(S3ClientApi, CoroutineAsTupleDeliversDiagnostics) {
  asio::io_context io;
  shardy::S3Client client(io.get_executor(), unreachable_options(io));
  bool done = false;
  auto body = [&]() -> asio::awaitable<void> {
    shardy::HeadObjectResult r;
    shardy::error_code ec;
    std::tie(ec, r) =
        co_await client.async_head_object("bucket", "a/b c", asio::as_tuple(asio::use_awaitable));
    EXPECT_TRUE(ec);
    EXPECT_FALSE(r.diagnostics.empty());
    // Default token (deferred) throws on failure.
    bool threw = false;
    try {
      co_await client.async_delete_object("bucket", "k");
    } catch (const boost::system::system_error& e) {
      threw = true;
      EXPECT_TRUE(e.code());
    }
    EXPECT_TRUE(threw);
    done = true;
  };
  asio::co_spawn(io, body, asio::detached);
  io.run();
  EXPECT_TRUE(done);
}

TEST(S3ClientApi, PutWithRequestAndCallback) {
  asio::io_context io;
  shardy::S3Client client(io.get_executor(), unreachable_options(io));
  shardy::PutObjectRequest req("text/plain", /*create_only=*/true);
  int calls = 0;
  client.async_put_object("bucket", "k", std::string("hello"), req,
                          [&](shardy::error_code ec, shardy::PutObjectResult r) {
                            ++calls;
                            EXPECT_TRUE(ec);
                            EXPECT_TRUE(r.etag.empty());
                          });
  io.run();
  EXPECT_EQ(calls, 1);
}
