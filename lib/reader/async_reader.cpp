#include <spdlog/spdlog.h>

#include <boost/asio/append.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>
#include <shardy/async_reader.hpp>

#include "reader/reader_core.hpp"

namespace shardy {

namespace asio = boost::asio;
using detail::ReaderCore;

std::string_view to_string(HealthStatus s) noexcept {
  switch (s) {
    case HealthStatus::healthy:
      return "healthy";
    case HealthStatus::degraded:
      return "degraded";
    case HealthStatus::unhealthy:
      return "unhealthy";
  }
  return "unknown";
}

namespace {

// The error_code of an exception escaping a reader coroutine; its text goes to the log (the
// completion signature has no room for it). Nothing from a third party escapes (N-14).
error_code to_error_code(std::exception_ptr e, spdlog::logger* log, const char* op) {
  try {
    std::rethrow_exception(e);
  } catch (const error& x) {
    if (log) log->debug("{} failed: {}", op, x.what());
    return x.code();
  } catch (const boost::system::system_error& x) {
    if (log) log->debug("{} failed: {}", op, x.what());
    return x.code();
  } catch (const std::bad_alloc&) {
    return make_error_code(std::errc::not_enough_memory);
  } catch (const std::exception& x) {
    if (log) log->warn("{} failed with an unexpected exception: {}", op, x.what());
    return make_error_code(errc::shard_error);
  } catch (...) {
    return make_error_code(errc::shard_error);
  }
}

// Completes `h` with (ec, v) from a posted job, so that it never runs inside the initiating
// function; dispatch then hops to the handler's own executor if it has one.
template <typename Handler, typename... Args>
void complete_later(const asio::any_io_executor& ex, Handler h, Args... args) {
  asio::post(ex, [h = std::move(h), ... args = std::move(args)]() mutable {
    asio::dispatch(asio::append(std::move(h), std::move(args)...));
  });
}

asio::any_io_executor fallback_executor(const std::shared_ptr<ReaderCore>& core) {
  return core ? core->executor() : asio::any_io_executor(asio::system_executor());
}

// co_spawns `a` on the reader's executor and completes `h` with (error_code, T).
template <typename T, typename Handler>
void spawn(std::shared_ptr<ReaderCore> core, asio::awaitable<T> a, Handler h, const char* op,
           bool lookup) {
  auto ex = core->executor();
  auto done = [core, h = std::move(h), op, lookup](std::exception_ptr e, T v) mutable {
    error_code ec;
    if (e) {
      ec = to_error_code(e, &core->log(), op);
      if (lookup && core->options().metrics) core->options().metrics->on_lookup_error(op);
    }
    asio::dispatch(asio::append(std::move(h), ec, ec ? T{} : std::move(v)));
  };
  asio::co_spawn(ex, std::move(a), std::move(done));
}

}  // namespace

void AsyncReader::initiate_open(
    executor_type ex, std::string prefix, ReaderOptions options,
    asio::any_completion_handler<void(error_code, AsyncReader)> handler) {
  std::shared_ptr<ReaderCore> core;
  try {
    core = std::make_shared<ReaderCore>(ex, std::move(prefix), std::move(options));
  } catch (...) {
    auto ec = to_error_code(std::current_exception(), nullptr, "open");
    complete_later(ex, std::move(handler), ec, AsyncReader());
    return;
  }
  auto done = [core, h = std::move(handler)](std::exception_ptr e) mutable {
    error_code ec;
    if (e) ec = to_error_code(e, &core->log(), "open");
    asio::dispatch(asio::append(std::move(h), ec, ec ? AsyncReader() : AsyncReader(core)));
  };
  asio::co_spawn(ex, core->open(), std::move(done));
}

void AsyncReader::initiate_get(
    std::shared_ptr<ReaderCore> core, Key key, RoutingContext ctx,
    asio::any_completion_handler<void(error_code, std::optional<Value>)> handler) {
  if (!core) {
    complete_later(asio::any_io_executor(asio::system_executor()), std::move(handler),
                   make_error_code(errc::reader_not_open), std::optional<Value>());
    return;
  }
  auto a = core->get(std::move(key), std::move(ctx), true);
  spawn(core, std::move(a), std::move(handler), "get", true);
}

namespace detail {

// The warm path (see the header): the lookup runs here, and the template in the header completes
// the handler with a single deferred hop. Rate-limited readers always take the coroutine path
// (they may have to wait).
bool try_get_now(ReaderCore& core, const Key& key, const RoutingContext& ctx, error_code& ec,
                 std::optional<Value>& out) noexcept {
  if (core.options().rate_limiter) return false;
  MetricsSink* metrics = core.options().metrics.get();
  const auto start =
      metrics ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point{};
  try {
    bool served = false;
    out = core.try_get_local(key, ctx, served);
    if (!served) return false;
    if (metrics) core.note_get(start, out.has_value());
    return true;
  } catch (...) {
    out.reset();
    try {
      ec = to_error_code(std::current_exception(), &core.log(), "get");
      if (metrics) metrics->on_lookup_error("get");
    } catch (...) {
      ec = make_error_code(errc::shard_error);
    }
    return true;
  }
}

bool try_get_now(ReaderCore& core, const Key& key, error_code& ec,
                 std::optional<Value>& out) noexcept {
  static const RoutingContext no_context;
  return try_get_now(core, key, no_context, ec, out);
}

asio::any_io_executor reader_executor(const ReaderCore& core) noexcept { return core.executor(); }

}  // namespace detail

asio::awaitable<std::optional<Value>> AsyncReader::co_get(Key key) const {
  return co_get(std::move(key), RoutingContext());  // not a coroutine itself: no second frame
}

asio::awaitable<std::optional<Value>> AsyncReader::co_get(Key key, RoutingContext context) const {
  if (core_) {
    error_code ec;
    std::optional<Value> v;
    if (detail::try_get_now(*core_, key, context, ec, v)) {
      if (ec) throw boost::system::system_error(ec, "co_get");
      co_return v;
    }
  }
  auto op = async_get(std::move(key), std::move(context), asio::use_awaitable);
  co_return co_await std::move(op);
}

void AsyncReader::initiate_multi_get(
    std::shared_ptr<ReaderCore> core, std::vector<Key> keys,
    asio::any_completion_handler<void(error_code, std::vector<std::optional<Value>>)> handler) {
  if (!core) {
    complete_later(asio::any_io_executor(asio::system_executor()), std::move(handler),
                   make_error_code(errc::reader_not_open), std::vector<std::optional<Value>>());
    return;
  }
  auto a = core->multi_get(std::move(keys), true);
  spawn(core, std::move(a), std::move(handler), "multi_get", true);
}

void AsyncReader::initiate_refresh(std::shared_ptr<ReaderCore> core,
                                   asio::any_completion_handler<void(error_code, bool)> handler) {
  if (!core) {
    complete_later(asio::any_io_executor(asio::system_executor()), std::move(handler),
                   make_error_code(errc::reader_not_open), false);
    return;
  }
  auto a = core->refresh();
  spawn(core, std::move(a), std::move(handler), "refresh", false);
}

void AsyncReader::initiate_borrow(
    std::shared_ptr<ReaderCore> core, std::uint32_t db_id,
    asio::any_completion_handler<void(error_code, ShardHandle)> handler) {
  if (!core) {
    complete_later(asio::any_io_executor(asio::system_executor()), std::move(handler),
                   make_error_code(errc::reader_not_open), ShardHandle());
    return;
  }
  auto a = core->borrow(db_id);
  spawn(core, std::move(a), std::move(handler), "borrow", false);
}

void AsyncReader::initiate_borrow_key(
    std::shared_ptr<ReaderCore> core, Key key,
    asio::any_completion_handler<void(error_code, ShardHandle)> handler) {
  if (!core) {
    complete_later(asio::any_io_executor(asio::system_executor()), std::move(handler),
                   make_error_code(errc::reader_not_open), ShardHandle());
    return;
  }
  auto a = core->borrow(0, std::move(key));
  spawn(core, std::move(a), std::move(handler), "borrow", false);
}

void AsyncReader::initiate_borrow_keys(
    std::shared_ptr<ReaderCore> core, std::vector<Key> keys,
    asio::any_completion_handler<void(error_code, ShardHandleSet)> handler) {
  if (!core) {
    complete_later(asio::any_io_executor(asio::system_executor()), std::move(handler),
                   make_error_code(errc::reader_not_open), ShardHandleSet());
    return;
  }
  auto a = core->borrow_for_keys(std::move(keys));
  spawn(core, std::move(a), std::move(handler), "borrow", false);
}

void AsyncReader::initiate_next(
    std::shared_ptr<ReaderCore> core, ScanCursor* cursor,
    asio::any_completion_handler<void(error_code, std::vector<ScanRow>)> handler) {
  if (!core) {
    complete_later(asio::any_io_executor(asio::system_executor()), std::move(handler),
                   make_error_code(errc::reader_not_open), std::vector<ScanRow>());
    return;
  }
  auto a = core->next(cursor);
  spawn(core, std::move(a), std::move(handler), "scan", false);
}

const ReaderCore& AsyncReader::core() const {
  if (!core_) throw_error(errc::reader_not_open, "the reader is not open");
  return *core_;
}

namespace {
// Routing only (E-10): a key that routes but does not fit the key encoding still has a shard.
std::uint32_t route_only(const detail::SnapshotState& st, const Key& key,
                         const RoutingContext& context) {
  if (!context.empty())
    throw_error(errc::invalid_argument,
                "a routing context was given, but the snapshot is HASH-sharded (E-09)");
  return st.router.shard_for(key);
}
}  // namespace

std::uint32_t AsyncReader::route_key(const Key& key, const RoutingContext& context) const {
  auto st = core().pin();
  return route_only(*st, key, context);
}

ShardDetail AsyncReader::shard_for_key(const Key& key, const RoutingContext& context) const {
  auto st = core().pin();
  return st->slots[route_only(*st, key, context)]->meta;
}

std::vector<ShardDetail> AsyncReader::shards_for_keys(const std::vector<Key>& keys) const {
  auto st = core().pin();
  std::vector<ShardDetail> out;
  out.reserve(keys.size());
  for (auto& k : keys) out.push_back(st->slots[st->router.shard_for(k)]->meta);
  return out;
}

std::string AsyncReader::encode_key(const Key& key) const {
  auto st = core().pin();
  return encode_key_for_lookup(key, st->router.key_encoding());
}

KeyEncoding AsyncReader::key_encoding() const { return core().pin()->router.key_encoding(); }

SnapshotInfo AsyncReader::snapshot_info() const {
  auto st = core().pin();
  const auto& b = st->manifest.build;
  SnapshotInfo i;
  i.run_id = b.run_id;
  i.num_dbs = b.num_dbs;
  i.sharding = b.sharding.strategy;
  i.created_at = b.created_at;
  i.manifest_ref = st->loaded.ref;
  i.current_ref = st->current.ref;
  i.published_at = st->loaded.published_at;
  i.row_count = st->manifest.total_row_count();
  i.key_encoding = b.key_encoding;
  i.hash_algorithm = b.sharding.hash_algorithm;
  i.access_mode = st->access;
  return i;
}

std::vector<ShardDetail> AsyncReader::shard_details() const {
  auto st = core().pin();
  std::vector<ShardDetail> out;
  out.reserve(st->slots.size());
  for (auto& s : st->slots) out.push_back(s->meta);
  return out;
}

ReaderHealth AsyncReader::health(std::optional<std::chrono::milliseconds> threshold) const {
  ReaderHealth h;
  if (!core_) return h;  // not open: unhealthy, not closed (G-05)
  h.is_closed = core_->closed();
  if (h.is_closed) return h;
  std::shared_ptr<detail::SnapshotState> st;
  try {
    st = core_->pin();
  } catch (...) {
    return h;
  }
  h.manifest_ref = st->loaded.ref;
  h.num_shards = st->manifest.build.num_dbs;
  auto age = std::chrono::system_clock::now() - st->loaded.published_at;
  h.manifest_age = std::max(std::chrono::milliseconds(0),
                            std::chrono::duration_cast<std::chrono::milliseconds>(age));
  h.status =
      (threshold && h.manifest_age > *threshold) ? HealthStatus::degraded : HealthStatus::healthy;
  return h;
}

ScanCursor AsyncReader::scan(std::uint32_t db_id, ScanOptions options) const {
  return core().make_scan(db_id, db_id, std::move(options));
}

ScanCursor AsyncReader::scan_all(ScanOptions options) const {
  auto st = core().pin();
  const auto last = st->manifest.build.num_dbs - 1;
  return core().make_scan(0, last, std::move(options));
}

void AsyncReader::close() noexcept {
  if (core_) core_->close();
}

bool AsyncReader::is_open() const noexcept { return core_ && core_->opened() && !core_->closed(); }

AsyncReader::executor_type AsyncReader::get_executor() const { return fallback_executor(core_); }

// --- ScanCursor / ShardHandle -------------------------------------------------------------------

bool ScanCursor::done() const noexcept { return !s_ || s_->done; }

ShardHandle::~ShardHandle() = default;

std::uint32_t ShardHandle::db_id() const { return detail().db_id; }

const ShardDetail& ShardHandle::detail() const {
  if (!s_) throw_error(errc::invalid_argument, "released shard handle");
  return s_->slot->meta;
}

sqlite3* ShardHandle::native_handle() const { return s_ ? s_->lease.handle() : nullptr; }

std::optional<Value> ShardHandle::get(std::string_view storage_key) const {
  if (!s_) throw_error(errc::invalid_argument, "released shard handle");
  if (!s_->reader) return std::nullopt;
  return s_->reader->get(storage_key);
}

std::vector<std::optional<Value>> ShardHandle::multi_get(
    const std::vector<std::string>& storage_keys) const {
  std::vector<std::optional<Value>> out;
  out.reserve(storage_keys.size());
  for (auto& k : storage_keys) out.push_back(get(k));
  return out;
}

void ShardHandle::release() noexcept { s_.reset(); }

}  // namespace shardy
