// Snapshot cleanup (interop spec 1.8, the CLI's `cleanup`): deletes shard objects no manifest
// will ever need again, as shardyfusion's cleanup_stale_attempts and cleanup_old_runs do, with
// one safety rule of shardy's own.
//
// 1. Stale attempts: for the target manifest (_CURRENT, a ref, or the N-th newest manifest), for
//    every shard with a db_url, every attempt=* directory under
//    <s3_prefix>/<shard_prefix>/run_id=<R>/<db_path_template(db_id)>/ other than the winner.
// 2. Old runs (only when include_old_runs, older_than or keep_last is set): every run_id=*
//    directory under <prefix>/<shard_prefix>/ whose run id is not protected. Protected = the
//    intersection of the active criteria over list_manifests(max_manifests) (include_old_runs:
//    runs that have a manifest; older_than: runs whose manifest directory time >= now - D;
//    keep_last: the runs of the N newest manifests), plus the target manifest's run.
//
// Unlike the reference, runs in flight are never touched (neither as old runs nor their
// attempts): a run whose run record (<prefix>/<run_registry_prefix>/.../run.yaml) says `running`
// with an unexpired lease or an update within running_grace is spared, and so is a run whose
// record cannot be read or parsed (fail safe). Run records are read after the shard directories
// are listed: a run that had shards when we looked had already written its record (the writer
// writes it first), so it cannot slip between the two listings.
//
// Dry run by default: nothing is deleted unless dry_run is false; the report lists what would
// be (or was) deleted either way.
#pragma once

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/deferred.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <shardy/error.hpp>
#include <shardy/manifest_store.hpp>
#include <shardy/object_store.hpp>
#include <string>
#include <vector>

namespace shardy {

struct CleanupOptions {
  /// The snapshot prefix (s3://bucket/key or file:///dir).
  std::string prefix;
  /// The target manifest: this ref if set, else the target_offset-th newest manifest (0 =
  /// newest) if set, else the one _CURRENT names.
  std::string target_ref;
  std::optional<std::size_t> target_offset;
  /// Old-run criteria (none set: only stale attempts are cleaned).
  bool include_old_runs = false;
  std::optional<std::chrono::seconds> older_than;
  std::optional<std::size_t> keep_last;
  /// A `running` run record updated within this (or with an unexpired lease) spares its run.
  std::chrono::seconds running_grace = std::chrono::hours(24);
  std::string run_registry_prefix = "runs";
  /// Manifests consulted for the old-run criteria (the reference uses 10000).
  std::size_t max_manifests = 10000;
  /// "Now" for older_than and running_grace; empty = the system clock.
  std::optional<Timestamp> now;
  bool dry_run = true;
};

struct CleanupItem {
  enum class kind : std::uint8_t { stale_attempt, old_run };
  kind reason = kind::stale_attempt;
  std::string prefix;                ///< directory URL, ending in '/'
  std::string run_id;                ///< the run the directory belongs to
  std::vector<std::string> objects;  ///< object URLs under prefix (deleted unless dry run)
  std::uint64_t bytes = 0;
  bool deleted = false;
};

struct SparedRun {
  enum class kind : std::uint8_t { running, unreadable_run_record };
  kind reason = kind::running;
  std::string run_id;
  std::string run_record;  ///< URL of the run record that spared it
};

struct CleanupReport {
  ManifestRef target;  ///< the target manifest (ref, run id)
  /// Runs protected by the manifest criteria (sorted; empty when no old-run criterion is set).
  std::vector<std::string> protected_runs;
  /// Runs spared because they may be in flight (only those that had something to delete).
  std::vector<SparedRun> spared;
  std::vector<CleanupItem> items;
};

std::string_view to_string(CleanupItem::kind k) noexcept;
std::string_view to_string(SparedRun::kind k) noexcept;

/// Plans and (unless options.dry_run) performs the cleanup. Throws shardy::error. Any failure
/// before the first deletion deletes nothing.
boost::asio::awaitable<CleanupReport> cleanup_snapshot(std::shared_ptr<ObjectStore> store,
                                                       std::shared_ptr<ManifestStore> manifests,
                                                       CleanupOptions options);

/// Completion signature void(error_code, CleanupReport).
void async_cleanup_snapshot_erased(
    boost::asio::any_io_executor ex, std::shared_ptr<ObjectStore> store,
    std::shared_ptr<ManifestStore> manifests, CleanupOptions options,
    boost::asio::any_completion_handler<void(error_code, CleanupReport)> handler);

template <typename CompletionToken = boost::asio::deferred_t>
auto async_cleanup_snapshot(boost::asio::any_io_executor ex, std::shared_ptr<ObjectStore> store,
                            std::shared_ptr<ManifestStore> manifests, CleanupOptions options,
                            CompletionToken&& token = {}) {
  return boost::asio::async_initiate<CompletionToken, void(error_code, CleanupReport)>(
      [](auto handler, boost::asio::any_io_executor ex, std::shared_ptr<ObjectStore> store,
         std::shared_ptr<ManifestStore> manifests, CleanupOptions options) {
        async_cleanup_snapshot_erased(std::move(ex), std::move(store), std::move(manifests),
                                      std::move(options), std::move(handler));
      },
      token, std::move(ex), std::move(store), std::move(manifests), std::move(options));
}

}  // namespace shardy
