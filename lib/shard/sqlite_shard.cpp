#include "shard/sqlite_shard.hpp"

#include <sqlite3.h>

#include <array>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <shardy/error.hpp>
#include <string>
#include <vector>

namespace shardy::shard {
namespace {

[[noreturn]] void fail(sqlite3* db, std::string_view what, const std::string& path) {
  std::string msg(what);
  msg += " (";
  msg += path;
  msg += "): ";
  msg += db ? sqlite3_errmsg(db) : "out of memory";
  throw_error(errc::shard_error, std::move(msg));
}

// A URI for sqlite3_open_v2 with SQLITE_OPEN_URI: "file:" + percent-encoded path + parameters.
std::string file_uri(const std::string& path, bool immutable) {
  std::string uri = "file:";
  for (unsigned char c : path) {
    if (c == '%' || c == '?' || c == '#' || c < 0x20) {
      static constexpr char hex[] = "0123456789ABCDEF";
      uri.push_back('%');
      uri.push_back(hex[c >> 4]);
      uri.push_back(hex[c & 15]);
    } else {
      uri.push_back(static_cast<char>(c));
    }
  }
  uri += immutable ? "?mode=ro&immutable=1" : "?mode=ro";
  return uri;
}

// One connection with its prepared statements. Used by one thread at a time (NOMUTEX).
//
// The connection of an immutable shard stays inside one read transaction for as long as the pool
// holds it ("BEGIN" once; SQLite starts the read transaction at the first lookup and keeps it).
// In autocommit mode every lookup would begin a read transaction and commit it again at
// sqlite3_reset (lock the b-tree, read the header of page 1, unlock, end the pager's read):
// callgrind counts about 1,000 of the ~7,500 instructions of a warm point lookup for that
// (benchmark/reader_lookup_bench). An immutable file takes no lock and never changes, so holding
// the transaction costs nothing and hides nothing. A connection lent out as a raw handle
// (borrow_connection) is handed over in autocommit mode and gets its transaction back on return.
struct Connection {
  sqlite3* db = nullptr;
  sqlite3_stmt* get = nullptr;
  sqlite3_stmt* scan[2][2][2] = {};  // [has start][start exclusive][has end]
  bool hold_read_transaction = false;

  // (Re)enters the held read transaction: after open, after a lend, and after an error that made
  // SQLite roll the transaction back (the connection then works in autocommit mode until here).
  void hold() noexcept {
    if (hold_read_transaction && sqlite3_get_autocommit(db))
      sqlite3_exec(db, "BEGIN", nullptr, nullptr, nullptr);
  }
  // Leaves it, so that a borrower sees an ordinary connection in autocommit mode.
  void release_hold() noexcept {
    if (hold_read_transaction && !sqlite3_get_autocommit(db))
      sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr);
  }

  ~Connection() {
    sqlite3_finalize(get);
    for (auto& a : scan)
      for (auto& b : a)
        for (auto* s : b) sqlite3_finalize(s);
    sqlite3_close_v2(db);
  }

  sqlite3_stmt* scan_stmt(bool has_start, bool exclusive, bool has_end, const std::string& path) {
    auto& slot = scan[has_start][has_start && exclusive][has_end];
    if (slot) return slot;
    std::string sql = "SELECT k, v FROM kv";
    if (has_start || has_end) sql += " WHERE ";
    if (has_start) sql += exclusive ? "k > ?1" : "k >= ?1";
    if (has_start && has_end) sql += " AND ";
    if (has_end) sql += "k < ?2";
    sql += " ORDER BY k LIMIT ?3";
    if (sqlite3_prepare_v3(db, sql.c_str(), -1, SQLITE_PREPARE_PERSISTENT, &slot, nullptr) !=
        SQLITE_OK)
      fail(db, "cannot prepare scan", path);
    return slot;
  }
};

std::unique_ptr<Connection> open_connection(const SqliteShardOptions& o) {
  auto c = std::make_unique<Connection>();
  const std::string uri = o.vfs.empty() ? file_uri(o.path, o.immutable) : o.path;
  int flags = SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_PRIVATECACHE;
  if (o.vfs.empty()) flags |= SQLITE_OPEN_URI;
  int rc = sqlite3_open_v2(uri.c_str(), &c->db, flags, o.vfs.empty() ? nullptr : o.vfs.c_str());
  if (rc != SQLITE_OK) fail(c->db, "cannot open shard", o.path);
  sqlite3_extended_result_codes(c->db, 1);
  std::string pragmas = "PRAGMA query_only=1; PRAGMA cache_size=-" +
                        std::to_string(o.cache_size_kib) +
                        "; PRAGMA mmap_size=" + std::to_string(o.mmap_size) + ";";
  if (sqlite3_exec(c->db, pragmas.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK)
    fail(c->db, "cannot configure shard", o.path);
  static constexpr char get_sql[] = "SELECT v FROM kv WHERE k = ?1";
  if (sqlite3_prepare_v3(c->db, get_sql, sizeof get_sql - 1, SQLITE_PREPARE_PERSISTENT, &c->get,
                         nullptr) != SQLITE_OK)
    fail(c->db, "cannot prepare lookup (is this a shardy/shardyfusion kv shard?)", o.path);
  c->hold_read_transaction = o.immutable || !o.vfs.empty();
  c->hold();
  return c;
}

// Resets a statement when a lookup leaves scope, whatever happens.
struct StatementReset {
  sqlite3_stmt* s;
  ~StatementReset() { sqlite3_reset(s); }
};

void bind_blob(sqlite3_stmt* s, int i, std::string_view bytes) {
  // A zero-length BLOB must still be a BLOB (not NULL): SQLite treats a null pointer as NULL.
  static const char empty = 0;
  sqlite3_bind_blob(s, i, bytes.empty() ? &empty : bytes.data(), static_cast<int>(bytes.size()),
                    SQLITE_STATIC);
}

std::string column_bytes(sqlite3_stmt* s, int col) {
  const void* p = sqlite3_column_blob(s, col);
  int n = sqlite3_column_bytes(s, col);
  return p ? std::string(static_cast<const char*>(p), static_cast<std::size_t>(n)) : std::string();
}

class SqliteShard final : public ShardReader, public std::enable_shared_from_this<SqliteShard> {
 public:
  explicit SqliteShard(SqliteShardOptions o) : opts_(std::move(o)) {
    if (opts_.max_connections == 0) opts_.max_connections = 1;
    idle_.push_back(open_connection(opts_));
    opened_ = 1;
  }

  ~SqliteShard() override {
    for (auto& h : home_) delete h.conn.exchange(nullptr, std::memory_order_acquire);
  }

  std::optional<Value> get(std::string_view key) override {
    Lease lease(*this);
    sqlite3_stmt* s = lease.conn->get;
    StatementReset reset{s};
    bind_blob(s, 1, key);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) return column_bytes(s, 0);
    if (rc == SQLITE_DONE) return std::nullopt;
    fail(lease.conn->db, "lookup failed", opts_.path);
  }

  std::vector<Row> scan(const ScanBounds& b, std::size_t limit) override {
    std::vector<Row> rows;
    if (limit == 0) return rows;
    Lease lease(*this);
    sqlite3_stmt* s = lease.conn->scan_stmt(b.start.has_value(), b.start_exclusive,
                                            b.end.has_value(), opts_.path);
    StatementReset reset{s};
    sqlite3_clear_bindings(s);
    if (b.start) bind_blob(s, 1, *b.start);
    if (b.end) bind_blob(s, 2, *b.end);
    sqlite3_bind_int64(s, 3, static_cast<sqlite3_int64>(std::min<std::size_t>(limit, INT64_MAX)));
    rows.reserve(std::min<std::size_t>(limit, 4096));
    for (;;) {
      int rc = sqlite3_step(s);
      if (rc == SQLITE_DONE) break;
      if (rc != SQLITE_ROW) fail(lease.conn->db, "scan failed", opts_.path);
      rows.push_back(Row{column_bytes(s, 0), column_bytes(s, 1)});
    }
    return rows;
  }

  ConnectionLease borrow_connection() override {
    auto conn = checkout();
    conn->release_hold();
    sqlite3* db = conn->db;
    auto self = shared_from_this();
    // The guard owns the connection and the shard; destroying the lease returns the connection.
    std::shared_ptr<void> guard(conn.release(), [self](void* p) {
      self->checkin(std::unique_ptr<Connection>(static_cast<Connection*>(p)));
    });
    return ConnectionLease(db, std::move(guard));
  }

  LookupThreading threading() const noexcept override { return opts_.threading; }

 private:
  struct Lease {
    explicit Lease(SqliteShard& s) : shard(s), conn(s.checkout()) {}
    ~Lease() { shard.checkin(std::move(conn)); }
    SqliteShard& shard;
    std::unique_ptr<Connection> conn;
  };

  // The pool. Each thread has a home slot (its own cache line) per shard: a lookup takes the
  // connection parked there and puts it back afterwards, with no lock and no cache line that
  // another thread writes, and the connection's SQLite state (statement, cursor, page headers)
  // stays in that thread's core cache, like a connection per thread. Only a thread whose slot is
  // empty (first use, a second concurrent lookup, a collision of slots) takes the mutex: it reuses
  // an idle connection, opens a new one while fewer than max_connections exist, and otherwise
  // takes one parked in another thread's slot or waits for one (B-04).
  static constexpr std::size_t kHomeSlots = 8;
  struct alignas(64) HomeSlot {
    std::atomic<Connection*> conn{nullptr};
  };

  static std::size_t home_index() noexcept {
    static std::atomic<std::size_t> next{0};
    thread_local const std::size_t index = next.fetch_add(1, std::memory_order_relaxed);
    return index % kHomeSlots;
  }

  // A connection parked in another thread's home slot (called with mu_ held).
  std::unique_ptr<Connection> steal() noexcept {
    for (auto& h : home_)
      if (h.conn.load(std::memory_order_seq_cst))
        if (Connection* c = h.conn.exchange(nullptr, std::memory_order_acq_rel))
          return std::unique_ptr<Connection>(c);
    return nullptr;
  }

  std::unique_ptr<Connection> checkout() {
    if (Connection* c = home_[home_index()].conn.exchange(nullptr, std::memory_order_acquire))
      return std::unique_ptr<Connection>(c);
    return checkout_slow();
  }

  std::unique_ptr<Connection> checkout_slow() {
    std::unique_lock lock(mu_);
    std::optional<std::chrono::steady_clock::time_point> deadline;
    for (;;) {
      if (!idle_.empty()) {
        auto c = std::move(idle_.back());
        idle_.pop_back();
        return c;
      }
      if (opened_ < opts_.max_connections) break;
      if (auto c = steal()) return c;
      if (!deadline) deadline = std::chrono::steady_clock::now() + opts_.checkout_timeout;
      // Announce the wait before the last look at the home slots: a checkin that parks a
      // connection after this sees waiters_ and hands it over through idle_ (see checkin).
      waiters_.fetch_add(1, std::memory_order_seq_cst);
      auto c = steal();
      auto status = std::cv_status::no_timeout;
      if (!c && idle_.empty()) status = freed_.wait_until(lock, *deadline);
      waiters_.fetch_sub(1, std::memory_order_seq_cst);
      if (c) return c;
      if (status == std::cv_status::timeout && idle_.empty() && opened_ >= opts_.max_connections) {
        if (auto s = steal()) return s;
        throw_error(errc::pool_exhausted,
                    "all " + std::to_string(opts_.max_connections) + " connections of shard " +
                        opts_.path + " stayed in use for " +
                        std::to_string(opts_.checkout_timeout.count()) + " ms (B-04)");
      }
    }
    ++opened_;
    lock.unlock();
    try {
      return open_connection(opts_);
    } catch (...) {
      lock.lock();
      --opened_;
      freed_.notify_one();
      throw;
    }
  }

  void checkin(std::unique_ptr<Connection> c) {
    c->hold();  // back into its read transaction: after a lend, or a failure that ended it
    auto& home = home_[home_index()].conn;
    Connection* expected = nullptr;
    if (home.compare_exchange_strong(expected, c.get(), std::memory_order_seq_cst)) {
      c.release();
      if (waiters_.load(std::memory_order_seq_cst) == 0) return;
      // A thread waits for a connection: hand this one over unless someone took it already.
      c.reset(home.exchange(nullptr, std::memory_order_acq_rel));
      if (!c) return;
    }
    {
      std::lock_guard lock(mu_);
      idle_.push_back(std::move(c));
    }
    freed_.notify_one();
  }

  SqliteShardOptions opts_;
  std::array<HomeSlot, kHomeSlots> home_;
  std::atomic<std::size_t> waiters_{0};
  std::mutex mu_;
  std::condition_variable freed_;
  std::vector<std::unique_ptr<Connection>> idle_;
  std::size_t opened_ = 0;
};

}  // namespace

std::shared_ptr<ShardReader> open_sqlite_shard(SqliteShardOptions options) {
  return std::make_shared<SqliteShard>(std::move(options));
}

}  // namespace shardy::shard
