#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_future.hpp>
#include <optional>
#include <shardy/reader.hpp>
#include <type_traits>

#include "core/relayed_error.hpp"
#include "reader/reader_core.hpp"

namespace shardy {

namespace asio = boost::asio;

namespace {

// What a reader coroutine ended with, settled on the io thread that ran it: its value, or a copy
// of its exception (core/relayed_error.hpp: no exception object is shared between that thread
// and the caller's, which ThreadSanitizer would report as a race).
template <typename T>
struct Settled {
  std::optional<std::conditional_t<std::is_void_v<T>, bool, T>> value;
  std::optional<detail::RelayedError> error;
};

template <typename T>
asio::awaitable<Settled<T>> settle(asio::awaitable<T> a) {
  Settled<T> out;
  try {
    if constexpr (std::is_void_v<T>) {
      co_await std::move(a);
      out.value.emplace(true);
    } else {
      T v = co_await std::move(a);
      out.value.emplace(std::move(v));
    }
  } catch (...) {
    out.error.emplace(detail::RelayedError::from(std::current_exception()));
  }
  co_return out;
}

// Runs a reader coroutine on its executor and blocks until it is done; exceptions (with their
// code and diagnostics) propagate to the caller, rebuilt on the caller's thread.
template <typename T>
T run_blocking(const std::shared_ptr<detail::ReaderCore>& core, asio::awaitable<T> a) {
  auto fut = asio::co_spawn(core->executor(), settle(std::move(a)), asio::use_future);
  Settled<T> s = fut.get();
  if (s.error) s.error->raise();
  if constexpr (!std::is_void_v<T>) return std::move(*s.value);
}

template <typename F>
auto with_ec(error_code& ec, F f) noexcept -> decltype(f()) {
  ec.clear();
  try {
    return f();
  } catch (const error& e) {
    ec = e.code();
  } catch (const boost::system::system_error& e) {
    ec = e.code();
  } catch (...) {
    ec = make_error_code(errc::shard_error);
  }
  return {};
}

// The core of a reader that was opened (errc::reader_not_open otherwise).
const std::shared_ptr<detail::ReaderCore>& opened(const std::shared_ptr<detail::ReaderCore>& core) {
  if (!core) throw_error(errc::reader_not_open, "the reader is not open");
  return core;
}

// What get and multi_get share: the reader must be open and not closed, the call takes `tokens`
// from the rate limiter, and any failure is reported to the metrics sink as a lookup error of
// operation `op`. `lookup(start)` does the lookup; `start` is when the call began.
template <typename Lookup>
auto metered_lookup(const std::shared_ptr<detail::ReaderCore>& core, std::string_view op,
                    std::size_t tokens, Lookup lookup) {
  opened(core);
  if (core->closed()) throw_error(errc::reader_closed, "the reader was closed");
  const auto start = std::chrono::steady_clock::now();
  auto* metrics = core->options().metrics.get();
  try {
    core->acquire_tokens_blocking(tokens);
    return lookup(start);
  } catch (...) {
    if (metrics) metrics->on_lookup_error(op);
    throw;
  }
}

}  // namespace

Reader::Reader(std::string prefix, ReaderOptions options, std::size_t io_threads)
    : pool_(std::make_unique<asio::thread_pool>(io_threads == 0 ? 1 : io_threads)) {
  auto ex = pool_->get_executor();
  on_own_thread_ = [ex] { return ex.running_in_this_thread(); };
  try {
    // Open through the core directly so that errors keep their diagnostics.
    auto core = std::make_shared<detail::ReaderCore>(ex, std::move(prefix), std::move(options));
    run_blocking(core, core->open());
    async_ = AsyncReader(std::move(core));
  } catch (...) {
    pool_->join();
    throw;
  }
}

Reader::Reader(asio::io_context& io, std::string prefix, ReaderOptions options) {
  auto ex = io.get_executor();
  on_own_thread_ = [ex] { return ex.running_in_this_thread(); };
  check_thread();
  auto core = std::make_shared<detail::ReaderCore>(ex, std::move(prefix), std::move(options));
  run_blocking(core, core->open());
  async_ = AsyncReader(std::move(core));
}

Reader::~Reader() {
  async_.close();
  async_ = AsyncReader();
  if (pool_) pool_->join();
}

void Reader::check_thread() const {
  if (on_own_thread_ && on_own_thread_())
    throw_error(errc::would_deadlock,
                "a blocking Reader call was made from one of the reader's own io threads");
}

std::optional<Value> Reader::get(const Key& key, const RoutingContext& context) {
  check_thread();
  const auto& core = async_.core_;
  auto lookup = [&](auto start) -> std::optional<Value> {
    bool served = false;
    // An open shard is read right here, even a range shard whose page reads wait on S3: this
    // thread blocks anyway and is not one of the io threads that serve S3 (check_thread), so the
    // blocking pool would only add two thread hops to every cold lookup.
    auto v = core->try_get_local(key, context, served, /*may_block=*/true);
    if (served) {
      if (core->options().metrics) core->note_get(start, v.has_value());
      return v;
    }
    // Cold shard: the io threads open it (range shards: on the blocking pool) and look up.
    return run_blocking(core, core->get(key, context, false));
  };
  return metered_lookup(core, "get", 1, lookup);
}

std::optional<Value> Reader::get(const Key& key, error_code& ec) noexcept {
  return with_ec(ec, [&] { return get(key); });
}

std::vector<std::optional<Value>> Reader::multi_get(const std::vector<Key>& keys) {
  check_thread();
  const auto& core = async_.core_;
  auto lookup = [&](auto start) -> std::vector<std::optional<Value>> {
    bool served = false;
    // All shards warm and local: sequential lookups on this thread beat a fan-out (each lookup
    // is about a microsecond; concurrency comes from the calling threads).
    auto v = core->try_multi_get_local(keys, served);
    if (served) {
      core->note_multi_get(start, v);
      return v;
    }
    return run_blocking(core, core->multi_get(keys, false));
  };
  return metered_lookup(core, "multi_get", keys.size(), lookup);
}

std::vector<std::optional<Value>> Reader::multi_get(const std::vector<Key>& keys,
                                                    error_code& ec) noexcept {
  return with_ec(ec, [&] { return multi_get(keys); });
}

bool Reader::refresh() {
  check_thread();
  const auto& core = opened(async_.core_);
  return run_blocking(core, core->refresh());
}

bool Reader::refresh(error_code& ec) noexcept {
  return with_ec(ec, [&] { return refresh(); });
}

ShardHandle Reader::borrow_shard(std::uint32_t db_id) {
  check_thread();
  const auto& core = opened(async_.core_);
  return run_blocking(core, core->borrow(db_id));
}

ShardHandle Reader::borrow_shard_for_key(const Key& key) {
  check_thread();
  const auto& core = opened(async_.core_);
  // Routed inside the borrow, on the snapshot the handle pins (not on whatever is current
  // before a concurrent refresh).
  return run_blocking(core, core->borrow(0, key));
}

ShardHandleSet Reader::borrow_shards_for_keys(const std::vector<Key>& keys) {
  check_thread();
  const auto& core = opened(async_.core_);
  return run_blocking(core, core->borrow_for_keys(keys));
}

std::vector<ScanRow> Reader::next(ScanCursor& cursor) {
  check_thread();
  const auto& core = opened(async_.core_);
  return run_blocking(core, core->next(&cursor));
}

}  // namespace shardy
