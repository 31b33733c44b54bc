#include "s3_test_env.hpp"

#include <openssl/evp.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <boost/json/value_to.hpp>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <stdexcept>

#include "support/test_support.hpp"

namespace asio = boost::asio;
namespace http = boost::beast::http;
namespace json = boost::json;

namespace shardy::test {

namespace {

std::filesystem::path info_path() {
  if (const char* p = std::getenv("SHARDY_S3SERVER_INFO")) return p;
  return std::filesystem::path(SHARDY_BINARY_DIR) / "s3server" / "s3server.json";
}

S3ServerInfo load_info() {
  auto path = info_path();
  if (!std::filesystem::exists(path))
    throw std::runtime_error(path.string() +
                             " is missing: run the integration tests through ctest (fixture "
                             "s3server), or start test/s3server/fixture.sh start <dir> and set "
                             "SHARDY_S3SERVER_INFO");
  auto v = json::parse(read_file(path)).as_object();
  S3ServerInfo i;
  i.endpoint = json::value_to<std::string>(v.at("endpoint"));
  i.fault_endpoint = json::value_to<std::string>(v.at("fault_endpoint"));
  i.region = json::value_to<std::string>(v.at("region"));
  i.access_key = json::value_to<std::string>(v.at("access_key"));
  i.secret_key = json::value_to<std::string>(v.at("secret_key"));
  i.port = static_cast<std::uint16_t>(v.at("port").to_number<int>());
  i.fault_port = static_cast<std::uint16_t>(v.at("fault_port").to_number<int>());
  i.bucket = json::value_to<std::string>(v.at("buckets").as_array().at(0));
  const auto& sessions = v.at("session_credentials").as_array();
  if (!sessions.empty()) {
    const auto& s = sessions.at(0).as_object();
    i.session_access_key = json::value_to<std::string>(s.at("access_key"));
    i.session_secret_key = json::value_to<std::string>(s.at("secret_key"));
    i.session_token = json::value_to<std::string>(s.at("token"));
  }
  return i;
}

// Percent-encodes a query value.
std::string query_escape(std::string_view s) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == '/') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 15]);
    }
  }
  return out;
}

// One request to the server's admin API (plain HTTP/1.1, JSON).
json::value admin(http::verb method, const std::string& target, const std::string& body = {}) {
  asio::io_context io;
  asio::ip::tcp::socket sock(io);
  sock.connect({asio::ip::make_address("127.0.0.1"), s3server().port});
  http::request<http::string_body> req(method, target, 11);
  req.set(http::field::host, "127.0.0.1");
  req.set(http::field::content_type, "application/json");
  req.body() = body;
  req.prepare_payload();
  http::write(sock, req);
  boost::beast::flat_buffer buf;
  http::response<http::string_body> res;
  http::read(sock, buf, res);
  if (res.result_int() != 200)
    throw std::runtime_error("s3server admin " + target + ": " + std::to_string(res.result_int()) +
                             " " + res.body());
  return json::parse(res.body());
}

}  // namespace

const S3ServerInfo& s3server() {
  static const S3ServerInfo info = load_info();
  return info;
}

RequestStats request_stats(std::string_view path_prefix, std::string_view via,
                           std::string_view method) {
  std::string target =
      "/_shardy/stats?prefix=" + query_escape(path_prefix) + "&via=" + std::string(via);
  if (!method.empty()) target += "&method=" + std::string(method);
  auto v = admin(http::verb::get, target).as_object();
  RequestStats s;
  s.requests = static_cast<unsigned>(v.at("requests").to_number<int>());
  s.connections = static_cast<unsigned>(v.at("connections").to_number<int>());
  for (const auto& [k, n] : v.at("faults").as_object()) s.faults += n.to_number<unsigned>();
  return s;
}

void inject_faults(std::string_view path_prefix, const std::vector<Fault>& faults,
                   std::string_view method, std::string_view query_contains) {
  json::object rule;
  rule["prefix"] = path_prefix;
  if (!method.empty()) rule["method"] = method;
  if (!query_contains.empty()) rule["query_contains"] = query_contains;
  json::array list;
  for (const auto& f : faults) {
    json::object o;
    o["kind"] = f.kind;
    if (f.status) o["status"] = f.status;
    if (!f.code.empty()) o["code"] = f.code;
    if (f.ms) o["ms"] = f.ms;
    if (f.after_bytes) o["after_bytes"] = *f.after_bytes;
    list.push_back(std::move(o));
  }
  rule["faults"] = std::move(list);
  admin(http::verb::post, "/_shardy/faults", json::serialize(rule));
}

namespace {
std::string faults_target(std::string_view path_prefix, std::string_view query_contains) {
  std::string t = "/_shardy/faults?prefix=" + query_escape(path_prefix);
  if (!query_contains.empty()) t += "&query_contains=" + query_escape(query_contains);
  return t;
}
}  // namespace

unsigned pending_faults(std::string_view path_prefix, std::string_view query_contains) {
  auto v = admin(http::verb::get, faults_target(path_prefix, query_contains));
  return v.as_object().at("pending").to_number<unsigned>();
}

void clear_faults(std::string_view path_prefix, std::string_view query_contains) {
  admin(http::verb::delete_, faults_target(path_prefix, query_contains));
}

std::string unique_prefix() {
  const auto* t = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string name = t ? std::string(t->test_suite_name()) + "." + t->name() : "test";
  for (auto& c : name)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.') c = '-';
  std::random_device rd;
  return name + "-" + std::to_string(rd() % 1000000);
}

std::string random_bytes(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 gen(seed);
  std::string out(n, '\0');
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    std::uint64_t v = gen();
    std::memcpy(out.data() + i, &v, 8);
  }
  for (; i < n; ++i) out[i] = static_cast<char>(gen());
  return out;
}

namespace {
struct Sha256 {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  Sha256() { EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr); }
  ~Sha256() { EVP_MD_CTX_free(ctx); }
  void update(const void* p, std::size_t n) { EVP_DigestUpdate(ctx, p, n); }
  std::string hex() {
    unsigned char md[32];
    unsigned len = 0;
    EVP_DigestFinal_ex(ctx, md, &len);
    return to_hex(std::string_view(reinterpret_cast<const char*>(md), len));
  }
};
}  // namespace

std::string sha256_hex(std::string_view data) {
  Sha256 h;
  h.update(data.data(), data.size());
  return h.hex();
}

std::string sha256_file_hex(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + p.string());
  Sha256 h;
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    h.update(buf.data(), static_cast<std::size_t>(in.gcount()));
  }
  return h.hex();
}

S3ServerTest::S3ServerTest()
    : info(s3server()),
      bucket(info.bucket),
      prefix(unique_prefix()),
      work_(io.get_executor()),
      thread_([this] { io.run(); }) {}

S3ServerTest::~S3ServerTest() {
  work_.reset();
  io.stop();
  thread_.join();
}

S3Options S3ServerTest::options(bool via_fault_proxy) const {
  S3Options o;
  o.endpoint = via_fault_proxy ? info.fault_endpoint : info.endpoint;
  o.region = info.region;
  o.addressing = S3Options::Addressing::path;
  o.credentials = make_static_credentials({info.access_key, info.secret_key, "", std::nullopt});
  o.connect_timeout = std::chrono::milliseconds(2000);
  o.first_byte_timeout = std::chrono::milliseconds(10000);
  o.retry.max_attempts = 5;
  o.retry.base_delay = std::chrono::milliseconds(5);
  o.retry.max_delay = std::chrono::milliseconds(50);
  o.retry.total_budget = std::chrono::milliseconds(20000);
  return o;
}

S3Client S3ServerTest::client(bool via_fault_proxy) {
  return S3Client(io.get_executor(), options(via_fault_proxy));
}

S3Client S3ServerTest::client(S3Options o) { return S3Client(io.get_executor(), std::move(o)); }

}  // namespace shardy::test
