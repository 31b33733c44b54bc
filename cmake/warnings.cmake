# Warnings apply to shardy's own targets only.
function(shardy_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wno-missing-field-initializers
    # g++ 12 false positive on Asio's awaitable frame operator delete (coroutine frames).
    $<$<CXX_COMPILER_ID:GNU>:-Wno-mismatched-new-delete>)
endfunction()
