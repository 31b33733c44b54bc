// ObjectStore: the one asynchronous object interface that the manifest store, the shard readers
// and the writer use. Objects are named by absolute URLs:
//   s3://bucket/key      through the S3 client, or through a mapped local root
//   file:///dir/key      a local directory (writes are atomic: temp file + rename)
//
// Every operation is a coroutine on the caller's executor. Failures throw shardy::error:
// errc::object_not_found for a missing object, errc::precondition_failed for a failed
// If-Match / If-None-Match, errc::invalid_range for an unsatisfiable range; transport errors as
// in shardy/error.hpp. Implementations are safe to call concurrently from any number of
// coroutines and threads.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <shardy/error.hpp>
#include <string>
#include <vector>

namespace shardy {

/// An HTTP-style byte range: [offset, offset+length), [offset, end) or the last `length` bytes.
struct ByteRange {
  enum class kind : std::uint8_t { bounded, from, suffix };
  kind type = kind::bounded;
  std::uint64_t offset = 0;  // bounded, from
  std::uint64_t length = 0;  // bounded, suffix

  static ByteRange bounded(std::uint64_t offset, std::uint64_t length) noexcept {
    return ByteRange{kind::bounded, offset, length};
  }
  static ByteRange from(std::uint64_t offset) noexcept { return ByteRange{kind::from, offset, 0}; }
  static ByteRange suffix(std::uint64_t length) noexcept {
    return ByteRange{kind::suffix, 0, length};
  }
  friend bool operator==(const ByteRange&, const ByteRange&) = default;
};

struct GetOptions {
  std::optional<ByteRange> range;  ///< whole object when empty
  std::string if_match;  ///< pin the read to this ETag (errc::precondition_failed otherwise)
};

struct GetResult {
  std::string body;                ///< the object, or the requested range of it
  std::string etag;                ///< as the store reports it (S3: with its double quotes)
  std::uint64_t object_size = 0;   ///< size of the whole object (from Content-Range when ranged)
  std::uint64_t range_offset = 0;  ///< offset of body within the object (0 when whole)
};

struct ObjectInfo {
  std::string url;
  std::uint64_t size = 0;
  std::string etag;
  std::optional<std::chrono::system_clock::time_point> last_modified;
};

struct PutOptions {
  std::string content_type = "application/octet-stream";
  bool if_none_match = false;  ///< create only: fail with precondition_failed if it exists
  std::string if_match;        ///< replace only if the current ETag equals this
};

struct PutResult {
  std::string etag;
};

struct ListOptions {
  std::string delimiter;     ///< e.g. "/" for directory-style listing; empty = flat
  std::size_t max_keys = 0;  ///< 0 = everything (all pages)
};

struct ListResult {
  std::vector<ObjectInfo> objects;           ///< full URLs, sorted by key
  std::vector<std::string> common_prefixes;  ///< full URLs ending in the delimiter, sorted
};

/// Progress of a streaming transfer: bytes done so far, and the total when known (else 0).
using ProgressCallback = std::function<void(std::uint64_t done, std::uint64_t total)>;

class ObjectStore {
 public:
  virtual ~ObjectStore() = default;

  virtual boost::asio::awaitable<GetResult> get(std::string url, GetOptions options = {}) = 0;
  virtual boost::asio::awaitable<ObjectInfo> head(std::string url) = 0;
  virtual boost::asio::awaitable<PutResult> put(std::string url, std::string body,
                                                PutOptions options = {}) = 0;
  /// Streams a local file up (shards can be GiBs).
  virtual boost::asio::awaitable<PutResult> put_file(std::string url, std::filesystem::path file,
                                                     PutOptions options = {}) = 0;
  /// Deleting a missing object succeeds (as in S3).
  virtual boost::asio::awaitable<void> remove(std::string url) = 0;
  /// Lists objects whose URL starts with `prefix_url` (every page).
  virtual boost::asio::awaitable<ListResult> list(std::string prefix_url,
                                                  ListOptions options = {}) = 0;
  /// Streams an object straight to `file` (written in place; callers wanting atomicity pass a
  /// temporary path and rename). Returns the object's info (size, ETag).
  virtual boost::asio::awaitable<ObjectInfo> download(std::string url, std::filesystem::path file,
                                                      ProgressCallback progress = {},
                                                      std::string if_match = {}) = 0;
};

}  // namespace shardy
