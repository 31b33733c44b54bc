// `shardy route`: where keys go (interop spec 3, reader-features E-10, S-20). It prints, per key,
// the canonical bytes, the XXH3-64 hash, the shard id and the lookup-encoded storage key.
// With --num-dbs it needs no snapshot. Without it, the keys are routed against the snapshot at
// --prefix / --current-url (with --object-root, --endpoint ... as for `get`): the snapshot's
// manifest gives num_dbs and the key encoding, the reader routes (AsyncReader::route_key, so the
// answer is what `get` would use), and each line also names the shard's db_url (null for an
// empty shard). Only the pointer and the manifest are read; no shard is downloaded.
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <shardy/reader.hpp>
#include <shardy/routing.hpp>

#include "commands.hpp"
#include "hex.hpp"

namespace shardy::cli {
namespace {

struct RouteOptions {
  std::uint32_t num_dbs = 0;
  std::string key_encoding;  // default u64be; from the manifest with a snapshot
  std::string key_type;      // int | str | hex; default from the encoding
  std::string keys_file;
  std::vector<std::string> keys;
};

// One key -> one JSON object. Returns false when the key failed.
// With `snapshot`, the shard id and storage key come from the reader (its manifest's sharding).
bool route_one(const Router& router, const Reader* snapshot, const std::string& type,
               const std::string& text, boost::json::object& out) {
  out["key"] = text;
  out["key_type"] = type;
  std::optional<Key> key;
  error_code ec;
  if (type == "int") {
    Key k = Key::parse_integer(text, ec);
    if (ec) {
      out["error"] = ec == errc::key_not_routable
                         ? "integer key " + text + " out of range [-2^63, 2^63-1]"
                         : "not an integer: '" + text + "'";
      return false;
    }
    key = k;
  } else if (type == "str") {
    key = Key::text(text);
  } else {
    auto raw = try_from_hex(text);
    if (!raw) {
      out["error"] = "not hex: '" + text + "'";
      return false;
    }
    key = Key::bytes(*raw);
  }
  std::string canon = canonical_bytes(*key, ec);
  if (ec) {
    out["error"] =
        "integer key " + text + " out of range [-9223372036854775808, 9223372036854775807]";
    return false;
  }
  std::uint64_t h = xxh3_64(canon);
  char hash_hex[17];
  std::snprintf(hash_hex, sizeof hash_hex, "%016llx", static_cast<unsigned long long>(h));
  out["canonical_hex"] = to_hex(canon);
  out["hash_hex"] = hash_hex;
  try {
    if (snapshot) {
      const auto detail = snapshot->shard_for_key(*key);
      out["shard_id"] = snapshot->route_key(*key);
      out["db_url"] = detail.db_url ? boost::json::value(*detail.db_url) : nullptr;
    } else {
      out["shard_id"] = shard_for_hash(h, router.num_dbs());
    }
  } catch (const error& e) {
    out["error"] = e.diagnostics();
    return false;
  }
  try {
    out["storage_key_hex"] = to_hex(snapshot ? snapshot->encode_key(*key)
                                             : encode_key_for_lookup(*key, router.key_encoding()));
  } catch (const error& e) {
    out["storage_key_hex"] = nullptr;
    out["error"] = e.diagnostics();
    return false;
  }
  return true;
}

int run_route(const RouteOptions& o) {
  const auto& g = global_options();
  std::unique_ptr<Reader> snapshot;
  std::uint32_t num_dbs = o.num_dbs;
  std::optional<KeyEncoding> enc;
  if (num_dbs == 0) {
    if (g.prefix.empty() && g.current_url.empty())
      throw error(errc::invalid_argument,
                  "route needs --num-dbs N, or a snapshot (--prefix / --current-url) whose "
                  "manifest says how keys are sharded");
    if (!o.key_encoding.empty())
      throw error(errc::invalid_argument,
                  "--key-encoding is taken from the snapshot's manifest; give it only with "
                  "--num-dbs");
    snapshot = open_snapshot_reader();
    num_dbs = snapshot->snapshot_info().num_dbs;
    enc = snapshot->key_encoding();
  } else {
    enc = parse_key_encoding(o.key_encoding.empty() ? "u64be" : o.key_encoding);
    if (!enc) throw error(errc::invalid_argument, "unknown --key-encoding " + o.key_encoding);
  }
  std::string type = o.key_type;
  if (type.empty())
    type = (*enc == KeyEncoding::u64be || *enc == KeyEncoding::u32be) ? "int" : "str";
  std::vector<std::string> keys = o.keys;
  if (!o.keys_file.empty()) {
    std::ifstream in(o.keys_file, std::ios::binary);
    if (!in) throw error(errc::io_error, "cannot read " + o.keys_file);
    for (std::string line; std::getline(in, line);) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      keys.push_back(line);
    }
  }
  if (keys.empty()) throw error(errc::invalid_argument, "no keys: give KEY... or --keys-file");
  Router router(num_dbs, *enc);
  bool all_ok = true;
  for (const auto& k : keys) {
    boost::json::object out;
    all_ok &= route_one(router, snapshot.get(), type, k, out);
    std::cout << boost::json::serialize(out) << "\n";
  }
  std::cout.flush();
  return all_ok ? 0 : 1;
}

}  // namespace

void register_route(CLI::App& app) {
  auto opts = std::make_shared<RouteOptions>();
  auto* cmd = app.add_subcommand(
      "route",
      "print where keys go: canonical bytes, xxh3_64 hash, shard id, storage key (one JSON "
      "object per key; exit status 1 if any key failed). With --num-dbs no snapshot is needed; "
      "otherwise the snapshot at --prefix / --current-url decides (and db_url is printed)");
  cmd->add_option("--num-dbs", opts->num_dbs, "number of shards (no snapshot needed)")
      ->check(CLI::Range(1u, 0xffffffffu));
  cmd->add_option("--key-encoding", opts->key_encoding,
                  "u64be (default), u32be, utf8 or raw (only with --num-dbs)")
      ->check(CLI::IsMember({"u64be", "u32be", "utf8", "raw"}));
  cmd->add_option("--key-type", opts->key_type,
                  "how KEY is read: int, str or hex bytes (default: int for u64be/u32be, else str)")
      ->check(CLI::IsMember({"int", "str", "hex"}));
  auto* file = cmd->add_option("--keys-file", opts->keys_file, "one key per line");
  cmd->add_option("keys", opts->keys, "keys to route")->excludes(file);
  cmd->callback([opts] {
    int rc = run_route(*opts);
    if (rc != 0) throw CLI::RuntimeError(rc);
  });
}

}  // namespace shardy::cli
