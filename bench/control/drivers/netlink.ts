/**
 * The npm `netlink` package configuration (a devDependency). Its socket cannot be pointed at another namespace, so
 * the work runs in a helper process started inside the benchmark namespace (`netlink-worker.ts`), which times its
 * own calls. If the package is missing or its prebuilt addon does not load (it ships `prebuilds/linux-x64`; npm 11
 * does not run its install script), the configuration is reported unavailable with the loader's reason.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { ControlDriver, ControlTestbed, CreateSpec, PhaseTiming, Unavailable } from '../driver.js';
import { trackChild } from '../../testbed/cleanup.js';

/** How long the helper may take to load the package and answer `ready`. */
const START_TIMEOUT_MS = 15_000;
/** Generous per-request ceiling: a phase of 4096 creates near the kernel's slow end must fit in it. */
const REQUEST_TIMEOUT_MS = 300_000;

type Pending = { resolve: (t: PhaseTiming) => void; reject: (e: Error) => void; timer: NodeJS.Timeout };

/** `netlink` package driver: talks to the in-namespace helper over its stdin/stdout. */
export class NetlinkPackageDriver implements ControlDriver {
  readonly id = 'netlink' as const;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private closed = false;

  private constructor(
    private readonly tb: ControlTestbed,
    private readonly child: ChildProcess,
    private readonly untrack: () => void,
  ) {}

  /** Starts the helper in the testbed's namespace; resolves the driver, or why it cannot run here. */
  static async start(tb: ControlTestbed): Promise<NetlinkPackageDriver | Unavailable> {
    const worker = fileURLToPath(new URL('./netlink-worker.js', import.meta.url));
    if (!existsSync(worker)) {
      return { id: 'netlink', reason: `helper ${worker} is missing (run the benchmark from the compiled dist/ tree)` };
    }
    const child = spawn('ip', ['netns', 'exec', tb.name, process.execPath, worker], { stdio: ['pipe', 'pipe', 'pipe'] });
    const untrack = trackChild(child);
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      if (stderr.length < 4096) stderr += d;
    });
    child.stdin!.on('error', () => undefined); // EPIPE if the helper died: its exit fails the pending requests
    const lines = createInterface({ input: child.stdout! });

    const first = await new Promise<{ ready: boolean; reason?: string }>((resolve) => {
      const timer = setTimeout(() => resolve({ ready: false, reason: `helper did not start within ${START_TIMEOUT_MS} ms` }), START_TIMEOUT_MS);
      child.once('error', (e) => {
        clearTimeout(timer);
        resolve({ ready: false, reason: `cannot start helper: ${e.message}` });
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        resolve({ ready: false, reason: `helper exited (${code}) before it was ready: ${stderr.trim()}` });
      });
      lines.once('line', (line) => {
        clearTimeout(timer);
        try {
          resolve(JSON.parse(line) as { ready: boolean; reason?: string });
        } catch {
          resolve({ ready: false, reason: `helper said ${JSON.stringify(line)}` });
        }
      });
    });
    if (!first.ready) {
      child.kill('SIGKILL');
      untrack();
      return { id: 'netlink', reason: first.reason ?? 'helper not ready' };
    }

    const driver = new NetlinkPackageDriver(tb, child, untrack);
    lines.on('line', (line) => driver.onLine(line));
    child.on('exit', (code, signal) => {
      untrack();
      driver.failAll(new Error(`netlink helper exited (${code ?? signal}): ${stderr.trim()}`));
    });
    return driver;
  }

  private onLine(line: string): void {
    let msg: { id: number; ok: boolean; timing?: PhaseTiming; error?: string };
    try {
      msg = JSON.parse(line) as typeof msg;
    } catch {
      return;
    }
    const p = this.pending.get(msg.id);
    if (!p) return;
    this.pending.delete(msg.id);
    clearTimeout(p.timer);
    if (msg.ok && msg.timing) p.resolve(msg.timing);
    else p.reject(new Error(`netlink package: ${msg.error ?? 'no answer'}`));
  }

  private failAll(e: Error): void {
    this.closed = true;
    for (const [, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(e);
    }
    this.pending.clear();
  }

  private request(body: Record<string, unknown>): Promise<PhaseTiming> {
    if (this.closed) return Promise.reject(new Error('netlink helper is closed'));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`netlink helper: no answer to ${String(body.op)} within ${REQUEST_TIMEOUT_MS} ms`));
      }, REQUEST_TIMEOUT_MS);
      this.pending.set(id, { resolve, reject, timer });
      this.child.stdin!.write(JSON.stringify({ id, ...body }) + '\n');
    });
  }

  create(specs: CreateSpec[]): Promise<PhaseTiming> {
    return this.request({ op: 'create', lower: this.tb.lowerIndex, specs });
  }

  delete(names: string[]): Promise<PhaseTiming> {
    return this.request({ op: 'delete', names });
  }

  deleteGroup(group: number): Promise<PhaseTiming> {
    return this.request({ op: 'deleteGroup', group });
  }

  getLinkLoop(count: number): Promise<PhaseTiming> {
    return this.request({ op: 'getLinkLoop', count });
  }

  /** `count` `RTM_GETLINK`s of `lo` with `depth` in flight: µs per call as throughput. */
  getLinkParallel(count: number, depth: number): Promise<PhaseTiming> {
    return this.request({ op: 'getLinkParallel', count, depth });
  }

  /** Ends the helper: closes its stdin (it exits when its input ends), killing it by pid if it lingers. */
  async close(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) {
      this.closed = true;
      return;
    }
    this.closed = true;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.stdin!.end();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(timer);
    this.untrack();
  }
}
