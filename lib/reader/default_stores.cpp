// What a reader uses when the options do not say otherwise: its object store and its shard
// factory (the access tier).
#include <algorithm>
#include <filesystem>
#include <shardy/local_store.hpp>
#include <shardy/store.hpp>

#include "reader/reader_core.hpp"
#include "shard/download_cache.hpp"
#include "shard/range_shard.hpp"

namespace shardy::detail {

std::shared_ptr<ObjectStore> default_object_store(boost::asio::any_io_executor ex,
                                                  const ReaderOptions& o,
                                                  const std::string& /*prefix*/) {
  if (!o.bucket_dirs.empty()) return make_mapped_store(std::move(ex), o.object_root, o.bucket_dirs);
  StoreOptions so;
  so.s3 = o.s3;
  if (!so.s3.metrics) so.s3.metrics = o.metrics;  // S3 request/retry/error events
  so.object_root = o.object_root;
  return make_object_store(std::move(ex), std::move(so));
}

std::shared_ptr<shard::ShardFactory> make_download_factory(const ReaderOptions& o) {
  shard::DownloadCacheOptions d;
  d.root =
      o.local_root.empty() ? std::filesystem::temp_directory_path() / "shardy-cache" : o.local_root;
  d.max_concurrent_downloads = o.max_concurrent_downloads;
  d.remove_retired = o.remove_retired_shards;
  d.mmap_size = o.mmap_size;
  d.max_connections_per_shard = o.max_connections_per_shard;
  d.checkout_timeout = o.pool_checkout_timeout;
  return shard::make_download_shard_factory(std::move(d));
}

std::shared_ptr<shard::ShardFactory> make_range_factory(const ReaderOptions& o) {
  shard::RangeShardOptions r;
  r.page_cache_pages = o.range.page_cache_pages;
  r.sidecar = o.range.use_sidecar ? shard::RangeShardOptions::sidecar_mode::automatic
                                  : shard::RangeShardOptions::sidecar_mode::never;
  r.max_connections = std::max<std::size_t>(1, o.range.max_connections_per_shard);
  r.checkout_timeout = o.pool_checkout_timeout;
  return shard::make_range_shard_factory(r);
}

}  // namespace shardy::detail
