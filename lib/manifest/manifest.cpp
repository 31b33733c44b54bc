// The v4 SQLite manifest (interop spec 2): parse + validate exactly as shardyfusion's
// manifest_store does (2.8), and build a file its reader accepts (2.1-2.6, 8).
//
// Diagnostics always read "manifest rule '<rule>': <detail>"; the rule ids are listed in
// docs of validate_manifest's callers and used by the tests.
#include <sqlite3.h>

#include <algorithm>
#include <array>
#include <boost/json/parse.hpp>
#include <cmath>
#include <cstring>
#include <list>
#include <map>
#include <mutex>
#include <set>
#include <shardy/manifest.hpp>
#include <shardy/shard_lookup.hpp>
#include <unordered_map>

#include "manifest/python_json.hpp"

namespace shardy {
namespace {

namespace json = boost::json;

[[noreturn]] void fail(std::string_view rule, std::string detail) {
  throw_error(errc::manifest_parse_error,
              "manifest rule '" + std::string(rule) + "': " + std::move(detail));
}

constexpr char kMagic[16] = {'S', 'Q', 'L', 'i', 't', 'e', ' ', 'f',
                             'o', 'r', 'm', 'a', 't', ' ', '3', '\0'};

constexpr std::string_view kShardingKeys[] = {"cel_columns", "cel_expr", "hash_algorithm",
                                              "routing_values", "strategy"};
constexpr std::string_view kCelTypes[] = {"int", "string", "bytes", "double", "bool", "uint"};

struct Db {
  sqlite3* db = nullptr;
  ~Db() { sqlite3_close(db); }
};

struct Stmt {
  sqlite3_stmt* st = nullptr;
  ~Stmt() { sqlite3_finalize(st); }
};

[[noreturn]] void sqlite_fail(sqlite3* db, std::string_view what) {
  fail("sqlite", std::string(what) + ": " + (db ? sqlite3_errmsg(db) : "out of memory"));
}

// One row read by column name (ASCII case-insensitive, like Python's sqlite3.Row).
class Row {
 public:
  Row(sqlite3_stmt* st, std::string_view table) : st_(st), table_(table) {
    int n = sqlite3_column_count(st);
    for (int i = 0; i < n; ++i) {
      std::string name = sqlite3_column_name(st, i) ? sqlite3_column_name(st, i) : "";
      for (auto& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      index_.emplace(std::move(name), i);  // the first of duplicate names wins
    }
  }

  int col(std::string_view name) const {
    auto it = index_.find(std::string(name));
    if (it == index_.end())
      fail("column", "table " + std::string(table_) + " has no column '" + std::string(name) + "'");
    return it->second;
  }
  bool is_null(std::string_view name) const {
    return sqlite3_column_type(st_, col(name)) == SQLITE_NULL;
  }

  // pydantic str: TEXT (or a BLOB, which Python decodes).
  std::optional<std::string> text(std::string_view name, bool nullable) const {
    int c = col(name);
    switch (sqlite3_column_type(st_, c)) {
      case SQLITE_NULL:
        if (!nullable) fail(name, std::string(name) + " must not be NULL");
        return std::nullopt;
      case SQLITE_TEXT:
      case SQLITE_BLOB: {
        auto* p = static_cast<const char*>(sqlite3_column_blob(st_, c));
        std::string s(p ? p : "", static_cast<std::size_t>(sqlite3_column_bytes(st_, c)));
        if (!detail::is_valid_utf8(s)) fail(name, std::string(name) + " is not valid UTF-8");
        return s;
      }
      default:
        fail(name, std::string(name) + " must be text");
    }
  }

  // pydantic int in lax mode: an INTEGER, an integral REAL or a decimal TEXT.
  std::int64_t integer(std::string_view name) const {
    int c = col(name);
    switch (sqlite3_column_type(st_, c)) {
      case SQLITE_INTEGER:
        return sqlite3_column_int64(st_, c);
      case SQLITE_FLOAT: {
        double d = sqlite3_column_double(st_, c);
        if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.2e18)
          return static_cast<std::int64_t>(d);
        break;
      }
      case SQLITE_TEXT: {
        auto* p = reinterpret_cast<const char*>(sqlite3_column_text(st_, c));
        std::string s(p ? p : "");
        error_code ec;
        Key k = Key::parse_integer(s, ec);
        if (!ec && k.as_int64()) return *k.as_int64();
        break;
      }
      default:
        break;
    }
    fail(name, std::string(name) + " must be an integer");
  }

 private:
  sqlite3_stmt* st_;
  std::string_view table_;
  std::map<std::string, int> index_;
};

json::value parse_json(std::string_view rule, std::string_view text) {
  error_code ec;
  json::value v = json::parse(text, ec);
  if (ec) fail(rule, "not valid JSON: " + ec.message());
  return v;
}

std::optional<std::int64_t> json_int(const json::value& v) {
  if (v.is_int64()) return v.get_int64();
  if (v.is_uint64() && v.get_uint64() <= static_cast<std::uint64_t>(INT64_MAX))
    return static_cast<std::int64_t>(v.get_uint64());
  return std::nullopt;
}

ShardingSpec parse_sharding(const json::value& v) {
  if (!v.is_object()) fail("sharding.json", "sharding must be a JSON object");
  const auto& o = v.get_object();
  for (const auto& kv : o)
    if (std::find(std::begin(kShardingKeys), std::end(kShardingKeys), kv.key()) ==
        std::end(kShardingKeys))
      fail("sharding.extra_key", "unexpected key '" + std::string(kv.key()) + "'");
  ShardingSpec s;
  if (auto* st = o.if_contains("strategy")) {
    if (!st->is_string()) fail("sharding.strategy", "strategy must be a string");
    if (st->get_string() == "hash")
      s.strategy = ShardingStrategy::hash;
    else if (st->get_string() == "cel")
      s.strategy = ShardingStrategy::cel;
    else
      fail("sharding.strategy",
           "unknown strategy '" + std::string(st->get_string()) + "' (only lowercase hash / cel)");
  }
  auto* ha = o.if_contains("hash_algorithm");
  if (!ha) fail("sharding.hash_algorithm", "hash_algorithm is required");
  if (!ha->is_string()) fail("sharding.hash_algorithm", "hash_algorithm must be a string");
  s.hash_algorithm = std::string(ha->get_string());
  if (auto* e = o.if_contains("cel_expr"); e && !e->is_null()) {
    if (!e->is_string()) fail("sharding.cel_expr", "cel_expr must be a string");
    s.cel_expr = std::string(e->get_string());
  }
  if (auto* c = o.if_contains("cel_columns"); c && !c->is_null()) {
    if (!c->is_object()) fail("sharding.cel_columns", "cel_columns must be an object");
    s.cel_columns = c->get_object();
  }
  if (auto* r = o.if_contains("routing_values"); r && !r->is_null()) {
    if (!r->is_array()) fail("sharding.routing_values", "routing_values must be an array");
    s.routing_values = r->get_array();
  }
  return s;
}

std::optional<Key> parse_key_json(std::string_view rule, const std::optional<std::string>& text) {
  if (!text) return std::nullopt;
  json::value v = parse_json(rule, *text);
  switch (v.kind()) {
    case json::kind::null:
      return std::nullopt;
    case json::kind::int64:
      return Key::integer(v.get_int64());
    case json::kind::uint64:
      return Key::unsigned_integer(v.get_uint64());
    case json::kind::string:
      return Key::text(v.get_string());
    default:
      fail(rule, std::string(rule) + " must be a JSON integer, string or null, got " + *text);
  }
}

WriterInfo parse_writer_info(const json::object& o) {
  WriterInfo w;
  auto get = [&](std::string_view k, bool nullable) -> std::optional<std::int64_t> {
    auto* v = o.if_contains(k);
    if (!v) return std::nullopt;
    if (v->is_null()) {
      if (!nullable) fail("shards.writer_info", std::string(k) + " must not be null");
      return std::nullopt;
    }
    auto n = json_int(*v);
    if (!n) fail("shards.writer_info", std::string(k) + " must be an integer");
    return n;
  };
  w.attempt = get("attempt", false).value_or(0);
  w.duration_ms = get("duration_ms", false).value_or(0);
  w.stage_id = get("stage_id", true);
  w.task_attempt_id = get("task_attempt_id", true);
  return w;
}

// Copies manifest bytes into a read-only in-memory database (rules magic, sqlite).
void open_manifest_db(Db& db, std::span<const char> bytes) {
  if (bytes.size() < sizeof kMagic || std::memcmp(bytes.data(), kMagic, sizeof kMagic) != 0)
    fail("magic", "unsupported manifest format (not an SQLite 3 database)");
  if (sqlite3_open_v2(":memory:", &db.db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) !=
      SQLITE_OK)
    sqlite_fail(db.db, "open");
  auto* buf = static_cast<unsigned char*>(sqlite3_malloc64(bytes.size()));
  if (!buf) sqlite_fail(nullptr, "deserialize");
  std::memcpy(buf, bytes.data(), bytes.size());
  auto size = static_cast<sqlite3_int64>(bytes.size());
  if (sqlite3_deserialize(db.db, "main", buf, size, size,
                          SQLITE_DESERIALIZE_FREEONCLOSE | SQLITE_DESERIALIZE_READONLY) !=
      SQLITE_OK)
    sqlite_fail(db.db, "deserialize");
}

BuildMeta read_build_meta(sqlite3* db) {
  Stmt q;
  if (sqlite3_prepare_v2(db, "SELECT * FROM build_meta LIMIT 1", -1, &q.st, nullptr) != SQLITE_OK)
    sqlite_fail(db, "build_meta");
  int rc = sqlite3_step(q.st);
  if (rc == SQLITE_DONE) fail("build_meta.rows", "build_meta has no row");
  if (rc != SQLITE_ROW) sqlite_fail(db, "build_meta");
  Row r(q.st, "build_meta");
  BuildMeta b;
  b.run_id = *r.text("run_id", false);
  // created_at: any datetime pydantic parses (an INTEGER is Unix seconds).
  if (sqlite3_column_type(q.st, r.col("created_at")) == SQLITE_INTEGER)
    b.created_at_text = std::to_string(r.integer("created_at"));
  else
    b.created_at_text = *r.text("created_at", false);
  auto created = parse_timestamp(b.created_at_text);
  if (!created) fail("created_at", "created_at is not a datetime: '" + b.created_at_text + "'");
  b.created_at = *created;
  std::int64_t num_dbs = r.integer("num_dbs");
  if (num_dbs <= 0) fail("num_dbs", "num_dbs must be > 0, got " + std::to_string(num_dbs));
  if (num_dbs > static_cast<std::int64_t>(UINT32_MAX))
    fail("num_dbs", "num_dbs " + std::to_string(num_dbs) + " exceeds shardy's limit 2^32-1");
  b.num_dbs = static_cast<std::uint32_t>(num_dbs);
  b.s3_prefix = *r.text("s3_prefix", false);
  b.key_col = *r.text("key_col", false);
  b.sharding = parse_sharding(parse_json("sharding.json", *r.text("sharding", false)));
  b.db_path_template = *r.text("db_path_template", false);
  b.shard_prefix = *r.text("shard_prefix", false);
  b.format_version = r.integer("format_version");
  std::string enc = *r.text("key_encoding", false);
  auto e = parse_key_encoding(enc);
  if (!e) fail("key_encoding", "unknown key_encoding '" + enc + "'");
  b.key_encoding = *e;
  auto custom = r.text("custom", true);
  if (custom && !custom->empty()) {
    json::value cv = parse_json("custom", *custom);
    if (!cv.is_object()) fail("custom", "custom must be a JSON object");
    b.custom = std::move(cv.get_object());
  }
  return b;
}

// One row of `shards` (rule shards.db_id_range checked here, the others by validate_shard).
ShardMeta read_shard_row(const Row& r, std::uint32_t num_dbs) {
  ShardMeta s;
  std::int64_t id = r.integer("db_id");
  if (id < 0 || id >= static_cast<std::int64_t>(num_dbs))
    fail("shards.db_id_range",
         "db_id " + std::to_string(id) + " outside [0, " + std::to_string(num_dbs) + ")");
  s.db_id = static_cast<std::uint32_t>(id);
  s.db_url = r.text("db_url", true);
  s.attempt = r.integer("attempt");
  s.row_count = r.integer("row_count");
  s.db_bytes = r.integer("db_bytes");
  s.min_key = parse_key_json("shards.min_key", r.text("min_key", true));
  s.max_key = parse_key_json("shards.max_key", r.text("max_key", true));
  s.checkpoint_id = r.text("checkpoint_id", true);
  json::value wi = parse_json("shards.writer_info", *r.text("writer_info", false));
  if (!wi.is_object()) fail("shards.writer_info", "writer_info must be a JSON object");
  s.writer_info = parse_writer_info(wi.get_object());
  s.writer_info_json = std::move(wi.get_object());
  return s;
}

Manifest parse_impl(std::span<const char> bytes) {
  Db db;
  open_manifest_db(db, bytes);
  Manifest m;
  m.build = read_build_meta(db.db);
  {
    Stmt q;
    if (sqlite3_prepare_v2(db.db, "SELECT * FROM shards ORDER BY db_id", -1, &q.st, nullptr) !=
        SQLITE_OK)
      sqlite_fail(db.db, "shards");
    int rc;
    while ((rc = sqlite3_step(q.st)) == SQLITE_ROW) {
      m.shards.push_back(read_shard_row(Row(q.st, "shards"), m.build.num_dbs));
      if (m.shards.size() > m.build.num_dbs) fail("shards.count", "more shard rows than num_dbs");
    }
    if (rc != SQLITE_DONE) sqlite_fail(db.db, "shards");
  }
  validate_manifest(m);
  return m;
}

void validate_routing_values(const BuildMeta& b) {
  const auto& rv = *b.sharding.routing_values;
  bool ints = false, strings = false;
  std::set<std::string> seen_str;
  std::set<std::pair<bool, std::uint64_t>> seen_int;  // (negative, magnitude)
  for (const auto& v : rv) {
    if (v.is_string()) {
      strings = true;
      if (!seen_str.insert(std::string(v.get_string())).second)
        fail("sharding.routing_values", "duplicate routing value");
    } else if (v.is_int64() || v.is_uint64()) {
      ints = true;
      std::pair<bool, std::uint64_t> key{false, 0};
      if (v.is_uint64()) {
        key.second = v.get_uint64();
      } else {
        std::int64_t n = v.get_int64();
        key.first = n < 0;
        key.second = n < 0 ? std::uint64_t(0) - static_cast<std::uint64_t>(n)
                           : static_cast<std::uint64_t>(n);
      }
      if (!seen_int.insert(key).second) fail("sharding.routing_values", "duplicate routing value");
    } else {
      fail("sharding.routing_values",
           "routing values must be integers or strings (no null, "
           "boolean, float or container)");
    }
  }
  if (ints && strings) fail("sharding.routing_values", "routing values mix integers and strings");
  std::size_t expect = std::max<std::size_t>(1, rv.size());
  if (b.num_dbs != expect)
    fail("routing_values.cardinality",
         "num_dbs " + std::to_string(b.num_dbs) +
             " != max(1, len(routing_values)) = " + std::to_string(expect));
}

void check_key_json(std::string_view rule, const std::optional<Key>& k) {
  if (k && k->is_bytes() && !detail::is_valid_utf8(k->data()))
    fail(rule, "a bytes key must be valid UTF-8 (shardyfusion stores it as a string)");
}

// The build_meta rules of validate_manifest.
void validate_build(const BuildMeta& b) {
  if (b.format_version != 4)
    fail("format_version", "format_version must be 4, got " + std::to_string(b.format_version));
  if (b.num_dbs == 0) fail("num_dbs", "num_dbs must be > 0");
  const ShardingSpec& s = b.sharding;
  if (s.hash_algorithm != "xxh3_64")
    fail("sharding.hash_algorithm", "unknown hash_algorithm '" + s.hash_algorithm + "'");
  if (s.strategy == ShardingStrategy::hash) {
    if (s.cel_expr) fail("sharding.cel_expr", "cel_expr must be null for HASH sharding");
    if (s.cel_columns) fail("sharding.cel_columns", "cel_columns must be null for HASH sharding");
    if (s.routing_values)
      fail("sharding.routing_values", "routing_values must be null for HASH sharding");
  } else {
    if (!s.cel_expr || s.cel_expr->empty())
      fail("sharding.cel_expr", "CEL sharding needs a non-empty cel_expr");
    if (!s.cel_columns || s.cel_columns->empty())
      fail("sharding.cel_columns", "CEL sharding needs non-empty cel_columns");
    for (const auto& kv : *s.cel_columns) {
      if (!kv.value().is_string() || std::find(std::begin(kCelTypes), std::end(kCelTypes),
                                               kv.value().get_string()) == std::end(kCelTypes))
        fail("sharding.cel_columns", "column '" + std::string(kv.key()) +
                                         "' has no valid type (int, string, bytes, double, "
                                         "bool, uint)");
    }
    if (s.routing_values) validate_routing_values(b);
  }
}

// The per-row rules of validate_manifest; `ids` (if given) collects the ids seen for
// shards.db_id_unique.
void validate_shard(const ShardMeta& sh, std::uint32_t num_dbs, std::set<std::uint32_t>* ids) {
  if (sh.db_id >= num_dbs)
    fail("shards.db_id_range",
         "db_id " + std::to_string(sh.db_id) + " outside [0, " + std::to_string(num_dbs) + ")");
  if (ids && !ids->insert(sh.db_id).second)
    fail("shards.db_id_unique", "duplicate db_id " + std::to_string(sh.db_id));
  if (sh.attempt < 0 || sh.row_count < 0 || sh.db_bytes < 0)
    fail("shards.non_negative",
         "attempt, row_count and db_bytes must be >= 0 (db_id " + std::to_string(sh.db_id) + ")");
  check_key_json("shards.min_key", sh.min_key);
  check_key_json("shards.max_key", sh.max_key);
}

}  // namespace

void validate_manifest(const Manifest& m) {
  validate_build(m.build);
  if (m.shards.size() > m.build.num_dbs) fail("shards.count", "more shard rows than num_dbs");
  std::set<std::uint32_t> ids;
  for (const auto& sh : m.shards) validate_shard(sh, m.build.num_dbs, &ids);
}

Manifest parse_manifest(std::span<const char> bytes, error_code& ec, std::string* diagnostics) {
  ec = {};
  try {
    return parse_impl(bytes);
  } catch (const error& e) {
    ec = e.code();
    if (diagnostics) *diagnostics = e.diagnostics();
  }
  return {};
}

Manifest parse_manifest(std::span<const char> bytes) { return parse_impl(bytes); }

void check_kv_readable(const Manifest& m) {
  auto* v = m.build.custom.if_contains("vector");
  if (!v || !v->is_object()) return;
  auto* u = v->get_object().if_contains("unified");
  if (u && u->is_bool() && u->get_bool()) return;
  throw_error(errc::unsupported,
              "manifest custom.vector has no \"unified\": true: a vector-only snapshot cannot be "
              "read as key-value (run " +
                  m.build.run_id + ")");
}

std::vector<ShardMeta> Manifest::all_shards() const {
  std::vector<ShardMeta> out(build.num_dbs);
  for (std::uint32_t i = 0; i < build.num_dbs; ++i) out[i].db_id = i;
  for (const auto& s : shards)
    if (s.db_id < out.size()) out[s.db_id] = s;
  return out;
}

std::int64_t Manifest::total_row_count() const noexcept {
  std::int64_t n = 0;
  for (const auto& s : shards) n += s.row_count;
  return n;
}

// ---------------------------------------------------------------------------------------------
// build

namespace {

constexpr const char* kSchema = R"sql(CREATE TABLE build_meta (
    run_id           TEXT    NOT NULL,
    created_at       TEXT    NOT NULL,
    num_dbs          INTEGER NOT NULL,
    s3_prefix        TEXT    NOT NULL,
    key_col          TEXT    NOT NULL,
    sharding         TEXT    NOT NULL,
    db_path_template TEXT    NOT NULL,
    shard_prefix     TEXT    NOT NULL,
    format_version   INTEGER NOT NULL,
    key_encoding     TEXT    NOT NULL,
    custom           TEXT    NOT NULL DEFAULT '{}'
);
CREATE TABLE shards (
    db_id         INTEGER NOT NULL PRIMARY KEY,
    db_url        TEXT,
    attempt       INTEGER NOT NULL,
    row_count     INTEGER NOT NULL,
    db_bytes      INTEGER NOT NULL,
    min_key       TEXT,
    max_key       TEXT,
    checkpoint_id TEXT,
    writer_info   TEXT    NOT NULL DEFAULT '{}'
);)sql";

[[noreturn]] void build_fail(sqlite3* db, std::string_view what) {
  throw_error(errc::io_error,
              "building the manifest: " + std::string(what) + ": " + sqlite3_errmsg(db));
}

// One parameter of an INSERT: text (null when absent) or an integer.
void bind_value(sqlite3* db, sqlite3_stmt* st, int i, const std::optional<std::string>& v) {
  int rc = v ? sqlite3_bind_text64(st, i, v->data(), v->size(), SQLITE_TRANSIENT, SQLITE_UTF8)
             : sqlite3_bind_null(st, i);
  if (rc != SQLITE_OK) build_fail(db, "bind");
}

void bind_value(sqlite3* db, sqlite3_stmt* st, int i, std::int64_t v) {
  if (sqlite3_bind_int64(st, i, v) != SQLITE_OK) build_fail(db, "bind");
}

std::string key_json(const Key& k) {
  if (k.is_integer()) {
    if (auto v = k.as_int64()) return std::to_string(*v);
    return std::to_string(*k.as_uint64());
  }
  std::string out;
  detail::dump_python_string(out, k.data());  // bytes keys: their UTF-8 decoding (spec 2.6)
  return out;
}

void step_done(sqlite3* db, sqlite3_stmt* st) {
  if (sqlite3_step(st) != SQLITE_DONE) build_fail(db, "insert");
}

void prepare_insert(sqlite3* db, const char* sql, Stmt& q) {
  if (sqlite3_prepare_v2(db, sql, -1, &q.st, nullptr) != SQLITE_OK) build_fail(db, "prepare");
}

// Binds parameters 1, 2, ... of a prepared INSERT to `values`, in order, and runs it.
template <typename... Values>
void insert_row(sqlite3* db, sqlite3_stmt* st, const Values&... values) {
  sqlite3_reset(st);
  int i = 0;
  (bind_value(db, st, ++i, values), ...);
  step_done(db, st);
}

std::string sharding_json(const ShardingSpec& s) {
  // All five keys, sorted, Python's default separators (spec 2.4).
  json::object o;
  o["cel_columns"] = s.cel_columns ? json::value(*s.cel_columns) : json::value(nullptr);
  o["cel_expr"] = s.cel_expr ? json::value(*s.cel_expr) : json::value(nullptr);
  o["hash_algorithm"] = s.hash_algorithm;
  o["routing_values"] = s.routing_values ? json::value(*s.routing_values) : json::value(nullptr);
  o["strategy"] = s.strategy == ShardingStrategy::hash ? "hash" : "cel";
  return detail::dump_python_json(o);
}

std::string writer_info_json(const WriterInfo& w) {
  json::object o;
  o["attempt"] = w.attempt;
  o["duration_ms"] = w.duration_ms;
  o["stage_id"] = w.stage_id ? json::value(*w.stage_id) : json::value(nullptr);
  o["task_attempt_id"] = w.task_attempt_id ? json::value(*w.task_attempt_id) : json::value(nullptr);
  return detail::dump_python_json(o);
}

}  // namespace

std::string build_manifest(const Manifest& m) {
  validate_manifest(m);
  const BuildMeta& b = m.build;
  // Encode every JSON column first: invalid UTF-8 is the caller's error, not an I/O error.
  std::string sharding, custom;
  std::vector<std::array<std::optional<std::string>, 3>> shard_json;  // min, max, writer_info
  try {
    sharding = sharding_json(b.sharding);
    custom = detail::dump_python_json(b.custom);
    for (const auto& s : m.shards)
      shard_json.push_back({s.min_key ? std::optional(key_json(*s.min_key)) : std::nullopt,
                            s.max_key ? std::optional(key_json(*s.max_key)) : std::nullopt,
                            writer_info_json(s.writer_info)});
  } catch (const error& e) {
    throw_error(errc::invalid_argument, "building the manifest: " + e.diagnostics());
  }
  for (const std::string* t :
       {&b.run_id, &b.s3_prefix, &b.key_col, &b.db_path_template, &b.shard_prefix})
    if (!detail::is_valid_utf8(*t))
      throw_error(errc::invalid_argument, "building the manifest: text is not valid UTF-8");

  Db db;
  if (sqlite3_open_v2(":memory:", &db.db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) !=
      SQLITE_OK)
    build_fail(db.db, "open");
  // An in-memory database has journal_mode=memory: the serialized header says rollback
  // journal (bytes 18/19 = 1), never WAL.
  if (sqlite3_exec(db.db, "PRAGMA page_size=4096;", nullptr, nullptr, nullptr) != SQLITE_OK ||
      sqlite3_exec(db.db, kSchema, nullptr, nullptr, nullptr) != SQLITE_OK ||
      sqlite3_exec(db.db, "BEGIN", nullptr, nullptr, nullptr) != SQLITE_OK)
    build_fail(db.db, "schema");
  {
    Stmt q;
    prepare_insert(db.db,
                   "INSERT INTO build_meta (run_id, created_at, num_dbs, s3_prefix, key_col, "
                   "sharding, db_path_template, shard_prefix, format_version, key_encoding, "
                   "custom) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                   q);
    insert_row(db.db, q.st, b.run_id, format_timestamp(b.created_at), b.num_dbs, b.s3_prefix,
               b.key_col, sharding, b.db_path_template, b.shard_prefix, b.format_version,
               std::string(to_string(b.key_encoding)), custom);
  }
  {
    Stmt q;
    prepare_insert(db.db,
                   "INSERT INTO shards (db_id, db_url, attempt, row_count, db_bytes, min_key, "
                   "max_key, checkpoint_id, writer_info) VALUES (?,?,?,?,?,?,?,?,?)",
                   q);
    std::vector<std::size_t> order(m.shards.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(),
              [&](auto a, auto c) { return m.shards[a].db_id < m.shards[c].db_id; });
    for (std::size_t i : order) {
      const ShardMeta& s = m.shards[i];
      insert_row(db.db, q.st, s.db_id, s.db_url, s.attempt, s.row_count, s.db_bytes,
                 shard_json[i][0], shard_json[i][1], s.checkpoint_id, shard_json[i][2]);
    }
  }
  if (sqlite3_exec(db.db, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK)
    build_fail(db.db, "commit");
  sqlite3_int64 size = 0;
  unsigned char* data = sqlite3_serialize(db.db, "main", &size, 0);
  if (!data) build_fail(db.db, "serialize");
  std::string out(reinterpret_cast<const char*>(data), static_cast<std::size_t>(size));
  sqlite3_free(data);
  return out;
}

// --------------------------------------------------------------------------------------------
// LazyShardLookup (E-15)

struct LazyShardLookup::Impl {
  Db db;
  BuildMeta build;
  std::size_t cache_size = 0;
  std::mutex mu;             // guards everything below
  Stmt by_id;                // SELECT * FROM shards WHERE db_id = ?1
  std::list<ShardMeta> lru;  // most recently used first
  std::unordered_map<std::uint32_t, std::list<ShardMeta>::iterator> cached;
  Stats stats;

  ShardMeta read(std::uint32_t db_id) {
    struct Reset {
      sqlite3_stmt* st;
      ~Reset() {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
      }
    } reset{by_id.st};
    if (sqlite3_bind_int64(by_id.st, 1, db_id) != SQLITE_OK) sqlite_fail(db.db, "shards");
    int rc = sqlite3_step(by_id.st);
    if (rc == SQLITE_DONE) {
      ShardMeta empty;  // no row: the synthesized empty shard (A-14)
      empty.db_id = db_id;
      return empty;
    }
    if (rc != SQLITE_ROW) sqlite_fail(db.db, "shards");
    ShardMeta s = read_shard_row(Row(by_id.st, "shards"), build.num_dbs);
    rc = sqlite3_step(by_id.st);
    if (rc == SQLITE_ROW) fail("shards.db_id_unique", "duplicate db_id " + std::to_string(db_id));
    if (rc != SQLITE_DONE) sqlite_fail(db.db, "shards");
    validate_shard(s, build.num_dbs, nullptr);
    return s;
  }
};

LazyShardLookup::LazyShardLookup(std::span<const char> manifest_bytes, std::size_t cache_size)
    : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.cache_size = cache_size;
  open_manifest_db(m.db, manifest_bytes);
  m.build = read_build_meta(m.db.db);
  validate_build(m.build);
  // The ids' range without decoding a row: min/max of the INTEGER primary key are two b-tree
  // descents. Ids of another type (a schema without that key) are checked one by one, leniently
  // like parse_manifest.
  auto range_fail = [&](const std::string& id) {
    fail("shards.db_id_range",
         "db_id " + id + " outside [0, " + std::to_string(m.build.num_dbs) + ")");
  };
  bool integers = true;
  {
    Stmt q;
    if (sqlite3_prepare_v2(m.db.db, "SELECT min(db_id), max(db_id) FROM shards", -1, &q.st,
                           nullptr) != SQLITE_OK ||
        sqlite3_step(q.st) != SQLITE_ROW)
      sqlite_fail(m.db.db, "shards");
    for (int c = 0; c < 2; ++c) {
      const int type = sqlite3_column_type(q.st, c);
      if (type == SQLITE_NULL) continue;  // no rows
      if (type != SQLITE_INTEGER) {
        integers = false;
        continue;
      }
      const auto id = sqlite3_column_int64(q.st, c);
      if (id < 0 || id >= static_cast<std::int64_t>(m.build.num_dbs))
        range_fail(std::to_string(id));
    }
  }
  if (!integers) {
    Stmt q;
    if (sqlite3_prepare_v2(m.db.db, "SELECT db_id FROM shards", -1, &q.st, nullptr) != SQLITE_OK)
      sqlite_fail(m.db.db, "shards");
    int rc;
    while ((rc = sqlite3_step(q.st)) == SQLITE_ROW) {
      const auto id = Row(q.st, "shards").integer("db_id");
      if (id < 0 || id >= static_cast<std::int64_t>(m.build.num_dbs))
        range_fail(std::to_string(id));
    }
    if (rc != SQLITE_DONE) sqlite_fail(m.db.db, "shards");
  }
  if (sqlite3_prepare_v3(m.db.db, "SELECT * FROM shards WHERE db_id = ?1", -1,
                         SQLITE_PREPARE_PERSISTENT, &m.by_id.st, nullptr) != SQLITE_OK)
    sqlite_fail(m.db.db, "shards");
}

LazyShardLookup::~LazyShardLookup() = default;
LazyShardLookup::LazyShardLookup(LazyShardLookup&&) noexcept = default;
LazyShardLookup& LazyShardLookup::operator=(LazyShardLookup&&) noexcept = default;

const BuildMeta& LazyShardLookup::build() const noexcept { return impl_->build; }

Router LazyShardLookup::router() const {
  if (impl_->build.sharding.strategy != ShardingStrategy::hash)
    throw_error(errc::unsupported, "CEL-sharded snapshots are not supported");
  return Router(impl_->build.num_dbs, impl_->build.key_encoding);
}

ShardMeta LazyShardLookup::shard(std::uint32_t db_id) const {
  Impl& m = *impl_;
  if (db_id >= m.build.num_dbs)
    throw_error(errc::invalid_argument, "db_id " + std::to_string(db_id) + " outside [0, " +
                                            std::to_string(m.build.num_dbs) + ")");
  std::lock_guard lock(m.mu);
  if (auto it = m.cached.find(db_id); it != m.cached.end()) {
    ++m.stats.cache_hits;
    m.lru.splice(m.lru.begin(), m.lru, it->second);
    return *it->second;
  }
  ShardMeta s = m.read(db_id);
  ++m.stats.rows_read;
  if (m.cache_size == 0) return s;
  if (m.lru.size() >= m.cache_size) {
    m.cached.erase(m.lru.back().db_id);
    m.lru.pop_back();
  }
  m.lru.push_front(s);
  m.cached.emplace(db_id, m.lru.begin());
  return s;
}

ShardMeta LazyShardLookup::shard(std::uint32_t db_id, error_code& ec) const noexcept {
  ec = {};
  try {
    return shard(db_id);
  } catch (const error& e) {
    ec = e.code();
  } catch (const std::bad_alloc&) {
    ec = make_error_code(errc::io_error);
  }
  return {};
}

LazyShardLookup::Stats LazyShardLookup::stats() const {
  std::lock_guard lock(impl_->mu);
  Stats s = impl_->stats;
  s.cached = impl_->lru.size();
  return s;
}

}  // namespace shardy
