#!/bin/sh
# Installs the Debian packages usersd needs that are missing; runs apt-get
# update only when something is actually missing.
#   scripts/install-deps.sh          build and run
#   scripts/install-deps.sh test     also what the tests use
#   scripts/install-deps.sh bench    also what the benchmark uses
#   scripts/install-deps.sh fuzz     also clang and its libFuzzer/sanitizer runtimes (make fuzz)
set -eu
pkgs="gcc make cmake pkg-config libmicrohttpd-dev libjansson-dev libsqlite3-dev libpq-dev libsodium-dev"
case "${1:-}" in
test)
    pkgs="$pkgs libcmocka-dev python3 curl postgresql chromium"
    # The browser tests run playwright-core on Node.js 18+ with npm: Debian's
    # nodejs only when there is none as good (it may come from elsewhere).
    major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
    if ! command -v npm >/dev/null 2>&1 || [ "$major" -lt 18 ]; then pkgs="$pkgs nodejs npm"; fi
    ;;
bench) pkgs="$pkgs python3 curl wrk nginx postgresql" ;;
fuzz) pkgs="$pkgs clang libclang-rt-14-dev" ;;
esac
missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
    echo "usersd: missing Debian packages:$missing" >&2
    echo "usersd: run as root, or: sudo apt-get install$missing" >&2
    exit 1
fi
echo "usersd: installing$missing" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >&2
