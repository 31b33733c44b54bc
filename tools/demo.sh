#!/usr/bin/env bash
# The main job on the embedded default: build shardy (optimised) and run it on a local snapshot,
# no server needed.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$here/tools/setup.sh"
build="$here/build/release"
export CCACHE_BASEDIR="$here" CCACHE_NOHASHDIR=1
cmake -S "$here" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DSHARDY_BUILD_TESTS=OFF -DSHARDY_BUILD_BENCHMARKS=OFF -DSHARDY_BUILD_EXAMPLES=OFF > /dev/null
cmake --build "$build" -j2 --target shardy_cli
"$build/tools/shardy" version
