/**
 * The "TCG guest" measurement: the same tiny real guest (testbed/guest-image.ts: Debian cloud kernel + busybox) booted
 * under QEMU **TCG** with its NIC on
 * - `macvtap`: a macvtap (bridge mode) over a veth, its queue fd opened by the library and handed to QEMU, or
 * - `tap+bridge`: a plain tap enslaved with the same veth to a Linux bridge, opened by QEMU itself by name,
 * and from each boot: host time from QEMU's spawn to the guest's first ping reply from the peer, the guest's own
 * uptime at that moment, the guest's ping summary to the peer, and per-packet round trips of the peer pinging the
 * guest. Boots alternate between the two paths so drift hits both alike.
 *
 * These are TCG numbers (every guest instruction emulated, as on a host whose `/dev/kvm` cannot run stock guests):
 * they compare the two host-side attachments under one slow guest, never macvtap's or KVM's performance. Hence the
 * label.
 *
 * Everything runs in the testbed's throwaway namespaces (`mvt-bench-<pid>-<n>`, {@link makeTestbed}), removed
 * afterwards, also on failure and, as a last resort, on process exit; QEMU is killed by pid. Needs root,
 * qemu-system-x86, cpio and apt-get (the guest is built from Debian packages on first use and cached).
 */
import { execFileSync } from 'node:child_process';
import { cpus, release } from 'node:os';
import { createMacvtap, openTap } from 'macvtap';
import { buildGuest, pingFrom, type GuestImage, type GuestTask } from '../testbed/guest-image.js';
import { BENCH_PREFIX, makeTestbed, type Testbed } from '../testbed/netns.js';
import { QEMU, startQemu, type QemuGuest, type QemuNet } from '../testbed/qemu.js';
import { GUEST_PATHS, TCG_GUEST_LABEL, type GuestBoot, type GuestPath, type TcgGuestResult } from './schema.js';
import { summarizeGuestPath } from './summary.js';

/** Options of {@link measureTcgGuest}. */
export interface TcgGuestOptions {
  /** Boots per path. Default 3. */
  boots?: number;
  /** Pings per boot, each direction. Default 20. */
  pings?: number;
  /** Seconds between pings. Default 0.2. */
  intervalS?: number;
  /** Per-boot deadline, ms (QEMU is SIGKILLed after it). Default 90 000. */
  bootTimeoutMs?: number;
  /** Called after each boot (progress). */
  onBoot?: (path: GuestPath, boot: number, result: GuestBoot) => void;
}

/** The testbed's subnet: the peer is 10.200.201.2, the guest 10.200.201.10 (only ever inside its namespaces). */
const SUBNET = 201;
const GUEST_IP = `10.200.${SUBNET}.10`;

/** Attaches the guest NIC for `path` in the testbed's host namespace; returns QEMU's net backend, the MAC to use, and what to close. */
async function attach(path: GuestPath, bed: Testbed): Promise<{ net: QemuNet; mac: string; after: () => Promise<void> }> {
  const host = bed.host;
  if (path === 'macvtap') {
    const link = await createMacvtap({ lower: bed.lower, name: 'bmvtap0', mode: 'bridge', up: true, netns: bed.host.path });
    const q = await openTap(link.ifindex, { queues: 1, netns: bed.host.path });
    // Once QEMU has its copy, ours is closed: the queue then lives as long as QEMU.
    return { net: { type: 'fds', fds: q.map((x) => x.fd) }, mac: link.mac!, after: async () => void (await Promise.all(q.map((x) => x.close()))) };
  }
  // A persistent tap QEMU opens by name, with the lower in a Linux bridge.
  host.ip('link', 'add', 'bbr0', 'type', 'bridge');
  host.ip('tuntap', 'add', 'dev', 'btap0', 'mode', 'tap');
  host.ip('link', 'set', bed.lower, 'master', 'bbr0');
  host.ip('link', 'set', 'btap0', 'master', 'bbr0');
  for (const d of ['bbr0', 'btap0']) host.ip('link', 'set', d, 'up');
  return { net: { type: 'ifname', netns: host.name, ifname: 'btap0' }, mac: '52:54:00:b0:00:0a', after: async () => undefined };
}

function num(v: string | undefined): number | null {
  return v === undefined || v === '-' || v === '' ? null : Number(v);
}

async function oneBoot(path: GuestPath, guest: GuestImage, o: Required<Omit<TcgGuestOptions, 'onBoot'>>): Promise<GuestBoot> {
  const bed = makeTestbed(SUBNET, BENCH_PREFIX);
  let vm: QemuGuest | undefined;
  try {
    const { net, mac, after } = await attach(path, bed);
    const hold = Math.ceil(o.pings * o.intervalS + 30);
    const task: GuestTask = { ip: `${GUEST_IP}/24`, peer: bed.peerIp, tasks: ['ping'], count: o.pings, hold };
    try {
      vm = startQemu({ guest, task, mac, net, timeoutMs: o.bootTimeoutMs });
    } finally {
      await after();
    }
    const first = await vm.waitFor('FIRST-PING', o.bootTimeoutMs);
    const ping = await vm.waitFor('PING', o.bootTimeoutMs);
    await vm.waitFor('READY', 10_000);
    const peer = pingFrom(bed.peer.name, GUEST_IP, o.pings, { intervalS: o.intervalS, waitS: 2 });
    return {
      bootToFirstPingMs: Math.round(first.at - vm.startedAt),
      guestUptimeAtFirstPingS: Number(first.fields.uptime),
      guestPing: {
        sent: Number(ping.fields.sent),
        received: Number(ping.fields.recv),
        minMs: num(ping.fields.min),
        avgMs: num(ping.fields.avg),
        maxMs: num(ping.fields.max),
      },
      peerRttMs: peer.times,
      peerSent: peer.transmitted,
    };
  } finally {
    await vm?.kill();
    bed.destroy();
  }
}

/**
 * Boots the TCG guest `boots` times on each path (alternating) and returns the measurements as plain data labelled
 * {@link TCG_GUEST_LABEL}. Throws (after cleaning up) if a boot fails; nothing is left behind either way.
 */
export async function measureTcgGuest(options: TcgGuestOptions = {}): Promise<TcgGuestResult> {
  const o = { boots: options.boots ?? 3, pings: options.pings ?? 20, intervalS: options.intervalS ?? 0.2, bootTimeoutMs: options.bootTimeoutMs ?? 90_000 };
  for (const [k, v] of Object.entries(o)) {
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw new RangeError(`${k} must be a positive number, got ${String(v)}`);
  }
  if (!Number.isInteger(o.boots) || !Number.isInteger(o.pings)) throw new RangeError('boots and pings must be integers');
  const startedAt = new Date();
  const t0 = performance.now();
  const guest = buildGuest();
  const qemu = execFileSync(QEMU, ['--version'], { encoding: 'utf8' }).split('\n')[0]!.trim();
  const paths: readonly GuestPath[] = GUEST_PATHS;
  const boots = new Map<GuestPath, GuestBoot[]>(paths.map((p) => [p, []]));
  for (let i = 0; i < o.boots; i++) {
    for (const p of paths) {
      const b = await oneBoot(p, guest, o);
      boots.get(p)!.push(b);
      options.onBoot?.(p, i, b);
    }
  }
  return {
    label: TCG_GUEST_LABEL,
    note:
      'QEMU TCG (software emulation): boot and round-trip times are dominated by instruction emulation. They compare the ' +
      'two host-side attachments under the same slow guest; they say nothing about KVM guests or the kernel datapath.',
    startedAt: startedAt.toISOString(),
    durationMs: Math.round(performance.now() - t0),
    host: { kernel: release(), cpus: cpus().length, qemu },
    guest: { kernelRelease: guest.kernelRelease, inputs: guest.inputs, accel: 'tcg', memoryMiB: 256, smp: 1, nic: 'virtio-net-pci, vhost=off' },
    options: { boots: o.boots, pings: o.pings, intervalS: o.intervalS },
    placement: 'unpinned',
    paths: paths.map((path) => ({ path, boots: boots.get(path)!, summary: summarizeGuestPath(boots.get(path)!) })),
  };
}
