// Range tier, counted against s3rver (issue 5 bar). Run by benchmark/range_s3rver.sh, which
// builds the snapshot with `shardy build`, uploads it to the SigV4-verifying s3rver wrapper
// (test/s3server) on 127.0.0.1 and then runs this program on it.
//
// What it measures, per mode (with the sidecar, without it):
//   - S3 requests per cold point lookup of a random key, from the S3 client's own metrics
//     (S3Options::metrics, on_s3_request), cross-checked per lookup against the server's own
//     count (GET /_shardy/stats of the wrapper: requests under the snapshot prefix);
//   - requests of the same lookup repeated at once (warm; must be 0);
//   - the p50 latency of a cold lookup as a ratio to the p50 of one raw ranged GET of a single
//     page of shard.db (same S3Client, same If-Match pinning, interleaved in the same run).
// Small values (fit their leaf page) and large values (8-32 KB: overflow chains) are reported
// separately.
//
// "Cold" here: a fresh Reader (AccessMode::range) per lookup; the key's shard is opened before
// the lookup is counted and timed (borrow_shard_for_key: the probe GET of shard.db's first page
// and, with the sidecar, the shard.sidecar GET that pins page 1, the schema and every interior
// b-tree page in the page cache, plus the overflow chains those pages reference); no leaf or
// overflow page is cached, and the SQLite connection has nothing but page 1. Then one
// Reader::get is counted and timed. The open's own requests are reported too (not per lookup).
//
// Usage: range_lookup_bench --info s3server.json --prefix s3://bucket/snap --rows N
//          [--lookups 300] [--large-lookups 60] [--seed 1] [--max-seconds 600]
// Progress goes to stderr every 20 lookups; a mode that runs past --max-seconds stops early and
// reports what it measured, marked "cut short".
// Values are the generator's of range_s3rver.sh (checked on every lookup):
//   unit = "v%011d-" % key; length 100, or 8000 + key*7919 % 24000 when key % 997 == 0.
#include <algorithm>
#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/asio/write.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <shardy/metrics.hpp>
#include <shardy/reader.hpp>
#include <shardy/s3_client.hpp>
#include <shardy/store.hpp>
#include <sstream>
#include <string>
#include <vector>

namespace asio = boost::asio;
namespace json = boost::json;
using clk = std::chrono::steady_clock;
using namespace shardy;

namespace {

bool is_large(std::uint64_t k) { return k % 997 == 0; }

std::string expected_value(std::uint64_t k) {
  char unit[32];
  std::snprintf(unit, sizeof unit, "v%011llu-", static_cast<unsigned long long>(k));
  const std::size_t len = is_large(k) ? 8000 + (k * 7919) % 24000 : 100;
  std::string out;
  while (out.size() < len) out += unit;
  out.resize(len);
  return out;
}

// Counts what the S3 client reports.
struct ClientCount final : MetricsSink {
  std::atomic<std::uint64_t> requests{0}, retries{0}, errors{0};
  void on_s3_request(std::string_view) override { ++requests; }
  void on_s3_retry(std::string_view, unsigned) override { ++retries; }
  void on_s3_error(std::string_view) override { ++errors; }
};

// The wrapper's admin API: requests it received whose path starts with a prefix.
struct ServerCount {
  std::string host = "127.0.0.1";
  std::string port;
  std::string path_prefix;  // "/bucket/snap/"

  std::uint64_t requests() const {
    asio::io_context io;
    asio::ip::tcp::resolver resolver(io);
    asio::ip::tcp::socket sock(io);
    asio::connect(sock, resolver.resolve(host, port));
    const std::string req = "GET /_shardy/stats?via=front&prefix=" + path_prefix +
                            " HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n\r\n";
    asio::write(sock, asio::buffer(req));
    std::string resp;
    boost::system::error_code ec;
    asio::read(sock, asio::dynamic_buffer(resp), ec);  // until EOF
    const auto body = resp.find("\r\n\r\n");
    if (resp.rfind("HTTP/1.1 200", 0) != 0 || body == std::string::npos)
      throw std::runtime_error("admin stats failed: " + resp.substr(0, 200));
    return json::parse(resp.substr(body + 4)).as_object().at("requests").to_number<std::uint64_t>();
  }
};

struct Sample {
  std::uint64_t client = 0, server = 0, warm_client = 0, warm_server = 0, open_client = 0;
  double us = 0, open_us = 0;
};

double percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(q * static_cast<double>(v.size())))];
}

struct Summary {
  std::size_t n = 0;
  std::uint64_t client = 0, server = 0, warm_client = 0, warm_server = 0, open_client = 0;
  std::uint64_t max = 0, mismatched = 0;
  std::map<std::uint64_t, std::size_t> hist;
  std::vector<double> us, open_us;
};

Summary summarize(const std::vector<Sample>& s) {
  Summary out;
  for (auto& x : s) {
    out.n += 1;
    out.client += x.client;
    out.server += x.server;
    out.warm_client += x.warm_client;
    out.warm_server += x.warm_server;
    out.open_client += x.open_client;
    out.max = std::max(out.max, x.client);
    out.mismatched += x.client != x.server;
    out.hist[x.client] += 1;
    out.us.push_back(x.us);
    out.open_us.push_back(x.open_us);
  }
  return out;
}

std::string arg(int argc, char** argv, const std::string& name, const std::string& def = {}) {
  for (int i = 1; i + 1 < argc; ++i)
    if (argv[i] == name) return argv[i + 1];
  if (def.empty()) throw std::runtime_error("missing " + name);
  return def;
}

}  // namespace

int main(int argc, char** argv) try {
  // Line-buffered: a run cut short (timeout) still leaves what it measured.
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  std::cout << std::unitbuf;
  const std::string info_path = arg(argc, argv, "--info");
  const std::string prefix = arg(argc, argv, "--prefix");
  const std::uint64_t rows = std::stoull(arg(argc, argv, "--rows"));
  const std::size_t lookups = std::stoul(arg(argc, argv, "--lookups", "300"));
  const std::size_t large_lookups = std::stoul(arg(argc, argv, "--large-lookups", "60"));
  const std::uint64_t seed = std::stoull(arg(argc, argv, "--seed", "1"));
  const double max_seconds = std::stod(arg(argc, argv, "--max-seconds", "600"));

  std::ifstream in(info_path);
  std::stringstream ss;
  ss << in.rdbuf();
  const auto info = json::parse(ss.str()).as_object();
  auto str = [&](const char* k) { return std::string(info.at(k).as_string()); };

  auto count = std::make_shared<ClientCount>();
  asio::thread_pool io(2);  // the S3 client's io threads
  S3Options so;
  so.endpoint = str("endpoint");
  so.region = str("region");
  so.addressing = S3Options::Addressing::path;
  so.credentials =
      make_static_credentials(Credentials{str("access_key"), str("secret_key"), {}, {}});
  so.metrics = count;
  S3Client client(io.get_executor(), so);
  auto store = make_s3_store(client);

  const auto url = parse_s3_url(prefix);
  ServerCount server;
  server.port = std::to_string(info.at("port").to_number<int>());
  server.path_prefix = "/" + url.bucket + "/" + url.key + "/";

  // The snapshot's shards (for the raw GETs): URL, size, ETag.
  struct ShardObject {
    std::string key;
    std::uint64_t bytes = 0;
    std::string etag;
  };
  std::vector<ShardObject> shards;
  {
    ReaderOptions o;
    o.object_store = store;
    o.access_mode = AccessMode::range;
    Reader r(prefix, o, 1);
    std::cout << "snapshot " << prefix << ": " << r.snapshot_info().row_count << " rows, "
              << r.snapshot_info().num_dbs << " shards, access_mode "
              << to_string(r.snapshot_info().access_mode) << "\n";
    for (auto& d : r.shard_details()) {
      if (!d.db_url) continue;
      ShardObject s;
      s.key = parse_s3_url(*d.db_url + "/shard.db").key;
      auto head = client.async_head_object(url.bucket, s.key, asio::use_future).get();
      s.bytes = head.size;
      s.etag = head.etag;
      std::cout << "  shard " << d.db_id << ": " << s.bytes << " bytes ("
                << static_cast<double>(s.bytes) / (1 << 20) << " MiB), " << d.row_count
                << " rows\n";
      shards.push_back(std::move(s));
    }
  }
  const std::uint64_t page = 4096;  // shardy build's default page size for these rows

  std::mt19937_64 rng(seed);
  std::vector<double> raw_us;
  auto raw_get = [&] {
    const auto& s = shards[rng() % shards.size()];
    const std::uint64_t off = (rng() % (s.bytes / page)) * page;
    GetObjectRequest req(ByteRange::bounded(off, page), s.etag);
    const auto t0 = clk::now();
    auto r = client.async_get_object(url.bucket, s.key, std::move(req), asio::use_future).get();
    raw_us.push_back(std::chrono::duration<double, std::micro>(clk::now() - t0).count());
    if (r.body.size() != page) throw std::runtime_error("raw GET: short page");
  };

  // One cold lookup (see the file comment), then the same key again (warm).
  auto cold_lookup = [&](bool sidecar, std::uint64_t key) {
    ReaderOptions o;
    o.object_store = store;
    o.access_mode = AccessMode::range;
    o.range.use_sidecar = sidecar;
    Sample s;
    const auto c_open = count->requests.load();
    const auto t_open = clk::now();
    Reader r(prefix, o, 1);
    r.borrow_shard_for_key(Key::unsigned_integer(key)).release();  // opens the shard
    s.open_us = std::chrono::duration<double, std::micro>(clk::now() - t_open).count();
    const auto c0 = count->requests.load();
    s.open_client = c0 - c_open;
    const auto s0 = server.requests();
    const auto t0 = clk::now();
    auto v = r.get(Key::unsigned_integer(key));
    s.us = std::chrono::duration<double, std::micro>(clk::now() - t0).count();
    const auto c1 = count->requests.load();
    const auto s1 = server.requests();
    if (v != std::optional<Value>(expected_value(key)))
      throw std::runtime_error("wrong value for key " + std::to_string(key));
    auto again = r.get(Key::unsigned_integer(key));
    const auto c2 = count->requests.load();
    const auto s2 = server.requests();
    if (again != v) throw std::runtime_error("warm lookup differs for key " + std::to_string(key));
    s.client = c1 - c0;
    s.server = s1 - s0;
    s.warm_client = c2 - c1;
    s.warm_server = s2 - s1;
    return s;
  };

  for (int i = 0; i < 5; ++i) raw_get();  // connections warm, TCP slow start done
  raw_us.clear();

  const std::uint64_t n_large = (rows + 996) / 997;
  for (bool sidecar : {true, false}) {
    std::vector<Sample> small, large;
    const auto retries0 = count->retries.load(), errors0 = count->errors.load();
    const auto t_phase = clk::now();
    // Small and large lookups interleaved in a random order, each followed by a raw GET.
    std::vector<bool> schedule(lookups, false);
    schedule.insert(schedule.end(), large_lookups, true);
    std::shuffle(schedule.begin(), schedule.end(), rng);
    bool cut_short = false;
    for (std::size_t i = 0; i < schedule.size(); ++i) {
      const bool want_large = schedule[i];
      const double elapsed = std::chrono::duration<double>(clk::now() - t_phase).count();
      if (elapsed > max_seconds) {
        cut_short = true;
        std::cerr << "  cut short after " << elapsed << " s (--max-seconds " << max_seconds
                  << ")\n";
        break;
      }
      std::uint64_t key = 0;
      if (want_large) {
        key = (rng() % n_large) * 997;
      } else {
        do key = rng() % rows;
        while (is_large(key));
      }
      (want_large ? large : small).push_back(cold_lookup(sidecar, key));
      raw_get();
      if ((i + 1) % 20 == 0) {
        const auto a = summarize(small), b = summarize(large);
        std::fprintf(stderr,
                     "  [%s] %zu/%zu lookups, %.1f s: small %.3f req/lookup (%zu), large %.3f "
                     "(%zu), client!=server %llu\n",
                     sidecar ? "sidecar" : "no sidecar", i + 1, schedule.size(),
                     std::chrono::duration<double>(clk::now() - t_phase).count(),
                     a.n ? double(a.client) / double(a.n) : 0.0, a.n,
                     b.n ? double(b.client) / double(b.n) : 0.0, b.n,
                     static_cast<unsigned long long>(a.mismatched + b.mismatched));
      }
    }
    const double secs = std::chrono::duration<double>(clk::now() - t_phase).count();
    const double raw_p50 = percentile(raw_us, 0.5);
    std::cout << "\n== " << (sidecar ? "with sidecar" : "without sidecar") << " (" << secs << " s"
              << (cut_short ? ", CUT SHORT by --max-seconds" : "") << "; client retries "
              << count->retries.load() - retries0 << ", errors " << count->errors.load() - errors0
              << "; raw 1-page GETs " << raw_us.size() << ")\n";
    std::vector<Sample> all = small;
    all.insert(all.end(), large.begin(), large.end());
    for (auto* set : {&small, &large, &all}) {
      const auto s = summarize(*set);
      if (s.n == 0) continue;
      const double p50 = percentile(s.us, 0.5);
      std::printf(
          "%-22s lookups %4zu  requests/cold lookup %.3f (client) %.3f (server), max %llu, "
          "per-lookup client!=server %llu\n",
          set == &small   ? "small values (100 B)"
          : set == &large ? "large values (8-32 KB)"
                          : "all (as sampled)",
          s.n, double(s.client) / double(s.n), double(s.server) / double(s.n),
          static_cast<unsigned long long>(s.max), static_cast<unsigned long long>(s.mismatched));
      std::printf("%-22s histogram", "");
      for (auto [k, c] : s.hist) std::printf(" %llu:%zu", static_cast<unsigned long long>(k), c);
      std::printf(
          "\n%-22s warm requests: %llu (client) %llu (server); open requests/shard open %.2f, "
          "open p50 %.0f us\n",
          "", static_cast<unsigned long long>(s.warm_client),
          static_cast<unsigned long long>(s.warm_server), double(s.open_client) / double(s.n),
          percentile(s.open_us, 0.5));
      std::printf("%-22s cold p50 %.0f us, p90 %.0f us; raw 1-page GET p50 %.0f us; ratio %.2f\n",
                  "", p50, percentile(s.us, 0.9), raw_p50, p50 / raw_p50);
    }
    raw_us.clear();
  }
  io.stop();  // idle pooled connections would keep it busy until they expire
  io.join();
  return 0;
} catch (const std::exception& e) {
  std::cerr << "range_lookup_bench: " << e.what() << "\n";
  return 1;
}
