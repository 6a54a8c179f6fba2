#!/bin/sh
# Installs the Debian packages usersd needs that are missing; runs apt-get
# update only when something is actually missing.
#   scripts/install-deps.sh          build and run
#   scripts/install-deps.sh test     also what the tests use
#   scripts/install-deps.sh soak     the tests' and pg_auto_failover (make soak)
#   scripts/install-deps.sh bench    also what the benchmark uses
#   scripts/install-deps.sh fuzz     also clang and its libFuzzer/sanitizer runtimes (make fuzz)
set -eu
pkgs="gcc make cmake pkg-config libmicrohttpd-dev libjansson-dev libsqlite3-dev libpq-dev libsodium-dev"
case "${1:-}" in
test | soak)
    pkgs="$pkgs libcmocka-dev python3 curl postgresql chromium"
    # The Python client's test pip-installs it into a fresh venv with no
    # network: setuptools and wheel come from Debian's wheels.
    pkgs="$pkgs python3-venv python3-wheel-whl"
    [ "$1" = soak ] && pkgs="$pkgs postgresql-15-auto-failover"
    # The browser tests run playwright-core on Node.js 18+ with npm: Debian's
    # nodejs only when there is none as good (it may come from elsewhere).
    major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
    if ! command -v npm >/dev/null 2>&1 || [ "$major" -lt 18 ]; then pkgs="$pkgs nodejs npm"; fi
    ;;
bench) pkgs="$pkgs python3 curl wrk nginx postgresql procps" ;;
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
# Another apt (unattended-upgrades on a fresh machine, a second build) may
# hold the locks: wait for it, up to 10 minutes, instead of failing. apt
# waits for dpkg's lock itself with DPkg::Lock::Timeout; `apt-get update`
# does not honour it for the package lists' lock (apt 2.6), so it is tried
# again every 3 s while that lock is what stops it.
wait_s=${USERSD_APT_LOCK_TIMEOUT:-600}
apt_update() {
    tries=0
    while :; do
        if out=$(apt-get -o DPkg::Lock::Timeout="$wait_s" update -qq 2>&1); then return 0; fi
        case "$out" in
        *"Could not get lock"* | *"Unable to lock"*) ;;
        *) printf '%s\n' "$out" >&2; return 1 ;;
        esac
        tries=$((tries + 1))
        if [ $((tries * 3)) -ge "$wait_s" ]; then printf '%s\n' "$out" >&2; return 1; fi
        [ $tries -eq 1 ] && echo "usersd: another apt holds the package lists; waiting for it" >&2
        sleep 3
    done
}
echo "usersd: installing$missing" >&2
apt_update
DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout="$wait_s" install -y -qq \
    --no-install-recommends $missing >&2
