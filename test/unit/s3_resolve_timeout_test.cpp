// Name resolution is covered by the connect timeout (issue 2): a resolver that hangs ends in
// errc::timeout after about connect_timeout, not when the resolver returns; a failing resolver
// is a connection failure at once; cancelling the operation while it resolves ends it promptly.
// Every new connection resolves the name again (a keep-alive reuse does not), so a changed DNS
// answer is followed when reconnecting. The resolver is substituted through the transport's
// private seam (no DNS; the reconnect tests talk to two tiny HTTP servers on 127.0.0.1).
#include <gtest/gtest.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <thread>

#include "s3/transport.hpp"

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

namespace {

// Hangs for 3 s (like a DNS server that does not answer), then resolves to 127.0.0.1:9.
asio::awaitable<std::vector<tcp::endpoint>> hanging_resolver(std::string, std::string) {
  asio::steady_timer t(co_await asio::this_coro::executor, 3s);
  co_await t.async_wait(asio::use_awaitable);
  co_return std::vector<tcp::endpoint>{tcp::endpoint(asio::ip::make_address("127.0.0.1"), 9)};
}

asio::awaitable<std::vector<tcp::endpoint>> failing_resolver(std::string, std::string) {
  throw boost::system::system_error(asio::error::host_not_found);
  co_return std::vector<tcp::endpoint>{};
}

struct Outcome {
  shardy::error_code ec;
  std::string what;
  std::chrono::milliseconds took{0};
};

class ResolveTimeout : public ::testing::Test {
 protected:
  ResolveTimeout() {
    address_.host = "bucket.s3.example.invalid";
    address_.port = "80";
    address_.tls = false;
    address_.host_header = address_.host;
    address_.path = "/key";
    prepared_.method = "GET";
    prepared_.target = "/key";
    request_.address = &address_;
    request_.prepared = &prepared_;
  }

  // Sends one request on an io_context running on its own thread; `cancel_after` > 0 emits a
  // cancellation that long after the start. Returns as soon as the send completes.
  Outcome send(shardy::s3::Resolver resolver, std::chrono::milliseconds connect_timeout,
               std::chrono::milliseconds cancel_after = 0ms) {
    shardy::S3Options o;
    o.connect_timeout = connect_timeout;
    asio::io_context io;
    auto transport =
        std::make_shared<shardy::s3::Transport>(io.get_executor(), o, std::move(resolver));
    std::promise<Outcome> done;
    asio::cancellation_signal cancel;
    const auto start = std::chrono::steady_clock::now();
    asio::co_spawn(io, transport->send(request_),
                   asio::bind_cancellation_slot(
                       cancel.slot(), [&](std::exception_ptr e, shardy::s3::TransportResponse) {
                         Outcome out;
                         out.took = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::steady_clock::now() - start);
                         try {
                           if (e) std::rethrow_exception(e);
                         } catch (const shardy::error& err) {
                           out.ec = err.code();
                           out.what = err.what();
                         }
                         done.set_value(out);
                       }));
    asio::steady_timer canceller(io);
    if (cancel_after > 0ms) {
      canceller.expires_after(cancel_after);
      canceller.async_wait([&](boost::system::error_code ec) {
        if (!ec) cancel.emit(asio::cancellation_type::terminal);
      });
    }
    std::thread runner([&] { io.run(); });  // ends once the detached resolver is done too
    auto fut = done.get_future();
    const bool ready = fut.wait_for(10s) == std::future_status::ready;
    runner.join();
    EXPECT_TRUE(ready);
    return ready ? fut.get() : Outcome{};
  }

  shardy::s3::Address address_;
  shardy::s3::PreparedRequest prepared_;
  shardy::s3::TransportRequest request_;
};

TEST_F(ResolveTimeout, HangingResolutionTimesOutAfterTheConnectTimeout) {
  const Outcome out = send(hanging_resolver, 300ms);
  EXPECT_EQ(out.ec, make_error_code(shardy::errc::timeout)) << out.what;
  EXPECT_NE(out.what.find("resolving"), std::string::npos) << out.what;
  EXPECT_GE(out.took, 250ms);
  EXPECT_LT(out.took, 2500ms);  // well before the resolver's 3 s
}

TEST_F(ResolveTimeout, FailedResolutionIsNotATimeout) {
  const Outcome out = send(failing_resolver, 5000ms);
  EXPECT_TRUE(out.ec);
  EXPECT_NE(out.ec, make_error_code(shardy::errc::timeout)) << out.what;
  EXPECT_NE(out.what.find("resolving"), std::string::npos) << out.what;
  EXPECT_LT(out.took, 2000ms);
}

TEST_F(ResolveTimeout, CancellationDuringResolutionIsPrompt) {
  const Outcome out = send(hanging_resolver, 0ms /* no connect timeout */, 200ms);
  EXPECT_EQ(out.ec, make_error_code(shardy::errc::cancelled)) << out.what;
  EXPECT_GE(out.took, 150ms);
  EXPECT_LT(out.took, 2500ms);
}

// --- re-resolution on reconnect -------------------------------------------------------------

// A minimal HTTP/1.1 server on 127.0.0.1: answers every request (no body expected) with its own
// name as the body, keeping the connection open or closing it after each response.
class NameServer {
 public:
  NameServer(asio::io_context& io, std::string name, bool keep_alive)
      : acceptor_(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)),
        name_(std::move(name)),
        keep_alive_(keep_alive) {
    asio::co_spawn(io, accept_loop(), asio::detached);
  }
  unsigned short port() const { return acceptor_.local_endpoint().port(); }
  void close() {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
  }
  int accepted = 0;
  int requests = 0;

 private:
  asio::awaitable<void> accept_loop() {
    for (;;) {
      auto [ec, socket] = co_await acceptor_.async_accept(asio::as_tuple(asio::use_awaitable));
      if (ec) co_return;
      ++accepted;
      auto conn = serve(std::move(socket));
      asio::co_spawn(acceptor_.get_executor(), std::move(conn), asio::detached);
    }
  }
  asio::awaitable<void> serve(tcp::socket socket) {
    std::string buffer;
    for (;;) {
      auto [ec, n] = co_await asio::async_read_until(
          socket, asio::dynamic_buffer(buffer), "\r\n\r\n", asio::as_tuple(asio::use_awaitable));
      if (ec) co_return;
      buffer.erase(0, n);
      ++requests;
      std::string response = "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(name_.size()) +
                             (keep_alive_ ? "\r\n\r\n" : "\r\nConnection: close\r\n\r\n") + name_;
      auto [wec, wn] = co_await asio::async_write(socket, asio::buffer(response),
                                                  asio::as_tuple(asio::use_awaitable));
      if (wec || !keep_alive_) co_return;
    }
  }

  tcp::acceptor acceptor_;
  std::string name_;
  bool keep_alive_;
};

// Answers the n-th lookup with the n-th port (the last one repeated), like a DNS record that
// changes between lookups; counts lookups.
struct ChangingDns {
  std::vector<unsigned short> ports;
  std::vector<std::string> hosts_asked;
};

asio::awaitable<std::vector<tcp::endpoint>> changing_lookup(std::shared_ptr<ChangingDns> dns,
                                                            std::string host, std::string) {
  const std::size_t n = std::min(dns->hosts_asked.size(), dns->ports.size() - 1);
  dns->hosts_asked.push_back(host);
  std::vector<tcp::endpoint> out;
  out.emplace_back(asio::ip::make_address("127.0.0.1"), dns->ports[n]);
  co_return out;
}

class ReResolve : public ResolveTimeout {
 protected:
  // Sends `count` requests one after another through one transport; returns their bodies.
  std::vector<std::string> send_sequence(const std::shared_ptr<ChangingDns>& dns, int count,
                                         std::uint64_t* connections) {
    shardy::S3Options o;
    o.connect_timeout = 2000ms;
    o.first_byte_timeout = 2000ms;
    asio::io_context io;
    auto lookup = [dns](std::string host, std::string port) {
      return changing_lookup(dns, std::move(host), std::move(port));
    };
    auto transport = std::make_shared<shardy::s3::Transport>(io.get_executor(), o, lookup);
    std::vector<std::string> bodies;
    auto requests = [&]() -> asio::awaitable<void> {
      for (int i = 0; i < count; ++i) {
        auto response = co_await transport->send(request_);
        bodies.push_back(response.body);
      }
    };
    bool done = false;
    std::exception_ptr failure;
    asio::co_spawn(io, requests(), [&](std::exception_ptr e) {
      failure = e;
      done = true;
      io.stop();  // keep-alive connections would keep the servers' readers waiting
    });
    servers_ = std::make_unique<std::pair<NameServer, NameServer>>(
        std::piecewise_construct, std::forward_as_tuple(io, "A", keep_alive_),
        std::forward_as_tuple(io, "B", keep_alive_));
    dns->ports = {servers_->first.port(), servers_->second.port()};
    io.run_for(10s);
    EXPECT_TRUE(done);
    if (failure) {
      try {
        std::rethrow_exception(failure);
      } catch (const std::exception& e) {
        ADD_FAILURE() << e.what();
      }
    }
    *connections = transport->connections_opened();
    accepted_a_ = servers_->first.accepted;
    accepted_b_ = servers_->second.accepted;
    transport.reset();
    servers_.reset();
    return bodies;
  }

  bool keep_alive_ = true;
  int accepted_a_ = 0;
  int accepted_b_ = 0;
  std::unique_ptr<std::pair<NameServer, NameServer>> servers_;
};

TEST_F(ReResolve, EveryNewConnectionLooksTheNameUpAgain) {
  keep_alive_ = false;  // the server closes each connection: every request reconnects
  auto dns = std::make_shared<ChangingDns>();
  std::uint64_t connections = 0;
  const auto bodies = send_sequence(dns, 3, &connections);
  // The first lookup named server A, the later ones B: the reconnects followed the change.
  EXPECT_EQ(bodies, (std::vector<std::string>{"A", "B", "B"}));
  EXPECT_EQ(dns->hosts_asked.size(), 3u);
  for (const auto& h : dns->hosts_asked) EXPECT_EQ(h, "bucket.s3.example.invalid");
  EXPECT_EQ(connections, 3u);
  EXPECT_EQ(accepted_a_, 1);
  EXPECT_EQ(accepted_b_, 2);
}

TEST_F(ReResolve, AReusedKeepAliveConnectionIsNotLookedUpAgain) {
  keep_alive_ = true;
  auto dns = std::make_shared<ChangingDns>();
  std::uint64_t connections = 0;
  const auto bodies = send_sequence(dns, 3, &connections);
  EXPECT_EQ(bodies, (std::vector<std::string>{"A", "A", "A"}));
  EXPECT_EQ(dns->hosts_asked.size(), 1u);
  EXPECT_EQ(connections, 1u);
  EXPECT_EQ(accepted_a_, 1);
  EXPECT_EQ(accepted_b_, 0);
}

TEST_F(ReResolve, TheSystemResolverLooksUpLocalhost) {
  // No seam: Asio's resolver (getaddrinfo, /etc/hosts) runs detached under the connect timeout.
  asio::io_context io;
  NameServer server(io, "A", true);
  address_.host = "localhost";
  address_.port = std::to_string(server.port());
  address_.host_header = address_.host + ":" + address_.port;
  shardy::S3Options o;
  o.connect_timeout = 5000ms;
  o.first_byte_timeout = 5000ms;
  auto transport = std::make_shared<shardy::s3::Transport>(io.get_executor(), o);
  std::string body;
  std::exception_ptr failure;
  bool done = false;
  asio::co_spawn(io, transport->send(request_),
                 [&](std::exception_ptr e, shardy::s3::TransportResponse r) {
                   failure = e;
                   body = r.body;
                   done = true;
                   io.stop();
                 });
  io.run_for(10s);
  ASSERT_TRUE(done);
  if (failure) {
    try {
      std::rethrow_exception(failure);
    } catch (const std::exception& e) {
      FAIL() << e.what();
    }
  }
  EXPECT_EQ(body, "A");
  EXPECT_EQ(server.accepted, 1);
  EXPECT_EQ(transport->connections_opened(), 1u);
}

}  // namespace
