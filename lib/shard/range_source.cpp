#include "shard/range_source.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_future.hpp>
#include <cstring>
#include <future>
#include <shardy/error.hpp>

namespace shardy::shard {

namespace {

// True on a thread of the executor that serves the store's requests (an io_context's, or a
// thread_pool's like the Reader's io threads): a read that waits there may wait forever.
bool on_io_thread(const boost::asio::any_io_executor& ex) {
  if (auto* ioex = ex.target<boost::asio::io_context::executor_type>())
    return ioex->running_in_this_thread();
  if (auto* pool = ex.target<boost::asio::thread_pool::executor_type>())
    return pool->running_in_this_thread();
  return false;
}

// One page GET's outcome, settled on the io thread that ran it: the response, or the error as
// code + text. read() waits for it on another thread; handing it an exception object instead
// (std::future rethrowing the io thread's exception_ptr) shares one object between the two
// threads, whose reference count libstdc++ keeps with atomics ThreadSanitizer does not see:
// the io thread's release (and free) of that object races with the reader's use of it in
// TSan's model (RangeInflight.AFailedSharedGetFailsEveryWaitingRead aborted the TSan run).
struct PageGetOutcome {
  std::optional<GetResult> result;
  error_code code;          // set when !result
  std::string diagnostics;  // shardy::error::diagnostics(), or what() of another exception
  std::string what;         // the full text of the error
};

boost::asio::awaitable<PageGetOutcome> page_get(std::shared_ptr<ObjectStore> store, std::string url,
                                                GetOptions options) {
  PageGetOutcome out;
  try {
    GetResult r = co_await store->get(std::move(url), std::move(options));
    out.result.emplace(std::move(r));
  } catch (const shardy::error& e) {
    out.code = e.code();
    out.diagnostics = e.diagnostics();
    out.what = e.what();
  } catch (const boost::system::system_error& e) {
    out.code = e.code();
    out.diagnostics = out.what = e.what();
  } catch (const std::exception& e) {
    out.code = make_error_code(errc::shard_error);
    out.diagnostics = out.what = e.what();
  } catch (...) {
    out.code = make_error_code(errc::shard_error);
    out.diagnostics = out.what = "page request failed";
  }
  co_return out;
}

}  // namespace

RangeSource::RangeSource(std::shared_ptr<ObjectStore> store, boost::asio::any_io_executor io,
                         RangeSourceOptions options, std::shared_ptr<spdlog::logger> logger)
    : store_(std::move(store)),
      io_(std::move(io)),
      opts_(std::move(options)),
      log_(std::move(logger)),
      cache_(opts_.page_cache_pages) {}

RangeSource::~RangeSource() = default;

boost::asio::awaitable<std::shared_ptr<RangeSource>> RangeSource::open(
    std::shared_ptr<ObjectStore> store, boost::asio::any_io_executor io, RangeSourceOptions options,
    std::shared_ptr<spdlog::logger> logger) {
  using namespace boost::asio::experimental::awaitable_operators;
  std::shared_ptr<RangeSource> src(
      new RangeSource(std::move(store), std::move(io), std::move(options), std::move(logger)));
  const RangeSourceOptions& o = src->opts_;

  // The first bytes of shard.db (header, page 1) and the sidecar, in parallel. The probe is not
  // pinned: its response tells us the ETag every later read is pinned to.
  std::uint64_t probe_len = std::max<std::uint32_t>(o.probe_bytes, 100);
  if (o.db_bytes && *o.db_bytes > 0) probe_len = std::min<std::uint64_t>(probe_len, *o.db_bytes);
  GetOptions probe_opts;
  probe_opts.range = ByteRange::bounded(0, probe_len);
  auto probe = src->store_->get(o.db_object, std::move(probe_opts));
  auto sidecar = src->fetch_sidecar();
  auto both = std::move(probe) && std::move(sidecar);
  auto [head, sidecar_bytes] = co_await std::move(both);
  src->counters_.open_requests += 1;
  src->counters_.bytes += head.body.size();

  src->etag_ = head.etag;
  src->size_ = head.object_size;
  if (src->etag_.empty() || src->size_ == 0) {
    // The store did not report them on a ranged GET: ask.
    std::string url = o.db_object;
    ObjectInfo info = co_await src->store_->head(std::move(url));
    src->counters_.open_requests += 1;
    src->etag_ = info.etag;
    src->size_ = info.size;
  }
  if (src->etag_.empty())
    throw_error(errc::shard_error, "no ETag for " + o.db_object + ": range reads cannot be pinned");
  if (o.db_bytes && *o.db_bytes != src->size_ && src->log_)
    src->log_->warn("range shard {}: manifest db_bytes {} but the object has {} bytes", o.db_object,
                    *o.db_bytes, src->size_);

  const auto header_ps = sqlite_header_page_size(head.body);
  if (header_ps) {
    src->page_size_ = *header_ps;
  } else {
    src->page_size_ = 4096;  // spec 4.2: fall back to 4096 on an unreadable header
    if (src->log_)
      src->log_->warn("range shard {}: unreadable SQLite header, assuming page size 4096",
                      o.db_object);
  }
  // Pages wholly inside the probe go to the cache.
  const std::uint32_t ps = src->page_size_;
  for (std::size_t at = 0; at + ps <= head.body.size(); at += ps)
    src->cache_.put(static_cast<std::uint32_t>(at / ps + 1), head.body.substr(at, ps));

  src->use_sidecar(std::move(sidecar_bytes), header_ps);
  co_await src->prefetch_interior_chains();
  co_return src;
}

boost::asio::awaitable<void> RangeSource::prefetch_interior_chains() {
  // Every search compares the probe with cells of the interior pages on its path; a cell whose
  // record overflows makes SQLite read its whole chain. Those chains are the same for every
  // lookup: fetch them once at open (coalesced) and keep them pinned beside the sidecar pages.
  if (interior_chain_pages_.empty() || !opts_.prefetch_chains) co_return;
  const std::uint64_t ps = page_size_;
  std::vector<std::pair<std::uint32_t, std::uint32_t>> runs;
  for (std::uint32_t p : interior_chain_pages_) {
    if (!runs.empty() && (std::uint64_t(p) - runs.back().first < opts_.chain_span_pages ||
                          p - runs.back().second <= std::uint64_t(opts_.max_gap_pages) + 1))
      runs.back().second = p;
    else
      runs.emplace_back(p, p);
  }
  for (auto [first, last] : runs) {
    const std::uint64_t off = std::uint64_t(first - 1) * ps;
    GetOptions go;
    go.range =
        ByteRange::bounded(off, std::min<std::uint64_t>((last - first + 1) * ps, size_ - off));
    go.if_match = etag_;
    std::string url = opts_.db_object;
    GetResult r = co_await store_->get(std::move(url), std::move(go));
    counters_.open_requests += 1;
    counters_.bytes += r.body.size();
    for (std::uint32_t p : interior_chain_pages_)
      if (p >= first && p <= last && std::uint64_t(p - first) * ps + ps <= r.body.size())
        cache_.pin(p, r.body.substr(std::uint64_t(p - first) * ps, ps));
  }
}

boost::asio::awaitable<std::optional<std::string>> RangeSource::fetch_sidecar() {
  if (opts_.sidecar_object.empty()) co_return std::nullopt;
  try {
    GetOptions whole;  // named: a defaulted `{}` argument inside co_await trips g++ 12
    std::string url = opts_.sidecar_object;
    GetResult r = co_await store_->get(std::move(url), std::move(whole));
    counters_.sidecar_requests += 1;
    counters_.bytes += r.body.size();
    co_return std::move(r.body);
  } catch (const shardy::error& e) {
    counters_.sidecar_requests += 1;
    if (e.code() != errc::object_not_found && log_)
      log_->warn("range shard {}: cannot fetch sidecar: {}", opts_.sidecar_object, e.what());
    sidecar_reject_ = SidecarReject::fetch_failed;
  }
  co_return std::nullopt;
}

void RangeSource::reject_sidecar(SidecarReject why, const std::string& detail) {
  sidecar_reject_ = why;
  if (!log_) return;
  // A newer format is "absent" by the spec; everything else is worth a warning.
  const auto level =
      why == SidecarReject::newer_version ? spdlog::level::debug : spdlog::level::warn;
  log_->log(level, "range shard {}: sidecar ignored ({}): {}", opts_.db_object, to_string(why),
            detail);
}

void RangeSource::use_sidecar(std::optional<std::string> bytes,
                              std::optional<std::uint32_t> header_ps) {
  if (!bytes) return;  // absent (or fetch failed: already counted)
  auto decoded = decode_sidecar(*bytes);
  if (!decoded.sidecar) return reject_sidecar(decoded.reason, decoded.detail);
  Sidecar& sc = *decoded.sidecar;
  std::string detail;
  const auto why = check_sidecar_binding(sc, etag_, header_ps, size_, &detail);
  if (why != SidecarReject::none) return reject_sidecar(why, detail);

  sidecar_used_ = true;
  sidecar_pages_ = sc.pagenos.size();
  chain_pages_ = std::move(sc.chain_pages);
  for (std::size_t c = 0; c < sc.chain_count(); ++c)
    for (std::uint32_t k = sc.chain_offsets[c]; k < sc.chain_offsets[c + 1]; ++k)
      chain_of_.emplace(chain_pages_[k], std::pair{sc.chain_offsets[c], sc.chain_offsets[c + 1]});
  for (std::size_t i = 0; i < sc.pagenos.size(); ++i) {
    if (!chain_of_.empty())
      for (std::uint32_t head : note_chain_siblings(sc.pages[i], sc.pagenos[i]))
        for (std::uint32_t q : chain_group(head)) interior_chain_pages_.push_back(q);
    cache_.pin(sc.pagenos[i], std::move(sc.pages[i]));
  }
  std::sort(interior_chain_pages_.begin(), interior_chain_pages_.end());
  interior_chain_pages_.erase(
      std::unique(interior_chain_pages_.begin(), interior_chain_pages_.end()),
      interior_chain_pages_.end());
}

RangeReadMetrics RangeSource::metrics() const {
  RangeReadMetrics m;
  m.page_requests = counters_.page_requests;
  m.open_requests = counters_.open_requests;
  m.sidecar_requests = counters_.sidecar_requests;
  m.requests = m.page_requests + m.open_requests + m.sidecar_requests;
  m.bytes = counters_.bytes;
  m.pages_fetched = counters_.pages_fetched;
  m.page_hits = counters_.page_hits;
  m.page_misses = counters_.page_misses;
  m.chain_prefetches = counters_.chain_prefetches;
  m.inflight_joins = counters_.inflight_joins;
  m.reads = counters_.reads;
  m.sidecar_used = sidecar_used_;
  m.sidecar_reject = sidecar_reject_;
  m.sidecar_pages = sidecar_pages_;
  return m;
}

std::size_t RangeSource::read(char* dst, std::size_t n, std::uint64_t offset) {
  counters_.reads += 1;
  if (changed_) throw_error(errc::shard_changed, opts_.db_object + " changed under the reader");
  if (n == 0 || offset >= size_) return 0;
  const std::size_t avail = static_cast<std::size_t>(std::min<std::uint64_t>(n, size_ - offset));
  const std::uint64_t ps = page_size_;
  const std::uint64_t end = offset + avail;

  // The slice of page `pageno` (1-based) that this read wants.
  auto slice = [&](std::uint32_t pageno, std::size_t& from, std::size_t& len, char*& to) {
    const std::uint64_t start = std::uint64_t(pageno - 1) * ps;
    const std::uint64_t a = std::max(offset, start), b = std::min(end, start + ps);
    from = static_cast<std::size_t>(a - start);
    len = static_cast<std::size_t>(b - a);
    to = dst + (a - offset);
  };

  std::vector<std::uint32_t> missing;
  const auto first = static_cast<std::uint32_t>(offset / ps + 1);
  const auto last = static_cast<std::uint32_t>((end - 1) / ps + 1);
  for (std::uint32_t p = first; p <= last; ++p) {
    std::size_t from = 0, len = 0;
    char* to = nullptr;
    slice(p, from, len, to);
    if (cache_.copy(p, from, len, to))
      counters_.page_hits += 1;
    else
      missing.push_back(p);
  }
  if (missing.empty()) return avail;
  counters_.page_misses += missing.size();
  // Waiting for a request (ours or another read's) on an io thread could wait forever.
  if (on_io_thread(io_))
    throw_error(errc::would_deadlock,
                "range read of " + url() + " on an io_context thread (run it on a blocking pool)");

  auto copy_page = [&](std::uint32_t p, const std::string& page) {
    std::size_t from = 0, len = 0;
    char* to = nullptr;
    slice(p, from, len, to);
    if (from + len > page.size())
      throw_error(errc::truncated_body, "short page " + std::to_string(p) + " of " + url());
    std::memcpy(to, page.data() + from, len);
  };

  // Each round: under flights_mu_, every missing page is either joined (another read's request
  // for it is in flight: wait for that request), found in the cache (a request ended meanwhile),
  // or claimed (registered in flights_ under this read's request, then fetched here). A fetcher
  // caches its pages before it unregisters them, so a page in neither place is not being
  // fetched. A joined request that failed fails this read with its error; a joined page that is
  // gone again (the LRU evicted it, or is disabled, and the request lacked it) takes another
  // round, which claims it.
  bool joined_any = false;
  for (int round = 0; !missing.empty(); ++round) {
    if (round == 8)
      throw_error(errc::shard_error, "page " + std::to_string(missing.front()) + " of " + url() +
                                         " kept missing after 8 rounds of shared requests");
    std::vector<std::shared_ptr<Flight>> joined;
    std::vector<std::uint32_t> mine, waiting, want;
    std::uint32_t span_limit = 0;
    auto flight = std::make_shared<Flight>();
    {
      std::lock_guard lk(flights_mu_);
      for (std::uint32_t p : missing) {
        std::size_t from = 0, len = 0;
        char* to = nullptr;
        slice(p, from, len, to);
        if (auto f = flights_.find(p); f != flights_.end()) {
          if (std::find(joined.begin(), joined.end(), f->second) == joined.end())
            joined.push_back(f->second);
          waiting.push_back(p);
        } else if (!cache_.copy(p, from, len, to)) {
          mine.push_back(p);
        }
      }
      // A page of an overflow chain brings the rest of its chain along (SQLite reads it next),
      // and the chains of the other cells on the same b-tree page (its search compares them
      // too); pages already cached or in flight are left out.
      want = mine;
      if (!mine.empty() && opts_.prefetch_chains && cache_.capacity() > 0 && !chain_of_.empty()) {
        bool widened = false;
        for (std::uint32_t p : mine)
          for (std::uint32_t q : chain_group(p))
            if (q != p && !cache_.contains(q) && !flights_.contains(q)) {
              want.push_back(q);
              widened = true;
            }
        if (widened) {
          counters_.chain_prefetches += 1;
          span_limit = opts_.chain_span_pages;
        }
        std::sort(want.begin(), want.end());
        want.erase(std::unique(want.begin(), want.end()), want.end());
      }
      for (std::uint32_t p : want) flights_[p] = flight;
    }
    if (!joined.empty() && !joined_any) {
      joined_any = true;
      counters_.inflight_joins += 1;
    }

    if (!want.empty()) {
      // Whatever happens below, the request ends: its pages leave flights_ and its waiters wake.
      struct Finish {
        RangeSource& self;
        const std::shared_ptr<Flight>& flight;
        const std::vector<std::uint32_t>& pages;
        ~Finish() {
          {
            std::lock_guard lk(self.flights_mu_);
            for (std::uint32_t p : pages)
              if (auto f = self.flights_.find(p); f != self.flights_.end() && f->second == flight)
                self.flights_.erase(f);
          }
          {
            std::lock_guard lk(flight->mu);
            flight->done = true;
          }
          flight->cv.notify_all();
        }
      };
      std::exception_ptr failure;  // this thread's own exception, rethrown below
      {
        Finish finish{*this, flight, want};
        // Nothing of the fetcher's exception object is shared: waiters throw their own
        // shardy::error from code + diagnostics. One exception object rethrown or released in
        // several threads is a data race to ThreadSanitizer (libstdc++ counts its references
        // with atomics TSan does not see).
        try {
          fetch_pages(want, span_limit, flight->pages);
        } catch (const shardy::error& e) {
          failure = std::current_exception();
          flight->code = e.code();
          flight->diagnostics = e.diagnostics();
        } catch (const std::exception& e) {
          failure = std::current_exception();
          flight->code = make_error_code(errc::shard_error);
          flight->diagnostics = e.what();
        } catch (...) {
          failure = std::current_exception();
          flight->code = make_error_code(errc::shard_error);
          flight->diagnostics = "page request of " + url() + " failed";
        }
        flight->failed = failure != nullptr;
        if (!failure)
          for (auto& [p, page] : flight->pages) {
            if (!chain_of_.empty() && !chain_of_.contains(p)) note_chain_siblings(page, p);
            cache_.put(p, page);  // a copy: waiters read flight->pages
          }
      }
      if (failure) std::rethrow_exception(failure);
      for (std::uint32_t p : mine) {
        auto it = flight->pages.find(p);
        if (it == flight->pages.end())
          throw_error(errc::shard_error,
                      "page " + std::to_string(p) + " missing from the response");
        copy_page(p, it->second);
      }
    }

    for (auto& f : joined) {
      std::unique_lock lk(f->mu);
      f->cv.wait(lk, [&] { return f->done; });
      if (f->failed) throw shardy::error(f->code, f->diagnostics);
    }
    missing.clear();
    for (std::uint32_t p : waiting) {
      const std::string* page = nullptr;
      for (auto& f : joined)
        if (auto it = f->pages.find(p); it != f->pages.end()) {
          page = &it->second;
          break;
        }
      if (page) {
        copy_page(p, *page);
      } else {
        std::size_t from = 0, len = 0;
        char* to = nullptr;
        slice(p, from, len, to);
        if (!cache_.copy(p, from, len, to)) missing.push_back(p);
      }
    }
  }
  return avail;
}

std::vector<std::uint32_t> RangeSource::chain_group(std::uint32_t page) {
  std::vector<std::uint32_t> out;
  auto it = chain_of_.find(page);
  if (it == chain_of_.end()) return out;
  auto add_chain = [&](std::pair<std::uint32_t, std::uint32_t> range) {
    for (std::uint32_t k = range.first; k < range.second; ++k) out.push_back(chain_pages_[k]);
  };
  add_chain(it->second);
  std::shared_ptr<const std::vector<std::uint32_t>> heads;
  {
    std::lock_guard lk(siblings_mu_);
    if (auto s = siblings_.find(chain_pages_[it->second.first]); s != siblings_.end())
      heads = s->second;
  }
  if (heads)
    for (std::uint32_t h : *heads)
      if (auto c = chain_of_.find(h); c != chain_of_.end() && c->second != it->second)
        add_chain(c->second);
  return out;
}

namespace {

// SQLite varint (1-9 bytes, big-endian groups of 7 bits); false when it runs past the end.
bool read_varint(std::string_view p, std::size_t& at, std::uint64_t& v) {
  v = 0;
  for (int i = 0; i < 9; ++i) {
    if (at >= p.size()) return false;
    const auto b = static_cast<unsigned char>(p[at++]);
    if (i == 8) {
      v = (v << 8) | b;
      return true;
    }
    v = (v << 7) | (b & 0x7f);
    if (!(b & 0x80)) return true;
  }
  return true;
}

}  // namespace

std::vector<std::uint32_t> RangeSource::note_chain_siblings(std::string_view page,
                                                            std::uint32_t pageno) {
  // Index b-tree pages only (WITHOUT ROWID tables are index b-trees); file format 1.6 "cell
  // payload overflow": local size K from the usable size U (no reserved bytes in shards).
  const std::size_t base = pageno == 1 ? 100 : 0;
  if (page.size() < base + 12) return {};
  const auto type = static_cast<unsigned char>(page[base]);
  if (type != 2 && type != 10) return {};
  const std::size_t hdr = type == 2 ? 12 : 8;
  const auto u16 = [&](std::size_t at) {
    return std::size_t(static_cast<unsigned char>(page[at])) << 8 |
           static_cast<unsigned char>(page[at + 1]);
  };
  const std::size_t ncells = u16(base + 3);
  const std::int64_t usable = static_cast<std::int64_t>(page.size());
  const std::int64_t max_local = (usable - 12) * 64 / 255 - 23;
  const std::int64_t min_local = (usable - 12) * 32 / 255 - 23;
  auto heads = std::make_shared<std::vector<std::uint32_t>>();
  for (std::size_t i = 0; i < ncells; ++i) {
    const std::size_t ptr_at = base + hdr + 2 * i;
    if (ptr_at + 2 > page.size()) return {};
    std::size_t at = u16(ptr_at);
    if (type == 2) at += 4;  // left child pointer
    std::uint64_t payload = 0;
    if (!read_varint(page, at, payload)) return {};
    if (static_cast<std::int64_t>(payload) <= max_local) continue;
    std::int64_t local =
        min_local + (static_cast<std::int64_t>(payload) - min_local) % (usable - 4);
    if (local > max_local) local = min_local;
    const std::size_t ovfl_at = at + static_cast<std::size_t>(local);
    if (ovfl_at + 4 > page.size()) return {};
    std::uint32_t head = 0;
    for (int b = 0; b < 4; ++b) head = head << 8 | static_cast<unsigned char>(page[ovfl_at + b]);
    if (chain_of_.contains(head)) heads->push_back(head);
  }
  if (heads->size() >= 2) {
    std::lock_guard lk(siblings_mu_);
    for (std::uint32_t h : *heads) siblings_[h] = heads;
  }
  return *heads;
}

void RangeSource::fetch_pages(const std::vector<std::uint32_t>& pages, std::uint32_t span_limit,
                              std::unordered_map<std::uint32_t, std::string>& out) {
  if (on_io_thread(io_))
    throw_error(errc::would_deadlock,
                "range read of " + url() + " on an io_context thread (run it on a blocking pool)");
  const std::uint64_t ps = page_size_;
  // Runs of pages [first, last], merged when the gap is at most max_gap_pages.
  std::vector<std::pair<std::uint32_t, std::uint32_t>> runs;
  for (std::uint32_t p : pages) {
    if (!runs.empty() && (p - runs.back().second <= std::uint64_t(opts_.max_gap_pages) + 1 ||
                          std::uint64_t(p) - runs.front().first < span_limit))
      runs.back().second = p;
    else
      runs.emplace_back(p, p);
  }
  std::vector<std::future<PageGetOutcome>> results;
  results.reserve(runs.size());
  for (auto [first, last] : runs) {
    const std::uint64_t off = std::uint64_t(first - 1) * ps;
    const std::uint64_t len = std::min<std::uint64_t>((last - first + 1) * ps, size_ - off);
    GetOptions go;
    go.range = ByteRange::bounded(off, len);
    go.if_match = etag_;
    results.push_back(boost::asio::co_spawn(io_, page_get(store_, url(), std::move(go)),
                                            boost::asio::use_future));
  }
  counters_.page_requests += runs.size();
  // The first failure, as code + text: thrown as a new exception of this thread at the end.
  std::optional<std::pair<error_code, std::string>> failure;
  auto fail = [&](error_code code, std::string diagnostics) {
    if (!failure) failure.emplace(code, std::move(diagnostics));
  };
  for (std::size_t i = 0; i < runs.size(); ++i) {
    // Never an error of the GET (page_get settles those); only std::future_error (broken
    // promise) if the io_context is destroyed with the request unrun.
    PageGetOutcome o = results[i].get();
    if (!o.result) {
      if (o.code == errc::precondition_failed) {
        changed_ = true;
        fail(make_error_code(errc::shard_changed),
             url() + " no longer matches ETag " + etag_ + ": " + o.what);
      } else {
        fail(o.code, std::move(o.diagnostics));
      }
      continue;
    }
    GetResult& r = *o.result;
    counters_.bytes += r.body.size();
    if (!r.etag.empty() && r.etag != etag_) {
      changed_ = true;
      fail(make_error_code(errc::shard_changed), url() + ": ETag " + r.etag + " != " + etag_);
      continue;
    }
    const std::uint64_t off = std::uint64_t(runs[i].first - 1) * ps;
    if (r.range_offset != off) {
      fail(make_error_code(errc::protocol_error),
           "range response at the wrong offset for " + url());
      continue;
    }
    for (std::uint32_t p = runs[i].first; p <= runs[i].second; ++p) {
      const std::uint64_t at = std::uint64_t(p - runs[i].first) * ps;
      if (at >= r.body.size()) break;
      out.emplace(p, r.body.substr(at, ps));
      counters_.pages_fetched += 1;
    }
  }
  if (failure) throw shardy::error(failure->first, std::move(failure->second));
}

}  // namespace shardy::shard
