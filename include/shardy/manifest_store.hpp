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
///
/// Layout and semantics of shardyfusion's S3ManifestStore (spec 5.1): _CURRENT at
/// <P>/<current_pointer_key>; load_current maps object_not_found to nullopt and a malformed
/// pointer to errc::manifest_parse_error; list_manifests is one delimiter listing of
/// <P>/manifests/, keeps directories matching
/// ^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z_run_id=[^/]+/?$ , refs
/// <P>/manifests/<dir>/<manifest_name> (existence not checked), newest first by the directory
/// timestamp (stable over ascending names), at most `limit` (0 gives none); publish PUTs the
/// manifest (application/x-sqlite3) at manifests/<TS, 6 fractional digits>_run_id=<R>/manifest
/// create-only (If-None-Match: *; manifests are immutable, spec 1.3: an existing object with
/// other bytes fails with errc::precondition_failed and _CURRENT is left alone, one with the same
/// bytes, e.g. from a retried PUT whose response was lost, counts as written), then _CURRENT
/// (application/json), and returns the ref with the directory time; set_current
/// takes the run id from the first "run_id=<...>" in the ref (errc::invalid_argument if none) and
/// neither validates nor checks the manifest.
///
/// Bucket of a manifest_ref (spec 1.4): honoured only as far as Python honours it. For an
/// s3:// prefix, load_manifest reads the ref's *key* from the bucket this store was configured
/// with and ignores the bucket named in the ref, exactly like shardyfusion's S3 store. Why: shardy
/// then loads the very object a Python reader loads for the same prefix (a snapshot copied or
/// replicated to another bucket keeps working the same way in both), and a pointer can never make
/// the reader fetch from a bucket it was not pointed at. Shard db_urls are not affected: their
/// buckets are honoured, as in Python. For a file:/// prefix, refs are used as they are.
std::shared_ptr<ManifestStore> make_object_manifest_store(std::shared_ptr<ObjectStore> objects,
                                                          std::string prefix_url,
                                                          ManifestStoreOptions options = {});

}  // namespace shardy
