// ObjectStore over S3Client for s3:// URLs, and make_object_store's dispatch by scheme.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <shardy/local_store.hpp>
#include <shardy/store.hpp>

namespace shardy {

namespace asio = boost::asio;

S3Url parse_s3_url(std::string_view url) {
  constexpr std::string_view scheme = "s3://";
  if (url.substr(0, scheme.size()) != scheme) {
    throw error(errc::invalid_url, "not an s3:// URL: '" + std::string(url) + "'");
  }
  std::string_view rest = url.substr(scheme.size());
  auto slash = rest.find('/');
  S3Url out;
  out.bucket = std::string(rest.substr(0, slash));
  if (slash != std::string_view::npos) out.key = std::string(rest.substr(slash + 1));
  if (out.bucket.empty()) throw error(errc::invalid_url, "no bucket in '" + std::string(url) + "'");
  return out;
}

namespace {

constexpr auto tuple = asio::as_tuple(asio::use_awaitable);

void throw_if(const error_code& ec, const S3Response& r) {
  if (ec) throw error(ec, r.diagnostics);
}

// Both put forms: the store's options as the client's request, the client's answer as the store's.
PutObjectRequest put_request(PutOptions options) {
  return PutObjectRequest(std::move(options.content_type), options.if_none_match,
                          std::move(options.if_match));
}

PutResult put_result(PutObjectResult r) {
  PutResult out;
  out.etag = std::move(r.etag);
  return out;
}

std::string object_url(std::string_view bucket, std::string_view key) {
  std::string u = "s3://";
  u += bucket;
  u += '/';
  u += key;
  return u;
}

class S3Store final : public ObjectStore {
 public:
  explicit S3Store(S3Client client) : client_(std::move(client)) {}

  asio::awaitable<GetResult> get(std::string url, GetOptions options) override {
    auto u = parse_s3_url(url);
    GetObjectRequest req(options.range, std::move(options.if_match));
    auto [ec, r] = co_await client_.async_get_object(u.bucket, u.key, std::move(req), tuple);
    throw_if(ec, r);
    GetResult out;
    out.range_offset = r.range_offset();
    out.object_size = r.size;
    out.etag = std::move(r.etag);
    out.body = std::move(r.body);
    co_return out;
  }

  asio::awaitable<ObjectInfo> head(std::string url) override {
    auto u = parse_s3_url(url);
    auto [ec, r] = co_await client_.async_head_object(u.bucket, u.key, tuple);
    throw_if(ec, r);
    ObjectInfo info;
    info.url = std::move(url);
    info.size = r.size;
    info.etag = std::move(r.etag);
    info.last_modified = r.last_modified;
    co_return info;
  }

  asio::awaitable<PutResult> put(std::string url, std::string body, PutOptions options) override {
    auto u = parse_s3_url(url);
    auto req = put_request(std::move(options));
    auto [ec, r] =
        co_await client_.async_put_object(u.bucket, u.key, std::move(body), std::move(req), tuple);
    throw_if(ec, r);
    co_return put_result(std::move(r));
  }

  asio::awaitable<PutResult> put_file(std::string url, std::filesystem::path file,
                                      PutOptions options) override {
    auto u = parse_s3_url(url);
    auto req = put_request(std::move(options));
    auto [ec, r] = co_await client_.async_put_object_from_file(u.bucket, u.key, std::move(file),
                                                               std::move(req), tuple);
    throw_if(ec, r);
    co_return put_result(std::move(r));
  }

  asio::awaitable<void> remove(std::string url) override {
    auto u = parse_s3_url(url);
    auto [ec, r] = co_await client_.async_delete_object(u.bucket, u.key, tuple);
    throw_if(ec, r);
  }

  asio::awaitable<ListResult> list(std::string prefix_url, ListOptions options) override {
    auto u = parse_s3_url(prefix_url);
    ListObjectsRequest req(u.key, options.delimiter);
    req.max_keys = options.max_keys;
    auto [ec, r] = co_await client_.async_list_objects_v2(u.bucket, std::move(req), tuple);
    throw_if(ec, r);
    ListResult out;
    out.objects.reserve(r.objects.size());
    for (auto& o : r.objects) {
      ObjectInfo info;
      info.url = object_url(u.bucket, o.key);
      info.size = o.size;
      info.etag = std::move(o.etag);
      info.last_modified = o.last_modified;
      out.objects.push_back(std::move(info));
    }
    out.common_prefixes.reserve(r.common_prefixes.size());
    for (auto& p : r.common_prefixes) out.common_prefixes.push_back(object_url(u.bucket, p));
    co_return out;
  }

  asio::awaitable<ObjectInfo> download(std::string url, std::filesystem::path file,
                                       ProgressCallback progress, std::string if_match) override {
    auto u = parse_s3_url(url);
    DownloadRequest req(std::move(if_match), std::move(progress));
    auto [ec, r] = co_await client_.async_download_to_file(u.bucket, u.key, std::move(file),
                                                           std::move(req), tuple);
    throw_if(ec, r);
    ObjectInfo info;
    info.url = std::move(url);
    info.size = r.size;
    info.etag = std::move(r.etag);
    co_return info;
  }

 private:
  S3Client client_;
};

// Routes each URL to the store for its scheme.
class SchemeStore final : public ObjectStore {
 public:
  SchemeStore(std::shared_ptr<ObjectStore> s3, std::shared_ptr<ObjectStore> file)
      : s3_(std::move(s3)), file_(std::move(file)) {}

  asio::awaitable<GetResult> get(std::string url, GetOptions options) override {
    auto& s = route(url);
    co_return co_await s.get(std::move(url), std::move(options));
  }
  asio::awaitable<ObjectInfo> head(std::string url) override {
    auto& s = route(url);
    co_return co_await s.head(std::move(url));
  }
  asio::awaitable<PutResult> put(std::string url, std::string body, PutOptions options) override {
    auto& s = route(url);
    co_return co_await s.put(std::move(url), std::move(body), std::move(options));
  }
  asio::awaitable<PutResult> put_file(std::string url, std::filesystem::path file,
                                      PutOptions options) override {
    auto& s = route(url);
    co_return co_await s.put_file(std::move(url), std::move(file), std::move(options));
  }
  asio::awaitable<void> remove(std::string url) override {
    auto& s = route(url);
    co_await s.remove(std::move(url));
  }
  asio::awaitable<ListResult> list(std::string prefix_url, ListOptions options) override {
    auto& s = route(prefix_url);
    co_return co_await s.list(std::move(prefix_url), std::move(options));
  }
  asio::awaitable<ObjectInfo> download(std::string url, std::filesystem::path file,
                                       ProgressCallback progress, std::string if_match) override {
    auto& s = route(url);
    co_return co_await s.download(std::move(url), std::move(file), std::move(progress),
                                  std::move(if_match));
  }

 private:
  ObjectStore& route(std::string_view url) {
    if (url.substr(0, 5) == "s3://") return *s3_;
    if (url.substr(0, 7) == "file://") return *file_;
    throw error(errc::invalid_url,
                "unsupported URL '" + std::string(url) + "' (expected s3:// or file://)");
  }

  std::shared_ptr<ObjectStore> s3_;
  std::shared_ptr<ObjectStore> file_;
};

}  // namespace

std::shared_ptr<ObjectStore> make_s3_store(S3Client client) {
  return std::make_shared<S3Store>(std::move(client));
}

std::shared_ptr<ObjectStore> make_object_store(asio::any_io_executor executor,
                                               StoreOptions options) {
  std::shared_ptr<ObjectStore> s3 = options.object_root.empty()
                                        ? make_s3_store(S3Client(executor, std::move(options.s3)))
                                        : make_mapped_store(executor, options.object_root);
  auto file = make_file_store(executor);
  return std::make_shared<SchemeStore>(std::move(s3), std::move(file));
}

}  // namespace shardy
