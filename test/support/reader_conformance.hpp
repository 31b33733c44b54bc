// Reader conformance checks over the shardyfusion fixture snapshots (../shared/fixtures), shared
// by the mapped-local-root test (test/conformance) and the s3rver test (test/integration): the
// caller supplies ReaderOptions that say where the objects live (bucket_dirs or an S3 endpoint);
// the checks are the same. They report mismatches through GoogleTest's EXPECT/ADD_FAILURE.
//
// What is checked, per snapshot:
//   - expected.jsonl: every key's value / absent / error-or-not and route_key (D-01, D-04, E-10),
//     with Reader::get, AsyncReader::async_get and one async_multi_get of all good keys (D-05);
//   - reader_info.json: snapshot_info (G-01, incl. the manifest actually loaded and what _CURRENT
//     names: kv_history_fallback falls back from the corrupt v4 to v3, H-09/H-10) and
//     shard_details (G-02, A-14 synthesized empty shards);
//   - history: list_manifests through a manifest store over the same objects (H-08);
//   - fallback: the fallback metric fires exactly for the snapshot whose manifest is corrupt, and
//     with max_fallback_attempts = 0 that snapshot fails to open with manifest_parse_error;
//   - access tier: the snapshot is read in the tier the caller expects (download / range, issue 5),
//     and the cache says so: download fills options.local_root and a second async open on the
//     same cache downloads nothing (M-03); range never downloads anything.
#pragma once

#include <boost/json/object.hpp>
#include <cstdint>
#include <optional>
#include <shardy/access_mode.hpp>
#include <shardy/key.hpp>
#include <shardy/reader_options.hpp>
#include <string>
#include <vector>

namespace shardy::test {

/// One line of expected/<name>/expected.jsonl.
struct ExpectedCase {
  std::optional<Key> key;  ///< nullopt: the key itself cannot be built (integer beyond u64)
  std::optional<std::uint32_t> shard_id;
  std::optional<std::string> value;  ///< expected value (nullopt: absent)
  bool get_error = false;
  std::string line;
};

/// The snapshot names under fixtures/expected, sorted.
std::vector<std::string> fixture_snapshot_names();
std::vector<ExpectedCase> load_expected_cases(const std::string& name);
boost::json::object load_reader_info(const std::string& name);
/// The snapshot prefix of a fixture (s3://shardy-fixtures/snapshots/<name>).
std::string fixture_prefix(const std::string& name);

/// Reader (blocking): expected.jsonl (get + route_key), snapshot_info, shard_details, health,
/// the fallback metric, the access tier the snapshot ended up in (`tier`) and what it left in
/// the cache (options.local_root: shard files for download, none for range). `options` says
/// where the objects are and which tier to ask for; its metrics are replaced.
void check_sync_reader(const std::string& name, ReaderOptions options,
                       AccessMode tier = AccessMode::download);

/// AsyncReader on a 2-thread pool, opened twice on the same cache (options.local_root):
/// expected.jsonl through async_get and one async_multi_get, snapshot_info, the access tier;
/// download: the first open downloads, the second downloads nothing (M-03); range: neither
/// downloads anything nor leaves a shard file in the cache.
void check_async_reader(const std::string& name, ReaderOptions options,
                        AccessMode tier = AccessMode::download);

/// Manifest history (list_manifests) through a manifest store over `options`' objects matches
/// reader_info.json's list_manifests (H-08); with max_fallback_attempts = 0 a snapshot whose
/// current manifest is corrupt fails to open with manifest_parse_error, the others open.
void check_history_and_fallback(const std::string& name, ReaderOptions options);

}  // namespace shardy::test
