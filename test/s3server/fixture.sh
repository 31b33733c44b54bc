#!/usr/bin/env bash
# CTest fixture "s3server": starts server.js on free 127.0.0.1 ports in the background and waits
# until it listens (start), or stops it (stop). STATE_DIR receives s3server.json (endpoint, fault
# proxy endpoint, keys, region, buckets, pid), s3server.pid and s3server.log.
# Usage: fixture.sh start|stop STATE_DIR
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cmd=${1:?start|stop}
state=${2:?STATE_DIR}
node=${NODE:-node}
pidfile="$state/s3server.pid"
info="$state/s3server.json"
log="$state/s3server.log"

is_our_server() {
  [ -r "/proc/$1/cmdline" ] && tr '\0' ' ' < "/proc/$1/cmdline" | grep -q "s3server/server.js"
}

# Stops the server recorded in the pid file (a leftover of a crashed run, or this run's).
stop_recorded() {
  [ -f "$pidfile" ] || return 0
  local pid
  pid=$(cat "$pidfile")
  if [ -n "$pid" ] && is_our_server "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do is_our_server "$pid" || break; sleep 0.1; done
    if is_our_server "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
  fi
  rm -f "$pidfile"
}

case "$cmd" in
  start)
    mkdir -p "$state"
    stop_recorded
    rm -rf "$state/data" "$info"
    if [ ! -d "$here/node_modules/s3rver" ]; then
      echo "s3server: $here/node_modules/s3rver is missing; run tools/setup.sh" >&2
      exit 1
    fi
    token="shardy-session-token-$RANDOM$RANDOM"
    # --idle-exit: a server whose run crashed before the cleanup test goes away by itself.
    "$node" --openssl-legacy-provider "$here/server.js" --port 0 --directory "$state/data" \
      --bucket shardy-test --bucket shardy-fixtures --info-file "$info" --count-file "$state/s3server.count" \
      --session-credential "shardy-session-key:shardy-session-secret:$token" \
      --idle-exit 900 </dev/null >"$log" 2>&1 &
    pid=$!
    echo "$pid" > "$pidfile"
    # Node loads s3rver in ~1 s on an idle machine, but much slower on a loaded one.
    for _ in $(seq 1200); do
      [ -f "$info" ] && break
      if ! kill -0 "$pid" 2>/dev/null; then
        echo "s3server: failed to start:" >&2
        cat "$log" >&2
        rm -f "$pidfile"
        exit 1
      fi
      sleep 0.1
    done
    if [ ! -f "$info" ]; then
      echo "s3server: not listening after 120 s" >&2
      cat "$log" >&2
      stop_recorded
      exit 1
    fi
    cat "$info"
    ;;
  stop)
    if [ -f "$state/s3server.count" ]; then echo "s3server: served $(cat "$state/s3server.count") requests"; fi
    stop_recorded
    grep -v '^s3server: listening' "$log" 2>/dev/null | head -50 || true
    ;;
  *)
    echo "usage: fixture.sh start|stop STATE_DIR" >&2
    exit 2
    ;;
esac
