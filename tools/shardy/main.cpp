// shardy: the command-line tool. Commands register themselves from their own files.
#include <iostream>
#include <shardy/error.hpp>

#include "commands.hpp"

namespace shardy::cli {

GlobalOptions& global_options() {
  static GlobalOptions opts;  // the CLI process's own options (not library state)
  return opts;
}

}  // namespace shardy::cli

int main(int argc, char** argv) {
  using namespace shardy::cli;
  CLI::App app{"shardy: read and publish sharded key-value snapshots on S3"};
  app.require_subcommand(1);
  auto& g = global_options();
  app.add_option("--prefix", g.prefix, "snapshot prefix: s3://bucket/prefix or file:///dir");
  app.add_option("--current-url", g.current_url, "explicit URL of the _CURRENT pointer");
  app.add_option("--endpoint", g.endpoint,
                 "S3 endpoint URL (default: AWS or $AWS_ENDPOINT_URL_S3)");
  app.add_option("--region", g.region, "S3 region (default: $AWS_REGION or us-east-1)");
  app.add_flag("--path-style", g.path_style, "use path-style S3 addressing");
  app.add_option("--local-root", g.local_root, "local shard cache directory");
  app.add_option("--object-root", g.object_root,
                 "read s3://bucket/key from DIR/bucket/key (no server)");
  app.add_option("--output", g.output, "output format")
      ->check(CLI::IsMember({"json", "jsonl", "table"}));
  app.add_option("--access", g.access,
                 "how readers read shards: download (local cache), range (S3 range reads in "
                 "place) or auto (range when a shard is >= 16 MiB or all add up to >= 2 GiB)")
      ->check(CLI::IsMember({"download", "range", "auto"}));
  app.add_option("--range-cache-pages", g.range_cache_pages,
                 "range reads: LRU page cache per shard in pages (0 disables; default 1024)");
  app.add_flag("--no-sidecar", g.no_sidecar, "range reads: do not use shard.sidecar");

  auto* version = app.add_subcommand("version", "print the shardy version");
  version->callback([] { std::cout << "shardy 0.1.0\n"; });
  register_route(app);
  register_build_command(app);
  register_admin_commands(app);
  register_read(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const shardy::error& e) {
    std::cerr << "shardy: " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "shardy: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
