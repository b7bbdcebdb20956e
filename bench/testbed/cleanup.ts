/**
 * The last resort for everything the testbed makes — network namespaces, helper processes, detached daemons,
 * temporary directories — when the normal path (each object's own `destroy`/`stop`) never runs: on process exit, and
 * on SIGINT/SIGTERM, after which the signal is re-raised so the process still dies of it and its parent sees that.
 * Processes are killed by pid (never by name) before anything else goes, so none is left holding a namespace or a
 * directory. The hooks are installed while something is registered and removed once nothing is.
 */
import { spawnSync, type ChildProcess } from 'node:child_process';

/** Namespace names made and not deleted yet. */
const namespaces = new Set<string>();
/** Processes (helpers, QEMU guests, detached daemons) that must not outlive this one. */
const pids = new Set<number>();
/** Other synchronous cleanups (temporary directories), run once the processes are gone. */
const cleanups = new Set<() => void>();
let hooked = false;

function killSync(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}

/** Kills the registered processes, runs the cleanups, deletes the namespaces. Safe to call twice. */
function cleanupSync(): void {
  for (const pid of pids) killSync(pid);
  pids.clear();
  for (const fn of cleanups) {
    try {
      fn();
    } catch {
      // Best effort: the process is going away.
    }
  }
  cleanups.clear();
  for (const name of namespaces) spawnSync('ip', ['netns', 'del', name], { stdio: 'ignore' });
  namespaces.clear();
  unhook();
}

function onSignal(sig: NodeJS.Signals): void {
  process.stderr.write(`\n${sig}: removing namespaces ${[...namespaces].join(' ') || '(none)'}\n`);
  cleanupSync();
  // Die of the signal, as the default action would have.
  process.kill(process.pid, sig);
}

function hook(): void {
  if (hooked) return;
  hooked = true;
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('exit', cleanupSync);
}

function unhook(): void {
  if (!hooked) return;
  hooked = false;
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  process.off('exit', cleanupSync);
}

function maybeUnhook(): void {
  if (namespaces.size === 0 && pids.size === 0 && cleanups.size === 0) unhook();
}

/** Adds `item` to one of the registries (hooks installed); the returned function takes it out again. */
function track<T>(registry: Set<T>, item: T): () => void {
  hook();
  registry.add(item);
  return () => {
    registry.delete(item);
    maybeUnhook();
  };
}

/** Registers a namespace to delete at the latest on exit; the returned function unregisters it (once deleted). */
export function trackNamespace(name: string): () => void {
  return track(namespaces, name);
}

/**
 * Registers a process (a detached daemon's pid from its pidfile, say) to kill by pid at the latest on exit; the
 * returned function unregisters it (once it has been stopped).
 */
export function trackPid(pid: number): () => void {
  return track(pids, pid);
}

/** {@link trackPid} for a child process, unregistered by itself when the child exits. */
export function trackChild(child: ChildProcess): () => void {
  const pid = child.pid;
  if (pid === undefined) return () => undefined;
  const untrack = trackPid(pid);
  child.once('exit', untrack);
  return untrack;
}

/** Registers a synchronous cleanup (removing a temporary directory); the returned function unregisters it. */
export function trackCleanup(fn: () => void): () => void {
  return track(cleanups, fn);
}

/** Names of the namespaces this process holds now (for diagnostics and tests). */
export function liveNamespaces(): string[] {
  return [...namespaces];
}

/** Deletes every namespace this process made and has not deleted yet (a test file's `afterAll`). */
export function destroyAllNamespaces(): void {
  for (const name of namespaces) spawnSync('ip', ['netns', 'del', name], { stdio: 'ignore' });
  namespaces.clear();
  maybeUnhook();
}
