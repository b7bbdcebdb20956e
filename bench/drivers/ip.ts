/**
 * The two iproute2 configurations: `ip` as one process per command (what a driver shelling out does), and `ip -batch`
 * (one process for a whole phase, so nearly all of its time is the kernel's own work: the reference the other
 * configurations are divided by).
 *
 * Both use `ip -n NS`, which switches namespace and mounts a private sysfs at every start; that start-up is part of
 * the per-command configuration's cost and is measured and subtracted for `ip -batch` (see {@link PhaseTiming.netMs}).
 * `ip` cannot open a tap queue (no `TUNSETIFF`), so neither configuration has an open/close phase.
 */
import { spawn } from 'node:child_process';
import { median } from '../stats.js';
import { timeEach, type ControlDriver, type CreateSpec, type PhaseTiming } from '../driver.js';
import { trackChild, type Testbed } from '../testbed.js';

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
    if (input !== undefined) child.stdin!.end(input);
  });
}

/** The `ip link add` arguments for one macvtap, `up` in the same request, as a shell user would write it. */
function addArgs(lower: string, spec: CreateSpec): string[] {
  return ['link', 'add', 'link', lower, 'name', spec.name, 'up', 'group', String(spec.group), 'type', 'macvtap', 'mode', 'bridge'];
}

/** `ip -n NS …`, one process per command. */
export class IpPerCommandDriver implements ControlDriver {
  readonly id = 'ip' as const;
  constructor(private readonly tb: Testbed) {}

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

/** `ip -n NS -batch -`: one process per phase, commands on stdin. */
export class IpBatchDriver implements ControlDriver {
  readonly id = 'ip-batch' as const;
  constructor(private readonly tb: Testbed) {}

  /** Median wall time of three empty batches: the fixed start-up (exec, namespace switch, sysfs mount) to subtract. */
  private async startup(): Promise<number> {
    const runs: number[] = [];
    for (let i = 0; i < 3; i++) runs.push(await runIp(['-n', this.tb.name, '-batch', '-'], ''));
    return median(runs);
  }

  private async batch(lines: string[]): Promise<PhaseTiming> {
    const startupMs = await this.startup();
    const totalMs = await runIp(['-n', this.tb.name, '-batch', '-'], lines.join('\n') + '\n');
    return { totalMs, startupMs, netMs: totalMs - startupMs };
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
