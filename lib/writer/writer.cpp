// The snapshot writer (include/shardy/writer.hpp): route + spill, build shards on a small
// blocking pool, upload them with bounded concurrency (shard.db, then its sidecar bound to the
// returned ETag), then publish the manifest and _CURRENT through the manifest store.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <random>
#include <shardy/writer.hpp>

#include "core/run_workers.hpp"
#include "writer/run_record.hpp"
#include "writer/shard_spill.hpp"
#include "writer/sidecar_builder.hpp"
#include "writer/spawn_erased.hpp"
#include "writer/sqlite_shard_builder.hpp"

// g++ 12 reports a false -Wmismatched-new-delete for Asio's awaitable frames (their operator
// new/delete pair is class-specific and matched).
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

namespace shardy {
namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

// ---------------------------------------------------------------------------------------------
// Small pure helpers

std::string random_hex_id() {
  std::random_device rd;  // the OS's CSPRNG; ids are few
  std::uint8_t b[16];
  for (int i = 0; i < 16; i += 4) {
    const std::uint32_t v = rd();
    for (int j = 0; j < 4; ++j) b[i + j] = static_cast<std::uint8_t>(v >> (8 * j));
  }
  b[6] = static_cast<std::uint8_t>((b[6] & 0x0f) | 0x40);  // version 4
  b[8] = static_cast<std::uint8_t>((b[8] & 0x3f) | 0x80);  // RFC 4122 variant
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(32);
  for (auto c : b) {
    out.push_back(digits[c >> 4]);
    out.push_back(digits[c & 15]);
  }
  return out;
}

std::string format_db_path(std::string_view tpl, std::uint32_t db_id) {
  std::string out;
  for (std::size_t i = 0; i < tpl.size(); ++i) {
    const char c = tpl[i];
    if (c == '{' && i + 1 < tpl.size() && tpl[i + 1] == '{') {
      out.push_back('{');
      ++i;
    } else if (c == '}' && i + 1 < tpl.size() && tpl[i + 1] == '}') {
      out.push_back('}');
      ++i;
    } else if (c == '{') {
      const auto close = tpl.find('}', i);
      if (close == std::string_view::npos) {
        throw_error(errc::invalid_argument, "db_path_template: unclosed '{'");
      }
      const std::string_view field = tpl.substr(i + 1, close - i - 1);
      const auto colon = field.find(':');
      if (field.substr(0, colon) != "db_id") {
        throw_error(errc::invalid_argument,
                    "db_path_template: only the field db_id is supported: " + std::string(tpl));
      }
      std::string digits = std::to_string(db_id);
      if (colon != std::string_view::npos) {
        std::string_view spec = field.substr(colon + 1);
        if (spec.empty() || spec.back() != 'd') {
          if (!spec.empty()) {
            throw_error(errc::invalid_argument,
                        "db_path_template: unsupported format spec '" + std::string(spec) + "'");
          }
        } else {
          spec.remove_suffix(1);
        }
        const bool zero = !spec.empty() && spec.front() == '0';
        if (zero) spec.remove_prefix(1);
        std::size_t width = 0;
        for (char d : spec) {
          if (d < '0' || d > '9') {
            throw_error(errc::invalid_argument,
                        "db_path_template: unsupported format spec in " + std::string(tpl));
          }
          width = width * 10 + static_cast<std::size_t>(d - '0');
        }
        if (digits.size() < width) digits.insert(0, width - digits.size(), zero ? '0' : ' ');
      }
      out += digits;
      i = close;
    } else if (c == '}') {
      throw_error(errc::invalid_argument, "db_path_template: single '}'");
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string join_url(std::string_view base, std::initializer_list<std::string_view> parts) {
  while (!base.empty() && base.back() == '/') base.remove_suffix(1);
  std::string out(base);
  for (std::string_view p : parts) {
    while (!p.empty() && p.front() == '/') p.remove_prefix(1);
    while (!p.empty() && p.back() == '/') p.remove_suffix(1);
    if (p.empty()) continue;
    out.push_back('/');
    out += p;
  }
  return out;
}

namespace {

class VectorRecordSource final : public RecordSource {
 public:
  explicit VectorRecordSource(std::vector<Record> records) : records_(std::move(records)) {}
  bool next(Record& out) override {
    if (pos_ >= records_.size()) return false;
    out = std::move(records_[pos_++]);
    return true;
  }

 private:
  std::vector<Record> records_;
  std::size_t pos_ = 0;
};

Timestamp now_us() {
  return std::chrono::time_point_cast<std::chrono::microseconds>(std::chrono::system_clock::now());
}

bool valid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t n;
    std::uint32_t cp;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xe0) == 0xc0) {
      n = 1, cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      n = 2, cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      n = 3, cp = c & 0x07;
    } else {
      return false;
    }
    if (i + n >= s.size()) return false;  // truncated sequence
    for (std::size_t k = 1; k <= n; ++k) {
      const auto d = static_cast<unsigned char>(s[i + k]);
      if ((d & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (d & 0x3f);
    }
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
        cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
      return false;
    }
    i += n + 1;
  }
  return true;
}

// Python ordering of raw keys of one kind: ints numerically, str and bytes by bytes (UTF-8 byte
// order is code point order). Mixed kinds raise, as comparing int with str does in Python.
bool key_less(const Key& a, const Key& b) {
  if (a.type() != b.type()) {
    throw_error(errc::invalid_argument, "keys of different types (" + a.to_string() + ", " +
                                            b.to_string() + ") in one shard cannot be ordered");
  }
  if (a.is_integer()) {
    if (a.is_negative() != b.is_negative()) return a.is_negative();
    if (a.is_negative()) return *a.as_int64() < *b.as_int64();
    return *a.as_uint64() < *b.as_uint64();
  }
  return a.data() < b.data();
}

// min/max as the manifest stores them: ints as ints, text as text, bytes as their UTF-8
// decoding (the reference's pydantic coercion); non-UTF-8 bytes cannot be represented (the
// reference fails to publish), so they are left out (NULL) rather than failing the build.
std::optional<Key> manifest_key(const std::optional<Key>& k) {
  if (!k) return std::nullopt;
  if (!k->is_bytes()) return k;
  if (!valid_utf8(k->data())) return std::nullopt;
  return Key::text(k->data());
}

void validate_segment(std::string_view what, std::string_view s) {
  const bool ok =
      !s.empty() && s != "." && s != ".." && std::all_of(s.begin(), s.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
      });
  if (!ok) {
    throw_error(errc::invalid_argument, std::string(what) +
                                            " must be one path segment of [A-Za-z0-9._-]: '" +
                                            std::string(s) + "'");
  }
}

struct ShardKeyStats {
  std::optional<Key> min, max;
};

// Everything the routing phase owns; touched only by one pool thread at a time.
struct RoutingState {
  RoutingState(const WriterOptions& o, const fs::path& dir)
      : router(o.num_dbs, o.key_encoding),
        spill(dir / "spill", o.num_dbs, o.memory_budget),
        keys(o.num_dbs) {}
  Router router;
  writer::ShardSpill spill;
  std::vector<ShardKeyStats> keys;
  std::uint64_t records = 0;
  Record rec;
};

// Reads up to `n` records; true when the source is exhausted.
bool route_some(RoutingState& st, RecordSource& source, std::uint64_t n) {
  for (std::uint64_t i = 0; i < n; ++i) {
    if (!source.next(st.rec)) {
      st.spill.flush();
      return true;
    }
    error_code ec;
    RouteResult r = st.router.route_write(st.rec.key, ec);
    if (ec) {
      throw_error(ec, "record " + std::to_string(st.records) + " (key " + st.rec.key.to_string() +
                          "): " + ec.message());
    }
    st.spill.add(r.db_id, r.storage_key, st.rec.value);
    ShardKeyStats& ks = st.keys[r.db_id];
    if (!ks.min || key_less(st.rec.key, *ks.min)) ks.min = st.rec.key;
    if (!ks.max || key_less(*ks.max, st.rec.key)) ks.max = st.rec.key;
    ++st.records;
  }
  return false;
}

struct BuiltShard {
  writer::ShardFileStats file;
  fs::path db_file;
  // The sidecar, minus its prefix (the ETag is known only after the upload).
  bool has_sidecar = false;
  std::uint64_t sidecar_body_size = 0;
  std::uint32_t sidecar_page_size = 0;
  std::string sidecar_frame;
  std::chrono::milliseconds duration{0};
};

// Runs `f` on the pool and resumes on the caller's executor; exceptions propagate.
template <typename F>
asio::awaitable<std::invoke_result_t<F&>> run_blocking(asio::thread_pool& pool, F f) {
  using R = std::invoke_result_t<F&>;
  auto task = [f = std::move(f)]() mutable -> asio::awaitable<R> {
    if constexpr (std::is_void_v<R>) {
      f();
      co_return;
    } else {
      co_return f();
    }
  };
  auto op = asio::co_spawn(pool.get_executor(), std::move(task), asio::use_awaitable);
  co_return co_await std::move(op);
}

std::string error_type_name(const std::exception& e) {
  if (const auto* se = dynamic_cast<const shardy::error*>(&e)) {
    return "shardy::error(" + se->code().message() + ")";
  }
  return "std::exception";
}

// One build: the options, the scratch directory, and the state shared by the upload lanes.
class BuildJob {
 public:
  BuildJob(std::shared_ptr<ObjectStore> store, WriterOptions options,
           std::unique_ptr<RecordSource> source)
      : store_(std::move(store)), o_(std::move(options)), source_(std::move(source)) {}

  asio::awaitable<BuildResult> run();

 private:
  void validate_and_default();
  asio::awaitable<void> write_run_record();
  asio::awaitable<void> maybe_heartbeat();
  asio::awaitable<void> lane(asio::thread_pool& pool);
  asio::awaitable<void> upload_shard(asio::thread_pool& pool, std::uint32_t db_id);
  void report(BuildProgress::phase phase);
  std::string db_url(std::uint32_t db_id) const {
    return join_url(o_.prefix, {o_.shard_prefix, "run_id=" + o_.run_id,
                                format_db_path(o_.db_path_template, db_id), "attempt=00"});
  }

  std::shared_ptr<ObjectStore> store_;
  WriterOptions o_;
  std::unique_ptr<RecordSource> source_;
  std::uint32_t page_size_ = 4096;  // 0 = auto
  fs::path scratch_;
  bool own_scratch_ = false;

  writer::RunRecord record_;
  std::string record_url_;
  std::chrono::steady_clock::time_point last_heartbeat_{};
  bool heartbeat_in_flight_ = false;

  std::unique_ptr<RoutingState> routing_;
  std::vector<std::uint32_t> todo_;  // non-empty shards
  std::size_t next_ = 0;
  bool failed_ = false;
  std::vector<ShardMeta> shards_;
  BuildStats stats_;
  BuildProgress progress_;
};

void BuildJob::validate_and_default() {
  if (o_.prefix.empty()) throw_error(errc::invalid_argument, "writer: prefix is required");
  if (o_.num_dbs == 0) throw_error(errc::invalid_argument, "writer: num_dbs must be > 0");
  if (o_.run_id.empty()) o_.run_id = random_hex_id();
  if (o_.run_id.find('/') != std::string::npos) {
    throw_error(errc::invalid_argument, "writer: run_id must not contain '/'");
  }
  validate_segment("shard_prefix", o_.shard_prefix);
  validate_segment("run_registry_prefix", o_.run_registry_prefix);
  (void)format_db_path(o_.db_path_template, 0);  // throws on an unsupported template
  if (o_.page_size == 0) {
    page_size_ = 4096;
  } else if (o_.page_size == kPageSizeAuto) {
    page_size_ = 0;
  } else if (writer::is_supported_page_size(o_.page_size)) {
    page_size_ = o_.page_size;
  } else {
    throw_error(errc::invalid_argument,
                "writer: page_size must be 4096, 8192, 16384, 32768, 65536 or auto, got " +
                    std::to_string(o_.page_size));
  }
  o_.max_concurrent_uploads = std::max<std::size_t>(1, o_.max_concurrent_uploads);
  o_.build_threads = std::max<std::size_t>(1, o_.build_threads);
  o_.memory_budget = std::max<std::size_t>(o_.memory_budget, 1u << 20);
  o_.progress_interval = std::max<std::uint64_t>(o_.progress_interval, 1);
}

void BuildJob::report(BuildProgress::phase phase) {
  progress_.stage = phase;
  if (o_.progress) o_.progress(progress_);
}

asio::awaitable<void> BuildJob::write_run_record() {
  if (!o_.write_run_record) co_return;
  record_.updated_at = now_us();
  record_.lease_expires_at =
      record_.status == "running" ? record_.updated_at + 10min : record_.updated_at;
  last_heartbeat_ = std::chrono::steady_clock::now();
  heartbeat_in_flight_ = true;
  PutOptions put;
  put.content_type = "application/x-yaml";
  try {
    co_await store_->put(record_url_, writer::serialize_run_record(record_), std::move(put));
  } catch (const std::exception& e) {
    // The registry is advisory: its failures never fail the write (as in the reference).
    spdlog::warn("run record {}: {}", record_url_, e.what());
  }
  heartbeat_in_flight_ = false;
}

asio::awaitable<void> BuildJob::maybe_heartbeat() {
  if (!o_.write_run_record || heartbeat_in_flight_) co_return;
  if (std::chrono::steady_clock::now() - last_heartbeat_ < 60s) co_return;
  co_await write_run_record();
}

asio::awaitable<void> BuildJob::upload_shard(asio::thread_pool& pool, std::uint32_t db_id) {
  const auto t0 = std::chrono::steady_clock::now();
  const fs::path spill_file = routing_->spill.path(db_id);
  const fs::path db_file = scratch_ / ("run_id=" + o_.run_id) /
                           format_db_path("db={db_id:05d}", db_id) / "attempt=00" / "shard.db";
  const std::uint64_t records = routing_->spill.records(db_id);
  const std::size_t memory_limit = o_.memory_budget / o_.build_threads;
  const std::uint32_t page_size = page_size_;
  const bool sidecar = o_.emit_sidecar;
  auto build = [=]() {
    BuiltShard b;
    fs::create_directories(db_file.parent_path());
    b.db_file = db_file;
    b.file = writer::build_shard_from_spill(spill_file, db_file, page_size, memory_limit, records);
    std::error_code ec;
    fs::remove(spill_file, ec);
    if (sidecar) {
      try {
        writer::SidecarBody body = writer::build_sidecar_body(db_file);
        b.sidecar_body_size = body.body.size();
        b.sidecar_page_size = body.page_size;
        b.sidecar_frame = writer::compress_sidecar_body(body.body);
        b.has_sidecar = true;
      } catch (const std::exception& e) {
        spdlog::warn("sidecar for {}: {} (shard published without it)", db_file.string(), e.what());
      }
    }
    return b;
  };
  BuiltShard built = co_await run_blocking(pool, std::move(build));

  const std::string url = db_url(db_id);
  PutOptions db_put;
  db_put.content_type = "application/x-sqlite3";
  PutResult put = co_await store_->put_file(url + "/shard.db", built.db_file, std::move(db_put));
  progress_.bytes_uploaded += built.file.db_bytes;
  if (built.has_sidecar) {
    // Bound to the ETag the store returned for this very upload (spec 4.5).
    std::string obj = writer::frame_sidecar(built.sidecar_body_size, built.sidecar_page_size,
                                            put.etag, built.sidecar_frame);
    const std::size_t size = obj.size();
    PutOptions sc_put;
    sc_put.content_type = "application/octet-stream";
    try {
      co_await store_->put(url + "/shard.sidecar", std::move(obj), std::move(sc_put));
      stats_.sidecar_bytes += size;
      stats_.sidecars_written += 1;
    } catch (const std::exception& e) {
      spdlog::warn("sidecar upload {}: {} (shard published without it)", url, e.what());
    }
  }
  std::error_code ec;
  fs::remove(built.db_file, ec);

  ShardMeta m;
  m.db_id = db_id;
  m.db_url = url;
  m.attempt = 0;
  m.row_count = static_cast<std::int64_t>(records);
  m.db_bytes = static_cast<std::int64_t>(built.file.db_bytes);
  m.min_key = manifest_key(routing_->keys[db_id].min);
  m.max_key = manifest_key(routing_->keys[db_id].max);
  m.checkpoint_id = random_hex_id();
  m.writer_info.attempt = 0;
  m.writer_info.duration_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
          .count();
  m.writer_info_json = {{"attempt", 0},
                        {"duration_ms", m.writer_info.duration_ms},
                        {"stage_id", nullptr},
                        {"task_attempt_id", nullptr}};
  shards_.push_back(std::move(m));
  stats_.shard_bytes += built.file.db_bytes;
  stats_.distinct_rows += built.file.distinct_keys;
  progress_.shards_done += 1;
  report(BuildProgress::phase::building);
}

asio::awaitable<void> BuildJob::lane(asio::thread_pool& pool) {
  while (!failed_ && next_ < todo_.size()) {
    const std::uint32_t db_id = todo_[next_++];
    try {
      co_await upload_shard(pool, db_id);
    } catch (...) {
      failed_ = true;  // the other lanes stop taking shards
      throw;
    }
    co_await maybe_heartbeat();
  }
}

asio::awaitable<BuildResult> BuildJob::run() {
  const auto t_start = std::chrono::steady_clock::now();
  validate_and_default();
  auto ex = co_await asio::this_coro::executor;

  if (o_.spill_dir.empty()) {
    scratch_ = fs::temp_directory_path() / ("shardy-writer-" + o_.run_id + "-" + random_hex_id());
    own_scratch_ = true;
  } else {
    scratch_ = o_.spill_dir / ("shardy-writer-" + o_.run_id + "-" + random_hex_id());
    own_scratch_ = true;
  }
  fs::create_directories(scratch_);

  record_.db_path_template = o_.db_path_template;
  record_.run_id = o_.run_id;
  record_.s3_prefix = o_.prefix;
  record_.shard_prefix = o_.shard_prefix;
  record_.started_at = now_us();
  record_url_ = join_url(o_.prefix, {o_.run_registry_prefix,
                                     format_timestamp_dir(record_.started_at) +
                                         "_run_id=" + o_.run_id + "_" + random_hex_id(),
                                     "run.yaml"});
  co_await write_run_record();

  asio::thread_pool pool(o_.build_threads);
  BuildResult result;
  result.run_id = o_.run_id;
  if (o_.write_run_record) result.run_record = record_url_;
  std::exception_ptr failure;
  try {
    // 1. Route and spill, in slices so that progress and the heartbeat keep going.
    routing_ = std::make_unique<RoutingState>(o_, scratch_);
    const std::uint64_t slice = o_.progress_interval;
    for (;;) {
      auto step = [this, slice]() { return route_some(*routing_, *source_, slice); };
      const bool done = co_await run_blocking(pool, std::move(step));
      progress_.records_read = routing_->records;
      report(BuildProgress::phase::routing);
      co_await maybe_heartbeat();
      if (done) break;
    }
    stats_.rows_written = routing_->records;
    const auto t_routed = std::chrono::steady_clock::now();
    stats_.durations.routing =
        std::chrono::duration_cast<std::chrono::milliseconds>(t_routed - t_start);

    // 2. Build and upload every non-empty shard, a bounded number at a time.
    for (std::uint32_t id = 0; id < o_.num_dbs; ++id) {
      if (routing_->spill.records(id) > 0) todo_.push_back(id);
    }
    progress_.shards_total = static_cast<std::uint32_t>(todo_.size());
    report(BuildProgress::phase::building);
    {
      auto strand = asio::make_strand(ex);
      const std::size_t n = std::min(o_.max_concurrent_uploads, todo_.size());
      auto make_lane = [this, &pool] { return lane(pool); };
      std::exception_ptr failure = co_await detail::run_workers(strand, n, make_lane);
      if (failure) std::rethrow_exception(failure);
    }
    std::sort(shards_.begin(), shards_.end(),
              [](const ShardMeta& a, const ShardMeta& b) { return a.db_id < b.db_id; });
    stats_.shards_written = static_cast<std::uint32_t>(shards_.size());
    const auto t_written = std::chrono::steady_clock::now();
    stats_.durations.write =
        std::chrono::duration_cast<std::chrono::milliseconds>(t_written - t_routed);

    // 3. Manifest, then _CURRENT.
    report(BuildProgress::phase::publishing);
    Manifest m;
    m.build.run_id = o_.run_id;
    m.build.created_at = now_us();
    m.build.created_at_text = format_timestamp(m.build.created_at);
    m.build.num_dbs = o_.num_dbs;
    m.build.s3_prefix = o_.prefix;
    m.build.key_col = o_.key_col;
    m.build.db_path_template = o_.db_path_template;
    m.build.shard_prefix = o_.shard_prefix;
    m.build.format_version = 4;
    m.build.key_encoding = o_.key_encoding;
    m.build.custom = o_.custom_manifest_fields;
    if (o_.emit_sidecar) {
      boost::json::object sc;
      sc["codec"] = "zstd";
      sc["filename"] = "shard.sidecar";
      sc["format_version"] = 8;
      if (page_size_ == 0) {
        sc["page_size"] = "auto";
      } else {
        sc["page_size"] = page_size_;
      }
      m.build.custom["sqlite_sidecar"] = std::move(sc);
    }
    m.shards = shards_;
    auto manifests = make_object_manifest_store(store_, o_.prefix);
    result.manifest = co_await manifests->publish(m);
    stats_.durations.manifest = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - t_written);

    record_.manifest_ref = result.manifest.ref;
    record_.status = "succeeded";
    co_await write_run_record();
  } catch (const std::exception& e) {
    failure = std::current_exception();
    record_.status = "failed";
    record_.error_type = error_type_name(e);
    record_.error_message = e.what();
  }
  if (failure) co_await write_run_record();
  pool.join();
  if (own_scratch_) {
    std::error_code ec;
    fs::remove_all(scratch_, ec);
  }
  if (failure) std::rethrow_exception(failure);

  stats_.durations.total = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - t_start);
  result.shards = std::move(shards_);
  result.stats = stats_;
  report(BuildProgress::phase::done);
  co_return result;
}

}  // namespace

std::unique_ptr<RecordSource> make_record_source(std::vector<Record> records) {
  return std::make_unique<VectorRecordSource>(std::move(records));
}

asio::awaitable<BuildResult> build_snapshot(std::shared_ptr<ObjectStore> store,
                                            WriterOptions options,
                                            std::unique_ptr<RecordSource> source) {
  if (!store) throw_error(errc::invalid_argument, "writer: no object store");
  if (!source) throw_error(errc::invalid_argument, "writer: no record source");
  auto job = std::make_unique<BuildJob>(std::move(store), std::move(options), std::move(source));
  co_return co_await job->run();
}

void async_build_snapshot_erased(
    asio::any_io_executor ex, std::shared_ptr<ObjectStore> store, WriterOptions options,
    std::unique_ptr<RecordSource> source,
    asio::any_completion_handler<void(error_code, BuildResult)> handler) {
  auto op = build_snapshot(std::move(store), std::move(options), std::move(source));
  detail::co_spawn_erased(ex, std::move(op), std::move(handler));
}

}  // namespace shardy
