// libFuzzer: parse_manifest must never crash on arbitrary bytes; an accepted manifest must build
// and parse back to the same content.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <shardy/manifest.hpp>
#include <span>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::span<const char> bytes(reinterpret_cast<const char*>(data), size);
  shardy::error_code ec;
  std::string diag;
  shardy::Manifest m = shardy::parse_manifest(bytes, ec, &diag);
  if (ec) {
    if (ec != shardy::errc::manifest_parse_error || diag.empty()) std::abort();
    return 0;
  }
  std::string built;
  try {
    built = shardy::build_manifest(m);
  } catch (const shardy::error&) {
    return 0;  // e.g. a float NaN in custom, which json.dumps would write but JSON cannot hold
  }
  shardy::Manifest n = shardy::parse_manifest(built, ec, &diag);
  if (ec) std::abort();
  if (n.build.run_id != m.build.run_id || n.build.num_dbs != m.build.num_dbs ||
      n.build.created_at != m.build.created_at || n.shards.size() != m.shards.size() ||
      n.build.custom != m.build.custom)
    std::abort();
  for (std::size_t i = 0; i < m.shards.size(); ++i)
    if (n.shards[i].db_id != m.shards[i].db_id || n.shards[i].min_key != m.shards[i].min_key ||
        n.shards[i].max_key != m.shards[i].max_key || n.shards[i].db_url != m.shards[i].db_url)
      std::abort();
  return 0;
}
