#!/usr/bin/env bash
# S3Client vs curl, same requests, same run, against nginx on 127.0.0.1 serving the same files:
#   1. sequential 1 KiB GETs over one keep-alive connection (requests/s; ratio = shardy / curl)
#   2. whole 64 MiB downloads streamed to /dev/null and to a file (MiB/s), and GETs into
#      memory (curl: -o /dev/null, so curl copies nothing; shown for information)
# Each measurement runs ROUNDS times, curl and shardy alternating; ratios use the medians.
# Builds the Release tree (build/release) if needed. Bounded: fixed request counts, all local.
# Usage: benchmark/s3_vs_curl.sh [SMALL_REQUESTS=20000] [LARGE_DOWNLOADS=5]   (env ROUNDS=3)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
small_n=${1:-20000}
large_n=${2:-5}
rounds=${ROUNDS:-3}
build=${SHARDY_BENCH_BUILD_DIR:-$here/build/release}

export CCACHE_BASEDIR="$here" CCACHE_NOHASHDIR=1
if [ ! -f "$build/build.ninja" ]; then
  cmake -S "$here" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DSHARDY_BUILD_TESTS=OFF \
    -DSHARDY_BUILD_EXAMPLES=OFF -DSHARDY_BUILD_TOOLS=OFF -DSHARDY_BUILD_BENCHMARKS=ON >/dev/null
fi
cmake --build "$build" -j2 --target s3_transfer >/dev/null
bench="$build/benchmark/s3_transfer"

tmp=$(mktemp -d /tmp/shardy-s3bench.XXXXXX)
cleanup() {
  if [ -f "$tmp/nginx.pid" ]; then kill "$(cat "$tmp/nginx.pid")" 2>/dev/null || true; fi
  sleep 0.2
  rm -rf "$tmp"
}
trap cleanup EXIT

# The files: 100 x 1 KiB and one 64 MiB object under bucket "bench".
mkdir -p "$tmp/www/bench/small" "$tmp/out"
for i in $(seq 0 99); do head -c 1024 /dev/urandom > "$tmp/www/bench/small/$(printf 'k%03d' "$i")"; done
head -c $((64 << 20)) /dev/urandom > "$tmp/www/bench/large.bin"
chmod -R a+rX "$tmp"  # nginx workers do not run as root

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat > "$tmp/nginx.conf" <<EOF
worker_processes 1;
pid $tmp/nginx.pid;
error_log $tmp/nginx-error.log warn;
events { worker_connections 256; }
http {
  access_log off;
  default_type application/octet-stream;
  sendfile on;
  tcp_nodelay on;
  keepalive_requests 10000000;
  keepalive_timeout 120s;
  client_body_temp_path $tmp/nginx-tmp/body;
  proxy_temp_path $tmp/nginx-tmp/proxy;
  fastcgi_temp_path $tmp/nginx-tmp/fastcgi;
  uwsgi_temp_path $tmp/nginx-tmp/uwsgi;
  scgi_temp_path $tmp/nginx-tmp/scgi;
  server {
    listen 127.0.0.1:$port;
    root $tmp/www;
  }
}
EOF
mkdir -p "$tmp/nginx-tmp"
nginx -c "$tmp/nginx.conf" -p "$tmp" -e "$tmp/nginx-error.log"
endpoint="http://127.0.0.1:$port"
for _ in $(seq 50); do
  curl -sf -o /dev/null "$endpoint/bench/small/k000" && break
  sleep 0.1
done
curl -sf -o /dev/null "$endpoint/bench/small/k000" || { echo "nginx did not start"; cat "$tmp/nginx-error.log"; exit 1; }

# curl's inputs: one process, every URL in one config file, so that curl keeps one connection.
: > "$tmp/small.curl"
for i in $(seq 0 $((small_n - 1))); do
  printf 'url = "%s/bench/small/k%03d"\noutput = "/dev/null"\n' "$endpoint" $((i % 100)) >> "$tmp/small.curl"
done
: > "$tmp/large.curl"
: > "$tmp/large-file.curl"
for _ in $(seq "$large_n"); do
  printf 'url = "%s/bench/large.bin"\noutput = "/dev/null"\n' "$endpoint" >> "$tmp/large.curl"
  printf 'url = "%s/bench/large.bin"\noutput = "%s/out/curl.bin"\n' "$endpoint" "$tmp" >> "$tmp/large-file.curl"
done

now() { date +%s.%N; }
calc() { awk "BEGIN { printf \"%.9f\", $1 }"; }
# curl_seconds CONFIG EXPECTED_CONNECTS: runs curl, checks every transfer succeeded on one connection.
curl_seconds() {
  local t0 t1 stats
  t0=$(now)
  stats=$(curl -s --fail --config "$1" -w '%{http_code} %{num_connects}\n')
  t1=$(now)
  local bad connects
  bad=$(grep -vc '^200 ' <<<"$stats" || true)
  connects=$(awk '{s += $2} END {print s}' <<<"$stats")
  if [ "$bad" != 0 ]; then echo "curl: $bad failed transfers" >&2; exit 1; fi
  if [ "$connects" != 1 ]; then echo "curl: $connects connections (expected 1, keep-alive)" >&2; exit 1; fi
  calc "$t1 - $t0"
}
shardy_seconds() {
  "$bench" "$endpoint" bench "$@" | sed -n 's/^seconds=\([0-9.]*\).*/\1/p'
}
median() { sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }

declare -a c_small s_small c_large s_large c_file s_file s_null
for r in $(seq "$rounds"); do
  c_small+=("$(curl_seconds "$tmp/small.curl")")
  s_small+=("$(shardy_seconds small "$small_n" small/ 100)")
  c_large+=("$(curl_seconds "$tmp/large.curl")")
  s_large+=("$(shardy_seconds large "$large_n" large.bin)")
  s_null+=("$(shardy_seconds large-file "$large_n" large.bin /dev/null)")
  c_file+=("$(curl_seconds "$tmp/large-file.curl")")
  s_file+=("$(shardy_seconds large-file "$large_n" large.bin "$tmp/out/shardy.bin")")
  echo "round $r: small curl ${c_small[-1]}s shardy ${s_small[-1]}s | 64MiB: curl /dev/null ${c_large[-1]}s, shardy /dev/null ${s_null[-1]}s memory ${s_large[-1]}s | to file curl ${c_file[-1]}s shardy ${s_file[-1]}s"
done
cmp -s "$tmp/out/shardy.bin" "$tmp/www/bench/large.bin" || { echo "shardy's downloaded file differs from the object" >&2; exit 1; }
cmp -s "$tmp/out/curl.bin" "$tmp/www/bench/large.bin" || { echo "curl's downloaded file differs" >&2; exit 1; }

cs=$(printf '%s\n' "${c_small[@]}" | median); ss=$(printf '%s\n' "${s_small[@]}" | median)
cl=$(printf '%s\n' "${c_large[@]}" | median); sl=$(printf '%s\n' "${s_large[@]}" | median)
cf=$(printf '%s\n' "${c_file[@]}" | median); sf=$(printf '%s\n' "${s_file[@]}" | median)
sn=$(printf '%s\n' "${s_null[@]}" | median)
mib=$((64 * large_n))
printf '\nnginx on 127.0.0.1, one keep-alive connection, medians of %d rounds\n' "$rounds"
printf '%-34s %12s %12s %8s\n' "" "curl" "shardy" "ratio"
printf '%-34s %10.0f/s %10.0f/s %7.2fx\n' "1 KiB GETs ($small_n sequential)" \
  "$(calc "$small_n / $cs")" "$(calc "$small_n / $ss")" "$(calc "$cs / $ss")"
printf '%-34s %8.0f MiB/s %6.0f MiB/s %7.2fx\n' "64 MiB download to /dev/null (x$large_n)" \
  "$(calc "$mib / $cl")" "$(calc "$mib / $sn")" "$(calc "$cl / $sn")"
printf '%-34s %8.0f MiB/s %6.0f MiB/s %7.2fx\n' "64 MiB download to file (x$large_n)" \
  "$(calc "$mib / $cf")" "$(calc "$mib / $sf")" "$(calc "$cf / $sf")"
printf '%-34s %8.0f MiB/s %6.0f MiB/s %7.2fx\n' "64 MiB GET into memory (x$large_n)" \
  "$(calc "$mib / $cl")" "$(calc "$mib / $sl")" "$(calc "$cl / $sl")"
echo "(ratio = shardy's rate / curl's rate; targets: >= 1.0x small GETs, >= 0.9x the large"
echo " download; 'into memory' compares shardy filling a 64 MiB string with curl -o /dev/null)"
