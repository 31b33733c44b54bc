// Runs a writer-layer coroutine and completes a type-erased handler with (error_code, T): the
// shared tail of the public async_* entry points of the writer and cleanup.
#pragma once

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/system/system_error.hpp>
#include <exception>
#include <shardy/error.hpp>
#include <utility>

namespace shardy::detail {

template <class T>
void co_spawn_erased(boost::asio::any_io_executor ex, boost::asio::awaitable<T> op,
                     boost::asio::any_completion_handler<void(error_code, T)> handler) {
  boost::asio::co_spawn(ex, std::move(op),
                        [h = std::move(handler)](std::exception_ptr e, T r) mutable {
                          error_code ec;
                          if (e) {
                            try {
                              std::rethrow_exception(e);
                            } catch (const shardy::error& se) {
                              ec = se.code();
                            } catch (const boost::system::system_error& se) {
                              ec = se.code();
                            } catch (...) {
                              ec = make_error_code(errc::io_error);
                            }
                          }
                          std::move(h)(ec, std::move(r));
                        });
}

}  // namespace shardy::detail
