#!/bin/sh
# The JavaScript client's tests in Node.js (ctest: js_client): node's own
# test runner, no package to install. Needs Node.js 18+ (fetch, streams: Debian 12 has 18).
#   tests/js/run.sh USERSD_BIN
set -eu
here=$(cd "$(dirname "$0")" && pwd)
command -v node >/dev/null || { echo "js client tests: node is missing (scripts/install-deps.sh test)" >&2; exit 1; }
major=$(node -p 'process.versions.node.split(".")[0]')
[ "$major" -ge 18 ] || { echo "js client tests: node $major is older than 18" >&2; exit 1; }
case $1 in /*) bin=$1 ;; *) bin=$(pwd)/$1 ;; esac
export USERSD_BIN="$bin"
exec node --test --test-reporter=spec "$here"/*.test.mjs
