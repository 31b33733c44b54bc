#include "shard/range_vfs.hpp"

#include <cstdio>
#include <cstring>
#include <shardy/error.hpp>

namespace shardy::shard {

namespace {

// The error behind the last failed xRead, per thread (SQLite only passes back an int code; the
// query that called xRead runs on the same thread and collects it right after).
thread_local std::exception_ptr t_last_read_error;

struct RangeFile {
  sqlite3_file base;  // must be first
  RangeSource* source;
};

RangeSource& source_of(sqlite3_file* f) { return *reinterpret_cast<RangeFile*>(f)->source; }
// pAppData points at {default VFS, RangeSource*} (RangeVfs::Context; layout mirrored here).
struct VfsContext {
  sqlite3_vfs* default_vfs;
  RangeSource* source;
};
sqlite3_vfs* default_vfs(sqlite3_vfs* v) {
  return static_cast<VfsContext*>(v->pAppData)->default_vfs;
}

int x_close(sqlite3_file*) { return SQLITE_OK; }

int x_read(sqlite3_file* f, void* buf, int amt, sqlite3_int64 offset) {
  if (amt < 0 || offset < 0) return SQLITE_IOERR_READ;
  auto* out = static_cast<char*>(buf);
  try {
    const std::size_t got =
        source_of(f).read(out, static_cast<std::size_t>(amt), static_cast<std::uint64_t>(offset));
    if (got < static_cast<std::size_t>(amt)) {
      std::memset(out + got, 0, static_cast<std::size_t>(amt) - got);  // SQLite requires it
      return SQLITE_IOERR_SHORT_READ;
    }
    return SQLITE_OK;
  } catch (...) {
    t_last_read_error = std::current_exception();
    return SQLITE_IOERR_READ;
  }
}

int x_write(sqlite3_file*, const void*, int, sqlite3_int64) { return SQLITE_READONLY; }
int x_truncate(sqlite3_file*, sqlite3_int64) { return SQLITE_READONLY; }
int x_sync(sqlite3_file*, int) { return SQLITE_OK; }
int x_file_size(sqlite3_file* f, sqlite3_int64* size) {
  *size = static_cast<sqlite3_int64>(source_of(f).size());
  return SQLITE_OK;
}
int x_lock(sqlite3_file*, int) { return SQLITE_OK; }
int x_unlock(sqlite3_file*, int) { return SQLITE_OK; }
int x_check_reserved_lock(sqlite3_file*, int* out) {
  *out = 0;
  return SQLITE_OK;
}
int x_file_control(sqlite3_file*, int, void*) { return SQLITE_NOTFOUND; }
int x_sector_size(sqlite3_file* f) { return static_cast<int>(source_of(f).page_size()); }
int x_device_characteristics(sqlite3_file*) { return SQLITE_IOCAP_IMMUTABLE; }

const sqlite3_io_methods io_methods = {
    1,  // iVersion: no shared memory, no mmap
    x_close,
    x_read,
    x_write,
    x_truncate,
    x_sync,
    x_file_size,
    x_lock,
    x_unlock,
    x_check_reserved_lock,
    x_file_control,
    x_sector_size,
    x_device_characteristics,
    nullptr,
    nullptr,
    nullptr,
    nullptr,
    nullptr,
    nullptr,
};

int x_open(sqlite3_vfs* vfs, const char*, sqlite3_file* f, int flags, int* out_flags) {
  f->pMethods = nullptr;
  if (!(flags & SQLITE_OPEN_MAIN_DB)) return SQLITE_CANTOPEN;  // no journals, WAL or temp files
  if (flags & (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE)) return SQLITE_READONLY;
  reinterpret_cast<RangeFile*>(f)->source = static_cast<VfsContext*>(vfs->pAppData)->source;
  f->pMethods = &io_methods;
  if (out_flags) *out_flags = SQLITE_OPEN_READONLY;
  return SQLITE_OK;
}

int x_delete(sqlite3_vfs*, const char*, int) { return SQLITE_READONLY; }
int x_access(sqlite3_vfs*, const char*, int, int* out) {
  *out = 0;
  return SQLITE_OK;
}
int x_full_pathname(sqlite3_vfs*, const char* name, int n, char* out) {
  if (std::snprintf(out, static_cast<std::size_t>(n), "%s", name) >= n) return SQLITE_CANTOPEN;
  return SQLITE_OK;
}
void* x_dl_open(sqlite3_vfs* v, const char* name) {
  return default_vfs(v)->xDlOpen(default_vfs(v), name);
}
void x_dl_error(sqlite3_vfs* v, int n, char* msg) {
  default_vfs(v)->xDlError(default_vfs(v), n, msg);
}
void (*x_dl_sym(sqlite3_vfs* v, void* h, const char* sym))(void) {
  return default_vfs(v)->xDlSym(default_vfs(v), h, sym);
}
void x_dl_close(sqlite3_vfs* v, void* h) { default_vfs(v)->xDlClose(default_vfs(v), h); }
int x_randomness(sqlite3_vfs* v, int n, char* out) {
  return default_vfs(v)->xRandomness(default_vfs(v), n, out);
}
int x_sleep(sqlite3_vfs* v, int us) { return default_vfs(v)->xSleep(default_vfs(v), us); }
int x_current_time(sqlite3_vfs* v, double* t) {
  return default_vfs(v)->xCurrentTime(default_vfs(v), t);
}
int x_get_last_error(sqlite3_vfs* v, int n, char* out) {
  return default_vfs(v)->xGetLastError ? default_vfs(v)->xGetLastError(default_vfs(v), n, out) : 0;
}
int x_current_time_int64(sqlite3_vfs* v, sqlite3_int64* t) {
  sqlite3_vfs* d = default_vfs(v);
  if (d->iVersion >= 2 && d->xCurrentTimeInt64) return d->xCurrentTimeInt64(d, t);
  double now = 0;
  const int rc = d->xCurrentTime(d, &now);
  *t = static_cast<sqlite3_int64>(now * 86400000.0);
  return rc;
}

}  // namespace

RangeVfs::RangeVfs(std::shared_ptr<RangeSource> source) : source_(std::move(source)) {
  sqlite3_vfs* def = sqlite3_vfs_find(nullptr);
  if (!def) throw_error(errc::shard_error, "SQLite has no default VFS");
  char buf[64];
  std::snprintf(buf, sizeof buf, "shardy-range-%p", static_cast<void*>(this));
  name_ = buf;
  vfs_.iVersion = 2;
  vfs_.szOsFile = sizeof(RangeFile);
  vfs_.mxPathname = def->mxPathname;
  vfs_.zName = name_.c_str();
  context_ = Context{def, source_.get()};
  static_assert(sizeof(Context) == sizeof(VfsContext));
  vfs_.pAppData = &context_;
  vfs_.xOpen = x_open;
  vfs_.xDelete = x_delete;
  vfs_.xAccess = x_access;
  vfs_.xFullPathname = x_full_pathname;
  vfs_.xDlOpen = x_dl_open;
  vfs_.xDlError = x_dl_error;
  vfs_.xDlSym = x_dl_sym;
  vfs_.xDlClose = x_dl_close;
  vfs_.xRandomness = x_randomness;
  vfs_.xSleep = x_sleep;
  vfs_.xCurrentTime = x_current_time;
  vfs_.xGetLastError = x_get_last_error;
  vfs_.xCurrentTimeInt64 = x_current_time_int64;
  if (const int rc = sqlite3_vfs_register(&vfs_, 0); rc != SQLITE_OK)
    throw_error(errc::shard_error,
                "cannot register SQLite VFS " + name_ + ": " + sqlite3_errstr(rc));
}

RangeVfs::~RangeVfs() { sqlite3_vfs_unregister(&vfs_); }

std::exception_ptr RangeVfs::take_last_read_error() noexcept {
  return std::exchange(t_last_read_error, nullptr);
}

}  // namespace shardy::shard
