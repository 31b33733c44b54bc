// An exception handed from the thread that caught it to another thread as a value (kind, code,
// text), and thrown there as a new exception of the same kind.
//
// Why not pass the std::exception_ptr (std::future::get, a shared slot): both threads then hold
// the same exception object, and libstdc++ counts its references with atomics inside
// libstdc++.so, which ThreadSanitizer does not instrument. Whichever thread drops the last
// reference frees the object; when that is the thread that threw it (after the other one read
// what() or code()), TSan sees a free unordered with those reads and reports a data race, and a
// halt_on_error run stops there (tools/tsan.sh). Relaying a copy keeps every exception object on
// one thread.
//
// Kinds kept: shardy::error (code + diagnostics: identical to the original), other
// boost::system::system_error (code + the original what()), std::bad_alloc, any other
// std::exception (what(), thrown as std::runtime_error), and anything else (thrown as
// std::runtime_error("unknown exception")).
#pragma once

#include <boost/system/system_error.hpp>
#include <exception>
#include <new>
#include <shardy/error.hpp>
#include <stdexcept>
#include <string>

namespace shardy::detail {

struct RelayedError {
  enum class Kind : unsigned char { shardy, system, bad_alloc, other };
  Kind kind = Kind::other;
  error_code code;
  std::string text;  // diagnostics (shardy), what() (the others)

  /// Copies the exception `e` out (call it on the thread that owns `e`).
  static RelayedError from(const std::exception_ptr& e) {
    RelayedError r;
    try {
      std::rethrow_exception(e);
    } catch (const shardy::error& x) {
      r.kind = Kind::shardy;
      r.code = x.code();
      r.text = x.diagnostics();
    } catch (const boost::system::system_error& x) {
      r.kind = Kind::system;
      r.code = x.code();
      r.text = x.what();
    } catch (const std::bad_alloc&) {
      r.kind = Kind::bad_alloc;
    } catch (const std::exception& x) {
      r.text = x.what();
    } catch (...) {
      r.text = "unknown exception";
    }
    return r;
  }

  /// Throws a new exception of this thread built from the copy.
  [[noreturn]] void raise() const {
    switch (kind) {
      case Kind::shardy:
        throw shardy::error(code, text);
      case Kind::system:
        throw System(code, text);
      case Kind::bad_alloc:
        throw std::bad_alloc();
      case Kind::other:
        break;
    }
    throw std::runtime_error(text);
  }

 private:
  // A system_error whose what() is the original's text (system_error(ec, prefix) would append
  // the message again).
  class System final : public boost::system::system_error {
   public:
    System(error_code ec, std::string what) : system_error(ec), what_(std::move(what)) {}
    const char* what() const noexcept override { return what_.c_str(); }

   private:
    std::string what_;
  };
};

}  // namespace shardy::detail
