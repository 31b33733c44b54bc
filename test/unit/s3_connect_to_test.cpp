// S3Options::connect_to on the wire: an S3Client with virtual-host addressing on an endpoint
// whose names cannot resolve (*.invalid) connects to a capturing HTTP server on 127.0.0.1 and
// sends the request line, Host header and signature of the virtual host.
#include <gtest/gtest.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <cctype>
#include <chrono>
#include <future>
#include <shardy/s3_client.hpp>
#include <string>
#include <thread>
#include <vector>

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

namespace {

// Records the head of every request and answers each with 200 and a fixed body.
class CaptureServer {
 public:
  explicit CaptureServer(asio::io_context& io)
      : acceptor_(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
    asio::co_spawn(io, accept_loop(), asio::detached);
  }
  unsigned short port() const { return acceptor_.local_endpoint().port(); }
  std::vector<std::string> heads;  // touched only on the io thread until it is joined

 private:
  asio::awaitable<void> accept_loop() {
    auto [ec, socket] = co_await acceptor_.async_accept(asio::as_tuple(asio::use_awaitable));
    if (ec) co_return;
    std::string buffer;
    for (;;) {
      auto [rec, n] = co_await asio::async_read_until(
          socket, asio::dynamic_buffer(buffer), "\r\n\r\n", asio::as_tuple(asio::use_awaitable));
      if (rec) co_return;
      heads.push_back(buffer.substr(0, n));
      buffer.erase(0, n);
      std::string response = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nETag: \"e\"\r\n\r\nhello";
      auto [wec, wn] = co_await asio::async_write(socket, asio::buffer(response),
                                                  asio::as_tuple(asio::use_awaitable));
      if (wec) co_return;
    }
  }
  tcp::acceptor acceptor_;
};

std::string header(const std::string& head, const std::string& name) {
  std::string lower;
  for (char c : head)
    lower.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  auto pos = lower.find("\r\n" + name + ":");
  if (pos == std::string::npos) return {};
  pos += 3 + name.size();
  while (pos < head.size() && head[pos] == ' ') ++pos;
  return head.substr(pos, head.find("\r\n", pos) - pos);
}

}  // namespace

TEST(S3ConnectTo, VirtualHostRequestGoesToTheOverrideAddress) {
  asio::io_context io;
  CaptureServer server(io);
  shardy::S3Options o;
  const std::string port = std::to_string(server.port());
  o.endpoint = "http://s3.shardy-test.invalid:" + port;  // .invalid never resolves
  o.addressing = shardy::S3Options::Addressing::virtual_host;
  o.connect_to = "127.0.0.1";
  o.region = "us-east-1";
  o.connect_timeout = 2000ms;
  o.first_byte_timeout = 2000ms;
  o.retry.max_attempts = 1;
  o.credentials = shardy::make_static_credentials({"AKID", "SECRET", "", std::nullopt});
  shardy::S3Client client(io.get_executor(), o);
  auto work = asio::make_work_guard(io);
  std::thread runner([&] { io.run(); });
  std::promise<std::pair<shardy::error_code, std::string>> got;
  std::promise<shardy::error_code> headed;
  // One after the other: the server takes one (keep-alive) connection.
  client.async_get_object(
      "my-bucket", "dir/a b", [&](shardy::error_code ec, shardy::GetObjectResult r) {
        got.set_value({ec, r.body + r.diagnostics});
        client.async_head_object("my-bucket", "k2",
                                 [&](shardy::error_code hec, auto) { headed.set_value(hec); });
      });
  auto get_future = got.get_future();
  auto head_future = headed.get_future();
  const bool ready = head_future.wait_for(10s) == std::future_status::ready;
  work.reset();
  io.stop();
  runner.join();
  ASSERT_TRUE(ready);
  const auto [ec, body] = get_future.get();
  const auto hec = head_future.get();
  ASSERT_FALSE(ec) << ec.message() << ": " << body;
  ASSERT_FALSE(hec) << hec.message();
  EXPECT_EQ(body, "hello");
  ASSERT_EQ(server.heads.size(), 2u);
  const auto& g = server.heads[0];
  EXPECT_EQ(g.substr(0, g.find("\r\n")), "GET /dir/a%20b HTTP/1.1") << g;
  EXPECT_EQ(header(g, "host"), "my-bucket.s3.shardy-test.invalid:" + port) << g;
  EXPECT_NE(header(g, "authorization").find("SignedHeaders=host;"), std::string::npos) << g;
  const auto& h = server.heads[1];
  EXPECT_EQ(h.substr(0, h.find("\r\n")), "HEAD /k2 HTTP/1.1") << h;
  EXPECT_EQ(header(h, "host"), "my-bucket.s3.shardy-test.invalid:" + port) << h;
}
