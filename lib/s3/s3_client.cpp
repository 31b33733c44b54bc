// S3Client: public entry points. The transport (Beast/TLS) lands in a later commit; until then
// every operation completes with errc::unsupported so that callers can build against the API.
#include <boost/asio/append.hpp>
#include <boost/asio/post.hpp>
#include <shardy/s3_client.hpp>

namespace shardy {
namespace detail {

class S3ClientImpl {
 public:
  S3ClientImpl(boost::asio::any_io_executor ex, S3Options opts)
      : executor(std::move(ex)), options(std::move(opts)) {}
  boost::asio::any_io_executor executor;
  S3Options options;
};

}  // namespace detail

namespace {
template <typename R>
void fail_unsupported(const std::shared_ptr<detail::S3ClientImpl>& impl, S3Client::handler<R> h) {
  R r;
  r.diagnostics = "S3 transport not implemented yet";
  boost::asio::post(
      impl->executor,
      boost::asio::append(std::move(h), make_error_code(errc::unsupported), std::move(r)));
}
}  // namespace

S3Client::S3Client(executor_type executor, S3Options options)
    : impl_(std::make_shared<detail::S3ClientImpl>(std::move(executor), std::move(options))) {}
S3Client::~S3Client() = default;

S3Client::executor_type S3Client::get_executor() const noexcept { return impl_->executor; }
const S3Options& S3Client::options() const noexcept { return impl_->options; }

void S3Client::start_get_object(const impl_ptr& impl, std::string, std::string, GetObjectRequest,
                                handler<GetObjectResult> h) {
  fail_unsupported(impl, std::move(h));
}
void S3Client::start_head_object(const impl_ptr& impl, std::string, std::string,
                                 handler<HeadObjectResult> h) {
  fail_unsupported(impl, std::move(h));
}
void S3Client::start_put_object(const impl_ptr& impl, std::string, std::string, std::string,
                                PutObjectRequest, handler<PutObjectResult> h) {
  fail_unsupported(impl, std::move(h));
}
void S3Client::start_put_object_from_file(const impl_ptr& impl, std::string, std::string,
                                          std::filesystem::path, PutObjectRequest,
                                          handler<PutObjectResult> h) {
  fail_unsupported(impl, std::move(h));
}
void S3Client::start_delete_object(const impl_ptr& impl, std::string, std::string,
                                   handler<DeleteObjectResult> h) {
  fail_unsupported(impl, std::move(h));
}
void S3Client::start_list_objects_v2(const impl_ptr& impl, std::string, ListObjectsRequest,
                                     handler<ListObjectsResult> h) {
  fail_unsupported(impl, std::move(h));
}
void S3Client::start_download_to_file(const impl_ptr& impl, std::string, std::string,
                                      std::filesystem::path, DownloadRequest,
                                      handler<DownloadResult> h) {
  fail_unsupported(impl, std::move(h));
}
void S3Client::start_get_ranges(const impl_ptr& impl, std::string, std::string, GetRangesRequest,
                                handler<GetRangesResult> h) {
  fail_unsupported(impl, std::move(h));
}

}  // namespace shardy
