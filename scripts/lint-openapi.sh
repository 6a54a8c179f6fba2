#!/bin/sh
# Lints docs/openapi.json with Redocly's `recommended` rules (its
# no-path-trailing-slash rule aside: our canonical paths end in /).
# Installs @redocly/cli from the npm registry into WORK_DIR on first use:
# 2.x on Node.js 20+, 1.34 on Debian 12's Node.js 18 (2.x needs 20.19;
# both lint the same `recommended` rules here, and both fail on a warning).
# Exits 77 (ctest: skipped) where Node.js 18.17+ and npm are not available.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-$root/build-test/redocly}
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || { echo "lint-openapi: no node/npm: skipped"; exit 77; }
pin=$(node -p 'const [a, b] = process.versions.node.split(".").map(Number);
    a >= 21 || (a === 20 && b >= 19) ? "2.77.0" : a > 18 || (a === 18 && b >= 17) ? "1.34.5" : ""')
[ -n "$pin" ] || { echo "lint-openapi: node $(node --version) < 18.17: skipped"; exit 77; }
work=$work/$pin
mkdir -p "$work"
if [ ! -x "$work/node_modules/.bin/redocly" ]; then
    (cd "$work" && npm install --no-audit --no-fund --silent "@redocly/cli@$pin" >/dev/null 2>&1) ||
        { echo "lint-openapi: cannot install @redocly/cli: skipped"; exit 77; }
fi
cat > "$work/redocly.yaml" <<'YAML'
extends:
  - recommended
rules:
  no-path-trailing-slash: off
YAML
out=$("$work/node_modules/.bin/redocly" lint "$root/docs/openapi.json" --config "$work/redocly.yaml" 2>&1) || { echo "$out"; exit 1; }
echo "$out" | grep -E "valid|warning|error" | grep -v "Node.js" || true
# warnings fail too: the document must pass `recommended` cleanly
echo "$out" | grep -q "You have [0-9]* warning" && { echo "$out"; exit 1; }
exit 0
