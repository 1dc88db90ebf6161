#!/usr/bin/env bash
# Installs what the interop tests drive (test/interop): the loopback swarm's Debian and npm packages
# (opentracker, aria2, Transmission, WebTorrent...), through ../shared/swarm/install-deps.sh beside
# the repository. Idempotent: about a second once everything is there; on a fresh machine it runs
# apt-get update itself. Needs root or passwordless sudo. The interop tests are part of `npm test`,
# so a missing ../shared is an error, not a skip.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
shared=$(cd "$repo/.." && pwd)/shared
install_deps=$shared/swarm/install-deps.sh

if [[ ! -f $install_deps ]]; then
  echo "ci-setup: $install_deps not found." >&2
  echo "ci-setup: the interop tests need the shared folder checked out beside the repository, at $shared" >&2
  exit 1
fi
echo "ci-setup: installing the swarm's packages with $install_deps"
bash "$install_deps"
