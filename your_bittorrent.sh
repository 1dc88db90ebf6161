#!/bin/sh
# The historical entry point: runs the bundled CLI (built by `npm install` / `npm run build`).
set -e
here=$(dirname "$0")
[ -f "$here/dist/main.cjs" ] || (cd "$here" && node scripts/build.mjs)
exec node "$here/bin/bittorrent.cjs" "$@"
