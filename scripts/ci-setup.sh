#!/usr/bin/env bash
# Installs what the interop tests (test/interop) drive, with the repository's own
# scripts/install-deps.sh: about a second once everything is there; on a fresh machine it runs
# apt-get update itself. Needs root or passwordless sudo. The interop tests are part of `npm test`.
set -euo pipefail
exec bash "$(dirname "${BASH_SOURCE[0]}")/install-deps.sh"
