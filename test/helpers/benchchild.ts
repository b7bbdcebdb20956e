/**
 * Benchmark runs as child processes (`macvtap bench …`, pid P), and what one may leave behind, found by its pid:
 * namespaces `mvt-bench-P-*`, helper processes it started, Open vSwitch daemons whose command line names its run
 * directory `mvt-bench-ovs-P-*`, and those directories (the names are the testbed's: bench/testbed/netns.ts, ovs.ts).
 * Tests assert they are gone, and reap them by pid when a test failed half-way.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { procStat } from '../../lib/internal.js';
import { BENCH_PREFIX, namespacesOf } from '../../bench/testbed/netns.js';
import { OVS_DIR_PREFIX } from '../../bench/testbed/ovs.js';

const root = resolve(import.meta.dirname, '../..');
/** The library's compiled CLI, which runs the harness as `macvtap bench …`. */
export const cliJs = join(root, 'dist/cli/macvtap.js');
/** The harness's own compiled entry (`macvtap-bench …`). */
export const benchJs = join(root, 'bench/dist/cli.js');

/** Namespaces made by benchmark process `pid`. */
export function benchNamespaces(pid: number): string[] {
  return namespacesOf(pid, BENCH_PREFIX);
}

/** Pids whose command line mentions `needle` (and whose parent is `ppid`, when given). Read from /proc, nothing killed. */
export function processesMentioning(needle: string, ppid?: number): number[] {
  return readdirSync('/proc').filter((e) => /^\d+$/.test(e)).filter((e) => {
    try {
      if (ppid !== undefined && Number(procStat(Number(e))?.[3]) !== ppid) return false;
      return readFileSync(`/proc/${e}/cmdline`, 'utf8').includes(needle);
    } catch {
      return false; // gone while we looked
    }
  }).map(Number);
}

/** OVS daemons of benchmark process `pid`: their command lines name its private run directory. */
export function ovsDaemons(pid: number): number[] {
  return processesMentioning(`${OVS_DIR_PREFIX}-${pid}-`);
}

/** The private OVS run directories of benchmark process `pid` still on disk. */
export function ovsDirs(pid: number): string[] {
  return readdirSync(tmpdir()).filter((n) => n.startsWith(`${OVS_DIR_PREFIX}-${pid}-`));
}

function kill(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // Gone.
  }
}

/**
 * Kills a benchmark child still running and everything it left: its own helper processes (found before it dies, by
 * their parent pid), OVS daemons by pid, namespaces, run directories.
 */
export function reapBenchChild(c: ChildProcess): void {
  if (c.pid === undefined) return;
  const helpers = processesMentioning('', c.pid);
  if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const p of [...helpers, ...ovsDaemons(c.pid)]) kill(p);
  for (const ns of benchNamespaces(c.pid)) spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
  for (const d of ovsDirs(c.pid)) rmSync(join(tmpdir(), d), { recursive: true, force: true });
}

/** A benchmark run in a child process, its output collected. */
export interface BenchChild {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves when the child has exited. */
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const started: ChildProcess[] = [];

/**
 * Starts `macvtap bench ARGS` (`macvtap-bench ARGS` when the library's CLI is not built), collecting its output. Every
 * child started is reaped by {@link reapBenchChildren}.
 */
export function startBench(args: string[]): BenchChild {
  const argv = existsSync(cliJs) ? [cliJs, 'bench', ...args] : [benchJs, ...args];
  const child = spawn(process.execPath, argv, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  started.push(child);
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) => child.on('exit', (code, signal) => res({ code, signal })));
  return { child, stdout: () => out, stderr: () => err, done };
}

/** Reaps every child {@link startBench} started since the last call (for `afterEach`), and whatever it left. */
export function reapBenchChildren(): void {
  for (const c of started.splice(0)) reapBenchChild(c);
}

/** Resolves `true` once process `pid` is gone, `false` if it is still there after `ms`. */
export async function waitGone(pid: number, ms: number): Promise<boolean> {
  const until = Date.now() + ms;
  while (existsSync(`/proc/${pid}`) && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  return !existsSync(`/proc/${pid}`);
}

/**
 * The benchmark runs compiled (as a CLI child, with helpers started as separate node processes): compiles dist/ and
 * bench/dist/ (`npm run build:ts`) when any of `files` (paths under the repository root) is missing.
 */
export function ensureCompiled(...files: string[]): void {
  if (files.every((f) => existsSync(join(root, f)))) return;
  spawnSync('npm', ['run', 'build:ts'], { cwd: root, stdio: 'ignore' });
}
