#!/usr/bin/env bash
# Installs the reference clients the interop tests (test/interop) and the benchmark (scripts/bench.ts)
# drive: Debian's opentracker, aria2, Transmission, python3-libtorrent, Chromium and ffmpeg, and the npm reference
# clients pinned by scripts/reference-clients/package-lock.json (WebTorrent 1.9.7...) into a cache
# outside node_modules.
#
#   bash scripts/install-deps.sh [--no-apt] [--no-npm]
#
# Non-interactive and idempotent (about a second when everything is there); needs root or
# passwordless sudo for apt-get. `apt-get update` runs once, only when a package is missing.
#
# Environment: EFFECT_BITTORRENT_REFERENCE_DIR, where the npm clients go (default
# /opt/effect-bittorrent-reference); test/support/ReferenceClients.ts reads the same variable.
#
# Why it looks the way it does:
# - transmission-daemon and opentracker ship system services (Transmission with DHT on, opentracker
#   on 0.0.0.0:6969): a temporary policy-rc.d keeps dpkg from starting them, and where systemd runs
#   they are disabled. The harness starts its own, on loopback.
# - `npm ci --ignore-scripts`: a dependency's preinstall (`npx only-allow pnpm`) fails under npm, and
#   none of these packages needs an install script. Newer WebTorrent (2.x, 3.x) loads
#   node-datachannel, whose install downloads a prebuilt binary: not usable offline.
# - python3-libtorrent is for Debian's /usr/bin/python3, not for another python3 on the PATH.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${EFFECT_BITTORRENT_REFERENCE_DIR:-/opt/effect-bittorrent-reference}
do_apt=1 do_npm=1
for arg in "$@"; do
  case $arg in
    --no-apt) do_apt=0 ;;
    --no-npm) do_npm=0 ;;
    -h | --help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "install-deps: unknown option $arg" >&2; exit 2 ;;
  esac
done

sudo=()
if (( $(id -u) != 0 )); then
  command -v sudo >/dev/null || { echo "install-deps: needs root or sudo" >&2; exit 1; }
  sudo=(sudo -n)
fi

# util-linux: setsid; procps: ps; iproute2: ss (the loopback check); time: /usr/bin/time -v;
# chromium: the web UI test (driven by playwright-core); ffmpeg: the streaming test's video and ffprobe
debian_packages=(opentracker aria2 transmission-cli transmission-daemon python3-libtorrent python3
  time iproute2 procps util-linux chromium ffmpeg)

missing_packages() {
  local p
  for p in "${debian_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || echo "$p"
  done
}

install_debian() {
  local -a missing
  mapfile -t missing < <(missing_packages)
  if (( ${#missing[@]} == 0 )); then
    echo "install-deps: Debian packages already installed"
    return
  fi
  export DEBIAN_FRONTEND=noninteractive
  local policy=/usr/sbin/policy-rc.d made_policy=0
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\n# scripts/install-deps.sh: no service starts during the install\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
    "${sudo[@]}" chmod 755 "$policy"
    made_policy=1
  fi
  # shellcheck disable=SC2064 # expand now: the trap must remove exactly what was made here
  trap "(( $made_policy )) && ${sudo[*]} rm -f $policy" EXIT
  local log; log=$(mktemp /tmp/install-deps-apt-XXXXXX.log)
  echo "install-deps: apt-get update, then install ${missing[*]}"
  { "${sudo[@]}" timeout 600 apt-get update -q &&
    "${sudo[@]}" timeout 900 apt-get install -y -q --no-install-recommends \
      -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${missing[@]}"; } >"$log" 2>&1 ||
    { tail -n 30 "$log" >&2; echo "install-deps: apt-get failed (log: $log)" >&2; exit 1; }
  rm -f "$log"
  if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null; then
    "${sudo[@]}" systemctl disable --now transmission-daemon.service opentracker.service >/dev/null 2>&1 || true
  fi
  (( made_policy )) && "${sudo[@]}" rm -f "$policy"
  trap - EXIT
}

install_npm() {
  command -v npm >/dev/null || { echo "install-deps: npm not found (Node.js 20 or later must be installed)" >&2; exit 1; }
  if [[ -d $cache/node_modules/webtorrent ]] && cmp -s "$here/reference-clients/package-lock.json" "$cache/package-lock.json"; then
    echo "install-deps: npm reference clients already in $cache"
    return
  fi
  echo "install-deps: npm ci --ignore-scripts into $cache"
  "${sudo[@]}" mkdir -p "$cache"
  "${sudo[@]}" cp "$here/reference-clients/package.json" "$here/reference-clients/package-lock.json" "$cache/"
  local log; log=$(mktemp /tmp/install-deps-npm-XXXXXX.log)
  (cd "$cache" && "${sudo[@]}" timeout 900 npm ci --ignore-scripts --no-audit --no-fund --loglevel=error) >"$log" 2>&1 ||
    { tail -n 30 "$log" >&2; echo "install-deps: npm ci failed (log: $log)" >&2; exit 1; }
  rm -f "$log"
}

(( do_apt )) && install_debian
(( do_npm )) && install_npm

status=0
for c in opentracker aria2c transmission-cli transmission-daemon transmission-remote /usr/bin/time ss chromium ffmpeg ffprobe; do
  command -v "$c" >/dev/null || { echo "install-deps: $c is missing" >&2; status=1; }
done
/usr/bin/python3 -c 'import libtorrent' 2>/dev/null || { echo "install-deps: python3-libtorrent is missing" >&2; status=1; }
[[ -d $cache/node_modules/webtorrent ]] || { echo "install-deps: webtorrent is missing from $cache" >&2; status=1; }
(( status == 0 )) && echo "install-deps: reference clients ready (npm ones in $cache)"
exit "$status"
