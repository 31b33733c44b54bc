// Helpers for the reader's unit tests: kv shard files written with plain SQLite, and an in-memory
// ObjectStore over a directory (s3://bucket/key -> <root>/bucket/key) that counts downloads and
// can be told to fail.
#pragma once

#include <sqlite3.h>

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <shardy/error.hpp>
#include <shardy/object_store.hpp>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace shardy::test {

/// Writes a shard with the kv schema of interop spec 4.1.
inline void write_kv_shard(const std::filesystem::path& path,
                           const std::vector<std::pair<std::string, std::string>>& rows) {
  std::filesystem::create_directories(path.parent_path());
  std::filesystem::remove(path);
  sqlite3* db = nullptr;
  if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) throw std::runtime_error("open");
  sqlite3_exec(db,
               "PRAGMA page_size=4096; PRAGMA journal_mode=OFF; "
               "CREATE TABLE kv (k BLOB PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID; BEGIN;",
               nullptr, nullptr, nullptr);
  sqlite3_stmt* s = nullptr;
  sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO kv (k, v) VALUES (?1, ?2)", -1, &s, nullptr);
  static const char empty = 0;
  for (const auto& [k, v] : rows) {
    sqlite3_bind_blob(s, 1, k.empty() ? &empty : k.data(), static_cast<int>(k.size()),
                      SQLITE_TRANSIENT);
    sqlite3_bind_blob(s, 2, v.empty() ? &empty : v.data(), static_cast<int>(v.size()),
                      SQLITE_TRANSIENT);
    if (sqlite3_step(s) != SQLITE_DONE) throw std::runtime_error(sqlite3_errmsg(db));
    sqlite3_reset(s);
  }
  sqlite3_finalize(s);
  sqlite3_exec(db, "COMMIT;", nullptr, nullptr, nullptr);
  sqlite3_close(db);
}

/// 8-byte big-endian (the u64be storage encoding).
inline std::string be64(std::uint64_t v) {
  std::string out(8, '\0');
  for (int i = 7; i >= 0; --i, v >>= 8) out[static_cast<std::size_t>(i)] = static_cast<char>(v);
  return out;
}

/// A directory-backed ObjectStore for tests: s3://bucket/key -> root/bucket/key.
class DirObjectStore final : public ObjectStore {
 public:
  explicit DirObjectStore(std::filesystem::path root) : root_(std::move(root)) {}

  std::atomic<int> downloads{0};
  std::atomic<int> gets{0};
  /// When set, download() writes half the object and then fails with this error.
  std::atomic<int> fail_download_with{0};

  std::filesystem::path path_of(const std::string& url) const {
    auto pos = url.find("://");
    if (pos == std::string::npos) throw_error(errc::invalid_url, url);
    return root_ / url.substr(pos + 3);
  }

  boost::asio::awaitable<GetResult> get(std::string url, GetOptions) override {
    ++gets;
    auto p = path_of(url);
    std::ifstream in(p, std::ios::binary);
    if (!in) throw_error(errc::object_not_found, url);
    GetResult r;
    r.body.assign(std::istreambuf_iterator<char>(in), {});
    r.object_size = r.body.size();
    r.etag = "\"etag-" + std::to_string(r.body.size()) + "\"";
    co_return r;
  }
  boost::asio::awaitable<ObjectInfo> head(std::string url) override {
    auto p = path_of(url);
    std::error_code ec;
    auto size = std::filesystem::file_size(p, ec);
    if (ec) throw_error(errc::object_not_found, url);
    ObjectInfo i;
    i.url = url;
    i.size = size;
    co_return i;
  }
  boost::asio::awaitable<PutResult> put(std::string url, std::string body, PutOptions) override {
    auto p = path_of(url);
    std::filesystem::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << body;
    co_return PutResult{};
  }
  boost::asio::awaitable<PutResult> put_file(std::string url, std::filesystem::path file,
                                             PutOptions) override {
    auto p = path_of(url);
    std::filesystem::create_directories(p.parent_path());
    std::filesystem::copy_file(file, p, std::filesystem::copy_options::overwrite_existing);
    co_return PutResult{};
  }
  boost::asio::awaitable<void> remove(std::string url) override {
    std::error_code ec;
    std::filesystem::remove(path_of(url), ec);
    co_return;
  }
  boost::asio::awaitable<ListResult> list(std::string prefix_url, ListOptions options) override {
    // Directory-style listing is enough for the manifest store's history (delimiter "/").
    ListResult r;
    auto scheme_end = prefix_url.find("://") + 3;
    auto p = root_ / prefix_url.substr(scheme_end);
    auto dir = prefix_url.back() == '/' ? p : p.parent_path();
    std::error_code ec;
    for (auto it = std::filesystem::directory_iterator(dir, ec);
         !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
      auto rel = std::filesystem::relative(it->path(), root_).generic_string();
      std::string url = prefix_url.substr(0, scheme_end) + rel;
      if (url.rfind(prefix_url, 0) != 0) continue;
      if (it->is_directory()) {
        if (options.delimiter == "/") r.common_prefixes.push_back(url + "/");
      } else {
        ObjectInfo i;
        i.url = url;
        i.size = it->file_size();
        r.objects.push_back(i);
      }
    }
    std::sort(r.common_prefixes.begin(), r.common_prefixes.end());
    std::sort(r.objects.begin(), r.objects.end(),
              [](const ObjectInfo& a, const ObjectInfo& b) { return a.url < b.url; });
    co_return r;
  }
  boost::asio::awaitable<ObjectInfo> download(std::string url, std::filesystem::path file,
                                              ProgressCallback progress, std::string) override {
    ++downloads;
    auto p = path_of(url);
    std::ifstream in(p, std::ios::binary);
    if (!in) throw_error(errc::object_not_found, url);
    std::string body((std::istreambuf_iterator<char>(in)), {});
    std::ofstream out(file, std::ios::binary);
    if (!out) throw_error(errc::io_error, "cannot create " + file.string());
    if (int e = fail_download_with.load()) {
      out.write(body.data(), static_cast<std::streamsize>(body.size() / 2));
      out.close();
      throw_error(static_cast<errc>(e), "injected failure");
    }
    out.write(body.data(), static_cast<std::streamsize>(body.size()));
    out.close();
    if (progress) progress(body.size(), body.size());
    ObjectInfo i;
    i.url = url;
    i.size = body.size();
    i.etag = "\"etag-" + std::to_string(body.size()) + "\"";
    co_return i;
  }

 private:
  std::filesystem::path root_;
};

}  // namespace shardy::test
