// The one translation unit with Beast and TLS in it (see transport.hpp).
#include "s3/transport.hpp"

#include <fcntl.h>
#include <openssl/ssl.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <map>
#include <mutex>
#include <shardy/error.hpp>
#include <variant>
#include <vector>

namespace shardy::s3 {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using steady = std::chrono::steady_clock;

namespace {

constexpr std::size_t kStreamChunk = 1u << 20;     // download / upload chunk
constexpr std::uint64_t kMaxErrorBody = 1u << 20;  // error documents are small

struct Connection {
  std::optional<beast::tcp_stream> tcp;
  std::optional<beast::ssl_stream<beast::tcp_stream>> tls;
  beast::flat_buffer buffer;
  steady::time_point idle_since;

  beast::tcp_stream& lowest() { return tls ? beast::get_lowest_layer(*tls) : *tcp; }
  void close() {
    beast::error_code ignored;
    lowest().socket().shutdown(tcp::socket::shutdown_both, ignored);
    lowest().socket().close(ignored);
  }
};

using Permits = asio::experimental::concurrent_channel<void(boost::system::error_code)>;

// Per endpoint (host, port, tls): idle keep-alive connections and the permits that bound the
// number of open connections (a permit is held while a connection is busy; idle connections
// are only ever created from busy ones, so open = busy + idle <= max).
struct Pool {
  Pool(const asio::any_io_executor& ex, std::size_t max) : permits(ex, max) {
    for (std::size_t i = 0; i < max; ++i) permits.try_send(boost::system::error_code{});
  }
  std::mutex mutex;
  std::vector<std::unique_ptr<Connection>> idle;  // most recently used at the back
  Permits permits;
};

// Returns the permit when the exchange ends, however it ends.
struct PermitGuard {
  Pool* pool = nullptr;
  ~PermitGuard() {
    if (pool) pool->permits.try_send(boost::system::error_code{});
  }
};

bool is_cancelled_code(const boost::system::error_code& ec) {
  return ec == asio::error::operation_aborted;
}

[[noreturn]] void throw_transport(const boost::system::error_code& ec, std::string_view stage,
                                  const Address& a, bool cancelled) {
  std::string where = std::string(stage) + " " + (a.tls ? "https://" : "http://") + a.host_header;
  if (cancelled || is_cancelled_code(ec)) {
    throw error(errc::cancelled, where + ": cancelled");
  }
  if (ec == beast::error::timeout) throw error(errc::timeout, where + ": timed out");
  if (ec == http::error::partial_message) {
    throw error(errc::truncated_body,
                where + ": connection closed before the whole body (Content-Length) arrived");
  }
  if (ec.category() == asio::error::get_ssl_category() ||
      ec == asio::ssl::error::stream_truncated) {
    if (ec == asio::ssl::error::stream_truncated) {
      throw error(errc::connection_failed, where + ": TLS stream truncated");
    }
    throw error(errc::tls_error, where + ": " + ec.message());
  }
  if (ec.category() == http::make_error_code(http::error::end_of_stream).category() &&
      ec != http::error::end_of_stream) {
    throw error(errc::protocol_error, where + ": malformed HTTP response: " + ec.message());
  }
  throw error(errc::connection_failed, where + ": " + ec.message());
}

void append_header(std::string& out, std::string_view name, std::string_view value) {
  for (char c : value) {
    if (c == '\r' || c == '\n' || c == '\0') {
      throw error(errc::invalid_argument,
                  "header " + std::string(name) + " contains a line break or NUL");
    }
  }
  out += name;
  out += ": ";
  out += value;
  out += "\r\n";
}

std::string request_head(const TransportRequest& r, std::uint64_t body_size, bool send_length) {
  const auto& p = *r.prepared;
  std::string head;
  head.reserve(512 + p.target.size());
  head += p.method;
  head += ' ';
  head += p.target;
  head += " HTTP/1.1\r\n";
  for (const auto& [k, v] : p.headers) append_header(head, k, v);
  head += "user-agent: shardy/0.1\r\n";
  if (send_length) {
    head += "content-length: ";
    head += std::to_string(body_size);
    head += "\r\n";
  }
  head += "\r\n";
  return head;
}

template <typename Fields>
void fill_head(ResponseHead& h, const http::response_header<Fields>& m, bool keep_alive) {
  h.status = m.result_int();
  h.keep_alive = keep_alive;
  auto get = [&](std::string_view name) {
    auto it = m.find(name);
    return it == m.end() ? std::string() : std::string(it->value());
  };
  h.etag = get("ETag");
  h.content_type = get("Content-Type");
  h.content_range = get("Content-Range");
  h.last_modified = get("Last-Modified");
  h.request_id = get("x-amz-request-id");
}

// Closes the file descriptor on scope exit.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

asio::awaitable<std::vector<tcp::endpoint>> system_resolve(std::string host, std::string port) {
  tcp::resolver resolver(co_await asio::this_coro::executor);
  const auto results = co_await resolver.async_resolve(host, port, asio::use_awaitable);
  std::vector<tcp::endpoint> out;
  for (const auto& r : results) out.push_back(r.endpoint());
  co_return out;
}

// The detached half of a resolution. It owns copies of everything it uses (the resolver
// function included), so it may outlive the transport and the request that started it.
asio::awaitable<std::vector<tcp::endpoint>> run_resolver(Resolver resolver, std::string host,
                                                         std::string port) {
  if (!resolver) {
    auto op = system_resolve(std::move(host), std::move(port));
    co_return co_await std::move(op);
  }
  auto op = resolver(std::move(host), std::move(port));
  co_return co_await std::move(op);
}

// Where a detached resolution delivers its outcome (thread-safe, capacity 1).
using ResolveChannel = asio::experimental::concurrent_channel<void(boost::system::error_code,
                                                                   std::vector<tcp::endpoint>)>;

boost::system::error_code code_of(std::exception_ptr e) {
  try {
    std::rethrow_exception(e);
  } catch (const boost::system::system_error& se) {  // shardy::error too
    return se.code();
  } catch (...) {
    return asio::error::host_not_found;
  }
}

}  // namespace

struct Transport::Impl : std::enable_shared_from_this<Impl> {
  Impl(asio::any_io_executor ex, const S3Options& o, Resolver r)
      : executor(std::move(ex)),
        options(o),
        ssl(asio::ssl::context::tls_client),
        resolver(std::move(r)) {
    ssl.set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                    asio::ssl::context::no_sslv3);
    boost::system::error_code ec;
    if (options.verify_tls) {
      ssl.set_verify_mode(asio::ssl::verify_peer);
      if (!options.ca_file.empty()) {
        ssl.load_verify_file(options.ca_file, ec);
        if (ec) {
          throw error(errc::tls_error,
                      "cannot load CA file '" + options.ca_file + "': " + ec.message());
        }
      } else {
        ssl.set_default_verify_paths(ec);
        if (ec) throw error(errc::tls_error, "cannot load the system CA store: " + ec.message());
      }
    } else {
      ssl.set_verify_mode(asio::ssl::verify_none);
    }
  }

  ~Impl() {
    for (auto& [key, pool] : pools) {
      for (auto& c : pool->idle) c->close();
    }
  }

  Pool& pool_for(const Address& a) {
    std::string key;
    key.reserve(a.host.size() + a.port.size() + 8);
    key += a.tls ? "https " : "http ";
    key += a.host;
    key += ' ';
    key += a.port;
    if (!a.connect_host.empty()) {  // S3Options::connect_to
      key += " via ";
      key += a.connect_host;
      key += ' ';
      key += a.connect_port;
    }
    std::lock_guard lock(pools_mutex);
    auto it = pools.find(key);
    if (it == pools.end()) {
      std::size_t max =
          options.max_connections_per_endpoint ? options.max_connections_per_endpoint : 1;
      it = pools.emplace(std::move(key), std::make_unique<Pool>(executor, max)).first;
    }
    return *it->second;
  }

  std::unique_ptr<Connection> take_idle(Pool& pool) {
    std::vector<std::unique_ptr<Connection>> expired;
    std::unique_ptr<Connection> out;
    {
      std::lock_guard lock(pool.mutex);
      auto now = steady::now();
      while (!pool.idle.empty()) {
        auto c = std::move(pool.idle.back());
        pool.idle.pop_back();
        if (now - c->idle_since > options.idle_timeout) {
          expired.push_back(std::move(c));
          continue;
        }
        out = std::move(c);
        break;
      }
      // Older idle connections (at the front) may have expired too.
      while (!pool.idle.empty() && now - pool.idle.front()->idle_since > options.idle_timeout) {
        expired.push_back(std::move(pool.idle.front()));
        pool.idle.erase(pool.idle.begin());
      }
    }
    for (auto& c : expired) c->close();
    return out;
  }

  void give_back(Pool& pool, std::unique_ptr<Connection> c) {
    c->idle_since = steady::now();
    std::lock_guard lock(pool.mutex);
    pool.idle.push_back(std::move(c));
  }

  // The expiry for the next step: min(now + step, deadline).
  static steady::time_point expiry(std::chrono::milliseconds step, steady::time_point deadline) {
    auto t = step.count() > 0 ? steady::now() + step : steady::time_point::max();
    return t < deadline ? t : deadline;
  }
  static void arm(beast::tcp_stream& s, steady::time_point t) {
    if (t == steady::time_point::max()) {
      s.expires_never();
    } else {
      s.expires_at(t);
    }
  }

  // Name resolution under the connect timeout. getaddrinfo cannot be interrupted (cancelling
  // Asio's resolver does not stop a lookup that has started), so it runs detached and hands its
  // outcome over through a channel that is raced against a timer; on timeout or cancellation
  // the late outcome is dropped with the channel. IP literals need no lookup.
  asio::awaitable<std::vector<tcp::endpoint>> resolve(const Address& a,
                                                      steady::time_point connect_deadline) {
    const std::string& host = a.connect_host.empty() ? a.host : a.connect_host;
    const std::string& port = a.connect_host.empty() ? a.port : a.connect_port;
    if (!resolver) {
      boost::system::error_code addr_ec;
      const auto ip = asio::ip::make_address(host, addr_ec);
      unsigned short port_number = 0;
      const auto [end, pec] = std::from_chars(port.data(), port.data() + port.size(), port_number);
      if (!addr_ec && pec == std::errc() && end == port.data() + port.size() && port_number > 0) {
        std::vector<tcp::endpoint> out;
        out.emplace_back(ip, static_cast<unsigned short>(port_number));
        co_return out;
      }
    }
    auto channel = std::make_shared<ResolveChannel>(executor, 1);
    auto op = run_resolver(resolver, host, port);
    auto deliver = [channel](std::exception_ptr e, std::vector<tcp::endpoint> eps) {
      const auto ec = e ? code_of(e) : boost::system::error_code();
      channel->try_send(ec, std::move(eps));
    };
    asio::co_spawn(executor, std::move(op), std::move(deliver));
    asio::steady_timer timer(executor);
    timer.expires_at(connect_deadline);
    using namespace asio::experimental::awaitable_operators;
    auto received = channel->async_receive(asio::as_tuple(asio::use_awaitable));
    auto expired = timer.async_wait(asio::as_tuple(asio::use_awaitable));
    auto first = std::move(received) || std::move(expired);
    auto outcome = co_await std::move(first);
    if (outcome.index() == 1) {
      const auto [tec] = std::get<1>(outcome);
      // The timer ran out (timeout) or the caller cancelled the operation.
      if (tec) throw_transport(tec, "resolving", a, true);
      throw_transport(beast::error::timeout, "resolving", a, false);
    }
    auto [rec, endpoints] = std::move(std::get<0>(outcome));
    if (rec) {
      // The receive is only ever cancelled by the caller (the timer cannot win and cancel it).
      const bool cancelled =
          is_cancelled_code(rec) || rec == asio::experimental::error::channel_cancelled;
      throw_transport(rec, "resolving", a, cancelled);
    }
    if (endpoints.empty()) throw_transport(asio::error::host_not_found, "resolving", a, false);
    co_return endpoints;
  }

  asio::awaitable<std::unique_ptr<Connection>> connect(const Address& a,
                                                       steady::time_point deadline) {
    auto c = std::make_unique<Connection>();
    c->buffer.reserve(16 * 1024);  // header + a small body in one read
    // One connect timeout covers the lookup and the TCP connect (every new connection
    // resolves the name again: DNS changes are seen when reconnecting).
    const auto connect_deadline = expiry(options.connect_timeout, deadline);
    const std::vector<tcp::endpoint> results = co_await resolve(a, connect_deadline);
    if (a.tls) {
      c->tls.emplace(executor, ssl);
    } else {
      c->tcp.emplace(executor);
    }
    auto& low = c->lowest();
    arm(low, connect_deadline);
    auto [cec, ep] = co_await low.async_connect(results, asio::as_tuple(asio::use_awaitable));
    if (cec) throw_transport(cec, "connecting to", a, false);
    boost::system::error_code ignored;
    low.socket().set_option(tcp::no_delay(true), ignored);
    if (a.tls) {
      boost::system::error_code addr_ec;
      asio::ip::make_address(a.host, addr_ec);
      if (addr_ec) {  // SNI only for names, never for IP literals
        if (!SSL_set_tlsext_host_name(c->tls->native_handle(), a.host.c_str())) {
          throw error(errc::tls_error, "cannot set TLS SNI host name " + a.host);
        }
      }
      if (options.verify_tls) {
        c->tls->set_verify_callback(asio::ssl::host_name_verification(a.host));
      }
      arm(low, expiry(options.connect_timeout, deadline));
      auto [hec] = co_await c->tls->async_handshake(asio::ssl::stream_base::client,
                                                    asio::as_tuple(asio::use_awaitable));
      if (hec) {
        if (hec == beast::error::timeout || is_cancelled_code(hec)) {
          throw_transport(hec, "TLS handshake with", a, false);
        }
        throw error(errc::tls_error,
                    "TLS handshake with https://" + a.host_header + ": " + hec.message());
      }
    }
    ++connects;
    co_return c;
  }

  // Sends the request and reads the response on `s`. `response_started` is set once any byte
  // of the response header has been parsed (after which a resend is never transparent).
  template <typename Stream>
  asio::awaitable<void> exchange(Stream& s, Connection& c, const TransportRequest& r,
                                 TransportResponse& out, bool& response_started, bool& reusable) {
    auto& low = c.lowest();
    const auto idle = options.first_byte_timeout;
    const bool has_file = r.body_file != nullptr;
    const std::uint64_t body_size = has_file ? r.body_file_size : r.body.size();
    const bool send_length =
        body_size > 0 || r.prepared->method == "PUT" || r.prepared->method == "POST";
    std::string head = request_head(r, body_size, send_length);

    // --- write -----------------------------------------------------------------------------
    if (!has_file) {
      std::array<asio::const_buffer, 2> bufs{asio::buffer(head), asio::buffer(r.body)};
      arm(low, expiry(idle, r.deadline));
      auto [wec, n] = co_await asio::async_write(s, bufs, asio::as_tuple(asio::use_awaitable));
      if (wec) throw_transport(wec, "sending to", *r.address, false);
    } else {
      Fd fd{::open(r.body_file->c_str(), O_RDONLY | O_CLOEXEC)};
      if (fd.fd < 0) {
        throw error(errc::io_error,
                    "cannot open " + r.body_file->string() + ": " + std::strerror(errno));
      }
      arm(low, expiry(idle, r.deadline));
      auto [hec, hn] =
          co_await asio::async_write(s, asio::buffer(head), asio::as_tuple(asio::use_awaitable));
      if (hec) throw_transport(hec, "sending to", *r.address, false);
      std::vector<char> chunk(kStreamChunk);
      std::uint64_t sent = 0;
      while (sent < body_size) {
        auto want =
            static_cast<std::size_t>(std::min<std::uint64_t>(chunk.size(), body_size - sent));
        ssize_t got = ::pread(fd.fd, chunk.data(), want, static_cast<off_t>(sent));
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) {
          throw error(errc::io_error, "reading " + r.body_file->string() + ": " +
                                          (got < 0 ? std::strerror(errno) : "file shrank"));
        }
        arm(low, expiry(idle, r.deadline));
        auto [wec, wn] =
            co_await asio::async_write(s, asio::buffer(chunk.data(), static_cast<std::size_t>(got)),
                                       asio::as_tuple(asio::use_awaitable));
        if (wec) throw_transport(wec, "sending to", *r.address, false);
        sent += static_cast<std::uint64_t>(got);
      }
    }

    // --- response header -------------------------------------------------------------------
    http::response_parser<http::empty_body> hp;
    hp.body_limit(std::numeric_limits<std::uint64_t>::max());
    hp.header_limit(64 * 1024);
    if (r.head) hp.skip(true);
    arm(low, expiry(idle, r.deadline));
    auto [hec, hn] =
        co_await http::async_read_header(s, c.buffer, hp, asio::as_tuple(asio::use_awaitable));
    if (hec) {
      response_started = hn > 0 || c.buffer.size() > 0;
      throw_transport(hec, "reading the response from", *r.address, false);
    }
    response_started = true;
    const auto& msg = hp.get();
    out.head.status = msg.result_int();
    if (auto len = hp.content_length()) out.head.content_length = *len;
    fill_head(out.head, msg.base(), hp.keep_alive());
    const bool ok = out.head.status >= 200 && out.head.status < 300;

    // --- body ------------------------------------------------------------------------------
    if (hp.is_done()) {
      reusable = hp.keep_alive();
      co_return;
    }
    if (auto len = hp.content_length(); len && !hp.chunked()) {
      // Content-Length body: read it straight from the socket into its destination (the
      // parser would copy every byte through the connection buffer in small reads).
      reusable = hp.keep_alive();
      co_await read_sized_body(s, c, r, out, *len, ok, reusable);
      co_return;
    }
    if (ok && r.sink) {
      r.sink->begin(out.head);
      http::response_parser<http::buffer_body> bp(std::move(hp));
      std::vector<char> chunk(kStreamChunk);
      while (!bp.is_done()) {
        bp.get().body().data = chunk.data();
        bp.get().body().size = chunk.size();
        arm(low, expiry(idle, r.deadline));
        auto [rec, rn] =
            co_await http::async_read_some(s, c.buffer, bp, asio::as_tuple(asio::use_awaitable));
        if (rec && rec != http::error::need_buffer) {
          throw_transport(rec, "reading the body from", *r.address, false);
        }
        std::size_t got = chunk.size() - bp.get().body().size;
        if (got) r.sink->write(chunk.data(), got);
      }
      reusable = bp.keep_alive();
      co_return;
    }
    http::response_parser<http::string_body> sp(std::move(hp));
    if (!ok) sp.body_limit(kMaxErrorBody);
    while (!sp.is_done()) {
      arm(low, expiry(idle, r.deadline));
      auto [rec, rn] =
          co_await http::async_read_some(s, c.buffer, sp, asio::as_tuple(asio::use_awaitable));
      if (rec) {
        if (rec == http::error::body_limit) {
          throw error(errc::protocol_error, "error response body from " + r.address->host_header +
                                                " larger than " + std::to_string(kMaxErrorBody));
        }
        throw_transport(rec, "reading the body from", *r.address, false);
      }
    }
    reusable = sp.keep_alive();
    out.body = std::move(sp.get().body());
  }

  template <typename Stream>
  asio::awaitable<void> read_sized_body(Stream& s, Connection& c, const TransportRequest& r,
                                        TransportResponse& out, std::uint64_t len, bool ok,
                                        bool& reusable) {
    auto& low = c.lowest();
    const auto idle = options.first_byte_timeout;
    // Bytes of the body that arrived with the header.
    auto leftover = [&](char* dst, std::uint64_t want) -> std::size_t {
      auto avail = static_cast<std::uint64_t>(c.buffer.size());
      std::size_t n = static_cast<std::size_t>(std::min(avail, want));
      if (n) {
        asio::buffer_copy(asio::buffer(dst, n), c.buffer.data());
        c.buffer.consume(n);
      }
      return n;
    };
    auto short_body = [&](std::uint64_t got) {
      throw error(errc::truncated_body, "reading the body from " + r.address->host_header +
                                            ": connection closed after " + std::to_string(got) +
                                            " of " + std::to_string(len) +
                                            " bytes (Content-Length)");
    };
    if (ok && r.sink) {
      r.sink->begin(out.head);
      std::vector<char> chunk(static_cast<std::size_t>(std::min<std::uint64_t>(kStreamChunk, len)));
      std::uint64_t got = 0;
      while (got < len) {
        auto want = std::min<std::uint64_t>(chunk.size(), len - got);
        std::size_t n = leftover(chunk.data(), want);
        if (n == 0) {
          arm(low, expiry(idle, r.deadline));
          auto [rec, rn] =
              co_await s.async_read_some(asio::buffer(chunk.data(), static_cast<std::size_t>(want)),
                                         asio::as_tuple(asio::use_awaitable));
          if (rec == asio::error::eof || (rec == asio::ssl::error::stream_truncated))
            short_body(got);
          if (rec) throw_transport(rec, "reading the body from", *r.address, false);
          n = rn;
        }
        r.sink->write(chunk.data(), n);
        got += n;
      }
    } else {
      if (!ok && len > kMaxErrorBody) {
        throw error(errc::protocol_error, "error response body from " + r.address->host_header +
                                              " larger than " + std::to_string(kMaxErrorBody));
      }
      out.body.resize(static_cast<std::size_t>(len));
      std::uint64_t got = leftover(out.body.data(), len);
      while (got < len) {
        arm(low, expiry(idle, r.deadline));
        auto [rec, rn] = co_await s.async_read_some(
            asio::buffer(out.body.data() + got, static_cast<std::size_t>(len - got)),
            asio::as_tuple(asio::use_awaitable));
        if (rec == asio::error::eof || (rec == asio::ssl::error::stream_truncated)) short_body(got);
        if (rec) throw_transport(rec, "reading the body from", *r.address, false);
        got += rn;
      }
    }
    // Anything beyond the body is not ours to interpret: don't reuse the connection.
    if (c.buffer.size() != 0) reusable = false;
  }

  asio::awaitable<TransportResponse> send(const TransportRequest& r) {
    Pool& pool = pool_for(*r.address);
    auto [pec] = co_await pool.permits.async_receive(asio::as_tuple(asio::use_awaitable));
    if (pec) throw_transport(pec, "waiting for a connection to", *r.address, true);
    PermitGuard permit{&pool};

    std::unique_ptr<Connection> c = take_idle(pool);
    bool reused = c != nullptr;
    for (;;) {
      if (!c) c = co_await connect(*r.address, r.deadline);
      TransportResponse out;
      bool response_started = false;
      bool reusable = false;
      std::exception_ptr failure;
      errc code{};
      try {
        if (c->tls) {
          co_await exchange(*c->tls, *c, r, out, response_started, reusable);
        } else {
          co_await exchange(*c->tcp, *c, r, out, response_started, reusable);
        }
      } catch (const error& e) {
        failure = std::current_exception();
        code = static_cast<errc>(e.code().value());
      } catch (...) {
        failure = std::current_exception();
      }
      if (!failure) {
        if (reusable) {
          give_back(pool, std::move(c));
        } else {
          c->close();
        }
        co_return out;
      }
      c->close();  // a connection that failed is never reused
      c.reset();
      // A pooled connection the server had already closed: resend once on a new one.
      if (reused && !response_started && code == errc::connection_failed) {
        reused = false;
        continue;
      }
      std::rethrow_exception(failure);
    }
  }

  asio::any_io_executor executor;
  S3Options options;
  asio::ssl::context ssl;
  Resolver resolver;
  std::mutex pools_mutex;
  std::map<std::string, std::unique_ptr<Pool>, std::less<>> pools;
  std::atomic<std::uint64_t> connects{0};
};

Transport::Transport(asio::any_io_executor executor, const S3Options& options, Resolver resolver)
    : impl_(std::make_shared<Impl>(std::move(executor), options, std::move(resolver))) {}

Transport::~Transport() = default;

asio::awaitable<TransportResponse> Transport::send(const TransportRequest& request) {
  auto impl = impl_;  // keep the pools alive while the exchange runs
  co_return co_await impl->send(request);
}

std::uint64_t Transport::connections_opened() const noexcept { return impl_->connects.load(); }

std::size_t Transport::idle_connections() const {
  std::lock_guard lock(impl_->pools_mutex);
  std::size_t n = 0;
  for (auto& [k, p] : impl_->pools) {
    std::lock_guard plock(p->mutex);
    n += p->idle.size();
  }
  return n;
}

}  // namespace shardy::s3
