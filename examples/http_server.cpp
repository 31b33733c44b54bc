// An HTTP front end on Boost.Beast that embeds shardy::AsyncReader.
//
//   example_http_server PREFIX [--object-root DIR] [--local-root DIR] [--address A] [--port P]
//                       [--threads N] [--refresh-interval-ms N] [--key-type int|str]
//
// Endpoints (JSON answers):
//   GET /get?key=K                 200 {"key":"K","shard_id":S,"found":true,"value":...,
//                                       "value_hex":"..."}
//                                  404 {"key":"K","shard_id":S,"found":false}
//   GET /multi_get?keys=K1,K2,...  200 {"results":[{"key":"K1","found":...,...}, ...]} in input
//                                  order (also: repeated key=K parameters)
//   GET /info                      200 the snapshot being served (manifest_ref, run_id, ...)
// Bad keys answer 400, reader errors 503, with {"error":"..."}. "value" is the value as a string
// when it is printable ASCII (else null); "value_hex" always holds the bytes.
//
// The server runs on an io_context with N threads; every connection is a coroutine on its own
// strand, and the reader is shared by all of them (AsyncReader is thread-safe). A timer coroutine
// calls async_refresh() every interval: when _CURRENT moves, the new snapshot is swapped in
// atomically; requests in flight finish on the snapshot they started on. SIGINT/SIGTERM stop the
// server. It prints "listening on http://ADDRESS:PORT" once it accepts connections (--port 0
// picks a free port).
//
// This is the only translation unit of the examples that instantiates Beast.
#include <boost/algorithm/hex.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json/serialize.hpp>
#include <boost/url/parse.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <iterator>
#include <memory>
#include <shardy/async_reader.hpp>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "command_line.hpp"

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using tcp = asio::ip::tcp;

namespace {

constexpr auto tuple_awaitable = asio::as_tuple(asio::use_awaitable);

struct Config {
  std::string prefix;
  shardy::ReaderOptions options;
  std::string address = "127.0.0.1";
  unsigned short port = 8080;
  unsigned threads = 2;
  std::chrono::milliseconds refresh_interval{1000};
  bool string_keys = false;
};

using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;

Response json_response(const Request& req, http::status status, const json::value& body) {
  Response res(status, req.version());
  res.set(http::field::content_type, "application/json");
  res.keep_alive(req.keep_alive());
  res.body() = json::serialize(body);
  res.body().push_back('\n');
  res.prepare_payload();
  return res;
}

Response error_response(const Request& req, http::status status, std::string_view message) {
  json::object o;
  o["error"] = message;
  return json_response(req, status, o);
}

std::string to_hex(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  boost::algorithm::hex_lower(bytes.begin(), bytes.end(), std::back_inserter(out));
  return out;
}

bool printable_ascii(std::string_view s) {
  for (unsigned char c : s)
    if (c < 0x20 || c >= 0x7f) return false;
  return true;
}

// One key's answer: the key as given, its shard, and the value if present.
json::object key_result(std::string_view key_text, std::uint32_t shard_id,
                        const std::optional<shardy::Value>& v) {
  json::object o;
  o["key"] = key_text;
  o["shard_id"] = shard_id;
  o["found"] = v.has_value();
  if (v) {
    if (printable_ascii(*v))
      o["value"] = *v;
    else
      o["value"] = nullptr;
    o["value_hex"] = to_hex(*v);
  }
  return o;
}

// Parses a key as the server's key type; throws shardy::error on a bad integer.
shardy::Key parse_key(const Config& cfg, std::string_view text) {
  if (cfg.string_keys) return shardy::Key::text(text);
  return shardy::Key::parse_integer(text);
}

asio::awaitable<Response> handle_get(const Config& cfg, const shardy::AsyncReader& reader,
                                     const Request& req, std::string_view key_text) {
  shardy::error_code ec;
  std::optional<shardy::Key> key;
  std::uint32_t shard_id = 0;
  try {
    key.emplace(parse_key(cfg, key_text));
    shard_id = reader.route_key(*key);  // no I/O
  } catch (const shardy::error& e) {
    co_return error_response(req, http::status::bad_request, e.what());
  }
  auto [gec, value] = co_await reader.async_get(std::move(*key), tuple_awaitable);
  if (gec) co_return error_response(req, http::status::service_unavailable, gec.message());
  co_return json_response(req, value ? http::status::ok : http::status::not_found,
                          key_result(key_text, shard_id, value));
}

asio::awaitable<Response> handle_multi_get(const Config& cfg, const shardy::AsyncReader& reader,
                                           const Request& req,
                                           const std::vector<std::string>& key_texts) {
  std::vector<shardy::Key> keys;
  std::vector<std::uint32_t> shard_ids;
  try {
    for (auto& t : key_texts) {
      keys.push_back(parse_key(cfg, t));
      shard_ids.push_back(reader.route_key(keys.back()));
    }
  } catch (const shardy::error& e) {
    co_return error_response(req, http::status::bad_request, e.what());
  }
  auto [ec, values] = co_await reader.async_multi_get(std::move(keys), tuple_awaitable);
  if (ec) co_return error_response(req, http::status::service_unavailable, ec.message());
  json::array results;
  for (std::size_t i = 0; i < values.size(); ++i)
    results.push_back(key_result(key_texts[i], shard_ids[i], values[i]));
  json::object body;
  body["results"] = std::move(results);
  co_return json_response(req, http::status::ok, body);
}

Response handle_info(const shardy::AsyncReader& reader, const Request& req) {
  try {
    auto i = reader.snapshot_info();
    json::object o;
    o["manifest_ref"] = i.manifest_ref;
    o["current_ref"] = i.current_ref;
    o["run_id"] = i.run_id;
    o["num_dbs"] = i.num_dbs;
    o["row_count"] = i.row_count;
    return json_response(req, http::status::ok, o);
  } catch (const shardy::error& e) {
    return error_response(req, http::status::service_unavailable, e.what());
  }
}

asio::awaitable<Response> handle(const Config& cfg, const shardy::AsyncReader& reader,
                                 const Request& req) {
  if (req.method() != http::verb::get)
    co_return error_response(req, http::status::method_not_allowed, "only GET is supported");
  auto target = boost::urls::parse_origin_form(req.target());
  if (!target) co_return error_response(req, http::status::bad_request, "malformed target");
  const std::string path = target->path();
  auto params = target->params();
  if (path == "/get") {
    auto it = params.find("key");
    if (it == params.end())
      co_return error_response(req, http::status::bad_request, "missing ?key=");
    const std::string key_text = (*it).value;
    co_return co_await handle_get(cfg, reader, req, key_text);
  }
  if (path == "/multi_get") {
    std::vector<std::string> key_texts;
    for (auto p : params) {
      if (p.key == "key") key_texts.push_back(p.value);
      if (p.key != "keys") continue;
      std::string_view list = p.value;
      while (!list.empty()) {
        auto comma = list.find(',');
        key_texts.emplace_back(list.substr(0, comma));
        list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
      }
    }
    co_return co_await handle_multi_get(cfg, reader, req, key_texts);
  }
  if (path == "/info") co_return handle_info(reader, req);
  co_return error_response(req, http::status::not_found, "unknown path");
}

asio::awaitable<void> session(tcp::socket socket, std::shared_ptr<const Config> cfg,
                              shardy::AsyncReader reader) {
  beast::tcp_stream stream(std::move(socket));
  beast::flat_buffer buffer;
  for (;;) {
    Request req;
    stream.expires_after(std::chrono::seconds(30));
    auto [rec, rn] = co_await http::async_read(stream, buffer, req, tuple_awaitable);
    if (rec) break;  // closed by the client, timed out, or malformed
    Response res = co_await handle(*cfg, reader, req);
    const bool keep_alive = res.keep_alive();
    auto [wec, wn] = co_await http::async_write(stream, res, tuple_awaitable);
    if (wec || !keep_alive) break;
  }
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
}

asio::awaitable<void> refresh_loop(std::chrono::milliseconds interval, shardy::AsyncReader reader) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  for (;;) {
    timer.expires_after(interval);
    co_await timer.async_wait(asio::use_awaitable);
    auto [ec, changed] = co_await reader.async_refresh(tuple_awaitable);
    if (ec == shardy::make_error_code(shardy::errc::reader_closed)) co_return;
    if (ec) {
      // The old snapshot keeps serving; try again at the next tick.
      std::fprintf(stderr, "refresh failed: %s\n", ec.message().c_str());
    } else if (changed) {
      std::printf("refreshed: now serving %s\n", reader.snapshot_info().manifest_ref.c_str());
      std::fflush(stdout);
    }
  }
}

// Opens the snapshot, starts the refresh loop, then accepts connections until the io_context
// stops.
asio::awaitable<void> serve(std::shared_ptr<const Config> cfg) {
  auto ex = co_await asio::this_coro::executor;
  shardy::AsyncReader reader =
      co_await shardy::AsyncReader::async_open(ex, cfg->prefix, cfg->options);
  auto info = reader.snapshot_info();

  tcp::acceptor acceptor(ex, tcp::endpoint(asio::ip::make_address(cfg->address), cfg->port));
  std::printf("serving %s (%u shards)\n", info.manifest_ref.c_str(), info.num_dbs);
  std::printf("listening on http://%s:%u\n", cfg->address.c_str(),
              static_cast<unsigned>(acceptor.local_endpoint().port()));
  std::fflush(stdout);

  auto refresh_strand = asio::make_strand(ex);
  asio::co_spawn(refresh_strand, refresh_loop(cfg->refresh_interval, reader), asio::detached);
  for (;;) {
    // Each connection gets its own strand on the shared io_context.
    auto session_strand = asio::make_strand(ex);
    auto [ec, socket] = co_await acceptor.async_accept(session_strand, tuple_awaitable);
    if (ec) {  // e.g. too many open files: keep serving the others, retry shortly
      asio::steady_timer pause(ex, std::chrono::milliseconds(100));
      co_await pause.async_wait(asio::use_awaitable);
      continue;
    }
    asio::co_spawn(session_strand, session(std::move(socket), cfg, reader), asio::detached);
  }
}

}  // namespace

int main(int argc, char** argv) {
  auto cfg = std::make_shared<Config>();
  examples::CommandLine cl(argc, argv,
                           "PREFIX [--object-root DIR] [--local-root DIR] [--address A] [--port P]"
                           " [--threads N] [--refresh-interval-ms N] [--key-type int|str]");
  while (cl.next()) {
    if (cl.reader_option(cfg->options)) continue;
    std::string_view a = cl.arg();
    if (a == "--address")
      cfg->address = cl.value();
    else if (a == "--port")
      cfg->port = static_cast<unsigned short>(std::stoul(cl.value()));
    else if (a == "--threads")
      cfg->threads = static_cast<unsigned>(std::stoul(cl.value()));
    else if (a == "--refresh-interval-ms")
      cfg->refresh_interval = std::chrono::milliseconds(std::stol(cl.value()));
    else if (a == "--key-type") {
      auto t = cl.value();
      if (t != "int" && t != "str") cl.usage();
      cfg->string_keys = t == "str";
    } else if (cl.is_flag() || !cfg->prefix.empty())
      cl.usage();
    else
      cfg->prefix = a;
  }
  if (cfg->prefix.empty() || cfg->threads == 0) cl.usage();

  asio::io_context io(static_cast<int>(cfg->threads));
  int status = 0;
  // SIGINT/SIGTERM stop the io_context; pending coroutines (and their reader handles) are
  // destroyed with it.
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&io](const boost::system::error_code& ec, int) {
    if (ec) return;
    std::printf("shutting down\n");
    std::fflush(stdout);
    io.stop();
  });
  auto on_done = [&io, &status](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& x) {  // shardy::error carries its diagnostics in what()
      std::fprintf(stderr, "error: %s\n", x.what());
    }
    status = 1;
    io.stop();
  };
  asio::co_spawn(asio::make_strand(io), serve(cfg), on_done);

  std::vector<std::thread> threads;
  for (unsigned t = 1; t < cfg->threads; ++t) threads.emplace_back([&io] { io.run(); });
  io.run();
  for (auto& t : threads) t.join();
  return status;
}
