// Reader commands: get, multiget, info, shards, health, and `bench get` (reader-features
// S-15..S-20, S-28, S-29). They open a Reader on --prefix (or --current-url) with the global
// options.
#include <boost/json.hpp>
#include <chrono>
#include <fstream>
#include <iostream>
#include <shardy/reader.hpp>

#include "commands.hpp"
#include "hex.hpp"

namespace shardy::cli {
namespace {

namespace json = boost::json;

std::unique_ptr<Reader> open_reader() {
  const auto& g = global_options();
  std::string prefix = g.prefix;
  ReaderOptions o;
  if (!g.current_url.empty()) {
    auto slash = g.current_url.rfind('/');
    if (slash == std::string::npos) throw_error(errc::invalid_url, g.current_url);
    prefix = g.current_url.substr(0, slash);
    o.current_pointer_key = g.current_url.substr(slash + 1);
  }
  if (prefix.empty()) throw_error(errc::invalid_argument, "--prefix or --current-url is required");
  if (!g.object_root.empty()) o.object_root = g.object_root;
  if (!g.local_root.empty()) o.local_root = g.local_root;
  if (!g.endpoint.empty()) o.s3.endpoint = g.endpoint;
  if (!g.region.empty()) o.s3.region = g.region;
  if (g.path_style) o.s3.addressing = S3Options::Addressing::path;
  auto mode = parse_access_mode(g.access);
  if (!mode) throw_error(errc::invalid_argument, "--access must be download, range or auto");
  o.access_mode = *mode;
  o.range.page_cache_pages = g.range_cache_pages;
  o.range.use_sidecar = !g.no_sidecar;
  return std::make_unique<Reader>(prefix, std::move(o));
}

Key parse_key(const std::string& text, const std::string& type_opt, KeyEncoding enc) {
  std::string type = type_opt;
  if (type.empty()) type = (enc == KeyEncoding::u64be || enc == KeyEncoding::u32be) ? "int" : "str";
  if (type == "int") return Key::parse_integer(text);
  if (type == "hex") return Key::bytes(from_hex(text, "key"));
  return Key::text(text);
}

json::value key_json(const std::string& text, const std::string& type, KeyEncoding enc) {
  std::string t = type.empty()
                      ? ((enc == KeyEncoding::u64be || enc == KeyEncoding::u32be) ? "int" : "str")
                      : type;
  if (t == "int") {
    try {
      std::size_t pos = 0;
      long long v = std::stoll(text, &pos);
      if (pos == text.size()) return json::value(static_cast<std::int64_t>(v));
    } catch (...) {
    }
  }
  return json::value(text);
}

void print(const json::value& v) {
  if (global_options().output == "json")
    std::cout << json::serialize(v) << "\n";
  else
    std::cout << json::serialize(v) << "\n";
}

std::string iso(Timestamp t) { return format_timestamp(t); }

json::value key_value(const std::optional<Key>& k) {
  if (!k) return nullptr;
  if (k->is_integer()) {
    if (auto v = k->as_int64()) return *v;
    if (auto u = k->as_uint64()) return *u;
  }
  return json::value(std::string(k->data()));
}

struct Opts {
  std::string key_type;
  std::vector<std::string> keys;
  std::string keys_file;
  double staleness = -1;
  int iterations = 5;
};

std::vector<std::string> read_keys(const Opts& o) {
  std::vector<std::string> keys = o.keys;
  if (!o.keys_file.empty()) {
    std::ifstream in(o.keys_file);
    if (!in) throw_error(errc::io_error, "cannot read " + o.keys_file);
    for (std::string line; std::getline(in, line);)
      if (!line.empty()) keys.push_back(line);
  }
  return keys;
}

int cmd_get(const Opts& o) {
  auto r = open_reader();
  const auto& text = o.keys.at(0);
  auto key = parse_key(text, o.key_type, r->key_encoding());
  json::object out;
  out["key"] = key_json(text, o.key_type, r->key_encoding());
  out["shard_id"] = r->route_key(key);
  auto v = r->get(key);
  out["found"] = v.has_value();
  out["value_hex"] = v ? json::value(to_hex(*v)) : json::value(nullptr);
  print(out);
  return 0;
}

int cmd_multiget(const Opts& o) {
  auto r = open_reader();
  auto texts = read_keys(o);
  if (texts.empty()) throw_error(errc::invalid_argument, "no keys");
  const auto enc = r->key_encoding();
  // Keys that cannot be parsed, routed or encoded get their own error; the rest are looked up
  // in one multi_get.
  std::vector<json::object> rows(texts.size());
  std::vector<Key> keys;
  std::vector<std::size_t> where;
  bool failed = false;
  for (std::size_t i = 0; i < texts.size(); ++i) {
    rows[i]["key"] = key_json(texts[i], o.key_type, enc);
    rows[i]["shard_id"] = nullptr;
    rows[i]["value_hex"] = nullptr;
    try {
      auto k = parse_key(texts[i], o.key_type, enc);
      rows[i]["shard_id"] = r->route_key(k);
      (void)r->encode_key(k);
      keys.push_back(k);
      where.push_back(i);
    } catch (const std::exception& e) {
      rows[i]["error"] = e.what();
      failed = true;
    }
  }
  auto values = r->multi_get(keys);
  for (std::size_t j = 0; j < values.size(); ++j)
    if (values[j]) rows[where[j]]["value_hex"] = to_hex(*values[j]);
  const auto& fmt = global_options().output;
  if (fmt == "jsonl") {
    for (auto& row : rows) std::cout << json::serialize(row) << "\n";
  } else if (fmt == "table") {
    for (auto& row : rows)
      std::cout << json::serialize(row.at("key")) << "\t" << json::serialize(row.at("shard_id"))
                << "\t" << json::serialize(row.at("value_hex"))
                << (row.contains("error") ? "\t" + std::string(row.at("error").as_string()) : "")
                << "\n";
  } else {
    json::array arr;
    for (auto& row : rows) arr.push_back(row);
    json::object out;
    out["results"] = arr;
    print(out);
  }
  return failed ? 1 : 0;
}

int cmd_info() {
  auto r = open_reader();
  auto i = r->snapshot_info();
  json::object out;
  out["run_id"] = i.run_id;
  out["num_dbs"] = i.num_dbs;
  out["sharding"] = i.sharding == ShardingStrategy::hash ? "hash" : "cel";
  out["created_at"] = iso(i.created_at);
  out["manifest_ref"] = i.manifest_ref;
  out["current_ref"] = i.current_ref;
  out["published_at"] = iso(i.published_at);
  out["row_count"] = i.row_count;
  out["key_encoding"] = std::string(to_string(i.key_encoding));
  out["hash_algorithm"] = i.hash_algorithm;
  out["access_mode"] = std::string(to_string(i.access_mode));  // the tier in use (L-08)
  print(out);
  return 0;
}

int cmd_shards() {
  auto r = open_reader();
  json::array arr;
  for (auto& s : r->shard_details()) {
    json::object o;
    o["db_id"] = s.db_id;
    o["row_count"] = s.row_count;
    o["db_bytes"] = s.db_bytes;
    o["min_key"] = key_value(s.min_key);
    o["max_key"] = key_value(s.max_key);
    o["db_url"] = s.db_url ? json::value(*s.db_url) : json::value(nullptr);
    arr.push_back(o);
  }
  if (global_options().output == "jsonl") {
    for (auto& a : arr) std::cout << json::serialize(a) << "\n";
  } else {
    json::object out;
    out["shards"] = arr;
    print(out);
  }
  return 0;
}

int cmd_health(const Opts& o) {
  auto r = open_reader();
  std::optional<std::chrono::milliseconds> threshold;
  if (o.staleness >= 0)
    threshold = std::chrono::milliseconds(static_cast<std::int64_t>(o.staleness * 1000));
  auto h = r->health(threshold);
  json::object out;
  out["status"] = std::string(to_string(h.status));
  out["manifest_ref"] = h.manifest_ref;
  out["manifest_age_seconds"] = static_cast<double>(h.manifest_age.count()) / 1000.0;
  out["num_shards"] = h.num_shards;
  out["is_closed"] = h.is_closed;
  print(out);
  return h.status == HealthStatus::healthy ? 0 : h.status == HealthStatus::degraded ? 1 : 2;
}

int cmd_bench_get(const Opts& o) {
  auto r = open_reader();
  auto texts = read_keys(o);
  if (texts.empty()) throw_error(errc::invalid_argument, "no keys");
  std::vector<Key> keys;
  for (auto& t : texts) keys.push_back(parse_key(t, o.key_type, r->key_encoding()));
  for (auto& k : keys) r->get(k);  // warm: open/download every shard involved
  std::vector<double> ns;
  ns.reserve(keys.size() * static_cast<std::size_t>(o.iterations));
  std::size_t found = 0;
  for (int it = 0; it < o.iterations; ++it)
    for (auto& k : keys) {
      auto t0 = std::chrono::steady_clock::now();
      auto v = r->get(k);
      auto t1 = std::chrono::steady_clock::now();
      found += v.has_value();
      ns.push_back(std::chrono::duration<double, std::nano>(t1 - t0).count());
    }
  std::sort(ns.begin(), ns.end());
  json::object out;
  out["lookups"] = ns.size();
  out["found"] = found;
  out["median_us"] = ns[ns.size() / 2] / 1000.0;
  out["p99_us"] = ns[std::min(ns.size() - 1, ns.size() * 99 / 100)] / 1000.0;
  print(out);
  return 0;
}

}  // namespace

std::unique_ptr<Reader> open_snapshot_reader() { return open_reader(); }

void register_read(CLI::App& app) {
  auto o = std::make_shared<Opts>();
  auto add_key_type = [o](CLI::App* c) {
    c->add_option("--key-type", o->key_type, "int, str or hex (default: from the key encoding)")
        ->check(CLI::IsMember({"int", "str", "hex"}));
  };
  auto wrap = [](auto f) {
    return [f] {
      int rc = f();
      if (rc != 0) throw CLI::RuntimeError(rc);
    };
  };
  auto* get = app.add_subcommand("get", "look one key up");
  add_key_type(get);
  get->add_option("key", o->keys, "the key")->required()->expected(1);
  get->callback(wrap([o] { return cmd_get(*o); }));

  auto* mg = app.add_subcommand("multiget", "look many keys up (results in input order)");
  add_key_type(mg);
  auto* file = mg->add_option("--keys-file", o->keys_file, "one key per line");
  mg->add_option("keys", o->keys, "keys")->excludes(file);
  mg->callback(wrap([o] { return cmd_multiget(*o); }));

  app.add_subcommand("info", "snapshot summary")->callback(wrap([] { return cmd_info(); }));
  app.add_subcommand("shards", "one entry per shard")->callback(wrap([] { return cmd_shards(); }));
  auto* health =
      app.add_subcommand("health", "reader health (exit 0 healthy, 1 degraded, 2 unhealthy)");
  health->add_option("--staleness-threshold", o->staleness, "seconds");
  health->callback(wrap([o] { return cmd_health(*o); }));

  auto* bench = app.add_subcommand("bench", "micro-benchmarks");
  auto* bget = bench->add_subcommand("get", "median and p99 of warm sync get over the keys");
  add_key_type(bget);
  bget->add_option("--keys-file", o->keys_file, "one key per line")->required();
  bget->add_option("--iterations", o->iterations, "passes over the keys (default 5)");
  bget->callback(wrap([o] { return cmd_bench_get(*o); }));
  bench->require_subcommand(1);
}

}  // namespace shardy::cli
