// A read-only SQLite VFS over one RangeSource, registered under a unique name for as long as the
// object lives (no global state beyond sqlite3_vfs_register / sqlite3_vfs_unregister).
//
// It opens only the main database (journals, WAL and temp files are refused: the shard is
// immutable, xAccess says nothing else exists), reports SQLITE_IOCAP_IMMUTABLE so SQLite takes
// no locks and never checks the change counter, makes locks no-ops, and serves xRead from the
// RangeSource (short reads are zero-filled, as SQLite requires). Dynamic-library and OS calls
// (xDl*, randomness, sleep, time) go to the default VFS (toolchain.md: null xDl* crash
// extension loading).
//
// A failed xRead returns SQLITE_IOERR_READ; the shardy::error behind it (shard_changed, a
// timeout...) is kept for the calling thread: take_last_read_error() returns it.
#pragma once

#include <sqlite3.h>

#include <exception>
#include <memory>
#include <string>

#include "shard/range_source.hpp"

namespace shardy::shard {

class RangeVfs {
 public:
  explicit RangeVfs(std::shared_ptr<RangeSource> source);
  ~RangeVfs();
  RangeVfs(const RangeVfs&) = delete;
  RangeVfs& operator=(const RangeVfs&) = delete;

  /// The registered VFS name (pass it to sqlite3_open_v2).
  const std::string& name() const noexcept { return name_; }
  /// The file name to open through this VFS.
  static constexpr const char* file_name = "shard.db";
  RangeSource& source() const noexcept { return *source_; }

  /// The error of the last failed xRead on this thread (cleared by the call), or null.
  static std::exception_ptr take_last_read_error() noexcept;

 private:
  // What the VFS callbacks reach through sqlite3_vfs::pAppData.
  struct Context {
    sqlite3_vfs* default_vfs;
    RangeSource* source;
  };

  std::shared_ptr<RangeSource> source_;
  std::string name_;
  Context context_{};
  sqlite3_vfs vfs_{};
};

}  // namespace shardy::shard
