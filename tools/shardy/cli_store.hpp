// The object store the writer-side commands (build, history, rollback, cleanup) talk to, from
// the global options: --object-root maps s3:// URLs to a local folder; file:// prefixes use the
// local directory store; s3:// goes to S3 (endpoint, region, path-style from the options, the
// rest from the environment).
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <memory>
#include <shardy/object_store.hpp>
#include <string>

#include "commands.hpp"

#if __has_include(<shardy/store.hpp>)
#include <shardy/store.hpp>
#define SHARDY_CLI_HAS_S3_STORE 1
#endif
#include <shardy/error.hpp>
#include <shardy/local_store.hpp>

namespace shardy::cli {

inline std::shared_ptr<ObjectStore> open_cli_store(boost::asio::any_io_executor ex) {
  const GlobalOptions& g = global_options();
#ifdef SHARDY_CLI_HAS_S3_STORE
  StoreOptions so;
  so.s3 = S3Options::from_environment();
  if (!g.endpoint.empty()) so.s3.endpoint = g.endpoint;
  if (!g.region.empty()) so.s3.region = g.region;
  if (g.path_style) so.s3.addressing = S3Options::Addressing::path;
  so.object_root = g.object_root;
  return make_object_store(std::move(ex), std::move(so));
#else
  if (!g.object_root.empty()) return make_mapped_store(std::move(ex), g.object_root);
  if (g.prefix.rfind("file://", 0) == 0) return make_file_store(std::move(ex));
  throw_error(errc::unsupported,
              "this build has no S3 store: use a file:// prefix or --object-root");
#endif
}

/// The --prefix option, required by the writer-side commands.
inline const std::string& required_prefix() {
  const std::string& p = global_options().prefix;
  if (p.empty()) throw_error(errc::invalid_argument, "--prefix is required");
  return p;
}

}  // namespace shardy::cli
