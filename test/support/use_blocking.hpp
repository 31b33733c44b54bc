// A completion token for tests that call an asynchronous API from a plain thread and wait:
// `reader.async_get(key, test::use_blocking)` blocks until the call completes and returns its
// value (void, the one value, or a tuple of several), or throws on the CALLING thread:
// boost::system::system_error(ec) for an error_code, and for a std::exception_ptr completion
// (co_spawn) a copy of the exception (core/relayed_error.hpp: a shardy::error keeps its code
// and diagnostics).
//
// Why not asio::use_future (or a promise::set_exception): the exception object is then made on
// the completing thread and shared with the waiting one. libstdc++ counts exception references
// inside libstdc++.so, which ThreadSanitizer does not instrument, so when the completing thread
// drops the last reference after the test has read what() or code(), TSan reports the free as a
// race with that read. Only the error as a value and the result cross threads here, through a
// promise whose hand-off TSan sees.
#pragma once

#include <boost/asio/async_result.hpp>
#include <boost/system/system_error.hpp>
#include <exception>
#include <future>
#include <optional>
#include <shardy/error.hpp>
#include <tuple>
#include <type_traits>
#include <utility>

#include "core/relayed_error.hpp"

namespace shardy::test {

struct use_blocking_t {};
inline constexpr use_blocking_t use_blocking{};

namespace blocking_detail {

// What one completion hands to the waiting thread: the error as a value, else the results.
template <typename... Args>
struct Outcome {
  error_code code;
  std::optional<detail::RelayedError> exception;
  std::optional<std::tuple<std::decay_t<Args>...>> values;
};

// Starts `initiation` with a handler that fills a promise, waits, and returns or throws here.
template <typename Error, typename... Args, typename Initiation, typename... InitArgs>
auto wait(Initiation&& initiation, InitArgs&&... args) {
  std::promise<Outcome<Args...>> done;
  auto result = done.get_future();
  std::forward<Initiation>(initiation)(
      [&done](Error e, Args... a) {
        Outcome<Args...> o;
        if constexpr (std::is_same_v<Error, std::exception_ptr>) {
          if (e) o.exception.emplace(detail::RelayedError::from(e));  // on the thread owning e
        } else {
          o.code = e;
        }
        if (!o.code && !o.exception) o.values.emplace(std::move(a)...);
        done.set_value(std::move(o));
      },
      std::forward<InitArgs>(args)...);
  auto o = result.get();
  if (o.exception) o.exception->raise();
  if (o.code) throw boost::system::system_error(o.code);
  if constexpr (sizeof...(Args) == 1)
    return std::get<0>(std::move(*o.values));
  else if constexpr (sizeof...(Args) > 1)
    return std::move(*o.values);
}

}  // namespace blocking_detail
}  // namespace shardy::test

template <typename Error, typename... Args>
requires std::is_same_v<Error, boost::system::error_code> ||
    std::is_same_v<Error, std::exception_ptr>
struct boost::asio::async_result<shardy::test::use_blocking_t, void(Error, Args...)> {
  template <typename Initiation, typename... InitArgs>
  static auto initiate(Initiation&& initiation, shardy::test::use_blocking_t, InitArgs&&... args) {
    return shardy::test::blocking_detail::wait<Error, Args...>(std::forward<Initiation>(initiation),
                                                               std::forward<InitArgs>(args)...);
  }
};
