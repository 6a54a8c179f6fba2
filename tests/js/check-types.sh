#!/bin/sh
# Type-checks the JavaScript client (ctest: js_client_types): usersd.js's
# JSDoc with TypeScript's checkJs, and tests/js/types.ts — every call made
# through usersd.d.ts — in strict mode. Installs typescript, pinned, into
# WORK from the npm registry on first use. Exits 77 (ctest: skipped) where
# Node.js 18+ (Debian 12's) and npm, or the package, are not available.
#   tests/js/check-types.sh WORK
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$1
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || { echo "check-types: no node/npm: skipped"; exit 77; }
[ "$(node -p 'process.versions.node.split(".")[0]')" -ge 18 ] || { echo "check-types: node < 18: skipped"; exit 77; }
mkdir -p "$work"
if [ ! -x "$work/node_modules/.bin/tsc" ]; then
    (cd "$work" && npm install --no-audit --no-fund --silent typescript@5.9.3 >/dev/null 2>&1) ||
        { echo "check-types: cannot install typescript: skipped"; exit 77; }
fi
tsc="$work/node_modules/.bin/tsc"
"$tsc" --noEmit --allowJs --checkJs --target es2022 --module es2022 --moduleResolution bundler \
    --lib es2022,dom "$root/clients/js/usersd.js"
"$tsc" --noEmit --strict --target es2022 --module es2022 --moduleResolution bundler \
    --lib es2022,dom "$root/clients/js/usersd.d.ts" "$root/tests/js/types.ts"
echo "check-types: usersd.js and usersd.d.ts type-check"
