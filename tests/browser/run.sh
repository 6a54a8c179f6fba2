#!/bin/sh
# The dashboard's browser tests (ctest: browser_dashboard). Installs
# playwright-core, pinned by package-lock.json, into WORK with `npm ci` when
# it is missing or the lock changed (never into the source tree, and never a
# browser: Debian's chromium is used), then runs the tests with Node's own
# test runner. Screenshots go to WORK/screenshots/.
#   tests/browser/run.sh WORK USERSD_BIN
set -eu
here=$(cd "$(dirname "$0")" && pwd)
work=$1
bin=$2
command -v node >/dev/null || { echo "browser tests: node is missing (scripts/install-deps.sh test)" >&2; exit 1; }
[ -x "${CHROMIUM:-/usr/bin/chromium}" ] || { echo "browser tests: ${CHROMIUM:-/usr/bin/chromium} is missing (scripts/install-deps.sh test)" >&2; exit 1; }
mkdir -p "$work"
work=$(cd "$work" && pwd)
case $bin in /*) ;; *) bin=$(pwd)/$bin ;; esac
if [ ! -f "$work/node_modules/playwright-core/package.json" ] || ! cmp -s "$here/package-lock.json" "$work/package-lock.json"; then
    cp "$here/package.json" "$here/package-lock.json" "$work/"
    (cd "$work" && npm ci --no-audit --no-fund --loglevel=error)
fi
rm -rf "$work/screenshots"
export USERSD_BIN="$bin" BROWSER_WORK="$work"
exec node --test --test-reporter=spec "$here/dashboard.test.js"
