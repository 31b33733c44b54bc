#include "reader/reader_core.hpp"

#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <functional>
#include <thread>

#include "core/blocking_hop.hpp"
#include "core/relayed_error.hpp"
#include "shard/range_shard.hpp"

namespace shardy::detail {

namespace asio = boost::asio;
using asio::awaitable;
using asio::use_awaitable;

std::shared_ptr<spdlog::logger> default_logger() {
  if (auto l = spdlog::get("shardy")) return l;
  static auto silent =
      std::make_shared<spdlog::logger>("shardy", std::make_shared<spdlog::sinks::null_sink_mt>());
  return silent;
}

// --------------------------------------------------------------------------------------------
// SnapshotState

SnapshotState::SnapshotState(ManifestRef l, ManifestRef c, Manifest m)
    : loaded(std::move(l)),
      current(std::move(c)),
      manifest(std::move(m)),
      router(manifest.build.num_dbs, manifest.build.key_encoding) {
  auto all = manifest.all_shards();
  slots.reserve(all.size());
  for (auto& s : all) slots.push_back(std::make_unique<ShardSlot>(std::move(s)));
}

SnapshotState::~SnapshotState() {
  std::vector<ShardMeta> drop;
  {
    std::lock_guard lock(retire_mu);
    if (retired && factory)
      for (auto& s : slots)
        if (s->meta.db_url && !keep.count({*s->meta.db_url, s->meta.checkpoint_id.value_or("")}))
          drop.push_back(s->meta);
  }
  slots.clear();  // closes the shards (their last users are gone)
  for (auto& m : drop) {
    try {
      factory->retire(m);
    } catch (...) {
      // Cache cleanup is best effort; the files are reused or removed by a later retire.
    }
  }
}

// --------------------------------------------------------------------------------------------
// ReaderCore

ReaderCore::ReaderCore(asio::any_io_executor ex, std::string prefix, ReaderOptions options)
    : ex_(std::move(ex)), prefix_(std::move(prefix)), opts_(std::move(options)) {
  while (!prefix_.empty() && prefix_.back() == '/') prefix_.pop_back();
  if (opts_.pool_checkout_timeout.count() <= 0)
    throw_error(errc::invalid_argument, "pool_checkout_timeout must be > 0 (B-01)");
  logger_ = opts_.logger ? opts_.logger : default_logger();
  if (opts_.rate_limiter && opts_.metrics) opts_.rate_limiter->set_metrics(opts_.metrics);
  if (opts_.manifest_store) {
    manifests_ = opts_.manifest_store;
  } else {
    if (prefix_.empty()) throw_error(errc::invalid_url, "empty snapshot prefix");
    objects_ = opts_.object_store ? opts_.object_store : default_object_store(ex_, opts_, prefix_);
    ManifestStoreOptions mo;
    mo.current_pointer_key = opts_.current_pointer_key;
    manifests_ = make_object_manifest_store(objects_, prefix_, mo);
  }
  if (!objects_)
    objects_ = opts_.object_store ? opts_.object_store : default_object_store(ex_, opts_, prefix_);
}

ReaderCore::~ReaderCore() {
  {
    std::lock_guard lock(state_mu_);
    current_.store(nullptr, std::memory_order_seq_cst);
    state_.reset();
  }
  if (blocking_pool_) blocking_pool_->join();
}

std::shared_ptr<SnapshotState> ReaderCore::pin() const {
  std::shared_ptr<SnapshotState> st;
  {
    std::lock_guard lock(state_mu_);
    st = state_;
  }
  if (!st) {
    if (closed()) throw_error(errc::reader_closed, "the reader was closed");
    throw_error(errc::reader_not_open, "the reader is not open");
  }
  return st;
}

std::shared_ptr<SnapshotState> ReaderCore::swap_state(std::shared_ptr<SnapshotState> st) {
  std::shared_ptr<SnapshotState> old;
  {
    std::lock_guard lock(state_mu_);
    current_.store(st.get(), std::memory_order_seq_cst);
    old = std::exchange(state_, std::move(st));
  }
  // A warm lookup that pinned `old` through a hazard slot finishes within microseconds (local
  // SQLite reads only); one that publishes `old` after this point sees current_ changed and
  // backs off without using it.
  if (old)
    for (auto& h : hazards_)
      while (h.ptr.load(std::memory_order_seq_cst) == old.get()) std::this_thread::yield();
  return old;
}

WarmPin::WarmPin(const ReaderCore& core) {
  // Each thread starts probing at its own slot (a mix of its id), so threads rarely share one.
  thread_local const std::size_t hint = static_cast<std::size_t>(
      (std::hash<std::thread::id>{}(std::this_thread::get_id()) * 0x9E3779B97F4A7C15ull) >> 40);
  for (std::size_t probe = 0; probe < ReaderCore::kHazardSlots; ++probe) {
    SnapshotState* st = core.current_.load(std::memory_order_seq_cst);
    if (!st) break;  // closed or not open: pin() throws the right error
    auto& slot = core.hazards_[(hint + probe) % ReaderCore::kHazardSlots].ptr;
    SnapshotState* expected = nullptr;
    if (!slot.compare_exchange_strong(expected, st, std::memory_order_seq_cst)) continue;
    if (core.current_.load(std::memory_order_seq_cst) == st) {
      slot_ = &slot;
      st_ = st;
      return;
    }
    slot.store(nullptr, std::memory_order_release);  // swapped meanwhile: try again
  }
  fallback_ = core.pin();
  st_ = fallback_.get();
}

WarmPin::~WarmPin() {
  if (slot_) slot_->store(nullptr, std::memory_order_release);
}

bool route_lookup_fast(const Router& router, const Key& key, char (&buf)[8],
                       LookupRoute& out) noexcept {
  const KeyEncoding enc = router.key_encoding();
  if (key.is_integer()) {
    // Routable (int64) and encodable (unsigned): 0 <= v < 2^63.
    auto v = key.as_int64();
    if (!v || *v < 0) return false;
    const auto u = static_cast<std::uint64_t>(*v);
    std::size_t width = 0;
    if (enc == KeyEncoding::u64be)
      width = 8;
    else if (enc == KeyEncoding::u32be && u <= 0xffffffffull)
      width = 4;
    else
      return false;
    char canonical[8];  // spec 3.1: the int64 as 8 little-endian bytes
    for (std::size_t i = 0; i < 8; ++i) canonical[i] = static_cast<char>((u >> (8 * i)) & 0xff);
    for (std::size_t i = 0; i < width; ++i)  // spec 3.3: big-endian
      buf[i] = static_cast<char>((u >> (8 * (width - 1 - i))) & 0xff);
    out.db_id = shard_for_hash(xxh3_64(std::string_view(canonical, 8)), router.num_dbs());
    out.storage_key = std::string_view(buf, width);
    return true;
  }
  if (enc != KeyEncoding::utf8 && enc != KeyEncoding::raw) return false;
  out.db_id = shard_for_hash(xxh3_64(key.data()), router.num_dbs());
  out.storage_key = key.data();
  return true;
}

void ReaderCore::install(std::shared_ptr<SnapshotState> st) {
  std::set<std::pair<std::string, std::string>> keep;
  for (auto& s : st->slots)
    if (s->meta.db_url) keep.emplace(*s->meta.db_url, s->meta.checkpoint_id.value_or(""));
  const auto new_factory = st->factory;
  std::shared_ptr<SnapshotState> old = swap_state(std::move(st));
  // A shard the new state reads through another tier keeps nothing of the old tier's (e.g. its
  // downloaded file when the snapshot moved to range reads).
  if (old && old->factory != new_factory) keep.clear();
  if (old) {
    std::lock_guard lock(old->retire_mu);
    old->retired = opts_.remove_retired_shards;
    old->keep = std::move(keep);
  }
  // `old` is destroyed here unless operations in flight or handles still pin it.
}

void ReaderCore::close() noexcept {
  if (closed_.exchange(true, std::memory_order_acq_rel)) return;
  std::shared_ptr<SnapshotState> old = swap_state(nullptr);
  const std::uint32_t n = old ? old->manifest.build.num_dbs : 0;
  if (opened()) {
    logger_->info("reader_closed prefix={} num_shards={}", prefix_, n);
    if (opts_.metrics) opts_.metrics->on_reader_closed(n);
  }
}

asio::any_io_executor ReaderCore::blocking_executor() {
  if (opts_.blocking_threads == 0) return ex_;
  std::lock_guard lock(pool_mu_);
  if (!blocking_pool_) blocking_pool_ = std::make_unique<asio::thread_pool>(opts_.blocking_threads);
  return blocking_pool_->get_executor();
}

void ReaderCore::note_get(std::chrono::steady_clock::time_point start, bool found) const {
  if (opts_.metrics) opts_.metrics->on_get(std::chrono::steady_clock::now() - start, found);
}

RouteResult ReaderCore::route(const SnapshotState& st, const Key& key,
                              const RoutingContext& ctx) const {
  if (!ctx.empty())
    throw_error(errc::invalid_argument,
                "a routing context was given, but the snapshot is HASH-sharded (E-09)");
  return st.router.route_lookup(key);
}

shard::ShardOpenContext ReaderCore::open_context(const SnapshotState& st, const ShardMeta& m) {
  shard::ShardOpenContext c;
  c.executor = ex_;
  if (st.factory->needs_blocking_executor()) {
    c.blocking_executor = blocking_executor();
    c.blocking_owner = shared_from_this();
  }
  c.objects = objects_;
  c.meta = m;
  c.db_object = m.db_url.value_or("") + "/shard.db";
  c.run_id = st.manifest.build.run_id;
  c.custom = st.manifest.build.custom;
  c.metrics = opts_.metrics;
  c.logger = logger_;
  return c;
}

AccessMode ReaderCore::choose_access(const Manifest& m) const {
  if (opts_.access_mode != AccessMode::automatic) return opts_.access_mode;
  shard::AdaptivePolicy policy;
  policy.per_shard_threshold = opts_.range_shard_bytes;
  policy.total_budget = opts_.range_total_bytes;
  const auto shards = m.all_shards();
  return shard::decide_access_mode(std::span<const ShardMeta>(shards), policy);
}

std::shared_ptr<shard::ShardFactory> ReaderCore::factory_for(AccessMode mode) {
  std::lock_guard lock(factory_mu_);
  if (mode == AccessMode::range) {
    if (!range_factory_) range_factory_ = make_range_factory(opts_);
    return range_factory_;
  }
  if (!download_factory_) download_factory_ = make_download_factory(opts_);
  return download_factory_;
}

// --------------------------------------------------------------------------------------------
// open / refresh

awaitable<std::shared_ptr<SnapshotState>> ReaderCore::build_state(ManifestRef loaded,
                                                                  ManifestRef current,
                                                                  Manifest manifest) {
  if (manifest.build.sharding.strategy != ShardingStrategy::hash)
    throw_error(errc::unsupported,
                "CEL-sharded snapshots are not supported (manifest " + loaded.ref + ")");
  check_kv_readable(manifest);
  auto st =
      std::make_shared<SnapshotState>(std::move(loaded), std::move(current), std::move(manifest));
  // The tier is chosen per snapshot (L-08): a refresh onto bigger shards may switch to range.
  st->access = choose_access(st->manifest);
  st->factory = factory_for(st->access);
  std::uint64_t total = 0, largest = 0;
  for (auto& s : st->slots) {
    const auto b = static_cast<std::uint64_t>(std::max<std::int64_t>(0, s->meta.db_bytes));
    total += b;
    largest = std::max(largest, b);
  }
  logger_->info(
      "reader_access_mode manifest_ref={} mode={} requested={} largest_shard_bytes={} "
      "total_bytes={}",
      st->loaded.ref, to_string(st->access), to_string(opts_.access_mode), largest, total);
  co_return st;
}

awaitable<void> ReaderCore::open_all(std::shared_ptr<SnapshotState> st) {
  // Opened with bounded concurrency; the first failure (in db_id order) is reported, and the
  // state (with whatever opened) is dropped by the caller.
  const std::size_t n = st->slots.size();
  auto limit =
      std::make_shared<shard::AsyncSemaphore>(std::max<std::size_t>(1, opts_.max_concurrency));
  auto done = std::make_shared<shard::AsyncSemaphore>(0);
  auto remaining = std::make_shared<std::atomic<std::size_t>>(0);
  // Each task's failure is copied on the thread that caught it and thrown anew here
  // (core/relayed_error.hpp: no exception object is shared between threads).
  auto errors = std::make_shared<std::vector<std::optional<detail::RelayedError>>>(n);
  std::vector<std::uint32_t> ids;
  for (std::uint32_t i = 0; i < n; ++i)
    if (st->slots[i]->meta.db_url) ids.push_back(i);
  if (ids.empty()) co_return;
  remaining->store(ids.size());
  auto self = shared_from_this();
  for (auto id : ids) {
    auto task = [](std::shared_ptr<ReaderCore> self, std::shared_ptr<SnapshotState> st,
                   std::uint32_t id,
                   std::shared_ptr<shard::AsyncSemaphore> limit) -> awaitable<void> {
      co_await limit->async_acquire(use_awaitable);
      shard::AsyncSemaphore::Permit permit(limit.get());
      co_await self->ensure_open(st, id);
    };
    auto on_done = [errors, remaining, done, id](std::exception_ptr e) {
      if (e) (*errors)[id].emplace(detail::RelayedError::from(e));
      if (remaining->fetch_sub(1) == 1) done->release();
    };
    asio::co_spawn(ex_, task(self, st, id, limit), std::move(on_done));
  }
  co_await done->async_acquire(use_awaitable);
  for (auto& e : *errors)
    if (e) e->raise();
}

awaitable<void> ReaderCore::open() {
  auto cur = co_await manifests_->load_current();
  if (!cur) {
    logger_->error("reader_current_not_found prefix={}", prefix_);
    throw_error(errc::no_current_pointer, "no " + opts_.current_pointer_key + " under " + prefix_);
  }
  ManifestRef loaded = *cur;
  Manifest manifest;
  bool malformed = false;
  std::string why;
  try {
    manifest = co_await manifests_->load_manifest(cur->ref);
  } catch (const error& e) {
    if (e.code() != make_error_code(errc::manifest_parse_error) || opts_.max_fallback_attempts == 0)
      throw;
    malformed = true;
    why = e.what();
  }
  if (malformed) {
    // Cold-start fallback (H-09) restricted to manifests older than the one _CURRENT names
    // (H-10): after a rollback, a newer manifest must not silently undo it.
    logger_->error("reader_cold_start_fallback failed_ref={} max_attempts={} error={}", cur->ref,
                   opts_.max_fallback_attempts, why);
    auto history = co_await manifests_->list_manifests(100000);
    std::vector<ManifestRef> candidates;
    auto pos = std::find_if(history.begin(), history.end(),
                            [&](const ManifestRef& r) { return r.ref == cur->ref; });
    if (pos != history.end()) {
      candidates.assign(pos + 1, history.end());
    } else {
      for (auto& r : history)
        if (r.published_at < cur->published_at && r.ref != cur->ref) candidates.push_back(r);
    }
    if (candidates.size() > opts_.max_fallback_attempts)
      candidates.resize(opts_.max_fallback_attempts);
    bool found = false;
    for (auto& cand : candidates) {
      bool bad = false;
      try {
        manifest = co_await manifests_->load_manifest(cand.ref);
      } catch (const error& e) {
        if (e.code() != make_error_code(errc::manifest_parse_error)) throw;
        bad = true;
        logger_->error("reader_fallback_skip_malformed manifest_ref={} error={}", cand.ref,
                       e.what());
      }
      if (bad) continue;
      loaded = cand;
      found = true;
      break;
    }
    if (!found)
      throw_error(errc::manifest_parse_error,
                  "the manifest " + cur->ref + " is malformed (" + why + ") and none of the " +
                      std::to_string(candidates.size()) + " older manifests tried could be used");
    logger_->info("reader_fallback_succeeded fallback_ref={} skipped_ref={}", loaded.ref, cur->ref);
    if (opts_.metrics) opts_.metrics->on_fallback(cur->ref, loaded.ref);
  }
  auto st = co_await build_state(std::move(loaded), *cur, std::move(manifest));
  if (opts_.shard_open == ShardOpenPolicy::eager) co_await open_all(st);
  const auto n = st->manifest.build.num_dbs;
  const auto ref = st->loaded.ref;
  install(std::move(st));
  opened_.store(true, std::memory_order_release);
  logger_->info("reader_initialized prefix={} num_shards={} manifest_ref={}", prefix_, n, ref);
  if (opts_.metrics) opts_.metrics->on_reader_initialized(n);
}

awaitable<bool> ReaderCore::refresh() {
  co_await refresh_mutex_.async_acquire(use_awaitable);
  shard::AsyncSemaphore::Permit permit(&refresh_mutex_);
  auto old = pin();  // reader_closed / reader_not_open (H-15)
  auto cur = co_await manifests_->load_current();
  if (!cur) {
    logger_->error("reader_refresh_current_not_found prefix={}", prefix_);
    throw_error(errc::no_current_pointer, "no " + opts_.current_pointer_key + " under " + prefix_);
  }
  if (cur->ref == old->current.ref) {
    logger_->debug("reader_refresh_unchanged manifest_ref={}", cur->ref);
    if (opts_.metrics) opts_.metrics->on_refresh(false);
    co_return false;
  }
  Manifest manifest;
  bool malformed = false;
  try {
    manifest = co_await manifests_->load_manifest(cur->ref);
  } catch (const error& e) {
    if (e.code() != make_error_code(errc::manifest_parse_error)) throw;
    malformed = true;
    logger_->error("reader_refresh_malformed_manifest manifest_ref={} error={}", cur->ref,
                   e.what());
  }
  if (malformed) {
    if (opts_.metrics) opts_.metrics->on_refresh(false);
    co_return false;
  }
  auto st = co_await build_state(*cur, *cur, std::move(manifest));
  if (opts_.shard_open == ShardOpenPolicy::eager) co_await open_all(st);
  if (closed()) throw_error(errc::reader_closed, "the reader was closed during refresh");
  logger_->info("reader_refreshed old_manifest_ref={} new_manifest_ref={}", old->loaded.ref,
                st->loaded.ref);
  old.reset();
  install(std::move(st));
  if (opts_.metrics) opts_.metrics->on_refresh(true);
  co_return true;
}

// --------------------------------------------------------------------------------------------
// lookups

awaitable<std::shared_ptr<shard::ShardReader>> ReaderCore::ensure_open(
    std::shared_ptr<SnapshotState> st, std::uint32_t db_id) {
  ShardSlot& slot = *st->slots.at(db_id);
  if (!slot.meta.db_url) co_return nullptr;  // an empty shard
  if (slot.ready.load(std::memory_order_acquire)) co_return slot.reader;
  co_await slot.open_mutex.async_acquire(use_awaitable);
  shard::AsyncSemaphore::Permit permit(&slot.open_mutex);
  if (slot.reader) co_return slot.reader;
  auto ctx = open_context(*st, slot.meta);
  std::shared_ptr<shard::ShardReader> r;
  try {
    r = co_await st->factory->open(std::move(ctx));
  } catch (const std::exception& e) {
    logger_->error("shard_open_failed db_id={} db_url={} error={}", db_id, *slot.meta.db_url,
                   e.what());
    if (opts_.metrics) opts_.metrics->on_shard_open_error(db_id);
    throw;
  }
  slot.reader = r;
  slot.ready.store(r.get(), std::memory_order_release);
  co_return r;
}

// Runs a shard call where its tier allows: inline for local shards, on the blocking pool for
// shards whose lookups wait on the network (hopping back to the io executor afterwards).
template <typename F>
awaitable<std::invoke_result_t<F&>> run_shard_call(ReaderCore& core, shard::ShardReader& r, F f) {
  if (r.threading() == shard::LookupThreading::caller_thread) co_return f();
  // On the blocking pool; the posting io thread keeps the core (which owns the pool) alive until
  // its post() has returned (see detail::hop_to).
  auto blocking = core.blocking_executor();
  auto keep = core.shared_from_this();
  co_await detail::hop_to(std::move(blocking), std::move(keep));
  std::exception_ptr failure;
  std::optional<std::invoke_result_t<F&>> out;
  try {
    out.emplace(f());
  } catch (...) {
    failure = std::current_exception();
  }
  co_await asio::post(core.executor(), use_awaitable);
  if (failure) std::rethrow_exception(failure);
  co_return std::move(*out);
}

awaitable<void> ReaderCore::acquire_tokens(std::uint64_t n) {
  if (!opts_.rate_limiter || n == 0) co_return;
  co_await opts_.rate_limiter->async_acquire(ex_, n, use_awaitable);
}

void ReaderCore::acquire_tokens_blocking(std::uint64_t n) {
  if (opts_.rate_limiter && n > 0) opts_.rate_limiter->acquire(n);
}

awaitable<std::optional<Value>> ReaderCore::lookup(std::shared_ptr<SnapshotState> st,
                                                   std::uint32_t db_id, std::string key) {
  auto r = co_await ensure_open(st, db_id);
  if (!r) co_return std::nullopt;
  auto call = [&r, &key] { return r->get(key); };
  co_return co_await run_shard_call(*this, *r, call);
}

awaitable<std::optional<Value>> ReaderCore::get(Key key, RoutingContext ctx, bool charge) {
  const auto start = std::chrono::steady_clock::now();
  if (closed()) throw_error(errc::reader_closed, "the reader was closed");
  if (charge) co_await acquire_tokens(1);
  auto st = pin();
  auto rr = route(*st, key, ctx);
  auto v = co_await lookup(st, rr.db_id, std::move(rr.storage_key));
  note_get(start, v.has_value());
  co_return v;
}

std::optional<Value> ReaderCore::try_get_local(const Key& key, const RoutingContext& ctx,
                                               bool& served, bool may_block) {
  served = false;
  WarmPin st(*this);
  char buf[8];
  LookupRoute lr;
  std::string slow_key;
  if (!ctx.empty() || !route_lookup_fast(st->router, key, buf, lr)) {
    auto rr = route(*st, key, ctx);  // the general path, with its errors
    lr.db_id = rr.db_id;
    slow_key = std::move(rr.storage_key);
    lr.storage_key = slow_key;
  }
  ShardSlot& slot = *st->slots[lr.db_id];
  if (!slot.meta.db_url) {
    served = true;
    return std::nullopt;
  }
  shard::ShardReader* r = slot.ready.load(std::memory_order_acquire);
  if (!r) return std::nullopt;
  if (!may_block && r->threading() != shard::LookupThreading::caller_thread) return std::nullopt;
  served = true;
  return r->get(lr.storage_key);
}

namespace {

struct Grouped {
  std::vector<std::uint32_t> ids;                 // distinct db_ids, ascending
  std::vector<std::vector<std::size_t>> indexes;  // per id: input positions
  std::vector<std::vector<std::string>> keys;     // per id: encoded keys
};

// Routes every key (in input order, so the first key that cannot be routed or encoded is the
// error, D-09) and groups them by shard, ascending db_id. The common key types take the
// allocation-free route of try_get_local.
Grouped group_keys(const ReaderCore& core, const SnapshotState& st, const std::vector<Key>& keys) {
  static const RoutingContext no_context;
  std::vector<std::uint32_t> ids(keys.size());
  std::vector<std::string> encoded(keys.size());
  for (std::size_t i = 0; i < keys.size(); ++i) {
    char buf[8];
    LookupRoute lr;
    if (route_lookup_fast(st.router, keys[i], buf, lr)) {
      ids[i] = lr.db_id;
      encoded[i].assign(lr.storage_key);
    } else {
      auto rr = core.route(st, keys[i], no_context);
      ids[i] = rr.db_id;
      encoded[i] = std::move(rr.storage_key);
    }
  }
  Grouped g;
  g.ids = ids;
  std::sort(g.ids.begin(), g.ids.end());
  g.ids.erase(std::unique(g.ids.begin(), g.ids.end()), g.ids.end());
  g.indexes.resize(g.ids.size());
  g.keys.resize(g.ids.size());
  for (std::size_t i = 0; i < keys.size(); ++i) {
    const auto gi = static_cast<std::size_t>(std::lower_bound(g.ids.begin(), g.ids.end(), ids[i]) -
                                             g.ids.begin());
    g.indexes[gi].push_back(i);
    g.keys[gi].push_back(std::move(encoded[i]));
  }
  return g;
}

std::size_t count_found(const std::vector<std::optional<Value>>& v) {
  std::size_t n = 0;
  for (auto& x : v) n += x.has_value();
  return n;
}

}  // namespace

std::vector<std::optional<Value>> ReaderCore::try_multi_get_local(const std::vector<Key>& keys,
                                                                  bool& served) {
  served = false;
  auto st = pin();
  auto g = group_keys(*this, *st, keys);
  if (!all_warm_local(*st, g.ids)) return {};
  std::vector<std::optional<Value>> out(keys.size());
  for (std::size_t gi = 0; gi < g.ids.size(); ++gi) {
    auto* r = st->slots[g.ids[gi]]->ready.load(std::memory_order_acquire);
    if (!r) continue;  // empty shard: all absent
    for (std::size_t j = 0; j < g.keys[gi].size(); ++j)
      out[g.indexes[gi][j]] = r->get(g.keys[gi][j]);
  }
  served = true;
  return out;
}

awaitable<void> ReaderCore::lookup_group(std::shared_ptr<SnapshotState> st, std::uint32_t db_id,
                                         const std::vector<std::string>* keys,
                                         std::vector<std::optional<Value>>* out) {
  auto r = co_await ensure_open(st, db_id);
  if (!r) co_return;
  auto call = [&r, keys, out] {
    for (std::size_t i = 0; i < keys->size(); ++i) (*out)[i] = r->get((*keys)[i]);
    return true;
  };
  co_await run_shard_call(*this, *r, call);
}

// True when every shard in `ids` is open and answers on the calling thread (a downloaded shard),
// or empty (db_url null: no object, every key absent).
bool ReaderCore::all_warm_local(const SnapshotState& st, const std::vector<std::uint32_t>& ids) {
  for (auto id : ids) {
    const ShardSlot& slot = *st.slots[id];
    if (!slot.meta.db_url) continue;
    const auto* r = slot.ready.load(std::memory_order_acquire);
    if (!r || r->threading() != shard::LookupThreading::caller_thread) return false;
  }
  return true;
}

// The fan-out of a multi_get whose shards are all warm and local: the lookups are plain CPU work,
// so instead of one task per shard group (a coroutine, a semaphore slot and a scheduler round trip
// each: 64 groups cost more than the lookups on 2 threads), the groups are cut into as many
// contiguous chunks of about equal key count as the machine has cores (at most max_concurrency):
// this coroutine runs the first chunk and the executor runs the others at the same time. Errors
// are kept per group, so the lowest failing db_id still wins (D-09).
awaitable<void> ReaderCore::lookup_warm_groups(
    const SnapshotState& st, const std::vector<std::uint32_t>& ids,
    const std::vector<std::vector<std::string>>& keys,
    std::vector<std::vector<std::optional<Value>>>& parts) {
  const std::size_t n = ids.size();
  // Failures relayed as copies (core/relayed_error.hpp), as in open_all.
  std::vector<std::optional<detail::RelayedError>> errors(n);
  auto run = [&](std::size_t first, std::size_t last) noexcept {
    for (std::size_t gi = first; gi < last; ++gi) {
      auto* r = st.slots[ids[gi]]->ready.load(std::memory_order_acquire);
      if (!r) continue;  // empty shard: all absent
      try {
        for (std::size_t j = 0; j < keys[gi].size(); ++j) parts[gi][j] = r->get(keys[gi][j]);
      } catch (...) {
        try {
          errors[gi].emplace(detail::RelayedError::from(std::current_exception()));
        } catch (...) {  // no memory to copy it: report that
          errors[gi].emplace();
          errors[gi]->kind = detail::RelayedError::Kind::bad_alloc;
        }
      }
    }
  };
  const std::size_t cores = std::max(1u, std::thread::hardware_concurrency());
  const std::size_t chunks = std::min({n, cores, std::max<std::size_t>(1, opts_.max_concurrency)});
  // Chunk boundaries: group indexes where the running key count crosses each 1/chunks share.
  std::size_t total = 0;
  for (const auto& k : keys) total += k.size();
  std::vector<std::size_t> bounds{0};
  std::size_t seen = 0;
  for (std::size_t gi = 0; gi < n && bounds.size() < chunks; ++gi) {
    seen += keys[gi].size();
    if (seen * chunks >= total * bounds.size() && gi + 1 < n) bounds.push_back(gi + 1);
  }
  bounds.push_back(n);
  if (bounds.size() > 2) {
    // The posted chunks point into this frame: the latch keeps it alive until all have run.
    auto done = std::make_shared<shard::AsyncSemaphore>(0);
    auto remaining = std::make_shared<std::atomic<std::size_t>>(bounds.size() - 2);
    for (std::size_t c = 1; c + 1 < bounds.size(); ++c)
      asio::post(ex_, [run, first = bounds[c], last = bounds[c + 1], done, remaining] {
        run(first, last);
        if (remaining->fetch_sub(1) == 1) done->release();
      });
    run(bounds[0], bounds[1]);
    co_await done->async_acquire(use_awaitable);
  } else {
    run(0, n);
  }
  for (auto& e : errors)  // db_id order: the lowest failing shard wins (D-09)
    if (e) e->raise();
}

awaitable<std::vector<std::optional<Value>>> ReaderCore::multi_get(std::vector<Key> keys,
                                                                   bool charge) {
  const auto start = std::chrono::steady_clock::now();
  if (closed()) throw_error(errc::reader_closed, "the reader was closed");
  std::vector<std::optional<Value>> out(keys.size());
  if (!keys.empty()) {
    // Duplicates are read once per occurrence and charged (D-06, P-05).
    if (charge) co_await acquire_tokens(keys.size());
    auto st = pin();
    auto g = group_keys(*this, *st, keys);
    const std::size_t n = g.ids.size();
    std::vector<std::vector<std::optional<Value>>> parts(n);
    for (std::size_t i = 0; i < n; ++i) parts[i].resize(g.keys[i].size());
    if (n == 1) {
      co_await lookup_group(st, g.ids[0], &g.keys[0], &parts[0]);
    } else if (all_warm_local(*st, g.ids)) {
      co_await lookup_warm_groups(*st, g.ids, g.keys, parts);
    } else {
      // One task per shard group, at most max_concurrency at once; all of them finish before
      // this coroutine continues (they point into this frame). Shard readers are thread-safe
      // (a connection per call), so groups need no per-shard strand.
      auto limit =
          std::make_shared<shard::AsyncSemaphore>(std::max<std::size_t>(1, opts_.max_concurrency));
      auto done = std::make_shared<shard::AsyncSemaphore>(0);
      auto remaining = std::make_shared<std::atomic<std::size_t>>(n);
      // Failures relayed as copies, as in open_all.
      auto errors = std::make_shared<std::vector<std::optional<detail::RelayedError>>>(n);
      auto self = shared_from_this();
      for (std::size_t i = 0; i < n; ++i) {
        auto task = [](std::shared_ptr<ReaderCore> self, std::shared_ptr<SnapshotState> st,
                       std::uint32_t id, const std::vector<std::string>* keys,
                       std::vector<std::optional<Value>>* part,
                       std::shared_ptr<shard::AsyncSemaphore> limit) -> awaitable<void> {
          co_await limit->async_acquire(use_awaitable);
          shard::AsyncSemaphore::Permit permit(limit.get());
          co_await self->lookup_group(st, id, keys, part);
        };
        auto on_done = [errors, remaining, done, i](std::exception_ptr e) {
          if (e) (*errors)[i].emplace(detail::RelayedError::from(e));
          if (remaining->fetch_sub(1) == 1) done->release();
        };
        asio::co_spawn(ex_, task(self, st, g.ids[i], &g.keys[i], &parts[i], limit),
                       std::move(on_done));
      }
      co_await done->async_acquire(use_awaitable);
      for (auto& e : *errors)  // db_id order: the lowest failing shard wins (D-09)
        if (e) e->raise();
    }
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t j = 0; j < parts[i].size(); ++j)
        out[g.indexes[i][j]] = std::move(parts[i][j]);
  }
  if (opts_.metrics)
    opts_.metrics->on_multi_get(std::chrono::steady_clock::now() - start, keys.size(),
                                count_found(out));
  co_return out;
}

void ReaderCore::note_multi_get(std::chrono::steady_clock::time_point start,
                                const std::vector<std::optional<Value>>& v) const {
  if (opts_.metrics)
    opts_.metrics->on_multi_get(std::chrono::steady_clock::now() - start, v.size(), count_found(v));
}

// --------------------------------------------------------------------------------------------
// handles and scans

awaitable<ShardHandle> ReaderCore::borrow(std::uint32_t db_id, std::optional<Key> key) {
  auto st = pin();
  if (key) db_id = route(*st, *key, RoutingContext{}).db_id;
  if (db_id >= st->slots.size())
    throw_error(errc::invalid_argument, "db_id " + std::to_string(db_id) +
                                            " is not below num_dbs " +
                                            std::to_string(st->slots.size()));
  co_return co_await borrow_on(std::move(st), db_id);
}

awaitable<ShardHandle> ReaderCore::borrow_on(std::shared_ptr<SnapshotState> st,
                                             std::uint32_t db_id) {
  auto h = std::make_shared<HandleState>();
  h->slot = st->slots[db_id].get();
  h->reader = co_await ensure_open(st, db_id);
  if (h->reader) {
    auto r = h->reader;
    auto call = [&r] { return r->borrow_connection(); };
    h->lease = co_await run_shard_call(*this, *r, call);
  }
  h->state = std::move(st);
  co_return make_handle(std::move(h));
}

awaitable<ShardHandleSet> ReaderCore::borrow_for_keys(std::vector<Key> keys) {
  auto st = pin();  // reader_closed / reader_not_open, even for no keys
  ShardHandleSet out;
  out.handle_of_key.reserve(keys.size());
  std::vector<std::uint32_t> ids;  // distinct shards, in order of first appearance
  std::vector<std::size_t> index(st->slots.size(), SIZE_MAX);
  for (const Key& k : keys) {
    const std::uint32_t id = route(*st, k, RoutingContext{}).db_id;  // all routed before any borrow
    if (index[id] == SIZE_MAX) {
      index[id] = ids.size();
      ids.push_back(id);
    }
    out.handle_of_key.push_back(index[id]);
  }
  out.handles.reserve(ids.size());
  for (std::uint32_t id : ids) out.handles.push_back(co_await borrow_on(st, id));
  co_return out;
}

ScanCursor ReaderCore::make_scan(std::uint32_t first, std::uint32_t last, ScanOptions o) const {
  auto st = pin();
  if (first >= st->slots.size() || last >= st->slots.size())
    throw_error(errc::invalid_argument, "db_id out of range");
  if (o.chunk_size == 0) throw_error(errc::invalid_argument, "scan chunk_size must be > 0");
  auto s = std::make_shared<ScanState>();
  s->state = std::move(st);
  s->db_id = first;
  s->last_db_id = last;
  s->initial_start = o.start;
  s->bounds.start = std::move(o.start);
  s->bounds.end = std::move(o.end);
  s->chunk_size = o.chunk_size;
  ScanCursor c;
  c.s_ = std::move(s);
  return c;
}

awaitable<std::vector<ScanRow>> ReaderCore::next(ScanCursor* cursor) {
  if (!cursor->s_) throw_error(errc::invalid_argument, "empty scan cursor");
  ScanState& s = *cursor->s_;
  std::vector<ScanRow> out;
  while (!s.done && s.db_id <= s.last_db_id) {
    auto r = co_await ensure_open(s.state, s.db_id);
    std::vector<shard::Row> rows;
    if (r) {
      auto call = [&r, &s] { return r->scan(s.bounds, s.chunk_size); };
      rows = co_await run_shard_call(*this, *r, call);
    }
    const bool shard_done = rows.size() < s.chunk_size;
    if (!rows.empty()) {
      s.bounds.start = rows.back().key;
      s.bounds.start_exclusive = true;
    }
    out.reserve(rows.size());
    for (auto& row : rows)
      out.push_back(ScanRow{s.db_id, std::move(row.key), std::move(row.value)});
    if (shard_done) {
      if (s.db_id == s.last_db_id) {
        s.done = true;
      } else {
        ++s.db_id;
        s.bounds.start = s.initial_start;
        s.bounds.start_exclusive = false;
      }
    }
    if (!out.empty()) break;
  }
  if (s.db_id > s.last_db_id) s.done = true;
  co_return out;
}

}  // namespace shardy::detail
