// Each CLI command lives in its own file and registers itself on the app in main.cpp.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>

namespace shardy {
class Reader;
}

namespace shardy::cli {

/// Options shared by every command that talks to a snapshot or an object store.
struct GlobalOptions {
  std::string prefix;                    // --prefix s3://bucket/prefix or file:///dir
  std::string current_url;               // --current-url: explicit pointer URL
  std::string endpoint;                  // --endpoint http://127.0.0.1:9000
  std::string region;                    // --region
  bool path_style = false;               // --path-style
  std::string local_root;                // --local-root: shard cache directory
  std::string object_root;               // --object-root: s3://bucket/key -> DIR/bucket/key
  std::string output = "json";           // --output json|jsonl|table
  std::string access = "auto";           // --access download|range|auto (reader commands)
  std::size_t range_cache_pages = 1024;  // --range-cache-pages N (0 disables the LRU)
  bool no_sidecar = false;               // --no-sidecar: range reads ignore shard.sidecar
};

GlobalOptions& global_options();

/// A Reader on --prefix / --current-url with the global options (read.cpp); lazy shard opening,
/// so only the pointer and the manifest are read until a lookup needs a shard.
std::unique_ptr<Reader> open_snapshot_reader();

void register_route(CLI::App& app);           // route.cpp
void register_build_command(CLI::App& app);   // build.cpp
void register_admin_commands(CLI::App& app);  // admin.cpp: history, rollback, cleanup
void register_read(CLI::App& app);  // read.cpp: get, multiget, info, shards, health, bench

}  // namespace shardy::cli
