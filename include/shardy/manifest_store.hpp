// ManifestStore: the pointer and the manifest history of one snapshot prefix, over an
// ObjectStore (interop spec 1.4, 1.5, 5.1). All operations are coroutines; failures throw
// shardy::error (errc::manifest_parse_error for malformed content).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <memory>
#include <optional>
#include <shardy/manifest.hpp>
#include <shardy/object_store.hpp>
#include <string>
#include <vector>

namespace shardy {

/// A manifest reference: its URL, run id and a publish time. From load_current the time is
/// _CURRENT.updated_at; from list_manifests it is the manifest directory's timestamp.
struct ManifestRef {
  std::string ref;
  std::string run_id;
  Timestamp published_at{};
};

struct ManifestStoreOptions {
  std::string manifest_name = "manifest";
  std::string current_pointer_key = "_CURRENT";
};

class ManifestStore {
 public:
  virtual ~ManifestStore() = default;

  /// The pointer, or nullopt when there is none (404).
  virtual boost::asio::awaitable<std::optional<ManifestRef>> load_current() = 0;
  virtual boost::asio::awaitable<Manifest> load_manifest(std::string ref) = 0;
  /// Newest first by directory timestamp (ties keep ascending name order); at most `limit`.
  virtual boost::asio::awaitable<std::vector<ManifestRef>> list_manifests(
      std::size_t limit = 10) = 0;
  /// PUT the manifest under manifests/<TS>_run_id=<R>/manifest, then _CURRENT. Returns the ref.
  virtual boost::asio::awaitable<ManifestRef> publish(const Manifest& manifest) = 0;
  /// Rewrites _CURRENT to name `ref` (rollback). The run id is taken from the ref.
  virtual boost::asio::awaitable<ManifestRef> set_current(std::string ref) = 0;
};

/// The S3-layout store rooted at `prefix_url` (s3://bucket/prefix or file:///dir; a trailing '/'
/// is stripped) over `objects`.
std::shared_ptr<ManifestStore> make_object_manifest_store(std::shared_ptr<ObjectStore> objects,
                                                          std::string prefix_url,
                                                          ManifestStoreOptions options = {});

}  // namespace shardy
