/**
 * QEMU pieces the QMP, hot-plug, vhost and receive-filter suites share: a QEMU with nothing but a QMP socket, QEMU's
 * fd table as the "back where it began" view, and waiting for a receive-filter follower's state.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RxFilterFollower, RxFilterState } from '../../lib/index.js';
import { trackChild } from '../../bench/testbed/cleanup.js';
import { QEMU, waitListening } from '../../bench/testbed/qemu.js';

/** A QEMU started by {@link qmpQemu}. */
export interface QmpQemu {
  pid: number;
  child: ChildProcess;
  /** Its QMP socket, listening. */
  sock: string;
  /** The temp directory holding the socket (removed after the test). */
  dir: string;
}

/**
 * Starts `qemu-system-x86_64 -accel tcg -machine MACHINE [-S] -nodefaults -display none -qmp unix:SOCK` and resolves
 * once its QMP socket listens. `defer` (a {@link cleanupStack} of the file) kills it by pid (continued first, should
 * the test have stopped it) and removes the directory after the test. `machine: 'pc'` with `paused` takes
 * `device_add` without a guest.
 */
export async function qmpQemu(defer: (step: () => unknown) => void, o: { machine: 'none' | 'pc'; paused?: boolean }): Promise<QmpQemu> {
  const dir = mkdtempSync(join(tmpdir(), 'mvt-qmp-'));
  defer(() => rmSync(dir, { recursive: true, force: true }));
  const sock = join(dir, 'qmp.sock');
  const args = ['-accel', 'tcg', '-machine', o.machine, ...(o.paused ? ['-S'] : []), '-nodefaults', '-display', 'none', '-qmp', `unix:${sock},server=on,wait=off`];
  const child = spawn(QEMU, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  trackChild(child);
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  defer(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      process.kill(child.pid!, 'SIGCONT');
      process.kill(child.pid!, 'SIGKILL');
    }
    await exited;
  });
  await waitListening(sock);
  return { pid: child.pid!, child, sock, dir };
}

/** A process's open fds as `fd->target`, sorted (what "QEMU's fd table is back where it began" compares). */
export function fdTable(pid: number): string[] {
  const out: string[] = [];
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      out.push(`${fd}->${readlinkSync(`/proc/${pid}/fd/${fd}`)}`);
    } catch {
      // Closed meanwhile.
    }
  }
  return out.sort();
}

/** Resolves with the follower's state once `pred` holds for it (now or after a later sync); rejects after `timeoutMs`. */
export function syncWhere(f: RxFilterFollower, pred: (s: RxFilterState) => boolean, timeoutMs = 20_000): Promise<RxFilterState> {
  if (f.state && pred(f.state)) return Promise.resolve(f.state);
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      f.off('sync', on);
      reject(new Error(`no sync matching within ${timeoutMs} ms; last state ${JSON.stringify(f.state)}`));
    }, timeoutMs);
    const on = (s: RxFilterState): void => {
      if (!pred(s)) return;
      clearTimeout(t);
      f.off('sync', on);
      resolve(s);
    };
    f.on('sync', on);
  });
}
