// The S3Client half of benchmark/s3_vs_curl.sh: sequential 1 KiB GETs over one keep-alive
// connection, and whole 64 MiB downloads (into memory, or streamed to a file), against a plain
// HTTP server (nginx on 127.0.0.1 serving the same files; requests are signed anyway and the
// server ignores the signature). Prints the elapsed seconds; the script divides by curl's time
// for the same requests in the same run.
//
// Usage: s3_transfer ENDPOINT BUCKET small COUNT KEY_PREFIX NKEYS
//        s3_transfer ENDPOINT BUCKET large COUNT KEY
//        s3_transfer ENDPOINT BUCKET large-file COUNT KEY FILE
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <shardy/s3_client.hpp>
#include <string>
#include <vector>

namespace asio = boost::asio;

namespace {

struct Args {
  std::string endpoint, bucket, mode;
  unsigned count = 0;
  std::string key;  // key prefix (small) or key (large)
  unsigned nkeys = 0;
  std::string file;
};

std::string small_key(const Args& a, unsigned i) {
  char name[16];
  std::snprintf(name, sizeof name, "k%03u", i % a.nkeys);
  return a.key + name;
}

// Issues the requests one after another from completion handlers (one connection, keep-alive).
class Runner {
 public:
  Runner(asio::io_context& io, shardy::S3Client& c, const Args& a) : io_(io), c_(c), a_(a) {}

  void start() {
    // One untimed request first: the connection is open before the clock starts (curl's time
    // includes one connect, which is negligible over thousands of requests).
    std::string warm = a_.mode == "small" ? small_key(a_, 0) : a_.key;
    c_.async_head_object(a_.bucket, warm,
                         [this](shardy::error_code ec, shardy::HeadObjectResult r) {
                           if (ec) return fail(ec, r.diagnostics);
                           t0_ = std::chrono::steady_clock::now();
                           next();
                         });
  }

  double seconds = 0;
  std::uint64_t bytes = 0;
  std::string error;

 private:
  void next() {
    if (done_ == a_.count) {
      seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
      io_.stop();  // idle pooled connections would keep run() busy
      return;
    }
    if (a_.mode == "small" || a_.mode == "large") {
      std::string key = a_.mode == "small" ? small_key(a_, done_) : a_.key;
      c_.async_get_object(a_.bucket, key, [this](shardy::error_code ec, shardy::GetObjectResult r) {
        if (ec) return fail(ec, r.diagnostics);
        if (r.body.size() != r.size) return fail(shardy::errc::truncated_body, "short body");
        bytes += r.body.size();
        ++done_;
        next();
      });
    } else {
      c_.async_download_to_file(a_.bucket, a_.key, std::filesystem::path(a_.file),
                                [this](shardy::error_code ec, shardy::DownloadResult r) {
                                  if (ec) return fail(ec, r.diagnostics);
                                  // (a device such as /dev/null has no size to check)
                                  if (std::filesystem::is_regular_file(a_.file) &&
                                      std::filesystem::file_size(a_.file) != r.size)
                                    return fail(shardy::errc::truncated_body, "short file");
                                  bytes += r.size;
                                  ++done_;
                                  next();
                                });
    }
  }

  void fail(shardy::error_code ec, const std::string& diagnostics) {
    error = ec.message() + ": " + diagnostics;
    io_.stop();
  }

  asio::io_context& io_;
  shardy::S3Client& c_;
  const Args& a_;
  unsigned done_ = 0;
  std::chrono::steady_clock::time_point t0_;
};

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> v(argv + 1, argv + argc);
  Args a;
  if (v.size() >= 5) {
    a.endpoint = v[0];
    a.bucket = v[1];
    a.mode = v[2];
    a.count = static_cast<unsigned>(std::stoul(v[3]));
    a.key = v[4];
  }
  bool ok = (a.mode == "small" && v.size() == 6) || (a.mode == "large" && v.size() == 5) ||
            (a.mode == "large-file" && v.size() == 6);
  if (!ok || a.count == 0) {
    std::fprintf(stderr,
                 "usage: s3_transfer ENDPOINT BUCKET small COUNT KEY_PREFIX NKEYS\n"
                 "       s3_transfer ENDPOINT BUCKET large COUNT KEY\n"
                 "       s3_transfer ENDPOINT BUCKET large-file COUNT KEY FILE\n");
    return 2;
  }
  if (a.mode == "small") a.nkeys = static_cast<unsigned>(std::stoul(v[5]));
  if (a.mode == "large-file") a.file = v[5];
  if (a.mode == "small" && a.nkeys == 0) return 2;

  try {
    asio::io_context io;
    shardy::S3Options o;
    o.endpoint = a.endpoint;
    o.addressing = shardy::S3Options::Addressing::path;
    o.credentials =
        shardy::make_static_credentials({"bench-key", "bench-secret", "", std::nullopt});
    o.retry.max_attempts = 1;  // a benchmark that retries would hide failures
    shardy::S3Client client(io.get_executor(), o);
    Runner runner(io, client, a);
    runner.start();
    io.run();
    if (!runner.error.empty()) {
      std::fprintf(stderr, "s3_transfer: %s\n", runner.error.c_str());
      return 1;
    }
    std::printf("seconds=%.6f requests=%u bytes=%llu\n", runner.seconds, a.count,
                static_cast<unsigned long long>(runner.bytes));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "s3_transfer: %s\n", e.what());
    return 1;
  }
  return 0;
}
