// Range reads (reader-features L-07, L-14; interop spec 4.2, 4.5): the page cache, the
// RangeSource and the SQLite VFS over an in-memory ObjectStore that counts requests.
#include "shard/range_vfs.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_future.hpp>
#include <thread>

#include "shard/range_page_cache.hpp"
#include "shard/range_source.hpp"
#include "unit/range_io_thread.hpp"
#include "unit/range_test_support.hpp"

namespace shardy::test {
namespace {

using shard::RangeSource;
using shard::RangeSourceOptions;
using shard::RangeVfs;
using shard::SidecarReject;

TEST(RangePageCache, LruEvictsLeastRecentAndPinnedPagesStay) {
  shard::PageCache c(2);
  c.put(1, "aaaa");
  c.put(2, "bbbb");
  char buf[4];
  ASSERT_TRUE(c.copy(1, 0, 4, buf));  // 1 is now the most recent
  c.put(3, "cccc");                   // evicts 2
  EXPECT_TRUE(c.contains(1));
  EXPECT_FALSE(c.contains(2));
  EXPECT_TRUE(c.contains(3));
  c.pin(9, "zzzz");
  c.put(4, "dddd");
  c.put(5, "eeee");
  EXPECT_TRUE(c.contains(9));
  EXPECT_EQ(c.lru_size(), 2u);
  ASSERT_TRUE(c.copy(9, 1, 2, buf));
  EXPECT_EQ(std::string(buf, 2), "zz");
  EXPECT_FALSE(c.copy(5, 3, 2, buf));  // beyond the page

  shard::PageCache off(0);
  off.put(1, "aaaa");
  EXPECT_FALSE(off.contains(1));
  off.pin(1, "aaaa");  // pinned pages are kept even with the LRU disabled
  EXPECT_TRUE(off.contains(1));
}

// Every (key, value) of a fixture shard, read straight from the file.
std::vector<std::pair<std::string, std::string>> all_rows(const std::filesystem::path& db) {
  sqlite3* h = nullptr;
  EXPECT_EQ(sqlite3_open_v2(db.c_str(), &h, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  sqlite3_stmt* s = nullptr;
  sqlite3_prepare_v2(h, "SELECT k, v FROM kv ORDER BY k", -1, &s, nullptr);
  std::vector<std::pair<std::string, std::string>> rows;
  while (sqlite3_step(s) == SQLITE_ROW) {
    auto col = [&](int i) {
      const void* p = sqlite3_column_blob(s, i);
      return std::string(static_cast<const char*>(p ? p : ""),
                         static_cast<std::size_t>(sqlite3_column_bytes(s, i)));
    };
    rows.emplace_back(col(0), col(1));
  }
  sqlite3_finalize(s);
  sqlite3_close(h);
  return rows;
}

// A connection through the range VFS, and point lookups on it (run on the test thread, which
// is not an io thread).
class Connection {
 public:
  explicit Connection(const RangeVfs& vfs) {
    rc_ = sqlite3_open_v2(RangeVfs::file_name, &db_, SQLITE_OPEN_READONLY, vfs.name().c_str());
    if (rc_ == SQLITE_OK)
      rc_ = sqlite3_prepare_v2(db_, "SELECT v FROM kv WHERE k = ?", -1, &stmt_, nullptr);
  }
  ~Connection() {
    sqlite3_finalize(stmt_);
    sqlite3_close(db_);
  }
  int open_rc() const { return rc_; }
  std::string errmsg() const { return sqlite3_errmsg(db_); }
  // The value, nullopt when absent; throws what the VFS threw.
  std::optional<std::string> get(std::string_view key) {
    static const char empty = 0;
    sqlite3_bind_blob(stmt_, 1, key.empty() ? &empty : key.data(), static_cast<int>(key.size()),
                      SQLITE_STATIC);
    const int rc = sqlite3_step(stmt_);
    std::optional<std::string> out;
    if (rc == SQLITE_ROW) {
      const void* p = sqlite3_column_blob(stmt_, 0);
      out = std::string(static_cast<const char*>(p ? p : ""),
                        static_cast<std::size_t>(sqlite3_column_bytes(stmt_, 0)));
    }
    sqlite3_reset(stmt_);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
      if (auto e = RangeVfs::take_last_read_error()) std::rethrow_exception(e);
      throw std::runtime_error("sqlite: " + errmsg());
    }
    return out;
  }

 private:
  sqlite3* db_ = nullptr;
  sqlite3_stmt* stmt_ = nullptr;
  int rc_ = SQLITE_ERROR;
};

class RangeVfsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store = std::make_shared<MemoryStore>();
    store->load_fixtures("snapshots/kv_str");
    for (const auto& d : fixture_shard_dirs())
      if (d.string().find("kv_str") != std::string::npos) dirs.push_back(d);
    ASSERT_EQ(dirs.size(), 5u);
  }

  std::shared_ptr<RangeSource> open(const std::filesystem::path& dir, bool sidecar = true,
                                    std::size_t cache_pages = 1024) {
    RangeSourceOptions o;
    o.db_object = fixture_url(dir / "shard.db");
    if (sidecar) o.sidecar_object = fixture_url(dir / "shard.sidecar");
    o.page_cache_pages = cache_pages;
    auto fut = boost::asio::co_spawn(io.io, RangeSource::open(store, io.io.get_executor(), o),
                                     boost::asio::use_future);
    return fut.get();
  }

  IoThread io;
  std::shared_ptr<MemoryStore> store;
  std::vector<std::filesystem::path> dirs;
};

TEST_F(RangeVfsTest, EveryRowReadsBackThroughTheVfsWithAndWithoutSidecar) {
  for (bool sidecar : {true, false}) {
    for (const auto& dir : dirs) {
      SCOPED_TRACE(dir.string() + (sidecar ? " sidecar" : " plain"));
      auto src = open(dir, sidecar);
      EXPECT_EQ(src->metrics().sidecar_used, sidecar);
      EXPECT_EQ(src->etag(), s3_etag(read_file(dir / "shard.db")));
      RangeVfs vfs(src);
      Connection c(vfs);
      ASSERT_EQ(c.open_rc(), SQLITE_OK) << c.errmsg();
      const auto rows = all_rows(dir / "shard.db");
      ASSERT_FALSE(rows.empty());
      for (const auto& [k, v] : rows) {
        auto got = c.get(k);
        ASSERT_TRUE(got) << to_hex(k);
        EXPECT_EQ(*got, v) << to_hex(k);
      }
      EXPECT_FALSE(c.get("zz-never-written"));
      // Everything read once is cached: a second pass costs no request.
      const auto before = src->metrics().requests;
      for (const auto& [k, v] : rows) ASSERT_EQ(c.get(k), v);
      EXPECT_EQ(src->metrics().requests, before);
    }
  }
}

TEST_F(RangeVfsTest, OpenCostsOneProbeAndOneSidecarRequest) {
  auto src = open(dirs[0]);
  const auto m = src->metrics();
  // The probe GET, and (this shard's root has a cell whose record overflows) one coalesced GET
  // of the overflow chains of the sidecar's interior cells.
  EXPECT_EQ(m.open_requests, 2u);
  EXPECT_EQ(m.sidecar_requests, 1u);
  EXPECT_EQ(m.page_requests, 0u);
  EXPECT_EQ(m.requests, 3u);
  EXPECT_TRUE(m.sidecar_used);
  EXPECT_EQ(m.sidecar_reject, SidecarReject::none);
  EXPECT_EQ(store->requests().size(), 3u);  // the store saw exactly those
  EXPECT_EQ(src->page_size(), 4096u);
  EXPECT_EQ(src->size(), std::filesystem::file_size(dirs[0] / "shard.db"));
}

TEST_F(RangeVfsTest, EveryPageRequestIsPinnedToTheEtagAndCoalesced) {
  auto src = open(dirs[1], /*sidecar=*/false, 1024);
  store->clear_requests();
  // A read spanning three uncached pages is one request.
  const std::uint32_t ps = src->page_size();
  std::string buf(3 * ps, '\0');
  ASSERT_EQ(src->read(buf.data(), buf.size(), 2 * ps), buf.size());
  const std::string db = read_file(dirs[1] / "shard.db");
  EXPECT_EQ(buf, db.substr(2 * ps, 3 * ps));
  auto reqs = store->requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].if_match, s3_etag(db));
  ASSERT_TRUE(reqs[0].range);
  EXPECT_EQ(reqs[0].range->offset, 2u * ps);
  EXPECT_EQ(reqs[0].range->length, 3u * ps);
  // Reading past the end returns what exists (the VFS zero-fills the rest).
  std::string tail(2 * ps, 'x');
  EXPECT_EQ(src->read(tail.data(), tail.size(), db.size() - ps), ps);
  EXPECT_EQ(src->read(tail.data(), tail.size(), db.size() + 10), 0u);
}

TEST_F(RangeVfsTest, OverflowChainIsFetchedInOneRequest) {
  // Find a chain of at least 3 pages in a kv_str sidecar.
  for (const auto& dir : dirs) {
    auto sc = shard::decode_sidecar(read_file(dir / "shard.sidecar")).sidecar;
    ASSERT_TRUE(sc);
    for (std::size_t c = 0; c < sc->chain_count(); ++c) {
      auto chain = sc->chain(c);
      if (chain.size() < 3) continue;
      std::uint32_t runs = 1;
      for (std::size_t k = 1; k < chain.size(); ++k)
        if (chain[k] != chain[k - 1] + 1) ++runs;
      auto src = open(dir);
      store->clear_requests();
      const std::uint32_t ps = src->page_size();
      std::string page(ps, '\0');
      ASSERT_EQ(src->read(page.data(), ps, std::uint64_t(chain[0] - 1) * ps), ps);
      EXPECT_EQ(store->requests().size(), runs);  // one per run of consecutive pages
      EXPECT_EQ(src->metrics().chain_prefetches, 1u);
      // The rest of the chain is now cached.
      for (std::size_t k = 1; k < chain.size(); ++k)
        ASSERT_EQ(src->read(page.data(), ps, std::uint64_t(chain[k] - 1) * ps), ps);
      EXPECT_EQ(store->requests().size(), runs);
      const std::string db = read_file(dir / "shard.db");
      EXPECT_EQ(page, db.substr(std::uint64_t(chain.back() - 1) * ps, ps));
      return;
    }
  }
  FAIL() << "no overflow chain of 3+ pages in kv_str";
}

TEST_F(RangeVfsTest, ChangedObjectFailsWithShardChangedAndNeverMixesPages) {
  auto src = open(dirs[2], /*sidecar=*/true);
  RangeVfs vfs(src);
  Connection c(vfs);
  ASSERT_EQ(c.open_rc(), SQLITE_OK);
  const auto rows = all_rows(dirs[2] / "shard.db");
  ASSERT_TRUE(c.get(rows.front().first));
  // Replace shard.db with another shard's bytes: the next uncached page read must fail.
  store->set(fixture_url(dirs[2] / "shard.db"), read_file(dirs[3] / "shard.db"));
  bool failed = false;
  for (const auto& [k, v] : rows) {
    try {
      auto got = c.get(k);
      ASSERT_EQ(got, v);  // only cached pages may still answer, and with the old file's data
    } catch (const shardy::error& e) {
      EXPECT_EQ(e.code(), errc::shard_changed) << e.what();
      failed = true;
      break;
    }
  }
  EXPECT_TRUE(failed);
  // Sticky: every later read fails too, even of cached pages.
  char b[16];
  try {
    src->read(b, sizeof b, 0);
    ADD_FAILURE() << "read after a change succeeded";
  } catch (const shardy::error& e) {
    EXPECT_EQ(e.code(), errc::shard_changed);
  }
}

TEST_F(RangeVfsTest, CacheDisabledStillAnswersButRefetches) {
  auto src = open(dirs[0], /*sidecar=*/false, /*cache_pages=*/0);
  RangeVfs vfs(src);
  Connection c(vfs);
  ASSERT_EQ(c.open_rc(), SQLITE_OK);
  const auto rows = all_rows(dirs[0] / "shard.db");
  ASSERT_EQ(c.get(rows[3].first), rows[3].second);
  const auto r1 = src->metrics().page_requests;
  ASSERT_EQ(c.get(rows[3].first), rows[3].second);
  EXPECT_EQ(src->cache().lru_size(), 0u);
  // SQLite's own page cache may hold some pages, but nothing is cached below it.
  EXPECT_GE(src->metrics().page_requests, r1);
}

TEST_F(RangeVfsTest, BadSidecarsAreIgnoredWithTheirReason) {
  const std::string sidecar_url = fixture_url(dirs[0] / "shard.sidecar");
  const auto rows = all_rows(dirs[0] / "shard.db");
  struct Case {
    std::string bytes;
    SidecarReject want;
  };
  const std::string good = read_file(dirs[0] / "shard.sidecar");
  std::string bad_magic = good;
  bad_magic[1] = 'x';
  std::vector<Case> cases = {
      {bad_magic, SidecarReject::bad_magic},
      {read_file(dirs[1] / "shard.sidecar"), SidecarReject::tag_mismatch},  // another shard's
      {good.substr(0, good.size() - 3), SidecarReject::zstd_error},
  };
  for (auto& cs : cases) {
    SCOPED_TRACE(std::string(shard::to_string(cs.want)));
    store->set(sidecar_url, cs.bytes);
    auto src = open(dirs[0]);
    EXPECT_FALSE(src->metrics().sidecar_used);
    EXPECT_EQ(src->metrics().sidecar_reject, cs.want);
    RangeVfs vfs(src);
    Connection c(vfs);
    ASSERT_EQ(c.open_rc(), SQLITE_OK);
    for (std::size_t i = 0; i < rows.size(); i += 7)
      ASSERT_EQ(c.get(rows[i].first), rows[i].second);
  }
  store->remove_now(sidecar_url);
  auto src = open(dirs[0]);
  EXPECT_FALSE(src->metrics().sidecar_used);
  EXPECT_EQ(src->metrics().sidecar_reject, SidecarReject::fetch_failed);
}

TEST_F(RangeVfsTest, ReadOnAnIoThreadFailsInsteadOfDeadlocking) {
  auto src = open(dirs[0], /*sidecar=*/false);
  EXPECT_EQ(read_failure_on(io.io.get_executor(), *src), errc::would_deadlock);
}

TEST_F(RangeVfsTest, VfsNamesAreUniqueAndUnregistered) {
  auto src = open(dirs[0]);
  std::string name;
  {
    RangeVfs a(src), b(src);
    EXPECT_NE(a.name(), b.name());
    EXPECT_NE(sqlite3_vfs_find(a.name().c_str()), nullptr);
    EXPECT_NE(sqlite3_vfs_find(nullptr), sqlite3_vfs_find(a.name().c_str()));  // not default
    name = a.name();
  }
  EXPECT_EQ(sqlite3_vfs_find(name.c_str()), nullptr);
}

}  // namespace
}  // namespace shardy::test

namespace shardy::test {
namespace {

// Request counting (issue bar, reader-features L-07/L-14), deterministic: a cold point lookup is
// a lookup on a freshly opened source (nothing cached but what open fetched).
struct ColdCount {
  std::size_t lookups = 0, requests = 0, max = 0;
  std::map<std::size_t, std::size_t> histogram;
};

class RangeCountTest : public RangeVfsTest {
 protected:
  // Every `stride`-th row of every shard of the snapshot (plus an absent key per shard).
  ColdCount cold_lookups(const std::string& snapshot, bool sidecar, bool include_absent,
                         std::size_t stride = 1) {
    ColdCount out;
    MemoryStore& st = *store;
    st.load_fixtures("snapshots/" + snapshot);
    for (const auto& dir : fixture_shard_dirs()) {
      if (dir.string().find("/" + snapshot + "/") == std::string::npos) continue;
      auto rows = all_rows(dir / "shard.db");
      if (include_absent) rows.emplace_back("\x01never-written-key", "");
      for (std::size_t i = 0; i < rows.size(); ++i) {
        if (i % stride != 0 && i + 1 != rows.size()) continue;
        auto src = open(dir, sidecar);
        RangeVfs vfs(src);
        Connection c(vfs);
        EXPECT_EQ(c.open_rc(), SQLITE_OK);
        const auto before = src->metrics().page_requests;
        auto got = c.get(rows[i].first);
        EXPECT_EQ(got.has_value(), !(include_absent && i + 1 == rows.size()));
        if (got) {
          EXPECT_EQ(*got, rows[i].second);
        }
        const std::size_t n = src->metrics().page_requests - before;
        // Warm: the same lookup again costs nothing.
        const auto warm_before = src->metrics().requests;
        EXPECT_EQ(c.get(rows[i].first), got);
        EXPECT_EQ(src->metrics().requests, warm_before);
        out.lookups += 1;
        out.requests += n;
        out.max = std::max(out.max, n);
        out.histogram[n] += 1;
      }
    }
    return out;
  }
};

std::string describe(const ColdCount& c) {
  std::string s = std::to_string(c.lookups) + " cold lookups, " + std::to_string(c.requests) +
                  " requests, mean " + std::to_string(double(c.requests) / c.lookups) + ", hist";
  for (auto [n, k] : c.histogram) s += " " + std::to_string(n) + ":" + std::to_string(k);
  return s;
}

TEST_F(RangeCountTest, ColdLookupWithSidecarCostsOneRequestWithoutOverflow) {
  // kv_small: values fit their leaf; with the sidecar every interior page is pinned.
  auto c = cold_lookups("kv_small", true, true, 5);
  std::cout << "[counts] kv_small sidecar: " << describe(c) << "\n";
  EXPECT_EQ(c.max, 1u);
  EXPECT_EQ(c.requests, c.lookups);
  auto plain = cold_lookups("kv_small", false, false, 5);
  std::cout << "[counts] kv_small plain: " << describe(plain) << "\n";
  // Without the sidecar the interior page costs a request too (reported, not a target).
  EXPECT_EQ(plain.max, 2u);
  EXPECT_GT(plain.requests, c.requests);
}

TEST_F(RangeCountTest, ColdLookupOfAnOverflowValueAddsOneCoalescedRequest) {
  auto c = cold_lookups("kv_str", true, false);
  std::cout << "[counts] kv_str sidecar: " << describe(c) << "\n";
  auto plain = cold_lookups("kv_str", false, false);
  std::cout << "[counts] kv_str plain: " << describe(plain) << "\n";
  // The leaf, plus at most one coalesced request for the overflow chains of the leaf's cells
  // (the value's own chain and the neighbours SQLite compares against).
  EXPECT_LE(c.max, 2u);
  EXPECT_LE(double(c.requests) / double(c.lookups), 1.5);
  EXPECT_LT(c.requests, plain.requests);
}

}  // namespace
}  // namespace shardy::test
