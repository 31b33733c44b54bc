#!/usr/bin/env bash
# Writer throughput and memory: `shardy build` of N records (default 10 million; 16-byte string
# keys, 100-byte values, 64 shards) from a CSV file to a local directory, in a Release build.
# Reports records/s and peak RSS (/usr/bin/time -v), and, as a same-run baseline, the sqlite3
# shell importing the same CSV into one WITHOUT ROWID table with the writer's pragmas.
#
#   benchmark/writer_build.sh [records] [work-dir]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
n=${1:-10000000}
work=${2:-/tmp/shardy-writer-bench}
build="$here/build/release"
export CCACHE_BASEDIR="$here" CCACHE_NOHASHDIR=1
cmake -S "$here" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DSHARDY_BUILD_TESTS=OFF -DSHARDY_BUILD_BENCHMARKS=OFF -DSHARDY_BUILD_EXAMPLES=OFF > /dev/null
cmake --build "$build" -j2 --target shardy_cli > /dev/null
shardy="$build/tools/shardy"

mkdir -p "$work"
input="$work/input-$n.csv"
if [ ! -s "$input" ]; then
  echo "generating $n records into $input" >&2
  python3 - "$n" "$input" <<'PY'
import random, sys
n, path = int(sys.argv[1]), sys.argv[2]
rng = random.Random(20261122)
alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
pool = "".join(rng.choices(alphabet, k=1 << 20))
mask = (1 << 64) - 1
with open(path, "w", buffering=1 << 22) as f:
    f.write("key,value\n")
    for start in range(0, n, 100000):
        rows = []
        for i in range(start, min(n, start + 100000)):
            key = "%016x" % ((i * 0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019) & mask)  # 16 bytes
            off = (i * 7919) % ((1 << 20) - 100)
            rows.append(key + "," + ("v%09d-" % i) + pool[off:off + 89] + "\n")  # 100 bytes
        f.write("".join(rows))
PY
fi

rss_and_secs() {  # parses /usr/bin/time -v output: "<max_rss_kib> <elapsed_s>"
  awk -F': ' '/Maximum resident set size/ {rss=$2}
              /Elapsed \(wall clock\)/ {n=split($2,t,":"); s=0; for(i=1;i<=n;i++) s=s*60+t[i]}
              END {print rss, s}' "$1"
}

rm -rf "$work/snap" "$work/baseline.db"
/usr/bin/time -v "$shardy" --prefix "file://$work/snap" build --input "$input" \
  --key-field key --value-field value --key-type str --key-encoding utf8 --num-dbs 64 \
  --run-id bench --quiet > "$work/build.json" 2> "$work/build.time"
read -r rss secs < <(rss_and_secs "$work/build.time")

/usr/bin/time -v sqlite3 "$work/baseline.db" <<SQL > /dev/null 2> "$work/baseline.time"
PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA cache_size=-2000;
PRAGMA locking_mode=EXCLUSIVE; PRAGMA temp_store=MEMORY;
CREATE TABLE kv (k BLOB PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID;
.import --csv --skip 1 $input kv
SQL
read -r brss bsecs < <(rss_and_secs "$work/baseline.time")

python3 - "$n" "$secs" "$rss" "$bsecs" "$brss" "$work/build.json" <<'PY'
import json, sys
n, secs, rss, bsecs, brss, path = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
b = json.load(open(path))
print(json.dumps({
  "records": n, "num_dbs": 64,
  "shardy_build_s": secs, "shardy_records_per_s": round(n / secs),
  "shardy_peak_rss_mib": round(rss / 1024, 1),
  "sqlite3_import_s": bsecs, "sqlite3_import_records_per_s": round(n / bsecs),
  "sqlite3_import_peak_rss_mib": round(brss / 1024, 1),
  "throughput_ratio_shardy_vs_sqlite3_import": round(bsecs / secs, 2),
  "routing_ms": b["routing_ms"], "write_ms": b["write_ms"], "manifest_ms": b["manifest_ms"],
  "shard_bytes": b["shard_bytes"], "sidecar_bytes": b["sidecar_bytes"],
}, indent=1))
PY
