#!/usr/bin/env bash
# The control benchmark's 4096-device rows, measured in isolation: in a fresh namespace whose lower already carries
# FILL macvtaps made by `ip -batch`, WINDOW more creates (+up) by this package (createMacvtap, one Node process) and
# by `ip -batch`, then a group delete of all of them by this package, with and without a listLinks first (which looks
# up every tap device in our per-namespace sysfs, so its dentries exist when the devices go). Each configuration in
# its own throwaway namespace (mvt-gap-<pid>-*, removed on exit and SIGINT), in alternating order, ROUNDS times.
# The `ip -batch` window is timed around its process (start and exit included: ~2 ms over WINDOW creates).
# Needs root and a built checkout (npm run compile).
# Usage: bash bench/tools/scale-gap.sh [FILL=3840] [WINDOW=128] [ROUNDS=2]
set -euo pipefail
cd "$(dirname "$0")/../.."
[ "$(id -u)" = 0 ] || { echo "scale-gap: needs root" >&2; exit 2; }
[ -f dist/lib/index.js ] || { echo "scale-gap: run npm run compile first" >&2; exit 2; }
FILL=${1:-3840}
WINDOW=${2:-128}
ROUNDS=${3:-2}
tmp=$(mktemp -d /tmp/mvt-gap-XXXXXX)
namespaces=()
cleanup() {
  for ns in "${namespaces[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

lines() { # PREFIX FROM COUNT: ip -batch lines creating PREFIX<FROM..FROM+COUNT-1> on bl0, up, in group 7
  local i
  for ((i = $2; i < $2 + $3; i++)); do echo "link add link bl0 name $1$i up group 7 type macvtap mode bridge"; done
}
lines f 0 "$FILL" > "$tmp/fill"
lines w 0 "$WINDOW" > "$tmp/window"

testbed() { # a namespace with lo up, an up veth pair (bl0 the lower) and FILL macvtaps on bl0
  local ns=$1
  ip netns add "$ns"
  namespaces+=("$ns")
  ip -n "$ns" link set lo up
  ip -n "$ns" link add bl0 type veth peer name bp0
  ip -n "$ns" link set bl0 up
  ip -n "$ns" link set bp0 up
  ip -n "$ns" -batch "$tmp/fill"
}

# this package: WINDOW creates, then the group delete (after a listLinks when $3 = sysfs); prints "create_ms delete_ms"
ours() {
  node --input-type=module -e '
    const [ns, window, lookups] = process.argv.slice(1);
    const { createMacvtap, deleteGroup, getLink, listLinks } = await import(process.cwd() + "/dist/lib/index.js");
    const netns = `/run/netns/${ns}`;
    const lower = (await getLink("bl0", { netns })).ifindex;
    let t0 = performance.now();
    for (let i = 0; i < Number(window); i++) await createMacvtap({ lower, name: `w${i}`, up: true, group: 7, netns });
    const create = (performance.now() - t0) / Number(window);
    if (lookups === "sysfs") await listLinks({ netns, kind: "macvtap" });
    t0 = performance.now();
    await deleteGroup(7, { netns });
    console.log(create.toFixed(2), (performance.now() - t0).toFixed(0));
  ' "$1" "$WINDOW" "$2"
}

now_ns() { date +%s%N; }
echo "scale-gap: fill $FILL, window $WINDOW, $ROUNDS rounds"
for ((r = 0; r < ROUNDS; r++)); do
  order=(macvtap ip-batch)
  ((r % 2)) && order=(ip-batch macvtap)
  for config in "${order[@]}"; do
    ns=mvt-gap-$$-$r-$config
    testbed "$ns"
    if [ "$config" = macvtap ]; then
      read -r create del <<< "$(ours "$ns" plain)"
      echo "round $((r + 1)) macvtap:  create $create ms per device at $FILL–$((FILL + WINDOW)) devices; delete all by group $del ms"
      ip netns del "$ns"
      testbed "$ns"
      read -r create del <<< "$(ours "$ns" sysfs)"
      echo "round $((r + 1)) macvtap:  create $create ms per device; delete all by group after listLinks $del ms"
    else
      t0=$(now_ns)
      ip -n "$ns" -batch "$tmp/window"
      t1=$(now_ns)
      echo "round $((r + 1)) ip-batch: create $(awk -v d=$((t1 - t0)) -v n="$WINDOW" 'BEGIN { printf "%.2f", d / n / 1e6 }') ms per device at $FILL–$((FILL + WINDOW)) devices"
    fi
    ip netns del "$ns"
  done
done
