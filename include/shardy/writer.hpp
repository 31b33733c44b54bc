// The snapshot writer: records in, a shardyfusion-readable snapshot out (interop spec sections
// 1, 2, 4.1, 4.5, 6). Records are routed (HASH, xxh3_64) and spilled per shard to local files
// (the input never has to fit in memory), each non-empty shard is built as a SQLite file
// (`kv(k BLOB PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID`, the last write of a key wins) and
// uploaded to <prefix>/shards/run_id=<R>/db=<NNNNN>/attempt=00/shard.db, followed by its v8
// page-cache sidecar bound to the ETag the store returned; then the manifest, then _CURRENT.
// A run record (runs/<TS>_run_id=<R>_<uuid>/run.yaml) tracks the run: running, then
// succeeded or failed.
#pragma once

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/json/object.hpp>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <shardy/error.hpp>
#include <shardy/key.hpp>
#include <shardy/manifest.hpp>
#include <shardy/manifest_store.hpp>
#include <shardy/object_store.hpp>
#include <shardy/routing.hpp>
#include <string>
#include <vector>

namespace shardy {

/// WriterOptions::page_size value meaning "auto" (spec 4.1: pick the page size from the p95
/// value length after writing, then VACUUM).
inline constexpr std::uint32_t kPageSizeAuto = 0xFFFFFFFFu;

/// A snapshshot of the build's progress (for progress displays).
struct BuildProgress {
  enum class phase : std::uint8_t { routing, building, publishing, done };
  phase stage = phase::routing;
  std::uint64_t records_read = 0;
  std::uint32_t shards_total = 0;  ///< non-empty shards (known once routing is done)
  std::uint32_t shards_done = 0;   ///< built and uploaded
  std::uint64_t bytes_uploaded = 0;
};

struct WriterOptions {
  /// The snapshot prefix: s3://bucket/key or file:///dir (stored in the manifest as given).
  std::string prefix;
  std::uint32_t num_dbs = 8;
  KeyEncoding key_encoding = KeyEncoding::u64be;
  /// 0 = 4096 (the default); 4096, 8192, 16384, 32768 or 65536; or kPageSizeAuto.
  std::uint32_t page_size = 0;
  /// Empty: a random 32-hex id (uuid4().hex style). Must not contain '/'.
  std::string run_id;
  std::string shard_prefix = "shards";
  /// A Python str.format template with one field db_id: "{db_id}" or "{db_id:0Nd}" forms.
  std::string db_path_template = "db={db_id:05d}";
  std::string run_registry_prefix = "runs";
  std::string key_col = "_key";
  /// Shard uploads in flight at once.
  std::size_t max_concurrent_uploads = 4;
  /// Threads that build shard files (blocking SQLite work), owned by the build.
  std::size_t build_threads = 2;
  bool emit_sidecar = true;
  bool write_run_record = true;
  /// Merged into the manifest's `custom` object (sqlite_sidecar is added when emit_sidecar).
  boost::json::object custom_manifest_fields;
  /// Scratch directory for spill files and shard files; empty = a fresh directory under the
  /// system temp directory. Removed when the build ends.
  std::filesystem::path spill_dir;
  /// Memory for spill buffers during routing and for loading a shard's spill while building
  /// (split over build_threads). Shards whose spill does not fit are streamed.
  std::size_t memory_budget = 256u << 20;
  /// Records routed between progress callbacks (and run-record heartbeat checks).
  std::uint64_t progress_interval = 250000;
  /// Called on the build's executor with the current progress. Optional.
  std::function<void(const BuildProgress&)> progress;
};

/// One input record. Reused by RecordSource::next (assign into it).
struct Record {
  Key key = Key::integer(0);
  std::string value;
};

/// The writer's input, read once, in order, by one thread at a time (a build thread).
class RecordSource {
 public:
  virtual ~RecordSource() = default;
  /// Fills `out` and returns true, or returns false at the end. Throws shardy::error on bad
  /// input.
  virtual bool next(Record& out) = 0;
};

/// A RecordSource over records held in memory (tests, small inputs).
std::unique_ptr<RecordSource> make_record_source(std::vector<Record> records);

struct BuildDurations {
  std::chrono::milliseconds routing{0};  ///< reading, routing and spilling the input
  std::chrono::milliseconds write{0};    ///< building and uploading the shards
  std::chrono::milliseconds manifest{0};
  std::chrono::milliseconds total{0};
};

struct BuildStats {
  std::uint64_t rows_written = 0;    ///< records read (duplicates included)
  std::uint64_t distinct_rows = 0;   ///< rows stored (only counted for shards built sorted)
  std::uint32_t shards_written = 0;  ///< non-empty shards
  std::uint64_t shard_bytes = 0;     ///< sum of shard.db sizes
  std::uint64_t sidecar_bytes = 0;   ///< sum of shard.sidecar sizes
  std::uint32_t sidecars_written = 0;
  BuildDurations durations;
};

struct BuildResult {
  std::string run_id;
  ManifestRef manifest;           ///< the published manifest (ref, run id, directory timestamp)
  std::string run_record;         ///< URL of run.yaml (empty when not written)
  std::vector<ShardMeta> shards;  ///< the manifest's rows
  BuildStats stats;
};

/// Builds and publishes a snapshot from `source` into `store` (objects under options.prefix).
/// Completion signature: void(error_code, BuildResult). The error diagnostics are lost in the
/// error_code form; use the coroutine form (build_snapshot) to get shardy::error.
/// Runs on `ex`; blocking work runs on the build's own threads.
void async_build_snapshot_erased(
    boost::asio::any_io_executor ex, std::shared_ptr<ObjectStore> store, WriterOptions options,
    std::unique_ptr<RecordSource> source,
    boost::asio::any_completion_handler<void(error_code, BuildResult)> handler);

template <typename CompletionToken = boost::asio::deferred_t>
auto async_build_snapshot(boost::asio::any_io_executor ex, std::shared_ptr<ObjectStore> store,
                          WriterOptions options, std::unique_ptr<RecordSource> source,
                          CompletionToken&& token = {}) {
  return boost::asio::async_initiate<CompletionToken, void(error_code, BuildResult)>(
      [](auto handler, boost::asio::any_io_executor ex, std::shared_ptr<ObjectStore> store,
         WriterOptions options, std::unique_ptr<RecordSource> source) {
        async_build_snapshot_erased(std::move(ex), std::move(store), std::move(options),
                                    std::move(source), std::move(handler));
      },
      token, std::move(ex), std::move(store), std::move(options), std::move(source));
}

/// The coroutine form: throws shardy::error (with diagnostics) on failure.
boost::asio::awaitable<BuildResult> build_snapshot(std::shared_ptr<ObjectStore> store,
                                                   WriterOptions options,
                                                   std::unique_ptr<RecordSource> source);

/// A fresh random 32-hex id (uuid4().hex form), for run ids and checkpoint ids.
std::string random_hex_id();

/// Formats a db_path_template ("db={db_id:05d}") for one db_id. Supports "{db_id}" and
/// "{db_id:[0][width]d}"; "{{" and "}}" escape braces. errc::invalid_argument otherwise.
std::string format_db_path(std::string_view db_path_template, std::uint32_t db_id);

/// The reference's URL join: strip the base's trailing '/', strip each part's leading and
/// trailing '/', drop empty parts, join with '/'.
std::string join_url(std::string_view base, std::initializer_list<std::string_view> parts);

}  // namespace shardy
