/**
 * The far end of a test or of a guest, inside a namespace, written with Node's own sockets (independent of the code a
 * test checks): a UDP listener that reports every datagram, a one-shot UDP sender, and the servers a guest's tasks
 * talk to (TFTP-style UDP, HTTP).
 *
 * Each long-lived one is a `node -e SCRIPT` child started with `ip netns exec NS` (ip execs node in place, so the pid
 * held is node's own) that prints one JSON object per line: `{ "ready": true }` once it listens, then what it saw. It
 * exits by itself after its lifetime, is killed by pid on `stop()`, and at the latest when this process exits
 * (cleanup.ts).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createInterface } from 'node:readline';
import { trackChild } from './cleanup.js';

/** How long a helper may take to report `ready`. */
const READY_TIMEOUT_MS = 10_000;

/** A running `node -e` helper inside a namespace. */
class NodeHelper {
  /** Set once the process has exited or been killed. */
  exited = false;
  /** What it wrote on stderr (for failure messages). */
  stderr = '';

  private constructor(private readonly child: ChildProcess, readonly what: string) {}

  /**
   * Starts `script` with `args` in `netns` (a name under /run/netns); resolves once it printed `{ ready: true }`.
   * Every later line goes to `onMessage`; `onExit` runs when the process ends.
   */
  static start<M>(
    netns: string, what: string, script: string, args: string[], onMessage: (msg: M) => void, onExit: () => void = () => undefined,
  ): Promise<NodeHelper> {
    const child = spawn('ip', ['netns', 'exec', netns, process.execPath, '-e', script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    trackChild(child);
    const h = new NodeHelper(child, `${what} in ${netns}`);
    child.stderr!.on('data', (d: Buffer) => (h.stderr += d.toString()));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        h.stop();
        reject(new Error(`${h.what} not ready after ${READY_TIMEOUT_MS / 1000} s: ${h.stderr}`));
      }, READY_TIMEOUT_MS);
      child.once('exit', (code) => {
        h.exited = true;
        clearTimeout(timer);
        onExit();
        // A no-op once it was ready.
        reject(new Error(`${h.what} exited (${code}) before it was ready: ${h.stderr}`));
      });
      createInterface({ input: child.stdout! }).on('line', (line) => {
        const msg = JSON.parse(line) as M & { ready?: boolean };
        if (msg.ready) {
          clearTimeout(timer);
          resolve(h);
        } else onMessage(msg);
      });
    });
  }

  /** The helper's pid (node's own), -1 if it never started. */
  get pid(): number {
    return this.child.pid ?? -1;
  }

  /** Kills the helper by its pid. Idempotent. */
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
  private helper: NodeHelper | null = null;
  private waiters: Array<() => void> = [];

  private constructor() {}

  /**
   * Starts a listener on `port` (and `address`, default all) in `ns`, resolved once the socket is bound. The child
   * exits on its own after `lifetimeMs` (default 60 s) even if nobody stops it.
   */
  static async start(ns: { name: string }, port: number, opts: { address?: string; lifetimeMs?: number } = {}): Promise<UdpListener> {
    const l = new UdpListener();
    l.helper = await NodeHelper.start<{ from: string; port: number; data: string }>(
      ns.name, 'UDP listener', LISTENER_SCRIPT, [String(port), opts.address ?? '0.0.0.0', String(opts.lifetimeMs ?? 60_000)],
      (msg) => {
        l.received.push({ from: msg.from, port: msg.port, data: Buffer.from(msg.data, 'base64') });
        l.wake();
      },
      () => l.wake(),
    );
    return l;
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
        } else if (this.helper?.exited) {
          clearTimeout(deadline);
          reject(new Error(`listener exited before a matching datagram: ${this.helper.stderr}`));
        } else this.waiters.push(check);
      };
      check();
    });
  }

  /** Kills the child by its pid (idempotent). */
  stop(): void {
    this.helper?.stop();
  }
}

/** Sends one UDP datagram from inside `ns` (a short-lived child, at most 10 s). Throws when the child fails. */
export function sendUdp(ns: { name: string }, to: string, port: number, payload: Buffer, srcPort = 0): void {
  const r = spawnSync(
    'ip',
    ['netns', 'exec', ns.name, process.execPath, '-e', SENDER_SCRIPT, to, String(port), String(srcPort), payload.toString('hex')],
    { encoding: 'utf8', timeout: 10_000 },
  );
  if (r.status !== 0) throw new Error(`sendUdp in ${ns.name} to ${to}:${port} failed (${r.status ?? r.signal}): ${r.stderr}`);
}

/** The deterministic bytes the guest peer's HTTP server sends for a request of `n` bytes (so the host knows the hash). */
export function xferPayload(n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 131 + (i >> 8)) & 0xff;
  return b;
}

/** SHA-256 (hex) of {@link xferPayload}: what the guest's `xfer` task must print. */
export function xferSha256(n: number): string {
  return createHash('sha256').update(xferPayload(n)).digest('hex');
}

// The guest's peer. UDP: a minimal TFTP read responder (RRQ → one DATA block `echo:<filename>` → the client's ACK),
// because busybox has no UDP netcat and tftp is its UDP client. TCP: an HTTP server answering GET /<n> with n
// deterministic bytes (the formula of xferPayload).
const GUEST_PEER_SCRIPT = `
const dgram = require('node:dgram'), http = require('node:http');
const [udpPort, httpPort, address, lifetime] = [Number(process.argv[1]), Number(process.argv[2]), process.argv[3], Number(process.argv[4])];
const log = (o) => process.stdout.write(JSON.stringify(o) + '\\n');
let ready = 0; const isReady = () => { if (++ready === 2) log({ ready: true }); };
const u = dgram.createSocket('udp4');
u.on('error', (e) => { process.stderr.write(String(e) + '\\n'); process.exit(2); });
u.on('message', (m, r) => {
  if (m.readUInt16BE(0) !== 1) return;
  const name = m.subarray(2, m.indexOf(0, 2)).toString();
  log({ udp: name, from: r.address });
  // Answer from a fresh port, as TFTP does (the client learns the transfer id from it).
  const t = dgram.createSocket('udp4');
  t.bind(0, address, () => {
    const data = Buffer.concat([Buffer.from([0, 3, 0, 1]), Buffer.from('echo:' + name)]);
    t.send(data, r.port, r.address);
    t.on('message', () => t.close());
    setTimeout(() => { try { t.close(); } catch {} }, 5000);
  });
});
u.bind(udpPort, address, isReady);
const h = http.createServer((req, res) => {
  const n = Number(req.url.slice(1));
  if (!Number.isInteger(n) || n < 0 || n > 64 << 20) { res.statusCode = 400; res.end(); return; }
  const b = Buffer.alloc(n); for (let i = 0; i < n; i++) b[i] = (i * 131 + (i >> 8)) & 0xff;
  log({ http: n, from: req.socket.remoteAddress });
  res.setHeader('content-length', n); res.end(b);
});
h.listen(httpPort, address, isReady);
setTimeout(() => process.exit(0), lifetime);
`;

/** The servers a guest's `udp` and `xfer` tasks talk to, in a namespace; stop by pid with {@link GuestPeer.stop}. */
export interface GuestPeer {
  /** Pid of the peer process (node, exec'd in place by `ip netns exec`). */
  pid: number;
  /** Every request seen: `{ udp: token, from }` or `{ http: bytes, from }`. */
  requests: Array<{ udp?: string; http?: number; from: string }>;
  /** Kills the process by pid. Idempotent. */
  stop(): void;
}

/**
 * Starts the guest's peer servers (UDP on `udpPort`, HTTP on `httpPort`, bound to `address`) inside namespace `netns`
 * (a name under /run/netns). Resolves when both listen; the process exits on its own after `lifetimeMs` (default 120 s).
 */
export async function startGuestPeer(
  netns: string,
  opts: { address?: string; udpPort?: number; httpPort?: number; lifetimeMs?: number } = {},
): Promise<GuestPeer> {
  const requests: GuestPeer['requests'] = [];
  const h = await NodeHelper.start<GuestPeer['requests'][number]>(
    netns, 'guest peer', GUEST_PEER_SCRIPT,
    [String(opts.udpPort ?? 6969), String(opts.httpPort ?? 8080), opts.address ?? '0.0.0.0', String(opts.lifetimeMs ?? 120_000)],
    (msg) => requests.push(msg),
  );
  return { pid: h.pid, requests, stop: () => h.stop() };
}
