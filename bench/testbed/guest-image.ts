/**
 * A tiny real guest for end-to-end tests and the guest benchmark: Debian's cloud kernel plus `busybox-static`, fetched
 * with `apt-get download` and unpacked with `dpkg -x` (debpkg.ts, never installed), and an initramfs whose `/init`
 * loads the virtio modules, configures the NIC from the kernel command line, runs a task against a peer, prints parseable
 * result lines on the serial console and powers off.
 *
 * The built kernel + initramfs pair is cached in {@link guestCacheDir}`/<key>/` (git-ignored), keyed by the kernel and
 * busybox package versions and a hash of the `/init` script, so a second run costs nothing.
 *
 * Kernel command line the `/init` reads (`mvt.` prefix: the kernel's own `ip=` is IP autoconfiguration, and unknown
 * dotted names are left alone by the kernel):
 * - `mvt.ip=A.B.C.D/N` the guest's address, `mvt.peer=A.B.C.D` the peer it talks to;
 * - `mvt.task=ping,udp,xfer,probe` what to do, in order (`ping`: until a first reply, then `mvt.count` timed pings;
 *   `udp`: a TFTP read of `mvt.token` from the peer, a UDP request/response; `xfer`: an HTTP download of
 *   `mvt.xfer` bytes from the peer, its SHA-256 printed; `probe`: 3 pings to `mvt.other`, replies counted);
 * - `mvt.hold=S` seconds to stay up after the tasks (so the host can ping the guest), then power off;
 * - `mvt.task=hotplug` alone: boot with no NIC, then `mvt.cycles=N` times wait for a hot-plugged NIC, bring it up
 *   with `mvt.ip`, ping `mvt.peer` until a reply, wait for the NIC to be unplugged; in cycle `mvt.hpmacat`, after the
 *   ping, it gives the NIC MAC `mvt.hpmac` (`MVT-HPMAC n= mac=`: only QEMU's filter learns it);
 * - `rxfilter` (with `mvt.newmac`, `mvt.ip6`, `mvt.rxfsecs`): sets the NIC's MAC, adds the IPv6 address, prints
 *   `MVT-RXF mac=…`, then `MVT-DROP n=…` whenever the NIC's `rx_dropped` counter changes (frames no protocol took), for that many seconds;
 *   once the counter reaches `mvt.phase2at` it sets `mvt.newmac2` and swaps the IPv6 address for `mvt.ip6b`
 *   (`MVT-RXF-NEXT mac=…`); at `mvt.phase3at` it adds 70 IPv6 addresses, overflowing QEMU's filter table
 *   (`MVT-RXF-MANY groups=…`); at `mvt.phase4at` it turns promiscuous (`MVT-RXF-LAST promisc=1`).
 *
 * Serial console lines (each on its own line, `key=value` fields) — see {@link parseResultLine}:
 * `MVT-BOOT`, `MVT-MAC addr=…`, `MVT-FIRST-PING uptime=… tries=…`, `MVT-PING sent= recv= min= avg= max=`,
 * `MVT-UDP ok= reply=…`, `MVT-PROBE addr= recv=`, `MVT-PLUGGED n= if= mac= uptime=`, `MVT-HPING n= ok= tries= uptime=`, `MVT-HPMAC n= mac=`,
 * `MVT-UNPLUGGED n= uptime=`, `MVT-XFER ok= bytes= sha256=…`, `MVT-READY`, `MVT-DONE`, and `MVT-FAIL step=… why=…`.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, chmodSync, existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run } from './command.js';
import { cacheDir, candidateVersion, dependencyMatching, extractDeb } from './debpkg.js';

/** `.cache/guest` of the harness package. */
export const guestCacheDir = join(cacheDir, 'guest');

/** The virtio modules, in the order they must be loaded: each needs the ones before it (busybox `insmod` resolves no dependencies). */
export const VIRTIO_MODULES = [
  'virtio_ring',
  'virtio',
  'virtio_pci_modern_dev',
  'virtio_pci_legacy_dev',
  'virtio_pci',
  'failover',
  'net_failover',
  'virtio_net',
] as const;

/** A built guest: what QEMU's `-kernel`/`-initrd` take, and what it was built from. */
export interface GuestImage {
  /** The bzImage (`boot/vmlinuz-<version>` of the kernel package). */
  kernel: string;
  /** The gzip-compressed newc cpio initramfs. */
  initrd: string;
  /** Kernel release, e.g. `6.1.0-56-cloud-amd64`. */
  kernelRelease: string;
  /** `<package>=<version>` of every input, for reports. */
  inputs: string[];
}

// The guest's PID 1. Plain busybox ash; every result goes to the console as one line. Failures print MVT-FAIL and
// still power off, so the host never waits for its timeout to learn that something broke.
const INIT_SCRIPT = String.raw`#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
exec >/dev/console 2>&1
say() { echo "$*"; }
fail() { say "MVT-FAIL step=$1 why=$2"; finish; }
finish() { say "MVT-DONE"; sync; reboot -f; sleep 5; }
up() { cut -d' ' -f1 /proc/uptime; }
arg() { for w in $(cat /proc/cmdline); do case "$w" in "mvt.$1="*) echo "\${w#*=}"; return;; esac; done; echo "$2"; }

for m in MODULES; do insmod /lib/modules/$m.ko || fail insmod "$m"; done
IP=$(arg ip 10.0.0.10/24); PEER=$(arg peer 10.0.0.2); TASK=$(arg task ping); HOLD=$(arg hold 0)
COUNT=$(arg count 5); TOKEN=$(arg token none); XFER=$(arg xfer 65536); UDPPORT=$(arg udpport 6969)
HTTPPORT=$(arg httpport 8080); OTHER=$(arg other 0.0.0.0)

if [ "$TASK" = hotplug ]; then
  # No NIC at boot: wait for each hot-plugged one, bring it up, ping the peer through it, wait for its unplug.
  CYCLES=$(arg cycles 1)
  ip link set lo up
  say "MVT-BOOT uptime=$(up) if=none"
  c=0
  while [ $c -lt "$CYCLES" ]; do
    c=$((c+1)); IF=; n=0
    while [ -z "$IF" ] && [ $n -lt 1200 ]; do
      for d in /sys/class/net/*; do x=\${d##*/}; [ "$x" = lo ] || IF=$x; done
      [ -n "$IF" ] || { n=$((n+1)); sleep 0.1; }
    done
    [ -n "$IF" ] || fail hotplug "no NIC appeared in cycle $c"
    ip link set "$IF" up || fail hotplug "cannot bring up $IF"
    ip addr add "$IP" dev "$IF" || fail hotplug "cannot add $IP"
    say "MVT-PLUGGED n=$c if=$IF mac=$(cat /sys/class/net/$IF/address) uptime=$(up)"
    k=0; ok=0
    while [ $k -lt 60 ]; do
      k=$((k+1))
      if ping -c 1 -W 1 "$PEER" >/dev/null 2>&1; then ok=1; break; fi
    done
    say "MVT-HPING n=$c ok=$ok tries=$k uptime=$(up)"
    if [ "$c" = "$(arg hpmacat 0)" ]; then
      ip link set "$IF" address "$(arg hpmac none)" || fail hotplug "cannot set $(arg hpmac none) on $IF"
      say "MVT-HPMAC n=$c mac=$(cat /sys/class/net/$IF/address) uptime=$(up)"
    fi
    n=0
    while [ -e "/sys/class/net/$IF" ] && [ $n -lt 1200 ]; do n=$((n+1)); sleep 0.1; done
    [ -e "/sys/class/net/$IF" ] && fail hotplug "$IF still there in cycle $c"
    say "MVT-UNPLUGGED n=$c uptime=$(up)"
  done
  say "MVT-READY uptime=$(up)"
  [ "$HOLD" -gt 0 ] 2>/dev/null && sleep "$HOLD"
  finish
fi

IF=
for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
  for d in /sys/class/net/*; do n=\${d##*/}; [ "$n" = lo ] || IF=$n; done
  [ -n "$IF" ] && break; sleep 0.1
done
[ -n "$IF" ] || fail nic "no network interface appeared"
ip link set lo up
ip link set "$IF" up || fail nic "cannot bring up $IF"
ip addr add "$IP" dev "$IF" || fail nic "cannot add $IP"
say "MVT-BOOT uptime=$(up) if=$IF"
say "MVT-MAC addr=$(cat /sys/class/net/$IF/address)"

for t in $(echo "$TASK" | tr ',' ' '); do
  case "$t" in
  ping)
    n=0; ok=
    while [ $n -lt 120 ]; do
      n=$((n+1))
      if ping -c 1 -W 1 "$PEER" >/dev/null 2>&1; then ok=1; break; fi
    done
    [ -n "$ok" ] || fail ping "no reply from $PEER after $n tries"
    say "MVT-FIRST-PING uptime=$(up) tries=$n"
    out=$(ping -c "$COUNT" -i 0.2 -W 2 "$PEER" 2>&1)
    sent=$(echo "$out" | sed -n 's/^\([0-9]*\) packets transmitted.*/\1/p')
    recv=$(echo "$out" | sed -n 's/.* \([0-9]*\) packets received.*/\1/p')
    rtt=$(echo "$out" | sed -n 's|.*min/avg/max = \([0-9.]*\)/\([0-9.]*\)/\([0-9.]*\).*|min=\1 avg=\2 max=\3|p')
    say "MVT-PING sent=\${sent:-0} recv=\${recv:-0} \${rtt:-min=- avg=- max=-}"
    ;;
  udp)
    rm -f /tmp/udp
    if (cd /tmp && timeout 10 tftp -g -r "$TOKEN" -l /tmp/udp "$PEER" "$UDPPORT") >/dev/null 2>&1; then
      say "MVT-UDP ok=1 reply=$(cat /tmp/udp)"
    else
      say "MVT-UDP ok=0 reply=-"
    fi
    ;;
  probe)
    out=$(ping -c 3 -i 0.2 -W 1 "$OTHER" 2>&1)
    recv=$(echo "$out" | sed -n 's/.* \([0-9]*\) packets received.*/\1/p')
    say "MVT-PROBE addr=$OTHER recv=\${recv:-0}"
    ;;
  xfer)
    rm -f /tmp/blob
    if timeout 60 wget -q -O /tmp/blob "http://$PEER:$HTTPPORT/$XFER" >/dev/null 2>&1; then
      say "MVT-XFER ok=1 bytes=$(wc -c < /tmp/blob) sha256=$(sha256sum /tmp/blob | cut -d' ' -f1)"
    else
      say "MVT-XFER ok=0 bytes=0 sha256=-"
    fi
    ;;
  rxfilter)
    # Changes the NIC's MAC and adds an IPv6 address (joining its solicited-node group), both of which only QEMU's
    # receive filter learns; then reports the NIC's rx_dropped counter, which counts every frame no protocol took
    # (the host's probes carry an unknown EtherType), as MVT-DROP, for mvt.rxfsecs seconds.
    NEWMAC=$(arg newmac ""); IP6=$(arg ip6 ""); RXFSECS=$(arg rxfsecs 30)
    # A MAC change announces itself with a gratuitous ARP, as a guest with arp_notify does (peers' caches follow).
    echo 1 > /proc/sys/net/ipv4/conf/$IF/arp_notify
    if [ -n "$NEWMAC" ]; then ip link set "$IF" address "$NEWMAC" || fail rxfilter "cannot set $NEWMAC"; fi
    if [ -n "$IP6" ]; then
      echo 0 > /proc/sys/net/ipv6/conf/$IF/accept_dad
      ip -6 addr add "$IP6" dev "$IF" || fail rxfilter "cannot add $IP6"
    fi
    say "MVT-RXF mac=$(cat /sys/class/net/$IF/address)"
    # Phase 2, once mvt.phase2at such frames came: a second MAC, and the IPv6 address swapped for mvt.ip6b.
    AT=$(arg phase2at 0); MAC2=$(arg newmac2 ""); IP6B=$(arg ip6b "")
    # Phase 3, once mvt.phase3at such frames came: 70 more IPv6 addresses, so 70 more solicited-node groups overflow
    # QEMU's 64-entry filter table. Phase 4, at mvt.phase4at: promiscuous.
    AT3=$(arg phase3at 0); AT4=$(arg phase4at 0)
    last=; end=$(( $(cut -d. -f1 /proc/uptime) + RXFSECS ))
    while [ "$(cut -d. -f1 /proc/uptime)" -lt "$end" ]; do
      n=$(cat /sys/class/net/$IF/statistics/rx_dropped)
      [ "$n" != "$last" ] && { say "MVT-DROP n=$n"; last=$n; }
      if [ "$AT" -gt 0 ] && [ "$n" -ge "$AT" ]; then
        AT=0
        [ -n "$MAC2" ] && { ip link set "$IF" address "$MAC2" || fail rxfilter "cannot set $MAC2"; }
        [ -n "$IP6B" ] && { ip -6 addr del "$IP6" dev "$IF"; ip -6 addr add "$IP6B" dev "$IF" || fail rxfilter "cannot add $IP6B"; }
        say "MVT-RXF-NEXT mac=$(cat /sys/class/net/$IF/address)"
      fi
      if [ "$AT3" -gt 0 ] && [ "$n" -ge "$AT3" ]; then
        AT3=0; i=1
        while [ $i -le 70 ]; do ip -6 addr add "fd00:51::1:$i/64" dev "$IF" || fail rxfilter "cannot add address $i"; i=$((i+1)); done
        say "MVT-RXF-MANY groups=$(grep -c "^ *[0-9]* *$IF" /proc/net/dev_mcast)"
      fi
      if [ "$AT4" -gt 0 ] && [ "$n" -ge "$AT4" ]; then
        AT4=0
        ip link set dev "$IF" promisc on || fail rxfilter "cannot set promisc"
        say "MVT-RXF-LAST promisc=1"
      fi
      sleep 0.05
    done
    ;;
  *) fail task "unknown task $t" ;;
  esac
done
say "MVT-READY uptime=$(up)"
[ "$HOLD" -gt 0 ] 2>/dev/null && sleep "$HOLD"
finish
`;

/** The `/init` script for the given module list (exported for the cache key and for reading in failures). */
export function initScript(modules: readonly string[] = VIRTIO_MODULES): string {
  // String.raw keeps sed's backslashes; "\\${" is how the source spells a shell "${" inside a template.
  return INIT_SCRIPT.replaceAll('\\${', '${').replace('MODULES', modules.join(' '));
}

const sh = (cmd: string, args: string[], opts: { cwd?: string } = {}): string => run(cmd, args, { ...opts, timeoutMs: 120_000 });

/** Finds `<name>.ko` (or `.ko.xz`) under the kernel tree; throws naming what is missing. */
function findModule(modDir: string, name: string): string {
  const out = sh('find', [modDir, '-name', `${name}.ko`, '-o', '-name', `${name}.ko.xz`]).trim().split('\n').filter(Boolean);
  if (out.length === 0) throw new Error(`kernel module ${name} not found under ${modDir}`);
  return out[0]!;
}

let memo: GuestImage | undefined;

/**
 * Builds (or finds in the cache) the guest: kernel `linux-image-<ver>-cloud-amd64` (the versioned package behind
 * `linux-image-cloud-amd64`) and an initramfs with `busybox-static`, the virtio modules (decompressed when shipped as
 * `.ko.xz`: busybox `insmod` takes plain ELF) and {@link initScript}; a cached build costs nothing.
 *
 * Needs `apt-get`, `dpkg`, `cpio` and `gzip`; throws with the failing command's stderr otherwise.
 */
export function buildGuest(): GuestImage {
  if (memo) return memo;
  const kernelPkg = dependencyMatching('linux-image-cloud-amd64', /^linux-image-[0-9].*-cloud-amd64$/);
  const inputs = [`${kernelPkg}=${candidateVersion(kernelPkg)}`, `busybox-static=${candidateVersion('busybox-static')}`];
  const init = initScript();
  const key = createHash('sha256').update(inputs.join('\n')).update(init).digest('hex').slice(0, 16);
  const dir = join(guestCacheDir, key);
  const kernelRelease = kernelPkg.replace(/^linux-image-/, '');
  const image: GuestImage = { kernel: join(dir, 'vmlinuz'), initrd: join(dir, 'initrd.gz'), kernelRelease, inputs };
  if (existsSync(image.kernel) && existsSync(image.initrd)) return (memo = image);

  const kernelTree = extractDeb(kernelPkg);
  const busyboxTree = extractDeb('busybox-static');
  mkdirSync(guestCacheDir, { recursive: true });
  // Built under a temporary name and renamed: the cache entry is complete or absent, even if a build is interrupted.
  const tmp = `${dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  const root = join(tmp, 'root');
  try {
    for (const d of ['bin', 'dev', 'proc', 'sys', 'tmp', 'lib/modules']) mkdirSync(join(root, d), { recursive: true });
    copyFileSync(join(busyboxTree, 'bin', 'busybox'), join(root, 'bin', 'busybox'));
    chmodSync(join(root, 'bin', 'busybox'), 0o755);
    const modDir = join(kernelTree, 'lib', 'modules', kernelRelease);
    for (const m of VIRTIO_MODULES) {
      const src = findModule(modDir, m);
      const dst = join(root, 'lib', 'modules', `${m}.ko`);
      if (src.endsWith('.xz')) writeFileSync(dst, execFileSync('xz', ['-dc', src], { maxBuffer: 64 << 20 }));
      else copyFileSync(src, dst);
    }
    writeFileSync(join(root, 'init'), init, { mode: 0o755 });
    // newc is the format the kernel unpacks; -R 0:0 so files are root's inside the guest.
    sh('sh', ['-c', `find . | cpio --quiet -o -H newc -R 0:0 | gzip -6 > ../initrd.gz`], { cwd: root });
    copyFileSync(join(kernelTree, 'boot', `vmlinuz-${kernelRelease}`), join(tmp, 'vmlinuz'));
    rmSync(root, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
    renameSync(tmp, dir);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return (memo = image);
}

/** What the guest should do: becomes the `mvt.*` part of the kernel command line. */
export interface GuestTask {
  /** Guest address with prefix, e.g. `10.200.1.10/24`. */
  ip: string;
  /** The peer the tasks talk to. */
  peer: string;
  /** Tasks in order. Default `['ping']`. */
  tasks?: Array<'ping' | 'udp' | 'xfer' | 'probe' | 'rxfilter'> | ['hotplug'];
  /** For the `hotplug` task: how many NICs to wait for, each pinged through and then waited out (unplugged). */
  cycles?: number;
  /** For the `hotplug` task: in cycle `hotplugMacAt`, after its ping, the NIC gets MAC `hotplugMac`. */
  hotplugMac?: string;
  hotplugMacAt?: number;
  /** Timed pings after the first reply. Default 5. */
  count?: number;
  /** Seconds to stay up after the tasks. Default 0. */
  hold?: number;
  /** What the `udp` task asks the peer for (the peer answers `echo:<token>`). */
  token?: string;
  /** The address the `probe` task pings 3 times, reporting how many replies came (an isolation check: expect 0). */
  other?: string;
  /** The MAC the `rxfilter` task gives the NIC (only QEMU's filter learns it). */
  newMac?: string;
  /** The IPv6 address with prefix the `rxfilter` task adds (DAD off), e.g. `fd00::10/64`. */
  ip6?: string;
  /** Seconds the `rxfilter` task reports `MVT-DROP` lines. Default 30. */
  rxfSeconds?: number;
  /** The `rxfilter` task's second phase: once the guest dropped this many frames, MAC `newMac2` and IPv6 `ip6b`. */
  phase2At?: number;
  newMac2?: string;
  ip6b?: string;
  /** The `rxfilter` task's third phase: once the guest dropped this many frames, 70 more IPv6 addresses. */
  phase3At?: number;
  /** The `rxfilter` task's fourth phase: once the guest dropped this many frames, its NIC goes promiscuous. */
  phase4At?: number;
  /** Bytes the `xfer` task downloads. */
  xferBytes?: number;
  /** Ports of the peer's TFTP-style UDP responder and HTTP server (see {@link startGuestPeer}). */
  udpPort?: number;
  httpPort?: number;
}

/** The kernel command line for a task: serial console on ttyS0, no reboot loop on panic, quiet boot. */
export function kernelCmdline(task: GuestTask): string {
  const p = [
    'console=ttyS0',
    'panic=-1',
    'quiet',
    'loglevel=3',
    // No PS/2 probing, nothing that waits on hardware the tiny machine does not have.
    'i8042.noaux',
    'i8042.nokbd',
    `mvt.ip=${task.ip}`,
    `mvt.peer=${task.peer}`,
    `mvt.task=${(task.tasks ?? ['ping']).join(',')}`,
    `mvt.count=${task.count ?? 5}`,
    `mvt.hold=${task.hold ?? 0}`,
  ];
  if (task.cycles !== undefined) p.push(`mvt.cycles=${task.cycles}`);
  if (task.hotplugMac !== undefined) p.push(`mvt.hpmac=${task.hotplugMac}`);
  if (task.hotplugMacAt !== undefined) p.push(`mvt.hpmacat=${task.hotplugMacAt}`);
  if (task.token !== undefined) p.push(`mvt.token=${task.token}`);
  if (task.other !== undefined) p.push(`mvt.other=${task.other}`);
  if (task.xferBytes !== undefined) p.push(`mvt.xfer=${task.xferBytes}`);
  if (task.newMac !== undefined) p.push(`mvt.newmac=${task.newMac}`);
  if (task.ip6 !== undefined) p.push(`mvt.ip6=${task.ip6}`);
  if (task.rxfSeconds !== undefined) p.push(`mvt.rxfsecs=${task.rxfSeconds}`);
  if (task.phase2At !== undefined) p.push(`mvt.phase2at=${task.phase2At}`);
  if (task.newMac2 !== undefined) p.push(`mvt.newmac2=${task.newMac2}`);
  if (task.ip6b !== undefined) p.push(`mvt.ip6b=${task.ip6b}`);
  if (task.phase3At !== undefined) p.push(`mvt.phase3at=${task.phase3At}`);
  if (task.phase4At !== undefined) p.push(`mvt.phase4at=${task.phase4At}`);
  if (task.udpPort !== undefined) p.push(`mvt.udpport=${task.udpPort}`);
  if (task.httpPort !== undefined) p.push(`mvt.httpport=${task.httpPort}`);
  for (const w of p) if (/\s/.test(w)) throw new RangeError(`kernel command line word has whitespace: ${JSON.stringify(w)}`);
  return p.join(' ');
}

/** One parsed `MVT-…` line of the guest console. */
export interface ResultLine {
  /** `BOOT`, `MAC`, `FIRST-PING`, `PING`, `UDP`, `XFER`, `READY`, `DONE` or `FAIL`. */
  kind: string;
  /** Its `key=value` fields. */
  fields: Record<string, string>;
}

/** Parses one console line; `null` when it is not a result line (kernel messages, busybox noise). */
export function parseResultLine(line: string): ResultLine | null {
  const m = /MVT-([A-Z-]+)((?:\s+[a-z0-9]+=\S*)*)\s*$/.exec(line.replace(/\r/g, ''));
  if (!m) return null;
  const fields: Record<string, string> = {};
  for (const kv of m[2]!.trim().split(/\s+/).filter(Boolean)) {
    const eq = kv.indexOf('=');
    fields[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  return { kind: m[1]!, fields };
}

/**
 * The `busybox` binary of the extracted `busybox-static` package, for host-side tools this machine may lack (`ping`
 * need not be installed): run it inside a namespace with `ip netns exec NS <busybox> ping …`.
 */
export function hostBusybox(): string {
  return join(extractDeb('busybox-static'), 'bin', 'busybox');
}

/** Result of {@link pingFrom}. */
export interface PingResult {
  transmitted: number;
  received: number;
  /** min/avg/max round trip, ms (null when nothing came back). */
  rtt: { min: number; avg: number; max: number } | null;
  /** Each reply's round trip, ms, in order. */
  times: number[];
  output: string;
}

/**
 * Pings `address` from inside namespace `netns` with busybox ping (`count` echo requests, `intervalS` apart, each
 * waited for at most `waitS`). Never throws for lost packets: the caller judges `received`.
 */
export function pingFrom(netns: string, address: string, count = 3, opts: { intervalS?: number; waitS?: number; iface?: string } = {}): PingResult {
  const args = ['netns', 'exec', netns, hostBusybox(), 'ping', '-c', String(count), '-i', String(opts.intervalS ?? 0.2), '-W', String(opts.waitS ?? 2)];
  if (opts.iface) args.push('-I', opts.iface);
  args.push(address);
  let output: string;
  try {
    output = execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 10_000 + count * 3000 });
  } catch (e) {
    // busybox ping exits 1 when nothing came back; its statistics are still on stdout.
    output = String((e as { stdout?: string }).stdout ?? '') + String((e as { stderr?: string }).stderr ?? '');
  }
  const tx = /(\d+) packets transmitted/.exec(output);
  const rx = /(\d+) packets received/.exec(output);
  const rtt = /min\/avg\/max = ([\d.]+)\/([\d.]+)\/([\d.]+)/.exec(output);
  return {
    transmitted: Number(tx?.[1] ?? 0),
    received: Number(rx?.[1] ?? 0),
    rtt: rtt ? { min: Number(rtt[1]), avg: Number(rtt[2]), max: Number(rtt[3]) } : null,
    times: [...output.matchAll(/ time=([\d.]+) ms/g)].map((m) => Number(m[1])),
    output,
  };
}
