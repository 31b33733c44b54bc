// ObjectStores over the local file system, with S3's semantics:
//
//   make_file_store(ex)            file:///abs/path URLs name the file /abs/path
//   make_mapped_store(ex, root)    s3://bucket/key URLs name the file <root>/bucket/key (no server;
//                                  e.g. the shardyfusion fixtures under bucket shardy-fixtures)
//
// Semantics shared by both (what the S3 client gives against a real bucket):
//   - ETag: the quoted MD5 hex of the content ("\"d41d8cd9...\""), as S3 returns for a
//     single-part PUT. It is computed on first use and cached per file (path, inode, size, mtime).
//   - put/put_file are atomic: a temp file in the same directory, fsync, rename (then the
//     directory is fsynced). If-None-Match creates with link(2), so it is atomic even across
//     processes; If-Match compares and renames under a per-store mutex (atomic within this
//     process only). Failed preconditions are errc::precondition_failed.
//   - get ranges follow S3/RFC 9110: bounded ranges are clipped at the end, a suffix longer than
//     the object returns all of it, a range starting at or past the end (or any range of an empty
//     object, or a zero-length suffix) is errc::invalid_range (416). A zero-length bounded range
//     cannot be expressed in HTTP and is errc::invalid_argument.
//   - list: keys sorted by byte order; with a delimiter, keys with the delimiter after the prefix
//     fold into common prefixes, exactly as ListObjectsV2; max_keys caps objects + prefixes.
//     Temp files of in-flight writes are never listed. Directories are not objects.
//   - missing objects are errc::object_not_found; remove of a missing object succeeds.
//   - URLs are used verbatim (no percent-decoding). Keys with empty, "." or ".." segments or NUL
//     bytes are errc::invalid_url (they have no faithful file-system form).
//
// File I/O runs synchronously inside the coroutines, on the caller's thread: acceptable for local
// files (page-cache speed), but a slow disk blocks the executor while it works.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <filesystem>
#include <map>
#include <memory>
#include <shardy/object_store.hpp>
#include <string>

namespace shardy {

std::shared_ptr<ObjectStore> make_file_store(boost::asio::any_io_executor executor);

std::shared_ptr<ObjectStore> make_mapped_store(boost::asio::any_io_executor executor,
                                               std::filesystem::path root);

/// Like the above, but the buckets named in `bucket_dirs` map to their own folders:
/// s3://<bucket>/key is <bucket_dirs[bucket]>/key. Other buckets map to <root>/<bucket>/key, or
/// fail with errc::invalid_url when `root` is empty. The shardyfusion fixtures need this: bucket
/// shardy-fixtures is the fixtures folder itself.
std::shared_ptr<ObjectStore> make_mapped_store(
    boost::asio::any_io_executor executor, std::filesystem::path root,
    std::map<std::string, std::filesystem::path> bucket_dirs);

}  // namespace shardy
