/**
 * What a benchmark child process (`macvtap bench …`, pid P) may leave behind, found by its pid: namespaces
 * `mvt-bench-P-*`, Open vSwitch daemons whose command line names its run directory `mvt-bench-ovs-P-*`, and those
 * directories. Tests assert they are gone, and reap them by pid when a test failed half-way.
 */
import { spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

/** Namespaces made by benchmark process `pid`. */
export function benchNamespaces(pid: number): string[] {
  return existsSync('/run/netns') ? readdirSync('/run/netns').filter((n) => n.startsWith(`mvt-bench-${pid}-`)) : [];
}

/** OVS daemons of benchmark process `pid`: their command lines name its private run directory. */
export function ovsDaemons(pid: number): number[] {
  const needle = `mvt-bench-ovs-${pid}-`;
  return readdirSync('/proc').filter((e) => /^\d+$/.test(e)).filter((e) => {
    try {
      return readFileSync(`/proc/${e}/cmdline`, 'utf8').includes(needle);
    } catch {
      return false; // gone while we looked
    }
  }).map(Number);
}

/** The private OVS run directories of benchmark process `pid` still on disk. */
export function ovsDirs(pid: number): string[] {
  return readdirSync(tmpdir()).filter((n) => n.startsWith(`mvt-bench-ovs-${pid}-`));
}

/** Kills a benchmark child still running and everything it left (daemons by pid, namespaces, run directories). */
export function reapBenchChild(c: ChildProcess): void {
  if (c.pid === undefined) return;
  if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const p of ovsDaemons(c.pid)) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      // Gone.
    }
  }
  for (const ns of benchNamespaces(c.pid)) spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
  for (const d of ovsDirs(c.pid)) rmSync(join(tmpdir(), d), { recursive: true, force: true });
}

const root = resolve(import.meta.dirname, '../..');

/**
 * The benchmark runs compiled (as a CLI child, with helpers started as separate node processes): compiles dist/ and bench/dist/
 * (`npm run build:ts`) when any of `files` (paths under the repository root) is missing.
 */
export function ensureCompiled(...files: string[]): void {
  if (files.every((f) => existsSync(join(root, f)))) return;
  spawnSync('npm', ['run', 'build:ts'], { cwd: root, stdio: 'ignore' });
}
