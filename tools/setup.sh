#!/usr/bin/env bash
# Installs everything shardy needs on Debian 12 (idempotent; quick when all is present).
# Usage: tools/setup.sh            (as root, or with sudo available)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

pkgs=(
  g++ clang cmake ninja-build pkg-config curl ccache git
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libssl-dev librocksdb-dev libsqlite3-dev sqlite3 libxxhash-dev libzstd-dev
  libspdlog-dev libfmt-dev
  libgtest-dev libgmock-dev libbenchmark-dev libcli11-dev
  python3-botocore nginx-light
)
# Node.js: the machine image ships it (with npm); fall back to Debian's packages.
command -v node >/dev/null 2>&1 || pkgs+=(nodejs)
command -v npm >/dev/null 2>&1 || pkgs+=(npm)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# npm test dependency (s3rver), pinned by test/s3server/package-lock.json; npm ci runs again
# whenever the lock file changes.
s3dir="$here/test/s3server"
if [ -f "$s3dir/package-lock.json" ]; then
  want=$(sha256sum < "$s3dir/package-lock.json" | cut -d' ' -f1)
  have=$(cat "$s3dir/node_modules/.shardy-lock-sha256" 2>/dev/null || true)
  if [ "$want" != "$have" ] || [ ! -d "$s3dir/node_modules/s3rver" ]; then
    echo "setup: npm ci in test/s3server"
    (cd "$s3dir" && npm ci --no-audit --no-fund --loglevel=error)
    echo "$want" > "$s3dir/node_modules/.shardy-lock-sha256"
  fi
fi
echo "setup: ok"
