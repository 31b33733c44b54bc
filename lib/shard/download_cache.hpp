// The download-and-cache tier (reader-features L-06, M-01..M-05, with the M-05 gaps closed):
// shard.db is streamed into a local cache directory, then opened immutable + mmap.
//
// Layout: <root>/entry-<16 hex>/ where the hex is XXH3-64 of (db_url, checkpoint_id), holding
//   shard.db              the database, complete and size-checked
//   identity.json         {"db_url","checkpoint_id","etag","db_bytes"} (written before shard.db)
//   .lock                 flock: shared while a process has the shard open, exclusive while one
//                         downloads or removes the entry
//   shard.db.tmp.<pid>.<n>  a download in progress (removed on failure and by the next writer)
// A second open of the same snapshot (even after a restart, or from another process) finds
// shard.db + a matching identity.json and downloads nothing. Entries are removed after a refresh
// retires them (retire()), but only when no process holds them open (exclusive lock succeeds).
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>

#include "shard/shard.hpp"

namespace shardy::shard {

struct DownloadCacheOptions {
  std::filesystem::path root;                  ///< the cache directory (created if missing)
  std::size_t max_concurrent_downloads = 4;    ///< per factory (i.e. per reader)
  bool remove_retired = true;                  ///< drop entries a refresh retired (when unused)
  std::int64_t mmap_size = 256ll << 20;        ///< per connection
  std::size_t max_connections_per_shard = 64;  ///< concurrent lookups per shard
  std::chrono::milliseconds checkout_timeout{30000};  ///< wait for a free connection (B-04)
};

std::shared_ptr<ShardFactory> make_download_shard_factory(DownloadCacheOptions options);

/// The entry directory of a shard inside `root` (exposed for tests and tools).
std::filesystem::path cache_entry_dir(const std::filesystem::path& root, std::string_view db_url,
                                      std::string_view checkpoint_id);

}  // namespace shardy::shard
