// Local-file ObjectStores (see include/shardy/local_store.hpp for the semantics).
#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>
#include <random>
#include <shardy/local_store.hpp>

namespace shardy {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kTempPrefix = ".shardy-tmp-";

[[noreturn]] void throw_errno(int err, const std::string& what) {
  errc code = (err == ENOSPC || err == EDQUOT) ? errc::disk_full : errc::io_error;
  throw_error(code, what + ": " + std::strerror(err));
}

// RAII file descriptor.
struct Fd {
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

class Md5 {
 public:
  Md5() : ctx_(EVP_MD_CTX_new()) {
    if (!ctx_ || EVP_DigestInit_ex(ctx_, EVP_md5(), nullptr) != 1)
      throw_error(errc::io_error, "OpenSSL MD5 unavailable");
  }
  ~Md5() { EVP_MD_CTX_free(ctx_); }
  Md5(const Md5&) = delete;
  Md5& operator=(const Md5&) = delete;
  void update(const char* p, std::size_t n) { EVP_DigestUpdate(ctx_, p, n); }
  std::string quoted_hex() {
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    EVP_DigestFinal_ex(ctx_, d, &n);
    static constexpr char hex[] = "0123456789abcdef";
    std::string out = "\"";
    for (unsigned i = 0; i < n; ++i) {
      out.push_back(hex[d[i] >> 4]);
      out.push_back(hex[d[i] & 15]);
    }
    out.push_back('"');
    return out;
  }

 private:
  EVP_MD_CTX* ctx_;
};

std::string read_all(int fd, const std::string& what, std::uint64_t offset, std::uint64_t length) {
  std::string out(length, '\0');
  std::uint64_t done = 0;
  while (done < length) {
    ssize_t n = ::pread(fd, out.data() + done, length - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno(errno, "read " + what);
    }
    if (n == 0) break;  // shrank underneath us
    done += static_cast<std::uint64_t>(n);
  }
  out.resize(done);
  return out;
}

void write_all(int fd, const char* p, std::size_t n, const std::string& what) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      throw_errno(errno, "write " + what);
    }
    p += w;
    n -= static_cast<std::size_t>(w);
  }
}

void fsync_dir(const fs::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;  // best effort: some file systems refuse
  ::fsync(fd);
  ::close(fd);
}

// Where objects live: object path = root + key, URL = url_base + key.
struct Location {
  std::string root;      // file-system prefix ("" for file://, "<root>/bucket/" for mapped)
  std::string url_base;  // "file://" or "s3://bucket/"
  std::string key;
};

struct FileStat {
  std::uint64_t size = 0;
  std::int64_t mtime_ns = 0;
  std::uint64_t ino = 0;
  std::uint64_t dev = 0;
  friend bool operator==(const FileStat&, const FileStat&) = default;
};

class LocalStore final : public ObjectStore, public std::enable_shared_from_this<LocalStore> {
 public:
  LocalStore(boost::asio::any_io_executor ex, std::optional<fs::path> mapped_root,
             std::map<std::string, fs::path> bucket_dirs = {})
      : executor_(std::move(ex)) {
    if (mapped_root) {
      root_ = mapped_root->empty() ? std::string() : absolute_dir(*mapped_root);
      for (auto& [bucket, d] : bucket_dirs) bucket_dirs_[bucket] = absolute_dir(d);
    }
  }

  boost::asio::awaitable<GetResult> get(std::string url, GetOptions options) override {
    co_return get_sync(url, options);
  }
  boost::asio::awaitable<ObjectInfo> head(std::string url) override {
    Location loc = locate(url, false);
    co_return info_of(loc, path_of(loc), url);
  }
  boost::asio::awaitable<PutResult> put(std::string url, std::string body,
                                        PutOptions options) override {
    // Named lambdas, not temporaries in the coroutine's expressions (g++ 12 rule).
    auto fill = [&body](int fd, Md5& md5, const std::string& what) {
      write_all(fd, body.data(), body.size(), what);
      md5.update(body.data(), body.size());
    };
    PutResult r = put_sync(url, options, fill);
    co_return r;
  }
  boost::asio::awaitable<PutResult> put_file(std::string url, fs::path file,
                                             PutOptions options) override {
    auto fill = [&file](int out, Md5& md5, const std::string& what) {
      Fd in(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
      if (in.fd < 0) throw_errno(errno, "open " + file.string());
      std::string buf(1 << 20, '\0');
      for (;;) {
        ssize_t n = ::read(in.fd, buf.data(), buf.size());
        if (n < 0) {
          if (errno == EINTR) continue;
          throw_errno(errno, "read " + file.string());
        }
        if (n == 0) break;
        write_all(out, buf.data(), static_cast<std::size_t>(n), what);
        md5.update(buf.data(), static_cast<std::size_t>(n));
      }
    };
    PutResult r = put_sync(url, options, fill);
    co_return r;
  }
  boost::asio::awaitable<void> remove(std::string url) override {
    Location loc = locate(url, false);
    fs::path p = path_of(loc);
    if (::unlink(p.c_str()) != 0 && errno != ENOENT) {
      if (errno == EISDIR || errno == EPERM) {
        struct stat st {};
        if (::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) co_return;  // not an object
      }
      throw_errno(errno, "remove " + p.string());
    }
    forget(p.string());
    co_return;
  }
  boost::asio::awaitable<ListResult> list(std::string prefix_url, ListOptions options) override {
    co_return list_sync(prefix_url, options);
  }
  boost::asio::awaitable<ObjectInfo> download(std::string url, fs::path file,
                                              ProgressCallback progress,
                                              std::string if_match) override {
    Location loc = locate(url, false);
    fs::path src = path_of(loc);
    Fd in(open_object(src));
    FileStat st = stat_fd(in.fd, src.string());
    std::string etag = etag_of(src.string(), in.fd, st);
    if (!if_match.empty() && if_match != etag)
      throw_error(errc::precondition_failed,
                  "If-Match " + if_match + " != " + etag + " for " + url);
    Fd out(::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (out.fd < 0) throw_errno(errno, "open " + file.string());
    std::uint64_t done = 0;
    constexpr std::uint64_t chunk = 1 << 20;
    while (done < st.size) {
      std::string part = read_all(in.fd, src.string(), done, std::min(chunk, st.size - done));
      if (part.empty()) break;
      write_all(out.fd, part.data(), part.size(), file.string());
      done += part.size();
      if (progress) progress(done, st.size);
    }
    if (st.size == 0 && progress) progress(0, 0);
    ObjectInfo info;
    info.url = url;
    info.size = done;
    info.etag = etag;
    info.last_modified = to_time_point(st.mtime_ns);
    co_return info;
  }

 private:
  // ---- URL -> path -------------------------------------------------------------------------

  static std::string absolute_dir(const fs::path& p) {
    std::error_code ec;
    fs::path abs = fs::absolute(p, ec);
    if (ec) throw_error(errc::invalid_argument, "bad object root " + p.string());
    std::string s = abs.lexically_normal().string();
    while (s.size() > 1 && s.back() == '/') s.pop_back();
    return s;
  }

  static void check_key(std::string_view key, const std::string& url) {
    if (key.find('\0') != std::string_view::npos)
      throw_error(errc::invalid_url, "NUL byte in " + url);
    std::size_t start = 0;
    while (start <= key.size()) {
      std::size_t end = key.find('/', start);
      if (end == std::string_view::npos) end = key.size();
      std::string_view seg = key.substr(start, end - start);
      bool last = end == key.size();
      if ((seg.empty() && !last) || seg == "." || seg == "..")
        throw_error(errc::invalid_url, "unsupported key (empty, '.' or '..' segment): " + url);
      start = end + 1;
    }
  }

  // For objects (`for_list` false) the key must name a file; a list prefix may be empty or end
  // in '/'.
  Location locate(const std::string& url, bool for_list) const {
    Location loc;
    if (!root_) {
      constexpr std::string_view scheme = "file://";
      if (url.compare(0, scheme.size(), scheme) != 0 || url.size() <= scheme.size() ||
          url[scheme.size()] != '/')
        throw_error(errc::invalid_url,
                    "the file store takes file:///absolute/path URLs, got " + url);
      loc.url_base = "file://";
      loc.key = url.substr(scheme.size());
      check_key(std::string_view(loc.key).substr(1), url);
    } else {
      constexpr std::string_view scheme = "s3://";
      if (url.compare(0, scheme.size(), scheme) != 0)
        throw_error(errc::invalid_url, "the mapped store takes s3://bucket/key URLs, got " + url);
      std::string rest = url.substr(scheme.size());
      auto slash = rest.find('/');
      std::string bucket = rest.substr(0, slash);
      loc.key = slash == std::string::npos ? "" : rest.substr(slash + 1);
      if (bucket.empty() || bucket == "." || bucket == ".." ||
          bucket.find('\0') != std::string::npos)
        throw_error(errc::invalid_url, "no bucket in " + url);
      if (!loc.key.empty()) check_key(loc.key, url);
      if (auto it = bucket_dirs_.find(bucket); it != bucket_dirs_.end())
        loc.root = it->second + "/";
      else if (!root_->empty())
        loc.root = *root_ + "/" + bucket + "/";
      else
        throw_error(errc::invalid_url, "bucket '" + bucket + "' is not mapped: " + url);
      loc.url_base = "s3://" + bucket + "/";
    }
    if (!for_list && (loc.key.empty() || loc.key.back() == '/'))
      throw_error(errc::invalid_url, "not an object URL (no key): " + url);
    return loc;
  }

  static fs::path path_of(const Location& loc) { return fs::path(loc.root + loc.key); }

  // ---- ETags ---------------------------------------------------------------------------------

  static FileStat stat_fd(int fd, const std::string& what) {
    struct stat st {};
    if (::fstat(fd, &st) != 0) throw_errno(errno, "stat " + what);
    FileStat s;
    s.size = static_cast<std::uint64_t>(st.st_size);
    s.mtime_ns = static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
    s.ino = st.st_ino;
    s.dev = st.st_dev;
    return s;
  }

  static std::chrono::system_clock::time_point to_time_point(std::int64_t ns) {
    return std::chrono::system_clock::time_point(
        std::chrono::duration_cast<std::chrono::system_clock::duration>(
            std::chrono::nanoseconds(ns)));
  }

  static int open_object(const fs::path& p) {
    int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      if (errno == ENOENT || errno == ENOTDIR)
        throw_error(errc::object_not_found, "no such object: " + p.string());
      throw_errno(errno, "open " + p.string());
    }
    struct stat st {};
    if (::fstat(fd, &st) == 0 && !S_ISREG(st.st_mode)) {
      ::close(fd);
      throw_error(errc::object_not_found, "not an object (a directory): " + p.string());
    }
    return fd;
  }

  std::string etag_of(const std::string& path, int fd, const FileStat& st) {
    {
      std::lock_guard lock(mutex_);
      auto it = etags_.find(path);
      if (it != etags_.end() && it->second.first == st) return it->second.second;
    }
    Md5 md5;
    constexpr std::uint64_t chunk = 1 << 20;
    for (std::uint64_t off = 0; off < st.size;) {
      std::string part = read_all(fd, path, off, std::min(chunk, st.size - off));
      if (part.empty()) break;
      md5.update(part.data(), part.size());
      off += part.size();
    }
    std::string etag = md5.quoted_hex();
    std::lock_guard lock(mutex_);
    etags_[path] = {st, etag};
    return etag;
  }

  void forget(const std::string& path) {
    std::lock_guard lock(mutex_);
    etags_.erase(path);
  }

  ObjectInfo info_of(const Location&, const fs::path& p, const std::string& url) {
    Fd fd(open_object(p));
    FileStat st = stat_fd(fd.fd, p.string());
    ObjectInfo info;
    info.url = url;
    info.size = st.size;
    info.etag = etag_of(p.string(), fd.fd, st);
    info.last_modified = to_time_point(st.mtime_ns);
    return info;
  }

  // ---- get -----------------------------------------------------------------------------------

  GetResult get_sync(const std::string& url, const GetOptions& options) {
    Location loc = locate(url, false);
    fs::path p = path_of(loc);
    Fd fd(open_object(p));
    FileStat st = stat_fd(fd.fd, p.string());
    GetResult r;
    r.etag = etag_of(p.string(), fd.fd, st);
    r.object_size = st.size;
    if (!options.if_match.empty() && options.if_match != r.etag)
      throw_error(errc::precondition_failed,
                  "If-Match " + options.if_match + " != " + r.etag + " for " + url);
    std::uint64_t first = 0, length = st.size;
    if (options.range) {
      const ByteRange& br = *options.range;
      auto unsatisfiable = [&] {
        throw_error(errc::invalid_range,
                    "range not satisfiable for " + url + " (size " + std::to_string(st.size) + ")");
      };
      switch (br.type) {
        case ByteRange::kind::bounded:
          if (br.length == 0) throw_error(errc::invalid_argument, "empty byte range for " + url);
          if (br.offset >= st.size) unsatisfiable();
          first = br.offset;
          length = std::min(br.length, st.size - first);
          break;
        case ByteRange::kind::from:
          if (br.offset >= st.size) unsatisfiable();
          first = br.offset;
          length = st.size - first;
          break;
        case ByteRange::kind::suffix:
          if (br.length == 0 || st.size == 0) unsatisfiable();
          length = std::min(br.length, st.size);
          first = st.size - length;
          break;
      }
    }
    r.body = read_all(fd.fd, p.string(), first, length);
    r.range_offset = first;
    return r;
  }

  // ---- put -----------------------------------------------------------------------------------

  template <class Fill>
  PutResult put_sync(const std::string& url, const PutOptions& options, Fill&& fill) {
    Location loc = locate(url, true);
    if (loc.key.empty() || loc.key.back() == '/')
      throw_error(errc::invalid_url, "not an object URL (no key): " + url);
    fs::path dest = path_of(loc);
    fs::path dir = dest.parent_path();
    std::error_code fec;
    fs::create_directories(dir, fec);
    if (fec) throw_errno(fec.value(), "create directory " + dir.string());
    std::string tmp_name;
    {
      std::lock_guard lock(mutex_);
      tmp_name = std::string(kTempPrefix) + std::to_string(rng_()) + "-" +
                 dest.filename().string().substr(0, 100);
    }
    fs::path tmp = dir / tmp_name;
    Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    if (fd.fd < 0) throw_errno(errno, "create " + tmp.string());
    struct TmpGuard {
      fs::path p;
      bool armed = true;
      ~TmpGuard() {
        if (armed) ::unlink(p.c_str());
      }
    } guard{tmp};
    Md5 md5;
    fill(fd.fd, md5, tmp.string());
    if (::fsync(fd.fd) != 0) throw_errno(errno, "fsync " + tmp.string());
    FileStat st = stat_fd(fd.fd, tmp.string());
    std::string etag = md5.quoted_hex();

    if (options.if_none_match) {
      // link(2) fails with EEXIST when the name exists: an atomic create-only.
      if (::link(tmp.c_str(), dest.c_str()) != 0) {
        if (errno == EEXIST)
          throw_error(errc::precondition_failed, "If-None-Match: * but " + url + " exists");
        throw_errno(errno, "link " + dest.string());
      }
      // guard unlinks the temp name; the object keeps the inode.
    } else {
      std::unique_lock lock(mutex_, std::defer_lock);
      if (!options.if_match.empty()) {
        lock.lock();
        std::string current;
        int cfd = ::open(dest.c_str(), O_RDONLY | O_CLOEXEC);
        if (cfd < 0)
          throw_error(errc::precondition_failed,
                      "If-Match " + options.if_match + " but " + url + " does not exist");
        Fd cur(cfd);
        FileStat cst = stat_fd(cur.fd, dest.string());
        lock.unlock();  // etag_of takes the mutex itself
        current = etag_of(dest.string(), cur.fd, cst);
        lock.lock();
        if (current != options.if_match)
          throw_error(errc::precondition_failed,
                      "If-Match " + options.if_match + " != " + current + " for " + url);
      }
      if (::rename(tmp.c_str(), dest.c_str()) != 0) throw_errno(errno, "rename " + dest.string());
      guard.armed = false;
    }
    fsync_dir(dir);
    {
      std::lock_guard lock(mutex_);
      etags_[dest.string()] = {st, etag};
    }
    return PutResult{etag};
  }

  // ---- list ----------------------------------------------------------------------------------

  ListResult list_sync(const std::string& prefix_url, const ListOptions& options) {
    Location loc = locate(prefix_url, true);
    const std::string prefix_path = loc.root + loc.key;
    // Walk from the deepest directory that contains every candidate.
    auto cut = prefix_path.rfind('/');
    fs::path start = prefix_path.substr(0, cut == std::string::npos ? 0 : cut + 1);
    std::vector<std::string> keys;
    std::error_code ec;
    if (fs::is_directory(start, ec)) {
      fs::recursive_directory_iterator it(start, fs::directory_options::skip_permission_denied, ec),
          end;
      for (; !ec && it != end; it.increment(ec)) {
        const std::string p = it->path().string();
        std::error_code sec;
        if (it->is_directory(sec)) {
          std::string d = p + "/";
          bool relevant = d.compare(0, std::min(d.size(), prefix_path.size()), prefix_path, 0,
                                    std::min(d.size(), prefix_path.size())) == 0;
          if (!relevant) it.disable_recursion_pending();
          continue;
        }
        if (!it->is_regular_file(sec)) continue;
        if (it->path().filename().string().starts_with(kTempPrefix)) continue;
        if (p.compare(0, prefix_path.size(), prefix_path) != 0) continue;
        if (p.size() < loc.root.size()) continue;
        keys.push_back(p.substr(loc.root.size()));
      }
      if (ec) throw_errno(ec.value(), "list " + start.string());
    }
    std::sort(keys.begin(), keys.end());
    ListResult r;
    std::size_t emitted = 0;
    const std::size_t cap = options.max_keys == 0 ? SIZE_MAX : options.max_keys;
    std::string last_prefix;
    for (const std::string& key : keys) {
      if (emitted >= cap) break;
      if (!options.delimiter.empty()) {
        auto d = key.find(options.delimiter, loc.key.size());
        if (d != std::string::npos) {
          std::string cp = key.substr(0, d + options.delimiter.size());
          if (cp != last_prefix) {  // keys are sorted, so equal prefixes are adjacent
            last_prefix = cp;
            r.common_prefixes.push_back(loc.url_base + cp);
            ++emitted;
          }
          continue;
        }
      }
      Fd fd(open_object(loc.root + key));
      FileStat st = stat_fd(fd.fd, key);
      ObjectInfo info;
      info.url = loc.url_base + key;
      info.size = st.size;
      info.etag = etag_of(loc.root + key, fd.fd, st);
      info.last_modified = to_time_point(st.mtime_ns);
      r.objects.push_back(std::move(info));
      ++emitted;
    }
    return r;
  }

  boost::asio::any_io_executor executor_;           // kept for a future offload of file I/O
  std::optional<std::string> root_;                 // mapped store: the absolute root ("" = none)
  std::map<std::string, std::string> bucket_dirs_;  // mapped store: per-bucket folders
  std::mutex mutex_;
  std::map<std::string, std::pair<FileStat, std::string>> etags_;
  std::mt19937_64 rng_{std::random_device{}()};
};

}  // namespace

std::shared_ptr<ObjectStore> make_file_store(boost::asio::any_io_executor executor) {
  return std::make_shared<LocalStore>(std::move(executor), std::nullopt);
}

std::shared_ptr<ObjectStore> make_mapped_store(boost::asio::any_io_executor executor,
                                               std::filesystem::path root) {
  return std::make_shared<LocalStore>(std::move(executor), std::move(root));
}

std::shared_ptr<ObjectStore> make_mapped_store(boost::asio::any_io_executor executor,
                                               std::filesystem::path root,
                                               std::map<std::string, std::filesystem::path> dirs) {
  return std::make_shared<LocalStore>(std::move(executor), std::move(root), std::move(dirs));
}

}  // namespace shardy
