#include "shard/range_page_cache.hpp"

#include <cstring>

namespace shardy::shard {

bool PageCache::copy(std::uint32_t pageno, std::size_t from, std::size_t n, char* dst) {
  std::lock_guard lk(mu_);
  if (auto p = pinned_.find(pageno); p != pinned_.end()) {
    if (from + n > p->second.size()) return false;
    std::memcpy(dst, p->second.data() + from, n);
    return true;
  }
  auto it = index_.find(pageno);
  if (it == index_.end()) return false;
  const std::string& page = it->second->second;
  if (from + n > page.size()) return false;
  std::memcpy(dst, page.data() + from, n);
  lru_.splice(lru_.begin(), lru_, it->second);
  return true;
}

bool PageCache::contains(std::uint32_t pageno) const {
  std::lock_guard lk(mu_);
  return pinned_.contains(pageno) || index_.contains(pageno);
}

void PageCache::put(std::uint32_t pageno, std::string page) {
  if (capacity_ == 0) return;
  std::lock_guard lk(mu_);
  if (pinned_.contains(pageno)) return;
  if (auto it = index_.find(pageno); it != index_.end()) {
    it->second->second = std::move(page);
    lru_.splice(lru_.begin(), lru_, it->second);
    return;
  }
  lru_.emplace_front(pageno, std::move(page));
  index_[pageno] = lru_.begin();
  while (lru_.size() > capacity_) {
    index_.erase(lru_.back().first);
    lru_.pop_back();
  }
}

void PageCache::pin(std::uint32_t pageno, std::string page) {
  std::lock_guard lk(mu_);
  if (auto it = index_.find(pageno); it != index_.end()) {
    lru_.erase(it->second);
    index_.erase(it);
  }
  pinned_[pageno] = std::move(page);
}

std::size_t PageCache::lru_size() const {
  std::lock_guard lk(mu_);
  return lru_.size();
}

std::size_t PageCache::pinned_size() const {
  std::lock_guard lk(mu_);
  return pinned_.size();
}

}  // namespace shardy::shard
