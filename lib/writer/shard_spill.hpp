// Larger-than-memory input for the writer: routed records are appended to one spill file per
// shard through a bounded in-memory buffer, then each shard is built from its spill file.
// Blocking (local disk).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace shardy::writer {

/// Per-shard spill files `<dir>/spill-<db_id>.bin`. Records are length-prefixed (host order,
/// never leaves this machine) and kept in input order. Not thread-safe.
class ShardSpill {
 public:
  /// `buffer_bytes`: the total of the in-memory buffers; when exceeded, every buffer is appended
  /// to its file.
  ShardSpill(std::filesystem::path dir, std::uint32_t num_dbs, std::size_t buffer_bytes);

  void add(std::uint32_t db_id, std::string_view key, std::string_view value);
  /// Appends every buffered record to its file (call once before reading the files).
  void flush();

  std::uint32_t num_dbs() const noexcept { return static_cast<std::uint32_t>(shards_.size()); }
  std::uint64_t records(std::uint32_t db_id) const { return shards_[db_id].records; }
  /// Bytes written to (or buffered for) the shard's spill file.
  std::uint64_t bytes(std::uint32_t db_id) const { return shards_[db_id].bytes; }
  std::filesystem::path path(std::uint32_t db_id) const;

 private:
  struct Shard {
    std::string buffer;
    std::uint64_t records = 0;
    std::uint64_t bytes = 0;
  };
  std::filesystem::path dir_;
  std::size_t buffer_bytes_;
  std::size_t buffered_ = 0;
  std::vector<Shard> shards_;
};

struct ShardFileStats {
  std::uint64_t input_records = 0;  ///< records read from the spill (duplicates included)
  std::uint64_t distinct_keys = 0;  ///< rows in `kv` (0 when streamed: not counted)
  std::uint64_t db_bytes = 0;       ///< size of the finished file
  std::uint32_t page_size = 0;      ///< of the finished file
  bool sorted = false;              ///< built in key order (false: streamed in input order)
};

/// Builds `db_file` from a spill file holding `records` records. When the spill (plus two 16-byte
/// index entries per record) fits in `memory_limit`, it is loaded, stable-sorted by key keeping the
/// last write of every key, and inserted in key order; otherwise records are streamed in input
/// order with INSERT OR REPLACE. Either way the last write of a key wins. `page_size`: a supported
/// size, or 0 for "auto" (build at 4096, then apply_auto_page_size).
ShardFileStats build_shard_from_spill(const std::filesystem::path& spill_file,
                                      const std::filesystem::path& db_file, std::uint32_t page_size,
                                      std::size_t memory_limit, std::uint64_t records);

}  // namespace shardy::writer
