/**
 * Datapath endpoints in a real testbed: a macvtap (bridge mode) on a veth whose other end is in the peer namespace
 * with an IP. Short runs, no speed assertions: packets flow, counts match on both ends, percentiles are ordered, the
 * wait modes and CPU pinning work, and an endpoint whose environment goes away mid-run takes its thread with it.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { afterAll, afterEach, beforeEach, expect, it, type TestContext } from 'vitest';
import { createMacvtap, MacvtapError, openTap, type TapQueue } from '../lib/index.js';
import { lostRoundTrips, startGuest, startPeer, type EndpointStats, type PollMode } from '../bench/testbed/endpoints.js';
import { describePrivileged } from './helpers/suite.js';
import { destroyAll, makeTestbed, type Testbed } from '../bench/testbed/netns.js';

const DIST_INDEX = fileURLToPath(new URL('../dist/lib/index.js', import.meta.url));
const DIST_ENDPOINTS = fileURLToPath(new URL('../bench/dist/testbed/endpoints.js', import.meta.url));
const GUEST_MAC = '02:00:00:00:01:10';
const GUEST_IP = '10.200.1.10';
const PORT = 7777;

/** Names of this process's threads that are endpoint threads (named by the addon). */
function endpointThreads(): string[] {
  const names: string[] = [];
  for (const t of fs.readdirSync('/proc/self/task')) {
    try {
      const comm = fs.readFileSync(`/proc/self/task/${t}/comm`, 'utf8').trim();
      if (comm === 'mvt-guest' || comm === 'mvt-peer') names.push(comm);
    } catch {
      // The thread ended while we looked.
    }
  }
  return names;
}

function expectOrdered(stats: EndpointStats): void {
  const l = stats.latency!;
  expect(l).not.toBeNull();
  expect(l.minNs).toBeGreaterThan(0);
  expect(l.minNs).toBeLessThanOrEqual(l.p50Ns);
  expect(l.p50Ns).toBeLessThanOrEqual(l.p90Ns);
  expect(l.p90Ns).toBeLessThanOrEqual(l.p99Ns);
  expect(l.p99Ns).toBeLessThanOrEqual(l.p999Ns);
  expect(l.p999Ns).toBeLessThanOrEqual(l.maxNs);
  expect(l.meanNs).toBeGreaterThanOrEqual(l.minNs);
  expect(l.meanNs).toBeLessThanOrEqual(l.maxNs);
  expect(l.buckets.reduce((n, [, c]) => n + c, 0)).toBe(l.count);
  for (let i = 1; i < l.buckets.length; i++) expect(l.buckets[i]![0]).toBeGreaterThan(l.buckets[i - 1]![0]);
}

describePrivileged('datapath endpoints', () => {
  let tb: Testbed;
  let queues: TapQueue[] = [];

  async function guestQueue(vnetHdr: boolean): Promise<TapQueue> {
    const [q] = await openTap('mvt-mv0', { vnetHdr, netns: tb.host.path });
    queues.push(q!);
    return q!;
  }

  beforeEach(async () => {
    tb = makeTestbed(1);
    await createMacvtap({ lower: tb.lower, name: 'mvt-mv0', mac: GUEST_MAC, up: true, netns: tb.host.path });
  });
  afterEach(async () => {
    for (const q of queues) await q.close();
    queues = [];
    tb.destroy();
  });
  afterAll(() => destroyAll());

  for (const vnetHdrSize of [10, 0] as const) {
    it(`guest echo answers 1000 pingpong round trips with none lost (vnetHdr ${vnetHdrSize}, pinned 0/1)`, async () => {
      const q = await guestQueue(vnetHdrSize > 0);
      const guest = startGuest({ fd: q.fd, vnetHdrSize, mac: GUEST_MAC, ip: GUEST_IP, mode: 'echo', poll: 'block', durationMs: 30_000, cpu: 0 });
      await guest.ready;
      const peer = startPeer({
        netns: tb.peer.path, bindIp: tb.peerIp, bindPort: 0, mode: 'pingpong', target: { ip: GUEST_IP, port: PORT },
        count: 1000, warmup: 50, poll: 'block', durationMs: 30_000, cpu: 1, timeoutMs: 1000,
      });
      const ps = await peer.done;
      const gs = await guest.stop();
      expect(lostRoundTrips(ps)).toBe(0);
      expect(ps.txPackets).toBe(1050);
      expect(ps.latency!.count).toBe(1000);
      expectOrdered(ps);
      // The guest answered the peer's ARP and echoed every datagram; the fd it was given is still the caller's.
      expect(gs.arpReplies).toBeGreaterThanOrEqual(1);
      expect(gs.rxPackets).toBe(1050);
      expect(gs.txPackets - gs.arpReplies).toBe(1050);
      expect(gs.latency).toBeNull();
      expect(gs.elapsedNs).toBeGreaterThan(0);
      expect(gs.cpuUserUs + gs.cpuSysUs).toBeGreaterThan(0);
      expect(fs.fstatSync(q.fd).isCharacterDevice()).toBe(true);
      expect(q.closed).toBe(false);
    });
  }

  for (const [guestPoll, peerPoll] of [['busy', 'block'], ['block', 'busy']] as [PollMode, PollMode][]) {
    it(`raw-echo answers pingpong (guest ${guestPoll} on cpu 1, peer ${peerPoll} on cpu 0)`, async () => {
      const q = await guestQueue(true);
      const guest = startGuest({ fd: q.fd, vnetHdrSize: 10, mac: GUEST_MAC, ip: GUEST_IP, mode: 'raw-echo', poll: guestPoll, durationMs: 30_000, cpu: 1 });
      await guest.ready;
      const peer = startPeer({
        netns: tb.peer.path, bindIp: tb.peerIp, bindPort: 0, mode: 'pingpong', target: { ip: GUEST_IP, port: PORT },
        count: 300, warmup: 10, poll: peerPoll, durationMs: 30_000, cpu: 0, payloadSize: 1400,
      });
      const ps = await peer.done;
      const gs = await guest.stop();
      expect(lostRoundTrips(ps)).toBe(0);
      expect(ps.rxBytes).toBe(310 * 1400);
      expectOrdered(ps);
      expect(gs.rxPackets).toBe(310);
    });
  }

  it('guest generate at a fixed rate: the peer sink counts every frame the guest sent', async () => {
    const q = await guestQueue(true);
    const peer = startPeer({ netns: tb.peer.path, bindIp: tb.peerIp, bindPort: 9000, mode: 'sink', count: 400, poll: 'block', durationMs: 20_000 });
    await peer.ready;
    const guest = startGuest({
      fd: q.fd, vnetHdrSize: 10, mac: GUEST_MAC, ip: GUEST_IP, mode: 'generate', poll: 'block', durationMs: 20_000,
      generate: { dstMac: tb.peerMac, dstIp: tb.peerIp, srcPort: PORT, dstPort: 9000, payloadSize: 64, ratePps: 4000, count: 400 },
    });
    const gs = await guest.done;
    const ps = await peer.done;
    expect(gs.txPackets - gs.arpReplies).toBe(400);
    expect(gs.txErrors).toBe(0);
    expect(ps.rxPackets).toBe(400);
    expect(ps.rxBytes).toBe(400 * 64);
    // 400 frames at 4000/s take about 0.1 s: the pacing really paced.
    expect(gs.elapsedNs).toBeGreaterThan(80e6);
  });

  it('peer generate at a fixed rate: the guest sink (which answers ARP) counts every datagram', async () => {
    const q = await guestQueue(false);
    const guest = startGuest({ fd: q.fd, vnetHdrSize: 0, mac: GUEST_MAC, ip: GUEST_IP, mode: 'sink', count: 400, poll: 'busy', durationMs: 20_000, cpu: 1 });
    await guest.ready;
    const peer = startPeer({
      netns: tb.peer.path, bindIp: tb.peerIp, bindPort: 0, mode: 'generate', target: { ip: GUEST_IP, port: PORT },
      payloadSize: 200, ratePps: 4000, count: 400, poll: 'block', durationMs: 20_000, cpu: 0,
    });
    const ps = await peer.done;
    const gs = await guest.done;
    expect(ps.txPackets).toBe(400);
    expect(gs.rxPackets).toBe(400);
    expect(gs.rxBytes).toBe(400 * (14 + 20 + 8 + 200));
    expect(gs.arpReplies).toBeGreaterThanOrEqual(1);
  });

  it('GSO super-frames from the guest arrive at the peer as gsoSize segments', async () => {
    const q = await guestQueue(true);
    const gsoSize = 1000;
    const frames = 20;
    const perFrame = 10;
    const peer = startPeer({ netns: tb.peer.path, bindIp: tb.peerIp, bindPort: 9001, mode: 'sink', count: frames * perFrame, poll: 'block', durationMs: 20_000 });
    await peer.ready;
    const guest = startGuest({
      fd: q.fd, vnetHdrSize: 10, mac: GUEST_MAC, ip: GUEST_IP, mode: 'generate', poll: 'block', durationMs: 20_000,
      generate: { dstMac: tb.peerMac, dstIp: tb.peerIp, srcPort: PORT, dstPort: 9001, payloadSize: gsoSize * perFrame, ratePps: 500, gsoSize, count: frames },
    });
    const gs = await guest.done;
    const ps = await peer.done;
    expect(gs.txPackets).toBe(frames);
    expect(ps.rxPackets).toBe(frames * perFrame);
    expect(ps.rxBytes).toBe(frames * perFrame * gsoSize);
    expect(ps.rxPackets).toBe(ps.rxBytes / gsoSize);
  });

  it('peer echo reflects what a guest generates, in batches', async () => {
    const q = await guestQueue(true);
    const peer = startPeer({ netns: tb.peer.path, bindIp: tb.peerIp, bindPort: 9002, mode: 'echo', count: 200, poll: 'busy', durationMs: 20_000, cpu: 0 });
    await peer.ready;
    const guest = startGuest({
      fd: q.fd, vnetHdrSize: 10, mac: GUEST_MAC, ip: GUEST_IP, mode: 'generate', poll: 'block', durationMs: 3_000, cpu: 1,
      generate: { dstMac: tb.peerMac, dstIp: tb.peerIp, srcPort: PORT, dstPort: 9002, payloadSize: 100, ratePps: 2000, count: 200 },
    });
    const ps = await peer.done;
    const gs = await guest.done;
    expect(ps.rxPackets).toBe(200);
    expect(ps.txPackets).toBe(200);
    // The echoes come back to the guest (the peer ARPs for it first, which the guest answers).
    expect(gs.rxPackets).toBeGreaterThan(0);
  });

  it('stops on stop(), on its deadline, and refuses bad configuration and unavailable CPUs', async () => {
    const q = await guestQueue(true);
    const idle = startGuest({ fd: q.fd, vnetHdrSize: 10, mac: GUEST_MAC, ip: GUEST_IP, mode: 'sink', poll: 'block', durationMs: 600_000 });
    await idle.ready;
    const t0 = performance.now();
    const stopped = await idle.stop();
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(stopped.rxPackets).toBe(0);
    // A peer in block mode sleeps in the receive call itself; stop() shuts the socket's read side to wake it, and the
    // wake-up is never counted as a datagram (nor echoed).
    for (const mode of ['sink', 'echo'] as const) {
      const p = startPeer({ netns: tb.peer.path, bindIp: tb.peerIp, bindPort: 0, mode, poll: 'block', durationMs: 600_000 });
      await p.ready;
      const t1 = performance.now();
      const ps = await p.stop();
      expect(performance.now() - t1, mode).toBeLessThan(1000);
      expect([ps.rxPackets, ps.txPackets, ps.rxBytes], mode).toEqual([0, 0, 0]);
    }
    const short = startPeer({ netns: tb.peer.path, bindIp: tb.peerIp, bindPort: 0, mode: 'sink', poll: 'busy', durationMs: 150 });
    const s = await short.done;
    expect(s.elapsedNs).toBeGreaterThanOrEqual(150e6);
    expect(s.elapsedNs).toBeLessThan(2e9);

    expect(() => startGuest({ fd: q.fd, vnetHdrSize: 10, mac: GUEST_MAC, ip: GUEST_IP, mode: 'sink', poll: 'block', durationMs: 600_001 })).toThrow(RangeError);
    expect(() => startGuest({ fd: q.fd, vnetHdrSize: 10, mac: 'zz', ip: GUEST_IP, mode: 'sink', poll: 'block', durationMs: 10 })).toThrow(TypeError);
    expect(() => startGuest({ fd: q.fd, vnetHdrSize: 0, mac: GUEST_MAC, ip: GUEST_IP, mode: 'generate', poll: 'block', durationMs: 10,
      generate: { dstMac: tb.peerMac, dstIp: tb.peerIp, srcPort: 1, dstPort: 2, payloadSize: 5000, ratePps: 0, gsoSize: 1000 } })).toThrow(/vnet header/);
    expect(() => startPeer({ netns: tb.peer.path, bindIp: tb.peerIp, bindPort: 0, mode: 'pingpong', poll: 'block', durationMs: 10 })).toThrow(/target/);

    const badCpu = startPeer({ netns: tb.peer.path, bindIp: tb.peerIp, bindPort: 0, mode: 'sink', poll: 'block', durationMs: 100, cpu: 1000 });
    await expect(badCpu.ready).rejects.toMatchObject({ code: 'EINVAL', syscall: 'pthread_setaffinity_np' });
    await expect(badCpu.done).rejects.toBeInstanceOf(MacvtapError);
    const badIp = startPeer({ netns: tb.peer.path, bindIp: '10.9.9.9', bindPort: 0, mode: 'sink', poll: 'block', durationMs: 100 });
    await expect(badIp.ready).rejects.toMatchObject({ code: 'EADDRNOTAVAIL', syscall: 'bind' });
    const badNs = startPeer({ netns: '/run/netns/mvt-does-not-exist', bindIp: '127.0.0.1', bindPort: 0, mode: 'sink', poll: 'block', durationMs: 100 });
    await expect(badNs.done).rejects.toMatchObject({ code: 'ENOENT', syscall: 'open' });
    expect(endpointThreads()).toEqual([]);
  });

  it('a worker terminated mid-run takes its endpoint threads with it; a process exiting mid-run exits cleanly', async (ctx: TestContext) => {
    if (!fs.existsSync(DIST_ENDPOINTS)) {
      ctx.skip(`needs the compiled library ${DIST_ENDPOINTS} (npm run build:ts)`);
      return;
    }
    const script = `
      const { workerData, parentPort } = require('node:worker_threads');
      (async () => {
        const { openTap } = await import(workerData.index);
        const { startGuest, startPeer } = await import(workerData.endpoints);
        const [q] = await openTap('mvt-mv0', { netns: workerData.host });
        const g = startGuest({ fd: q.fd, vnetHdrSize: 10, mac: workerData.mac, ip: workerData.ip, mode: 'echo', poll: 'busy', durationMs: 120000, cpu: 1 });
        const p = startPeer({ netns: workerData.peer, bindIp: workerData.peerIp, bindPort: 0, mode: 'pingpong',
          target: { ip: workerData.ip, port: 7777 }, poll: 'block', durationMs: 120000 });
        await g.ready; await p.ready;
        parentPort.postMessage('running');
      })().catch((e) => parentPort.postMessage('error: ' + e.message));
    `;
    const worker = new Worker(script, {
      eval: true,
      workerData: { index: DIST_INDEX, endpoints: DIST_ENDPOINTS, host: tb.host.path, peer: tb.peer.path, mac: GUEST_MAC, ip: GUEST_IP, peerIp: tb.peerIp },
    });
    const msg = await new Promise<string>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    expect(msg).toBe('running');
    expect(endpointThreads().sort()).toEqual(['mvt-guest', 'mvt-peer']);
    await new Promise((r) => setTimeout(r, 200));
    await worker.terminate();
    expect(endpointThreads()).toEqual([]);

    // A whole process that exits (process.exit) while its endpoints run: the cleanup hook joins them, exit code 0.
    const child = spawn(process.execPath, ['--input-type=module', '-e', `
      const { openTap } = await import(${JSON.stringify(DIST_INDEX)});
      const { startGuest } = await import(${JSON.stringify(DIST_ENDPOINTS)});
      const [q] = await openTap('mvt-mv0', { netns: ${JSON.stringify(tb.host.path)} });
      const g = startGuest({ fd: q.fd, vnetHdrSize: 10, mac: '${GUEST_MAC}', ip: '${GUEST_IP}', mode: 'sink', poll: 'block', durationMs: 120000 });
      await g.ready;
      setTimeout(() => process.exit(0), 100);
    `], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => {
      const t = setTimeout(() => child.pid !== undefined && process.kill(child.pid, 'SIGKILL'), 20_000);
      child.once('exit', (c) => {
        clearTimeout(t);
        resolve(c);
      });
    });
    expect(stderr).toBe('');
    expect(code).toBe(0);
  });
});
