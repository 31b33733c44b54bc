// `shardy route`: where keys go (interop spec 3). With --num-dbs it needs no snapshot: it prints,
// per key, the canonical bytes, the XXH3-64 hash, the shard id and the lookup-encoded storage key.
// (Routing against a snapshot's manifest, --prefix / --object-root without --num-dbs, belongs to
// the reader's part of this command.)
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <shardy/routing.hpp>

#include "commands.hpp"

namespace shardy::cli {
namespace {

struct RouteOptions {
  std::uint32_t num_dbs = 0;
  std::string key_encoding = "u64be";
  std::string key_type;  // int | str | hex; default from the encoding
  std::string keys_file;
  std::vector<std::string> keys;
};

std::string hex(std::string_view bytes) {
  static constexpr char d[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out.push_back(d[c >> 4]);
    out.push_back(d[c & 15]);
  }
  return out;
}

std::optional<std::string> unhex(std::string_view h) {
  if (h.size() % 2) return std::nullopt;
  auto nib = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  for (std::size_t i = 0; i < h.size(); i += 2) {
    int a = nib(h[i]), b = nib(h[i + 1]);
    if (a < 0 || b < 0) return std::nullopt;
    out.push_back(static_cast<char>(a * 16 + b));
  }
  return out;
}

// One key -> one JSON object. Returns false when the key failed.
bool route_one(const Router& router, const std::string& type, const std::string& text,
               boost::json::object& out) {
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
    auto raw = unhex(text);
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
  out["canonical_hex"] = hex(canon);
  out["hash_hex"] = hash_hex;
  out["shard_id"] = shard_for_hash(h, router.num_dbs());
  try {
    out["storage_key_hex"] = hex(encode_key_for_lookup(*key, router.key_encoding()));
  } catch (const error& e) {
    out["storage_key_hex"] = nullptr;
    out["error"] = e.diagnostics();
    return false;
  }
  return true;
}

int run_route(const RouteOptions& o) {
  if (o.num_dbs == 0)
    throw error(errc::invalid_argument,
                "route needs --num-dbs N (routing against a snapshot's manifest is not available "
                "in this build)");
  auto enc = parse_key_encoding(o.key_encoding);
  if (!enc) throw error(errc::invalid_argument, "unknown --key-encoding " + o.key_encoding);
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
  Router router(o.num_dbs, *enc);
  bool all_ok = true;
  for (const auto& k : keys) {
    boost::json::object out;
    all_ok &= route_one(router, type, k, out);
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
      "object per key; exit status 1 if any key failed)");
  cmd->add_option("--num-dbs", opts->num_dbs, "number of shards (no snapshot needed)")
      ->check(CLI::Range(1u, 0xffffffffu));
  cmd->add_option("--key-encoding", opts->key_encoding, "u64be (default), u32be, utf8 or raw")
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
