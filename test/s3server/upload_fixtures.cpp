// CTest fixture step (part of fixture "s3server"): uploads every object of the shardyfusion
// fixture snapshots (<fixtures>/snapshots/**) to the test server's bucket `shardy-fixtures`
// under the same keys (snapshots/<name>/...), because the manifests and _CURRENT pointers hold
// absolute s3://shardy-fixtures/snapshots/<name>/... URLs. Uses shardy's own S3Client (SigV4,
// verified by the server) with the keys from the server's info file.
// Usage: shardy_s3_upload_fixtures INFO_JSON FIXTURES_DIR
#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <shardy/credentials.hpp>
#include <shardy/s3_client.hpp>
#include <sstream>
#include <string>
#include <vector>

namespace asio = boost::asio;
namespace json = boost::json;
namespace fs = std::filesystem;

namespace {

constexpr const char* kBucket = "shardy-fixtures";

asio::awaitable<std::size_t> upload_all(shardy::S3Client client, fs::path root,
                                        std::vector<fs::path> files) {
  std::size_t bytes = 0;
  for (const auto& f : files) {
    const std::string key = fs::relative(f, root).generic_string();
    auto [ec, r] = co_await client.async_put_object_from_file(kBucket, key, f,
                                                              asio::as_tuple(asio::use_awaitable));
    if (ec)
      throw std::runtime_error("PUT s3://" + std::string(kBucket) + "/" + key + ": " +
                               ec.message() + " " + r.diagnostics);
    bytes += fs::file_size(f);
  }
  co_return bytes;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: shardy_s3_upload_fixtures INFO_JSON FIXTURES_DIR\n";
    return 2;
  }
  try {
    std::ifstream in(argv[1]);
    if (!in) throw std::runtime_error(std::string("cannot read ") + argv[1]);
    std::stringstream ss;
    ss << in.rdbuf();
    auto info = json::parse(ss.str()).as_object();
    bool has_bucket = false;
    for (const auto& b : info.at("buckets").as_array()) has_bucket |= b.as_string() == kBucket;
    if (!has_bucket)
      throw std::runtime_error("the test server has no bucket shardy-fixtures (see fixture.sh)");

    const fs::path root = argv[2];
    std::vector<fs::path> files;
    for (const auto& e : fs::recursive_directory_iterator(root / "snapshots"))
      if (e.is_regular_file()) files.push_back(e.path());
    std::sort(files.begin(), files.end());
    if (files.empty()) throw std::runtime_error("no files under " + (root / "snapshots").string());

    shardy::S3Options o;
    o.endpoint = json::value_to<std::string>(info.at("endpoint"));
    o.region = json::value_to<std::string>(info.at("region"));
    o.addressing = shardy::S3Options::Addressing::path;
    o.credentials = shardy::make_static_credentials(
        {json::value_to<std::string>(info.at("access_key")),
         json::value_to<std::string>(info.at("secret_key")), "", std::nullopt});
    asio::io_context io;
    shardy::S3Client client(io.get_executor(), o);
    auto f = asio::co_spawn(io, upload_all(client, root, files), asio::use_future);
    io.run();
    const auto bytes = f.get();
    std::cout << "uploaded " << files.size() << " fixture objects (" << bytes << " bytes) to s3://"
              << kBucket << "/snapshots/\n";
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "shardy_s3_upload_fixtures: " << e.what() << "\n";
    return 1;
  }
}
