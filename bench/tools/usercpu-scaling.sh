#!/usr/bin/env bash
# User-mode CPU per macvtap create at 256, 1024 and 4096 devices on one lower: this package (createMacvtap, in one
# Node process) and `ip -batch`, each in its own throwaway namespace (mvt-ucpu-<pid>-*, removed on exit and SIGINT).
#
# Why a separate tool: getrusage's user/system split is sampled by the scheduler tick (CONFIG_TICK_CPU_ACCOUNTING,
# 250 Hz here), and at 4096 devices a create spends ~99% of its CPU in the kernel, so the control benchmark's user
# CPU row rests on a handful of ticks. perf's cpu-clock:u samples at 10 kHz and keeps only samples taken in user
# mode, 40x the resolution, and it measures `ip -batch` the same way, which tells apart growth in our code from
# growth every program sees here. Needs root, perf (Debian: linux-perf) and a built checkout (npm run compile).
# Usage: bash bench/tools/usercpu-scaling.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
[ "$(id -u)" = 0 ] || { echo "usercpu-scaling: needs root" >&2; exit 2; }
command -v perf >/dev/null || { echo "usercpu-scaling: needs perf (apt-get install linux-perf)" >&2; exit 2; }
[ -f dist/lib/index.js ] || { echo "usercpu-scaling: run npm run compile first" >&2; exit 2; }
WINDOW=256
FREQ=10000
tmp=$(mktemp -d /tmp/mvt-ucpu-XXXXXX)
namespaces=()
cleanup() {
  for ns in "${namespaces[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

testbed() { # a namespace with lo up and an up veth pair, bl0 the lower
  local ns=$1
  ip netns add "$ns"
  namespaces+=("$ns")
  ip -n "$ns" link set lo up
  ip -n "$ns" link add bl0 type veth peer name bp0
  ip -n "$ns" link set bl0 up
  ip -n "$ns" link set bp0 up
}

samples_between() { # perf.data, start ns, end ns (CLOCK_MONOTONIC) -> user samples in that window
  perf script -i "$1" -F time --ns 2>/dev/null |
    awk -v a="$2" -v b="$3" '{ t = $1; sub(":", "", t); split(t, p, "."); ns = p[1] * 1e9 + p[2]; if (ns >= a && ns <= b) n++ } END { print n + 0 }'
}

echo "user-mode CPU per create (perf cpu-clock:u, ${FREQ} Hz; windows of ${WINDOW} creates ending at each count)"

# This package: one process, windows marked with CLOCK_MONOTONIC times (perf -k mono records the same clock).
ns=mvt-ucpu-$$-lib
testbed "$ns"
cat > "$tmp/lib.mjs" <<'JS'
import { pathToFileURL } from 'node:url';
const [netns, window, root] = [process.argv[2], Number(process.argv[3]), process.argv[4]];
const { createMacvtap, getLink } = await import(pathToFileURL(`${root}/dist/lib/index.js`).href);
const lower = (await getLink('bl0', { netns })).ifindex;
let made = 0;
for (const target of [256, 1024, 4096]) {
  while (made < target - window) await createMacvtap({ lower, name: `m${made++}`, up: true, group: 7, netns });
  const t0 = process.hrtime.bigint();
  while (made < target) await createMacvtap({ lower, name: `m${made++}`, up: true, group: 7, netns });
  console.log(`${target} ${t0} ${process.hrtime.bigint()}`);
}
JS
perf record -q -k mono -e cpu-clock:u -F "$FREQ" -o "$tmp/lib.data" node "$tmp/lib.mjs" "/run/netns/$ns" "$WINDOW" "$PWD" > "$tmp/lib.out"
while read -r target t0 t1; do
  n=$(samples_between "$tmp/lib.data" "$t0" "$t1")
  awk -v t="$target" -v n="$n" -v w="$WINDOW" -v f="$FREQ" 'BEGIN { printf "  macvtap (this package)  at %4d devices: %6.1f us\n", t, n * 1e6 / f / w }'
done < "$tmp/lib.out"
ip netns del "$ns"

# ip -batch: the fill unrecorded, each window one recorded ip process (its start-up is in every window alike).
ns=mvt-ucpu-$$-ip
testbed "$ns"
made=0
for target in 256 1024 4096; do
  : > "$tmp/fill"; : > "$tmp/win"
  while [ $made -lt $((target - WINDOW)) ]; do echo "link add link bl0 name i$made up group 7 type macvtap mode bridge" >> "$tmp/fill"; made=$((made + 1)); done
  while [ $made -lt $target ]; do echo "link add link bl0 name i$made up group 7 type macvtap mode bridge" >> "$tmp/win"; made=$((made + 1)); done
  if [ -s "$tmp/fill" ]; then ip -n "$ns" -batch "$tmp/fill"; fi
  perf record -q -e cpu-clock:u -F "$FREQ" -o "$tmp/ip.data" ip -n "$ns" -batch "$tmp/win" 2>/dev/null
  n=$(perf script -i "$tmp/ip.data" -F time 2>/dev/null | wc -l)
  awk -v t="$target" -v n="$n" -v w="$WINDOW" -v f="$FREQ" 'BEGIN { printf "  ip -batch               at %4d devices: %6.1f us\n", t, n * 1e6 / f / w }'
done
