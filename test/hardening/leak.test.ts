/**
 * The leak test, `npm run test:leak`: 10,000 cycles of create → open (1–4 queues) → write a frame that a
 * socket in the peer namespace receives → close → delete, in throwaway namespaces with a veth lower. Every other
 * cycle the macvtap takes an ifindex whose `/dev/tapN` belongs to another namespace's macvtap, so its queues come
 * through a private device node; the other cycles open `/dev/tapN` itself.
 *
 * Measured before, after the warm-up and at the end, each independently of the library: open fds (`/proc/self/fd`;
 * the warm-up may add only the library's per-namespace netlink sockets, which live as long as the process), links (`ip -j link show`
 * in the namespace), device nodes (`/dev/tap<ifindex>` of the cycles' own ifindex, the private node directories in
 * /run) and RSS (`/proc/self/status`, after a full GC). RSS is sampled every 500 cycles and must stay flat after a
 * warm-up of 500: growth over the remaining 9,500 cycles ≤ {@link RSS_BOUND_MIB} MiB (why that bound: see there).
 *
 * `MACVTAP_LEAK_CYCLES=N` runs fewer (or more) cycles, for a quick try; the bound then scales with the count.
 */
import * as fs from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createMacvtap, deleteLink, getLink, openTap } from '../../lib/index.js';
import { buildUdpFrame } from '../../bench/testbed/frames.js';
import { describePrivileged } from '../helpers/suite.js';
import { destroyAll, makeTestbed, TestNetns, type Testbed } from '../../bench/testbed/netns.js';
import { UdpListener } from '../../bench/testbed/peer.js';

const CYCLES = Number(process.env.MACVTAP_LEAK_CYCLES ?? 10_000);
const WARMUP = Math.min(500, Math.floor(CYCLES / 10));
const SAMPLE_EVERY = Math.max(1, Math.floor(CYCLES / 20));
/**
 * RSS growth allowed after the warm-up, for 10,000 cycles: 4 MiB. A leak of one small native object per cycle (the
 * addon's smallest allocations — a queue's fd list, a result string — are ≥ 32 bytes with malloc's header) would be
 * ≥ 0.3 MiB over 9,500 cycles; anything per queue or per frame (a 64 KiB read buffer, a socket) would be tens of
 * MiB. What is not a leak moves RSS by less: after a full GC the V8 heap returns to its size give or take a page or
 * two, and glibc keeps freed chunks in its arenas (up to the 128 KiB trim threshold per arena, a few arenas for the
 * 4 libuv threads and the main thread). 4 MiB is above that noise and below any per-queue leak.
 */
const RSS_BOUND_MIB = 4 * Math.max(1, CYCLES / 10_000);

const TAP_MAC = '02:00:00:00:3c:0a';
const TAP_IP = '10.200.60.10';
const TAP_PORT = 40600;
const PEER_PORT = 40601;

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

function rssKiB(): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(fs.readFileSync('/proc/self/status', 'utf8'));
  return Number(m![1]);
}
const fdCount = (): number => fs.readdirSync('/proc/self/fd').length;
/** What each open fd is (`readlink /proc/self/fd/N`). */
const fdTargets = (): string[] => fs.readdirSync('/proc/self/fd').flatMap((n) => {
  try {
    return [fs.readlinkSync(`/proc/self/fd/${n}`)];
  } catch {
    return []; // the directory's own fd, closed by now
  }
});
const privateDirs = (): string[] => fs.readdirSync('/run').filter((n) => n.startsWith(`macvtap-${process.pid}-`));

describePrivileged(`leak: ${CYCLES} create → open → frame → close → delete cycles`, () => {
  let tb: Testbed;
  let other: TestNetns;
  let listener: UdpListener;
  // Our own ifindex (no other namespace has it, so /dev/tapN is ours) and one another namespace's macvtap holds.
  const OWN = 30_000 + (process.pid % 10_000);
  const TAKEN = OWN + 10_000;

  beforeAll(async () => {
    tb = makeTestbed(60);
    other = TestNetns.create();
    other.veth('mvt-o0', 'mvt-o1');
    other.ip('link', 'add', 'link', 'mvt-o0', 'name', 'mvt-taken', 'index', String(TAKEN), 'type', 'macvtap');
    listener = await UdpListener.start(tb.peer, PEER_PORT, { lifetimeMs: 60 * 60_000 });
  });
  afterAll(() => {
    listener?.stop();
    tb?.destroy();
    other?.destroy();
    destroyAll();
  });

  it('fds, links, device nodes and RSS are where they started', async () => {
    const links = (): string[] => tb.host.ipLinks().map((l) => l.ifname).sort();
    const before = { fds: fdCount(), links: links(), dirs: privateDirs() };
    const targetsBefore = new Set(fdTargets());
    // The first cycles make the library's long-lived per-namespace state: pooled netlink sockets and the cached sysfs
    // mount of the namespace (an O_PATH fd of a detached mount, which readlink shows as "/"); both caches are bounded
    // (16 namespaces). Counted at the warm-up, they must be the only fds added, and the count must not move after.
    let fdsAfterWarmup = 0;
    let addedByWarmup: string[] = [];
    const takenDev = fs.statSync(`/dev/tap${TAKEN}`).rdev;
    let rssAfterWarmup = 0;
    const samples: Array<[number, number]> = [];
    const started = Date.now();
    let privateOpens = 0;

    for (let i = 0; i < CYCLES; i++) {
      const ifindex = i % 2 === 0 ? OWN : TAKEN;
      const link = await createMacvtap({ lower: tb.lower, name: 'mvt-leak', mac: TAP_MAC, up: true, ifindex, netns: tb.host.path });
      const queues = await openTap(link.ifindex, { queues: 1 + (i % 4), vnetHdr: false, netns: tb.host.path });
      if (queues[0]!.path !== `/dev/tap${ifindex}`) privateOpens++;
      const payload = Buffer.from(`cycle ${i}`);
      const q = queues[i % queues.length]!;
      q.write(buildUdpFrame({ srcMac: TAP_MAC, dstMac: tb.peerMac, srcIp: TAP_IP, dstIp: tb.peerIp, srcPort: TAP_PORT, dstPort: PEER_PORT, payload }));
      await listener.waitFor((d) => d.data.equals(payload));
      listener.received.splice(0);
      await Promise.all(queues.map((x) => x.close()));
      await deleteLink(link.ifindex, { netns: tb.host.path });

      const done = i + 1;
      if (done === WARMUP || done % SAMPLE_EVERY === 0 || done === CYCLES) {
        gc();
        const rss = rssKiB();
        if (done === WARMUP) {
          rssAfterWarmup = rss;
          fdsAfterWarmup = fdCount();
          addedByWarmup = fdTargets().filter((t) => !targetsBefore.has(t));
        }
        samples.push([done, rss]);
        process.stdout.write(`leak: cycle ${done}/${CYCLES}: RSS ${(rss / 1024).toFixed(1)} MiB, fds ${fdCount()}, ${((Date.now() - started) / 1000).toFixed(0)} s\n`);
      }
    }

    gc();
    const after = { fds: fdCount(), links: links(), dirs: privateDirs() };
    const rssEnd = rssKiB();
    const growthMiB = (rssEnd - rssAfterWarmup) / 1024;
    const seconds = (Date.now() - started) / 1000;
    process.stdout.write(
      `leak: ${CYCLES} cycles in ${seconds.toFixed(0)} s (${((seconds * 1000) / CYCLES).toFixed(1)} ms each), ${privateOpens} through a private node; ` +
        `fds ${before.fds} → ${fdsAfterWarmup} after ${WARMUP} cycles (${addedByWarmup.join(' ')}) → ${after.fds}; links ${before.links.length} → ${after.links.length}; private dirs ${before.dirs.length} → ${after.dirs.length}; ` +
        `RSS after ${WARMUP} cycles ${(rssAfterWarmup / 1024).toFixed(1)} MiB → ${(rssEnd / 1024).toFixed(1)} MiB at the end (${growthMiB >= 0 ? '+' : ''}${growthMiB.toFixed(2)} MiB, bound ${RSS_BOUND_MIB} MiB)\n` +
        `leak: RSS samples (cycle: MiB) ${samples.map(([c, r]) => `${c}: ${(r / 1024).toFixed(1)}`).join(', ')}\n`,
    );

    expect(privateOpens).toBe(Math.floor(CYCLES / 2));
    expect(addedByWarmup.every((t) => t.startsWith('socket:') || t === '/')).toBe(true);
    expect(addedByWarmup.length).toBeLessThanOrEqual(4);
    expect(after.fds).toBe(fdsAfterWarmup);
    expect(after.links).toEqual(before.links);
    expect(after.dirs).toEqual([]);
    // Our ifindex's node went with the last device; the taken one is still the other namespace's.
    expect(fs.existsSync(`/dev/tap${OWN}`)).toBe(false);
    expect(fs.statSync(`/dev/tap${TAKEN}`).rdev).toBe(takenDev);
    await expect(getLink('mvt-leak', { netns: tb.host.path })).rejects.toMatchObject({ code: 'ENODEV' });
    expect(growthMiB).toBeLessThanOrEqual(RSS_BOUND_MIB);
  });
});
