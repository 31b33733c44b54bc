// `shardy build`: publish a snapshot from a JSONL or CSV file.
//
//   shardy --prefix file:///tmp/snap build --input data.jsonl --key-field id --value-field doc
//          --key-type int --num-dbs 16
//
// Records are read once, in order; the writer spills them per shard, so the input never has to
// fit in memory. A progress line is drawn on stderr when it is a terminal; the summary (JSON) goes
// to stdout.
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <shardy/writer.hpp>
#include <unordered_map>

#include "cli_store.hpp"
#include "commands.hpp"
#include "hex.hpp"

namespace shardy::cli {
namespace {

namespace json = boost::json;

struct BuildArgs {
  std::string input;
  std::string format;  // jsonl | csv ("" = by extension)
  std::string key_field = "key";
  std::string value_field = "value";
  std::string key_type = "int";         // int | str | hex
  std::string value_encoding = "utf8";  // utf8 | hex
  std::uint32_t num_dbs = 8;
  std::string key_encoding;  // "" = by key type
  std::string page_size = "4096";
  std::string run_id;
  std::string shard_prefix = "shards";
  std::size_t max_uploads = 4;
  std::size_t build_threads = 2;
  std::size_t memory_mb = 256;
  std::string spill_dir;
  bool no_sidecar = false;
  bool no_run_record = false;
  std::vector<std::string> custom;  // key=JSON
  bool quiet = false;
};

// Turns one record's key and value fields (as text, or JSON for JSONL) into a Record.
class FieldDecoder {
 public:
  explicit FieldDecoder(const BuildArgs& a)
      : key_type_(a.key_type), hex_values_(a.value_encoding == "hex") {}

  Key key_from_text(std::string_view s) const {
    if (key_type_ == "int") return Key::parse_integer(s);
    if (key_type_ == "str") return Key::text(s);
    return Key::bytes(from_hex(s, "key"));
  }
  Key key_from_json(const json::value& v) const {
    if (key_type_ == "int") {
      if (v.is_int64()) return Key::integer(v.get_int64());
      if (v.is_uint64()) return Key::unsigned_integer(v.get_uint64());
      if (v.is_string()) return Key::parse_integer(v.get_string());
      throw_error(errc::invalid_argument, "key is not an integer: " + json::serialize(v));
    }
    if (!v.is_string()) {
      throw_error(errc::invalid_argument, "key is not a string: " + json::serialize(v));
    }
    return key_from_text(v.get_string());
  }
  void value_from_text(std::string_view s, std::string& out) const {
    if (hex_values_) {
      out = from_hex(s, "value");
    } else {
      out.assign(s);
    }
  }
  void value_from_json(const json::value& v, std::string& out) const {
    if (v.is_string()) return value_from_text(v.get_string(), out);
    if (v.is_null()) return out.clear();
    if (hex_values_) throw_error(errc::invalid_argument, "hex value is not a string");
    out = json::serialize(v);  // any other JSON value is stored as its compact JSON text
  }

 private:
  std::string key_type_;
  bool hex_values_;
};

class JsonlSource final : public RecordSource {
 public:
  JsonlSource(const BuildArgs& a) : in_(a.input, std::ios::binary), dec_(a), a_(a) {
    if (!in_) throw_error(errc::io_error, "cannot open " + a.input);
  }
  bool next(Record& out) override {
    while (std::getline(in_, line_)) {
      ++line_no_;
      if (line_.empty() || line_ == "\r") continue;
      json::error_code ec;
      parser_.reset();
      parser_.write(line_, ec);
      if (!ec) parser_.finish(ec);
      if (ec) fail("invalid JSON: " + ec.message());
      const json::value v = parser_.release();
      if (!v.is_object()) fail("not a JSON object");
      const auto& o = v.get_object();
      const auto* k = o.if_contains(a_.key_field);
      const auto* val = o.if_contains(a_.value_field);
      if (!k) fail("no field '" + a_.key_field + "'");
      if (!val) fail("no field '" + a_.value_field + "'");
      try {
        out.key = dec_.key_from_json(*k);
        dec_.value_from_json(*val, out.value);
      } catch (const error& e) {
        fail(e.diagnostics().empty() ? e.what() : e.diagnostics());
      }
      return true;
    }
    return false;
  }

 private:
  [[noreturn]] void fail(const std::string& why) {
    throw_error(errc::invalid_argument, a_.input + ":" + std::to_string(line_no_) + ": " + why);
  }
  std::ifstream in_;
  FieldDecoder dec_;
  const BuildArgs& a_;
  json::stream_parser parser_;
  std::string line_;
  std::uint64_t line_no_ = 0;
};

// RFC 4180 CSV with a header row: quoted fields ("" escapes a quote) may span lines.
class CsvSource final : public RecordSource {
 public:
  CsvSource(const BuildArgs& a) : in_(a.input, std::ios::binary), dec_(a), a_(a) {
    if (!in_) throw_error(errc::io_error, "cannot open " + a.input);
    std::vector<std::string> header;
    if (!read_row(header)) throw_error(errc::invalid_argument, a.input + ": empty CSV");
    for (std::size_t i = 0; i < header.size(); ++i) {
      if (header[i] == a.key_field) key_col_ = i;
      if (header[i] == a.value_field) value_col_ = i;
    }
    if (key_col_ == npos) fail("no column '" + a.key_field + "' in the header");
    if (value_col_ == npos) fail("no column '" + a.value_field + "' in the header");
  }
  bool next(Record& out) override {
    for (;;) {
      if (!read_row(row_)) return false;
      if (row_.size() == 1 && row_[0].empty()) continue;  // blank line
      if (row_.size() <= std::max(key_col_, value_col_)) fail("too few columns");
      try {
        out.key = dec_.key_from_text(row_[key_col_]);
        dec_.value_from_text(row_[value_col_], out.value);
      } catch (const error& e) {
        fail(e.diagnostics().empty() ? e.what() : e.diagnostics());
      }
      return true;
    }
  }

 private:
  static constexpr std::size_t npos = static_cast<std::size_t>(-1);
  [[noreturn]] void fail(const std::string& why) {
    throw_error(errc::invalid_argument, a_.input + ": row " + std::to_string(row_no_) + ": " + why);
  }
  bool read_row(std::vector<std::string>& row) {
    row.assign(1, std::string());
    int c = in_.get();
    if (c == EOF) return false;
    ++row_no_;
    bool quoted = false;
    for (; c != EOF; c = in_.get()) {
      if (quoted) {
        if (c == '"') {
          if (in_.peek() == '"') {
            in_.get();
            row.back().push_back('"');
          } else {
            quoted = false;
          }
        } else {
          row.back().push_back(static_cast<char>(c));
        }
      } else if (c == '"') {
        quoted = true;
      } else if (c == ',') {
        row.emplace_back();
      } else if (c == '\n') {
        break;
      } else if (c == '\r' && in_.peek() == '\n') {
        continue;
      } else {
        row.back().push_back(static_cast<char>(c));
      }
    }
    if (quoted) fail("unterminated quoted field");
    return true;
  }
  std::ifstream in_;
  FieldDecoder dec_;
  const BuildArgs& a_;
  std::size_t key_col_ = npos, value_col_ = npos;
  std::vector<std::string> row_;
  std::uint64_t row_no_ = 0;
};

// A one-line progress display on stderr, redrawn at most ~8 times a second.
class ProgressLine {
 public:
  explicit ProgressLine(bool enabled) : enabled_(enabled) {}
  void update(const BuildProgress& p) {
    if (!enabled_) return;
    const auto now = std::chrono::steady_clock::now();
    if (p.stage != BuildProgress::phase::done && now - last_ < std::chrono::milliseconds(120)) {
      return;
    }
    last_ = now;
    const double s = std::chrono::duration<double>(now - start_).count();
    char buf[200];
    switch (p.stage) {
      case BuildProgress::phase::routing:
        std::snprintf(buf, sizeof buf, "routing: %llu records (%.0f/s)",
                      static_cast<unsigned long long>(p.records_read),
                      s > 0 ? static_cast<double>(p.records_read) / s : 0.0);
        break;
      case BuildProgress::phase::building:
        std::snprintf(buf, sizeof buf, "shards: %u/%u built and uploaded (%.1f MiB)", p.shards_done,
                      p.shards_total, static_cast<double>(p.bytes_uploaded) / (1 << 20));
        break;
      case BuildProgress::phase::publishing:
        std::snprintf(buf, sizeof buf, "publishing manifest and _CURRENT");
        break;
      case BuildProgress::phase::done:
        std::snprintf(buf, sizeof buf, "done");
        break;
    }
    std::fprintf(stderr, "\r\033[K%s", buf);
    if (p.stage == BuildProgress::phase::done) std::fputc('\n', stderr);
    std::fflush(stderr);
  }

 private:
  bool enabled_;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point last_{};
};

void run_build(const BuildArgs& a) {
  WriterOptions o;
  o.prefix = required_prefix();
  o.num_dbs = a.num_dbs;
  const std::string enc = !a.key_encoding.empty() ? a.key_encoding
                          : a.key_type == "int"   ? "u64be"
                          : a.key_type == "str"   ? "utf8"
                                                  : "raw";
  const auto ke = parse_key_encoding(enc);
  if (!ke) throw_error(errc::invalid_argument, "unknown key encoding '" + enc + "'");
  o.key_encoding = *ke;
  if (a.page_size == "auto") {
    o.page_size = kPageSizeAuto;
  } else {
    try {
      o.page_size = static_cast<std::uint32_t>(std::stoul(a.page_size));
    } catch (const std::exception&) {
      throw_error(errc::invalid_argument, "--page-size must be a number or auto");
    }
  }
  o.run_id = a.run_id;
  o.shard_prefix = a.shard_prefix;
  o.max_concurrent_uploads = a.max_uploads;
  o.build_threads = a.build_threads;
  o.memory_budget = a.memory_mb << 20;
  o.spill_dir = a.spill_dir;
  o.emit_sidecar = !a.no_sidecar;
  o.write_run_record = !a.no_run_record;
  for (const auto& kv : a.custom) {
    const auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      throw_error(errc::invalid_argument, "--custom takes KEY=JSON, got '" + kv + "'");
    }
    json::error_code ec;
    json::value v = json::parse(kv.substr(eq + 1), ec);
    if (ec) v = json::string(kv.substr(eq + 1));  // not JSON: a plain string
    o.custom_manifest_fields[kv.substr(0, eq)] = std::move(v);
  }

  std::string format = a.format;
  if (format.empty()) {
    const auto dot = a.input.rfind('.');
    const std::string ext = dot == std::string::npos ? "" : a.input.substr(dot + 1);
    format = ext == "csv"                                         ? "csv"
             : ext == "jsonl" || ext == "json" || ext == "ndjson" ? "jsonl"
                                                                  : "";
    if (format.empty()) {
      throw_error(errc::invalid_argument,
                  "cannot tell the input format from '" + a.input + "': pass --format jsonl|csv");
    }
  }
  std::unique_ptr<RecordSource> source;
  if (format == "csv") {
    source = std::make_unique<CsvSource>(a);
  } else {
    source = std::make_unique<JsonlSource>(a);
  }

  auto progress = std::make_shared<ProgressLine>(!a.quiet && isatty(STDERR_FILENO));
  o.progress = [progress](const BuildProgress& p) { progress->update(p); };

  boost::asio::io_context io;
  auto store = open_cli_store(io.get_executor());
  auto fut = boost::asio::co_spawn(io, build_snapshot(store, std::move(o), std::move(source)),
                                   boost::asio::use_future);
  io.run();
  const BuildResult r = fut.get();

  const double secs = static_cast<double>(r.stats.durations.total.count()) / 1000.0;
  json::object out;
  out["run_id"] = r.run_id;
  out["manifest_ref"] = r.manifest.ref;
  out["run_record"] = r.run_record;
  out["rows_written"] = r.stats.rows_written;
  out["shards_written"] = r.stats.shards_written;
  out["num_dbs"] = a.num_dbs;
  out["shard_bytes"] = r.stats.shard_bytes;
  out["sidecars_written"] = r.stats.sidecars_written;
  out["sidecar_bytes"] = r.stats.sidecar_bytes;
  out["routing_ms"] = r.stats.durations.routing.count();
  out["write_ms"] = r.stats.durations.write.count();
  out["manifest_ms"] = r.stats.durations.manifest.count();
  out["total_ms"] = r.stats.durations.total.count();
  out["records_per_s"] = secs > 0 ? static_cast<double>(r.stats.rows_written) / secs : 0.0;
  std::cout << json::serialize(out) << "\n";
}

}  // namespace

void register_build_command(CLI::App& app) {
  auto a = std::make_shared<BuildArgs>();
  auto* cmd = app.add_subcommand("build", "publish a snapshot from a JSONL or CSV file");
  cmd->add_option("--input", a->input, "input file (.jsonl or .csv)")->required();
  cmd->add_option("--format", a->format, "input format (default: by extension)")
      ->check(CLI::IsMember({"jsonl", "csv"}));
  cmd->add_option("--key-field", a->key_field, "field/column holding the key")
      ->capture_default_str();
  cmd->add_option("--value-field", a->value_field, "field/column holding the value")
      ->capture_default_str();
  cmd->add_option("--key-type", a->key_type, "int, str, or hex (bytes given as hex)")
      ->check(CLI::IsMember({"int", "str", "hex"}))
      ->capture_default_str();
  cmd->add_option("--value-encoding", a->value_encoding, "utf8 (text as is) or hex")
      ->check(CLI::IsMember({"utf8", "hex"}))
      ->capture_default_str();
  cmd->add_option("--num-dbs", a->num_dbs, "number of shards")->capture_default_str();
  cmd->add_option("--key-encoding", a->key_encoding,
                  "u64be, u32be, utf8 or raw (default: u64be for int, utf8 for str, raw for hex)");
  cmd->add_option("--page-size", a->page_size, "4096, 8192, 16384, 32768, 65536 or auto")
      ->capture_default_str();
  cmd->add_option("--run-id", a->run_id, "run id (default: random 32 hex)");
  cmd->add_option("--shard-prefix", a->shard_prefix)->capture_default_str();
  cmd->add_option("--max-uploads", a->max_uploads, "shard uploads in flight")
      ->capture_default_str();
  cmd->add_option("--build-threads", a->build_threads, "threads building shard files")
      ->capture_default_str();
  cmd->add_option("--memory-mb", a->memory_mb, "memory budget for spill buffers and shard sorts")
      ->capture_default_str();
  cmd->add_option("--spill-dir", a->spill_dir, "scratch directory (default: system temp)");
  cmd->add_flag("--no-sidecar", a->no_sidecar, "do not emit shard.sidecar objects");
  cmd->add_flag("--no-run-record", a->no_run_record, "do not write runs/.../run.yaml");
  cmd->add_option("--custom", a->custom, "extra manifest custom field KEY=JSON (repeatable)");
  cmd->add_flag("--quiet,-q", a->quiet, "no progress display");
  cmd->callback([a] { run_build(*a); });
}

}  // namespace shardy::cli
