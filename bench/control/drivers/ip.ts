/**
 * The two iproute2 configurations: `ip` as one process per command (what a driver shelling out does), and `ip -batch`
 * (one process for a whole phase, so nearly all of its time is the kernel's own work: the reference the other
 * configurations are divided by).
 *
 * Both use `ip -n NS`, which switches namespace and mounts a private sysfs at every start; that start-up is part of
 * the per-command configuration's cost and is left out for `ip -batch` (see {@link IpBatchDriver}).
 * `ip` cannot open a tap queue (no `TUNSETIFF`), so neither configuration has an open/close phase.
 */
import { spawn } from 'node:child_process';
import { timeEach, type ControlDriver, type ControlTestbed, type CreateSpec, type PhaseTiming } from '../driver.js';
import { trackChild } from '../../testbed/cleanup.js';

/** Runs `ip ARGS`, feeding `input` on stdin when given; resolves with the wall time in ms or rejects with stderr. */
export function runIp(args: string[], input?: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn('ip', args, { stdio: [input === undefined ? 'ignore' : 'pipe', 'ignore', 'pipe'] });
    const untrack = trackChild(child);
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      if (stderr.length < 4096) stderr += d;
    });
    child.on('error', (e) => {
      untrack();
      reject(new Error(`ip ${args.join(' ')}: ${e.message}`));
    });
    child.on('close', (code, signal) => {
      const ms = performance.now() - t0;
      untrack();
      if (code === 0) resolve(ms);
      else reject(new Error(`ip ${args.slice(0, 8).join(' ')}${args.length > 8 ? ' …' : ''}: exit ${code ?? signal}: ${stderr.trim()}`));
    });
    if (input !== undefined) {
      child.stdin!.on('error', () => undefined); // EPIPE if ip died first: its exit status reports why
      child.stdin!.end(input);
    }
  });
}

/** The `ip link add` arguments for one macvtap, `up` in the same request, as a shell user would write it. */
function addArgs(lower: string, spec: CreateSpec): string[] {
  return ['link', 'add', 'link', lower, 'name', spec.name, 'up', 'group', String(spec.group), 'type', 'macvtap', 'mode', 'bridge'];
}

/** `ip -n NS …`, one process per command. */
export class IpPerCommandDriver implements ControlDriver {
  readonly id = 'ip' as const;
  constructor(private readonly tb: ControlTestbed) {}

  create(specs: CreateSpec[]): Promise<PhaseTiming> {
    return timeEach(specs, (s) => runIp(['-n', this.tb.name, ...addArgs(this.tb.lower, s)]));
  }

  delete(names: string[]): Promise<PhaseTiming> {
    return timeEach(names, (n) => runIp(['-n', this.tb.name, 'link', 'del', 'dev', n]));
  }

  async deleteGroup(group: number): Promise<PhaseTiming> {
    const ms = await runIp(['-n', this.tb.name, 'link', 'del', 'group', String(group)]);
    return { totalMs: ms, perOpMs: [ms] };
  }

  getLinkLoop(count: number): Promise<PhaseTiming> {
    return timeEach(new Array<number>(count).fill(0), () => runIp(['-n', this.tb.name, 'link', 'show', 'dev', 'lo']));
  }

  async close(): Promise<void> {}
}

/** Round trips used to calibrate {@link runIpBatchMarked}; the fastest one is subtracted. */
const CALIBRATION_ROUNDS = 3;

/**
 * Runs `ip -n NS -batch -` and times `lines` inside it, leaving the process's start and exit out. `ip -batch` flushes
 * its output after every command, so a marker command (`link show dev MARKER`) shows on the pipe when ip got there.
 * The harness writes a marker, waits for its output, then writes the phase's commands followed by another marker and
 * times until that one shows. The same round trip with a marker alone (no commands) is measured
 * {@link CALIBRATION_ROUNDS} times first, and the fastest is subtracted: it is the pipe wake-ups plus the marker's own
 * `RTM_GETLINK`. (Writing everything at once would avoid the wake-ups but cannot time phases shorter than one
 * wake-up of this process: both markers then arrive together.)
 */
export function runIpBatchMarked(ns: string, marker: string, lines: string[]): Promise<{ totalMs: number; netMs: number }> {
  return new Promise((resolve, reject) => {
    const args = ['-n', ns, '-batch', '-'];
    const t0 = performance.now();
    const child = spawn('ip', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const untrack = trackChild(child);
    const markerLine = new RegExp(`^\\d+: ${marker}[@:]`, 'gm');
    const mark = `link show dev ${marker}\n`;
    child.stdin!.on('error', () => undefined); // EPIPE if ip died first: its exit status reports why
    let seen = 0;
    let waiting: { count: number; resolve: (t: number) => void } | null = null;
    let partial = '';
    let stderr = '';
    let failed = false;
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      const now = performance.now();
      // Only complete lines are matched; a line split across chunks counts when its end arrives.
      partial += d;
      const cut = partial.lastIndexOf('\n');
      if (cut < 0) return;
      seen += partial.slice(0, cut + 1).match(markerLine)?.length ?? 0;
      partial = partial.slice(cut + 1);
      if (waiting && seen >= waiting.count) {
        const w = waiting;
        waiting = null;
        w.resolve(now);
      }
    });
    child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      if (stderr.length < 4096) stderr += d;
    });
    const fail = (e: Error): void => {
      if (failed) return;
      failed = true;
      reject(e);
    };
    child.on('error', (e) => {
      untrack();
      fail(new Error(`ip ${args.join(' ')}: ${e.message}`));
    });
    let totalMs = 0;
    let netMs = 0;
    child.on('close', (code, signal) => {
      totalMs = performance.now() - t0;
      untrack();
      if (code !== 0) fail(new Error(`ip ${args.join(' ')} (${lines[0] ?? ''} …): exit ${code ?? signal}: ${stderr.trim()}`));
      else if (waiting) fail(new Error(`ip -batch ended before marker ${waiting.count} (${marker})`));
      else resolve({ totalMs, netMs });
    });
    // Writes `text` and resolves when marker number `count` has shown.
    const roundTrip = (text: string, count: number): Promise<number> =>
      new Promise((res) => {
        waiting = { count, resolve: res };
        child.stdin!.write(text);
      });

    (async () => {
      let marks = 0;
      let before = await roundTrip(mark, ++marks);
      let calibration = Infinity;
      for (let i = 0; i < CALIBRATION_ROUNDS; i++) {
        const after = await roundTrip(mark, ++marks);
        calibration = Math.min(calibration, after - before);
        before = after;
      }
      const after = await roundTrip(lines.join('\n') + '\n' + mark, ++marks);
      netMs = after - before - calibration;
      child.stdin!.end();
    })().catch((e: unknown) => fail(e as Error));
  });
}

/**
 * `ip -n NS -batch -`: one process per phase, commands on stdin. The phase is timed between marker commands (see
 * {@link runIpBatchMarked}), so the process start (exec, namespace switch, sysfs mount) and exit are left out: what
 * remains is ip's per-command work and the kernel's.
 */
export class IpBatchDriver implements ControlDriver {
  readonly id = 'ip-batch' as const;
  constructor(private readonly tb: ControlTestbed) {}

  private async batch(lines: string[]): Promise<PhaseTiming> {
    const { totalMs, netMs } = await runIpBatchMarked(this.tb.name, this.tb.marker, lines);
    return { totalMs, netMs, startupMs: Math.max(0, totalMs - netMs) };
  }

  create(specs: CreateSpec[]): Promise<PhaseTiming> {
    return this.batch(specs.map((s) => addArgs(this.tb.lower, s).join(' ')));
  }

  delete(names: string[]): Promise<PhaseTiming> {
    return this.batch(names.map((n) => `link del dev ${n}`));
  }

  deleteGroup(group: number): Promise<PhaseTiming> {
    return this.batch([`link del group ${group}`]);
  }

  getLinkLoop(count: number): Promise<PhaseTiming> {
    return this.batch(new Array<string>(count).fill('link show dev lo'));
  }

  async close(): Promise<void> {}
}
