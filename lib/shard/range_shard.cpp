#include "shard/range_shard.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <exception>
#include <shardy/error.hpp>

#include "core/blocking_hop.hpp"
#include "shard/range_vfs.hpp"
#include "shard/sqlite_shard.hpp"

namespace shardy::shard {

namespace {

// The VFS and the source it serves, kept alive as long as the SQLite shard using them.
struct RangeState {
  std::shared_ptr<RangeSource> source;
  std::unique_ptr<RangeVfs> vfs;
};

// A SQLite shard over the range VFS. Lookups report the error behind a failed page read
// (errc::shard_changed, a timeout ...) rather than SQLite's generic I/O error.
class RangeShard final : public ShardReader {
 public:
  RangeShard(std::shared_ptr<RangeState> state, std::shared_ptr<ShardReader> sqlite)
      : state_(std::move(state)), sqlite_(std::move(sqlite)) {}

  std::optional<Value> get(std::string_view storage_key) override {
    return translate([&] { return sqlite_->get(storage_key); });
  }
  std::vector<Row> scan(const ScanBounds& bounds, std::size_t limit) override {
    return translate([&] { return sqlite_->scan(bounds, limit); });
  }
  ConnectionLease borrow_connection() override {
    return translate([&] { return sqlite_->borrow_connection(); });
  }
  LookupThreading threading() const noexcept override { return LookupThreading::blocking_pool; }

  const RangeSource& source() const noexcept { return *state_->source; }

 private:
  template <class F>
  auto translate(F&& f) -> decltype(f()) {
    (void)RangeVfs::take_last_read_error();  // stale, from an earlier call on this thread
    try {
      return f();
    } catch (const shardy::error&) {
      if (auto cause = RangeVfs::take_last_read_error()) std::rethrow_exception(cause);
      throw;
    }
  }

  std::shared_ptr<RangeState> state_;
  std::shared_ptr<ShardReader> sqlite_;
};

// Runs on the blocking executor: opening a SQLite connection reads pages (page 1, the schema),
// which may wait on S3.
// Opens the SQLite connection over the range VFS: reads the header and schema pages, which may
// wait on S3, so it runs on the blocking pool.
std::shared_ptr<ShardReader> open_sqlite_blocking(std::shared_ptr<RangeState> state,
                                                  const RangeShardOptions& options) {
  SqliteShardOptions so;
  so.path = RangeVfs::file_name;
  so.vfs = state->vfs->name();
  so.immutable = true;
  so.mmap_size = 0;  // the VFS has no xFetch
  so.cache_size_kib = options.sqlite_cache_kib;
  so.max_connections = options.max_connections;
  so.checkout_timeout = options.checkout_timeout;
  so.threading = LookupThreading::blocking_pool;
  so.keep_alive = state;
  std::shared_ptr<ShardReader> sqlite = open_sqlite_shard(std::move(so));
  return std::make_shared<RangeShard>(std::move(state), std::move(sqlite));
}

class RangeShardFactory final : public ShardFactory {
 public:
  explicit RangeShardFactory(RangeShardOptions o) : opts_(o) {}

  // Opening and every lookup read pages that wait on S3: they need the blocking pool.
  bool needs_blocking_executor() const noexcept override { return true; }

  boost::asio::awaitable<std::shared_ptr<ShardReader>> open(ShardOpenContext ctx) override {
    if (!ctx.meta.db_url) throw_error(errc::invalid_argument, "range shard without a db_url");
    RangeSourceOptions so;
    so.db_object = ctx.db_object.empty() ? *ctx.meta.db_url + "/shard.db" : ctx.db_object;
    if (ctx.meta.db_bytes > 0) so.db_bytes = static_cast<std::uint64_t>(ctx.meta.db_bytes);
    so.page_cache_pages = opts_.page_cache_pages;
    so.max_gap_pages = opts_.max_gap_pages;
    so.prefetch_chains = opts_.prefetch_chains;
    so.sidecar_object = sidecar_url(ctx);

    std::shared_ptr<RangeSource> source =
        co_await RangeSource::open(ctx.objects, ctx.executor, std::move(so), ctx.logger);
    const RangeReadMetrics m = source->metrics();
    if (ctx.logger)
      ctx.logger->debug("range shard {} open: {} bytes, page size {}, sidecar {} ({}), {} requests",
                        source->url(), source->size(), source->page_size(),
                        m.sidecar_used ? "used" : "not used", to_string(m.sidecar_reject),
                        m.requests);

    auto state = std::make_shared<RangeState>();
    state->source = source;
    state->vfs = std::make_unique<RangeVfs>(std::move(source));
    if (ctx.blocking_executor) co_await detail::hop_to(ctx.blocking_executor, ctx.blocking_owner);
    std::exception_ptr failure;
    std::shared_ptr<ShardReader> shard;
    try {
      shard = open_sqlite_blocking(std::move(state), opts_);
    } catch (...) {
      failure = std::current_exception();
    }
    co_await boost::asio::post(ctx.executor, boost::asio::use_awaitable);  // back on the io side
    if (failure) std::rethrow_exception(failure);
    co_return shard;
  }

 private:
  std::string sidecar_url(const ShardOpenContext& ctx) const {
    using mode = RangeShardOptions::sidecar_mode;
    if (opts_.sidecar == mode::never) return {};
    std::string filename = "shard.sidecar";
    const auto* announced = ctx.custom.if_contains("sqlite_sidecar");
    if (announced && announced->is_object()) {
      if (const auto* f = announced->as_object().if_contains("filename"); f && f->is_string())
        filename = std::string(f->as_string());
    } else if (opts_.sidecar == mode::automatic) {
      return {};  // not announced: don't pay a request for a 404
    }
    // Only a plain file name, next to shard.db.
    if (filename.empty() || filename.find('/') != std::string::npos) filename = "shard.sidecar";
    return *ctx.meta.db_url + "/" + filename;
  }

  RangeShardOptions opts_;
};

}  // namespace

std::shared_ptr<ShardFactory> make_range_shard_factory(RangeShardOptions options) {
  return std::make_shared<RangeShardFactory>(options);
}

std::optional<RangeReadMetrics> range_metrics(const ShardReader& shard) {
  if (const auto* r = dynamic_cast<const RangeShard*>(&shard)) return r->source().metrics();
  return std::nullopt;
}

AccessMode decide_access_mode(std::span<const std::uint64_t> sizes,
                              const AdaptivePolicy& policy) noexcept {
  std::uint64_t total = 0;
  for (std::uint64_t s : sizes) {
    if (s >= policy.per_shard_threshold) return AccessMode::range;
    total += s;
  }
  return !sizes.empty() && total >= policy.total_budget ? AccessMode::range : AccessMode::download;
}

AccessMode decide_access_mode(std::span<const ShardMeta> shards,
                              const AdaptivePolicy& policy) noexcept {
  std::vector<std::uint64_t> sizes;
  sizes.reserve(shards.size());
  for (const auto& s : shards)
    if (s.db_url) sizes.push_back(s.db_bytes > 0 ? static_cast<std::uint64_t>(s.db_bytes) : 0);
  return decide_access_mode(sizes, policy);
}

}  // namespace shardy::shard

namespace shardy {

std::string_view to_string(AccessMode m) noexcept {
  switch (m) {
    case AccessMode::download:
      return "download";
    case AccessMode::range:
      return "range";
    case AccessMode::automatic:
      return "auto";
  }
  return "auto";
}

std::optional<AccessMode> parse_access_mode(std::string_view s) noexcept {
  if (s == "download") return AccessMode::download;
  if (s == "range") return AccessMode::range;
  if (s == "auto") return AccessMode::automatic;
  return std::nullopt;
}

}  // namespace shardy
