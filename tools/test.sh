#!/usr/bin/env bash
# The whole test suite: setup, an AddressSanitizer + UBSan build with g++, then ctest
# (unit, integration against s3rver on 127.0.0.1, conformance against ../shared/fixtures).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$here/tools/setup.sh"
build="${SHARDY_TEST_BUILD_DIR:-$here/build/asan}"
export CCACHE_BASEDIR="$here" CCACHE_NOHASHDIR=1
cmake -S "$here" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Debug \
  -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g" -DSHARDY_SANITIZE=address,undefined \
  -DSHARDY_BUILD_BENCHMARKS=OFF -DSHARDY_BUILD_EXAMPLES=ON > /dev/null
cmake --build "$build" -j2
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
cd "$build" && ctest --output-on-failure -j2 "$@"
