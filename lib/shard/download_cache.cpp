#include "shard/download_cache.hpp"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <shardy/error.hpp>
#include <shardy/metrics.hpp>
#include <system_error>

#include "core/blocking_hop.hpp"
#include "shard/async_semaphore.hpp"
#include "shard/sqlite_shard.hpp"

namespace shardy::shard {

namespace fs = std::filesystem;
namespace asio = boost::asio;

fs::path cache_entry_dir(const fs::path& root, std::string_view db_url,
                         std::string_view checkpoint_id) {
  std::string id(db_url);
  id.push_back('\0');
  id.append(checkpoint_id);
  char name[32];
  std::snprintf(name, sizeof name, "entry-%016llx",
                static_cast<unsigned long long>(XXH3_64bits(id.data(), id.size())));
  return root / name;
}

namespace {

errc errc_for(int e) { return (e == ENOSPC || e == EDQUOT) ? errc::disk_full : errc::io_error; }

[[noreturn]] void fail_errno(int e, const std::string& what, const fs::path& p) {
  throw_error(errc_for(e), what + " " + p.string() + ": " + std::strerror(e));
}

[[noreturn]] void fail_fs(const std::error_code& ec, const std::string& what, const fs::path& p) {
  throw_error(errc_for(ec.value()), what + " " + p.string() + ": " + ec.message());
}

// An open lock file with a flock held on it (released when destroyed).
class LockFile {
 public:
  explicit LockFile(int fd) : fd_(fd) {}
  LockFile(const LockFile&) = delete;
  LockFile& operator=(const LockFile&) = delete;
  ~LockFile() {
    if (fd_ >= 0) ::close(fd_);  // closing the descriptor releases the flock
  }
  int fd() const noexcept { return fd_; }

 private:
  int fd_;
};

// Whether `fd` is still the file at `path` (a remover may have unlinked it after we opened it).
bool same_file(int fd, const fs::path& path) {
  struct stat a {
  }, b{};
  if (::fstat(fd, &a) != 0 || ::stat(path.c_str(), &b) != 0) return false;
  return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

struct Identity {
  std::string db_url, checkpoint_id, etag;
  std::int64_t db_bytes = 0;
};

std::optional<Identity> read_identity(const fs::path& p) {
  FILE* f = std::fopen(p.c_str(), "rb");
  if (!f) return std::nullopt;
  std::string text;
  char buf[4096];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) text.append(buf, n);
  std::fclose(f);
  boost::system::error_code ec;
  auto v = boost::json::parse(text, ec);
  if (ec || !v.is_object()) return std::nullopt;
  const auto& o = v.as_object();
  Identity id;
  auto str = [&](const char* k, std::string& out) {
    if (auto* x = o.if_contains(k); x && x->is_string()) out = std::string(x->as_string());
  };
  str("db_url", id.db_url);
  str("checkpoint_id", id.checkpoint_id);
  str("etag", id.etag);
  if (auto* x = o.if_contains("db_bytes"); x && x->is_int64()) id.db_bytes = x->as_int64();
  return id;
}

// Writes `bytes` to `path` durably: temp file, fsync, rename.
void write_file_atomic(const fs::path& path, std::string_view bytes) {
  fs::path tmp = path;
  tmp += ".tmp." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail_errno(errno, "cannot create", tmp);
  std::size_t off = 0;
  while (off < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + off, bytes.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      fail_errno(e, "cannot write", tmp);
    }
    off += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) {
    int e = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    fail_errno(e, "cannot sync", tmp);
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    fail_errno(e, "cannot rename", tmp);
  }
}

void fsync_path(const fs::path& p, int flags) {
  int fd = ::open(p.c_str(), flags | O_CLOEXEC);
  if (fd < 0) fail_errno(errno, "cannot open", p);
  int rc = ::fsync(fd);
  int e = errno;
  ::close(fd);
  if (rc != 0) fail_errno(e, "cannot sync", p);
}

void remove_temp_files(const fs::path& dir) {
  std::error_code ec;
  for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator();
       it.increment(ec)) {
    const auto name = it->path().filename().string();
    if (name.find(".tmp.") != std::string::npos) fs::remove(it->path(), ec);
  }
}

class DownloadShardFactory final : public ShardFactory,
                                   public std::enable_shared_from_this<DownloadShardFactory> {
 public:
  explicit DownloadShardFactory(DownloadCacheOptions o)
      : opts_(std::move(o)), downloads_(std::max<std::size_t>(1, opts_.max_concurrent_downloads)) {}

  // Finalising a download (size check, fsync, rename) blocks on the disk: on the blocking pool.
  bool needs_blocking_executor() const noexcept override { return true; }

  asio::awaitable<std::shared_ptr<ShardReader>> open(ShardOpenContext ctx) override {
    const ShardMeta& m = ctx.meta;
    const std::string db_url = m.db_url.value_or("");
    const std::string checkpoint = m.checkpoint_id.value_or("");
    const fs::path dir = cache_entry_dir(opts_.root, db_url, checkpoint);
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) fail_fs(ec, "cannot create cache directory", dir);
    const fs::path lock_path = dir / ".lock";
    const fs::path db_path = dir / "shard.db";
    const fs::path id_path = dir / "identity.json";

    // A complete entry is used under a shared lock that we keep while the shard is open; an
    // incomplete one is filled by whoever gets the exclusive lock, while the others poll (they
    // take the shared lock as soon as the entry is complete).
    auto ex = co_await asio::this_coro::executor;
    std::unique_ptr<LockFile> lock;
    bool hit = false;
    for (;;) {
      int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
      if (fd < 0 && errno == ENOENT) {
        // A concurrent retire() removed the entry directory: create it again.
        fs::create_directories(dir, ec);
        if (ec) fail_fs(ec, "cannot create cache directory", dir);
        continue;
      }
      if (fd < 0) fail_errno(errno, "cannot open cache lock", lock_path);
      lock = std::make_unique<LockFile>(fd);
      if (::flock(lock->fd(), LOCK_SH | LOCK_NB) == 0) {
        if (!same_file(lock->fd(), lock_path)) continue;  // removed meanwhile: start over
        if (complete(db_path, id_path, db_url, checkpoint, m.db_bytes)) {
          hit = true;
          break;
        }
        ::flock(lock->fd(), LOCK_UN);
      }
      if (::flock(lock->fd(), LOCK_EX | LOCK_NB) == 0) {
        if (!same_file(lock->fd(), lock_path)) continue;
        if (complete(db_path, id_path, db_url, checkpoint, m.db_bytes)) {
          hit = true;
        } else {
          co_await download(ctx, dir, db_path, id_path);
        }
        // Downgrade to shared: other processes may now open the entry too.
        if (::flock(lock->fd(), LOCK_SH) != 0) fail_errno(errno, "cannot lock", lock_path);
        break;
      }
      if (errno != EWOULDBLOCK && errno != EINTR) fail_errno(errno, "cannot lock", lock_path);
      lock.reset();
      asio::steady_timer timer(ex, std::chrono::milliseconds(10));
      co_await timer.async_wait(asio::use_awaitable);
    }
    if (hit) {
      ctx.logger->debug("shard_cache_hit db_id={} path={}", m.db_id, db_path.string());
      if (ctx.metrics) ctx.metrics->on_shard_cache_hit(m.db_id);
    }

    SqliteShardOptions so;
    so.path = db_path.string();
    so.immutable = true;
    so.mmap_size = opts_.mmap_size;
    so.max_connections = opts_.max_connections_per_shard;
    so.checkout_timeout = opts_.checkout_timeout;
    so.threading = LookupThreading::caller_thread;
    so.keep_alive = std::shared_ptr<LockFile>(std::move(lock));
    co_return open_sqlite_shard(std::move(so));
  }

  void retire(const ShardMeta& m) override {
    if (!opts_.remove_retired || !m.db_url) return;
    const fs::path dir = cache_entry_dir(opts_.root, *m.db_url, m.checkpoint_id.value_or(""));
    const fs::path lock_path = dir / ".lock";
    int fd = ::open(lock_path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) return;
    LockFile lock(fd);
    // Someone (this process's newer state, or another process) still uses it: keep it.
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0 || !same_file(fd, lock_path)) return;
    std::error_code ec;
    fs::remove(dir / "shard.db", ec);
    fs::remove(dir / "identity.json", ec);
    remove_temp_files(dir);
    fs::remove(lock_path, ec);  // waiters re-check the inode and start over
    fs::remove(dir, ec);
  }

 private:
  static bool complete(const fs::path& db, const fs::path& id_path, const std::string& db_url,
                       const std::string& checkpoint, std::int64_t db_bytes) {
    auto id = read_identity(id_path);
    if (!id || id->db_url != db_url || id->checkpoint_id != checkpoint) return false;
    std::error_code ec;
    auto size = fs::file_size(db, ec);
    if (ec) return false;
    return db_bytes <= 0 || size == static_cast<std::uintmax_t>(db_bytes);
  }

  // Called with the exclusive lock held.
  asio::awaitable<void> download(const ShardOpenContext& ctx, const fs::path& dir,
                                 const fs::path& db_path, const fs::path& id_path) {
    const ShardMeta& m = ctx.meta;
    co_await downloads_.async_acquire(asio::use_awaitable);
    AsyncSemaphore::Permit permit(&downloads_);

    remove_temp_files(dir);  // leftovers of a crashed writer (we hold the exclusive lock)
    if (m.db_bytes > 0) {
      std::error_code ec;
      auto sp = fs::space(dir, ec);
      if (!ec && sp.available < static_cast<std::uintmax_t>(m.db_bytes))
        throw_error(errc::disk_full, "shard " + std::to_string(m.db_id) + " needs " +
                                         std::to_string(m.db_bytes) + " bytes, " +
                                         std::to_string(sp.available) + " available in " +
                                         dir.string());
    }
    fs::path tmp = db_path;
    tmp += ".tmp." + std::to_string(::getpid()) + "." + std::to_string(++tmp_counter_);
    const auto start = std::chrono::steady_clock::now();
    ctx.logger->info("shard_download_started db_id={} url={} bytes={}", m.db_id, ctx.db_object,
                     m.db_bytes);

    auto logger = ctx.logger;
    auto metrics = ctx.metrics;
    const std::uint32_t db_id = m.db_id;
    auto next_report = std::make_shared<std::atomic<int>>(1);
    ProgressCallback progress = [logger, metrics, db_id, next_report](std::uint64_t done,
                                                                      std::uint64_t total) {
      if (metrics) metrics->on_shard_download_progress(db_id, done, total);
      if (total == 0) return;
      int quarter = static_cast<int>(done * 4 / total);
      int expected = next_report->load();
      if (quarter >= expected && next_report->compare_exchange_strong(expected, quarter + 1))
        logger->debug("shard_download_progress db_id={} done={} total={}", db_id, done, total);
    };

    ObjectInfo info;
    std::exception_ptr failure;
    try {
      std::string url = ctx.db_object;
      fs::path target = tmp;
      std::string if_match;
      info = co_await ctx.objects->download(std::move(url), std::move(target), std::move(progress),
                                            std::move(if_match));
    } catch (...) {
      failure = std::current_exception();
    }
    if (failure) {
      std::error_code ec;
      auto written = fs::file_size(tmp, ec);
      fs::remove(tmp, ec);
      // A store that ran out of space may report it as a generic I/O error: check.
      auto sp = fs::space(dir, ec);
      const bool full = !ec && m.db_bytes > 0 &&
                        sp.available + (written == static_cast<std::uintmax_t>(-1) ? 0 : written) <
                            static_cast<std::uintmax_t>(m.db_bytes);
      try {
        std::rethrow_exception(failure);
      } catch (const error& e) {
        if (full && e.code() != make_error_code(errc::disk_full))
          throw_error(errc::disk_full,
                      std::string("downloading ") + ctx.db_object + ": " + e.what());
        throw;
      } catch (const fs::filesystem_error& e) {
        fail_fs(e.code(), std::string("downloading ") + ctx.db_object + " into", tmp);
      }
    }

    // Finalise off the io thread: fsync of a large file can take a while
    // (ReaderDownloadCache.FinalisationRunsOnTheBlockingExecutor; in a reader,
    // ReaderFixture.DownloadFinalisationRunsOffTheIoThreads).
    if (ctx.blocking_executor) co_await detail::hop_to(ctx.blocking_executor, ctx.blocking_owner);
    try {
      std::error_code ec;
      auto size = fs::file_size(tmp, ec);
      if (ec) fail_fs(ec, "cannot stat", tmp);
      if (m.db_bytes > 0 && size != static_cast<std::uintmax_t>(m.db_bytes))
        throw_error(errc::shard_error,
                    ctx.db_object + ": downloaded " + std::to_string(size) +
                        " bytes but the manifest says db_bytes=" + std::to_string(m.db_bytes));
      fsync_path(tmp, O_RDONLY);
      boost::json::object id;
      id["db_url"] = m.db_url.value_or("");
      id["checkpoint_id"] = m.checkpoint_id.value_or("");
      id["etag"] = info.etag;
      id["db_bytes"] = m.db_bytes;
      // identity first, then the database: a crash in between leaves an incomplete entry.
      write_file_atomic(id_path, boost::json::serialize(id));
      if (::rename(tmp.c_str(), db_path.c_str()) != 0) fail_errno(errno, "cannot rename", tmp);
      fsync_path(dir, O_RDONLY | O_DIRECTORY);
    } catch (...) {
      std::error_code ec;
      fs::remove(tmp, ec);
      throw;
    }
    co_await asio::post(ctx.executor, asio::use_awaitable);
    const auto elapsed = std::chrono::steady_clock::now() - start;
    ctx.logger->info("shard_download_finished db_id={} bytes={} ms={} etag={}", m.db_id, info.size,
                     std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count(),
                     info.etag);
    if (metrics)
      metrics->on_shard_download(db_id, info.size,
                                 std::chrono::duration_cast<std::chrono::nanoseconds>(elapsed));
  }

  DownloadCacheOptions opts_;
  AsyncSemaphore downloads_;
  std::atomic<std::uint64_t> tmp_counter_{0};
};

}  // namespace

std::shared_ptr<ShardFactory> make_download_shard_factory(DownloadCacheOptions options) {
  if (options.root.empty())
    throw_error(errc::invalid_argument, "the download cache needs a local root directory");
  return std::make_shared<DownloadShardFactory>(std::move(options));
}

}  // namespace shardy::shard
