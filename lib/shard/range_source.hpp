// One shard.db read in place through an ObjectStore: the remote file behind the range VFS.
//
// open() (a coroutine on the io executor) learns the object's ETag, size and page size from one
// ranged GET of the first bytes (plus a HEAD only if the store reported no ETag), and fetches
// and validates shard.sidecar in parallel; a valid sidecar bound to that ETag pins its pages in
// the page cache and provides the overflow-chain map.
//
// read() is blocking and thread-safe: it serves whole pages from the page cache and fetches the
// missing ones with range GETs (adjacent pages coalesced into one request; the rest of an
// overflow chain joins the request that needs one of its pages), each pinned with If-Match to
// the ETag. A page that another read is already fetching is not requested again: the read
// waits for that request (and fails with its error if it fails). The GETs run on the io
// executor while read() waits, so read() must not run on a
// thread of that io_context (it fails with errc::would_deadlock there): SQLite queries through
// the range VFS belong on a blocking pool (architecture.md "Threading").
#pragma once

#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <shardy/error.hpp>
#include <shardy/object_store.hpp>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "shard/range_page_cache.hpp"
#include "shard/sidecar.hpp"

namespace spdlog {
class logger;
}

namespace shardy::shard {

struct RangeSourceOptions {
  std::string db_object;                  ///< URL of shard.db
  std::string sidecar_object;             ///< URL of shard.sidecar; empty = do not use a sidecar
  std::optional<std::uint64_t> db_bytes;  ///< the manifest's size, when known (cross-checked)
  std::size_t page_cache_pages = 1024;    ///< LRU capacity; 0 disables (sidecar pages stay)
  /// Missing pages separated by at most this many pages are fetched in one request (the pages in
  /// between come along); 0 = only adjacent pages are merged.
  std::uint32_t max_gap_pages = 0;
  /// Fetch a whole overflow chain (from the sidecar's map) when one of its pages is needed, and
  /// with it the chains of every other cell of the b-tree page that referenced it: SQLite's
  /// binary search over an index page reads the whole record of each cell it compares, so a
  /// lookup touches several neighbours' chains (range-reads.md).
  bool prefetch_chains = true;
  /// Chain pages fetched together are one request when they span at most this many pages
  /// (the pages in between come along and are cached).
  std::uint32_t chain_span_pages = 64;
  /// Bytes of shard.db read at open (header, page 1).
  std::uint32_t probe_bytes = 4096;
};

/// Counters of one range shard (monotonic; deterministic for a given sequence of reads).
struct RangeReadMetrics {
  std::uint64_t requests = 0;       ///< every request to the store for this shard (all kinds below)
  std::uint64_t page_requests = 0;  ///< ranged GETs of shard.db for pages (after open)
  std::uint64_t open_requests = 0;  ///< requests made by open (probe GET, HEAD)
  std::uint64_t sidecar_requests = 0;  ///< GETs of shard.sidecar
  std::uint64_t bytes = 0;             ///< body bytes received (all requests)
  std::uint64_t pages_fetched = 0;     ///< pages received by page requests
  std::uint64_t page_hits = 0;         ///< page reads served by the cache (pinned or LRU)
  std::uint64_t page_misses = 0;       ///< page reads that needed a request
  std::uint64_t chain_prefetches = 0;  ///< page requests widened to a whole overflow chain
  /// Reads that waited for another thread's request of a page they needed instead of sending
  /// their own (in-flight de-duplication of concurrent misses).
  std::uint64_t inflight_joins = 0;
  std::uint64_t reads = 0;  ///< xRead calls
  bool sidecar_used = false;
  SidecarReject sidecar_reject = SidecarReject::none;  ///< why it was not used
  std::size_t sidecar_pages = 0;
};

class RangeSource : public std::enable_shared_from_this<RangeSource> {
 public:
  static boost::asio::awaitable<std::shared_ptr<RangeSource>> open(
      std::shared_ptr<ObjectStore> store, boost::asio::any_io_executor io,
      RangeSourceOptions options, std::shared_ptr<spdlog::logger> logger = {});

  ~RangeSource();
  RangeSource(const RangeSource&) = delete;
  RangeSource& operator=(const RangeSource&) = delete;

  /// Copies up to `n` bytes at `offset` into `dst`; returns how many the file holds there (less
  /// than n at the end of the file). Blocking. Throws shardy::error: errc::shard_changed when
  /// the object no longer matches its ETag (then on every later read too), would_deadlock on an
  /// io thread, or the store's error.
  std::size_t read(char* dst, std::size_t n, std::uint64_t offset);

  std::uint64_t size() const noexcept { return size_; }
  std::uint32_t page_size() const noexcept { return page_size_; }
  const std::string& etag() const noexcept { return etag_; }
  const std::string& url() const noexcept { return opts_.db_object; }
  RangeReadMetrics metrics() const;
  const PageCache& cache() const noexcept { return cache_; }

 private:
  RangeSource(std::shared_ptr<ObjectStore> store, boost::asio::any_io_executor io,
              RangeSourceOptions options, std::shared_ptr<spdlog::logger> logger);

  boost::asio::awaitable<std::optional<std::string>> fetch_sidecar();
  void use_sidecar(std::optional<std::string> bytes, std::optional<std::uint32_t> header_ps);
  void fetch_pages(const std::vector<std::uint32_t>& pages, std::uint32_t span_limit,
                   std::unordered_map<std::uint32_t, std::string>& out);
  void reject_sidecar(SidecarReject why, const std::string& detail);

  std::shared_ptr<ObjectStore> store_;
  boost::asio::any_io_executor io_;
  RangeSourceOptions opts_;
  std::shared_ptr<spdlog::logger> log_;
  PageCache cache_;

  std::string etag_;
  std::uint64_t size_ = 0;
  std::uint32_t page_size_ = 4096;
  std::unordered_map<std::uint32_t, std::pair<std::uint32_t, std::uint32_t>> chain_of_;
  std::vector<std::uint32_t> chain_pages_;  // sidecar chain_pages; chain_of_ indexes into it
  // Chain head -> the heads of every overflowing cell on the b-tree page that holds it (filled as
  // index pages are fetched).
  std::mutex siblings_mu_;
  std::unordered_map<std::uint32_t, std::shared_ptr<const std::vector<std::uint32_t>>> siblings_;
  std::vector<std::uint32_t> note_chain_siblings(std::string_view page, std::uint32_t pageno);
  std::vector<std::uint32_t> interior_chain_pages_;  // chains of the sidecar's pages' cells
  boost::asio::awaitable<void> prefetch_interior_chains();
  std::vector<std::uint32_t> chain_group(std::uint32_t page);

  // Page requests in flight: a read that misses a page another thread is already fetching waits
  // for that request instead of sending its own (two lookups missing the same leaf: one GET).
  struct Flight {
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    // The request failed: each waiter throws its own shardy::error(code, diagnostics) (no
    // exception object of the fetcher's thread is shared).
    bool failed = false;
    error_code code;
    std::string diagnostics;
    std::unordered_map<std::uint32_t, std::string> pages;  // read-only once done
  };
  std::mutex flights_mu_;
  std::unordered_map<std::uint32_t, std::shared_ptr<Flight>> flights_;  // page -> its request

  std::atomic<bool> changed_{false};
  struct Counters {
    std::atomic<std::uint64_t> page_requests{0}, open_requests{0}, sidecar_requests{0}, bytes{0},
        pages_fetched{0}, page_hits{0}, page_misses{0}, chain_prefetches{0}, inflight_joins{0},
        reads{0};
  } counters_;
  bool sidecar_used_ = false;
  SidecarReject sidecar_reject_ = SidecarReject::none;
  std::size_t sidecar_pages_ = 0;
};

}  // namespace shardy::shard
