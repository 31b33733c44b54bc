#!/usr/bin/env bash
# ThreadSanitizer run of the reader's concurrency tests: a separate build (TSan cannot be mixed
# with ASan) in build/tsan with -fsanitize=thread, then the unit tests that hammer one reader
# from many threads/coroutines:
#   *Concurrent*        test/unit/reader_concurrency_test.cpp (multi_get from threads and from 64
#                       coroutines, close during calls, refresh racing handles and scans)
#   *RefreshUnderLoad*  threads calling get/multi_get while another thread keeps refreshing
#                       between two snapshots (every answer from exactly one snapshot)
#   *ManyThreads*       sync get from several threads
#   ProcessesSharingACacheDownloadOnce, ConcurrentLookupsOnOneShard*  (download cache, shard pool)
#   RangeConcurrent*    range tier: threads (Reader) and 32 coroutines (AsyncReader) looking up on
#                       the same range shards, cold then warm; and refresh under load in range
#                       mode (Reader threads, AsyncReader coroutines) while a thread flips
#                       between two snapshots (test/unit/range_concurrency_test.cpp; *Concurrent*
#                       matches these too, named here so the list says what runs)
#   RangeInflight*      range page source: N threads missing one page share one GET, failures
#                       wake every waiter, all pages read at once by 6 threads
#                       (test/unit/range_inflight_test.cpp)
# No suppressions: a report fails the run (halt_on_error). Extra arguments go to the test binary
# (e.g. --gtest_repeat=5).
#
# One pattern to avoid in the code under test: handing one exception object between threads
# (std::future::get rethrowing an exception another thread made, an exception_ptr in a shared
# slot). libstdc++ counts exception references in libstdc++.so (eh_ptr.cc, acq_rel atomics) and
# TSan does not instrument it, so when the thread that made the exception drops the last
# reference and frees it, TSan sees that free unordered with the other thread's earlier reads
# (what(), code(), the vptr) and reports a race, though the program is correct. That is how
# RangeInflight.AFailedSharedGetFailsEveryWaitingRead aborted this run (range page GETs awaited
# through use_future); hand errors over as values instead (code + text, rebuilt as a new
# exception on the receiving thread: lib/core/relayed_error.hpp, range_source.cpp page_get).
# The same false positive comes from test code that turns a failing async call's error_code into
# an exception on the completing thread (Boost.Asio's use_future, or the wait_for helper of
# test/unit/reader_snapshot_util.hpp) and rethrows it on the test's thread: the completing
# thread may drop the last reference (its exception_ptr temporary, asio's promise) after the
# test's catch block read code(). The whole unit suite under TSan (halt_on_error=0, 230 tests)
# showed 2 such reports in one run and 3 in another, all outside this filter and all this
# pattern, in tests that expect an error:
# ReaderFixture.UnopenedReaderFails_C02 and AsyncGetValuesAbsentAndEmpty_D01_D04
# (reader_async_test.cpp, use_future), RowsFixture.VectorOnlySnapshotRefusedAtOpenAndRefresh_A13
# and PoolExhaustionFailsAfterTheCheckoutTimeout_B04 (reader_rows_test.cpp, wait_for). The
# library itself hands those errors out as error_codes; the reports are not suppressed, those
# tests are just not in this run.
#
# Cost: the cold build (library + unit tests, nothing in ccache) took 41 min on the shared 2-core
# machine at load ~12 (other builds running); the test run (22 tests) takes 14-20 s. That is too
# much to add to tools/test.sh / CI cold, so it is a separate command: run it after touching
# reader/shard concurrency code.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build="${SHARDY_TSAN_BUILD_DIR:-$here/build/tsan}"
export CCACHE_BASEDIR="$here" CCACHE_NOHASHDIR=1
cmake -S "$here" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Debug \
  -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g" -DSHARDY_SANITIZE=thread \
  -DSHARDY_BUILD_BENCHMARKS=OFF -DSHARDY_BUILD_EXAMPLES=OFF -DSHARDY_BUILD_TOOLS=OFF > /dev/null
cmake --build "$build" -j2 --target shardy_unit_tests
filter='*Concurrent*:*RefreshUnderLoad*:*ManyThreads*:*ProcessesSharingACacheDownloadOnce*:RangeConcurrent*:RangeInflight*'
export TSAN_OPTIONS="halt_on_error=1:abort_on_error=1:second_deadlock_stack=1:history_size=4${TSAN_OPTIONS:+:$TSAN_OPTIONS}"
run=("$build/test/shardy_unit_tests" "--gtest_filter=$filter" "$@")
# gcc 12's TSan runtime can fail to map its shadow memory under high ASLR entropy
# (vm.mmap_rnd_bits > 28 on newer kernels); without address randomisation it always can.
if command -v setarch > /dev/null && setarch "$(uname -m)" -R true 2> /dev/null; then
  run=(setarch "$(uname -m)" -R "${run[@]}")
fi
echo "tsan: ${run[*]}"
"${run[@]}"
