#!/usr/bin/env bash
# The web UI's build: ui/ (React + TypeScript, package-lock.json) -> api/ui_dist/ (committed, shipped in the package).
#
# Usage: scripts/ui.sh {build|hash|check}
#   build  npm ci (only when package-lock.json changed since the last install; node_modules is kept in the
#          git-ignored ui/node_modules), then type-check and bundle, then stamp api/ui_dist/SOURCE_HASH
#   hash   print the hash of the UI's sources (what the stamp records)
#   check  exit 1 when api/ui_dist/ was not built from the current sources
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
UI="$REPO/ui"
STAMP="$REPO/api/ui_dist/SOURCE_HASH"

source_hash() {
  # Every file the bundle is built from, by path and content; node_modules is pinned by package-lock.json.
  (cd "$UI" && find package.json package-lock.json tsconfig.json vite.config.ts index.html graphiql.html src -type f \
    | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -d' ' -f1)
}

case "${1:-}" in
  hash) source_hash ;;
  check)
    [[ -f "$STAMP" && "$(cat "$STAMP")" == "$(source_hash)" ]] \
      || { echo "ui: api/ui_dist/ is stale: ui/ sources changed since the last build; run 'make ui'" >&2; exit 1; }
    ;;
  build)
    command -v npm >/dev/null 2>&1 || { echo "ui: npm not found: install Node.js 20+ to rebuild the UI" >&2; exit 1; }
    cd "$UI"
    if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
      npm ci --no-audit --no-fund
    fi
    npm run build
    source_hash >"$STAMP"
    echo "ui: built api/ui_dist/ ($(du -sh "$REPO/api/ui_dist" | cut -f1)), sources $(cat "$STAMP")"
    ;;
  *) echo "usage: $0 {build|hash|check}" >&2; exit 2 ;;
esac
