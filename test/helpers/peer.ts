/**
 * Peer sockets inside a test namespace: the far end of a datapath test. A listener is a `node` child started with
 * `ip netns exec NS node -e …` (ip execs node in place, so the PID we hold is node's own) that binds a UDP socket and
 * prints every datagram as one JSON line; a sender is a short-lived child that sends one datagram. Both are bounded in
 * time, and listeners are killed by PID in `stop()`.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { TestNetns } from './netns.js';

/** One datagram a {@link UdpListener} received. */
export interface Datagram {
  /** Source address and port as the peer's kernel saw them. */
  from: string;
  port: number;
  data: Buffer;
}

// Plain CommonJS for `node -e`: binds, reports readiness, then reports datagrams until killed or its lifetime ends.
const LISTENER_SCRIPT = `
const dgram = require('node:dgram');
const [port, address, lifetime] = [Number(process.argv[1]), process.argv[2], Number(process.argv[3])];
const s = dgram.createSocket('udp4');
s.on('error', (e) => { process.stderr.write(String(e) + '\\n'); process.exit(2); });
s.on('message', (m, r) => {
  process.stdout.write(JSON.stringify({ from: r.address, port: r.port, data: m.toString('base64') }) + '\\n');
});
s.bind(port, address, () => process.stdout.write(JSON.stringify({ ready: true }) + '\\n'));
setTimeout(() => process.exit(0), lifetime);
`;

const SENDER_SCRIPT = `
const dgram = require('node:dgram');
const [to, port, srcPort, hex] = [process.argv[1], Number(process.argv[2]), Number(process.argv[3]), process.argv[4]];
const s = dgram.createSocket('udp4');
s.on('error', (e) => { process.stderr.write(String(e) + '\\n'); process.exit(2); });
s.bind(srcPort, () => s.send(Buffer.from(hex, 'hex'), port, to, (e) => { if (e) { process.stderr.write(String(e)); process.exit(3); } s.close(); }));
`;

/** A UDP socket bound inside a namespace, collecting what it receives. */
export class UdpListener {
  /** Every datagram received so far, in order. */
  readonly received: Datagram[] = [];
  private readonly child: ChildProcess;
  private waiters: Array<() => void> = [];
  private exited = false;
  private stderr = '';

  private constructor(child: ChildProcess) {
    this.child = child;
  }

  /**
   * Starts a listener on `port` (and `address`, default all) in `ns`, resolved once the socket is bound. The child
   * exits on its own after `lifetimeMs` (default 60 s) even if nobody stops it.
   */
  static start(ns: TestNetns, port: number, opts: { address?: string; lifetimeMs?: number } = {}): Promise<UdpListener> {
    const child = spawn(
      'ip',
      ['netns', 'exec', ns.name, process.execPath, '-e', LISTENER_SCRIPT, String(port), opts.address ?? '0.0.0.0',
        String(opts.lifetimeMs ?? 60_000)],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const l = new UdpListener(child);
    child.stderr!.on('data', (d: Buffer) => (l.stderr += d.toString()));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        l.stop();
        reject(new Error(`UDP listener in ${ns.name} not ready after 10 s: ${l.stderr}`));
      }, 10_000);
      child.once('exit', (code) => {
        l.exited = true;
        l.wake();
        clearTimeout(timer);
        reject(new Error(`UDP listener in ${ns.name} exited (${code}) before it was ready: ${l.stderr}`));
      });
      createInterface({ input: child.stdout! }).on('line', (line) => {
        const msg = JSON.parse(line) as { ready?: boolean; from?: string; port?: number; data?: string };
        if (msg.ready) {
          clearTimeout(timer);
          resolve(l);
          return;
        }
        l.received.push({ from: msg.from!, port: msg.port!, data: Buffer.from(msg.data!, 'base64') });
        l.wake();
      });
    });
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Resolves with the first received datagram (already received or future) that `pred` accepts; rejects after `timeoutMs`. */
  waitFor(pred: (d: Datagram) => boolean, timeoutMs = 5000): Promise<Datagram> {
    return new Promise((resolve, reject) => {
      const deadline = setTimeout(() => reject(new Error(`no matching datagram within ${timeoutMs} ms (got ${this.received.length})`)), timeoutMs);
      const check = (): void => {
        const hit = this.received.find(pred);
        if (hit) {
          clearTimeout(deadline);
          resolve(hit);
        } else if (this.exited) {
          clearTimeout(deadline);
          reject(new Error(`listener exited before a matching datagram: ${this.stderr}`));
        } else this.waiters.push(check);
      };
      check();
    });
  }

  /** Kills the child by its PID (idempotent). */
  stop(): void {
    if (this.exited || this.child.pid === undefined) return;
    try {
      process.kill(this.child.pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
    this.exited = true;
  }
}

/** Sends one UDP datagram from inside `ns` (a short-lived child, at most 10 s). Throws when the child fails. */
export function sendUdp(ns: TestNetns, to: string, port: number, payload: Buffer, srcPort = 0): void {
  const r = spawnSync(
    'ip',
    ['netns', 'exec', ns.name, process.execPath, '-e', SENDER_SCRIPT, to, String(port), String(srcPort), payload.toString('hex')],
    { encoding: 'utf8', timeout: 10_000 },
  );
  if (r.status !== 0) throw new Error(`sendUdp in ${ns.name} to ${to}:${port} failed (${r.status ?? r.signal}): ${r.stderr}`);
}

/** Sleeps `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
