#include "writer/shard_spill.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <shardy/error.hpp>

#include "writer/sqlite_shard_builder.hpp"

namespace shardy::writer {
namespace {

struct FileCloser {
  void operator()(std::FILE* f) const noexcept { std::fclose(f); }
};
using File = std::unique_ptr<std::FILE, FileCloser>;

[[noreturn]] void io_fail(const std::string& what, const std::filesystem::path& p) {
  const int e = errno;
  throw_error(e == ENOSPC || e == EDQUOT ? errc::disk_full : errc::io_error,
              what + " " + p.string() + ": " + std::strerror(e));
}

struct Entry {
  const char* key;
  std::uint32_t key_len;
  std::uint32_t value_len;
  std::string_view k() const noexcept { return {key, key_len}; }
  std::string_view v() const noexcept { return {key + key_len, value_len}; }
};

constexpr std::size_t kHeader = 8;  // u32 key length, u32 value length

}  // namespace

ShardSpill::ShardSpill(std::filesystem::path dir, std::uint32_t num_dbs, std::size_t buffer_bytes)
    : dir_(std::move(dir)),
      buffer_bytes_(std::max<std::size_t>(buffer_bytes, 1)),
      shards_(num_dbs) {
  std::filesystem::create_directories(dir_);
}

std::filesystem::path ShardSpill::path(std::uint32_t db_id) const {
  return dir_ / ("spill-" + std::to_string(db_id) + ".bin");
}

void ShardSpill::add(std::uint32_t db_id, std::string_view key, std::string_view value) {
  if (key.size() > UINT32_MAX || value.size() > UINT32_MAX) {
    throw_error(errc::invalid_argument, "record larger than 4 GiB");
  }
  Shard& s = shards_[db_id];
  const auto kl = static_cast<std::uint32_t>(key.size());
  const auto vl = static_cast<std::uint32_t>(value.size());
  char hdr[kHeader];
  std::memcpy(hdr, &kl, 4);
  std::memcpy(hdr + 4, &vl, 4);
  s.buffer.append(hdr, kHeader);
  s.buffer.append(key);
  s.buffer.append(value);
  const std::size_t n = kHeader + key.size() + value.size();
  s.records += 1;
  s.bytes += n;
  buffered_ += n;
  if (buffered_ >= buffer_bytes_) flush();
}

void ShardSpill::flush() {
  for (std::uint32_t id = 0; id < shards_.size(); ++id) {
    Shard& s = shards_[id];
    if (s.buffer.empty()) continue;
    const auto p = path(id);
    File f(std::fopen(p.c_str(), "ab"));
    if (!f) io_fail("cannot open spill file", p);
    if (std::fwrite(s.buffer.data(), 1, s.buffer.size(), f.get()) != s.buffer.size()) {
      io_fail("cannot write spill file", p);
    }
    if (std::fclose(f.release()) != 0) io_fail("cannot write spill file", p);
    // Keep a modest capacity: releasing it all would make the next round reallocate from zero,
    // keeping all of it would let skewed shards pin memory beyond the budget.
    if (s.buffer.capacity() > 2 * buffer_bytes_ / shards_.size() + 4096) {
      std::string().swap(s.buffer);
    } else {
      s.buffer.clear();
    }
  }
  buffered_ = 0;
}

ShardFileStats build_shard_from_spill(const std::filesystem::path& spill_file,
                                      const std::filesystem::path& db_file, std::uint32_t page_size,
                                      std::size_t memory_limit, std::uint64_t records) {
  const bool auto_page = page_size == 0;
  ShardFileStats stats;
  std::error_code ec;
  const std::uint64_t spill_size = std::filesystem::file_size(spill_file, ec);
  if (ec) throw_error(errc::io_error, "cannot stat spill file " + spill_file.string());

  File f(std::fopen(spill_file.c_str(), "rb"));
  if (!f) io_fail("cannot open spill file", spill_file);

  SqliteShardBuilder builder(db_file, auto_page ? 4096 : page_size);
  // The in-memory footprint: the file, one index entry per record, and stable_sort's buffer.
  const std::uint64_t estimate = spill_size + 2 * records * sizeof(Entry);
  if (estimate <= memory_limit) {
    std::string data(spill_size, '\0');
    if (spill_size > 0 && std::fread(data.data(), 1, spill_size, f.get()) != spill_size) {
      io_fail("cannot read spill file", spill_file);
    }
    std::vector<Entry> entries;
    for (std::size_t pos = 0; pos < data.size();) {
      if (data.size() - pos < kHeader) throw_error(errc::io_error, "truncated spill file");
      std::uint32_t kl, vl;
      std::memcpy(&kl, data.data() + pos, 4);
      std::memcpy(&vl, data.data() + pos + 4, 4);
      pos += kHeader;
      if (data.size() - pos < std::uint64_t{kl} + vl) {
        throw_error(errc::io_error, "truncated spill file");
      }
      entries.push_back(Entry{data.data() + pos, kl, vl});
      pos += std::size_t{kl} + vl;
    }
    stats.input_records = entries.size();
    // Stable: records of one key stay in input order, so the last of each run is the last write.
    std::stable_sort(entries.begin(), entries.end(),
                     [](const Entry& a, const Entry& b) { return a.k() < b.k(); });
    for (std::size_t i = 0; i < entries.size(); ++i) {
      if (i + 1 < entries.size() && entries[i + 1].k() == entries[i].k()) continue;
      builder.put(entries[i].k(), entries[i].v());
      ++stats.distinct_keys;
    }
    stats.sorted = true;
  } else {
    std::string buf;
    for (;;) {
      char hdr[kHeader];
      const std::size_t got = std::fread(hdr, 1, kHeader, f.get());
      if (got == 0) break;
      if (got != kHeader) throw_error(errc::io_error, "truncated spill file");
      std::uint32_t kl, vl;
      std::memcpy(&kl, hdr, 4);
      std::memcpy(&vl, hdr + 4, 4);
      buf.resize(std::size_t{kl} + vl);
      if (!buf.empty() && std::fread(buf.data(), 1, buf.size(), f.get()) != buf.size()) {
        throw_error(errc::io_error, "truncated spill file");
      }
      builder.put(std::string_view(buf).substr(0, kl), std::string_view(buf).substr(kl));
      ++stats.input_records;
    }
  }
  builder.finish();
  stats.page_size = auto_page ? apply_auto_page_size(db_file) : page_size;
  stats.db_bytes = std::filesystem::file_size(db_file);
  return stats;
}

}  // namespace shardy::writer
