#!/usr/bin/env bash
# Install axe-core (npm, MPL-2.0) outside the package for the studio's accessibility check
# (tests/test_studio.py): prints the path of axe.min.js. Idempotent: nothing is fetched when that
# version is there already. AXE_DIR (default ~/.cache/digitalhuman/axe) is where it goes.
set -euo pipefail
AXE_VERSION=4.14.1
AXE_DIR=${AXE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/digitalhuman/axe}
JS="$AXE_DIR/node_modules/axe-core/axe.min.js"
if ! grep -q "\"version\": \"$AXE_VERSION\"" "$AXE_DIR/node_modules/axe-core/package.json" 2>/dev/null; then
    command -v npm >/dev/null || { echo "error: npm is needed to install axe-core (apt-get install npm)" >&2; exit 1; }
    mkdir -p "$AXE_DIR"
    npm install --prefix "$AXE_DIR" --no-audit --no-fund --silent "axe-core@$AXE_VERSION" >&2
fi
[ -f "$JS" ] || { echo "error: npm installed axe-core but $JS is missing" >&2; exit 1; }
echo "$JS"
