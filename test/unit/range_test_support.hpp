// Test helpers for the sidecar and range-read tests: digests, a sidecar encoder for mutation
// tests, and an in-memory ObjectStore that counts requests and honours ranges and If-Match.
#pragma once

#include <openssl/evp.h>
#include <zstd.h>

#include <boost/asio/this_coro.hpp>
#include <boost/json.hpp>
#include <cstdint>
#include <filesystem>
#include <map>
#include <mutex>
#include <shardy/error.hpp>
#include <shardy/object_store.hpp>
#include <string>
#include <vector>

#include "support/digest_hex.hpp"
#include "support/test_support.hpp"

namespace shardy::test {

/// S3's ETag of a single-part PUT: the quoted MD5 hex.
inline std::string s3_etag(std::string_view d) { return "\"" + digest_hex(EVP_md5(), d) + "\""; }

inline void put_u32le(std::string& s, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
inline std::uint32_t get_u32le(std::string_view s, std::size_t pos) {
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= std::uint32_t(static_cast<unsigned char>(s[pos + i])) << (8 * i);
  return v;
}

/// The fields of a sidecar body, for building valid and corrupt sidecars in tests.
struct SidecarBody {
  std::vector<std::uint32_t> pagenos, offsets, chain_heads, chain_offsets, chain_pages;
  std::string blob;

  static SidecarBody parse(std::string_view b) {
    SidecarBody s;
    std::size_t pos = 0;
    auto rd = [&](std::vector<std::uint32_t>& v, std::size_t count) {
      for (std::size_t i = 0; i < count; ++i, pos += 4) v.push_back(get_u32le(b, pos));
    };
    const std::uint32_t n = get_u32le(b, pos);
    pos += 4;
    rd(s.pagenos, n);
    rd(s.offsets, n + 1);
    const std::uint32_t c = get_u32le(b, pos);
    pos += 4;
    rd(s.chain_heads, c);
    rd(s.chain_offsets, c + 1);
    rd(s.chain_pages, s.chain_offsets.back());
    s.blob = std::string(b.substr(pos));
    return s;
  }
  std::string serialize() const {
    std::string out;
    put_u32le(out, static_cast<std::uint32_t>(pagenos.size()));
    for (auto v : pagenos) put_u32le(out, v);
    for (auto v : offsets) put_u32le(out, v);
    put_u32le(out, static_cast<std::uint32_t>(chain_heads.size()));
    for (auto v : chain_heads) put_u32le(out, v);
    for (auto v : chain_offsets) put_u32le(out, v);
    for (auto v : chain_pages) put_u32le(out, v);
    out += blob;
    return out;
  }
};

struct SidecarPrefix {
  std::string magic = "SQPC";
  std::uint8_t version = 8;
  std::uint64_t body_size = 0;
  std::uint32_t page_size = 4096;
  std::string tag;
};

inline std::string zstd_frame(std::string_view body, bool checksum = true) {
  std::unique_ptr<ZSTD_CCtx, decltype(&ZSTD_freeCCtx)> cctx(ZSTD_createCCtx(), ZSTD_freeCCtx);
  ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_compressionLevel, 3);
  ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_checksumFlag, checksum ? 1 : 0);
  std::string out(ZSTD_compressBound(body.size()), '\0');
  const std::size_t n =
      ZSTD_compress2(cctx.get(), out.data(), out.size(), body.data(), body.size());
  if (ZSTD_isError(n)) throw std::runtime_error("zstd");
  out.resize(n);
  return out;
}

inline std::string encode_prefix(const SidecarPrefix& p) {
  std::string out = p.magic;
  out.push_back(static_cast<char>(p.version));
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((p.body_size >> (8 * i)) & 0xff));
  put_u32le(out, p.page_size);
  out.push_back(static_cast<char>(p.tag.size()));
  out += p.tag;
  return out;
}

/// The prefix fields and the decompressed body of an (assumed well-formed) sidecar.
inline std::pair<SidecarPrefix, std::string> split_sidecar(std::string_view bytes) {
  SidecarPrefix p;
  p.magic = std::string(bytes.substr(0, 4));
  p.version = static_cast<std::uint8_t>(bytes[4]);
  p.body_size = std::uint64_t(get_u32le(bytes, 5)) | std::uint64_t(get_u32le(bytes, 9)) << 32;
  p.page_size = get_u32le(bytes, 13);
  const std::size_t tl = static_cast<unsigned char>(bytes[17]);
  p.tag = std::string(bytes.substr(18, tl));
  std::string_view frame = bytes.substr(18 + tl);
  std::string body(p.body_size, '\0');
  const std::size_t n = ZSTD_decompress(body.data(), body.size(), frame.data(), frame.size());
  if (ZSTD_isError(n)) throw std::runtime_error("zstd");
  body.resize(n);
  return {p, body};
}

/// An ObjectStore held in memory. ETags are S3's (quoted MD5). Records every get/head.
class MemoryStore : public ObjectStore {
 public:
  struct Request {
    std::string method;  // GET or HEAD
    std::string url;
    std::optional<ByteRange> range;
    std::string if_match;
  };

  void set(const std::string& url, std::string body) {
    std::lock_guard lk(mu_);
    Object o;
    o.etag = s3_etag(body);
    o.body = std::move(body);
    objects_[url] = std::move(o);
  }
  void remove_now(const std::string& url) {
    std::lock_guard lk(mu_);
    objects_.erase(url);
  }
  /// Loads every file under fixtures_dir()/<under> as s3://shardy-fixtures/<relative path>.
  void load_fixtures(const std::string& under) {
    const auto root = fixtures_dir();
    for (auto& e : std::filesystem::recursive_directory_iterator(root / under)) {
      if (!e.is_regular_file()) continue;
      set("s3://shardy-fixtures/" + std::filesystem::relative(e.path(), root).generic_string(),
          read_file(e.path()));
    }
  }
  std::vector<Request> requests() const {
    std::lock_guard lk(mu_);
    return log_;
  }
  void clear_requests() {
    std::lock_guard lk(mu_);
    log_.clear();
  }
  std::size_t count(std::string_view url_suffix) const {
    std::lock_guard lk(mu_);
    std::size_t n = 0;
    for (auto& r : log_)
      if (r.url.ends_with(url_suffix)) ++n;
    return n;
  }

  boost::asio::awaitable<GetResult> get(std::string url, GetOptions options = {}) override {
    std::lock_guard lk(mu_);
    log_.push_back(Request{"GET", url, options.range, options.if_match});
    auto it = objects_.find(url);
    if (it == objects_.end()) throw shardy::error(errc::object_not_found, url);
    const Object& o = it->second;
    if (!options.if_match.empty() && options.if_match != o.etag)
      throw shardy::error(errc::precondition_failed, url);
    GetResult r;
    r.etag = o.etag;
    r.object_size = o.body.size();
    if (!options.range) {
      r.body = o.body;
      co_return r;
    }
    const ByteRange br = *options.range;
    std::uint64_t off = 0, len = 0;
    const std::uint64_t size = o.body.size();
    switch (br.type) {
      case ByteRange::kind::bounded:
        off = br.offset;
        len = br.length;
        break;
      case ByteRange::kind::from:
        off = br.offset;
        len = size > off ? size - off : 0;
        break;
      case ByteRange::kind::suffix:
        len = std::min(br.length, size);
        off = size - len;
        break;
    }
    if (off >= size) throw shardy::error(errc::invalid_range, url);
    len = std::min(len, size - off);
    r.body = o.body.substr(off, len);
    r.range_offset = off;
    co_return r;
  }
  boost::asio::awaitable<ObjectInfo> head(std::string url) override {
    std::lock_guard lk(mu_);
    log_.push_back(Request{"HEAD", url, std::nullopt, {}});
    auto it = objects_.find(url);
    if (it == objects_.end()) throw shardy::error(errc::object_not_found, url);
    ObjectInfo info;
    info.url = url;
    info.size = it->second.body.size();
    info.etag = it->second.etag;
    co_return info;
  }
  boost::asio::awaitable<PutResult> put(std::string url, std::string body, PutOptions) override {
    PutResult r;
    r.etag = s3_etag(body);
    set(url, std::move(body));
    co_return r;
  }
  boost::asio::awaitable<PutResult> put_file(std::string, std::filesystem::path,
                                             PutOptions) override {
    throw shardy::error(errc::unsupported, "MemoryStore::put_file");
  }
  boost::asio::awaitable<void> remove(std::string url) override {
    remove_now(url);
    co_return;
  }
  boost::asio::awaitable<ListResult> list(std::string, ListOptions) override {
    throw shardy::error(errc::unsupported, "MemoryStore::list");
  }
  boost::asio::awaitable<ObjectInfo> download(std::string, std::filesystem::path, ProgressCallback,
                                              std::string) override {
    throw shardy::error(errc::unsupported, "MemoryStore::download");
  }

 private:
  struct Object {
    std::string body;
    std::string etag;
  };
  mutable std::mutex mu_;
  std::map<std::string, Object> objects_;
  std::vector<Request> log_;
};

/// Every shard directory (holding shard.db) under fixtures/snapshots.
inline std::vector<std::filesystem::path> fixture_shard_dirs() {
  std::vector<std::filesystem::path> out;
  for (auto& e : std::filesystem::recursive_directory_iterator(fixtures_dir() / "snapshots"))
    if (e.is_regular_file() && e.path().filename() == "shard.db")
      out.push_back(e.path().parent_path());
  std::sort(out.begin(), out.end());
  return out;
}

/// The s3://shardy-fixtures URL of a fixture path.
inline std::string fixture_url(const std::filesystem::path& p) {
  return "s3://shardy-fixtures/" + std::filesystem::relative(p, fixtures_dir()).generic_string();
}

}  // namespace shardy::test
