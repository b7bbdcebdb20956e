/**
 * Runs native/bench/minpair.c (`mvt-minpair`, built next to the harness's addon by `npm run build:native`) on a
 * testbed topology: its guest on the topology's tap fd (passed as the child's fd 3), its client in the peer
 * namespace, both pinned to one vCPU. And, for comparison, the harness's own ping-pong (guest endpoint + peer
 * endpoint) on the same topology with the same placement.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { startGuest, startPeer } from '../../bench/testbed/endpoints.js';
import { ADDR, type Topology } from '../../bench/testbed/topology.js';

export const MINPAIR = fileURLToPath(new URL('../../bench/build/Release/mvt-minpair', import.meta.url));
export const minpairBuilt = existsSync(MINPAIR);

export type GuestWait = 'read' | 'poll' | 'ppoll' | 'epoll';

/** The guest's MAC as the peer namespace must know it: the pair has no ARP, so it gets a permanent neighbour entry. */
export function pinNeighbour(t: Topology): void {
  if (t.guest.kind !== 'tap') throw new Error(`${t.id} has no tap`);
  const r = spawnSync('ip', ['-n', t.peerNs.name, 'neigh', 'replace', ADDR.guestIp, 'lladdr', t.guest.mac, 'dev', t.peerWire,
    'nud', 'permanent'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ip neigh replace: ${r.stderr}`);
}

/** p50 RTT, µs, of the minimal pair: its guest blocking on the tap fd, its client in the peer namespace. */
export async function minpairP50(t: Topology, cpu: number, payload: number, runMs: number, wait: GuestWait = 'read'): Promise<number> {
  if (t.guest.kind !== 'tap') throw new Error(`${t.id} has no tap`);
  const guest = spawn(MINPAIR, ['guest', '--fd', '3', '--ip', t.guest.ip, '--vnet-hdr', String(t.guest.vnetHdrSize),
    '--cpu', String(cpu), '--wait', wait], { stdio: ['ignore', 'pipe', 'pipe', t.guest.fd] });
  const exited = new Promise<void>((r) => guest.once('exit', () => r()));
  let gout = '';
  let gerr = '';
  guest.stderr!.on('data', (d: Buffer) => { gerr += d.toString(); });
  try {
    await new Promise<void>((resolve, reject) => {
      guest.stdout!.on('data', (d: Buffer) => {
        gout += d.toString();
        if (gout.includes('"ready"')) resolve();
      });
      guest.once('exit', (code) => reject(new Error(`mvt-minpair guest exited (${code}) before it was ready: ${gerr}`)));
      guest.once('error', reject);
    });
    const c = await new Promise<{ code: number | null; out: string; err: string }>((resolve, reject) => {
      const client = spawn(MINPAIR, ['client', '--netns', t.peerNs.path, '--bind', `${t.peer.ip}:${ADDR.peerPort}`,
        '--target', `${t.guest.ip}:${ADDR.guestPort}`, '--cpu', String(cpu), '--payload', String(payload),
        '--duration-ms', String(runMs), '--warmup', '200'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      client.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
      client.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
      client.once('error', reject);
      client.once('exit', (code) => resolve({ code, out, err }));
    });
    if (c.code !== 0) throw new Error(`mvt-minpair client exited ${c.code}: ${c.err}`);
    const s = JSON.parse(c.out) as { count: number; p50Ns: number };
    if (s.count < 100) throw new Error(`mvt-minpair client: only ${s.count} round trips`);
    return s.p50Ns / 1000;
  } finally {
    if (guest.exitCode === null && guest.signalCode === null) guest.kill('SIGTERM');
    await exited;
  }
}

/** p50 RTT, µs, of the harness: guest endpoint echo on the tap, peer endpoint ping-pong, both blocking on `cpu`. */
export async function harnessP50(t: Topology, cpu: number, payload: number, runMs: number): Promise<number> {
  if (t.guest.kind !== 'tap') throw new Error(`${t.id} has no tap`);
  const guest = startGuest({ fd: t.guest.fd, vnetHdrSize: t.guest.vnetHdrSize, mac: t.guest.mac, ip: t.guest.ip, mode: 'echo', cpu, poll: 'block', durationMs: runMs + 5000 });
  try {
    await guest.ready;
    const peer = startPeer({
      netns: t.peerNs.path, bindIp: t.peer.ip, bindPort: ADDR.peerPort, mode: 'pingpong',
      target: { ip: t.guest.ip, port: ADDR.guestPort }, payloadSize: payload, count: 100_000_000, warmup: 200,
      timeoutMs: 100, cpu, poll: 'block', durationMs: runMs,
    });
    const s = await peer.done;
    if ((s.latency?.count ?? 0) < 100) throw new Error(`harness: only ${s.latency?.count ?? 0} round trips`);
    return s.latency!.p50Ns / 1000;
  } finally {
    await guest.stop();
  }
}

export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
