// The page cache of one range-read shard: an LRU of whole pages (capacity in pages; 0 disables
// it) plus a pinned set that is never evicted (the sidecar's pages: page 1, the schema and every
// interior b-tree page, which every lookup needs). Thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <mutex>
#include <string>
#include <unordered_map>

namespace shardy::shard {

class PageCache {
 public:
  explicit PageCache(std::size_t capacity_pages) : capacity_(capacity_pages) {}

  std::size_t capacity() const noexcept { return capacity_; }

  /// Copies bytes [from, from+n) of page `pageno` to `dst` if the page is cached (pinned or LRU)
  /// and marks it recently used. Returns false on a miss.
  bool copy(std::uint32_t pageno, std::size_t from, std::size_t n, char* dst);
  bool contains(std::uint32_t pageno) const;

  /// Adds a page to the LRU (no-op when the capacity is 0 or the page is pinned).
  void put(std::uint32_t pageno, std::string page);
  /// Adds a page that is never evicted.
  void pin(std::uint32_t pageno, std::string page);

  std::size_t lru_size() const;
  std::size_t pinned_size() const;

 private:
  using Entry = std::pair<std::uint32_t, std::string>;
  const std::size_t capacity_;
  mutable std::mutex mu_;
  std::list<Entry> lru_;  // most recent first
  std::unordered_map<std::uint32_t, std::list<Entry>::iterator> index_;
  std::unordered_map<std::uint32_t, std::string> pinned_;
};

}  // namespace shardy::shard
