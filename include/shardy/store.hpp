// Building ObjectStores: by URL scheme (s3://, file://), with an optional mapped local root
// that serves s3://bucket/key from <root>/bucket/key (a snapshot copied out of S3 reads without
// any server; its manifest holds absolute s3:// URLs).
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <filesystem>
#include <memory>
#include <shardy/object_store.hpp>
#include <shardy/s3_client.hpp>
#include <string_view>

namespace shardy {

struct StoreOptions {
  S3Options s3;  ///< used for s3:// URLs when object_root is empty
  /// When set, s3://bucket/key is read from and written to object_root/bucket/key instead of S3.
  std::filesystem::path object_root;
};

/// One store for every URL shardy meets: file:// goes to the local directory store, s3:// to
/// the S3 client (or to the mapped root when StoreOptions::object_root is set). Other schemes
/// fail with errc::invalid_url when used. Throws shardy::error for unusable S3 options.
std::shared_ptr<ObjectStore> make_object_store(boost::asio::any_io_executor executor,
                                               StoreOptions options);

/// An ObjectStore over an S3Client (s3:// URLs only).
std::shared_ptr<ObjectStore> make_s3_store(S3Client client);

/// "s3://bucket/key" -> {bucket, key}; the key is taken verbatim (no percent-decoding) and may
/// be empty (a bucket or prefix URL). Throws shardy::error(errc::invalid_url).
struct S3Url {
  std::string bucket;
  std::string key;
};
S3Url parse_s3_url(std::string_view url);

}  // namespace shardy
