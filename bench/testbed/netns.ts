/**
 * The control-plane benchmark's testbed: one throwaway network namespace with a veth pair whose end `bl0` is the lower
 * device of every macvtap the benchmark makes. Links are made with the library itself; the namespace is made with
 * `ip netns add` (the library has no namespace-creation call), the one subprocess used for setup.
 *
 * Namespaces are named `mvt-bench-<pid>-<n>`. Every namespace and helper process made here is removed by
 * {@link Testbed.destroy}, and as a last resort synchronously on process exit and on SIGINT/SIGTERM (after which the
 * signal is re-raised, so the process still dies of it and its parent sees that).
 */
import { spawnSync, type ChildProcess } from 'node:child_process';
import { createVeth, getLink, netnsPath, setLink } from 'macvtap';

/** Namespace names this process made and has not deleted yet. */
const liveNamespaces = new Set<string>();
/** Helper processes (by pid) that must not outlive the run. */
const liveChildren = new Map<number, ChildProcess>();
/** Detached daemons (by pid, e.g. OVS) that must not outlive the run; killed by pid, never by name. */
const liveDaemons = new Set<number>();
/** Other synchronous last-resort cleanups (temporary directories), run after processes are gone. */
const liveCleanups = new Set<() => void>();
let counter = 0;
let hooksInstalled = false;

/** Synchronous last-resort cleanup: kill our helpers by pid, delete our namespaces. Safe to call twice. */
function cleanupSync(): void {
  for (const [pid] of liveChildren) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
  liveChildren.clear();
  for (const pid of liveDaemons) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
  liveDaemons.clear();
  for (const fn of liveCleanups) {
    try {
      fn();
    } catch {
      // Best effort: the process is going away.
    }
  }
  liveCleanups.clear();
  for (const name of liveNamespaces) spawnSync('ip', ['netns', 'del', name], { stdio: 'ignore' });
  liveNamespaces.clear();
}

function onSignal(sig: NodeJS.Signals): void {
  process.stderr.write(`\nmacvtap bench: ${sig}, removing namespaces ${[...liveNamespaces].join(' ') || '(none)'}\n`);
  cleanupSync();
  removeHooks();
  // Die of the signal, as the default action would have.
  process.kill(process.pid, sig);
}

function removeHooks(): void {
  if (!hooksInstalled) return;
  hooksInstalled = false;
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  process.off('exit', cleanupSync);
}

function installHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('exit', cleanupSync);
}

/**
 * Registers a helper process so a signal or exit kills it (by its pid) before the namespaces go. Returns a function
 * that unregisters it (call it once the process has exited).
 */
export function trackChild(child: ChildProcess): () => void {
  const pid = child.pid;
  if (pid === undefined) return () => undefined;
  liveChildren.set(pid, child);
  return () => {
    liveChildren.delete(pid);
  };
}

/**
 * Registers a detached daemon (its pid from its pidfile) so a signal or exit kills it by pid. Returns a function that
 * unregisters it (call it once the daemon has been stopped).
 */
export function trackDaemon(pid: number): () => void {
  installHooks();
  liveDaemons.add(pid);
  return () => {
    liveDaemons.delete(pid);
    maybeRemoveHooks();
  };
}

/**
 * Registers a synchronous cleanup (e.g. removing a temporary directory) for exit and SIGINT/SIGTERM. Returns a
 * function that unregisters it (call it once the normal path has cleaned up).
 */
export function trackCleanup(fn: () => void): () => void {
  installHooks();
  liveCleanups.add(fn);
  return () => {
    liveCleanups.delete(fn);
    maybeRemoveHooks();
  };
}

function maybeRemoveHooks(): void {
  if (liveNamespaces.size === 0 && liveChildren.size === 0 && liveDaemons.size === 0 && liveCleanups.size === 0) removeHooks();
}

/**
 * Makes a namespace `mvt-bench-<pid>-<n>` with `ip netns add` (the one subprocess used for setup) and brings its `lo`
 * up with the library. It is deleted by {@link deleteNamespace}, or at the latest on exit or SIGINT/SIGTERM.
 */
export async function createNamespace(): Promise<{ name: string; path: string }> {
  installHooks();
  const name = `mvt-bench-${process.pid}-${counter++}`;
  const r = spawnSync('ip', ['netns', 'add', name], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ip netns add ${name}: ${(r.stderr || r.error?.message || '').trim()}`);
  liveNamespaces.add(name);
  const path = netnsPath(name);
  try {
    await setLink('lo', { up: true }, { netns: path });
  } catch (e) {
    deleteNamespace(name);
    throw e;
  }
  return { name, path };
}

/** Deletes a namespace made by {@link createNamespace} (and every link in it). Idempotent. */
export function deleteNamespace(name: string): void {
  if (!liveNamespaces.has(name)) return;
  spawnSync('ip', ['netns', 'del', name], { stdio: 'ignore' });
  liveNamespaces.delete(name);
  maybeRemoveHooks();
}

/** Names of the namespaces this process currently holds (for diagnostics and tests). */
export function liveBenchNamespaces(): string[] {
  return [...liveNamespaces];
}

/** One benchmark namespace with its lower device. */
export class Testbed {
  /** `mvt-bench-<pid>-<n>`: what `ip -n` takes. */
  readonly name: string;
  /** `/run/netns/<name>`: what the library's `netns` option takes. */
  readonly path: string;
  /** The lower device's name (`bl0`), one end of a veth pair whose other end (`bp0`) is in the same namespace. */
  readonly lower = 'bl0';
  /** The veth's other end (`bp0`): never touched by the benchmark, so `ip -batch` can use it as a timing marker. */
  readonly marker = 'bp0';
  /** The lower device's ifindex in {@link path}. */
  lowerIndex = 0;
  private destroyed = false;

  private constructor(name: string) {
    this.name = name;
    this.path = netnsPath(name);
  }

  /** Makes the namespace, brings `lo` up and adds the veth pair `bl0`/`bp0` (both up) with the library. */
  static async create(): Promise<Testbed> {
    installHooks();
    const name = `mvt-bench-${process.pid}-${counter++}`;
    const r = spawnSync('ip', ['netns', 'add', name], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`ip netns add ${name}: ${(r.stderr || r.error?.message || '').trim()}`);
    liveNamespaces.add(name);
    const tb = new Testbed(name);
    try {
      await setLink('lo', { up: true }, { netns: tb.path });
      await createVeth({ name: tb.lower, peer: { name: tb.marker }, up: true, netns: tb.path });
      await setLink(tb.marker, { up: true }, { netns: tb.path });
      tb.lowerIndex = (await getLink(tb.lower, { netns: tb.path })).ifindex;
    } catch (e) {
      tb.destroy();
      throw e;
    }
    return tb;
  }

  /** Deletes the namespace and with it every link still in it. Idempotent. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    spawnSync('ip', ['netns', 'del', this.name], { stdio: 'ignore' });
    liveNamespaces.delete(this.name);
    maybeRemoveHooks();
  }
}
