// S3Client operations: request construction, retries with backoff, error mapping, result
// assembly. The wire (Beast/TLS) is in transport.cpp; this file sees only s3::Transport.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/append.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <functional>
#include <random>
#include <shardy/metrics.hpp>
#include <shardy/s3_client.hpp>
#include <tuple>

#include "core/run_workers.hpp"
#include "s3/request.hpp"
#include "s3/retry.hpp"
#include "s3/sigv4.hpp"
#include "s3/transport.hpp"
#include "s3/xml.hpp"

// g++ 12 reports -Wmismatched-new-delete when it inlines the destruction of an Asio awaitable
// frame: the frame is allocated and freed by the same class-specific operators (a false
// positive of the inliner).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

namespace shardy {

namespace asio = boost::asio;
using steady = std::chrono::steady_clock;

namespace {

// What the operation saw, copied into the result even when it fails.
struct OpContext {
  unsigned status = 0;
  unsigned attempts = 0;
  std::string request_id;
};

// One logical S3 request, sent once per attempt.
struct Call {
  Call(std::string_view operation, std::string_view method, std::string_view bucket,
       std::string_view key = {})
      : operation(operation), method(method), bucket(bucket), key(key) {}

  std::string_view operation;  // S3 API name, for metrics (GetObject, PutObject, ...)
  std::string_view method;
  std::string_view bucket;
  std::string_view key;
  std::vector<std::pair<std::string, std::string>> query;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string_view body;
  const std::filesystem::path* body_file = nullptr;
  std::uint64_t body_file_size = 0;
  std::string payload_hash = std::string(s3::kEmptySha256);
  bool head = false;
  s3::BodySink* sink = nullptr;
  bool missing_is_success = false;  // DELETE: 404 means already gone
  // Called before every attempt after the first (e.g. to resume a download with a Range).
  std::function<void(Call&)> before_retry;
};

std::string describe(const Call& c) {
  std::string s(c.method);
  s += " s3://";
  s += c.bucket;
  s += '/';
  s += c.key;
  return s;
}

std::string range_header(const ByteRange& r) {
  switch (r.type) {
    case ByteRange::kind::bounded:
      if (r.length == 0) throw error(errc::invalid_argument, "empty byte range");
      return "bytes=" + std::to_string(r.offset) + "-" + std::to_string(r.offset + r.length - 1);
    case ByteRange::kind::from:
      return "bytes=" + std::to_string(r.offset) + "-";
    case ByteRange::kind::suffix:
      if (r.length == 0) throw error(errc::invalid_argument, "empty suffix range");
      return "bytes=-" + std::to_string(r.length);
  }
  throw error(errc::invalid_argument, "bad byte range");
}

template <typename T>
bool to_num(std::string_view s, T& v) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && p == s.data() + s.size() && !s.empty();
}

// "bytes first-last/total" (total may be "*").
std::optional<ContentRange> parse_content_range(std::string_view s) {
  if (s.substr(0, 6) != "bytes ") return std::nullopt;
  s.remove_prefix(6);
  auto dash = s.find('-');
  auto slash = s.find('/');
  if (dash == std::string_view::npos || slash == std::string_view::npos || dash > slash) {
    return std::nullopt;
  }
  ContentRange cr;
  if (!to_num(s.substr(0, dash), cr.first) ||
      !to_num(s.substr(dash + 1, slash - dash - 1), cr.last) || cr.last < cr.first) {
    return std::nullopt;
  }
  auto total = s.substr(slash + 1);
  if (total != "*" && !to_num(total, cr.total)) return std::nullopt;
  return cr;
}

void fill_head_result(HeadObjectResult& r, const s3::ResponseHead& h) {
  r.etag = h.etag;
  r.content_type = h.content_type;
  if (!h.last_modified.empty()) r.last_modified = s3::parse_http_date(h.last_modified);
}

void check_header_value(std::string_view name, std::string_view v) {
  if (v.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos) {
    throw error(errc::invalid_argument, std::string(name) + " contains a line break or NUL");
  }
}

}  // namespace

namespace detail {

class S3ClientImpl : public std::enable_shared_from_this<S3ClientImpl> {
 public:
  S3ClientImpl(asio::any_io_executor ex, S3Options opts)
      : executor(std::move(ex)),
        options(std::move(opts)),
        endpoint(s3::parse_endpoint(options.endpoint, options.region, options.connect_to)),
        credentials(options.credentials ? options.credentials : make_default_credentials()),
        transport(executor, options) {
    if (options.retry.max_attempts == 0) options.retry.max_attempts = 1;
    metrics = options.metrics.get();
  }

  steady::time_point deadline_from_now() const {
    if (options.operation_timeout.count() <= 0) return steady::time_point::max();
    return steady::now() + options.operation_timeout;
  }

  // Sends `call` with retries. Returns a 2xx response (or a 404 for missing_is_success);
  // throws shardy::error otherwise.
  asio::awaitable<s3::TransportResponse> execute(Call& call, OpContext& ctx,
                                                 steady::time_point deadline) {
    const auto start = steady::now();
    auto address = s3::make_address(endpoint, options.addressing, call.bucket, call.key);
    std::optional<std::minstd_rand> rng;
    for (;;) {
      if (ctx.attempts > 0 && call.before_retry) call.before_retry(call);
      Credentials creds = co_await credentials->get();
      if (creds.empty()) {
        throw error(errc::credentials_error, credentials->describe() + " gave no credentials");
      }
      std::string query = s3::canonical_query(call.query);
      s3::RequestParts parts;
      parts.method = call.method;
      parts.address = &address;
      parts.canonical_query = query;
      parts.headers = call.headers;
      parts.payload_hash = call.payload_hash;
      auto prepared = s3::prepare_request(std::move(parts), creds, options.region,
                                          std::chrono::system_clock::now(), &keys);
      s3::TransportRequest tr;
      tr.address = &address;
      tr.prepared = &prepared;
      tr.body = call.body;
      tr.body_file = call.body_file;
      tr.body_file_size = call.body_file_size;
      tr.head = call.head;
      tr.sink = call.sink;
      tr.deadline = deadline;
      ++ctx.attempts;
      if (metrics) metrics->on_s3_request(call.operation);

      error_code ec;
      std::string diag;
      s3::TransportResponse resp;
      try {
        resp = co_await transport.send(tr);
      } catch (const error& e) {
        ec = e.code();
        diag = describe(call) + ": " + e.diagnostics();
      }
      if (!ec) {
        ctx.status = resp.head.status;
        ctx.request_id = resp.head.request_id;
        const unsigned st = resp.head.status;
        if (st >= 200 && st < 300) co_return resp;
        if (st == 404 && call.missing_is_success) co_return resp;
        auto info = s3::parse_error_xml(resp.body);
        ec = make_error_code(s3::classify_status(st, info.code));
        diag = describe(call) + ": HTTP " + std::to_string(st);
        if (!info.code.empty()) diag += " " + info.code;
        if (!info.message.empty()) diag += ": " + info.message;
        std::string rid = info.request_id.empty() ? resp.head.request_id : info.request_id;
        if (!rid.empty()) diag += " (RequestId: " + rid + ")";
        if (ec == errc::signature_mismatch) {
          diag +=
              "; check the secret key. Canonical request signed:\n" + prepared.canonical_request;
        }
      }
      const auto code = static_cast<errc>(ec.value());
      if (ec.category() != error_category() || !s3::retryable(code)) throw error(ec, diag);
      if (steady::now() >= deadline) {
        throw error(errc::timeout, diag + " (operation timeout reached after " +
                                       std::to_string(ctx.attempts) + " attempts)");
      }
      if (!rng) rng.emplace(std::random_device{}());
      auto delay = s3::backoff_delay(options.retry, ctx.attempts, *rng);
      if (!s3::may_retry(options.retry, ctx.attempts, steady::now() - start, delay)) {
        throw error(ec, diag + " (gave up after " + std::to_string(ctx.attempts) + " attempts)");
      }
      // The attempt about to be made (2 = the first retry), Q-12.
      if (metrics) metrics->on_s3_retry(call.operation, ctx.attempts + 1);
      asio::steady_timer timer(executor);
      if (deadline != steady::time_point::max() && steady::now() + delay > deadline) {
        timer.expires_at(deadline);
      } else {
        timer.expires_after(delay);
      }
      auto [tec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
      if (tec) throw error(errc::cancelled, diag + "; cancelled while waiting to retry");
    }
  }

  // --- operations (throw shardy::error) ------------------------------------------------------

  asio::awaitable<GetObjectResult> get_object(std::string bucket, std::string key,
                                              GetObjectRequest req, OpContext& ctx) {
    Call call("GetObject", "GET", bucket, key);
    if (req.range) call.headers.emplace_back("range", range_header(*req.range));
    if (!req.if_match.empty()) {
      check_header_value("If-Match", req.if_match);
      call.headers.emplace_back("if-match", req.if_match);
    }
    auto resp = co_await execute(call, ctx, deadline_from_now());
    GetObjectResult r;
    fill_head_result(r, resp.head);
    r.body = std::move(resp.body);
    if (resp.head.status == 206) {
      auto cr = parse_content_range(resp.head.content_range);
      if (!cr || cr->last - cr->first + 1 != r.body.size()) {
        throw error(errc::protocol_error, describe(call) + ": 206 with Content-Range '" +
                                              resp.head.content_range + "' for " +
                                              std::to_string(r.body.size()) + " bytes");
      }
      r.content_range = cr;
      r.size = cr->total;
    } else {
      r.size = r.body.size();
      if (req.range) {
        // The server ignored the Range and sent the whole object: cut the requested part.
        std::uint64_t size = r.body.size();
        std::uint64_t first = 0, last = 0;
        const auto& rg = *req.range;
        if (rg.type == ByteRange::kind::suffix) {
          first = size > rg.length ? size - rg.length : 0;
          last = size ? size - 1 : 0;
        } else {
          first = rg.offset;
          last = rg.type == ByteRange::kind::bounded ? std::min(size, rg.offset + rg.length) - 1
                                                     : size - 1;
        }
        if (size == 0 || first >= size) {
          throw error(errc::invalid_range, describe(call) + ": range starts past the end (" +
                                               std::to_string(size) + " bytes)");
        }
        r.body = r.body.substr(first, last - first + 1);
        r.content_range = ContentRange{first, last, size};
      }
    }
    co_return r;
  }

  asio::awaitable<HeadObjectResult> head_object(std::string bucket, std::string key,
                                                OpContext& ctx) {
    Call call("HeadObject", "HEAD", bucket, key);
    call.head = true;
    auto resp = co_await execute(call, ctx, deadline_from_now());
    HeadObjectResult r;
    fill_head_result(r, resp.head);
    if (!resp.head.content_length) {
      throw error(errc::protocol_error, describe(call) + ": no Content-Length");
    }
    r.size = *resp.head.content_length;
    co_return r;
  }

  // The PutObject call of both put forms, with the request's headers; the caller adds the body.
  static Call put_call(std::string_view bucket, std::string_view key, const PutObjectRequest& req) {
    Call call("PutObject", "PUT", bucket, key);
    check_header_value("Content-Type", req.content_type);
    check_header_value("If-Match", req.if_match);
    if (!req.content_type.empty()) call.headers.emplace_back("content-type", req.content_type);
    if (req.if_none_match) call.headers.emplace_back("if-none-match", "*");
    if (!req.if_match.empty()) call.headers.emplace_back("if-match", req.if_match);
    return call;
  }

  // Sends a put_call with its body set; the answer is the new object's ETag.
  asio::awaitable<PutObjectResult> send_put(Call& call, OpContext& ctx) {
    auto resp = co_await execute(call, ctx, deadline_from_now());
    PutObjectResult r;
    r.etag = resp.head.etag;
    co_return r;
  }

  bool sign_payload(std::uint64_t size) const {
    return !endpoint.tls || size <= options.unsigned_payload_threshold;
  }

  asio::awaitable<PutObjectResult> put_object(std::string bucket, std::string key, std::string body,
                                              PutObjectRequest req, OpContext& ctx) {
    Call call = put_call(bucket, key, req);
    call.body = body;
    call.payload_hash =
        sign_payload(body.size()) ? s3::sha256_hex(body) : std::string(s3::kUnsignedPayload);
    co_return co_await send_put(call, ctx);
  }

  asio::awaitable<PutObjectResult> put_object_from_file(std::string bucket, std::string key,
                                                        std::filesystem::path file,
                                                        PutObjectRequest req, OpContext& ctx) {
    std::error_code fec;
    auto size = std::filesystem::file_size(file, fec);
    if (fec) throw error(errc::io_error, "cannot read " + file.string() + ": " + fec.message());
    Call call = put_call(bucket, key, req);
    call.body_file = &file;
    call.body_file_size = size;
    if (sign_payload(size)) {
      call.payload_hash = hash_file(file);
    } else {
      call.payload_hash = std::string(s3::kUnsignedPayload);
    }
    co_return co_await send_put(call, ctx);
  }

  static std::string hash_file(const std::filesystem::path& file) {
    int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
      throw error(errc::io_error, "cannot open " + file.string() + ": " + std::strerror(errno));
    s3::Sha256 h;
    std::vector<char> buf(1 << 20);
    for (;;) {
      ssize_t n = ::read(fd, buf.data(), buf.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        int e = errno;
        ::close(fd);
        throw error(errc::io_error, "reading " + file.string() + ": " + std::strerror(e));
      }
      if (n == 0) break;
      h.update(buf.data(), static_cast<std::size_t>(n));
    }
    ::close(fd);
    return h.hex_digest();
  }

  asio::awaitable<DeleteObjectResult> delete_object(std::string bucket, std::string key,
                                                    OpContext& ctx) {
    Call call("DeleteObject", "DELETE", bucket, key);
    call.missing_is_success = true;
    co_await execute(call, ctx, deadline_from_now());
    co_return DeleteObjectResult{};
  }

  asio::awaitable<ListObjectsResult> list_objects_v2(std::string bucket, ListObjectsRequest req,
                                                     OpContext& ctx) {
    ListObjectsResult r;
    std::string token = req.continuation_token;
    const auto deadline = deadline_from_now();
    for (;;) {
      Call call("ListObjectsV2", "GET", bucket);
      call.query.emplace_back("list-type", "2");
      call.query.emplace_back("encoding-type", "url");
      if (!req.prefix.empty()) call.query.emplace_back("prefix", req.prefix);
      if (!req.delimiter.empty()) call.query.emplace_back("delimiter", req.delimiter);
      if (!token.empty()) call.query.emplace_back("continuation-token", token);
      std::size_t have = r.objects.size() + r.common_prefixes.size();
      if (req.max_keys > 0) {
        call.query.emplace_back("max-keys",
                                std::to_string(std::min<std::size_t>(1000, req.max_keys - have)));
      }
      auto resp = co_await execute(call, ctx, deadline);
      auto page = s3::parse_list_objects_v2(resp.body);
      ++r.pages;
      for (auto& o : page.objects) {
        ListedObject lo;
        lo.key = std::move(o.key);
        lo.size = o.size;
        lo.etag = std::move(o.etag);
        lo.last_modified = o.last_modified;
        r.objects.push_back(std::move(lo));
      }
      for (auto& p : page.common_prefixes) r.common_prefixes.push_back(std::move(p));
      have = r.objects.size() + r.common_prefixes.size();
      if (!page.is_truncated) {
        r.next_continuation_token.clear();
        break;
      }
      if (page.next_continuation_token == token) {
        throw error(errc::protocol_error,
                    describe(call) + ": the listing repeats its continuation token");
      }
      token = std::move(page.next_continuation_token);
      r.next_continuation_token = token;
      if (!req.all_pages || (req.max_keys > 0 && have >= req.max_keys)) break;
    }
    co_return r;
  }

  // Writes a 2xx body into the file at the current offset; checks that resumed responses
  // continue exactly where the file ends and belong to the same object version.
  class FileSink final : public s3::BodySink {
   public:
    FileSink(int fd, ProgressCallback progress) : fd_(fd), progress_(std::move(progress)) {}
    std::uint64_t offset = 0;  // bytes in the file so far
    std::uint64_t total = 0;
    std::string etag;
    bool have_total = false;

    void begin(const s3::ResponseHead& head) override {
      std::uint64_t first = 0;
      std::uint64_t size = 0;
      if (head.status == 206) {
        auto cr = parse_content_range(head.content_range);
        if (!cr)
          throw error(errc::protocol_error, "bad Content-Range '" + head.content_range + "'");
        first = cr->first;
        size = cr->total;
      } else {
        size = head.content_length.value_or(0);
      }
      if (first != offset) {
        if (first == 0 && head.status == 200 && offset > 0) {
          // The server ignored our Range: start the file again from the beginning.
          if (::ftruncate(fd_, 0) != 0) throw error(errc::io_error, std::strerror(errno));
          offset = 0;
        } else {
          throw error(errc::protocol_error, "resumed download starts at byte " +
                                                std::to_string(first) + ", expected " +
                                                std::to_string(offset));
        }
      }
      if (!etag.empty() && !head.etag.empty() && head.etag != etag) {
        throw error(errc::shard_changed, "object changed during the download (ETag " + etag +
                                             " then " + head.etag + ")");
      }
      if (etag.empty()) etag = head.etag;
      total = size;
      have_total = true;
    }

    void write(const char* data, std::size_t n) override {
      while (n > 0) {
        ssize_t w = ::pwrite(fd_, data, n, static_cast<off_t>(offset));
        if (w < 0) {
          if (errno == EINTR) continue;
          int e = errno;
          throw error(e == ENOSPC || e == EDQUOT ? errc::disk_full : errc::io_error,
                      std::string("writing the download: ") + std::strerror(e));
        }
        offset += static_cast<std::uint64_t>(w);
        data += w;
        n -= static_cast<std::size_t>(w);
      }
      if (progress_) progress_(offset, total);
    }

   private:
    int fd_;
    ProgressCallback progress_;
  };

  asio::awaitable<DownloadResult> download_to_file(std::string bucket, std::string key,
                                                   std::filesystem::path file, DownloadRequest req,
                                                   OpContext& ctx) {
    int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
      throw error(errc::io_error, "cannot create " + file.string() + ": " + std::strerror(errno));
    }
    struct Closer {
      int fd;
      ~Closer() { ::close(fd); }
    } closer{fd};
    check_header_value("If-Match", req.if_match);
    FileSink sink(fd, std::move(req.progress));
    sink.etag = req.if_match;
    Call call("GetObject", "GET", bucket, key);
    call.sink = &sink;
    if (!req.if_match.empty()) call.headers.emplace_back("if-match", req.if_match);
    // A retry continues where the file ends, pinned to the version already partly written.
    call.before_retry = [&sink](Call& c) {
      c.headers.clear();
      if (!sink.etag.empty()) c.headers.emplace_back("if-match", sink.etag);
      if (sink.offset > 0)
        c.headers.emplace_back("range", "bytes=" + std::to_string(sink.offset) + "-");
    };
    auto resp = co_await execute(call, ctx, deadline_from_now());
    if (!sink.have_total) {  // an empty 2xx body never reaches the sink
      sink.begin(resp.head);
    }
    if (sink.offset != sink.total) {
      throw error(errc::truncated_body, describe(call) + ": wrote " + std::to_string(sink.offset) +
                                            " of " + std::to_string(sink.total) + " bytes");
    }
    DownloadResult r;
    r.size = sink.offset;
    r.etag = sink.etag.empty() ? resp.head.etag : sink.etag;
    co_return r;
  }

  asio::awaitable<void> fetch_group(const std::string& bucket, const std::string& key,
                                    const std::string& if_match, std::uint64_t first,
                                    std::uint64_t last, std::string& body, s3::ResponseHead& head,
                                    OpContext& ctx, steady::time_point deadline) {
    Call call("GetObject", "GET", bucket, key);
    call.headers.emplace_back(
        "range", "bytes=" + std::to_string(first) + "-" +
                     (last == std::numeric_limits<std::uint64_t>::max() ? std::string()
                                                                        : std::to_string(last)));
    if (!if_match.empty()) call.headers.emplace_back("if-match", if_match);
    auto resp = co_await execute(call, ctx, deadline);
    head = std::move(resp.head);
    body = std::move(resp.body);
  }

  asio::awaitable<GetRangesResult> get_ranges(std::string bucket, std::string key,
                                              GetRangesRequest req, OpContext& ctx) {
    check_header_value("If-Match", req.if_match);
    const auto n = req.ranges.size();
    GetRangesResult r;
    r.bodies.resize(n);
    if (n == 0) co_return r;
    constexpr auto kOpen = std::numeric_limits<std::uint64_t>::max();
    // Inclusive [first, last] per range; last = kOpen for "from" ranges.
    std::vector<std::pair<std::uint64_t, std::uint64_t>> spans(n);
    for (std::size_t i = 0; i < n; ++i) {
      const auto& rg = req.ranges[i];
      if (rg.type == ByteRange::kind::suffix) {
        throw error(errc::invalid_argument, "async_get_ranges does not take suffix ranges");
      }
      if (rg.type == ByteRange::kind::bounded) {
        if (rg.length == 0) throw error(errc::invalid_argument, "empty byte range");
        spans[i] = {rg.offset, rg.offset + rg.length - 1};
      } else {
        spans[i] = {rg.offset, kOpen};
      }
    }
    std::vector<std::size_t> order(n);
    for (std::size_t i = 0; i < n; ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [&](auto a, auto b) { return spans[a] < spans[b]; });
    struct Group {
      std::uint64_t first, last;
      std::vector<std::size_t> members;
      std::string body;
      s3::ResponseHead head;
      OpContext ctx;
    };
    std::vector<Group> groups;
    for (auto i : order) {
      auto [f, l] = spans[i];
      if (!groups.empty()) {
        auto& g = groups.back();
        const bool open = g.last == kOpen || l == kOpen;
        if (!open && f <= g.last + 1 + req.max_gap &&
            std::max(g.last, l) - g.first + 1 <= req.max_request_bytes) {
          g.last = std::max(g.last, l);
          g.members.push_back(i);
          continue;
        }
        if (g.last == kOpen && f >= g.first) {  // inside an open-ended group
          g.members.push_back(i);
          continue;
        }
      }
      groups.push_back(Group{f, l, {i}, {}, {}, {}});
    }

    const auto deadline = deadline_from_now();
    std::atomic<std::size_t> next{0};
    auto worker = [&]() -> asio::awaitable<void> {
      for (;;) {
        std::size_t i = next.fetch_add(1);
        if (i >= groups.size()) break;
        auto& g = groups[i];
        co_await fetch_group(bucket, key, req.if_match, g.first, g.last, g.body, g.head, g.ctx,
                             deadline);
      }
    };
    const std::size_t workers = std::max<std::size_t>(1, std::min(req.max_parallel, groups.size()));
    std::exception_ptr failure = co_await detail::run_workers(executor, workers, worker);
    for (auto& g : groups) {
      ctx.attempts += g.ctx.attempts;
      if (g.ctx.status) {
        ctx.status = g.ctx.status;
        ctx.request_id = g.ctx.request_id;
      }
    }
    if (failure) std::rethrow_exception(failure);
    // Assemble: every group must be the same object version.
    for (auto& g : groups) {
      std::uint64_t body_first = g.first;
      std::uint64_t total = 0;
      if (g.head.status == 206) {
        auto cr = parse_content_range(g.head.content_range);
        if (!cr || cr->first != g.first || cr->last - cr->first + 1 != g.body.size()) {
          throw error(errc::protocol_error, "bad Content-Range '" + g.head.content_range + "'");
        }
        total = cr->total;
      } else {  // whole object
        body_first = 0;
        total = g.body.size();
      }
      if (r.etag.empty()) {
        r.etag = g.head.etag;
        r.object_size = total;
      } else if (g.head.etag != r.etag) {
        throw error(errc::shard_changed, "s3://" + bucket + "/" + key +
                                             " changed between range requests (ETag " + r.etag +
                                             " then " + g.head.etag + ")");
      }
      ++r.requests;
      for (auto i : g.members) {
        auto [f, l] = spans[i];
        std::uint64_t off = f - body_first;
        if (off > g.body.size()) off = g.body.size();
        std::uint64_t len = (l == kOpen ? g.body.size() : l - f + 1);
        len = std::min<std::uint64_t>(len, g.body.size() - off);
        r.bodies[i].assign(g.body, static_cast<std::size_t>(off), static_cast<std::size_t>(len));
      }
    }
    co_return r;
  }

  // Runs `op` and completes `h` with (ec, result); result.diagnostics etc. are filled on error.
  // `operation` names it in metrics (an operation that fails counts as one on_s3_error).
  template <typename R, typename Fn>
  void launch(std::string_view operation, S3Client::handler<R> h, Fn make_op) {
    auto slot = asio::get_associated_cancellation_slot(h);
    auto self = shared_from_this();
    auto run = [](std::shared_ptr<S3ClientImpl> self, std::string_view operation,
                  S3Client::handler<R> h, Fn make_op) -> asio::awaitable<void> {
      co_await asio::this_coro::reset_cancellation_state(asio::enable_total_cancellation());
      OpContext ctx;
      error_code ec;
      R result;
      std::string diag;
      try {
        result = co_await make_op(*self, ctx);
      } catch (const error& e) {
        ec = e.code();
        diag = e.diagnostics();
      } catch (const boost::system::system_error& e) {
        ec = e.code() == asio::error::operation_aborted ? make_error_code(errc::cancelled)
                                                        : make_error_code(errc::io_error);
        diag = e.what();
      } catch (const std::bad_alloc&) {
        ec = make_error_code(errc::io_error);
        diag = "out of memory";
      } catch (const std::exception& e) {
        ec = make_error_code(errc::io_error);
        diag = e.what();
      }
      if (ec) {
        result = R{};
        result.diagnostics = std::move(diag);
        if (self->metrics) self->metrics->on_s3_error(operation);
      }
      result.status = ctx.status;
      result.attempts = ctx.attempts;
      result.request_id = std::move(ctx.request_id);
      auto ex = self->executor;
      asio::dispatch(ex, asio::append(std::move(h), ec, std::move(result)));
    };
    asio::co_spawn(executor, run(std::move(self), operation, std::move(h), std::move(make_op)),
                   asio::bind_cancellation_slot(slot, asio::detached));
  }

  // launch() of the member operation `fn`, called once as (this->*fn)(args..., ctx): the
  // arguments move into the started operation and from there into fn's coroutine frame.
  template <typename R, typename Fn, typename... Args>
  void launch_call(std::string_view operation, S3Client::handler<R> h, Fn fn, Args... args) {
    launch<R>(
        operation, std::move(h),
        [fn, a = std::make_tuple(std::move(args)...)](S3ClientImpl& c, OpContext& ctx) mutable {
          return std::apply([&](auto&... x) { return (c.*fn)(std::move(x)..., ctx); }, a);
        });
  }

  asio::any_io_executor executor;
  S3Options options;
  MetricsSink* metrics = nullptr;  // options.metrics.get() (kept alive by options)
  s3::Endpoint endpoint;
  std::shared_ptr<CredentialsProvider> credentials;
  s3::SigningKeyCache keys;
  s3::Transport transport;
};

}  // namespace detail

S3Client::S3Client(executor_type executor, S3Options options)
    : impl_(std::make_shared<detail::S3ClientImpl>(std::move(executor), std::move(options))) {}
S3Client::~S3Client() = default;

S3Client::executor_type S3Client::get_executor() const noexcept { return impl_->executor; }
const S3Options& S3Client::options() const noexcept { return impl_->options; }

void S3Client::start_get_object(const impl_ptr& impl, std::string bucket, std::string key,
                                GetObjectRequest req, handler<GetObjectResult> h) {
  impl->launch_call("GetObject", std::move(h), &detail::S3ClientImpl::get_object, std::move(bucket),
                    std::move(key), std::move(req));
}

void S3Client::start_head_object(const impl_ptr& impl, std::string bucket, std::string key,
                                 handler<HeadObjectResult> h) {
  impl->launch_call("HeadObject", std::move(h), &detail::S3ClientImpl::head_object,
                    std::move(bucket), std::move(key));
}

void S3Client::start_put_object(const impl_ptr& impl, std::string bucket, std::string key,
                                std::string body, PutObjectRequest req,
                                handler<PutObjectResult> h) {
  impl->launch_call("PutObject", std::move(h), &detail::S3ClientImpl::put_object, std::move(bucket),
                    std::move(key), std::move(body), std::move(req));
}

void S3Client::start_put_object_from_file(const impl_ptr& impl, std::string bucket, std::string key,
                                          std::filesystem::path file, PutObjectRequest req,
                                          handler<PutObjectResult> h) {
  impl->launch_call("PutObject", std::move(h), &detail::S3ClientImpl::put_object_from_file,
                    std::move(bucket), std::move(key), std::move(file), std::move(req));
}

void S3Client::start_delete_object(const impl_ptr& impl, std::string bucket, std::string key,
                                   handler<DeleteObjectResult> h) {
  impl->launch_call("DeleteObject", std::move(h), &detail::S3ClientImpl::delete_object,
                    std::move(bucket), std::move(key));
}

void S3Client::start_list_objects_v2(const impl_ptr& impl, std::string bucket,
                                     ListObjectsRequest req, handler<ListObjectsResult> h) {
  impl->launch_call("ListObjectsV2", std::move(h), &detail::S3ClientImpl::list_objects_v2,
                    std::move(bucket), std::move(req));
}

void S3Client::start_download_to_file(const impl_ptr& impl, std::string bucket, std::string key,
                                      std::filesystem::path file, DownloadRequest req,
                                      handler<DownloadResult> h) {
  impl->launch_call("GetObject", std::move(h), &detail::S3ClientImpl::download_to_file,
                    std::move(bucket), std::move(key), std::move(file), std::move(req));
}

void S3Client::start_get_ranges(const impl_ptr& impl, std::string bucket, std::string key,
                                GetRangesRequest req, handler<GetRangesResult> h) {
  impl->launch_call("GetObject", std::move(h), &detail::S3ClientImpl::get_ranges, std::move(bucket),
                    std::move(key), std::move(req));
}

}  // namespace shardy
