/**
 * QEMU (TCG) guests for end-to-end tests and the guest benchmark: started with our tap fds in its stdio slots (the
 * zero-copy handoff), through the `macvtap exec` CLI, or on a named tap for comparison; the serial console goes to a
 * file that is followed for the guest's `MVT-…` result lines. Every guest has a hard deadline after which it is
 * SIGKILLed by pid, and every live guest is killed (by pid) when this process exits (cleanup.ts).
 *
 * TCG only (`-accel tcg`): the guests must boot on hosts whose `/dev/kvm` cannot run a stock guest kernel, and every
 * number taken from them is labelled emulated.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { trackChild } from './cleanup.js';
import { kernelCmdline, parseResultLine, type GuestImage, type GuestTask, type ResultLine } from './guest-image.js';

/** The QEMU binary the helpers run. */
export const QEMU = 'qemu-system-x86_64';

/**
 * The library's CLI, `dist/cli/macvtap.js` of the `macvtap` package the harness depends on (in a clone: the
 * repository's own, built by `npm run build:ts`), which the `exec` path runs.
 */
export function macvtapCli(): string {
  return join(dirname(createRequire(import.meta.url).resolve('macvtap/package.json')), 'dist', 'cli', 'macvtap.js');
}

/** Why QEMU guests cannot run here (a tool is missing), or `null`. */
export function qemuUnavailable(): string | null {
  for (const tool of [QEMU, 'cpio', 'gzip', 'apt-get', 'dpkg']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }).status !== 0) {
      return `${tool} is not installed (apt-get install qemu-system-x86 cpio)`;
    }
  }
  return null;
}

/** A result line with the host time at which the follower saw it. */
export interface SeenLine extends ResultLine {
  /** `performance.now()` when the line was read from the console file (±{@link SerialLog.pollMs}). */
  at: number;
}

/** Follows a serial console written to a file, polling it; result lines are parsed as they appear. */
export class SerialLog {
  /** Polling period of the follower, ms. */
  static readonly pollMs = 25;
  /** Every `MVT-…` line seen so far, in order. */
  readonly results: SeenLine[] = [];
  readonly path: string;
  private offset = 0;
  private partial = '';
  private text = '';

  constructor(path: string) {
    this.path = path;
  }

  /** Reads what was appended since the last call. */
  poll(): void {
    let buf: Buffer;
    try {
      buf = readFileSync(this.path);
    } catch {
      return; // Not created yet.
    }
    if (buf.length <= this.offset) return;
    const chunk = buf.subarray(this.offset).toString('utf8');
    this.offset = buf.length;
    this.text += chunk;
    const now = performance.now();
    const lines = (this.partial + chunk).split('\n');
    this.partial = lines.pop() ?? '';
    for (const l of lines) {
      const r = parseResultLine(l);
      if (r) this.results.push({ ...r, at: now });
    }
  }

  /** The whole console output so far (for failure messages). */
  get output(): string {
    this.poll();
    return this.text;
  }

  /**
   * Resolves with the first result line of `kind` (already seen or future) for which `match` holds. Rejects on an `MVT-FAIL` line, when
   * `stopped()` returns a reason (e.g. the VM exited), or after `timeoutMs` — each with the console output so far.
   */
  waitFor(kind: string, timeoutMs: number, stopped: () => string | null = () => null, match: (r: SeenLine) => boolean = () => true): Promise<SeenLine> {
    const deadline = performance.now() + timeoutMs;
    return new Promise((resolveLine, reject) => {
      const tick = (): void => {
        this.poll();
        const hit = this.results.find((r) => r.kind === kind && match(r));
        if (hit) return resolveLine(hit);
        const fail = this.results.find((r) => r.kind === 'FAIL');
        const why = fail ? `guest reported failure at ${fail.fields.step}: ${fail.fields.why}` : stopped() ?? (performance.now() > deadline ? `no MVT-${kind} within ${timeoutMs} ms` : null);
        if (why) return reject(new Error(`${why}\n--- guest console (${this.path}) ---\n${this.text.slice(-4000)}`));
        setTimeout(tick, SerialLog.pollMs);
      };
      tick();
    });
  }
}

/** How the guest's NIC gets its backend. */
export type QemuNet =
  /** Our open queue fds, placed in the child's fd slots 3, 4, … through spawn's stdio array. */
  | { type: 'fds'; fds: number[] }
  /** `macvtap exec --netns NETNS --dev DEV --queues N -- qemu … fds={fds}`: the CLI opens the queues and execs QEMU. */
  | { type: 'exec'; netns: string; dev: string; queues: number }
  /** A tap device by name in `netns` (opened by QEMU itself through /dev/net/tun): the comparison path. */
  | { type: 'ifname'; netns: string; ifname: string }
  /** Our fds in the child's slots 3, 4, … and the caller's own `-netdev`/`-device` arguments for them. */
  | { type: 'fdsArgs'; fds: number[]; args: string[] }
  /** No NIC at start (a guest that gets its NICs hot-plugged over QMP). */
  | { type: 'none' };

/** Options of {@link startQemu}. */
export interface QemuOptions {
  guest: GuestImage;
  task: GuestTask;
  /** The guest NIC's MAC: must be the macvtap's (bridge mode delivers only frames for it). */
  mac: string;
  net: QemuNet;
  /** Hard deadline: the process is SIGKILLed after this many ms. Default 90 s. */
  timeoutMs?: number;
  /** Guest memory, MiB. Default 256. */
  memoryMiB?: number;
  /** Guest vCPUs. Default 1. */
  smp?: number;
  /** A QMP socket to serve (`-qmp unix:PATH,server=on,wait=off`); the path must not exist. */
  qmp?: string;
}

/** The QEMU arguments for a guest; `netdev` is the `-netdev` value, `queues` > 1 turns on virtio-net multiqueue. */
export function qemuArgs(o: { guest: GuestImage; task: GuestTask; mac: string; serial: string; netdev: string | null; queues: number; memoryMiB?: number; smp?: number; qmp?: string }): string[] {
  const device = [`virtio-net-pci`, `netdev=n0`, `mac=${o.mac}`];
  // Two vectors per queue pair, one for config, one for the control queue.
  if (o.queues > 1) device.push('mq=on', `vectors=${2 * o.queues + 2}`);
  const nic = o.netdev === null ? [] : ['-netdev', o.netdev, '-device', device.join(',')];
  const qmp = o.qmp === undefined ? [] : ['-qmp', `unix:${o.qmp},server=on,wait=off`];
  return [
    '-accel', 'tcg',
    '-m', String(o.memoryMiB ?? 256),
    '-smp', String(o.smp ?? 1),
    '-nodefaults', '-no-user-config', '-display', 'none', '-monitor', 'none',
    // The guest ends with `reboot -f`; -no-reboot turns that into QEMU exiting.
    '-no-reboot',
    '-serial', `file:${o.serial}`,
    '-kernel', o.guest.kernel,
    '-initrd', o.guest.initrd,
    '-append', kernelCmdline(o.task),
    ...qmp,
    ...nic,
  ];
}

/** A running QEMU guest. */
export class QemuGuest {
  /** QEMU's PID (for the exec and ifname paths the wrappers exec in place, so it is QEMU's own). */
  readonly pid: number;
  readonly serial: SerialLog;
  /** `performance.now()` just before spawn. */
  readonly startedAt: number;
  /** Resolves when the process has exited. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private exitInfo: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  private stderrText = '';
  private readonly dir: string;
  private readonly timer: NodeJS.Timeout;

  /** @internal Use {@link startQemu}. */
  constructor(child: ChildProcess, serial: SerialLog, dir: string, startedAt: number, timeoutMs: number) {
    if (child.pid === undefined) throw new Error(`${QEMU} could not be spawned`);
    this.pid = child.pid;
    this.serial = serial;
    this.dir = dir;
    this.startedAt = startedAt;
    // Killed by pid when this process exits or dies of SIGINT/SIGTERM with the guest still running.
    trackChild(child);
    child.stderr?.on('data', (d: Buffer) => (this.stderrText = (this.stderrText + d.toString()).slice(-8000)));
    child.stdout?.resume();
    this.exited = new Promise((r) =>
      child.once('exit', (code, signal) => {
        this.exitInfo = { code, signal };
        clearTimeout(this.timer);
        r(this.exitInfo);
      }),
    );
    this.timer = setTimeout(() => this.signal('SIGKILL'), timeoutMs);
    this.timer.unref();
  }

  /** QEMU's stderr so far (last 8 kB). */
  get stderr(): string {
    return this.stderrText;
  }

  /** Why waiting is pointless (the process exited), or `null` while it runs. */
  private stopped = (): string | null =>
    this.exitInfo ? `${QEMU} exited (${this.exitInfo.code ?? this.exitInfo.signal}) — stderr: ${this.stderrText.trim() || '(empty)'}` : null;

  /**
   * Waits for the guest's `MVT-<kind>` line (the first one for which `match` holds); rejects on guest failure, QEMU
   * exit or timeout (with console and stderr).
   */
  waitFor(kind: string, timeoutMs = 60_000, match?: (r: SeenLine) => boolean): Promise<SeenLine> {
    return this.serial.waitFor(kind, timeoutMs, this.stopped, match);
  }

  private signal(sig: NodeJS.Signals): void {
    if (this.exitInfo) return;
    try {
      process.kill(this.pid, sig);
    } catch {
      // Already gone.
    }
  }

  /** Kills QEMU by PID (SIGTERM, then SIGKILL after 3 s), waits for it, removes the console file. Idempotent. */
  async kill(): Promise<void> {
    if (!this.exitInfo) {
      this.signal('SIGTERM');
      const t = setTimeout(() => this.signal('SIGKILL'), 3000);
      await this.exited;
      clearTimeout(t);
    }
    clearTimeout(this.timer);
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Waits (at most `timeoutMs`) for QEMU to exit on its own; `true` when it did. */
  async waitExit(timeoutMs: number): Promise<boolean> {
    let t: NodeJS.Timeout | undefined;
    const r = await Promise.race([this.exited.then(() => true), new Promise<boolean>((res) => (t = setTimeout(() => res(false), timeoutMs)))]);
    clearTimeout(t);
    return r;
  }
}

/**
 * Starts a guest. With `net.type === 'fds'` the given fds are placed in the child's slots 3… by spawn (the caller
 * still owns its copies and should close them once this returns, so only QEMU holds the queues).
 */
export function startQemu(o: QemuOptions): QemuGuest {
  const dir = mkdtempSync(join(tmpdir(), 'mvt-qemu-'));
  try {
    return launch(o, dir);
  } catch (e) {
    // Nothing was started (a missing CLI, no fds, spawn's own argument checks): no guest owns the directory yet.
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}

function launch(o: QemuOptions, dir: string): QemuGuest {
  const serialPath = join(dir, 'console.log');
  const common = { guest: o.guest, task: o.task, mac: o.mac, serial: serialPath, memoryMiB: o.memoryMiB, smp: o.smp, qmp: o.qmp };
  let cmd: string;
  let args: string[];
  let stdio: Array<'ignore' | 'pipe' | number> = ['ignore', 'pipe', 'pipe'];
  const net = o.net;
  if (net.type === 'none') {
    cmd = QEMU;
    args = qemuArgs({ ...common, netdev: null, queues: 1 });
  } else if (net.type === 'fdsArgs') {
    cmd = QEMU;
    args = [...qemuArgs({ ...common, netdev: null, queues: 1 }), ...net.args];
    stdio = [...stdio, ...net.fds];
  } else if (net.type === 'fds') {
    if (net.fds.length === 0) throw new RangeError('net.fds must hold at least one fd');
    const slots = net.fds.map((_, i) => 3 + i);
    const netdev = net.fds.length === 1 ? `tap,id=n0,fd=3,vhost=off` : `tap,id=n0,fds=${slots.join(':')},vhost=off`;
    cmd = QEMU;
    args = qemuArgs({ ...common, netdev, queues: net.fds.length });
    stdio = [...stdio, ...net.fds];
  } else if (net.type === 'exec') {
    const cli = macvtapCli();
    if (!existsSync(cli)) throw new Error(`${cli} is missing: run "npm run build:ts" first`);
    const netdev = net.queues === 1 ? 'tap,id=n0,fd={fd},vhost=off' : 'tap,id=n0,fds={fds},vhost=off';
    cmd = process.execPath;
    args = [cli, 'exec', '--netns', net.netns, '--dev', net.dev, '--queues', String(net.queues), '--', QEMU,
      ...qemuArgs({ ...common, netdev, queues: net.queues })];
  } else {
    cmd = 'ip';
    args = ['netns', 'exec', net.netns, QEMU, ...qemuArgs({ ...common, netdev: `tap,id=n0,ifname=${net.ifname},script=no,downscript=no,vhost=off`, queues: 1 })];
  }
  const startedAt = performance.now();
  const child = spawn(cmd, args, { stdio });
  return new QemuGuest(child, new SerialLog(serialPath), dir, startedAt, o.timeoutMs ?? 90_000);
}

/**
 * How many of process `pid`'s open fds are the character device `major:minor` — i.e. how many queues of a macvtap
 * it holds (whatever node it was opened through, even a private one already unlinked).
 */
export function countDeviceFds(pid: number, major: number, minor: number): number {
  // glibc's makedev() encoding of dev_t, as stat reports it.
  const M = BigInt(major);
  const m = BigInt(minor);
  const dev = ((M & 0xfffff000n) << 32n) | ((M & 0xfffn) << 8n) | ((m & 0xffffff00n) << 12n) | (m & 0xffn);
  const fdDir = `/proc/${pid}/fd`;
  let n = 0;
  for (const fd of readdirSync(fdDir)) {
    try {
      if (statSync(join(fdDir, fd), { bigint: true }).rdev === dev) n++;
    } catch {
      // Closed meanwhile.
    }
  }
  return n;
}

/**
 * Waits until a Unix socket at `path` is listening (QEMU binds its `-qmp` socket before it listens: a connect in
 * between is refused). Reads `/proc/net/unix`, whose Flags column has `__SO_ACCEPTCON` (0x10000) for a listener;
 * throws after `timeoutMs`.
 */
export async function waitListening(path: string, timeoutMs = 10_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const listening = readFileSync('/proc/net/unix', 'utf8').split('\n').some((l) => {
      const f = l.trim().split(/\s+/);
      return f[7] === path && (parseInt(f[3] ?? '0', 16) & 0x10000) !== 0;
    });
    if (listening) return;
    if (performance.now() > deadline) throw new Error(`${path} is not listening after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
