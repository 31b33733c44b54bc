// The shardy error a call throws: errc{} when it returns normally, the errc of the shardy::error
// it throws otherwise (any other exception propagates and fails the test).
#pragma once

#include <shardy/error.hpp>

namespace shardy::test {

template <typename F>
errc error_of(F&& f) {
  try {
    f();
  } catch (const error& e) {
    return static_cast<errc>(e.code().value());
  }
  return errc{};
}

}  // namespace shardy::test
