#!/bin/sh
# Runs the macvtap datapath benchmark on a fresh Debian 12 machine, from a clone of the repository, as root:
#
#   sudo sh bench/quickstart.sh [macvtap bench options…]     e.g.  --quick   or   --json run.json --html run.html
#
# Installs what the benchmark needs from Debian (the Open vSwitch daemons are started privately by the benchmark and
# stopped afterwards: the Debian service is not used), installs the npm dependencies, builds the native addon and the
# TypeScript, then runs `macvtap bench` with the given options. Nothing is changed outside network namespaces the
# benchmark creates (mvt-bench-*), which it removes when done.
set -eu

if [ "$(id -u)" -ne 0 ]; then
  echo "quickstart: run as root (the benchmark creates network namespaces and links; apt-get needs root too)" >&2
  exit 1
fi

# From anywhere: work in the repository root (this script lives in bench/).
cd "$(dirname "$0")/.."

export DEBIAN_FRONTEND=noninteractive
apt-get update
# openvswitch-switch: the tap+ovs topology (ovsdb-server, ovs-vswitchd, ovs-vsctl, ovs-appctl);
# iproute2: ip netns add/del for the namespaces; ethtool: to inspect offloads by hand (the harness sets them itself);
# cmake, g++, make, python3: the native addon's build (cmake-js); nodejs/npm: only when Node is missing.
# qemu-system-x86, cpio, xz-utils: the report's "TCG guest" row (a tiny guest built from Debian packages, booted under
# QEMU TCG on macvtap and on tap+bridge).
# libnftables1, nftables: the secured topologies (port security through libnftables; nft reloads the tap's table).
apt-get install -y --no-install-recommends ca-certificates openvswitch-switch iproute2 ethtool cmake g++ make python3 \
  qemu-system-x86 cpio xz-utils libnftables1 nftables

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  apt-get install -y --no-install-recommends nodejs npm
fi
# The package needs Node ≥ 20.17 (Debian 12's own nodejs is 18): say so plainly instead of failing in the build.
if ! node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=17)?0:1)'; then
  echo "quickstart: Node $(node --version) is too old: install Node 20.17+ (e.g. from https://deb.nodesource.com) and rerun" >&2
  exit 1
fi

# The Debian package may have started its own OVS service: leave it alone (the benchmark never touches it; its
# private daemons use their own database, sockets and pidfiles in a temporary directory).

npm ci
npm run compile
exec node dist/cli/macvtap.js bench "$@"
