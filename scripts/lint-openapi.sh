#!/bin/sh
# Lints docs/openapi.json with Redocly's `recommended` rules (its
# no-path-trailing-slash rule aside: our canonical paths end in /).
# Installs @redocly/cli from the npm registry into WORK_DIR on first use.
# Exits 77 (ctest: skipped) where Node.js 20+ and npm are not available.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-$root/build-test/redocly}
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || { echo "lint-openapi: no node/npm: skipped"; exit 77; }
major=$(node -p 'process.versions.node.split(".")[0]')
[ "$major" -ge 20 ] || { echo "lint-openapi: node $major < 20: skipped"; exit 77; }
mkdir -p "$work"
if [ ! -x "$work/node_modules/.bin/redocly" ]; then
    (cd "$work" && npm install --no-audit --no-fund --silent @redocly/cli@2.77.0 >/dev/null 2>&1) ||
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
