/**
 * Cross-check of the benchmark's endpoints against Debian's `sockperf ping-pong` over the same namespaces: the
 * harness's veth-direct round trip and its tap+linuxbridge round trip agree with sockperf's within 25% (p50, both
 * ends pinned to one vCPU, blocking). sockperf needs a socket on the guest side, so for the bridge it talks to a
 * server on a veth enslaved to the same bridge (the tap+linuxbridge equivalent). On a busy VM one measurement can be
 * off: each comparison is measured up to 3 times and passes when one attempt agrees; 25% is never loosened.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpus } from 'node:os';
import { expect, it } from 'vitest';
import { startGuest, startPeer } from '../bench/testbed/endpoints.js';
import { ADDR, buildTopology, type Topology } from '../bench/testbed/topology.js';
import { describePrivileged } from './helpers/suite.js';
import { TestNetns } from '../bench/testbed/netns.js';

const sockperf = spawnSync('sockperf', ['--version'], { encoding: 'utf8' }).status === 0;
const CPU = Math.max(0, cpus().length - 1);
const RUN_MS = 1000;
const TOLERANCE = 0.25;
const ATTEMPTS = 3;
const SOCKPERF_PORT = 11111;

/** p50 RTT, µs, from `sockperf ping-pong --full-rtt` run in `clientNs` against `ip`, pinned to CPU. */
async function sockperfP50(serverNs: string, clientNs: string, ip: string, payload: number): Promise<number> {
  const server: ChildProcess = spawn('ip', ['netns', 'exec', serverNs, 'taskset', '-c', String(CPU), 'sockperf', 'server', '-i', ip, '-p', String(SOCKPERF_PORT)], { stdio: 'ignore' });
  try {
    await new Promise((r) => setTimeout(r, 300));
    const c = spawnSync('ip', [
      'netns', 'exec', clientNs, 'taskset', '-c', String(CPU), 'sockperf', 'ping-pong', '-i', ip, '-p', String(SOCKPERF_PORT),
      '-m', String(payload), '-t', String(RUN_MS / 1000), '--full-rtt',
    ], { encoding: 'utf8', timeout: 30_000 });
    const m = /percentile 50\.000\s*=\s*([\d.]+)/.exec(c.stdout);
    if (!m) throw new Error(`sockperf gave no p50: ${c.stdout}\n${c.stderr}`);
    return Number(m[1]);
  } finally {
    server.kill('SIGTERM');
    await new Promise((r) => server.once('exit', r));
  }
}

/** p50 RTT, µs, of our peer ping-pong against the topology's guest side (guest endpoint echo, or a socket echo). */
async function oursP50(t: Topology, payload: number, echoNs?: { path: string; ip: string }): Promise<number> {
  const guest = echoNs
    ? startPeer({ netns: echoNs.path, bindIp: echoNs.ip, bindPort: ADDR.guestPort, mode: 'echo', batch: 1, cpu: CPU, poll: 'block', durationMs: RUN_MS + 5000 })
    : t.guest.kind === 'socket'
      ? startPeer({ netns: t.guest.netns, bindIp: t.guest.ip, bindPort: ADDR.guestPort, mode: 'echo', batch: 1, cpu: CPU, poll: 'block', durationMs: RUN_MS + 5000 })
      : startGuest({ fd: t.guest.fd, vnetHdrSize: t.guest.vnetHdrSize, mac: t.guest.mac, ip: t.guest.ip, mode: 'echo', cpu: CPU, poll: 'block', durationMs: RUN_MS + 5000 });
  try {
    await guest.ready;
    const peer = startPeer({
      netns: t.peerNs.path, bindIp: t.peer.ip, bindPort: ADDR.peerPort, mode: 'pingpong',
      target: { ip: echoNs?.ip ?? t.guest.ip, port: ADDR.guestPort }, payloadSize: payload, count: 100_000_000, warmup: 200,
      timeoutMs: 100, cpu: CPU, poll: 'block', durationMs: RUN_MS,
    });
    const s = await peer.done;
    expect(s.latency?.count ?? 0).toBeGreaterThan(100);
    return s.latency!.p50Ns / 1000;
  } finally {
    await guest.stop();
  }
}

/** Measures both up to {@link ATTEMPTS} times; returns every attempt and whether one agreed within the tolerance. */
async function agree(name: string, ours: () => Promise<number>, theirs: () => Promise<number>): Promise<{ ok: boolean; attempts: string[] }> {
  const attempts: string[] = [];
  for (let i = 0; i < ATTEMPTS; i++) {
    const a = await ours();
    const b = await theirs();
    const dev = Math.abs(a - b) / b;
    attempts.push(`${name} attempt ${i + 1}: ours p50 ${a.toFixed(1)} µs, sockperf p50 ${b.toFixed(1)} µs (${(dev * 100).toFixed(0)}% apart)`);
    if (dev <= TOLERANCE) return { ok: true, attempts };
  }
  return { ok: false, attempts };
}

describePrivileged('sockperf cross-check of the benchmark endpoints', () => {
  it.skipIf(!sockperf)('veth-direct: our ping-pong p50 agrees with sockperf within 25% (64 B and 1400 B, same vCPU)', async () => {
    const t = await buildTopology('veth-direct');
    try {
      for (const payload of [64, 1400]) {
        const r = await agree(`veth-direct ${payload} B`, () => oursP50(t, payload), () => sockperfP50(t.guestNs.name, t.peerNs.name, ADDR.guestIp, payload));
        process.stderr.write(r.attempts.map((a) => `  ${a}\n`).join(''));
        expect(r.ok, r.attempts.join('\n')).toBe(true);
      }
    } finally {
      await t.destroy();
    }
  }, 120_000);

  it.skipIf(!sockperf)('tap+linuxbridge: our guest endpoint p50 agrees with sockperf through the same bridge within 25%', async () => {
    const t = await buildTopology('tap+linuxbridge');
    // sockperf's server needs a kernel socket: a third namespace on a veth enslaved to the same bridge.
    const s = TestNetns.create();
    try {
      const sockIp = '10.77.0.3';
      spawnSync('ip', ['-n', t.guestNs.name, 'link', 'add', 'vsb', 'type', 'veth', 'peer', 'name', 'vs0', 'netns', s.name]);
      spawnSync('ip', ['-n', t.guestNs.name, 'link', 'set', 'vsb', 'master', 'br0', 'up']);
      s.ip('addr', 'add', `${sockIp}/24`, 'dev', 'vs0');
      s.ip('link', 'set', 'vs0', 'up');
      expect(s.ipLink('vs0').operstate).toBe('UP');
      for (const payload of [64, 1400]) {
        const theirs = () => sockperfP50(s.name, t.peerNs.name, sockIp, payload);
        // The endpoints on the same veth path as sockperf (socket to socket through the bridge) ...
        const same = await agree(`bridge, socket echo ${payload} B`, () => oursP50(t, payload, { path: s.path, ip: sockIp }), theirs);
        // ... and the guest endpoint on the tap, the number the benchmark reports for tap+linuxbridge.
        const tap = await agree(`tap+linuxbridge ${payload} B`, () => oursP50(t, payload), theirs);
        process.stderr.write([...same.attempts, ...tap.attempts].map((a) => `  ${a}\n`).join(''));
        expect(same.ok, same.attempts.join('\n')).toBe(true);
        expect(tap.ok, tap.attempts.join('\n')).toBe(true);
      }
    } finally {
      await t.destroy();
      s.destroy();
    }
  }, 180_000);
});
