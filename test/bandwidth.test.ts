/**
 * Bandwidth limits (lib/bandwidth.ts) on a real macvtap. Bad rates are refused before anything is sent (any kernel);
 * on a kernel without traffic control (no CONFIG_NET_SCHED, hence no /proc/net/psched: none here, so a fault seam
 * plays its answer) the refusal is EOPNOTSUPP with nothing changed; on a kernel with qdiscs but without the matchall
 * classifier and police action (this project's 6.18 host) the refusal names them and undoes what it sent; on a
 * kernel with all of it (Debian's 6.1, `npm run test:kernel`) what we
 * install is compared with `tc -s -j qdisc/class/filter show`, and the rates are measured: the harness's native
 * endpoints push UDP as fast as they can through the macvtap, to the guest (a peer socket → the macvtap's receive
 * path → the tap fd) and from it (the tap fd → its transmit path → the peer socket).
 *
 * Layout: testbed namespaces `host` (veth `mvt-l0`, the macvtap `mvt-bw` on it) and `peer` (`mvt-p0`, 10.200.9.2/24).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMacvtap, createTap, deleteLink, getBandwidth, MacvtapError, openTap, setBandwidth, setLink, type Bandwidth, type TapQueue } from '../lib/index.js';
import { BANDWIDTH_HANDLE, setTcForTests } from '../lib/bandwidth.js';
import { binding } from '../lib/binding.js';
import type { NativeTcOp } from '../binding.js';
import { plugSelfManaged } from '../lib/vif/index.js';
import { novaVif } from './helpers/libvirt.js';
import { cliJs } from './helpers/benchchild.js';
import { startGuest, startPeer } from '../bench/testbed/endpoints.js';
import { makeTestbed, type Testbed } from '../bench/testbed/netns.js';
import { describePrivileged, isRoot } from './helpers/suite.js';
import { tcClasses, tcPolice, type TcClass } from './helpers/tc.js';

const DEV = 'mvt-bw';
const G = '02:00:00:00:09:0a';
const G_IP = '10.200.9.10';
/**
 * What this kernel has, asked of `tc` in a throwaway namespace: `none` (no CONFIG_NET_SCHED: no /proc/net/psched),
 * `partial` (qdiscs, but no matchall classifier or police action: this project's 6.18 host), `full` (Debian's 6.1).
 */
function tcSupport(): 'none' | 'partial' | 'full' {
  if (!existsSync('/proc/net/psched')) return 'none';
  if (!isRoot) return 'partial';
  const probe = `mvt-bwprobe-${process.pid}`;
  execFileSync('ip', ['netns', 'add', probe]);
  try {
    const x = (...a: string[]): void => { execFileSync('ip', ['netns', 'exec', probe, ...a], { stdio: 'ignore' }); };
    x('ip', 'link', 'add', 'p0', 'type', 'veth', 'peer', 'name', 'p1');
    try {
      x('tc', 'qdisc', 'add', 'dev', 'p0', 'ingress');
      x('tc', 'filter', 'add', 'dev', 'p0', 'parent', 'ffff:', 'matchall', 'action', 'police', 'rate', '1mbit', 'burst', '10k', 'drop');
      x('tc', 'qdisc', 'add', 'dev', 'p0', 'root', 'handle', '1:', 'htb');
      return 'full';
    } catch {
      return 'partial';
    }
  } finally {
    execFileSync('ip', ['netns', 'del', probe]);
  }
}
const support = tcSupport();
const hasTc = support === 'full';
/** UDP payload per datagram: 1242-byte Ethernet frames. */
const PAYLOAD = 1200;
const FRAME = PAYLOAD + 42;

describe('bandwidth input checks (before anything is sent)', () => {
  const rows: [string, unknown, RegExp][] = [
    ['zero average', { inbound: { average: 0 } }, /average.*>= 1/],
    ['average above 32 bits', { outbound: { average: 2 ** 32 } }, /average.*<= 4294967295/],
    ['fractional average', { outbound: { average: 1.5 } }, /integer/],
    ['peak below average', { inbound: { average: 100, peak: 99 } }, /peak.*>= the average/],
    ['burst without average', { outbound: { burst: 64 } }, /average.*required with burst/],
    ['peak without average', { outbound: { peak: 64 } }, /average.*required with burst or peak/],
    ['floor (libvirt networks only)', { inbound: { average: 100, floor: 10 } }, /floor.*not supported/],
    ['unknown key', { inbound: { average: 100, rate: 1 } }, /inbound\.rate.*not a known option/],
    ['unknown direction', { both: { average: 1 } }, /bandwidth\.both.*not a known option/],
    ['burst too long for the kernel bucket', { inbound: { average: 1, burst: 4_000_000 } }, /burst.*2\^32 ticks/],
    ['string rate', { inbound: { average: '100' } }, /must be a number|must be of type number/],
  ];
  for (const [name, bw, msg] of rows) {
    it(`refuses ${name}`, async () => {
      // A link that does not exist: a check that let it through would fail differently (ENODEV), not with this message.
      await expect(setBandwidth('mvt-nonexist', bw as Bandwidth)).rejects.toThrow(msg);
    });
  }
  it('getBandwidth refuses a foreign that is not a boolean, and unknown options', async () => {
    await expect(getBandwidth('mvt-nonexist', { foreign: 1 } as never)).rejects.toThrow(/"foreign".*boolean/);
    await expect(getBandwidth('mvt-nonexist', { ours: true } as never)).rejects.toThrow(/options\.ours.*not a known option/);
  });
  it('refuses unknown options', async () => {
    await expect(setBandwidth('mvt-nonexist', null, { netns: '/x', quota: 1 } as never)).rejects.toThrow(/options\.quota/);
  });
});

/** `tc -s -j` in the host namespace: the independent view. */
function tcJson(tb: Testbed, what: 'qdisc' | 'filter', ...extra: string[]): Record<string, unknown>[] {
  return JSON.parse(tb.host.exec('tc', ['-s', '-j', what, 'show', 'dev', DEV, ...extra]) || '[]') as Record<string, unknown>[];
}

/** `tc class show` of our device, parsed (iproute2 6.1 prints htb classes as text even with -j). */
function tcClassesOf(tb: Testbed): TcClass[] {
  return tcClasses(tb.host.exec('tc', ['class', 'show', 'dev', DEV]));
}

describePrivileged('bandwidth on a kernel without traffic control', () => {
  it.runIf(support === 'none')('is EOPNOTSUPP naming what is missing, and changes nothing', async () => {
    const tb = makeTestbed(9);
    try {
      await createMacvtap({ lower: tb.lower, name: DEV, mac: G, netns: tb.host.path });
      const before = tb.host.ip('-d', '-j', 'link', 'show', DEV);
      const err = await setBandwidth(DEV, { inbound: { average: 1000 }, outbound: { average: 1000 } }, { netns: tb.host.path }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(MacvtapError);
      expect(err).toMatchObject({ code: 'EOPNOTSUPP', syscall: 'RTM_GETQDISC' });
      expect((err as Error).message).toMatch(/CONFIG_NET_SCHED/);
      await expect(getBandwidth(DEV, { netns: tb.host.path })).rejects.toMatchObject({ code: 'EOPNOTSUPP' });
      await expect(setBandwidth(DEV, null, { netns: tb.host.path })).rejects.toMatchObject({ code: 'EOPNOTSUPP' });
      expect(tb.host.ip('-d', '-j', 'link', 'show', DEV)).toBe(before);
    } finally {
      tb.destroy();
    }
  });
});

describePrivileged('bandwidth on a kernel without traffic control, played through the fault seam', () => {
  // No kernel here lacks CONFIG_NET_SCHED (the test above runs only where one does): the seam plays its answer — the
  // addon's rejection when rtnetlink has no handler for RTM_GETQDISC — while a real macvtap and `tc` show what changed.
  it.runIf(support !== 'none')('is EOPNOTSUPP naming CONFIG_NET_SCHED, sends nothing after the refusal, leaves the device as it was', async () => {
    const tb = makeTestbed(9);
    const applied: NativeTcOp[][] = [];
    try {
      await createMacvtap({ lower: tb.lower, name: DEV, mac: G, netns: tb.host.path });
      const view = (): unknown => ({
        link: JSON.parse(tb.host.ip('-d', '-j', 'link', 'show', DEV)) as unknown,
        qdiscs: tcJson(tb, 'qdisc').map((x) => [x.kind, x.handle, x.parent, x.root]),
        classes: tcClassesOf(tb),
        ingress: tcJson(tb, 'filter', 'ingress'),
      });
      const before = view();
      const refusal = (): Error => Object.assign(new Error(`EOPNOTSUPP: Operation not supported, RTM_GETQDISC '${DEV}'`), {
        code: 'EOPNOTSUPP', errno: -95, syscall: 'RTM_GETQDISC', device: DEV,
      });
      setTcForTests({
        tcDump: () => Promise.reject(refusal()),
        // Recorded, and passed on to the kernel: an op sent after the refusal would show in tc's view too.
        tcApply: (key, ops, ns) => { applied.push(ops); return binding.tcApply(key, ops, ns); },
      });
      const calls: Array<[string, () => Promise<unknown>]> = [
        ['setBandwidth', () => setBandwidth(DEV, { inbound: { average: 1000 }, outbound: { average: 1000, peak: 2000 } }, { netns: tb.host.path })],
        ['setBandwidth null', () => setBandwidth(DEV, null, { netns: tb.host.path })],
        ['getBandwidth', () => getBandwidth(DEV, { netns: tb.host.path })],
        ['getBandwidth foreign', () => getBandwidth(DEV, { netns: tb.host.path, foreign: true })],
      ];
      for (const [what, call] of calls) {
        const err = await call().then(() => null, (e: unknown) => e);
        expect(err, what).toBeInstanceOf(MacvtapError);
        expect(err, what).toMatchObject({ code: 'EOPNOTSUPP', errno: -95, syscall: 'RTM_GETQDISC', device: DEV });
        expect((err as Error).message, what).toMatch(/^EOPNOTSUPP: Operation not supported, RTM_GETQDISC 'mvt-bw': this kernel lacks traffic control \(the kernel is built without CONFIG_NET_SCHED/);
        // The stack is the caller's, not the addon's.
        expect((err as Error).stack, what).toMatch(/bandwidth\.test\.ts/);
      }
      expect(applied).toEqual([]);
      expect(view()).toEqual(before);
    } finally {
      setTcForTests(null);
      tb.destroy();
    }
  });
});

describePrivileged('bandwidth on a kernel with qdiscs but without the policer', () => {
  it.runIf(support === 'partial')('is refused naming what is missing, and changes nothing (the htb part is undone)', async () => {
    const tb = makeTestbed(9);
    try {
      await createMacvtap({ lower: tb.lower, name: DEV, mac: G, netns: tb.host.path });
      const before = [tcJson(tb, 'qdisc'), tcClassesOf(tb)];
      const err = await setBandwidth(DEV, { inbound: { average: 1000 }, outbound: { average: 1000 } }, { netns: tb.host.path }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(MacvtapError);
      expect(err).toMatchObject({ code: 'ENOENT', syscall: 'RTM_NEWTFILTER' });
      expect((err as Error).message).toMatch(/CONFIG_NET_CLS_MATCHALL|CONFIG_NET_ACT_POLICE/);
      // tc's stats counters move with traffic: compare what is installed, not the counters.
      const shape = (l: ReadonlyArray<{ kind?: unknown; handle?: unknown; parent?: unknown; root?: unknown }>): unknown[] => l.map((x) => [x.kind, x.handle, x.parent, x.root]);
      expect([tcJson(tb, 'qdisc'), tcClassesOf(tb)].map(shape)).toEqual(before.map(shape));
      expect(await getBandwidth(DEV, { netns: tb.host.path })).toEqual({});
    } finally {
      tb.destroy();
    }
  });
});

describePrivileged('bandwidth on a tap: the directions swap', () => {
  it.runIf(support !== 'none')('inbound (to the guest) is the tap\'s transmit path: an htb root qdisc', async () => {
    const tb = makeTestbed(9);
    try {
      const q = await createTap({ name: 'mvt-bwtap', netns: tb.host.path });
      try {
        // A tap's receive path is the guest's writes, its transmit path the frames to the guest: the reverse of a macvtap.
        await setBandwidth('mvt-bwtap', { inbound: { average: 300, burst: 24 } }, { netns: tb.host.path });
        const qd = JSON.parse(tb.host.exec('tc', ['-j', 'qdisc', 'show', 'dev', 'mvt-bwtap'])) as Record<string, unknown>[];
        expect(qd.some((x) => x.kind === 'htb' && x.root === true && x.handle === `${BANDWIDTH_HANDLE.toString(16)}:`)).toBe(true);
        expect(qd.some((x) => x.kind === 'ingress')).toBe(false);
        expect(await getBandwidth('mvt-bwtap', { netns: tb.host.path })).toEqual({ inbound: { average: 300, burst: 24 } });
        await setBandwidth('mvt-bwtap', null, { netns: tb.host.path });
        expect(tb.host.exec('tc', ['qdisc', 'show', 'dev', 'mvt-bwtap'])).not.toMatch(/htb/);
      } finally {
        await q.close();
      }
    } finally {
      tb.destroy();
    }
  });

  it.runIf(support !== 'none')('refuses a link that is not a guest port', async () => {
    const tb = makeTestbed(9);
    try {
      await expect(setBandwidth(tb.lower, { inbound: { average: 100 } }, { netns: tb.host.path })).rejects.toMatchObject({ code: 'EINVAL', message: /macvtap or a tap.*veth/ });
    } finally {
      tb.destroy();
    }
  });
});

describePrivileged('bandwidth on a macvtap (traffic control in the kernel)', () => {
  if (!hasTc) {
    process.stderr.write('\n*** SKIPPING bandwidth on a macvtap: this kernel lacks the matchall classifier or police action (run it with npm run test:kernel) ***\n');
  }
  let tb: Testbed;
  let q: TapQueue;
  const ns = (): { netns: string } => ({ netns: tb.host.path });

  beforeAll(async () => {
    if (!hasTc || !isRoot) return;
    tb = makeTestbed(9);
    await createMacvtap({ lower: tb.lower, name: DEV, mac: G, mode: 'bridge', netns: tb.host.path });
    tb.host.exec('sysctl', ['-q', '-w', `net.ipv6.conf.${DEV}.disable_ipv6=1`]);
    await setLink(DEV, { up: true }, ns());
    // The peer knows the guest's MAC: no ARP needs to pass the policer.
    tb.peer.ip('neigh', 'replace', G_IP, 'lladdr', G, 'dev', tb.peerIf, 'nud', 'permanent');
    [q] = (await openTap(DEV, { netns: tb.host.path, vnetHdr: false })) as [TapQueue];
  });
  afterAll(async () => {
    await q?.close();
    tb?.destroy();
  });

  /** Our pieces as tc sees them, in the units tc's JSON uses. */
  function tcView(): { root?: Record<string, unknown>; cls?: TcClass; police: Record<string, unknown>[]; qdiscs: string[] } {
    const qdiscs = tcJson(tb, 'qdisc');
    const root = qdiscs.find((x) => x.root === true && x.kind === 'htb' && x.handle === `${BANDWIDTH_HANDLE.toString(16)}:`);
    const cls = tcClassesOf(tb).find((x) => x.handle === `${BANDWIDTH_HANDLE.toString(16)}:1`);
    const filters = qdiscs.some((x) => x.kind === 'ingress') ? tcJson(tb, 'filter', 'ingress') : [];
    const police = filters.flatMap((f) => {
      const opts = f.options as { actions?: Record<string, unknown>[] } | undefined;
      return (opts?.actions ?? []).filter((a) => a.kind === 'police').map((a) => ({ ...a, pref: f.pref }));
    });
    return { ...(root && { root }), ...(cls && { cls }), police, qdiscs: qdiscs.map((x) => String(x.kind)) };
  }

  it.runIf(hasTc)('installs an htb class for outbound and an ingress policer for inbound, as tc shows them', async () => {
    const bw = { inbound: { average: 1000, burst: 64 }, outbound: { average: 2000, peak: 4000, burst: 128 } };
    await setBandwidth(DEV, bw, ns());
    const t = tcView();
    expect(t.root).toMatchObject({ kind: 'htb', options: { default: '0x1' } });
    // tc reports rates in bytes/s and bursts in bytes.
    expect(t.cls).toMatchObject({ kind: 'htb', rate: 2_000_000, ceil: 4_000_000 });
    expect(Math.abs((t.cls!.burst as number) / (128 * 1024) - 1)).toBeLessThan(0.01); // tc prints "128Kb" rounded
    expect(t.police).toHaveLength(1);
    expect(t.police[0]).toMatchObject({ control_action: { type: 'drop' }, pref: 0x6d76 });
    // iproute2 6.1 leaves the police action's rate and burst out of its JSON: read them from its text.
    const text = tb.host.exec('tc', ['filter', 'show', 'dev', DEV, 'ingress']);
    const m = tcPolice(text);
    expect(m, text).not.toBeNull();
    expect(m!.rate, text).toBe(1_000_000);
    expect(Math.abs(m!.burst / (64 * 1024) - 1), text).toBeLessThan(0.01);
    expect(m!.action, text).toBe('drop');
    expect(await getBandwidth(DEV, ns())).toEqual(bw);
    // Ours are in libvirt's layout too: read as the limits in force, they are the same.
    expect(await getBandwidth(DEV, { ...ns(), foreign: true })).toEqual(bw);
  });

  it.runIf(hasTc)('is idempotent, replaces in place, and null removes ours and nothing else', async () => {
    const bw = { inbound: { average: 3000, burst: 32 }, outbound: { average: 1500, burst: 48 } };
    await setBandwidth(DEV, bw, ns());
    const first = await getBandwidth(DEV, ns());
    await setBandwidth(DEV, bw, ns());
    expect(await getBandwidth(DEV, ns())).toEqual(first);
    expect(first).toEqual(bw);
    const t = tcView();
    expect(t.police).toHaveLength(1); // the replacement did not leave the old policer behind
    expect(t.qdiscs.filter((k) => k === 'htb')).toHaveLength(1);
    // One direction only: the other one's limit of ours goes.
    await setBandwidth(DEV, { outbound: { average: 700, burst: 16 } }, ns());
    expect(await getBandwidth(DEV, ns())).toEqual({ outbound: { average: 700, burst: 16 } });
    expect(tcView().police).toHaveLength(0);
    // Someone else's filter on the ingress qdisc stays, and so does the qdisc it needs.
    await setBandwidth(DEV, { inbound: { average: 500, burst: 16 } }, ns());
    tb.host.exec('tc', ['filter', 'add', 'dev', DEV, 'parent', 'ffff:', 'prio', '7', 'protocol', 'ip', 'matchall', 'action', 'pass']);
    await setBandwidth(DEV, null, ns());
    expect(await getBandwidth(DEV, ns())).toEqual({});
    const after = tcView();
    expect(after.root).toBeUndefined();
    expect(after.police).toHaveLength(0);
    const filters = tcJson(tb, 'filter', 'ingress');
    expect(filters.some((f) => f.pref === 7)).toBe(true);
    tb.host.exec('tc', ['qdisc', 'del', 'dev', DEV, 'ingress']);
    // Nothing of ours: null again sends nothing and succeeds.
    await setBandwidth(DEV, null, ns());
    expect(tcView().qdiscs).not.toContain('htb');
    expect(tcView().qdiscs).not.toContain('ingress');
  });

  it.runIf(hasTc)('refuses a root qdisc that is not ours', async () => {
    tb.host.exec('tc', ['qdisc', 'replace', 'dev', DEV, 'root', 'handle', '5:', 'tbf', 'rate', '1mbit', 'burst', '32kb', 'latency', '50ms']);
    try {
      await expect(setBandwidth(DEV, { outbound: { average: 100 } }, ns())).rejects.toMatchObject({ code: 'EBUSY' });
      expect(tcView().qdiscs).toContain('tbf');
    } finally {
      tb.host.exec('tc', ['qdisc', 'del', 'dev', DEV, 'root']);
    }
  });

  /** Guest → peer: the guest endpoint writes as fast as the tap fd takes frames; the peer counts what arrives. */
  async function fromGuest(ms: number): Promise<number> {
    const guest = startGuest({
      // busy: a blocking write on a shaped macvtap can sleep until a frame arrives for the guest (see README).
      fd: q.fd, vnetHdrSize: 0, mac: G, ip: G_IP, mode: 'generate', poll: 'busy', durationMs: ms + 900,
      generate: { dstMac: tb.peerMac, dstIp: tb.peerIp, srcPort: 40000, dstPort: 40001, payloadSize: PAYLOAD, ratePps: 0 },
    });
    await guest.ready;
    // The sink starts once the bucket's first burst has gone, and stops before the sender does.
    await new Promise((r) => setTimeout(r, 300));
    const peer = startPeer({ netns: tb.peer.path, bindIp: tb.peerIp, bindPort: 40001, mode: 'sink', poll: 'block', durationMs: ms });
    const p = await peer.done;
    await guest.done;
    return (p.rxPackets * FRAME) / (p.elapsedNs / 1e9);
  }

  /**
   * Peer → guest: the peer socket sends as fast as it can for `ms`; the guest endpoint, started first and stopped after
   * the tap's queue has drained, counts what it reads. The policer passes its bucket (`burst` bytes) and then the rate
   * for as long as the flood lasts.
   */
  async function toGuest(ms: number, burst: number): Promise<number> {
    const guest = startGuest({ fd: q.fd, vnetHdrSize: 0, mac: G, ip: G_IP, mode: 'sink', poll: 'block', durationMs: ms + 5000 });
    await guest.ready;
    const peer = startPeer({
      netns: tb.peer.path, bindIp: tb.peerIp, bindPort: 40002, mode: 'generate', target: { ip: G_IP, port: 40003 },
      payloadSize: PAYLOAD, ratePps: 0, poll: 'block', durationMs: ms,
    });
    const p = await peer.done;
    await new Promise((r) => setTimeout(r, 700));
    const g = await guest.stop();
    return (g.rxBytes - burst) / (p.elapsedNs / 1e9);
  }

  /**
   * Bytes that arrive in the first `ms` of a flood (the counting side starts first), either direction, and the seconds
   * the counting side actually ran (under emulation its timer can end it late).
   */
  async function fromStart(dir: 'inbound' | 'outbound', ms: number): Promise<{ bytes: number; seconds: number }> {
    if (dir === 'outbound') {
      const peer = startPeer({ netns: tb.peer.path, bindIp: tb.peerIp, bindPort: 40001, mode: 'sink', poll: 'block', durationMs: ms });
      await peer.ready;
      const guest = startGuest({
        fd: q.fd, vnetHdrSize: 0, mac: G, ip: G_IP, mode: 'generate', poll: 'busy', durationMs: ms + 300,
        generate: { dstMac: tb.peerMac, dstIp: tb.peerIp, srcPort: 40000, dstPort: 40001, payloadSize: PAYLOAD, ratePps: 0 },
      });
      const p = await peer.done;
      await guest.done;
      return { bytes: p.rxPackets * FRAME, seconds: p.elapsedNs / 1e9 };
    }
    const guest = startGuest({ fd: q.fd, vnetHdrSize: 0, mac: G, ip: G_IP, mode: 'sink', poll: 'block', durationMs: ms });
    await guest.ready;
    const peer = startPeer({
      netns: tb.peer.path, bindIp: tb.peerIp, bindPort: 40002, mode: 'generate', target: { ip: G_IP, port: 40003 },
      payloadSize: PAYLOAD, ratePps: 0, poll: 'block', durationMs: ms + 300,
    });
    const g = await guest.done;
    await peer.done;
    return { bytes: g.rxBytes, seconds: g.elapsedNs / 1e9 };
  }

  for (const dir of ['outbound', 'inbound'] as const) {
    it.runIf(hasTc)(`${dir}: with peak and burst, the first burst leaves at up to the peak, then the average`, async () => {
      // 500 KB/s average, 1000 KB/s peak, a 512 KB bucket: it lasts ≈1 s at the peak. In the first 0.5 s about
      // peak × 0.5 s arrives (without the peak it would be burst + average × 0.5 s = 762 KB); in the first 2.5 s
      // burst + average × 2.5 s (the peak alone would allow 2500 KB, the average alone 1250 KB). The policer's peak
      // bucket is its mtu (64 KB), the htb's ceil bucket two frames.
      const avg = 500_000;
      const peak = 1_000_000;
      const burst = 512 * 1024;
      const peakBucket = dir === 'inbound' ? 65535 : 2 * 1514;
      const expect1 = (w: number): number => Math.min(peakBucket + peak * w, burst + avg * w);
      const rows: string[] = [];
      // Inbound: the first window only. Over 2.5 s a fresh policer passed 1751–2100 KB against 1774 KB by this model
      // (cause not established); tc's own `police … peakrate` with the same parameters, in the same run, passed as
      // much as ours (1751 vs 1940 KB, and 1976 vs 1956 without the peak), so it is not our encoding.
      for (const w of dir === 'outbound' ? [0.5, 2.5] : [0.5]) {
        await setBandwidth(DEV, { [dir]: { average: avg / 1000, peak: peak / 1000, burst: burst / 1024 } }, ns());
        const { bytes, seconds } = await fromStart(dir, w * 1000);
        await setBandwidth(DEV, null, ns()); // a fresh bucket for the next window
        const want = expect1(seconds);
        rows.push(`first ${seconds.toFixed(2)} s: ${(bytes / 1000).toFixed(0)} KB, expected ${(want / 1000).toFixed(0)} KB`);
        expect(bytes / want, rows.join('; ')).toBeGreaterThan(0.85);
        expect(bytes / want, rows.join('; ')).toBeLessThan(1.15);
      }
      process.stderr.write(`bandwidth ${dir} peak/burst: ${rows.join('; ')}\n`);
    });
  }

  const RUN_MS = 2000;
  for (const [dir, measure] of [['outbound (from the guest)', (ms: number) => fromGuest(ms)], ['inbound (to the guest)', (ms: number, burst: number) => toGuest(ms, burst)]] as const) {
    it.runIf(hasTc)(`${dir}: the delivered rate is the average within ±15%, and unshaped is clearly faster`, async () => {
      const key = dir.startsWith('outbound') ? 'outbound' : 'inbound';
      const rows: string[] = [];
      const rates = [1000, 4000];
      for (const average of rates) {
        // A bucket of 1/8 s: the htb's timer under emulation fires late, and a short bucket would lose the tokens of the
        // wait (the sink starts after the first burst, so the bucket's size does not enter the measured rate).
        await setBandwidth(DEV, { [key]: { average, burst: average / 8 } }, ns());
        const got = await measure(RUN_MS, (average / 8) * 1024);
        rows.push(`${average} KB/s → ${(got / 1000).toFixed(0)} KB/s`);
        expect(got / (average * 1000), rows.join('; ')).toBeGreaterThan(0.85);
        expect(got / (average * 1000), rows.join('; ')).toBeLessThan(1.15);
      }
      await setBandwidth(DEV, null, ns());
      const free = await measure(RUN_MS, 0);
      rows.push(`unshaped → ${(free / 1000).toFixed(0)} KB/s`);
      process.stderr.write(`bandwidth ${dir}: ${rows.join('; ')}\n`);
      expect(free, rows.join('; ')).toBeGreaterThan(1.5 * Math.max(...rates) * 1000);
    });
  }

  it.runIf(hasTc)('replacing a rate under load never lets traffic through unshaped', async () => {
    // The policer is replaced every 50 ms while the peer floods the guest. Each new policer starts with a full bucket,
    // so the bound is the rate plus one bucket per replacement; an unshaped gap lets the flood (several MB/s here)
    // through and shows far above it.
    const rate = 200;
    const burst = 4;
    await setBandwidth(DEV, { inbound: { average: rate, burst } }, ns());
    const running = toGuest(RUN_MS, burst * 1024);
    let replaced = 0;
    const until = Date.now() + RUN_MS;
    while (Date.now() < until) {
      await setBandwidth(DEV, { inbound: { average: rate, burst: replaced % 2 ? burst : burst + 1 } }, ns());
      replaced++;
      await new Promise((r) => setTimeout(r, 50));
    }
    const got = await running;
    await setBandwidth(DEV, null, ns());
    const bound = rate * 1000 + (replaced * (burst + 1) * 1024) / (RUN_MS / 1000);
    expect(replaced).toBeGreaterThan(10);
    expect(got / bound, `${(got / 1000).toFixed(0)} KB/s over ${replaced} replacements, bound ${(bound / 1000).toFixed(0)} KB/s`).toBeLessThan(1.15);
    expect(got / (rate * 1000)).toBeGreaterThan(0.85);
  });

  it.runIf(hasTc)('TapQueue.write on a blocking queue of a shaped macvtap waits for the shaper, and returns', async () => {
    // In a child process, which is killed if it hangs: before TapQueue.write polled first, a blocking write slept
    // until a frame for the guest woke the queue (the tap driver wakes only poll()ers when its send buffer drains).
    const frames = 1500;
    const average = 1000;
    {
      await setBandwidth(DEV, { outbound: { average, burst: 16 } }, ns());
      const script = `
        const { openTap } = await import(${JSON.stringify(join(import.meta.dirname, '..', 'dist', 'lib', 'index.js'))});
        const [q] = await openTap(${JSON.stringify(DEV)}, { netns: ${JSON.stringify(tb.host.path)}, vnetHdr: false });
        const mac = (m) => Buffer.from(m.split(':').map((x) => parseInt(x, 16)));
        const frame = Buffer.concat([mac(${JSON.stringify(tb.peerMac)}), mac(${JSON.stringify(G)}), Buffer.from([0x88, 0xb5]), Buffer.alloc(${FRAME - 14}, 7)]);
        const t0 = process.hrtime.bigint();
        for (let i = 0; i < ${frames}; i++) q.write(frame);
        console.log(JSON.stringify({ ms: Number(process.hrtime.bigint() - t0) / 1e6 }));
        await q.close();`;
      const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000, killSignal: 'SIGKILL' });
      await setBandwidth(DEV, null, ns());
      expect(r.signal, `the writer hung (killed after 30 s): ${r.stderr}`).toBeNull();
      expect(r.status, r.stderr).toBe(0);
      const { ms } = JSON.parse(r.stdout.trim()) as { ms: number };
      // Back-pressured at the shaped rate: the last frames wait for the ones before them (the send buffer and the
      // qdisc hold a few hundred KB, so the writer finishes somewhat before the wire does).
      const wire = (frames * FRAME) / (average * 1000) * 1000;
      expect(ms, `${frames} blocking writes took ${ms.toFixed(0)} ms; the wire needs ${wire.toFixed(0)} ms`).toBeGreaterThan(wire * 0.5);
      expect(ms).toBeLessThan(wire * 3);
    }
  });

  it.runIf(hasTc)('the harness\'s guest endpoint, generate in block mode on a shaped macvtap, delivers the rate and ends on time', async () => {
    // The endpoint writes on a non-blocking fd and waits in ppoll() for POLLOUT; a bare blocking write slept here until
    // a frame for the guest happened to wake the queue (the tap driver wakes only poll()ers), and stop() could not end it.
    const average = 1000;
    await setBandwidth(DEV, { outbound: { average, burst: average / 8 } }, ns());
    try {
      const guest = startGuest({
        fd: q.fd, vnetHdrSize: 0, mac: G, ip: G_IP, mode: 'generate', poll: 'block', durationMs: RUN_MS + 900,
        generate: { dstMac: tb.peerMac, dstIp: tb.peerIp, srcPort: 40000, dstPort: 40001, payloadSize: PAYLOAD, ratePps: 0 },
      });
      await guest.ready;
      await new Promise((r) => setTimeout(r, 300)); // the first burst goes before the sink starts
      const p = await startPeer({ netns: tb.peer.path, bindIp: tb.peerIp, bindPort: 40001, mode: 'sink', poll: 'block', durationMs: RUN_MS }).done;
      const g = await guest.done;
      const got = (p.rxPackets * FRAME) / (p.elapsedNs / 1e9);
      const what = `${average} KB/s → ${(got / 1000).toFixed(0)} KB/s; the generator ran ${(g.elapsedNs / 1e6).toFixed(0)} ms of ${RUN_MS + 900}, sent ${g.txPackets}, ${g.txErrors} refused`;
      process.stderr.write(`bandwidth generate/block: ${what}\n`);
      // Ends at its deadline (not stuck in a write), back-pressured rather than refused, at the shaped rate.
      expect(g.elapsedNs / 1e6, what).toBeLessThan(RUN_MS + 900 + 500);
      expect(g.txErrors, what).toBe(0);
      expect(got / (average * 1000), what).toBeGreaterThan(0.85);
      expect(got / (average * 1000), what).toBeLessThan(1.15);
      // The fd's own flags are back as they were (blocking: TapQueue's default; O_NONBLOCK is octal 04000).
      const flags = Number.parseInt(/flags:\s*(\d+)/.exec(readFileSync(`/proc/self/fdinfo/${q.fd}`, 'utf8'))![1]!, 8);
      expect(flags & 0o4000).toBe(0);
    } finally {
      await setBandwidth(DEV, null, ns());
    }
  });

  it.runIf(hasTc)('plugSelfManaged applies the vif\'s bandwidth (quota keys under the explicit option) to its macvtap', async () => {
    const vif = novaVif({
      address: 'fa:16:3e:09:00:0b', devname: 'mvt-bwvif', network: { meta: { mtu: 1500 } },
      details: { macvtap_source: tb.lower, macvtap_mode: 'bridge', physical_interface: tb.lower },
    });
    const p = await plugSelfManaged(vif, {
      netns: tb.host.path,
      xml: { quota: { 'quota:vif_inbound_average': '800', 'quota:vif_inbound_burst': '40', 'quota:vif_outbound_average': '600' }, bandwidth: { outbound: { average: 500, burst: 20 } } },
    });
    try {
      expect(await getBandwidth('mvt-bwvif', ns())).toEqual({ inbound: { average: 800, burst: 40 }, outbound: { average: 500, burst: 20 } });
      expect(p.xml).toMatch(/<inbound average=.800. burst=.40.\/>/);
    } finally {
      await p.unplug();
    }
  });

  it.runIf(hasTc)('macvtap bandwidth sets, shows and clears', () => {
    const run = (...a: string[]): string => execFileSync(process.execPath, [cliJs, 'bandwidth', DEV, '--netns', tb.host.path, ...a], { encoding: 'utf8' });
    expect(JSON.parse(run('--inbound', '900,,30', '--outbound', '300,600,12', '--json'))).toEqual({
      inbound: { average: 900, burst: 30 }, outbound: { average: 300, peak: 600, burst: 12 },
    });
    expect(run()).toMatch(/inbound \(to the guest\): +average 900 KB\/s burst 30 KB\noutbound \(from the guest\): average 300 KB\/s peak 600 KB\/s burst 12 KB/);
    expect(run('--clear')).toMatch(/inbound \(to the guest\): +unlimited\noutbound \(from the guest\): unlimited/);
    const bad = spawnSync(process.execPath, [cliJs, 'bandwidth', DEV, '--inbound', '0'], { encoding: 'utf8' });
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toMatch(/average/);
  });

  it.runIf(hasTc)('a link deleted with rates set leaves nothing behind', async () => {
    const name = 'mvt-bw2';
    await createMacvtap({ lower: tb.lower, name, netns: tb.host.path });
    await setBandwidth(name, { inbound: { average: 100 }, outbound: { average: 100 } }, ns());
    const handle = `${BANDWIDTH_HANDLE.toString(16)}:`;
    expect(tb.host.exec('tc', ['-j', 'qdisc', 'show'])).toContain(handle);
    await deleteLink(name, ns());
    const all = JSON.parse(tb.host.exec('tc', ['-j', 'qdisc', 'show'])) as { dev: string; handle: string }[];
    expect(all.filter((x) => x.dev === name || x.handle === handle)).toEqual([]);
    expect(execFileSync('ip', ['netns', 'exec', tb.host.name, 'tc', '-j', 'filter', 'show', 'dev', 'mvt-l0', 'ingress'], { encoding: 'utf8' })).not.toContain('police');
  });
});
