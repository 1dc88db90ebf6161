#!/usr/bin/env bash
# npm run bench: our client against the reference clients (aria2c, WebTorrent) on the loopback
# swarm of ../shared/swarm/swarm.sh (opentracker + 3 seeders, aria2 and Transmission), one swarm
# per payload size, the clients interleaved run by run. Prints swarm.sh's tables and RATIO lines
# (our median seconds / the best reference client's) and writes them all to a summary file.
#
# Environment (all optional):
#   BENCH_SIZES="256 1024"   payload sizes in MiB
#   BENCH_RUNS=3             runs per client and size
#   BENCH_CLIENTS=aria2c,webtorrent,custom   (custom = ours)
#   BENCH_TIMEOUT=600        seconds per download
#   BENCH_BASE_PORT=29600    the swarm's ports (P..P+3, P+50, P+60, P+100..)
#   BENCH_OUT=/tmp/bench-results/<UTC date>.txt   the summary file (outside the repository)
#   BENCH_DIR=<mktemp -d>    the swarm's folder (payload, logs); removed at the end unless given
#
# A failed run of ours is reported in the table and the script goes on; the exit status is 1 if
# any run failed. The swarm is brought down on every exit path.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
swarm=$(cd "$repo/.." && pwd)/shared/swarm/swarm.sh
[[ -f $swarm ]] || { echo "bench: $swarm not found (../shared must sit beside the repository)" >&2; exit 1; }

sizes=${BENCH_SIZES:-256 1024}
runs=${BENCH_RUNS:-3}
clients=${BENCH_CLIENTS:-aria2c,webtorrent,custom}
timeout_s=${BENCH_TIMEOUT:-600}
base_port=${BENCH_BASE_PORT:-29600}
out=${BENCH_OUT:-/tmp/bench-results/$(date -u +%Y%m%dT%H%M%SZ).txt}
own_dir=0
if [[ -n ${BENCH_DIR:-} ]]; then dir=$BENCH_DIR; mkdir -p "$dir"; else dir=$(mktemp -d /tmp/bt-bench-XXXXXX); own_dir=1; fi

cleanup() {
  bash "$swarm" down --dir "$dir" --purge >/dev/null 2>&1 || echo "bench: could not bring the swarm in $dir down" >&2
  if (( own_dir )); then rm -rf "$dir"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "bench: building dist/main.cjs" >&2
node scripts/build.mjs

mkdir -p "$(dirname "$out")"
{
  echo "# effect-bittorrent benchmark, $(date -u +%FT%TZ)"
  echo "# commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo ' (with local changes)')," \
    "node $(node --version), $(nproc) cores, sizes: $sizes MiB, runs: $runs, clients: $clients"
} >"$out"

status=0
for size in $sizes; do
  echo "bench: $size MiB swarm on base port $base_port" >&2
  bash "$swarm" up --dir "$dir" --size-mib "$size" --seeders 3 --base-port "$base_port"
  # `|| status=1`: a failed run (ours, typically) must not stop the reference runs or other sizes
  bash "$swarm" bench --dir "$dir" --clients "$clients" --runs "$runs" --timeout "$timeout_s" \
    --label ours --client-cmd 'node bin/bittorrent.cjs download -o {out} {torrent}' | tee -a "$out" || status=1
  bash "$swarm" down --dir "$dir" --purge
done

echo >&2
echo "bench: summary:" >&2
grep -E '^(BENCH|client|RATIO|[a-z0-9.+_-]+ +[0-9]+/[0-9]+ )' "$out" >&2 || true
echo "bench: full results in $out" >&2
exit "$status"
