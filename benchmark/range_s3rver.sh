#!/usr/bin/env bash
# Range tier, counted (issue 5 bar): `shardy build` (Release CLI) of a snapshot whose shards are
# each >= 64 MiB, uploaded to the SigV4-verifying s3rver wrapper (test/s3server) on 127.0.0.1;
# then benchmark/range_lookup_bench.cpp does cold point lookups of random keys through the range
# tier, with and without the sidecar, and reports S3 requests per cold lookup from the client's
# own metrics cross-checked per lookup against the server's count (GET /_shardy/stats), warm
# requests (0 expected), and the p50 cold-lookup latency as a ratio to one raw ranged GET of a
# single page with the same S3 client in the same run. See range_lookup_bench.cpp for what
# "cold" means exactly.
#
#   benchmark/range_s3rver.sh [rows=1200000] [lookups=100] [large_lookups=20] [work-dir] [max-seconds=600]
#
# Every step is bounded in time (server start 200 s, build + upload 900 s, each lookup mode
# max-seconds: a mode that runs longer stops and prints what it measured, marked "cut short");
# the bench prints progress to stderr every 20 lookups.
#
# Why the first run (2026-12-05, session 2) timed out: the test server's front end fetched the
# whole object from s3rver for every ranged GET and skipped to the range, so one 4 KiB page GET
# of an 88 MiB shard cost ~0.16 s on average (the bytes before the offset); a cold lookup with the
# sidecar also opens a fresh Reader (probe + 300 KB sidecar + ~70 interior-chain GETs), ~10 s
# each. test/s3server/server.js now asks s3rver for just the bounded range: a page GET is ~3 ms.
#
# Measured (2026-12-05 09:22 UTC, `benchmark/range_s3rver.sh 1200000 300 60`, Release, g++ 12.2,
# 2 cores at load 4.7, whole run 2 min 32 s): 2 shards of 87.9 and 88.0 MiB (184,442,880 bytes,
# sidecars 596,299 bytes), build + upload 12.4 s; raw 1-page GET p50 3.04 ms (3.13 ms without).
#   with sidecar     small values (300): 1.003 requests/cold lookup (client = server, 0 lookups
#                    differing), max 2; cold p50 3.06 ms = 1.01x one page GET
#                    large values (60):  1.867 (1 request: 8, 2: 52); p50 5.73 ms = 1.89x
#                    all 360 as sampled (1 in 6 large; 1 in 997 keys is large): 1.147, p50 1.06x
#                    warm: 0 requests (client and server); open: 72.7 requests, p50 240 ms
#   without sidecar  small 6.750 (max 20), p50 4.46x; large 12.033 (max 23), p50 9.17x;
#                    all 7.631, p50 5.68x; warm 0; open 3 requests, p50 8.7 ms
# Again at 10:49 UTC (in-flight de-dup, and parallel chain fetches at open: since reverted), load 6.4-8.9:
# every count identical (1.003 / 1.867 / 1.147 with, 6.750 / 12.033 / 7.631 without, warm 0);
# raw GET p50 3.55 ms; small p50 1.04x, large 1.95x, all 1.34x (p90s 6-10x higher than at load
# 4.7). Open p50 did not drop (248 ms vs 240 ms) with 8 chain GETs in flight; likely (not
# verified) because the test server is one node process (front end + s3rver) on a busy machine.
#
# Data: int keys 0..rows-1 (u64be), 2 shards; value = "v%011d-" % key repeated to 100 bytes, or
# to 8000 + key*7919 % 24000 bytes (overflow chains) when key % 997 == 0.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
rows=${1:-1200000}
lookups=${2:-100}
large=${3:-20}
work=${4:-/tmp/shardy-range-bench}
max_seconds=${5:-600}
build="$here/build/rel"
export CCACHE_BASEDIR="$here" CCACHE_NOHASHDIR=1
cmake -S "$here" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DSHARDY_BUILD_TESTS=OFF \
  -DSHARDY_BUILD_BENCHMARKS=ON -DSHARDY_BUILD_EXAMPLES=OFF > /dev/null
cmake --build "$build" -j2 --target shardy_cli range_lookup_bench > /dev/null
shardy="$build/tools/shardy"
bench="$build/benchmark/range_lookup_bench"

mkdir -p "$work"
input="$work/input-$rows.jsonl"
if [ ! -s "$input" ]; then
  echo "generating $rows records into $input" >&2
  python3 - "$rows" "$input" <<'PY'
import sys
n, path = int(sys.argv[1]), sys.argv[2]
with open(path, "w", buffering=1 << 22) as f:
    for start in range(0, n, 100000):
        out = []
        for k in range(start, min(n, start + 100000)):
            unit = "v%011d-" % k
            length = 8000 + k * 7919 % 24000 if k % 997 == 0 else 100
            value = (unit * (length // len(unit) + 1))[:length]
            out.append('{"key": %d, "value": "%s"}\n' % (k, value))
        f.write("".join(out))
PY
fi

state="$work/s3server"
cleanup() { bash "$here/test/s3server/fixture.sh" stop "$state" > /dev/null 2>&1 || true; }
trap cleanup EXIT
timeout 200 bash "$here/test/s3server/fixture.sh" start "$state" > /dev/null
info="$state/s3server.json"
field() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$info" "$1"; }
export AWS_ACCESS_KEY_ID=$(field access_key) AWS_SECRET_ACCESS_KEY=$(field secret_key)
export AWS_REGION=$(field region)
endpoint=$(field endpoint)
prefix="s3://shardy-test/range-bench"

echo "== shardy build: $rows records, 2 shards -> $prefix on $endpoint" >&2
start=$(date +%s.%N)
timeout 900 "$shardy" --prefix "$prefix" --endpoint "$endpoint" --path-style build \
  --input "$input" --key-field key --value-field value --key-type int --num-dbs 2 \
  --run-id rangebench --quiet
echo "build + upload: $(echo "$(date +%s.%N) - $start" | bc) s" >&2

"$shardy" --prefix "$prefix" --endpoint "$endpoint" --path-style --access auto info
timeout $((2 * max_seconds + 300)) "$bench" --info "$info" --prefix "$prefix" --rows "$rows" \
  --lookups "$lookups" --large-lookups "$large" --max-seconds "$max_seconds"
